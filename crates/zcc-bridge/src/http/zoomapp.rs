//! `/zoomapp/*`: the Contact Center Zoom App. The Home URL (`GET /zoomapp/`) and the panel's files, the panel's API
//! under `/zoomapp/api/` (session, workspace, engagement context, live activity, in-client OAuth), the web install
//! flow (`/zoomapp/install`, `/zoomapp/oauth/callback`) and the deauthorization endpoint (`/zoomapp/deauthorize`).
//! Every `text/html` answer carries the OWASP headers the Zoom client requires (`zoom_app::owasp`), whatever its
//! status; every answer carries `X-Content-Type-Options: nosniff`. The API is documented in `docs/zoomapp/api.md`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zoom_app::oauth::OnAuthorized;
use zoom_app::workspace::{Outcome, WorkspaceError, WorkspaceWrite};
use zoom_app::{assets, owasp};

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::stream::Filter;
use crate::zoomapp::{AppError, Session, ZoomApp, SESSION_COOKIE};

/// Largest JSON body of the panel's API (notes are at most 64 KiB; JSON escaping can double them).
const MAX_BODY: usize = 160 * 1024;
/// Largest `POST api/session` body. An app context is a few hundred bytes and is refused over 4 KiB by the
/// verifier (with its own reason); a body beyond this is not read as JSON at all.
const MAX_SESSION_BODY: usize = 8192;

pub fn router(state: AppState, connections: Arc<super::connections::Shared>) -> Router<AppState> {
    let per_ip =
        axum::middleware::from_fn_with_state(connections, super::connections::per_ip_limit);
    let deauthorize = Router::new()
        .route("/zoomapp/deauthorize", post(deauthorize))
        .layer(per_ip);
    Router::new()
        .route("/zoomapp", get(|| async { redirect("/zoomapp/") }))
        .route("/zoomapp/", get(home))
        .route("/zoomapp/{*path}", get(asset))
        .route("/zoomapp/api/session", get(get_session).post(post_session))
        .route(
            "/zoomapp/api/engagements/{id}/workspace",
            get(get_workspace).put(put_workspace),
        )
        .route("/zoomapp/api/engagements/{id}/finalize", post(finalize))
        .route("/zoomapp/api/engagements/{id}/context", get(context))
        .route("/zoomapp/api/engagements/{id}/stream", get(stream))
        .route("/zoomapp/api/oauth/authorize", post(oauth_authorize))
        .route("/zoomapp/api/oauth/authorized", post(oauth_authorized))
        .route("/zoomapp/install", get(install))
        .route("/zoomapp/oauth/callback", get(callback))
        .merge(deauthorize)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response_with_state(
            state,
            security_headers,
        ))
}

/// OWASP headers on every HTML answer (the Zoom client refuses a page without them), `nosniff` on everything,
/// and no caching of API answers.
async fn security_headers(State(_app): State<AppState>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        owasp::apply(headers);
    } else {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static(owasp::X_CONTENT_TYPE_OPTIONS_VALUE),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let (status, code) = match &e {
            AppError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            AppError::NoSession => (StatusCode::UNAUTHORIZED, "no_session"),
            AppError::Context(c) => (StatusCode::UNAUTHORIZED, c.reason()),
            AppError::NoUser => (StatusCode::UNAUTHORIZED, "no_user"),
            AppError::Workspace(WorkspaceError::BadEngagementId) => {
                (StatusCode::BAD_REQUEST, "bad_engagement_id")
            }
            AppError::Workspace(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            AppError::CorruptWorkspace(_) => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            AppError::NotYourEngagement => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::State => (StatusCode::BAD_REQUEST, "state"),
            AppError::NotAuthorized => (StatusCode::BAD_REQUEST, "not_authorized"),
            AppError::OtherUser => (StatusCode::CONFLICT, "other_user"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::NoRedirectUrl => (StatusCode::SERVICE_UNAVAILABLE, "no_redirect_url"),
            AppError::OAuth(_) => (StatusCode::BAD_GATEWAY, "zoom_oauth"),
            AppError::Seal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "seal"),
            AppError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
            AppError::Ingest(_) => (StatusCode::SERVICE_UNAVAILABLE, "event_log"),
            AppError::Notice(zoom_app::oauth::NoticeError::Signature(_)) => {
                (StatusCode::UNAUTHORIZED, "signature")
            }
            AppError::Notice(_) => (StatusCode::BAD_REQUEST, "bad_notice"),
        };
        if status.is_server_error() || status == StatusCode::BAD_GATEWAY {
            tracing::warn!(code, error = %e, "Zoom App request failed");
        } else {
            tracing::info!(code, error = %e, "Zoom App request refused");
        }
        ApiError::new(status, e.to_string()).with_code(code)
    }
}

