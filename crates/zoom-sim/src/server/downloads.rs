//! The files behind the URLs in recording, voicemail and transcript payloads (reference §1.5, §1.6, §1.9): Bearer
//! token required, synthetic deterministic bytes streamed in chunks (never buffered whole, so a multi-GiB file costs
//! no memory), byte ranges, and the faults an archiver must survive: a CDN-style redirect to a short-lived
//! unauthenticated link, files still "processing", throttled and broken transfers.
//!
//! ❓ Zoom documents no rate-limit label for these URLs; the simulator does not rate limit them. Faults are
//! injected on request: `download_fault_5xx_rate`, `download_fault_429_rate` (with `Retry-After: 1`), and
//! `cut_first_download_after`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LOCATION, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;

use super::view::{FileInfo, FileKey, FileKind};
use super::{later, lock, mix, stable_hash, zoom_error, Counters, Shared, ZoomError};
use crate::opaque_id;

/// ❓ Content type of voicemail files: Zoom does not document it (`audio/mpeg` is a guess, as for voice recordings).
pub const VOICEMAIL_CONTENT_TYPE: &str = "audio/mpeg";
/// ❓ The `code` of the 404 for an unknown file and for one Zoom is still processing (after `recording_completed`
/// fired but before the file can be fetched). Zoom documents neither; the two differ only in `message`.
pub const FILE_NOT_FOUND_CODE: u32 = 404;
/// ❓ The `code` of the 403 for an expired or unknown redirect link (a CDN would answer its own error, not Zoom's).
pub const FILE_LINK_INVALID_CODE: u32 = 403;

const FILE_NOT_FOUND: &str = "File does not exist.";
const FILE_NOT_READY: &str = "The file is being processed. Try again later.";
const FILE_LINK_INVALID: &str = "The download link is invalid or has expired.";
/// Body chunk size; smaller when a throttle asks for a smoother rate.
const CHUNK: u64 = 64 * 1024;
/// How long a cut transfer pauses before breaking (see [`Transfer::next`]).
const CUT_FLUSH_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
/// The unauthenticated link route of `download_redirect`.
const LINK_PREFIX: &str = "/v2/_files";
/// Phrases of the synthetic transcripts.
const LINES: &[&str] = &[
    "Thank you for contacting us, how can I help you today?",
    "Hi, I have a question about my last invoice.",
    "Sure, could you confirm the email address on the account?",
    "It should be the one ending in example dot com.",
    "Thanks, I can see the account now.",
    "The charge was applied twice, I think.",
    "Let me check the billing history for you.",
    "I have issued a refund for the duplicate charge.",
    "Great, how long will it take to show up?",
    "Usually three to five business days.",
    "Is there anything else I can help you with?",
    "No, that is all, thank you very much.",
];

/// The Zoom URLs of [`crate::urls`] (`?type=` is ignored). Download and playback of one recording or voicemail serve
/// the same file; a voicemail transcript is served at both its webhook URL (`/voicemail/transcripts/...`) and the
/// form of reference §1.6's REST example (`/inbox/message/transcripts/...`).
const FILE_ROUTES: &[(&str, FileKind)] = &[
    (
        "/v2/contact_center/recording/download/{id}",
        FileKind::Recording,
    ),
    (
        "/v2/contact_center/recording/playback/{id}",
        FileKind::Recording,
    ),
    (
        "/v2/contact_center/recording/transcripts/download/{id}",
        FileKind::RecordingTranscript,
    ),
    (
        "/v2/contact_center/inbox/message/download/{id}",
        FileKind::Voicemail,
    ),
    (
        "/v2/contact_center/inbox/message/playback/{id}",
        FileKind::Voicemail,
    ),
    (
        "/v2/contact_center/voicemail/transcripts/download/{id}",
        FileKind::VoicemailTranscript,
    ),
    (
        "/v2/contact_center/inbox/message/transcripts/download/{id}",
        FileKind::VoicemailTranscript,
    ),
    (
        "/v2/contact_center/engagements/transcripts/download/{id}",
        FileKind::EngagementTranscript,
    ),
];

