//! Streaming downloads of the files behind Zoom's `download_url`, `playback_url` and `transcript_url`
//! (recordings, voicemails, transcripts), for the media archiver.
//!
//! - One GET per call, with the client's Bearer token and, to resume, `Range: bytes=FROM-`. A refused token (401) is
//!   renewed once; nothing else is retried here: the caller (a job queue with backoff) owns retries, and
//!   [`DownloadError::is_retryable`] tells it which failures are worth one.
//! - No rate budget: Zoom documents no rate-limit label for these URLs.
//! - A separate HTTP client without a total timeout (files can be GiBs) but with a connect timeout and a read timeout
//!   ([`ClientConfig::download_read_timeout`]), so a stalled transfer fails instead of hanging. Redirects are followed
//!   (reqwest's default policy, at most 10); reqwest drops the `Authorization` header when a redirect leaves the
//!   host or port, so a CDN link never sees the token.
//! - **The token only goes to the API's origin.** A URL whose scheme, host or port differs from `api_base`'s is
//!   refused (`Refused { status: 0, .. }`) before anything is sent, not even a token fetch: URLs come from webhook
//!   payloads, and one crafted to point elsewhere must not collect the account's access token.
//! - Logs never carry the token, and URLs appear only at debug level, without their query string.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use reqwest::{Response, StatusCode, Url};

use super::client::{rate_limit_details, truncate, ClientConfig, ErrorBody, ZoomClient};
use super::error::CODE_INVALID_TOKEN;

/// Connect timeout of downloads.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of an error body is read (a CDN may answer a large HTML page).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// A file transfer under way: the response head and its body as a stream.
pub struct Download {
    /// 200, or 206 when a range was asked for and honoured.
    pub status: u16,
    /// Offset of the first body byte in the file (0 unless a range was honoured). When a range was asked for and the
    /// server answered the whole file (200), this is 0 and the caller must start over.
    pub start: u64,
    /// Full file size when the server says so (Content-Range total, else Content-Length for a 200).
    pub total: Option<u64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    /// The body. Ends with an `Err(Network)` item if the transfer breaks (connection lost, read timeout, body
    /// shorter than its Content-Length); no item follows an error. Dropping it closes the connection.
    pub body: BoxStream<'static, Result<Bytes, DownloadError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("status", &self.status)
            .field("start", &self.start)
            .field("total", &self.total)
            .field("content_type", &self.content_type)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Why a download failed (or its body broke).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// 404 or 409 (Zoom still processing the file, or gone) — carries status, Zoom code and message.
    #[error("Zoom file not available ({status}, code {code:?}): {message}")]
    NotReady {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// 429 with the parsed `Retry-After` (seconds, HTTP date or ISO-8601 date).
    #[error("Zoom rate limit on a download; retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx.
    #[error("Zoom server error {status} on a download: {message}")]
    Server { status: u16, message: String },
    /// Other 4xx (after one token renewal for 401), e.g. 403 invalid link; status 0 when the URL was refused
    /// before any request (not http(s), or not on the API's origin).
    #[error("download refused ({status}, code {code:?}): {message}")]
    Refused {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// 416: the requested range starts beyond the file.
    #[error("requested range not satisfiable (file size {total:?})")]
    RangeNotSatisfiable { total: Option<u64> },
    /// Connect/read failures, including a body cut short by the network.
    #[error("download failed: {0}")]
    Network(String),
    /// Token fetch failed.
    #[error("no Zoom access token for the download: {0}")]
    Auth(String),
}

impl DownloadError {
    /// Worth trying again later: not ready yet, rate limited, a server error or a network failure.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DownloadError::NotReady { .. }
                | DownloadError::RateLimited { .. }
                | DownloadError::Server { .. }
                | DownloadError::Network(_)
        )
    }
}

