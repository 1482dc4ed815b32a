//! OAuth against a fake of Zoom's endpoints built from Zoom's documented requests and answers:
//! - `POST /oauth/token` with HTTP Basic client credentials and a form body; success
//!   `{"access_token","token_type":"bearer","refresh_token","expires_in":3599,"scope"}`; refusals
//!   `{"reason": "...", "error": "..."}` (marketplace.zoom.us/docs/guides/auth/oauth; refresh tokens rotate and an
//!   old one gets "Invalid Token!", devsupport.zoom.us article 360060332931). The fake checks PKCE like an
//!   authorization server must (RFC 7636 §4.6). Exact refusal texts for PKCE failures are not documented by Zoom.
//! - `GET /v2/users/me` and `POST /v2/zoomapp/deeplink` with the user's bearer token; Zoom's API error body
//!   `{"code": 124, "message": "Invalid access token."}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use url::Url;
use zoom::webhook::{sign, WebhookVerifier};
use zoom_app::oauth::{
    self, parse_app_notice, AppNotice, DeeplinkRequest, NoticeError, OAuthClient, OAuthConfig,
    OAuthError, Pkce, PkceMethod,
};
use zoom_app::Secret;

const CLIENT_ID: &str = "fakeClientId";
const CLIENT_SECRET: &str = "fakeClientSecret";
const REDIRECT: &str = "https://bridge.example/zoomapp/oauth/callback";

#[derive(Default)]
struct Fake {
    /// code -> (challenge, method, redirect_uri, user)
    codes: HashMap<String, (String, String, String, String)>,
    /// refresh token -> user
    refresh: HashMap<String, String>,
    /// access token -> user
    access: HashMap<String, String>,
    issued: u32,
    deeplink_bodies: Vec<Value>,
}

type Shared = Arc<Mutex<Fake>>;

fn refused(status: StatusCode, error: &str, reason: &str) -> Response {
    (status, Json(json!({"reason": reason, "error": error}))).into_response()
}

fn issue(fake: &mut Fake, user: &str) -> Value {
    fake.issued += 1;
    let access = format!("access-{}", fake.issued);
    let refresh = format!("refresh-{}", fake.issued);
    fake.access.insert(access.clone(), user.to_string());
    fake.refresh.insert(refresh.clone(), user.to_string());
    json!({
        "access_token": access,
        "token_type": "bearer",
        "refresh_token": refresh,
        "expires_in": 3599,
        "scope": "zoomapp:inmeeting user:read:user",
        "api_url": "https://api.zoom.us"
    })
}

async fn token(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unsupported content type",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client_id or client_secret",
        );
    }
    let mut fake = fake.lock().unwrap();
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, method, redirect, user)) = fake.codes.remove(&code) else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            };
            if form.get("redirect_uri") != Some(&redirect) {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Redirect URI mismatch.",
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let derived = match method.as_str() {
                "S256" => oauth::s256_challenge(&verifier),
                _ => verifier,
            };
            if derived != challenge {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid code verifier",
                );
            }
            Json(issue(&mut fake, &user)).into_response()
        }
        Some("refresh_token") => {
            let old = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(user) = fake.refresh.remove(&old) else {
                return refused(StatusCode::BAD_REQUEST, "invalid_request", "Invalid Token!");
            };
            Json(issue(&mut fake, &user)).into_response()
        }
        _ => refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        ),
    }
}

fn bearer_user(fake: &Fake, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    fake.access.get(token).cloned()
}

fn invalid_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 124, "message": "Invalid access token."})),
    )
        .into_response()
}

async fn me(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let fake = fake.lock().unwrap();
    match bearer_user(&fake, &headers) {
        Some(user) => Json(json!({"id": user, "account_id": "acct-1", "email": "agent@example.com", "display_name": "Agent One"})).into_response(),
        None => invalid_token(),
    }
}

async fn deeplink(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = fake.lock().unwrap();
    if bearer_user(&fake, &headers).is_none() {
        return invalid_token();
    }
    fake.deeplink_bodies.push(body.clone());
    let link = if body["action"] == "evil" {
        "javascript:alert(1)".to_string()
    } else {
        "zoommtg://zoom.us/launch?action=opaque-test-value".to_string()
    };
    Json(json!({"deeplink": link})).into_response()
}

async fn start() -> (OAuthClient, Shared) {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/v2/users/me", get(me))
        .route("/v2/zoomapp/deeplink", post(deeplink))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = OAuthClient::new(
        reqwest::Client::new(),
        OAuthConfig {
            oauth_base: Url::parse(&format!("http://{addr}")).unwrap(),
            api_base: Url::parse(&format!("http://{addr}/v2")).unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        },
    );
    (client, fake)
}

/// What Zoom does between the authorize URL and the callback: remember the challenge, hand out a code.
fn grant(fake: &Shared, url: &Url, user: &str) -> String {
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    let code = format!("code-{}", q["state"]);
    fake.lock().unwrap().codes.insert(
        code.clone(),
        (
            q["code_challenge"].clone(),
            q["code_challenge_method"].clone(),
            q["redirect_uri"].clone(),
            user.into(),
        ),
    );
    code
}