fn zoom_app(app: &AppState) -> ApiResult<&Arc<ZoomApp>> {
    app.zoom_app
        .as_ref()
        .ok_or_else(|| ApiError::from(AppError::NotConfigured))
}

/// The session cookie's value, from any `Cookie` header.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

async fn session(app: &AppState, headers: &HeaderMap) -> ApiResult<(Arc<ZoomApp>, Session)> {
    let za = zoom_app(app)?.clone();
    let token = cookie_token(headers).ok_or(AppError::NoSession)?;
    let session = za.session(token).await?.ok_or(AppError::NoSession)?;
    Ok((za, session))
}

/// The `Set-Cookie` value of a new session. `SameSite=None; Secure` because the PWA (web) client frames the app
/// from a Zoom origin (a third-party context); `Partitioned` (CHIPS) so that browsers blocking third-party cookies
/// keep it for that embedding; `HttpOnly`: the panel never reads it.
fn session_cookie(za: &ZoomApp, token: &str) -> Option<HeaderValue> {
    let path = za.cookie_path();
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path={path}; Max-Age={}; HttpOnly; Secure; SameSite=None; Partitioned",
        za.session_max_age()
    ))
    .ok()
}

/// Writes need `Content-Type: application/json`: with no CORS answer, a page of another origin cannot send one
/// without a preflight that is never granted, so a cookie alone cannot write.
fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json")
                .with_code("json_only"),
        )
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not the expected JSON ({:?} at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
        .with_code("bad_json")
    })
}

// ---- the panel's files ------------------------------------------------------------------------------------------

/// What is served for one embedded file: its entity tag, and its gzip-compressed bytes with their own tag when
/// compression saves anything. Computed once, at first use.
struct Prepared {
    etag: String,
    gzip: Option<(Bytes, String)>,
}

fn prepared(asset: &assets::Asset) -> Option<&'static Prepared> {
    static PREPARED: OnceLock<HashMap<&'static str, Prepared>> = OnceLock::new();
    let all = PREPARED.get_or_init(|| {
        assets::ASSETS
            .iter()
            .map(|a| {
                let tag = hex::encode(Sha256::digest(a.body));
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let gzip = std::io::Write::write_all(&mut encoder, a.body)
                    .and_then(|()| encoder.finish())
                    .ok()
                    .filter(|gz| gz.len() < a.body.len())
                    .map(|gz| (Bytes::from(gz), format!("\"{}-gz\"", &tag[..32])));
                (
                    a.path,
                    Prepared {
                        etag: format!("\"{}\"", &tag[..32]),
                        gzip,
                    },
                )
            })
            .collect()
    });
    all.get(asset.path)
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// An embedded file: gzip-compressed when the client takes it, revalidated with its entity tag (304). The vendored
/// SDK's name carries its version, so it may be cached for a year; the others are revalidated at every load, and
/// the Home URL (which may set the session cookie) is never stored.
fn serve_asset(asset: &'static assets::Asset, headers: &HeaderMap) -> Response {
    let prepared = prepared(asset);
    let gzip = prepared
        .and_then(|p| p.gzip.as_ref())
        .filter(|_| accepts_gzip(headers));
    let (body, tag) = match (gzip, prepared) {
        (Some((gz, tag)), _) => (gz.clone(), tag.as_str()),
        (None, Some(p)) => (Bytes::from_static(asset.body), p.etag.as_str()),
        (None, None) => (Bytes::from_static(asset.body), "\"\""),
    };
    let cache = if asset.is_html() {
        "no-store"
    } else if asset.path == assets::VENDORED_SDK_PATH {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if matches && !asset.is_html() {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = ([(header::CONTENT_TYPE, asset.content_type)], body).into_response();
        if gzip.is_some() {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(tag) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, tag);
    }
    response
}

/// The Home URL. The desktop client sends `X-Zoom-App-Context`: a valid one opens the agent's session here (the
/// `Set-Cookie` rides on the page). Without it (the PWA client), or with one that does not verify, the page is
/// served all the same and the panel posts `getAppContext()` to `api/session`.
async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(page) = assets::get("") else {
        return ApiError::response(StatusCode::NOT_FOUND, "the panel is not embedded");
    };
    let mut response = serve_asset(page, &headers);
    let context = headers.get(zoom_app::context::HEADER);
    if let (Some(za), Some(context)) = (&app.zoom_app, context) {
        match za.open_session(context.as_bytes()).await {
            Ok(opened) => {
                if let Some(cookie) = session_cookie(za, &opened.token) {
                    response.headers_mut().insert(header::SET_COOKIE, cookie);
                }
            }
            Err(e) => {
                let reason = match &e {
                    AppError::Context(c) => c.reason(),
                    _ => "other",
                };
                metrics::counter!("zcc_zoomapp_contexts_refused_total", "reason" => reason)
                    .increment(1);
                tracing::warn!(reason, error = %e,
                    "X-Zoom-App-Context on the Home URL was refused; the panel will try getAppContext()");
            }
        }
    }
    response
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match assets::get(&path) {
        Some(asset) => serve_asset(asset, &headers),
        None => ApiError::not_found("no such file of the agent panel").into_response(),
    }
}

