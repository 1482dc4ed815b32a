//! Zoom's side of a user-managed Zoom App (the Contact Center Zoom App the bridge serves): the authorization-code
//! grant with PKCE, refresh with rotation, `GET /v2/users/me`, `POST /v2/zoomapp/deeplink`, `X-Zoom-App-Context`
//! minting, and the signed `app_deauthorized` notice. Shapes: reference `zoom-apps-and-chatbots.md` §1.4 and §1.6
//! (Zoom's samples and docs); the crate `zoom-app` is the client side.
//!
//! - `GET /oauth/authorize?response_type=code&client_id&redirect_uri&code_challenge&code_challenge_method&state`: the
//!   consent page, already consented: 302 to `redirect_uri?code=…&state=…` for the signed-in user (config
//!   `zoom_app_user`, or `?sim_user=`, or the directory's first agent).
//! - `POST /oauth/token`: `grant_type=authorization_code` (`code`, `redirect_uri` equal to the authorize request's,
//!   `code_verifier` checked against the challenge with its method) and `grant_type=refresh_token` (the old refresh
//!   token stops working: Zoom rotates them), HTTP Basic with the app's client id and secret.
//! - `GET /v2/users/me`, `POST /v2/zoomapp/deeplink` with a user's bearer token.
//! - `POST /sim/zoomapp/context` `{client_id, user_id, ttl_seconds?}` → `{context}`; `POST /sim/zoomapp/authorize`
//!   `{client_id, user_id, code_challenge, code_challenge_method?, redirect_uri}` → `{code}` (what
//!   `zoomSdk.authorize` does inside the client); `POST /sim/zoomapp/deauthorize` `{client_id, user_id, url,
//!   secret_token, user_data_retention?}` → posts the notice and answers the target's status; `GET /sim/zoomapp`:
//!   counters.
//!
//! ❓ Unconfirmed details, marked where they live: the deeplink's own URL shape, and the exact error bodies of the
//! refused grants (Zoom's documented `{"reason", "error"}` shape with plausible texts).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zoom_app::context::{encode, AppContext, ISSUER};

use super::{basic_credentials, lock, oauth_error, zoom_error, Counters, Shared, ZoomError};
use crate::opaque_id;

/// A Zoom App the simulator knows (its client id and secret, one per Marketplace environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimZoomApp {
    pub client_id: String,
    pub client_secret: String,
}

/// What the Zoom App endpoints did, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ZoomAppStats {
    pub authorize_requests: u64,
    pub codes_issued: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    /// Token requests refused (bad client, code, verifier, redirect URI or refresh token).
    pub token_refusals: u64,
    pub users_me: u64,
    pub deeplinks: u64,
    pub contexts_minted: u64,
    pub deauthorizations_sent: u64,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    user_id: String,
    redirect_uri: String,
    challenge: Option<(String, String)>,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct UserToken {
    client_id: String,
    user_id: String,
    expires: Instant,
}

#[derive(Debug, Default)]
pub(super) struct AppState {
    codes: HashMap<String, Grant>,
    access: HashMap<String, UserToken>,
    refresh: HashMap<String, UserToken>,
    stats: ZoomAppStats,
}

/// Authorization codes live ten minutes (❓ Zoom documents no lifetime; OAuth 2.0 recommends at most ten).
const CODE_TTL: Duration = Duration::from_secs(600);

impl Shared {
    fn app(&self, client_id: &str) -> Option<&SimZoomApp> {
        self.config
            .zoom_apps
            .iter()
            .find(|a| a.client_id == client_id)
    }

    fn app_user(&self, requested: Option<&str>) -> Option<String> {
        requested
            .map(str::to_owned)
            .or_else(|| self.config.zoom_app_user.clone())
            .or_else(|| self.directory.agents.first().map(|a| a.user_id.clone()))
    }

    fn issue_code(&self, grant: Grant) -> String {
        let code = {
            let mut rng = rand::rng();
            format!("{}{}", opaque_id(&mut rng), opaque_id(&mut rng))
        };
        let mut state = lock(&self.zoom_app);
        let now = Instant::now();
        state.codes.retain(|_, g| g.expires > now);
        state.codes.insert(code.clone(), grant);
        state.stats.codes_issued += 1;
        code
    }

