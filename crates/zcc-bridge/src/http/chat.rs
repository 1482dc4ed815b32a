//! The chatbot channel's routes: `POST /chat/zoom/{channel}` (the Webhook URL pasted into Zoom's bot connector),
//! `POST /chat/bot/{channel}/callback` (the `http` backend's replies) and the admin API under `/api/v1/chat`
//! (channels, their users, conversations).

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chatbot::client_app::{generate_hs_credentials, JwtAlgorithm};
use chatbot::zoom_connector::{bearer_token, trigger_ack, ReplyMode, VirtualAgentRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ApiResult, Problem};
use super::params::{decode_cursor, next_cursor, page_limit};
use super::AppState;
use crate::chat::{channels, ChannelChange, ChannelError, LiveChannel, Refusal, TurnError};
use crate::config::{ChatBotKind, ChatChannelConfig};
use crate::core::record::format_ms;
use crate::sources::chat::{self as source, conversation_key, parse_bot_turn};
use crate::store::chat::{ChatUser, SessionQuery};
use crate::store::{now_ms, Inbound, Outcome};

fn refused(channel: &str, reason: &'static str) {
    metrics::counter!("zcc_chat_refused_total", "channel" => channel.to_string(), "reason" => reason)
        .increment(1);
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-zm-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect())
}

/// `POST /chat/zoom/{channel}`: a consumer message from Zoom's bot connector (the Webhook URL to paste into it).
#[utoipa::path(post, path = "/chat/zoom/{channel}", tag = "chat", security(()),
    params(("channel" = String, Path, description = "A `[chat.channels.NAME]` or a channel made over the API")),
    request_body(content = Object, description = "Zoom's virtual agent request (`id`, `sessionId`, `conversationMode`, `message`, `conversationVariables`, `languageCode`), with the client app's JWT as bearer token"),
    responses(
        (status = 200, description = "Acknowledged (trigger mode), or the bot's reply (action mode)", body = Object),
        (status = 400, description = "Unreadable: kept in the quarantine", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid JWT", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Channel disabled, or the user is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than server.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The turn was refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not durable yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn inbound(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let received_at = now_ms();
    let Some(channel) = app.chat.channel(&name) else {
        refused("unknown", "unknown_channel");
        tracing::warn!(channel = ?name, "chat message for a channel that does not exist");
        return Err(ApiError::not_found(format!("no chat channel {name:?}")));
    };
    if !channel.config.enabled {
        refused(&name, "disabled");
        tracing::warn!(channel = %name, "chat message for a disabled channel refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("chat channel {name:?} is disabled"),
        ));
    }
    let body = body.map_err(|rejection| {
        refused(&name, "unreadable_body");
        let (status, message) = super::connections::body_refusal(&rejection);
        tracing::warn!(channel = %name, %status, error = ?message, "chat message body refused");
        ApiError::new(status, message)
    })?;
    let Some(token) = bearer_token(&headers) else {
        refused(&name, "no_token");
        tracing::warn!(channel = %name, "chat message without a bearer token refused");
        return Err(ApiError::unauthorized(
            "missing bearer token (the client app's JWT)",
        ));
    };
    let verified = channel.channel.client_app.verify(token).map_err(|e| {
        refused(&name, e.kind());
        tracing::warn!(channel = %name, reason = e.kind(), error = ?e.to_string(), "chat token refused");
        ApiError::unauthorized(format!("token refused: {e}"))
    })?;
    let request = match VirtualAgentRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            refused(&name, "unreadable_request");
            tracing::warn!(channel = %name, reason = ?e.to_string(), bytes = body.len(),
                "authenticated chat request could not be read; quarantining");
            let item = Inbound::Quarantine(source::quarantine(
                &name,
                body,
                received_at,
                request_id(&headers),
                e.to_string(),
            ));
            return match app.log.append_one(item).await {
                Ok(Outcome::Quarantined { quarantine_id }) => {
                    metrics::counter!("zcc_chat_messages_in_total", "channel" => name.clone(),
                        "outcome" => "quarantined")
                    .increment(1);
                    Err(ApiError::bad_request(format!(
                        "{e} (kept as quarantine item {quarantine_id})"
                    )))
                }
                Ok(_) => Err(ApiError::bad_request(e.to_string())),
                Err(e) => {
                    tracing::error!(channel = %name, error = %e, "chat request not acknowledged");
                    Err(ApiError::unavailable(e.to_string()))
                }
            };
        }
    };
    let identity = channel
        .channel
        .client_app
        .identify(
            &verified,
            request.consumer_email().as_deref(),
            request.consumer_phone().as_deref(),
            &request.session_id,
        )
        .map_err(|e| {
            refused(&name, "anonymous");
            tracing::warn!(channel = %name, session = ?request.session_id, "anonymous chat user refused");
            ApiError::new(StatusCode::FORBIDDEN, e.to_string())
        })?;
    app.chat
        .admit(&channel, &identity, &request, received_at)
        .await
        .map_err(|refusal| match refusal {
            Refusal::User(message) => {
                refused(&name, "user");
                tracing::warn!(channel = %name, session = ?request.session_id, user = ?identity.id,
                    reason = %message, "chat user refused");
                ApiError::new(StatusCode::FORBIDDEN, message)
            }
            Refusal::Store(e) => ApiError::from(e),
        })?;
    let event = source::consumer_event(&name, &request, body, received_at, request_id(&headers));
    let outcome = app
        .log
        .append_one(Inbound::Event(event))
        .await
        .map_err(|e| {
            tracing::error!(channel = %name, error = %e, "chat message not acknowledged");
            ApiError::unavailable(e.to_string())
        })?;
    let (event_id, label) = match outcome {
        Outcome::Stored { event_id } => (event_id, "stored"),
        Outcome::Duplicate { event_id } => (event_id, "duplicate"),
        Outcome::Quarantined { .. } => {
            return Err(ApiError::bad_request("the message was quarantined"));
        }
    };
    metrics::counter!("zcc_chat_messages_in_total", "channel" => name.clone(), "outcome" => label)
        .increment(1);
    match channel.config.reply_mode {
        ReplyMode::Trigger => {
            if matches!(outcome, Outcome::Stored { .. }) {
                app.chat
                    .submit_turn(&channel, &request.session_id, event_id);
            }
            Ok(Json(trigger_ack(&request.id)).into_response())
        }
        ReplyMode::Action => {
            let done = app
                .chat
                .answer(&channel, event_id, request.clone())
                .await
                .map_err(|e| turn_error(&name, e))?;
            let reply = done.reply_or_empty(&request);
            if !reply.is_empty() {
                metrics::counter!("zcc_chat_messages_out_total", "channel" => name.clone())
                    .increment(1);
            }
            Ok(Json(reply).into_response())
        }
    }
}