#[tokio::test]
async fn web_install_flow_exchange_identify_deeplink() {
    let (client, fake) = start().await;
    let pkce = Pkce::generate(PkceMethod::S256);
    let state = oauth::new_state();
    let url = client.authorize_url(REDIRECT, &pkce, &state).unwrap();
    let code = grant(&fake, &url, "user-1");

    let tokens = client
        .exchange_code(&code, REDIRECT, pkce.verifier())
        .await
        .unwrap();
    assert_eq!(tokens.expires_in, 3599);
    assert_eq!(tokens.token_type.as_deref(), Some("bearer"));
    let shown = format!("{tokens:?}");
    assert!(
        !shown.contains(tokens.access_token.expose()) && !shown.contains("refresh-"),
        "{shown}"
    );

    let user = client.current_user(&tokens.access_token).await.unwrap();
    assert_eq!(user.id, "user-1");
    assert!(!format!("{user:?}").contains("user-1"));

    let link = client
        .deeplink(
            &tokens.access_token,
            &DeeplinkRequest {
                action: Some(r#"{"url":"/zoomapp/"}"#.into()),
                kind: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(link.scheme(), "zoommtg");
    assert_eq!(
        fake.lock().unwrap().deeplink_bodies,
        vec![json!({"action": "{\"url\":\"/zoomapp/\"}", "type": 1})]
    );
    // The code is single-use.
    let again = client.exchange_code(&code, REDIRECT, pkce.verifier()).await;
    assert!(
        matches!(again, Err(OAuthError::Refused { status: 400, ref error, .. }) if error.as_deref() == Some("invalid_grant"))
    );
}

#[tokio::test]
async fn in_client_flow_with_either_pkce_method() {
    let (client, fake) = start().await;
    for method in [PkceMethod::Plain, PkceMethod::S256] {
        let pkce = Pkce::generate(method);
        let state = oauth::new_state();
        // The panel calls zoomSdk.authorize({codeChallenge, state}); Zoom issues the code to the Home URL.
        let options = oauth::AuthorizeOptions::new(&pkce, &state);
        let home = "https://bridge.example/zoomapp/";
        let code = format!("in-client-{}", method.as_str());
        fake.lock().unwrap().codes.insert(
            code.clone(),
            (
                options.code_challenge.clone(),
                method.as_str().into(),
                home.into(),
                "user-2".into(),
            ),
        );
        // onAuthorized comes back through the panel with the same state.
        let event: oauth::OnAuthorized = serde_json::from_value(json!({
            "code": code, "redirectUri": home, "result": true, "state": state, "timestamp": 1655142791
        }))
        .unwrap();
        assert!(oauth::state_matches(
            &state,
            event.state.as_deref().unwrap()
        ));
        let tokens = client
            .exchange_code(&event.code, &event.redirect_uri, pkce.verifier())
            .await
            .unwrap();
        assert_eq!(
            client.current_user(&tokens.access_token).await.unwrap().id,
            "user-2"
        );
    }
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_is_refused() {
    let (client, fake) = start().await;
    let pkce = Pkce::generate(PkceMethod::S256);
    let url = client.authorize_url(REDIRECT, &pkce, "s1").unwrap();
    let code = grant(&fake, &url, "u");
    let other = Pkce::generate(PkceMethod::S256);
    let err = client
        .exchange_code(&code, REDIRECT, other.verifier())
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::Refused { status: 400, .. }));

    let url = client.authorize_url(REDIRECT, &pkce, "s2").unwrap();
    let code = grant(&fake, &url, "u");
    let err = client
        .exchange_code(&code, "https://elsewhere.example/cb", pkce.verifier())
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::Refused { status: 400, .. }));
}

