//! `GET /api/v1/stream` (Server-Sent Events), `GET /api/v1/agents`, `GET /api/v1/agents/{user_id or email}`,
//! `GET /api/v1/engagements/{id}/activity`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, Problem};
use super::params::{parse_bound, DateAs};
use super::AppState;
use crate::activity::utc_day;
use crate::core::activity::ActivityKind;
use crate::store::activity::StreamPosition;
use crate::store::now_ms;
use crate::stream::{Batch, Filter, Published, Stream};

/// Filters of the live stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamParams {
    /// Comma-separated user ids or e-mail addresses.
    agent: Option<String>,
    /// Comma-separated `cc_queue_id`s.
    queue: Option<String>,
    /// Comma-separated kinds (`accepted,ended`).
    kinds: Option<String>,
    engagement_id: Option<String>,
    /// For clients that cannot set the `Last-Event-ID` header.
    last_event_id: Option<String>,
}

fn list(value: &Option<String>, lower: bool) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if lower {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        })
        .collect()
}

/// Agent and engagement activity as it happens (Server-Sent Events; resumes from `Last-Event-ID`).
#[utoipa::path(get, path = "/api/v1/stream", tag = "real time", params(StreamParams),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The live stream is not running", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let Some(stream) = app.stream.clone() else {
        return ApiError::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the live stream is not running",
        );
    };
    let resume = match resume_position(&headers, params.last_event_id.as_deref()) {
        Ok(resume) => resume,
        Err(e) => return e.into_response(),
    };
    // Agents match on user id or e-mail; ids keep their case, addresses compare in lower case.
    let mut agents = list(&params.agent, false);
    agents.extend(
        agents
            .iter()
            .filter(|a| a.contains('@'))
            .map(|a| a.to_ascii_lowercase())
            .collect::<Vec<_>>(),
    );
    let filter = Filter {
        agents,
        queues: list(&params.queue, false),
        kinds: list(&params.kinds, true),
        engagements: list(&params.engagement_id, false),
    };
    if let Some(bad) = filter
        .kinds
        .iter()
        .find(|k| ActivityKind::parse(k).is_none())
    {
        return ApiError::response(
            StatusCode::BAD_REQUEST,
            format!(
                "kinds: {bad:?} is not one of {}",
                ActivityKind::ALL.map(ActivityKind::as_str).join(", ")
            ),
        );
    }
    sse(&app, stream, filter, resume)
}

/// `Last-Event-ID` (the header, else `?last_event_id=`) as a stream position; a value this stream never sent is a
/// 400.
pub(super) fn resume_position(
    headers: &HeaderMap,
    param: Option<&str>,
) -> Result<Option<StreamPosition>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(param);
    match last_event_id.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => StreamPosition::decode(value).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Last-Event-ID: {value:?} is not an id this stream sent"
            ))
        }),
    }
}

/// The Server-Sent Events answer of a client of the live stream with `filter`, resuming after `resume`.
pub(super) fn sse(
    app: &AppState,
    stream: Stream,
    filter: Filter,
    resume: Option<StreamPosition>,
) -> Response {
    // Where to start: after the resumed id, or at the hub's position now (the replay covers events published
    // between reading it and subscribing).
    let start = match resume {
        Some(p) => p,
        None => stream.position(),
    };
    let rx = stream.subscribe();
    let client = Client {
        stopping: app.stopping.clone(),
        guard: stream.client(),
        stream,
        rx,
        filter,
        last: start,
        replay_from: Some(start),
    };
    let chunks = futures_util::stream::unfold(client, |mut client| async move {
        client
            .next_chunk()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), client))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Reverse proxies (nginx) pass events on at once instead of buffering them.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// A comment line every `KEEP_ALIVE` without events keeps proxies and clients from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One connected client. Each chunk it yields is whatever it has to send at that moment: a whole broadcast
/// batch (one shared buffer when nothing is filtered out), the frames a catch-up found, or a keep-alive.
struct Client {
    stopping: tokio::sync::watch::Receiver<bool>,
    #[allow(dead_code)] // counts the client while it is connected
    guard: crate::stream::ClientGuard,
    stream: Stream,
    rx: tokio::sync::broadcast::Receiver<Arc<Batch>>,
    filter: Filter,
    /// The last position handled (sent or filtered out): nothing at or before it is sent again.
    last: StreamPosition,
    /// Catching up from here (resume, start, or after falling behind the broadcast).
    replay_from: Option<StreamPosition>,
}

