//! The Contact Center Zoom App's backend: the agent panel's sessions, the per-(user, engagement) workspace, OAuth
//! (the web install flow and in-client OAuth, with the tokens encrypted at rest and refreshed before they expire),
//! and the deauthorization notice. The protocol pieces (context decryption, PKCE, token requests, the merge rule,
//! the panel's assets) are the `zoom-app` crate's; this module wires them to the store, the event log and config.
//! Routes: `http::zoomapp`. The panel's API: `docs/zoomapp/api.md`.

pub mod panel;
mod refresh;
pub mod tokens;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;
use url::Url;
use zoom::webhook::{UrlValidationResponse, WebhookVerifier};
use zoom_app::oauth::{
    AppNotice, AuthorizeOptions, DeeplinkRequest, NoticeError, OAuthClient, OAuthConfig,
    OAuthError, OnAuthorized, Pkce, PkceMethod, TokenSet,
};
use zoom_app::workspace::{
    apply_finalize, apply_write, validate_engagement_id, Outcome, WorkspaceError, WorkspaceState,
    WorkspaceWrite,
};
use zoom_app::{AppCredentials, ContextError, ContextVerifier, Environment};

use crate::config::{ChecklistItem, Config, InClientPkce};
use crate::contacts::Contacts;
use crate::core::observation::WorkspaceFact;
use crate::ingest::{EventLog, IngestError};
use crate::store::zoomapp::{DeletedUserData, SessionRow, TokenRow};
use crate::store::{Inbound, Store, StoreError};
use tokens::{hash_token, Sealer};

pub use refresh::RefreshSettings;

/// The cookie that carries a panel session.
pub const SESSION_COOKIE: &str = "zcc_zoomapp";
/// How long a web install flow or an in-client authorization may take.
const OAUTH_FLOW_TTL_MS: i64 = 10 * 60 * 1000;

/// Why a panel or OAuth request was refused. The HTTP layer turns each into a status and a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(
        "no Zoom App credentials are configured ([zoom_app.development] / [zoom_app.production])"
    )]
    NotConfigured,
    #[error(
        "no session: open the panel from the Zoom client (or post getAppContext() to api/session)"
    )]
    NoSession,
    #[error("the app context was refused: {0}")]
    Context(#[from] ContextError),
    #[error("the app context names no user (a guest cannot use the panel)")]
    NoUser,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("the stored workspace is unreadable: {0}")]
    CorruptWorkspace(String),
    #[error("this engagement's record names other agents: the panel shows engagements to the agents on them")]
    NotYourEngagement,
    #[error("the OAuth state is unknown, used or expired: start again")]
    State,
    #[error("Zoom did not authorize (result false)")]
    NotAuthorized,
    #[error("the authorization is for another Zoom user than the session's")]
    OtherUser,
    #[error("{0}")]
    BadRequest(String),
    #[error("zoom_app.redirect_url is not configured: the web install flow needs it")]
    NoRedirectUrl,
    #[error("Zoom refused or failed: {0}")]
    OAuth(#[from] OAuthError),
    #[error("a stored secret does not open: {0}")]
    Seal(#[from] tokens::SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Notice(#[from] NoticeError),
}

/// A panel session: who (the verified Zoom user id) and through which credentials.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub environment: Environment,
    row: SessionRow,
}

/// A session just opened from an app context: the cookie value to set, and the session.
pub struct Opened {
    pub token: String,
    pub session: Session,
}

/// `GET`/`POST api/session`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct SessionAnswer {
    pub environment: Environment,
    pub oauth: OAuthAnswer,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OAuthAnswer {
    pub in_client: bool,
    pub connected: bool,
    pub pkce: &'static str,
}

/// What a workspace write did and what is stored now.
#[derive(Debug, Clone, Serialize)]
pub struct WriteAnswer {
    pub outcome: Outcome,
    pub workspace: WorkspaceState,
}

