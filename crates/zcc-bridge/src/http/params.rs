//! What the admin API's handlers share to read requests: time bounds, page sizes, state filters, cursors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use crate::core::time::parse_time;
pub use crate::core::time::DateAs;

/// A time parameter to epoch ms: RFC 3339, or a date taken as `date_as` says (`core::time`).
pub fn parse_bound(name: &str, value: &str, date_as: DateAs) -> Result<i64, ApiError> {
    parse_time(value, date_as)
        .map_err(|problem| ApiError::bad_request(format!("{name}: {problem}")))
}

/// A page size: `default` when absent, refused outside `1..=max`.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {max}"
        )))
    }
}

/// The page size of a list endpoint (default 100, at most 1,000) and its `state` filter, checked against
/// `states`.
pub fn list_limit_and_state(
    limit: Option<u32>,
    state: Option<&str>,
    states: &[&str],
) -> Result<u32, ApiError> {
    let limit = page_limit(limit, 100, 1000)?;
    match state {
        Some(state) if !states.contains(&state) => Err(ApiError::bad_request(format!(
            "state: one of {}",
            states.join(", ")
        ))),
        _ => Ok(limit),
    }
}

/// Every list pages the same way: `?cursor=` takes the previous page's `next_cursor` (opaque: base64url of the
/// position of the page's last row), `?limit=` the page size; `next_cursor` is null on the last page.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Reads a `cursor` parameter back into the position `encode_cursor` wrote; 400 for anything else.
pub fn decode_cursor<T: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<T>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("cursor: not a cursor returned by this API"))
}

/// The `next_cursor` of a page: the last row's position when the page is full, else none.
pub fn next_cursor<R, T: Serialize>(
    rows: &[R],
    limit: u32,
    position: impl Fn(&R) -> T,
) -> Option<String> {
    (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| encode_cursor(&position(row))))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_limits() {
        assert_eq!(
            parse_bound("from", "1970-01-02", DateAs::Start),
            Ok(86_400_000)
        );
        assert_eq!(
            parse_bound("to", "1970-01-02", DateAs::EndExclusive),
            Ok(2 * 86_400_000)
        );
        assert!(parse_bound("from", "yesterday", DateAs::Start)
            .unwrap_err()
            .to_string()
            .contains("from:"));
        assert_eq!(page_limit(None, 20, 200), Ok(20));
        assert!(page_limit(Some(0), 20, 200).is_err());
        assert!(page_limit(Some(201), 20, 200).is_err());
        assert_eq!(
            list_limit_and_state(Some(5), Some("dead"), &["dead"]),
            Ok(5)
        );
        assert!(list_limit_and_state(None, Some("bogus"), &["dead"]).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = encode_cursor(&(17_i64, "abc"));
        assert_eq!(
            decode_cursor::<(i64, String)>(Some(&cursor)),
            Ok(Some((17, "abc".to_string())))
        );
        assert_eq!(decode_cursor::<i64>(None), Ok(None));
        for bad in ["", "!!", "e30", &encode_cursor(&"text")] {
            assert!(decode_cursor::<i64>(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(next_cursor(&[1, 2], 3, |n| *n), None);
        assert_eq!(next_cursor(&[1, 2], 2, |n| *n), Some(encode_cursor(&2)));
    }
}