/// The download HTTP client: no total timeout, connect and read timeouts, default redirect policy.
pub(super) fn http_client(config: &ClientConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(config.download_read_timeout)
        .user_agent(concat!("zcc-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl ZoomClient {
    /// GET a Zoom file URL (absolute, as found in payloads) with the Bearer token, from byte `from` (sends
    /// `Range: bytes=from-` when `from > 0`).
    ///
    /// The URL must be http(s) on `api_base`'s origin (scheme, host and port), else it is refused with
    /// `Refused { status: 0, .. }` and nothing is sent: the token is never offered to another host. A 401 renews
    /// the token once; every other failure is returned for the caller to retry (see
    /// [`DownloadError::is_retryable`]). A 200 answering a ranged request has `start == 0`: the caller starts over.
    pub async fn download(&self, url: &str, from: u64) -> Result<Download, DownloadError> {
        let target = self.download_target(url)?;
        let shown = without_query(&target);
        let mut renewed_token = false;
        loop {
            let token = self
                .access_token()
                .await
                .map_err(|e| DownloadError::Auth(e.to_string()))?;
            let mut request = self.downloads.get(target.clone()).bearer_auth(&token);
            if from > 0 {
                request = request.header(RANGE, format!("bytes={from}-"));
            }
            tracing::debug!(url = %shown, from, "downloading a Zoom file");
            let response = request.send().await.map_err(network)?;
            let status = response.status();
            match status {
                StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                    return head(response, from, &shown);
                }
                StatusCode::UNAUTHORIZED => {
                    let (code, message) = error_body(response).await;
                    if !renewed_token && code.is_none_or(|c| c == CODE_INVALID_TOKEN) {
                        // Expired early or revoked: one fresh token, then give up.
                        renewed_token = true;
                        self.invalidate(&token).await;
                        continue;
                    }
                    return Err(DownloadError::Refused {
                        status: status.as_u16(),
                        code,
                        message,
                    });
                }
                StatusCode::NOT_FOUND | StatusCode::CONFLICT => {
                    let (code, message) = error_body(response).await;
                    return Err(DownloadError::NotReady {
                        status: status.as_u16(),
                        code,
                        message,
                    });
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    let (_, _, retry_after) = rate_limit_details(&response);
                    return Err(DownloadError::RateLimited { retry_after });
                }
                StatusCode::RANGE_NOT_SATISFIABLE => {
                    let total = header(&response, CONTENT_RANGE)
                        .and_then(|v| parse_content_range(&v))
                        .and_then(|r| r.total);
                    return Err(DownloadError::RangeNotSatisfiable { total });
                }
                _ if status.is_server_error() => {
                    let (_, message) = error_body(response).await;
                    return Err(DownloadError::Server {
                        status: status.as_u16(),
                        message,
                    });
                }
                _ => {
                    // Other 4xx, and oddities (204, a 3xx without a usable Location).
                    let (code, message) = error_body(response).await;
                    return Err(DownloadError::Refused {
                        status: status.as_u16(),
                        code,
                        message,
                    });
                }
            }
        }
    }

    /// `url` parsed, if the token may be sent to it: http(s), on `api_base`'s scheme, host and port.
    fn download_target(&self, url: &str) -> Result<Url, DownloadError> {
        let refuse = |message: String| DownloadError::Refused {
            status: 0,
            code: None,
            message,
        };
        let target = Url::parse(url.trim())
            .map_err(|e| refuse(format!("not an absolute download URL: {e}")))?;
        if !matches!(target.scheme(), "http" | "https") || target.host_str().is_none() {
            return Err(refuse(format!(
                "not an http(s) download URL (scheme {})",
                target.scheme()
            )));
        }
        let api = Url::parse(&self.config.api_base)
            .map_err(|e| refuse(format!("api_base is not a URL: {e}")))?;
        if !same_origin(&target, &api) {
            return Err(refuse(format!(
                "refusing to send the Zoom token to {}: download URLs must be on {}",
                origin(&target),
                origin(&api)
            )));
        }
        Ok(target)
    }
}

/// Same scheme, host and port (a default port equals its explicit form).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `scheme://host[:port]`.
fn origin(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out
}

/// The URL without its query string and fragment (for logs and messages: a signed link's query is a credential).
fn without_query(url: &Url) -> String {
    format!("{}{}", origin(url), url.path())
}

/// A 200/206 response as a [`Download`].
fn head(response: Response, from: u64, shown: &str) -> Result<Download, DownloadError> {
    let status = response.status();
    let length = response.content_length();
    let (start, total) = if status == StatusCode::PARTIAL_CONTENT {
        let value = header(&response, CONTENT_RANGE).unwrap_or_default();
        match parse_content_range(&value) {
            Some(ContentRange {
                range: Some((start, _)),
                total,
            }) if start == from => (start, total),
            _ => {
                return Err(DownloadError::Network(format!(
                    "unexpected Content-Range {value:?} for a download from byte {from}"
                )))
            }
        }
    } else {
        if from > 0 {
            tracing::debug!(url = %shown, from, "the server ignored the range; the whole file follows");
        }
        (0, length)
    };
    Ok(Download {
        status: status.as_u16(),
        start,
        total,
        content_type: header(&response, CONTENT_TYPE),
        etag: header(&response, ETAG),
        body: body(response, length),
    })
}

/// The body as a stream of chunks; a body that ends short of its Content-Length ends with a `Network` error.
fn body(
    response: Response,
    expected: Option<u64>,
) -> BoxStream<'static, Result<Bytes, DownloadError>> {
    struct Transfer {
        response: Option<Response>,
        received: u64,
        expected: Option<u64>,
    }
    let transfer = Transfer {
        response: Some(response),
        received: 0,
        expected,
    };
    stream::unfold(transfer, |mut transfer| async move {
        loop {
            let response = transfer.response.as_mut()?;
            match response.chunk().await {
                Ok(Some(chunk)) if chunk.is_empty() => continue,
                Ok(Some(chunk)) => {
                    transfer.received += chunk.len() as u64;
                    return Some((Ok(chunk), transfer));
                }
                Ok(None) => {
                    transfer.response = None;
                    return match transfer.expected {
                        Some(expected) if transfer.received < expected => {
                            let error = DownloadError::Network(format!(
                                "body ended after {} of {expected} bytes",
                                transfer.received
                            ));
                            Some((Err(error), transfer))
                        }
                        _ => None,
                    };
                }
                Err(error) => {
                    transfer.response = None;
                    return Some((Err(network(error)), transfer));
                }
            }
        }
    })
    .boxed()
}