/// A redirect link: the file it serves until it expires.
#[derive(Debug, Clone)]
pub(super) struct Link {
    key: FileKey,
    pub(super) expires: Instant,
}

/// An e-mail engagement's messages: its "transcript" URL (`engagement_email_transcript_completed`), an API taking
/// the engagement in the query.
const EMAIL_MESSAGES_ROUTE: &str = "/v2/contact_center/email/messages";

type FileId = Result<Path<String>, PathRejection>;
type FileQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

pub(super) fn routes(mut router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    for &(path, kind) in FILE_ROUTES {
        router = router.route(
            path,
            get(
                move |State(shared): State<Arc<Shared>>,
                      method: Method,
                      headers: HeaderMap,
                      id: FileId| async move {
                    let id = id.ok().map(|Path(id)| id);
                    download(&shared, kind, &method, &headers, id)
                },
            ),
        );
    }
    router
        .route(
            EMAIL_MESSAGES_ROUTE,
            get(
                |State(shared): State<Arc<Shared>>,
                 method: Method,
                 headers: HeaderMap,
                 query: FileQuery| async move {
                    // ❓ `direction`, `page_size` and `next_page_token` are ignored: every message, oldest first,
                    // on one page.
                    let id = query
                        .ok()
                        .and_then(|Query(mut q)| q.remove("engagement_id"))
                        .filter(|id| !id.is_empty());
                    download(&shared, FileKind::EmailMessages, &method, &headers, id)
                },
            ),
        )
        .route(&format!("{LINK_PREFIX}/{{link}}"), get(follow_link))
}

/// A Zoom download URL: Bearer check, existence, then the bytes or (with `download_redirect`) a 302 to a link.
fn download(
    shared: &Arc<Shared>,
    kind: FileKind,
    method: &Method,
    headers: &HeaderMap,
    id: Option<String>,
) -> Response {
    Counters::bump(&shared.counters.download_requests);
    let faults = (
        shared.config.download_fault_5xx_rate,
        shared.config.download_fault_429_rate,
    );
    if let Err(error) = shared.inject_fault(faults.0, faults.1, super::RateLabel::Light) {
        let mut response = error.into_response();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
        }
        return response;
    }
    if let Err(error) = shared.authorize(headers) {
        return error.into_response();
    }
    let Some(id) = id else {
        return not_found(FILE_NOT_FOUND).into_response();
    };
    let key = (kind, id);
    let file = match shared.available_file(&key) {
        Ok(file) => file,
        Err(error) => return error.into_response(),
    };
    if !shared.config.download_redirect {
        return transfer(shared, key, &file, method, headers);
    }
    let link = {
        let mut rng = rand::rng();
        format!("{}{}", opaque_id(&mut rng), opaque_id(&mut rng))
    };
    {
        let mut links = lock(&shared.links);
        let now = Instant::now();
        // Forget links dead for a whole TTL, so a long archive run does not grow the map without bound.
        links.retain(|_, l| later(l.expires, shared.config.download_link_ttl) > now);
        links.insert(
            link.clone(),
            Link {
                key,
                expires: later(now, shared.config.download_link_ttl),
            },
        );
    }
    Counters::bump(&shared.counters.download_redirects);
    let location = format!("{}{LINK_PREFIX}/{link}", shared.base_url);
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        // The base URL is `http://ip:port` and the link url-safe, so this cannot happen; answer rather than panic.
        Err(_) => {
            zoom_error(StatusCode::INTERNAL_SERVER_ERROR, 500, "Bad redirect").into_response()
        }
    }
}

/// A redirect link: no auth (like a signed CDN URL), valid until it expires.
async fn follow_link(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    link: Result<Path<String>, PathRejection>,
) -> Response {
    let found = link
        .ok()
        .and_then(|Path(link)| lock(&shared.links).get(&link).cloned())
        .filter(|l| Instant::now() < l.expires);
    let Some(link) = found else {
        return zoom_error(
            StatusCode::FORBIDDEN,
            FILE_LINK_INVALID_CODE,
            FILE_LINK_INVALID,
        )
        .into_response();
    };
    match shared.view.files.get(&link.key).cloned() {
        Some(file) => transfer(&shared, link.key, &file, &method, &headers),
        None => not_found(FILE_NOT_FOUND).into_response(),
    }
}