// ---- session ----------------------------------------------------------------------------------------------------

async fn get_session(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    Ok(Json(za.session_answer(&session).await?).into_response())
}

#[derive(Deserialize)]
struct SessionBody {
    context: String,
}

/// The PWA path: the panel posts what `zoomSdk.getAppContext()` returned.
async fn post_session(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let za = zoom_app(&app)?.clone();
    if body.len() > MAX_SESSION_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_SESSION_BODY} bytes"),
        )
        .with_code("too_large"));
    }
    require_json(&headers)?;
    let body: SessionBody = parse_json(&body)?;
    let opened = match za.open_session(body.context.as_bytes()).await {
        Ok(opened) => opened,
        Err(e) => {
            if let AppError::Context(c) = &e {
                metrics::counter!("zcc_zoomapp_contexts_refused_total", "reason" => c.reason())
                    .increment(1);
            }
            return Err(e.into());
        }
    };
    let answer = za.session_answer(&opened.session).await?;
    let mut response = Json(answer).into_response();
    if let Some(cookie) = session_cookie(&za, &opened.token) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

// ---- workspace --------------------------------------------------------------------------------------------------

async fn get_workspace(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    match za.workspace(&session.user_id, &id).await? {
        Some(state) => {
            let mut value = serde_json::to_value(&state).unwrap_or_default();
            value["engagement_id"] = serde_json::Value::String(id);
            Ok(Json(value).into_response())
        }
        None => {
            Err(ApiError::not_found("nothing saved for this engagement yet").with_code("not_found"))
        }
    }
}

async fn write(
    app: AppState,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    finalize: bool,
) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    require_json(&headers)?;
    let write: WorkspaceWrite = parse_json(&body)?;
    let answer = za
        .write_workspace(&session.user_id, &id, write, finalize)
        .await?;
    metrics::counter!("zcc_zoomapp_workspace_writes_total",
        "kind" => if finalize { "finalize" } else { "edit" },
        "outcome" => outcome_label(answer.outcome))
    .increment(1);
    let status = if answer.outcome == Outcome::Finalized {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "applied",
        Outcome::Unchanged => "unchanged",
        Outcome::Stale => "stale",
        Outcome::Finalized => "finalized",
    }
}

async fn put_workspace(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    write(app, id, headers, body, false).await
}

async fn finalize(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    write(app, id, headers, body, true).await
}

// ---- engagement context and live activity -----------------------------------------------------------------------