/// A verified deauthorization-endpoint request's answer body.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum NoticeAnswer {
    UrlValidation(UrlValidationResponse),
    Done {
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted: Option<DeletedUserData>,
    },
}

/// The tokens as sealed (never stored or logged in clear).
#[derive(Serialize, Deserialize)]
struct SealedTokens {
    access_token: String,
    refresh_token: String,
    #[serde(default)]
    account_id: Option<String>,
}

struct AppEnv {
    environment: Environment,
    client: OAuthClient,
}

/// The backend of the agent panel. One per process; cheap to share (`Arc`).
pub struct ZoomApp {
    store: Arc<dyn Store>,
    log: EventLog,
    verifier: ContextVerifier,
    apps: Vec<AppEnv>,
    redirect_url: Option<String>,
    in_client: bool,
    in_client_pkce: PkceMethod,
    session_ttl_ms: i64,
    refresh_margin_ms: i64,
    checklist: Vec<ChecklistItem>,
    sealer: Sealer,
    notices: Option<WebhookVerifier>,
    wake_refresher: Notify,
    /// The customer lookup the panel shows (`contacts.file`).
    contacts: Option<Arc<Contacts>>,
    /// The session cookie's `Path`: the Home URL's path (`/zoomapp/`, or below a proxy's prefix).
    cookie_path: String,
}