impl Client {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            if let Some(from) = self.replay_from {
                match self.stream.replay(from).await {
                    Ok(events) => match events.last() {
                        Some(last) => {
                            self.replay_from = Some(last.position);
                            if let Some(chunk) = self.select(&events, None) {
                                return Some(chunk);
                            }
                        }
                        None => self.replay_from = None,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream client could not catch up; closing it (it resumes on reconnect)");
                        return None;
                    }
                }
                continue;
            }
            let received = tokio::select! {
                r = tokio::time::timeout(KEEP_ALIVE, self.rx.recv()) => r,
                _ = self.stopping.changed() => return None,
            };
            match received {
                Ok(Ok(batch)) => {
                    if let Some(chunk) = self.select(&batch.events, Some(&batch.frames)) {
                        return Some(chunk);
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    tracing::debug!(
                        missed,
                        "live stream client fell behind; catching up from the log"
                    );
                    metrics::counter!("zcc_stream_client_catch_ups_total").increment(1);
                    self.replay_from = Some(self.last);
                }
                Ok(Err(RecvError::Closed)) => return None,
                Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
            }
        }
    }

    /// The frames of `events` this client has not had and wants, as one chunk (`all`: every frame of `events`
    /// in one buffer, sent as it is when nothing is left out). Advances `last` past all of `events`.
    fn select(&mut self, events: &[Arc<Published>], all: Option<&Bytes>) -> Option<Bytes> {
        let fresh = events.partition_point(|e| e.position <= self.last);
        let events = &events[fresh..];
        let last = events.last()?.position;
        let wanted = |e: &&Arc<Published>| self.filter.matches(e);
        let chunk = match all {
            Some(all) if fresh == 0 && events.iter().all(|e| wanted(&e)) => all.clone(),
            _ => {
                let mut out = BytesMut::new();
                for e in events.iter().filter(wanted) {
                    out.extend_from_slice(&e.frame);
                }
                out.freeze()
            }
        };
        self.last = last;
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// Every agent: status, since when, engagements held.
#[utoipa::path(get, path = "/api/v1/agents", tag = "real time",
    responses((status = 200, description = "`agents`", body = Object)))]
pub(super) async fn agents(State(app): State<AppState>) -> Response {
    app.wait_for_projection().await;
    match crate::activity::Agents::new(app.store.clone())
        .list(now_ms())
        .await
    {
        Ok(agents) => Json(json!({ "agents": agents })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The window of an agent's day.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DayParams {
    /// `yyyy-mm-dd` (UTC day) or an RFC 3339 time; default: today.
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// An agent's day: status spans, sessions, engagements.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "real time",
    params(("id" = String, Path, description = "The agent's user id or e-mail address"), DayParams),
    responses(
        (status = 200, description = "The day", body = Object),
        (status = 400, description = "A parameter could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No event names this agent", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn agent(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<DayParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let now = now_ms();
    let mut window = utc_day(now);
    if let Some(date) = &params.date {
        match parse_bound("date", date, DateAs::Start) {
            Ok(t) => window = utc_day(t),
            Err(e) => return e.into_response(),
        }
    }
    if let Some(from) = &params.from {
        match parse_bound("from", from, DateAs::Start) {
            Ok(t) => window.0 = t,
            Err(e) => return e.into_response(),
        }
    }
    if let Some(to) = &params.to {
        match parse_bound("to", to, DateAs::EndExclusive) {
            Ok(t) => window.1 = t,
            Err(e) => return e.into_response(),
        }
    }
    if window.1 <= window.0 {
        return ApiError::response(StatusCode::BAD_REQUEST, "the window is empty: to <= from");
    }
    app.wait_for_projection().await;
    match crate::activity::Agents::new(app.store.clone())
        .day(&id, window, now)
        .await
    {
        Ok(Some(day)) => Json(day).into_response(),
        Ok(None) => ApiError::response(
            StatusCode::NOT_FOUND,
            format!("no event names an agent {id:?}"),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An engagement's live activity: who holds it, holds, mutes, transfers.
#[utoipa::path(get, path = "/api/v1/engagements/{engagement_id}/activity", tag = "real time",
    params(("engagement_id" = String, Path, description = "Zoom's engagement id")),
    responses(
        (status = 200, description = "The activity", body = Object),
        (status = 404, description = "No activity is known for it", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn engagement_activity(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    app.wait_for_projection().await;
    match crate::activity::Agents::new(app.store.clone())
        .engagement(&id, now_ms())
        .await
    {
        Ok(Some(activity)) => Json(activity).into_response(),
        Ok(None) => ApiError::response(
            StatusCode::NOT_FOUND,
            format!("no activity is known for engagement {id:?}"),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}