#[tokio::test]
async fn refresh_rotates_and_old_tokens_are_refused() {
    let (client, fake) = start().await;
    let pkce = Pkce::generate(PkceMethod::S256);
    let url = client.authorize_url(REDIRECT, &pkce, "s").unwrap();
    let code = grant(&fake, &url, "user-3");
    let first = client
        .exchange_code(&code, REDIRECT, pkce.verifier())
        .await
        .unwrap();
    let second = client.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    let reused = client.refresh(&first.refresh_token).await.unwrap_err();
    match reused {
        OAuthError::Refused { status, reason, .. } => {
            assert_eq!(status, 400);
            assert_eq!(reason.as_deref(), Some("Invalid Token!"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    client.refresh(&second.refresh_token).await.unwrap();
}

#[tokio::test]
async fn bad_client_credentials_and_bad_bearer_tokens() {
    let (client, fake) = start().await;
    let mut config = client.config().clone();
    config.client_secret = "wrong".into();
    let wrong = OAuthClient::new(reqwest::Client::new(), config);
    let err = wrong.refresh(&Secret::new("refresh-x")).await.unwrap_err();
    assert!(
        matches!(err, OAuthError::Refused { status: 401, ref error, .. } if error.as_deref() == Some("invalid_client"))
    );
    // The error never carries the token.
    assert!(!err.to_string().contains("refresh-x"));

    let err = client.current_user(&Secret::new("nope")).await.unwrap_err();
    assert!(matches!(
        err,
        OAuthError::Api {
            status: 401,
            code: Some(124),
            ..
        }
    ));

    // A deeplink that is not a Zoom or https link is not handed to the browser.
    let pkce = Pkce::generate(PkceMethod::S256);
    let url = client.authorize_url(REDIRECT, &pkce, "s").unwrap();
    let code = grant(&fake, &url, "u");
    let t = client
        .exchange_code(&code, REDIRECT, pkce.verifier())
        .await
        .unwrap();
    let err = client
        .deeplink(
            &t.access_token,
            &DeeplinkRequest {
                action: Some("evil".into()),
                kind: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::UntrustedDeeplink));
}

#[test]
fn deauthorization_notice_is_signed_and_read() {
    let secret = "webhook-secret-token";
    let verifier = WebhookVerifier::new([secret], 300);
    let now = 1_740_439_732;
    // Zoom's documented example payload, with event_ts and user_data_retention as a string as in its example.
    let body = br#"{"event":"app_deauthorized","event_ts":1740439732278,"payload":{"user_data_retention":"false","account_id":"EabCDEFghiLHMA","user_id":"z9jkdsfsdfjhdkfjQ","signature":"827edc3452044f0bc86bdd5684afb7d1e6becfa1a767f24df1b287853cf73000","deauthorization_time":"2019-06-17T13:52:28.632Z","client_id":"ADZ9k9bTWmGUoUbECUKU_a"}}"#;
    let sig = sign(secret.as_bytes(), now, body);
    let ts = now.to_string();
    let notice = parse_app_notice(&verifier, Some(&sig), Some(&ts), body, now).unwrap();
    let AppNotice::Deauthorized(n) = notice else {
        panic!("expected a deauthorization")
    };
    assert_eq!(n.user_id, "z9jkdsfsdfjhdkfjQ");
    assert_eq!(n.account_id, "EabCDEFghiLHMA");
    assert_eq!(n.client_id, "ADZ9k9bTWmGUoUbECUKU_a");
    assert!(!n.user_data_retention);
    assert_eq!(n.event_ts, Some(1_740_439_732_278));
    let shown = format!("{n:?}");
    assert!(!shown.contains("z9jkdsfsdfjhdkfjQ") && !shown.contains("827edc"));

    // Boolean retention, as the schema types it.
    let body2 = br#"{"event":"app_deauthorized","payload":{"user_data_retention":true,"account_id":"a","user_id":"u","client_id":"c"}}"#;
    let sig2 = sign(secret.as_bytes(), now, body2);
    let AppNotice::Deauthorized(n2) =
        parse_app_notice(&verifier, Some(&sig2), Some(&ts), body2, now).unwrap()
    else {
        panic!()
    };
    assert!(n2.user_data_retention);

    // Tampered body, wrong secret, stale timestamp, missing headers: refused before reading.
    let mut tampered = body.to_vec();
    tampered[40] ^= 1;
    for (s, t, b) in [
        (Some(sig.as_str()), Some(ts.as_str()), &tampered[..]),
        (
            Some(sign(b"other", now, body).as_str()),
            Some(ts.as_str()),
            &body[..],
        ),
        (None, Some(ts.as_str()), &body[..]),
    ] {
        assert!(matches!(
            parse_app_notice(&verifier, s, t, b, now),
            Err(NoticeError::Signature(_))
        ));
    }
    assert!(matches!(
        parse_app_notice(&verifier, Some(&sig), Some(&ts), body, now + 301),
        Err(NoticeError::Signature(_))
    ));

    // A signed notice without a user id cannot say whose data to delete.
    let incomplete =
        br#"{"event":"app_deauthorized","payload":{"account_id":"a","client_id":"c"}}"#;
    let s = sign(secret.as_bytes(), now, incomplete);
    assert!(matches!(
        parse_app_notice(&verifier, Some(&s), Some(&ts), incomplete, now),
        Err(NoticeError::MissingField("user_id"))
    ));
}

#[test]
fn url_validation_on_the_notice_endpoint() {
    let secret = "webhook-secret-token";
    let verifier = WebhookVerifier::new([secret], 300);
    let now = 1_700_000_000;
    let body = br#"{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680}"#;
    let sig = sign(secret.as_bytes(), now, body);
    let AppNotice::UrlValidation(answer) =
        parse_app_notice(&verifier, Some(&sig), Some(&now.to_string()), body, now).unwrap()
    else {
        panic!("expected a validation")
    };
    assert_eq!(answer.plain_token, "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(
        answer.encrypted_token,
        zoom::webhook::encrypt_plain_token(secret.as_bytes(), "qgg8vlvZRS6UYooatFL8Aw")
    );
}
