//! `/media/{kind}/{item_id}`: archived files behind signed, expiring links, with byte ranges (an audio player
//! seeks with them); and the admin API over the archive (`/api/v1/media*`).

use std::ops::Range;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem};
use super::params::{decode_cursor, list_limit_and_state, next_cursor};
use super::AppState;
use crate::core::media::media_id;
use crate::core::{EngagementRecord, MediaKind};
use crate::media::links::LinkError;
use crate::store::media::{MEDIA_ARCHIVED, MEDIA_EXPIRED, MEDIA_STATES};
use crate::store::{now_ms, MediaQuery, StoreError};

/// Fills in the records' `media` views (no-op when the archive is off).
pub(super) async fn attach(
    app: &AppState,
    records: &mut [EngagementRecord],
) -> Result<(), StoreError> {
    match &app.media {
        Some(links) => links.attach(&*app.store, records).await,
        None => Ok(()),
    }
}

/// The signature of a media link (as handed out in records).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LinkParams {
    /// Epoch seconds after which the link no longer works.
    expires: Option<i64>,
    /// HMAC of the file and `expires`.
    signature: Option<String>,
}

/// What a `Range` header asks for, against a file of `total` bytes (RFC 9110 §14.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one we may ignore (several ranges, bad syntax): the whole file.
    Full,
    Partial(Range<u64>),
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, total: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    // Digits only; a position too large for u64 is still a valid one, past any file's end (RFC 9110 §14.1.2:
    // a last position beyond the end is clamped to it).
    let parse = |v: &str| {
        (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(n) if n > 0 && total > 0 => RangeRequest::Partial(total.saturating_sub(n)..total),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        // bytes=A-: from A to the end.
        (false, true) => match parse(first) {
            Some(a) if a < total => RangeRequest::Partial(a..total),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= total {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial(a..b.saturating_add(1).min(total))
                }
            }
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

/// How long the link a durable link redirects to lives (at most `media.link_ttl_seconds`).
const PERMALINK_REDIRECT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// `GET /media/{kind}/{item_id}/permalink/{token}`: a durable link, as systems of record keep it. While the file
/// is archived it redirects (307, not cached) to a fresh short-lived link; once retention has deleted the file
/// it answers 410; a revoked or wrong token (or an unknown file: no existence oracle) gets 403.
///
/// A mode in which the viewer must also be signed in to the console belongs here, before the redirect, once the
/// console exists.
#[utoipa::path(get, path = "/media/{kind}/{item_id}/permalink/{token}", tag = "media links",
    params(
        ("kind" = String, Path, description = "`recording`, `recording_transcript`, `voicemail`, `voicemail_transcript`, ..."),
        ("item_id" = String, Path, description = "Zoom's id of the file's item"),
        ("token" = String, Path, description = "The durable link's token"),
    ),
    security(()),
    responses(
        (status = 307, description = "To a fresh short-lived link"),
        (status = 403, description = "The link is not valid (or revoked)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No archive, no such kind, or the file is not archived yet", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Deleted by the retention policy", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn permalink(
    State(app): State<AppState>,
    Path((kind, item_id, token)): Path<(String, String, String)>,
) -> Response {
    let Some(links) = &app.media else {
        return ApiError::response(StatusCode::NOT_FOUND, "the media archive is turned off");
    };
    let Some(kind) = MediaKind::parse(&kind) else {
        return ApiError::response(StatusCode::NOT_FOUND, "no such media kind");
    };
    let row = match app.store.media_row(&media_id(kind, &item_id)).await {
        Ok(row) => row,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let valid = row.as_ref().is_some_and(|row| {
        links
            .signer()
            .verify_permalink(kind, &item_id, row.link_generation, &token)
            .is_ok()
    });
    let Some(row) = row.filter(|_| valid) else {
        metrics::counter!("zcc_media_link_refused_total", "reason" => "permalink").increment(1);
        tracing::warn!(kind = kind.as_str(), item_id = ?item_id, "durable media link refused");
        return ApiError::response(
            StatusCode::FORBIDDEN,
            "the link is not valid (it may have been revoked)",
        );
    };
    if row.state == MEDIA_EXPIRED {
        return ApiError::response(
            StatusCode::GONE,
            "the file was deleted by the retention policy",
        );
    }
    let ttl = PERMALINK_REDIRECT_TTL.min(links.signer().ttl());
    match links.fresh_link(&row, ttl).await {
        (Some(url), _) => {
            metrics::counter!("zcc_media_permalink_redirects_total").increment(1);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [
                    (header::LOCATION, url),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
            )
                .into_response()
        }
        (None, _) => ApiError::response(StatusCode::NOT_FOUND, "the file is not archived (yet)"),
    }
}

/// One file (`kind` and `item_id`) or every file (`all: true`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    /// `recording`, `recording_transcript`, ... with `item_id`; or `all: true`.
    kind: Option<String>,
    item_id: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /api/v1/media/permalinks/revoke` with `{"kind": "...", "item_id": "..."}` (one file) or `{"all": true}`:
/// the durable links handed out so far stop working; records and later deliveries carry new ones.
#[utoipa::path(post, path = "/api/v1/media/permalinks/revoke", tag = "media", request_body = RevokeBody,
    responses(
        (status = 200, description = "`revoked`: how many files' links", body = Object),
        (status = 400, description = "Not one file or all", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file in the archive", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn revoke_permalinks(
    State(app): State<AppState>,
    body: Result<Json<RevokeBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return ApiError::response(StatusCode::BAD_REQUEST, rejection.body_text())
        }
    };
    let target = match (body.all, body.kind.as_deref(), body.item_id.as_deref()) {
        (true, None, None) => None,
        (false, Some(kind), Some(item_id)) => match MediaKind::parse(kind) {
            Some(kind) => Some(media_id(kind, item_id)),
            None => return ApiError::response(StatusCode::BAD_REQUEST, "unknown media kind"),
        },
        _ => {
            return ApiError::response(
                StatusCode::BAD_REQUEST,
                "give either kind and item_id, or all: true",
            )
        }
    };
    match app.store.media_revoke_links(target.as_deref()).await {
        Ok(0) if target.is_some() => {
            ApiError::response(StatusCode::NOT_FOUND, "no such file in the archive")
        }
        Ok(revoked) => {
            tracing::info!(
                revoked,
                all = target.is_none(),
                "durable media links revoked"
            );
            Json(json!({ "revoked": revoked })).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Whether an `If-None-Match` / `If-Range` value names `etag` (`*` matches any; `W/` tags match weakly only).
pub fn etag_matches(condition: &str, etag: &str, strong: bool) -> bool {
    let condition = condition.trim();
    if condition == "*" {
        return !strong;
    }
    condition.split(',').map(str::trim).any(|tag| {
        let weak = tag.starts_with("W/");
        let opaque = tag.trim_start_matches("W/");
        opaque == etag && !(strong && weak)
    })
}

/// An archived file behind a signed, expiring link, with byte ranges and entity tags.
#[utoipa::path(get, path = "/media/{kind}/{item_id}", tag = "media links",
    params(
        ("kind" = String, Path, description = "`recording`, `recording_transcript`, `voicemail`, `voicemail_transcript`, ..."),
        ("item_id" = String, Path, description = "Zoom's id of the file's item"),
        LinkParams,
    ),
    security(()),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 403, description = "Missing, wrong or expired signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No archive, no such kind, or not archived", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Deleted by the retention policy", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range not satisfiable", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The object store could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn serve(
    State(app): State<AppState>,
    Path((kind, item_id)): Path<(String, String)>,
    params: Result<Query<LinkParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Some(links) = &app.media else {
        return ApiError::response(StatusCode::NOT_FOUND, "the media archive is turned off");
    };
    let Some(kind) = MediaKind::parse(&kind) else {
        return ApiError::response(StatusCode::NOT_FOUND, "no such media kind");
    };
    let (expires, signature) = match params {
        Ok(Query(LinkParams {
            expires: Some(e),
            signature: Some(s),
        })) => (e, s),
        _ => {
            return ApiError::response(
                StatusCode::FORBIDDEN,
                "a signed link is required (expires, signature)",
            )
        }
    };
    if let Err(e) = links
        .signer()
        .verify(kind, &item_id, expires, &signature, now_ms() / 1000)
    {
        metrics::counter!("zcc_media_link_refused_total", "reason" => match e {
            LinkError::Expired => "expired",
            LinkError::BadSignature => "signature",
        })
        .increment(1);
        tracing::warn!(kind = kind.as_str(), ?item_id, reason = %e, "media link refused");
        return ApiError::response(StatusCode::FORBIDDEN, e.to_string());
    }
    let row = match app.store.media_row(&media_id(kind, &item_id)).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return ApiError::response(StatusCode::NOT_FOUND, "no such file in the archive")
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (key, total) = match (&row.state[..], &row.object_key, row.bytes) {
        (MEDIA_ARCHIVED, Some(key), Some(bytes)) => (key.clone(), bytes.max(0) as u64),
        (MEDIA_EXPIRED, _, _) => {
            return ApiError::response(
                StatusCode::GONE,
                "the file was deleted by the retention policy",
            )
        }
        _ => return ApiError::response(StatusCode::NOT_FOUND, "the file is not archived (yet)"),
    };
    let etag = row.sha256.as_ref().map(|sha| format!("\"{sha}\""));
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    // A client that holds this version gets 304 and no body (RFC 9110 §13.1.2: weak comparison).
    if let (Some(condition), Some(etag)) = (text(header::IF_NONE_MATCH), &etag) {
        if etag_matches(condition, etag, false) {
            metrics::counter!("zcc_media_served_total", "status" => "304").increment(1);
            let remaining = (expires - now_ms() / 1000).max(0);
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(etag) {
                h.insert(header::ETAG, v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("private, max-age={remaining}")) {
                h.insert(header::CACHE_CONTROL, v);
            }
            return response;
        }
    }
    // `If-Range`: the range applies only to the version the client has (strong comparison); otherwise the whole
    // file is sent. A date cannot match: no Last-Modified is sent.
    let range_header = match (text(header::IF_RANGE), &etag) {
        (Some(condition), Some(etag)) if !etag_matches(condition, etag, true) => None,
        (Some(_), None) => None,
        _ => text(header::RANGE),
    };
    let range = parse_range(range_header, total);
    let (status, range) = match range {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the requested range is not satisfiable",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let object = match links.archive().get(&key, range.clone()).await {
        Ok(object) => object,
        Err(e) => {
            tracing::error!(media_id = ?row.media_id, error = %format!("{e:#}"), "reading an archived file failed");
            return ApiError::response(StatusCode::BAD_GATEWAY, "the archive could not be read");
        }
    };
    let length = range.as_ref().map_or(total, |r| r.end - r.start);
    let mut response_headers = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response_headers.insert(name, v);
        }
    };
    set(
        header::CONTENT_TYPE,
        row.content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
    );
    set(header::CONTENT_LENGTH, length.to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    if let Some(etag) = &etag {
        set(header::ETAG, etag.clone());
    }
    let remaining = (expires - now_ms() / 1000).max(0);
    set(
        header::CACHE_CONTROL,
        format!("private, max-age={remaining}"),
    );
    let file_name = key.rsplit('/').next().unwrap_or("file");
    set(
        header::CONTENT_DISPOSITION,
        format!("inline; filename=\"{file_name}\""),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    if let Some(r) = &range {
        set(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{total}", r.start, r.end.saturating_sub(1)),
        );
    }
    metrics::counter!("zcc_media_served_total", "status" => status.as_str().to_string())
        .increment(1);
    let body = Body::from_stream(
        object
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other)),
    );
    (status, response_headers, body).into_response()
}

/// Filters of `GET /api/v1/media`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// `pending`, `archived`, `dead` or `expired`.
    #[param(pattern = "^(pending|archived|dead|expired)$")]
    state: Option<String>,
    /// `recording`, `recording_transcript`, `voicemail`, ...
    kind: Option<String>,
    engagement_id: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Archive jobs and files, by media id, with filters.
#[utoipa::path(get, path = "/api/v1/media", tag = "media", params(ListParams),
    responses(
        (status = 200, description = "`media` (each file's job and its `media` view) and `next_cursor`", body = Object),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(app): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let limit = match list_limit_and_state(p.limit, p.state.as_deref(), &MEDIA_STATES) {
        Ok(limit) => limit,
        Err(e) => return e.into_response(),
    };
    let kind = match p.kind.as_deref().map(MediaKind::parse) {
        Some(None) => {
            return ApiError::response(StatusCode::BAD_REQUEST, "kind: unknown media kind")
        }
        Some(k) => k,
        None => None,
    };
    let after = match decode_cursor(p.cursor.as_deref()) {
        Ok(after) => after,
        Err(e) => return e.into_response(),
    };
    let query = MediaQuery {
        state: p.state,
        kind,
        engagement_id: p.engagement_id,
        after,
        limit,
    };
    let rows = match app.store.media_list(&query).await {
        Ok(rows) => rows,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let next = next_cursor(&rows, limit, |r| r.media_id.clone());
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut item = serde_json::to_value(row).unwrap_or_default();
        if let (Some(links), Some(obj)) = (&app.media, item.as_object_mut()) {
            obj.insert(
                "media".into(),
                serde_json::to_value(links.view(row).await).unwrap_or_default(),
            );
        }
        items.push(item);
    }
    Json(json!({"media": items, "next_cursor": next})).into_response()
}

/// Files by kind and state, bytes archived, the oldest pending job.
#[utoipa::path(get, path = "/api/v1/media/stats", tag = "media",
    responses((status = 200, description = "Counts", body = Object)))]
pub(super) async fn stats(State(app): State<AppState>) -> Response {
    match app.store.media_stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The files to retry (absent: every dead file).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RetryBody {
    /// Media ids to retry; absent: every dead file.
    ids: Option<Vec<String>>,
}

/// Puts dead (or the given) archive jobs back in the queue with a fresh budget.
#[utoipa::path(post, path = "/api/v1/media/retry", tag = "media", request_body(content = Option<RetryBody>, description = "Optional: `ids`"),
    responses(
        (status = 200, description = "`requeued`: how many", body = Object),
        (status = 400, description = "Not a retry request", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn retry(
    State(app): State<AppState>,
    body: Result<Json<RetryBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(JsonRejection::MissingJsonContentType(_)) => RetryBody::default(),
        Err(r) => return ApiError::response(StatusCode::BAD_REQUEST, r.body_text()),
    };
    match app.store.media_requeue(body.ids.as_deref(), now_ms()).await {
        Ok(n) => {
            tracing::info!(requeued = n, "archive jobs put back in the queue");
            Json(json!({"requeued": n})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Partial(0..10));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Partial(90..100));
        assert_eq!(parse_range(Some("bytes=50-"), 100), Partial(50..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Partial(0..100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(parse_range(Some("bytes=9-1"), 100), Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), Full);
        // Positions past u64 are valid positions past the end: clamped, or unsatisfiable for a first position.
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551615"), 100),
            Partial(0..100)
        );
        assert_eq!(
            parse_range(Some("bytes=10-999999999999999999999999"), 100),
            Partial(10..100)
        );
        assert_eq!(
            parse_range(Some("bytes=-999999999999999999999999"), 100),
            Partial(0..100)
        );
        assert_eq!(
            parse_range(Some("bytes=999999999999999999999999-"), 100),
            Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=+1-5"), 100), Full);
    }

    #[test]
    fn entity_tags_compare() {
        let etag = "\"abc\"";
        assert!(etag_matches("\"abc\"", etag, false));
        assert!(etag_matches("W/\"abc\"", etag, false));
        assert!(!etag_matches("W/\"abc\"", etag, true));
        assert!(etag_matches("\"x\", \"abc\"", etag, false));
        assert!(etag_matches("*", etag, false));
        assert!(!etag_matches("\"abcd\"", etag, false));
        assert!(!etag_matches("abc", etag, false));
    }

    proptest! {
        /// Whatever the header, a partial range lies inside the file and is not empty.
        #[test]
        fn ranges_stay_inside_the_file(header in "(bytes=)?[0-9]{0,4}-?[0-9]{0,4}", total in 0u64..5000) {
            if let RangeRequest::Partial(r) = parse_range(Some(&header), total) {
                prop_assert!(r.start < r.end && r.end <= total);
            }
        }
    }
}