fn turn_error(channel: &str, e: TurnError) -> ApiError {
    match e {
        TurnError::Retry { reason, .. } => {
            tracing::warn!(%channel, %reason, "chat turn not answered; the connector may retry");
            ApiError::unavailable(reason)
        }
        TurnError::Reject(reason) => {
            tracing::warn!(%channel, %reason, "chat turn refused");
            ApiError::unprocessable(reason)
        }
    }
}

/// `POST /chat/bot/{channel}/callback`: a reply the `http` backend sends later (after answering a turn 202).
#[utoipa::path(post, path = "/chat/bot/{channel}/callback", tag = "chat", security(()),
    params(("channel" = String, Path, description = "The channel whose `http` bot answers")),
    request_body(content = Object, description = "The bot's turn, with the callback token as bearer token"),
    responses(
        (status = 200, description = "`status`: `ok` and the `event_id`", body = Object),
        (status = 400, description = "Unreadable: kept in the quarantine", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong callback token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such channel, or it has no http bot", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The channel takes no callbacks", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than server.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not durable yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn callback(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let received_at = now_ms();
    let Some(channel) = app.chat.channel(&name) else {
        return Err(ApiError::not_found(format!("no chat channel {name:?}")));
    };
    let expected = match (&channel.config.bot.kind, &channel.config.bot.callback_token) {
        (ChatBotKind::Http, Some(token)) => token,
        _ => {
            return Err(ApiError::not_found(format!(
                "chat channel {name:?} takes no callbacks (an http bot with callback_token does)"
            )))
        }
    };
    if channel.config.reply_mode == ReplyMode::Action {
        return Err(ApiError::conflict(format!(
            "chat channel {name:?} answers in the response (reply_mode = \"action\"): a callback's reply could not \
             reach Zoom; use reply_mode = \"trigger\" for a bot that answers by callback"
        )));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::sources::flow::bearer_token)
        .unwrap_or("");
    if !bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
        refused(&name, "callback_token");
        tracing::warn!(channel = %name, "bot callback with a missing or wrong token refused");
        return Err(ApiError::unauthorized("missing or wrong callback token"));
    }
    let body = body.map_err(|rejection| {
        let (status, message) = super::connections::body_refusal(&rejection);
        ApiError::new(status, message)
    })?;
    let parsed = match chatbot::backends::http::parse_callback(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(channel = %name, error = %e, "bot callback could not be read; quarantining");
            let mut item = source::quarantine(&name, body, received_at, None, e.to_string());
            // Not a connector request: kept under its own label (listed; a replay reports it unusable).
            item.source_label = Some(format!("chat-callback:{name}"));
            return match app.log.append_one(Inbound::Quarantine(item)).await {
                Ok(Outcome::Quarantined { quarantine_id }) => Err(ApiError::bad_request(format!(
                    "{e} (kept as quarantine item {quarantine_id})"
                ))),
                Ok(_) => Err(ApiError::bad_request(e.to_string())),
                Err(e) => Err(ApiError::unavailable(e.to_string())),
            };
        }
    };
    let done = app
        .chat
        .callback(&channel, &body, parsed)
        .await
        .map_err(|e| turn_error(&name, e))?;
    Ok(Json(json!({"status": "ok", "event_id": done.event_id})).into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// The admin API.

pub(super) fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/chat/channels", get(list_channels).post(create_channel))
        .route(
            "/chat/channels/{name}",
            get(get_channel).put(update_channel).delete(delete_channel),
        )
        .route(
            "/chat/channels/{name}/users",
            get(list_users).post(add_user),
        )
        .route(
            "/chat/channels/{name}/users/{user_id}",
            get(get_user).delete(delete_user),
        )
        .route("/chat/credentials", post(credentials))
        .route("/chat/sessions", get(list_sessions))
        .route("/chat/sessions/{channel}/{session_id}", get(get_session))
}

fn channel_view(c: &LiveChannel) -> Value {
    json!({
        "name": c.name,
        "origin": c.origin,
        "enabled": c.config.enabled,
        "reply_mode": c.config.reply_mode,
        "bot": c.config.bot.kind.as_str(),
        "webhook_path": format!("/chat/zoom/{}", c.name),
        "sinks": c.sinks,
        "created_at": c.created_at.and_then(format_ms),
        "updated_at": c.updated_at.and_then(format_ms),
        "settings": channels::masked(&c.config),
    })
}

fn channel_error(e: ChannelError) -> ApiError {
    match e {
        ChannelError::Invalid(m) => ApiError::unprocessable(m),
        ChannelError::Conflict(m) => ApiError::conflict(m),
        ChannelError::NotFound(m) => ApiError::not_found(m),
        ChannelError::Seal(e) => ApiError::conflict(e.to_string()),
        ChannelError::Store(e) => ApiError::from(e),
    }
}

#[utoipa::path(get, path = "/api/v1/chat/channels", tag = "chat", responses((status = 200, description = "`channels`, secrets masked", body = Object)))]
pub(super) async fn list_channels(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let list: Vec<Value> = app
        .chat
        .channels()
        .iter()
        .map(|c| channel_view(c))
        .collect();
    Ok(Json(json!({"channels": list})))
}

#[utoipa::path(get, path = "/api/v1/chat/channels/{name}", tag = "chat", params(("name" = String, Path, description = "The channel")),
    responses((status = 200, description = "The channel, secrets masked", body = Object), (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_channel(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let channel = app
        .chat
        .channel(&name)
        .ok_or_else(|| ApiError::not_found(format!("no chat channel {name:?}")))?;
    Ok(Json(channel_view(&channel)))
}

/// A channel's settings from a request body (an object of `[chat.channels.<name>]` keys).
fn settings(body: Value) -> ApiResult<ChatChannelConfig> {
    // A serde error names the field; secrets refuse wrong types without echoing them.
    serde_json::from_value(body).map_err(|e| ApiError::unprocessable(format!("settings: {e}")))
}

#[utoipa::path(post, path = "/api/v1/chat/channels", tag = "chat", request_body(content = Object, description = "`name` and the channel's settings (as `[chat.channels.NAME]`)"),
    responses((status = 201, description = "Created", body = Object), (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 409, description = "It exists, or secrets cannot be sealed", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid settings", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn create_channel(
    State(app): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(mut body) = body?;
    let name = body
        .as_object_mut()
        .and_then(|o| o.remove("name"))
        .and_then(|n| n.as_str().map(str::to_string))
        .ok_or_else(|| ApiError::unprocessable("name: a string is needed"))?;
    crate::config::check_source_name(&name).map_err(ApiError::unprocessable)?;
    if app.chat.channel(&name).is_some() || app.chat.is_configured(&name) {
        return Err(ApiError::conflict(format!("channel {name:?} exists")));
    }
    let config = settings(body)?;
    app.chat
        .change_channel(&name, ChannelChange::Created, Some(config))
        .await
        .map_err(channel_error)?;
    let view = app
        .chat
        .channel(&name)
        .map(|c| channel_view(&c))
        .unwrap_or_else(|| json!({"name": name}));
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(put, path = "/api/v1/chat/channels/{name}", tag = "chat", params(("name" = String, Path, description = "The channel")), request_body(content = Object, description = "The channel's new settings (secrets left out are kept)"),
    responses((status = 200, description = "Updated", body = Object), (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Configured in the file, or secrets cannot be sealed", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid settings", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn update_channel(
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(mut body) = body?;
    if let Some(given) = body.as_object_mut().and_then(|o| o.remove("name")) {
        if given.as_str() != Some(name.as_str()) {
            return Err(ApiError::unprocessable(
                "name: a channel cannot be renamed (its conversations and outboxes are keyed by it)",
            ));
        }
    }
    if app.chat.is_configured(&name) {
        return Err(ApiError::conflict(format!(
            "channel {name:?} is defined in the configuration file; change it there"
        )));
    }
    let stored = app
        .chat
        .stored_config(&name)
        .await
        .map_err(channel_error)?
        .ok_or_else(|| ApiError::not_found(format!("no chat channel {name:?}")))?;
    channels::keep_omitted_secrets(&mut body, &stored);
    let config = settings(body)?;
    app.chat
        .change_channel(&name, ChannelChange::Updated, Some(config))
        .await
        .map_err(channel_error)?;
    let channel = app
        .chat
        .channel(&name)
        .ok_or_else(|| ApiError::not_found(format!("no chat channel {name:?}")))?;
    Ok(Json(channel_view(&channel)))
}

#[utoipa::path(delete, path = "/api/v1/chat/channels/{name}", tag = "chat", params(("name" = String, Path, description = "The channel")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Configured in the file", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_channel(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app.chat
        .change_channel(&name, ChannelChange::Deleted, None)
        .await
        .map_err(channel_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(super) struct CredentialsBody {
    #[serde(default = "default_algorithm")]
    jwt_algorithm: JwtAlgorithm,
}

fn default_algorithm() -> JwtAlgorithm {
    JwtAlgorithm::HS256
}

/// `POST /api/v1/chat/credentials`: a new client id and secret for an HS256/HS512 client app (Kore: "generates a
/// Client ID and Client Secret"). Shown once; nothing is stored until a channel is created with them.
#[utoipa::path(post, path = "/api/v1/chat/credentials", tag = "chat", request_body(content = Object, description = "`jwt_algorithm`: HS256 (default) or HS512"),
    responses((status = 200, description = "A client id and secret, shown once", body = Object), (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Not an HS algorithm", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn credentials(
    body: Result<Json<CredentialsBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let creds = generate_hs_credentials(body.jwt_algorithm)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    Ok(Json(json!({
        "client_id": creds.client_id,
        "client_secret": creds.client_secret.expose(),
        "jwt_algorithm": body.jwt_algorithm,
    })))
}

fn require_channel(app: &AppState, name: &str) -> ApiResult<()> {
    if app.chat.channel(name).is_some() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no chat channel {name:?}")))
    }
}

/// `?cursor=&limit=` of a channel's users.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserList {
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/chat/channels/{name}/users", tag = "chat", params(("name" = String, Path, description = "The channel"), UserList),
    responses((status = 200, description = "`users` and `next_cursor`", body = Object), (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_users(
    State(app): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<UserList>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(p) = params?;
    require_channel(&app, &name)?;
    let limit = page_limit(p.limit, 100, 1000)?;
    let users = app
        .chat
        .store()
        .chat_users(
            &name,
            decode_cursor::<String>(p.cursor.as_deref())?.as_deref(),
            limit,
        )
        .await?;
    let next = next_cursor(&users, limit, |u| u.user_id.clone());
    Ok(Json(json!({"users": users, "next_cursor": next})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    user_id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/chat/channels/{name}/users", tag = "chat", params(("name" = String, Path, description = "The channel")), request_body(content = Object, description = "`user_id`, optional `email`, `phone`"),
    responses((status = 201, description = "Registered", body = Object), (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Already registered", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Not a user", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn add_user(
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    require_channel(&app, &name)?;
    let user_id = body.user_id.trim().to_string();
    if user_id.is_empty() {
        return Err(ApiError::unprocessable("user_id is empty"));
    }
    let user = ChatUser {
        channel: name.clone(),
        user_id,
        email: body.email,
        phone: body.phone,
        registered_by: "api".into(),
        created_at: now_ms(),
    };
    if !app.chat.store().add_chat_user(&user).await? {
        return Err(ApiError::conflict(format!(
            "user {:?} exists on channel {name:?}",
            user.user_id
        )));
    }
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(get, path = "/api/v1/chat/channels/{name}/users/{user_id}", tag = "chat", params(("name" = String, Path, description = "The channel"), ("user_id" = String, Path, description = "The user")),
    responses((status = 200, description = "The user", body = Object), (status = 404, description = "No such channel or user", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_user(
    State(app): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> ApiResult<Json<ChatUser>> {
    require_channel(&app, &name)?;
    app.chat
        .store()
        .chat_user(&name, &user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id:?} on channel {name:?}")))
}

#[utoipa::path(delete, path = "/api/v1/chat/channels/{name}/users/{user_id}", tag = "chat", params(("name" = String, Path, description = "The channel"), ("user_id" = String, Path, description = "The user")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such channel or user", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_user(
    State(app): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_channel(&app, &name)?;
    if app.chat.store().delete_chat_user(&name, &user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no user {user_id:?} on channel {name:?}"
        )))
    }
}

/// Filters of the chat sessions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SessionList {
    channel: Option<String>,
    state: Option<String>,
    engagement_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

const SESSION_STATES: [&str; 3] = ["active", "handed_over", "ended"];

fn session_view(s: &crate::store::chat::ChatSession) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("started_at".into(), json!(format_ms(s.started_at)));
        obj.insert(
            "last_activity_at".into(),
            json!(format_ms(s.last_activity_at)),
        );
    }
    v
}

#[utoipa::path(get, path = "/api/v1/chat/sessions", tag = "chat", params(SessionList),
    responses((status = 200, description = "`sessions` and `next_cursor`", body = Object), (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list_sessions(
    State(app): State<AppState>,
    params: Result<Query<SessionList>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(p) = params?;
    let limit = page_limit(p.limit, 100, 1000)?;
    if let Some(state) = &p.state {
        if !SESSION_STATES.contains(&state.as_str()) {
            return Err(ApiError::bad_request(format!(
                "state: one of {}",
                SESSION_STATES.join(", ")
            )));
        }
    }
    let before = decode_cursor::<(i64, String)>(p.cursor.as_deref())?;
    let sessions = app
        .chat
        .store()
        .chat_sessions(&SessionQuery {
            channel: p.channel,
            state: p.state,
            engagement_id: p.engagement_id,
            before,
            limit,
        })
        .await?;
    let next = next_cursor(&sessions, limit, |s| {
        (s.last_activity_at, s.conversation.clone())
    });
    let list: Vec<Value> = sessions.iter().map(session_view).collect();
    Ok(Json(json!({"sessions": list, "next_cursor": next})))
}

/// One message of a conversation as the API shows it.
fn message_view(e: &crate::store::LoggedEvent) -> Value {
    let time = format_ms(e.received_at);
    if let Ok(turn) = parse_bot_turn(&e.raw) {
        return json!({
            "event_id": e.id,
            "type": e.event_type,
            "sender": "bot",
            "time": time,
            "text": turn.text(),
            "reply_to": turn.reply_to,
            "origin": turn.origin,
            "latency_ms": turn.latency_ms,
            "handover": turn.handover,
            "end": turn.end,
            "note": turn.note,
            "reply": turn.reply,
        });
    }
    match VirtualAgentRequest::parse(&e.raw) {
        Ok(request) => json!({
            "event_id": e.id,
            "type": e.event_type,
            "sender": "consumer",
            "time": time,
            "message_id": request.id,
            "mode": request.conversation_mode.as_str(),
            "text": request.text(),
            "duplicates": e.duplicate_count,
        }),
        Err(err) => json!({
            "event_id": e.id,
            "type": e.event_type,
            "time": time,
            "error": err.to_string(),
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/chat/sessions/{channel}/{session_id}", tag = "chat", params(("channel" = String, Path, description = "The channel"), ("session_id" = String, Path, description = "Zoom's sessionId")),
    responses((status = 200, description = "The session with its messages", body = Object), (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_session(
    State(app): State<AppState>,
    Path((channel, session_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let key = conversation_key(&channel, &session_id);
    let session = app.chat.store().chat_session(&key).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no conversation {session_id:?} on chat channel {channel:?}"
        ))
    })?;
    let events = app
        .chat
        .store()
        .conversation_events(&key, None, 10_000)
        .await?;
    let messages: Vec<Value> = events.iter().map(message_view).collect();
    let mut view = session_view(&session);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("messages".into(), Value::Array(messages));
    }
    Ok(Json(view))
}