fn environment_of(name: &str) -> Option<Environment> {
    match name {
        "development" => Some(Environment::Development),
        "production" => Some(Environment::Production),
        _ => None,
    }
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

impl ZoomApp {
    /// Builds the backend from the configuration: the credentials, Zoom's endpoints (`zoom.oauth_base`,
    /// `zoom.api_base`), and the token key (`zoom_app.token_key`, or generated once and kept in the database).
    pub async fn open(
        config: &Config,
        store: Arc<dyn Store>,
        log: EventLog,
        contacts: Option<Arc<Contacts>>,
    ) -> anyhow::Result<Self> {
        let za = &config.zoom_app;
        let credentials: Vec<AppCredentials> = za
            .credentials()
            .into_iter()
            .filter_map(|(name, c)| {
                Some(AppCredentials {
                    environment: environment_of(name)?,
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.expose().into(),
                })
            })
            .collect();
        let oauth_base = Url::parse(&config.zoom.oauth_base).context("zoom.oauth_base")?;
        let api_base = Url::parse(&config.zoom.api_base).context("zoom.api_base")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("HTTP client for Zoom OAuth")?;
        let apps = credentials
            .iter()
            .map(|c| AppEnv {
                environment: c.environment,
                client: OAuthClient::new(
                    http.clone(),
                    OAuthConfig {
                        oauth_base: oauth_base.clone(),
                        api_base: api_base.clone(),
                        client_id: c.client_id.clone(),
                        client_secret: c.client_secret.clone(),
                    },
                ),
            })
            .collect();
        let key = match &za.token_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => {
                let generated = tokens::new_token();
                store
                    .setting_or_insert(tokens::KEY_SETTING, &generated)
                    .await
                    .context("reading the Zoom App token key")?
                    .into_bytes()
            }
        };
        let notices = za.webhook_secret_token.as_ref().map(|s| {
            WebhookVerifier::new(
                [s.expose()],
                config.zoom.webhook_timestamp_tolerance_seconds,
            )
        });
        if credentials.is_empty() {
            tracing::info!("no Zoom App credentials configured: the agent panel is served but cannot open sessions");
        } else if za.redirect_url.is_none() {
            tracing::warn!(
                "zoom_app.redirect_url is not set: the web install flow (/zoomapp/install) cannot run"
            );
        }
        if !credentials.is_empty() && notices.is_none() {
            tracing::warn!(
                "zoom_app.webhook_secret_token is not set: deauthorization notices (/zoomapp/deauthorize) are refused, \
                 so a user's data cannot be deleted when they remove the app"
            );
        }
        Ok(Self {
            verifier: ContextVerifier::new(&credentials),
            store,
            log,
            apps,
            redirect_url: za.redirect_url.clone(),
            in_client: za.in_client_oauth,
            in_client_pkce: match za.in_client_pkce {
                InClientPkce::Plain => PkceMethod::Plain,
                InClientPkce::S256 => PkceMethod::S256,
            },
            session_ttl_ms: i64::try_from(za.session_hours).unwrap_or(12) * 3_600_000,
            refresh_margin_ms: i64::try_from(za.refresh_margin_seconds).unwrap_or(600) * 1000,
            checklist: za.checklist.clone(),
            sealer: Sealer::new(&key),
            notices,
            wake_refresher: Notify::new(),
            contacts,
            cookie_path: za
                .home_url()
                .and_then(|h| Url::parse(&h).ok())
                .map(|u| u.path().to_string())
                .filter(|p| p.starts_with('/') && p.ends_with('/'))
                .unwrap_or_else(|| crate::config::ZOOM_APP_HOME_PATH.to_string()),
        })
    }

    pub fn configured(&self) -> bool {
        !self.apps.is_empty()
    }

    fn app(&self, environment: Environment) -> Option<&AppEnv> {
        self.apps.iter().find(|a| a.environment == environment)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn cookie_path(&self) -> &str {
        &self.cookie_path
    }

    pub fn contacts(&self) -> Option<&Contacts> {
        self.contacts.as_deref()
    }

    // ---- sessions -----------------------------------------------------------------------------------------------

    /// Verifies an app context (the `X-Zoom-App-Context` header, or what `getAppContext()` returned) and opens a
    /// session for its user.
    pub async fn open_session(&self, context: &[u8]) -> Result<Opened, AppError> {
        if !self.configured() {
            return Err(AppError::NotConfigured);
        }
        let now = now_ms();
        let verified = self.verifier.verify(context, now)?;
        let user_id = verified
            .user_id()
            .map_err(|_| AppError::NoUser)?
            .to_string();
        let token = tokens::new_token();
        let token_hash = hash_token(&token);
        let row = SessionRow {
            user_id: user_id.clone(),
            environment: verified.environment.as_str().to_string(),
            created_at: now,
            expires_at: now.saturating_add(self.session_ttl_ms),
            oauth_state: None,
            oauth_verifier: None,
            oauth_started_at: None,
        };
        self.store.zoomapp_insert_session(&token_hash, &row).await?;
        tracing::info!(environment = %verified.environment, "Zoom App session opened");
        Ok(Opened {
            token,
            session: Session {
                token_hash,
                user_id,
                environment: verified.environment,
                row,
            },
        })
    }

    /// The session a cookie value stands for, if it is live.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, AppError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let token_hash = hash_token(token);
        let Some(row) = self.store.zoomapp_session(&token_hash, now_ms()).await? else {
            return Ok(None);
        };
        let Some(environment) = environment_of(&row.environment) else {
            return Ok(None);
        };
        Ok(Some(Session {
            token_hash,
            user_id: row.user_id.clone(),
            environment,
            row,
        }))
    }

    pub async fn session_answer(&self, session: &Session) -> Result<SessionAnswer, AppError> {
        let connected = self
            .store
            .zoomapp_tokens(&session.user_id, session.environment.as_str())
            .await?
            .is_some();
        Ok(SessionAnswer {
            environment: session.environment,
            oauth: OAuthAnswer {
                in_client: self.in_client,
                connected,
                pkce: self.in_client_pkce.as_str(),
            },
            checklist: self.checklist.clone(),
        })
    }

    /// How long a session cookie should live, in seconds.
    pub fn session_max_age(&self) -> i64 {
        self.session_ttl_ms / 1000
    }

    // ---- workspaces ---------------------------------------------------------------------------------------------

    pub async fn workspace(
        &self,
        user_id: &str,
        engagement_id: &str,
    ) -> Result<Option<WorkspaceState>, AppError> {
        validate_engagement_id(engagement_id)?;
        let Some(row) = self.store.zoomapp_workspace(user_id, engagement_id).await? else {
            return Ok(None);
        };
        serde_json::from_str(&row.state)
            .map(Some)
            .map_err(|e| AppError::CorruptWorkspace(e.to_string()))
    }

    /// Applies an edit (`finalize` false) or a finalize to the user's workspace of the engagement, with the merge
    /// rule of `zoom_app::workspace`, in one transaction. A finalize then logs the stored final workspace as an
    /// event (at every finalize, retries included: a retry after a crash between the two writes logs it then, and
    /// the log counts repeats as duplicates), and the answer waits for that commit.
    pub async fn write_workspace(
        &self,
        user_id: &str,
        engagement_id: &str,
        write: WorkspaceWrite,
        finalize: bool,
    ) -> Result<WriteAnswer, AppError> {
        validate_engagement_id(engagement_id)?;
        write.validate()?;
        let result: Mutex<Option<Result<(WorkspaceState, Outcome), String>>> = Mutex::new(None);
        let merge = |stored: Option<&str>| -> Option<(String, bool)> {
            let stored: Option<WorkspaceState> = match stored.map(serde_json::from_str).transpose()
            {
                Ok(s) => s,
                Err(e) => {
                    *lock(&result) = Some(Err(e.to_string()));
                    return None;
                }
            };
            let (state, outcome) = if finalize {
                apply_finalize(stored, write.clone())
            } else {
                apply_write(stored, write.clone())
            };
            let json = serde_json::to_string(&state).ok();
            let finalized = state.finalized;
            *lock(&result) = Some(Ok((state, outcome)));
            // Only an applied write changes what is stored.
            match (outcome, json) {
                (Outcome::Applied, Some(json)) => Some((json, finalized)),
                _ => None,
            }
        };
        self.store
            .zoomapp_merge_workspace(user_id, engagement_id, &merge, now_ms())
            .await?;
        let taken = lock(&result).take();
        let (state, outcome) = match taken {
            Some(Ok(done)) => done,
            Some(Err(e)) => return Err(AppError::CorruptWorkspace(e)),
            None => {
                return Err(AppError::CorruptWorkspace(
                    "the workspace was not merged".into(),
                ))
            }
        };
        if finalize && state.finalized {
            let fact = WorkspaceFact {
                user_id: user_id.to_string(),
                version: (
                    state.version.client_ts,
                    state.version.device_id.clone(),
                    state.version.rev,
                ),
                notes: state.workspace.notes.clone(),
                tags: state.workspace.tags.clone(),
                checklist: state.workspace.checklist.clone(),
                end_time: state.end_time,
            };
            let event = crate::sources::zoomapp::finalized_event(engagement_id, fact, now_ms());
            self.log.append_one(Inbound::Event(event)).await?;
        }
        Ok(WriteAnswer {
            outcome,
            workspace: state,
        })
    }

    // ---- OAuth --------------------------------------------------------------------------------------------------

    /// The web install flow's first step: where to send the browser (Zoom's authorize page, PKCE S256 and `state`).
    /// `environment`: which credentials (default: production when configured, else development).
    pub async fn begin_install(&self, environment: Option<&str>) -> Result<Url, AppError> {
        let redirect = self
            .redirect_url
            .as_deref()
            .ok_or(AppError::NoRedirectUrl)?;
        let app = match environment {
            Some(name) => environment_of(name)
                .and_then(|e| self.app(e))
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "environment: {name:?} is not a configured credential set"
                    ))
                })?,
            None => self
                .app(Environment::Production)
                .or_else(|| self.app(Environment::Development))
                .ok_or(AppError::NotConfigured)?,
        };
        let now = now_ms();
        let pkce = Pkce::generate(PkceMethod::S256);
        let state = zoom_app::oauth::new_state();
        let state_hash = hash_token(&state);
        let sealed = self.sealer.seal(
            pkce.verifier().expose().as_bytes(),
            &tokens::install_aad(&state_hash),
        );
        self.store
            .zoomapp_insert_oauth_state(
                &state_hash,
                app.environment.as_str(),
                &sealed,
                now,
                now + OAUTH_FLOW_TTL_MS,
            )
            .await?;
        Ok(app.client.authorize_url(redirect, &pkce, &state)?)
    }

    /// The callback: exchanges the code (with the flow's verifier), learns the user, stores the tokens, and returns
    /// the deeplink that opens the app in the Zoom client.
    pub async fn finish_install(&self, code: &str, state: &str) -> Result<Url, AppError> {
        let redirect = self
            .redirect_url
            .as_deref()
            .ok_or(AppError::NoRedirectUrl)?;
        if code.is_empty() || code.len() > 512 || state.is_empty() || state.len() > 256 {
            return Err(AppError::BadRequest("code and state are required".into()));
        }
        let state_hash = hash_token(state);
        let (environment, sealed) = self
            .store
            .zoomapp_take_oauth_state(&state_hash, now_ms())
            .await?
            .ok_or(AppError::State)?;
        let app = environment_of(&environment)
            .and_then(|e| self.app(e))
            .ok_or(AppError::State)?;
        let verifier = self
            .sealer
            .open(&sealed, &tokens::install_aad(&state_hash))?;
        let verifier = zoom_app::Secret::new(String::from_utf8_lossy(&verifier).into_owned());
        let tokens = app.client.exchange_code(code, redirect, &verifier).await?;
        let user = app.client.current_user(&tokens.access_token).await?;
        self.store_tokens(&user.id, app.environment, &tokens, user.account_id.clone())
            .await?;
        tracing::info!(environment = %app.environment, "Zoom App installed by a user (web flow)");
        let link = app
            .client
            .deeplink(
                &tokens.access_token,
                &DeeplinkRequest {
                    action: Some("openApp".into()),
                    kind: Some(1),
                },
            )
            .await?;
        Ok(link)
    }

    /// In-client OAuth, first step: a fresh verifier and state kept in the session; the panel passes the answer
    /// to `zoomSdk.authorize`.
    pub async fn begin_in_client(&self, session: &Session) -> Result<AuthorizeOptions, AppError> {
        if !self.in_client {
            return Err(AppError::BadRequest(
                "in-client OAuth is switched off (zoom_app.in_client_oauth)".into(),
            ));
        }
        let pkce = Pkce::generate(self.in_client_pkce);
        let state = zoom_app::oauth::new_state();
        let sealed = self.sealer.seal(
            pkce.verifier().expose().as_bytes(),
            &tokens::session_aad(&session.token_hash),
        );
        let method = format!("{}:{sealed}", self.in_client_pkce.as_str());
        if !self
            .store
            .zoomapp_set_session_oauth(
                &session.token_hash,
                Some(&hash_token(&state)),
                Some(&method),
                Some(now_ms()),
            )
            .await?
        {
            return Err(AppError::NoSession);
        }
        Ok(AuthorizeOptions::new(&pkce, &state))
    }

    /// In-client OAuth, second step: the `onAuthorized` event the panel forwarded. The state must be the
    /// session's; the code is exchanged with the event's `redirectUri` (the page's `href` when it is empty).
    pub async fn finish_in_client(
        &self,
        session: &Session,
        event: &OnAuthorized,
        href: Option<&str>,
    ) -> Result<(), AppError> {
        if !event.result {
            return Err(AppError::NotAuthorized);
        }
        let row = &session.row;
        let fresh = row
            .oauth_started_at
            .is_some_and(|t| now_ms() - t <= OAUTH_FLOW_TTL_MS);
        let state_ok = match (&row.oauth_state, &event.state) {
            (Some(expected), Some(received)) => {
                zoom_app::oauth::state_matches(expected, &hash_token(received))
            }
            _ => false,
        };
        let (Some(stored), true, true) = (&row.oauth_verifier, fresh, state_ok) else {
            return Err(AppError::State);
        };
        // Single use: whatever happens next, this state is spent.
        self.store
            .zoomapp_set_session_oauth(&session.token_hash, None, None, None)
            .await?;
        let (_method, sealed) = stored.split_once(':').ok_or(AppError::State)?;
        let verifier = self
            .sealer
            .open(sealed, &tokens::session_aad(&session.token_hash))?;
        let verifier = zoom_app::Secret::new(String::from_utf8_lossy(&verifier).into_owned());
        let redirect_uri = Some(event.redirect_uri.as_str())
            .filter(|r| !r.is_empty())
            .or(href)
            .ok_or_else(|| AppError::BadRequest("redirectUri (or href) is required".into()))?;
        if event.code.is_empty() || event.code.len() > 512 {
            return Err(AppError::BadRequest("code is required".into()));
        }
        let app = self
            .app(session.environment)
            .ok_or(AppError::NotConfigured)?;
        let tokens = app
            .client
            .exchange_code(&event.code, redirect_uri, &verifier)
            .await?;
        let user = app.client.current_user(&tokens.access_token).await?;
        if user.id != session.user_id {
            tracing::warn!(environment = %session.environment,
                "in-client OAuth returned another Zoom user's tokens than the session's; not stored");
            return Err(AppError::OtherUser);
        }
        self.store_tokens(&user.id, app.environment, &tokens, user.account_id.clone())
            .await?;
        tracing::info!(environment = %app.environment, "Zoom App authorized in the client");
        Ok(())
    }

    /// When tokens obtained at `obtained_at` and expiring at `expires_at` should be refreshed: `refresh_margin`
    /// before expiry, but never before half their lifetime (a short-lived token is not refreshed in a loop).
    fn refresh_at(&self, obtained_at: i64, expires_at: i64) -> i64 {
        let half_life = obtained_at + (expires_at - obtained_at).max(0) / 2;
        (expires_at - self.refresh_margin_ms).max(half_life)
    }

    fn token_row(
        &self,
        user_id: &str,
        environment: Environment,
        tokens: &TokenSet,
        account_id: Option<String>,
        now: i64,
    ) -> TokenRow {
        let sealed = SealedTokens {
            access_token: tokens.access_token.expose().to_string(),
            refresh_token: tokens.refresh_token.expose().to_string(),
            account_id,
        };
        let plaintext = serde_json::to_vec(&sealed).unwrap_or_default();
        let expires_at = tokens.expires_at_ms(now);
        TokenRow {
            user_id: user_id.to_string(),
            environment: environment.as_str().to_string(),
            sealed: self.sealer.seal(
                &plaintext,
                &tokens::tokens_aad(user_id, environment.as_str()),
            ),
            scope: tokens.scope.clone(),
            expires_at,
            refresh_at: self.refresh_at(now, expires_at),
            obtained_at: now,
            refreshed_at: None,
            refresh_failures: 0,
            last_error: None,
        }
    }

    async fn store_tokens(
        &self,
        user_id: &str,
        environment: Environment,
        tokens: &TokenSet,
        account_id: Option<String>,
    ) -> Result<(), AppError> {
        let row = self.token_row(user_id, environment, tokens, account_id, now_ms());
        self.store.zoomapp_put_tokens(&row).await?;
        self.wake_refresher.notify_one();
        Ok(())
    }

    // ---- deauthorization ------------------------------------------------------------------------------------------

    /// The app's event endpoint (`POST /zoomapp/deauthorize`): Zoom's URL validation, and `app_deauthorized`,
    /// which deletes the user's tokens for that app and, unless Zoom says the user granted data retention, their
    /// sessions and workspaces (drafts and finalized ones the panel keeps; what was logged into engagement records
    /// stays part of those records).
    pub async fn notice(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<NoticeAnswer, AppError> {
        let Some(verifier) = &self.notices else {
            return Err(AppError::Notice(NoticeError::Signature(
                zoom::webhook::SignatureError::NoSecret,
            )));
        };
        let now_s = now_ms() / 1000;
        match zoom_app::oauth::parse_app_notice(verifier, signature, timestamp, body, now_s)? {
            AppNotice::UrlValidation(answer) => Ok(NoticeAnswer::UrlValidation(answer)),
            AppNotice::Deauthorized(notice) => {
                let environment = self
                    .apps
                    .iter()
                    .find(|a| a.client.config().client_id == notice.client_id)
                    .map(|a| a.environment);
                let Some(environment) = environment else {
                    tracing::warn!(
                        client_id = ?notice.client_id,
                        "deauthorization notice for a client id that is not configured; ignored"
                    );
                    return Ok(NoticeAnswer::Done {
                        status: "ignored",
                        deleted: None,
                    });
                };
                let deleted = self
                    .store
                    .zoomapp_delete_user(
                        &notice.user_id,
                        Some(environment.as_str()),
                        notice.user_data_retention,
                    )
                    .await?;
                tracing::info!(
                    %environment,
                    retention = notice.user_data_retention,
                    tokens = deleted.tokens,
                    sessions = deleted.sessions,
                    workspaces = deleted.workspaces,
                    "Zoom App deauthorized by a user: their data was deleted"
                );
                Ok(NoticeAnswer::Done {
                    status: "deleted",
                    deleted: Some(deleted),
                })
            }
            AppNotice::Other { event } => {
                tracing::info!(event = ?event, "Zoom App event ignored");
                Ok(NoticeAnswer::Done {
                    status: "ignored",
                    deleted: None,
                })
            }
        }
    }

    /// The manifest-facing summary of what is configured (for logs and `zoomapp manifest`).
    pub fn describe(&self) -> serde_json::Value {
        json!({
            "environments": self.apps.iter().map(|a| a.environment.as_str()).collect::<Vec<_>>(),
            "in_client_oauth": self.in_client,
            "in_client_pkce": self.in_client_pkce.as_str(),
            "token_key_id": self.sealer.key_id(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The app manifest for `zcc-bridge zoomapp manifest`: the configured Home URL and redirect URL for each configured
/// credential set.
pub fn manifest(config: &Config) -> anyhow::Result<serde_json::Value> {
    let za = &config.zoom_app;
    let redirect = za.redirect_url.as_deref().context(
        "set zoom_app.redirect_url (https://<host>/zoomapp/oauth/callback): the manifest needs the app's URLs",
    )?;
    let home = za
        .home_url()
        .context("zoom_app.home_url could not be derived from the redirect URL")?;
    let urls = zoom_app::sdk::EnvironmentUrls {
        home_url: Url::parse(&home).context("zoom_app.home_url")?,
        redirect_url: Url::parse(redirect).context("zoom_app.redirect_url")?,
    };
    let mut options = zoom_app::sdk::ManifestOptions::new(za.display_name.clone());
    options.in_client_oauth = za.in_client_oauth;
    let configured: Vec<&str> = za.credentials().into_iter().map(|(n, _)| n).collect();
    // Without credentials yet (the app is being created), both environments get the URLs.
    if configured.is_empty() || configured.contains(&"development") {
        options.development = Some(urls.clone());
    }
    if configured.is_empty() || configured.contains(&"production") {
        options.production = Some(urls);
    }
    if let Some(public) = &config.media.public_url {
        if let Some(host) = Url::parse(public)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            options.extra_domains.push(host);
        }
    }
    Ok(zoom_app::sdk::manifest(&options)?)
}