fn not_found(message: &str) -> ZoomError {
    zoom_error(StatusCode::NOT_FOUND, FILE_NOT_FOUND_CODE, message)
}

impl Shared {
    /// The file if it can be fetched now: it exists (its announcing event fired, by the wall clock under
    /// `completed_only`) and `media_processing_delay` has passed since the server started.
    fn available_file(&self, key: &FileKey) -> Result<FileInfo, ZoomError> {
        let file = self
            .view
            .files
            .get(key)
            .filter(|f| self.exists(f.ready_ms, Utc::now().timestamp_millis()))
            .ok_or_else(|| not_found(FILE_NOT_FOUND))?;
        if Instant::now() < later(self.started, self.config.media_processing_delay) {
            return Err(not_found(FILE_NOT_READY));
        }
        Ok(file.clone())
    }
}

/// A file's bytes: pseudo-random media computed on the fly from `(kind, id)` at any offset, or a small text.
#[derive(Debug, Clone)]
enum Content {
    Media { seed: u64, len: u64 },
    Text(Bytes),
}

impl Content {
    fn of(key: &FileKey, file: &FileInfo, media_bytes: u64) -> Content {
        let seed = stable_hash(&[key.0.tag().as_bytes(), key.1.as_bytes()]);
        if key.0 == FileKind::EmailMessages {
            Content::Text(email_messages(key, seed, file))
        } else if key.0.is_transcript() {
            Content::Text(transcript(key, seed, file.duration_s))
        } else {
            Content::Media {
                seed,
                len: media_bytes,
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Content::Media { len, .. } => *len,
            Content::Text(text) => text.len() as u64,
        }
    }

    fn seed(&self) -> u64 {
        match self {
            Content::Media { seed, .. } => *seed,
            Content::Text(text) => stable_hash(&[text]),
        }
    }

    /// `len` bytes from `offset` (the caller keeps them within the file).
    fn chunk(&self, offset: u64, len: u64) -> Bytes {
        match self {
            Content::Text(text) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                let end = usize::try_from(offset.saturating_add(len))
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                text.slice(start..end)
            }
            Content::Media { seed, .. } => {
                let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                let end = offset.saturating_add(len);
                let mut pos = offset;
                while pos < end {
                    // Byte `p` is byte `p % 8` of the SplitMix64 output number `p / 8`: random access, so a range
                    // request costs no more than its own length.
                    let word =
                        mix(seed.wrapping_add((pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                            .to_le_bytes();
                    let from = (pos % 8) as usize;
                    let take = (8 - from).min(usize::try_from(end - pos).unwrap_or(8));
                    out.extend_from_slice(&word[from..from + take]);
                    pos += take as u64;
                }
                Bytes::from(out)
            }
        }
    }
}

/// A WebVTT-like transcript of a few KiB, deterministic in `(kind, id)`. ❓ Zoom's transcript format is not
/// documented (community reports: VTT-like text served as `application/octet-stream`).
fn transcript(key: &FileKey, seed: u64, duration_s: i64) -> Bytes {
    use std::fmt::Write as _;
    let cues = 24 + seed % 40;
    let span_ms = (duration_s.max(0) as u64)
        .saturating_mul(1000)
        .max(cues * 3000);
    let step = span_ms / cues;
    let stamp = |ms: u64| {
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut out = format!("WEBVTT\n\nNOTE zoom-sim {} {}\n\n", key.0.tag(), key.1);
    for i in 0..cues {
        let h = mix(seed.wrapping_add(i));
        let speaker = if i % 2 == 0 { "Agent" } else { "Customer" };
        let line = LINES[(h % LINES.len() as u64) as usize];
        let start = i * step;
        let end = start + step.saturating_sub(200).max(500);
        let _ = write!(
            out,
            "{}\n{} --> {}\n{speaker}: {line}\n\n",
            i + 1,
            stamp(start),
            stamp(end)
        );
    }
    Bytes::from(out)
}

/// An e-mail engagement's messages as the messages API returns them (reference §1.9: `messages[]` of `{message_id,
/// content: {type, value}, sent_time, sender_participant_id, sender_participant_name, message_type}` plus e-mail's
/// `message_channel`, then `has_more` and `next_page_token`), deterministic in `(kind, id)`: the consumer writes, the
/// agent answers, spread over the engagement. ❓ The shape of e-mail messages is known only from generated types.
fn email_messages(key: &FileKey, seed: u64, file: &FileInfo) -> Bytes {
    let count = 2 + seed % 5;
    let span_ms = file.duration_s.max(60).saturating_mul(1000);
    let step = span_ms / i64::try_from(count).unwrap_or(1);
    let messages: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            let h = mix(seed.wrapping_add(i));
            let (sender, name) = if i % 2 == 0 {
                ("consumer", "Customer")
            } else {
                ("agent", "Agent")
            };
            let at = file.from_ms + step * i64::try_from(i).unwrap_or(0);
            serde_json::json!({
                "message_id": format!("{}-{i}", key.1),
                "content": {"type": "text", "value": LINES[(h % LINES.len() as u64) as usize]},
                "sent_time": crate::iso_time(at),
                "sender_participant_id": format!("{sender}-{}", key.1),
                "sender_participant_name": name,
                "message_type": "general",
                "message_channel": "email",
            })
        })
        .collect();
    let body = serde_json::json!({"messages": messages, "has_more": false, "next_page_token": ""});
    Bytes::from(body.to_string())
}

/// `Range` of a request against a file of `total` bytes: `Ok(None)` for the whole file (no header, or one the
/// server may ignore: several ranges, a malformed one), `Ok(Some((start, end_exclusive)))`, or `Err(())` for 416.
fn requested_range(headers: &HeaderMap, total: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `bytes=-n`: the last n bytes.
        return match last.parse::<u64>() {
            Ok(0) => Err(()),
            Ok(_) if total == 0 => Err(()),
            Ok(n) => Ok(Some((total - n.min(total), total))),
            Err(_) => Ok(None),
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return Ok(None);
    };
    let end = if last.is_empty() {
        total
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last.saturating_add(1).min(total),
            _ => return Ok(None),
        }
    };
    if first >= total {
        return Err(());
    }
    Ok(Some((first, end)))
}

/// Streams `file` (or the requested range of it) with its headers.
fn transfer(
    shared: &Arc<Shared>,
    key: FileKey,
    file: &FileInfo,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let content = Content::of(&key, file, shared.config.media_bytes);
    let total = content.len();
    let range = match requested_range(headers, total) {
        Ok(range) => range,
        Err(()) => {
            let mut response = zoom_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                416,
                "The requested range is not satisfiable.",
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let (start, end) = range.unwrap_or((0, total));
    let head = method == Method::HEAD;
    // A HEAD is not a download attempt: it neither uses up the file's one cut nor counts as a transfer.
    let cut_at = shared
        .config
        .cut_first_download_after
        .filter(|_| !head && lock(&shared.cut_done).insert(key.clone()));
    if !head {
        Counters::bump(&shared.counters.downloads);
    }
    let extension = match file.content_type {
        "video/mp4" => "mp4",
        "text/vtt" => "vtt",
        "application/json" => "json",
        _ => "mp3",
    };
    let mut response_headers = HeaderMap::new();
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    };
    set(CONTENT_TYPE, file.content_type.to_owned());
    set(CONTENT_LENGTH, (end - start).to_string());
    set(ACCEPT_RANGES, "bytes".to_owned());
    set(ETAG, format!("\"{:016x}-{total}\"", content.seed()));
    set(
        CONTENT_DISPOSITION,
        format!("attachment; filename=\"{}.{extension}\"", key.1),
    );
    let status = if range.is_some() {
        set(
            CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", end.saturating_sub(1)),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(futures_util::stream::unfold(
        Transfer {
            shared: shared.clone(),
            content,
            pos: start,
            end,
            sent: 0,
            cut_at,
            rate: shared
                .config
                .download_bytes_per_second
                .filter(|&rate| rate > 0),
            started: tokio::time::Instant::now(),
            aborted: false,
        },
        Transfer::next,
    ));
    (status, response_headers, body).into_response()
}

/// The state of one streamed body.
struct Transfer {
    shared: Arc<Shared>,
    content: Content,
    /// Next file offset to send, and the end (exclusive).
    pos: u64,
    end: u64,
    /// Body bytes sent so far.
    sent: u64,
    /// Abort the body after this many bytes.
    cut_at: Option<u64>,
    rate: Option<u64>,
    started: tokio::time::Instant,
    aborted: bool,
}

impl Transfer {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Transfer)> {
        if self.aborted || self.pos >= self.end {
            return None;
        }
        if self.cut_at.is_some_and(|cut| self.sent >= cut) {
            // An error mid-body makes the server drop the connection short of Content-Length, as a network failure
            // would. Pausing first lets hyper flush what it buffered, so the client does receive the bytes before
            // the break (rather than a connection closed before the response head).
            tokio::time::sleep(CUT_FLUSH_PAUSE).await;
            self.aborted = true;
            Counters::bump(&self.shared.counters.downloads_cut);
            let error = std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "zoom-sim: first download attempt cut",
            );
            return Some((Err(error), self));
        }
        let chunk_size = match self.rate {
            // About 16 chunks a second, so a throttled transfer flows rather than stalls and bursts.
            Some(rate) => (rate / 16).clamp(1, CHUNK),
            None => CHUNK,
        };
        let mut len = chunk_size.min(self.end - self.pos);
        if let Some(cut) = self.cut_at {
            len = len.min(cut - self.sent);
        }
        let chunk = self.content.chunk(self.pos, len);
        if let Some(rate) = self.rate {
            // Paced against the transfer's start, so sleep overshoot does not accumulate.
            let due = (self.sent + len) as f64 / rate as f64;
            let due =
                std::time::Duration::try_from_secs_f64(due).unwrap_or(std::time::Duration::MAX);
            if let Some(at) = self.started.checked_add(due) {
                tokio::time::sleep_until(at).await;
            }
        }
        self.pos += len;
        self.sent += len;
        Counters::add(&self.shared.counters.download_bytes, len);
        Some((Ok(chunk), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, total: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(value).expect("ascii"));
        requested_range(&headers, total)
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(requested_range(&HeaderMap::new(), 100), Ok(None));
        assert_eq!(range("bytes=10-", 100), Ok(Some((10, 100))));
        assert_eq!(range("bytes=10-19", 100), Ok(Some((10, 20))));
        assert_eq!(range("bytes=90-500", 100), Ok(Some((90, 100))));
        assert_eq!(range("bytes=-30", 100), Ok(Some((70, 100))));
        assert_eq!(range("bytes=-300", 100), Ok(Some((0, 100))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=-0", 100), Err(()));
        assert_eq!(range("bytes=0-", 0), Err(()));
        // Ignorable: several ranges, reversed or malformed ones, other units.
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("bytes=20-10", 100), Ok(None));
        assert_eq!(range("bytes=x-", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
    }

    #[test]
    fn media_bytes_are_random_access() {
        let content = Content::Media { seed: 7, len: 1000 };
        let whole = content.chunk(0, 1000);
        assert_eq!(whole.len(), 1000);
        for (offset, len) in [(0, 1), (3, 17), (8, 8), (999, 1), (123, 500)] {
            let part = content.chunk(offset, len);
            assert_eq!(&part[..], &whole[offset as usize..(offset + len) as usize]);
        }
        let other = Content::Media { seed: 8, len: 1000 }.chunk(0, 1000);
        assert_ne!(whole, other);
    }

    #[test]
    fn transcripts_are_deterministic_small_webvtt() {
        let key = (FileKind::RecordingTranscript, "abc".to_owned());
        let seed = stable_hash(&[b"x"]);
        let text = transcript(&key, seed, 300);
        assert_eq!(text, transcript(&key, seed, 300));
        assert!(text.starts_with(b"WEBVTT\n"));
        assert!((1024..8 * 1024).contains(&text.len()), "{}", text.len());
        assert!(!transcript(&key, seed, i64::MAX).is_empty());
    }
}