/// A reqwest failure as `Network`, with its causes (connection refused, timed out, ...) but without the URL.
fn network(error: reqwest::Error) -> DownloadError {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    DownloadError::Network(message)
}

fn header(response: &Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Zoom's `{code, message}` of an error response, or the start of whatever body it has.
async fn error_body(mut response: Response) -> (Option<i64>, String) {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let message = parsed.and_then(|b| b.message).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body);
        if text.trim().is_empty() {
            status.to_string()
        } else {
            truncate(text.trim(), 300)
        }
    });
    (code, message)
}

/// A parsed `Content-Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    /// First and last (inclusive) byte; `None` for `bytes */TOTAL` (a 416).
    range: Option<(u64, u64)>,
    /// `None` for `/*`.
    total: Option<u64>,
}

/// `bytes START-END/TOTAL`, `bytes START-END/*` or `bytes */TOTAL`.
fn parse_content_range(value: &str) -> Option<ContentRange> {
    let spec = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = spec.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse::<u64>().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        range => {
            let (first, last) = range.split_once('-')?;
            let (first, last) = (
                first.trim().parse::<u64>().ok()?,
                last.trim().parse::<u64>().ok()?,
            );
            if last < first || total.is_some_and(|t| last >= t) {
                return None;
            }
            Some((first, last))
        }
    };
    if range.is_none() && total.is_none() {
        return None;
    }
    Some(ContentRange { range, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        let parsed = |range, total| Some(ContentRange { range, total });
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            parsed(Some((100, 199)), Some(1000))
        );
        assert_eq!(
            parse_content_range("bytes 0-0/*"),
            parsed(Some((0, 0)), None)
        );
        assert_eq!(
            parse_content_range("bytes */300000"),
            parsed(None, Some(300_000))
        );
        for bad in [
            "",
            "bytes",
            "bytes */*",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes a-b/10",
            "items 0-1/10",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_token_only_goes_to_the_api_origin() {
        let api = Url::parse("https://api.zoom.us/v2").unwrap();
        let same = |u: &str| same_origin(&Url::parse(u).unwrap(), &api);
        assert!(same(
            "https://api.zoom.us/v2/contact_center/recording/download/x?type=voice"
        ));
        assert!(same("https://API.zoom.us:443/v2/x"));
        assert!(!same("http://api.zoom.us/v2/x"), "no token in clear text");
        assert!(!same("https://api.zoom.us:8443/v2/x"));
        assert!(!same("https://zoom.us/v2/x"));
        assert!(!same("https://api.zoom.us.evil.example/v2/x"));
        assert!(!same("https://evil.example/?u=https://api.zoom.us/v2"));
    }

    #[test]
    fn messages_and_logs_drop_the_query() {
        let url = Url::parse("https://cdn.example:8443/a/b?sig=secret#frag").unwrap();
        assert_eq!(without_query(&url), "https://cdn.example:8443/a/b");
    }

    #[test]
    fn retryable_errors() {
        assert!(DownloadError::Network("x".into()).is_retryable());
        assert!(DownloadError::RateLimited { retry_after: None }.is_retryable());
        assert!(DownloadError::Server {
            status: 503,
            message: String::new()
        }
        .is_retryable());
        assert!(DownloadError::NotReady {
            status: 404,
            code: None,
            message: String::new()
        }
        .is_retryable());
        assert!(!DownloadError::RangeNotSatisfiable { total: Some(1) }.is_retryable());
        assert!(!DownloadError::Auth("x".into()).is_retryable());
        assert!(!DownloadError::Refused {
            status: 403,
            code: None,
            message: String::new()
        }
        .is_retryable());
    }
}