    fn issue_tokens(&self, client_id: &str, user_id: &str) -> serde_json::Value {
        let mut rng = rand::rng();
        let access = format!("{}{}", opaque_id(&mut rng), opaque_id(&mut rng));
        let refresh = format!("{}{}", opaque_id(&mut rng), opaque_id(&mut rng));
        let ttl = self.config.user_token_ttl;
        let token = UserToken {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            expires: Instant::now() + ttl,
        };
        let mut state = lock(&self.zoom_app);
        state.access.insert(access.clone(), token.clone());
        state.refresh.insert(refresh.clone(), token);
        json!({
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": ttl.as_secs(),
            "scope": "zoomapp:inmeeting user:read:user",
        })
    }

    /// The user a bearer token stands for, or Zoom's 401 (code 124).
    fn user_of(&self, headers: &HeaderMap) -> Result<UserToken, ZoomError> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        let found = token.and_then(|t| lock(&self.zoom_app).access.get(&t).cloned());
        match found {
            Some(t) if Instant::now() < t.expires => Ok(t),
            Some(_) => {
                Counters::bump(&self.counters.unauthorized);
                Err(zoom_error(
                    StatusCode::UNAUTHORIZED,
                    124,
                    "Access token is expired.",
                ))
            }
            None => {
                Counters::bump(&self.counters.unauthorized);
                Err(zoom_error(
                    StatusCode::UNAUTHORIZED,
                    124,
                    "Invalid access token.",
                ))
            }
        }
    }

    /// Forgets every token of a user for an app (the app was removed).
    fn revoke(&self, client_id: &str, user_id: &str) {
        let mut state = lock(&self.zoom_app);
        state
            .access
            .retain(|_, t| !(t.client_id == client_id && t.user_id == user_id));
        state
            .refresh
            .retain(|_, t| !(t.client_id == client_id && t.user_id == user_id));
    }

    pub(super) fn zoom_app_stats(&self) -> ZoomAppStats {
        lock(&self.zoom_app).stats
    }

    pub(super) fn mint_app_context(
        &self,
        client_id: &str,
        user_id: &str,
        ttl: Duration,
    ) -> Option<String> {
        let app = self.app(client_id)?;
        let now = crate::now_ms();
        let claims = AppContext {
            typ: Some("panel".into()),
            uid: Some(user_id.to_owned()),
            aud: Some(client_id.to_owned()),
            iss: Some(ISSUER.into()),
            ts: Some(now),
            exp: Some(now + i64::try_from(ttl.as_millis()).unwrap_or(120_000)),
            theme: Some("light".into()),
            ..Default::default()
        };
        lock(&self.zoom_app).stats.contexts_minted += 1;
        Some(encode(&claims, &app.client_secret))
    }

    /// What `zoomSdk.authorize({codeChallenge})` does in the client: a code for the page at `redirect_uri`.
    pub(super) fn in_client_code(
        &self,
        client_id: &str,
        user_id: &str,
        code_challenge: &str,
        method: &str,
        redirect_uri: &str,
    ) -> Option<String> {
        self.app(client_id)?;
        Some(self.issue_code(Grant {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: Some((code_challenge.to_owned(), method.to_owned())),
            expires: Instant::now() + CODE_TTL,
        }))
    }

    pub(super) fn expire_user_tokens(&self) {
        let now = Instant::now();
        for t in lock(&self.zoom_app).access.values_mut() {
            t.expires = now;
        }
    }
}

/// `BASE64URL(SHA-256(verifier))`, or the verifier itself for `plain`.
fn verifier_matches(verifier: &str, challenge: &str, method: &str) -> bool {
    match method {
        "S256" => zoom_app::oauth::s256_challenge(verifier) == challenge,
        _ => verifier == challenge,
    }
}

