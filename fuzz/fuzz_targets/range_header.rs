//! `GET /media/...` `Range`, `If-None-Match` and `If-Range` headers: never a panic, and a partial range always lies
//! inside the file and is not empty. Input: 8 bytes of file size (little-endian; every second input is kept small so
//! that ranges hit the file), then the header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zcc_bridge::http::{etag_matches, parse_range, RangeRequest};

fuzz_target!(|data: &[u8]| {
    let (size, header) = data.split_at(data.len().min(8));
    let mut bytes = [0u8; 8];
    bytes[..size.len()].copy_from_slice(size);
    let mut total = u64::from_le_bytes(bytes);
    if total & 1 == 0 {
        total %= 10_000;
    }
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    match parse_range(Some(header), total) {
        RangeRequest::Partial(range) => {
            assert!(range.start < range.end, "{header:?} {total}: {range:?}");
            assert!(range.end <= total, "{header:?} {total}: {range:?}");
        }
        RangeRequest::Full | RangeRequest::Unsatisfiable => {}
    }
    let etag = "\"5d41402abc4b2a76b9719d911017c592\"";
    if etag_matches(header, etag, true) {
        assert!(etag_matches(header, etag, false), "{header:?}");
    }
});