async fn context(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    zoom_app::workspace::validate_engagement_id(&id).map_err(AppError::from)?;
    app.wait_for_projection().await;
    let context = crate::zoomapp::panel::engagement_context(
        &**za.store(),
        app.media.as_deref(),
        za.contacts(),
        &session.user_id,
        &id,
    )
    .await?;
    match context {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(
            ApiError::not_found("the bridge has no record of this engagement yet")
                .with_code("not_found"),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct StreamParams {
    last_event_id: Option<String>,
}

/// The live stream (`GET /api/v1/stream`) of this engagement only, for the session's user.
async fn stream(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    zoom_app::workspace::validate_engagement_id(&id).map_err(AppError::from)?;
    let Query(params) = params?;
    if let Some(state) = za.store().engagement(&id).await? {
        if !crate::zoomapp::panel::may_view(&state.to_record(), &session.user_id) {
            return Err(AppError::NotYourEngagement.into());
        }
    }
    let Some(stream) = app.stream.clone() else {
        return Err(ApiError::unavailable("the live stream is not running").with_code("no_stream"));
    };
    let resume = super::live::resume_position(&headers, params.last_event_id.as_deref())?;
    let filter = Filter {
        engagements: vec![id],
        ..Filter::default()
    };
    Ok(super::live::sse(&app, stream, filter, resume))
}

// ---- OAuth ------------------------------------------------------------------------------------------------------

async fn oauth_authorize(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    require_json(&headers)?;
    Ok(Json(za.begin_in_client(&session).await?).into_response())
}

#[derive(Deserialize)]
struct AuthorizedBody {
    #[serde(flatten)]
    event: OnAuthorized,
    #[serde(default)]
    href: Option<String>,
}

async fn oauth_authorized(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (za, session) = session(&app, &headers).await?;
    require_json(&headers)?;
    let body: AuthorizedBody = parse_json(&body)?;
    za.finish_in_client(&session, &body.event, body.href.as_deref())
        .await?;
    Ok(Json(serde_json::json!({"connected": true})).into_response())
}

/// A small page for the browser steps of the web install flow when they cannot redirect.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn install_failed(e: AppError) -> Response {
    let api = ApiError::from(e);
    page(
        api.status(),
        "The Zoom App could not be connected",
        api.detail(),
    )
}

#[derive(Debug, Deserialize)]
struct InstallParams {
    environment: Option<String>,
}

/// The web install flow's start (Marketplace's "Add" or a link in your intranet): off to Zoom's consent page.
async fn install(
    State(app): State<AppState>,
    params: Result<Query<InstallParams>, QueryRejection>,
) -> Response {
    let Some(za) = &app.zoom_app else {
        return install_failed(AppError::NotConfigured);
    };
    let environment = params.ok().and_then(|Query(p)| p.environment);
    match za.begin_install(environment.as_deref()).await {
        Ok(url) => redirect(url.as_str()),
        Err(e) => install_failed(e),
    }
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `zoom_app.redirect_url`: the code and state come back; on success the browser goes on to the deeplink.
async fn callback(
    State(app): State<AppState>,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let Some(za) = &app.zoom_app else {
        return install_failed(AppError::NotConfigured);
    };
    let Ok(Query(params)) = params else {
        return install_failed(AppError::BadRequest("unreadable query string".into()));
    };
    if let Some(error) = params.error {
        let error: String = error.chars().take(100).collect();
        return install_failed(AppError::BadRequest(format!(
            "Zoom answered {error:?} instead of a code"
        )));
    }
    let (Some(code), Some(state)) = (params.code, params.state) else {
        return install_failed(AppError::BadRequest("code and state are required".into()));
    };
    match za.finish_install(&code, &state).await {
        Ok(deeplink) => redirect(deeplink.as_str()),
        Err(e) => install_failed(e),
    }
}

// ---- deauthorization --------------------------------------------------------------------------------------------

async fn deauthorize(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let za = zoom_app(&app)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let answer = za
        .notice(
            header("x-zm-signature"),
            header("x-zm-request-timestamp"),
            &body,
        )
        .await?;
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; zcc_zoomapp=tok; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        h.insert(header::COOKIE, HeaderValue::from_static("zcc_zoomappx=1"));
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn json_is_required_for_writes() {
        let mut h = HeaderMap::new();
        assert!(require_json(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(require_json(&h).is_err());
    }

    #[test]
    fn the_panel_listens_to_every_engagement_kind_of_the_live_stream() {
        use crate::core::activity::ActivityKind;
        let js = std::str::from_utf8(assets::get("panel.js").unwrap().body).unwrap();
        let start = js
            .find("const LIVE_KINDS = [")
            .expect("panel.js declares LIVE_KINDS");
        let end = start + js[start..].find("];").unwrap();
        let listed: Vec<&str> = js[start..end].split('"').skip(1).step_by(2).collect();
        // Agents' own events (login, status, queues) carry no engagement: the panel's stream never has them.
        let engagement_kinds: Vec<&str> = ActivityKind::ALL
            .iter()
            .map(|k| k.as_str())
            .filter(|k| !k.starts_with("agent_") && !k.starts_with("queue_"))
            .collect();
        assert_eq!(listed, engagement_kinds);
    }

    #[test]
    fn every_asset_is_prepared_and_the_big_ones_compress() {
        for a in assets::ASSETS {
            let p = prepared(a).expect("prepared");
            assert_eq!(p.etag.len(), 34, "{}", a.path);
            if let Some((gz, tag)) = &p.gzip {
                assert_ne!(tag, &p.etag);
                let mut plain = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
                    .unwrap();
                assert_eq!(plain, a.body, "{}", a.path);
            }
        }
        let sdk = prepared(assets::get(assets::VENDORED_SDK_PATH).unwrap()).unwrap();
        assert!(
            sdk.gzip.as_ref().unwrap().0.len() * 4
                < assets::get(assets::VENDORED_SDK_PATH).unwrap().body.len()
        );
    }

    #[test]
    fn accept_encoding() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