pub(super) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/oauth/authorize", get(authorize))
        .route("/v2/users/me", get(users_me))
        .route("/v2/zoomapp/deeplink", post(deeplink))
        .route("/sim/zoomapp", get(sim_stats))
        .route("/sim/zoomapp/context", post(sim_context))
        .route("/sim/zoomapp/authorize", post(sim_authorize))
        .route("/sim/zoomapp/deauthorize", post(sim_deauthorize))
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return (StatusCode::BAD_REQUEST, "invalid query").into_response();
    };
    lock(&shared.zoom_app).stats.authorize_requests += 1;
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    // Zoom shows an error page (no redirect) for requests it cannot tie to an app.
    let (Some("code"), Some(client_id), Some(redirect_uri)) = (
        param("response_type"),
        param("client_id"),
        param("redirect_uri"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "response_type=code, client_id and redirect_uri are required",
        )
            .into_response();
    };
    if shared.app(client_id).is_none() {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    }
    let method = param("code_challenge_method").unwrap_or("plain");
    if !matches!(method, "S256" | "plain") {
        return (StatusCode::BAD_REQUEST, "Unsupported code_challenge_method").into_response();
    }
    let Some(user_id) = shared.app_user(param("sim_user")) else {
        return (StatusCode::BAD_REQUEST, "no user is signed in").into_response();
    };
    let code = shared.issue_code(Grant {
        client_id: client_id.to_owned(),
        user_id,
        redirect_uri: redirect_uri.to_owned(),
        challenge: param("code_challenge").map(|c| (c.to_owned(), method.to_owned())),
        expires: Instant::now() + CODE_TTL,
    });
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "Invalid redirect_uri").into_response();
    };
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = param("state") {
        target.query_pairs_mut().append_pair("state", state);
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(target.as_str()) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

fn refused(shared: &Shared, status: StatusCode, error: &str, reason: &str) -> Response {
    lock(&shared.zoom_app).stats.token_refusals += 1;
    oauth_error(status, error, reason)
}

/// `grant_type=authorization_code` and `grant_type=refresh_token` of `POST /oauth/token` (the S2S grant is
/// `super::oauth_token`'s).
pub(super) fn user_grant(
    shared: &Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let credentials = basic_credentials(headers);
    let app = credentials
        .as_ref()
        .and_then(|(id, secret)| shared.app(id).filter(|a| a.client_secret == *secret));
    let Some(app) = app else {
        return refused(
            shared,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client_id or client_secret",
        );
    };
    match param("grant_type") {
        "authorization_code" => {
            // A code is good once, whatever happens next.
            let grant = lock(&shared.zoom_app).codes.remove(param("code"));
            let Some(grant) = grant.filter(|g| g.expires > Instant::now()) else {
                return refused(
                    shared,
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            };
            if grant.client_id != app.client_id {
                return refused(
                    shared,
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            }
            if grant.redirect_uri != param("redirect_uri") {
                return refused(
                    shared,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Redirect URI mismatch.",
                );
            }
            if let Some((challenge, method)) = &grant.challenge {
                if !verifier_matches(param("code_verifier"), challenge, method) {
                    return refused(
                        shared,
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Invalid code_verifier",
                    );
                }
            }
            lock(&shared.zoom_app).stats.code_exchanges += 1;
            Json(shared.issue_tokens(&app.client_id, &grant.user_id)).into_response()
        }
        "refresh_token" => {
            let old = lock(&shared.zoom_app)
                .refresh
                .remove(param("refresh_token"));
            let Some(old) = old.filter(|t| t.client_id == app.client_id) else {
                return refused(
                    shared,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid Token!",
                );
            };
            lock(&shared.zoom_app).stats.refreshes += 1;
            Json(shared.issue_tokens(&app.client_id, &old.user_id)).into_response()
        }
        _ => refused(
            shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        ),
    }
}

async fn users_me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = match shared.user_of(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    lock(&shared.zoom_app).stats.users_me += 1;
    let directory = &shared.directory;
    let agent = directory.agent(&token.user_id);
    Json(json!({
        "id": token.user_id,
        "account_id": directory.account_id,
        "email": agent.map(|a| a.email.clone()).unwrap_or_else(|| format!("{}@example.com", token.user_id)),
        "display_name": agent.map(|a| a.display_name.clone()).unwrap_or_else(|| token.user_id.clone()),
        "type": 1,
        "status": "active",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct DeeplinkBody {
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<u32>,
}

async fn deeplink(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Json<DeeplinkBody>, JsonRejection>,
) -> Response {
    let token = match shared.user_of(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let Ok(Json(body)) = body else {
        return zoom_error(StatusCode::BAD_REQUEST, 300, "Invalid request body.").into_response();
    };
    lock(&shared.zoom_app).stats.deeplinks += 1;
    // ❓ Zoom does not document the link's shape; a zoommtg: URL as the samples' redirects lead to.
    let action = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(body.action.unwrap_or_default().as_bytes());
    Json(json!({
        "deeplink": format!(
            "zoommtg://zoom.us/launch/zoomapp?appId={}&type={}&action={action}",
            token.client_id,
            body.kind.unwrap_or(1)
        )
    }))
    .into_response()
}

async fn sim_stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.zoom_app_stats()).into_response()
}

#[derive(Deserialize)]
struct ContextBody {
    client_id: String,
    user_id: String,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

async fn sim_context(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<ContextBody>, JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return (StatusCode::BAD_REQUEST, "expected {client_id, user_id}").into_response();
    };
    let ttl = Duration::from_secs(body.ttl_seconds.unwrap_or(120));
    match shared.mint_app_context(&body.client_id, &body.user_id, ttl) {
        Some(context) => Json(json!({ "context": context })).into_response(),
        None => (StatusCode::NOT_FOUND, "unknown client_id").into_response(),
    }
}

#[derive(Deserialize)]
struct AuthorizeBody {
    client_id: String,
    user_id: String,
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: Option<String>,
    redirect_uri: String,
}

async fn sim_authorize(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<AuthorizeBody>, JsonRejection>,
) -> Response {
    let Ok(Json(b)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {client_id, user_id, code_challenge, redirect_uri}",
        )
            .into_response();
    };
    let method = b.code_challenge_method.as_deref().unwrap_or("plain");
    match shared.in_client_code(
        &b.client_id,
        &b.user_id,
        &b.code_challenge,
        method,
        &b.redirect_uri,
    ) {
        Some(code) => Json(json!({ "code": code })).into_response(),
        None => (StatusCode::NOT_FOUND, "unknown client_id").into_response(),
    }
}

/// What a deauthorization notice should say and where it goes.
#[derive(Debug, Clone, Deserialize)]
pub struct DeauthorizeRequest {
    pub client_id: String,
    pub user_id: String,
    /// The app's deauthorization endpoint.
    pub url: String,
    /// The app's secret token (signs the notice).
    pub secret_token: String,
    #[serde(default)]
    pub user_data_retention: bool,
}

/// Revokes the user's tokens and posts Zoom's `app_deauthorized` notice, signed like every Zoom event (payload
/// fields from marketplace.zoom.us/docs/api-reference/webhook-reference/app-events/app-deauthorized). Returns the
/// target's status.
pub(super) async fn send_deauthorization(
    shared: &Shared,
    request: &DeauthorizeRequest,
) -> anyhow::Result<u16> {
    shared.revoke(&request.client_id, &request.user_id);
    let now = crate::now_ms();
    let body = serde_json::to_vec(&json!({
        "event": "app_deauthorized",
        "event_ts": now,
        "payload": {
            "account_id": shared.directory.account_id,
            "user_id": request.user_id,
            "signature": format!("{:064x}", super::stable_hash(&[request.user_id.as_bytes(), &now.to_le_bytes()])),
            "deauthorization_time": crate::iso_time_ms(now),
            "client_id": request.client_id,
            "user_data_retention": if request.user_data_retention { "true" } else { "false" },
        }
    }))?;
    let ts = now / 1000;
    let signature = zoom::webhook::sign(request.secret_token.as_bytes(), ts, &body);
    let response = reqwest::Client::new()
        .post(&request.url)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-zm-request-timestamp", ts.to_string())
        .header("x-zm-signature", signature)
        .body(body)
        .send()
        .await?;
    lock(&shared.zoom_app).stats.deauthorizations_sent += 1;
    Ok(response.status().as_u16())
}

async fn sim_deauthorize(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<DeauthorizeRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {client_id, user_id, url, secret_token}",
        )
            .into_response();
    };
    match send_deauthorization(&shared, &request).await {
        Ok(status) => Json(json!({ "status": status })).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_methods() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(verifier_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256"
        ));
        assert!(verifier_matches(v, v, "plain"));
        assert!(!verifier_matches(v, v, "S256"));
        assert!(!verifier_matches("other", v, "plain"));
    }
}
