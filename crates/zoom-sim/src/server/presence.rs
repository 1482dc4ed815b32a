//! Zoom Workplace user presence (reference §7.1; presence-sync reference §5.1–§5.2): the REST API a presence-sync
//! service writes to, the users behind it, and the `user.presence_status_updated` events their changes fire.
//!
//! - `PUT /v2/users/{userId}/presence_status` (MEDIUM): `{"status": "...", "duration": minutes}` (`duration` only
//!   with `Do_Not_Disturb`, 1–1440, default 20; the spec's `Do_No_Disturb` typo is accepted too) → 204. Refusals:
//!   400 `300` (bad body or status), 404 `1001` (no such user), 400 `5301` (the user is not logged in to the
//!   client), 429 (a second successful update of the user within [`SimServerConfig::presence_min_interval`], one
//!   minute at Zoom; refused attempts do not move the window).
//! - `GET /v2/users/{userId}/presence_status` (MEDIUM) → `{"status"}`, plus `end_time` and `remaining_time`
//!   (minutes) in a Do-Not-Disturb that ends; `Offline` for a user who is not logged in; 404 `1001`.
//! - `{userId}` is a user id or an e-mail address (case-insensitive).
//!
//! Control and truth routes (no auth; not Zoom APIs): `GET /sim/presence` (every user with the history of every
//! change and refused API attempt), `GET /sim/presence/{userId}`, `POST /sim/presence/users` (add or replace a
//! user), `POST /sim/presence/{userId}` (the user changes their own status in the client, or logs in or out: not
//! subject to the API's per-minute rule).
//!
//! Users: every agent of the scenario's directory (logged in, `Available`) plus those added through the control
//! API. A Do-Not-Disturb with an end reverts to `Available` when it ends.
//!
//! Events: a change the user makes (status, login, logout) fires `user.presence_status_updated`, as Zoom documents
//! ("after the user updates the presence status manually in the Zoom Client app", and on sign-in). It is published
//! to the WebSocket subscription and, with [`SimServerConfig::presence_webhook`], sent as a signed webhook. With
//! [`SimServerConfig::presence_echo_api_updates`] updates made through the API fire it too.
//!
//! ❓ Unconfirmed and chosen here: the 429's `Retry-After` (none unless `presence_retry_after`, then seconds), the
//! order of the checks (body, user, login, interval), whether a `duration` next to another status is refused (it is,
//! 400 `300`), whether API updates and sign-outs fire the event (API: off by default; sign-out: on, `Offline`), and
//! the webhook vocabulary: `In_A_Zoom_Meeting` is reported as `In_Meeting` and `On_A_Call` as `On_Phone_Call` (the
//! event's documented enum), other statuses as set.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    bad_request, lock, zoom_error, Counters, Endpoint, Shared, SimServerConfig, ZoomError,
};
use crate::generator::Directory;
use crate::{iso_time, now_ms, SimEvent};

/// The statuses `PUT .../presence_status` accepts (plus [`DND_TYPO`]), reference §7.1.
pub const PRESENCE_STATUSES: [&str; 9] = [
    "Away",
    "Available",
    "In_Calendar_Event",
    "Presenting",
    "In_A_Zoom_Meeting",
    "On_A_Call",
    "Out_of_Office",
    "Busy",
    DO_NOT_DISTURB,
];
pub const AVAILABLE: &str = "Available";
pub const DO_NOT_DISTURB: &str = "Do_Not_Disturb";
/// The spec's spelling of [`DO_NOT_DISTURB`] in the request enum; accepted and stored as `Do_Not_Disturb`.
pub const DND_TYPO: &str = "Do_No_Disturb";
/// What `GET .../presence_status` answers for a user who is not logged in to the Zoom client.
pub const OFFLINE: &str = "Offline";
/// Do-Not-Disturb length when the request gives none, and the longest allowed (minutes).
pub const DEFAULT_DND_MINUTES: u32 = 20;
pub const MAX_DND_MINUTES: u32 = 1440;
/// 404: the user does not exist.
pub const USER_NOT_FOUND_CODE: u32 = 1001;
/// 400: the update failed (the user is not logged in to the Zoom client).
pub const PRESENCE_UPDATE_FAILED_CODE: u32 = 5301;
pub const PRESENCE_UPDATE_FAILED_MESSAGE: &str =
    "Request to update the presence status of this user failed.";
/// The per-user, per-minute 429 (`{"code": 429, "message": ...}`).
pub const PRESENCE_RATE_LIMIT_MESSAGE: &str =
    "Too many requests submitted to update the presence status of this user.";
/// The event a presence change fires.
pub const PRESENCE_EVENT: &str = "user.presence_status_updated";

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceVia {
    /// `PUT /v2/users/{userId}/presence_status`.
    Api,
    /// The user, in the Zoom client (the control API or [`super::SimServer::change_presence`]).
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceOutcome {
    Applied,
    /// Refused with 429: another API update of the user was applied less than the minimum interval before.
    RateLimited,
    /// Refused with 400 `5301`: the user was not logged in.
    NotLoggedIn,
}

/// One change or refused API attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// Wall clock, epoch milliseconds.
    pub at_ms: i64,
    /// The status asked for (`Do_No_Disturb` recorded as `Do_Not_Disturb`); `Offline` for a sign-out.
    pub status: String,
    pub via: PresenceVia,
    pub outcome: PresenceOutcome,
    /// Do-Not-Disturb minutes, when the change set one with an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// `Some(true)`: this change signed the user in; `Some(false)`: out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in: Option<bool>,
    /// Whether it fired a `user.presence_status_updated` event.
    #[serde(default)]
    pub event: bool,
}

/// A user as the simulator sees them, with their history (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUser {
    pub user_id: String,
    pub email: String,
    pub logged_in: bool,
    /// The current status: `Offline` when not logged in.
    pub status: String,
    /// When the current Do-Not-Disturb ends (epoch ms), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnd_end_ms: Option<i64>,
    #[serde(default)]
    pub updates: Vec<PresenceUpdate>,
}

impl PresenceUser {
    /// The API updates that were applied.
    pub fn applied_api_updates(&self) -> impl Iterator<Item = &PresenceUpdate> {
        self.updates
            .iter()
            .filter(|u| u.via == PresenceVia::Api && u.outcome == PresenceOutcome::Applied)
    }

    /// The shortest gap between two applied API updates (ms), to check the per-minute rule was kept.
    pub fn min_api_update_gap_ms(&self) -> Option<i64> {
        let times: Vec<i64> = self.applied_api_updates().map(|u| u.at_ms).collect();
        times.windows(2).map(|w| w[1] - w[0]).min()
    }
}

/// A user to add (`POST /sim/presence/users`). Replaces a user with the same `user_id`, history included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPresenceUser {
    pub user_id: String,
    #[serde(default)]
    pub email: String,
    /// Default true.
    #[serde(default = "yes")]
    pub logged_in: bool,
    /// Default `Available`; must be absent or `Offline` for a user who is not logged in.
    #[serde(default)]
    pub status: Option<String>,
    /// Do-Not-Disturb minutes (none: no end).
    #[serde(default)]
    pub duration: Option<u32>,
}

fn yes() -> bool {
    true
}

impl NewPresenceUser {
    /// A logged-in, `Available` user.
    pub fn new(user_id: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            email: email.into(),
            logged_in: true,
            status: None,
            duration: None,
        }
    }
}

/// What a user does in the Zoom client (`POST /sim/presence/{userId}`).
///
/// - `logged_in: true` signs in (status `status`, default `Available`); `false` signs out (`status` must be absent).
/// - `status` alone changes the status of a logged-in user (a logged-out one must sign in:
///   [`PresenceError::NotLoggedIn`]).
/// - Signing in when logged in, or out when logged out, changes nothing and records nothing.
/// - `duration`: Do-Not-Disturb minutes (only with `Do_Not_Disturb`; none: no end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceChange {
    #[serde(default)]
    pub logged_in: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub duration: Option<u32>,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceError {
    UnknownUser(String),
    InvalidUserId,
    InvalidStatus(String),
    /// Out of 1–1440, or given with a status other than Do-Not-Disturb.
    InvalidDuration(String),
    /// A status change for a user who is not logged in, or a status given with a sign-out.
    NotLoggedIn(String),
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresenceError::UnknownUser(id) => write!(f, "User does not exist: {id}."),
            PresenceError::InvalidUserId => write!(f, "user_id must not be empty."),
            PresenceError::InvalidStatus(status) => write!(
                f,
                "Invalid status {status:?}: expected one of {}.",
                PRESENCE_STATUSES.join(", ")
            ),
            PresenceError::InvalidDuration(why) => write!(f, "Invalid duration: {why}."),
            PresenceError::NotLoggedIn(id) => write!(
                f,
                "User {id} is not logged in to the Zoom client; sign in (logged_in: true) to set a status."
            ),
        }
    }
}

impl std::error::Error for PresenceError {}

impl PresenceError {
    fn into_zoom(self) -> ZoomError {
        let message = self.to_string();
        match self {
            PresenceError::UnknownUser(_) => {
                zoom_error(StatusCode::NOT_FOUND, USER_NOT_FOUND_CODE, &message)
            }
            _ => bad_request(&message),
        }
    }
}

/// Where `user.presence_status_updated` webhooks go. Delivered like [`crate::Emitter`] does (signed, Zoom's
/// retry schedule times `retry_scale`), one delivery per event, concurrently: no ordering guarantee, as at Zoom.
#[derive(Clone, PartialEq)]
pub struct PresenceWebhook {
    pub target: String,
    pub secret: String,
    /// Multiplies Zoom's 5/20/60-minute retry schedule (1.0: real).
    pub retry_scale: f64,
}

impl PresenceWebhook {
    pub fn new(target: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            secret: secret.into(),
            retry_scale: 1.0,
        }
    }
}

impl fmt::Debug for PresenceWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceWebhook")
            .field("target", &self.target)
            .field("secret", &"***")
            .field("retry_scale", &self.retry_scale)
            .finish()
    }
}

/// The accepted spelling of `status`, canonical (`Do_No_Disturb` → `Do_Not_Disturb`).
fn canonical_status(status: &str) -> Option<&'static str> {
    if status == DND_TYPO {
        return Some(DO_NOT_DISTURB);
    }
    PRESENCE_STATUSES.iter().copied().find(|s| *s == status)
}

/// The Do-Not-Disturb minutes of a change to `status` (`default` when none is given), or an error for a duration
/// out of range or next to another status.
fn dnd_minutes(
    status: &str,
    duration: Option<u32>,
    default: Option<u32>,
) -> Result<Option<u32>, PresenceError> {
    if status != DO_NOT_DISTURB {
        return match duration {
            Some(_) => Err(PresenceError::InvalidDuration(
                "only allowed with Do_Not_Disturb".to_owned(),
            )),
            None => Ok(None),
        };
    }
    match duration.or(default) {
        Some(m) if !(1..=MAX_DND_MINUTES).contains(&m) => Err(PresenceError::InvalidDuration(
            format!("{m} is not between 1 and {MAX_DND_MINUTES} minutes"),
        )),
        minutes => Ok(minutes),
    }
}

/// The status as the `user.presence_status_updated` enum names it.
fn event_status(status: &str) -> &str {
    match status {
        "In_A_Zoom_Meeting" => "In_Meeting",
        "On_A_Call" => "On_Phone_Call",
        other => other,
    }
}

#[derive(Debug)]
struct UserState {
    user: PresenceUser,
    /// When the last API update of this user was applied (the per-minute window).
    last_api_update: Option<Instant>,
}

impl UserState {
    /// A Do-Not-Disturb that has ended reverts to `Available`.
    fn refresh(&mut self, now_ms: i64) {
        let user = &mut self.user;
        if user.status == DO_NOT_DISTURB && user.dnd_end_ms.is_some_and(|end| end <= now_ms) {
            user.status = AVAILABLE.to_owned();
            user.dnd_end_ms = None;
        }
    }

    fn set_status(&mut self, status: &str, minutes: Option<u32>, now_ms: i64) {
        self.user.status = status.to_owned();
        self.user.dnd_end_ms = minutes.map(|m| now_ms + i64::from(m) * 60_000);
    }
}

/// Every user, in the order they were added (the directory's agents first).
#[derive(Debug, Default)]
pub(super) struct Presence {
    users: Vec<UserState>,
}

/// An API update, validated.
#[derive(Debug)]
struct Update {
    status: &'static str,
    minutes: Option<u32>,
}

impl Presence {
    pub(super) fn from_directory(directory: &Directory) -> Presence {
        let mut presence = Presence::default();
        for agent in &directory.agents {
            // Directory agents are valid users; an empty id cannot occur in a generated directory.
            let _ = presence.add(NewPresenceUser::new(&agent.user_id, &agent.email), 0);
        }
        presence
    }

    /// By id, then by e-mail (case-insensitive).
    fn find(&mut self, key: &str, now_ms: i64) -> Option<&mut UserState> {
        let index = self
            .users
            .iter()
            .position(|u| u.user.user_id == key)
            .or_else(|| {
                self.users.iter().position(|u| {
                    !u.user.email.is_empty() && u.user.email.eq_ignore_ascii_case(key)
                })
            })?;
        let state = &mut self.users[index];
        state.refresh(now_ms);
        Some(state)
    }

    fn add(&mut self, new: NewPresenceUser, now_ms: i64) -> Result<PresenceUser, PresenceError> {
        if new.user_id.trim().is_empty() {
            return Err(PresenceError::InvalidUserId);
        }
        let mut state = UserState {
            user: PresenceUser {
                user_id: new.user_id.clone(),
                email: new.email,
                logged_in: new.logged_in,
                status: OFFLINE.to_owned(),
                dnd_end_ms: None,
                updates: Vec::new(),
            },
            last_api_update: None,
        };
        if new.logged_in {
            let status = match new.status.as_deref() {
                None => AVAILABLE,
                Some(s) => {
                    canonical_status(s).ok_or_else(|| PresenceError::InvalidStatus(s.to_owned()))?
                }
            };
            let minutes = dnd_minutes(status, new.duration, None)?;
            state.set_status(status, minutes, now_ms);
        } else if new.status.as_deref().is_some_and(|s| s != OFFLINE) || new.duration.is_some() {
            return Err(PresenceError::NotLoggedIn(new.user_id));
        }
        let user = state.user.clone();
        match self
            .users
            .iter_mut()
            .find(|u| u.user.user_id == new.user_id)
        {
            Some(existing) => *existing = state,
            None => self.users.push(state),
        }
        Ok(user)
    }

    pub(super) fn snapshot(&mut self, now_ms: i64) -> Vec<PresenceUser> {
        self.users
            .iter_mut()
            .map(|u| {
                u.refresh(now_ms);
                u.user.clone()
            })
            .collect()
    }

    pub(super) fn user(&mut self, key: &str, now_ms: i64) -> Option<PresenceUser> {
        self.find(key, now_ms).map(|u| u.user.clone())
    }

    /// A change the user makes in the client. Returns the user and the event to fire, if any.
    fn change(
        &mut self,
        key: &str,
        change: PresenceChange,
        now_ms: i64,
    ) -> Result<(PresenceUser, Option<PresenceUser>), PresenceError> {
        let status = match change.status.as_deref() {
            None => None,
            Some(s) => Some(
                canonical_status(s).ok_or_else(|| PresenceError::InvalidStatus(s.to_owned()))?,
            ),
        };
        let state = self
            .find(key, now_ms)
            .ok_or_else(|| PresenceError::UnknownUser(key.to_owned()))?;
        let user_id = state.user.user_id.clone();
        let record = |state: &mut UserState, status: &str, minutes, logged_in| {
            state.user.updates.push(PresenceUpdate {
                at_ms: now_ms,
                status: status.to_owned(),
                via: PresenceVia::User,
                outcome: PresenceOutcome::Applied,
                duration: minutes,
                logged_in,
                event: true,
            });
        };
        match (change.logged_in, state.user.logged_in) {
            (Some(false), _) if status.is_some() || change.duration.is_some() => {
                return Err(PresenceError::NotLoggedIn(user_id));
            }
            (Some(false), false) => return Ok((state.user.clone(), None)),
            (Some(false), true) => {
                state.user.logged_in = false;
                state.set_status(OFFLINE, None, now_ms);
                record(state, OFFLINE, None, Some(false));
            }
            (None, false) => {
                return match status {
                    Some(_) => Err(PresenceError::NotLoggedIn(user_id)),
                    None => Ok((state.user.clone(), None)),
                };
            }
            (Some(true), false) => {
                let status = status.unwrap_or(AVAILABLE);
                let minutes = dnd_minutes(status, change.duration, None)?;
                state.user.logged_in = true;
                state.set_status(status, minutes, now_ms);
                record(state, status, minutes, Some(true));
            }
            (Some(true) | None, true) => {
                let Some(status) = status else {
                    if change.duration.is_some() {
                        return Err(PresenceError::InvalidDuration(
                            "only allowed with a status".to_owned(),
                        ));
                    }
                    return Ok((state.user.clone(), None));
                };
                let minutes = dnd_minutes(status, change.duration, None)?;
                state.set_status(status, minutes, now_ms);
                record(state, status, minutes, None);
            }
        }
        Ok((state.user.clone(), Some(state.user.clone())))
    }

    /// `PUT .../presence_status` after its body was validated. Returns the user to fire an event for, if the
    /// update is echoed.
    fn api_update(
        &mut self,
        key: &str,
        update: &Update,
        config: &SimServerConfig,
        now: Instant,
        now_ms: i64,
    ) -> Result<Option<PresenceUser>, ZoomError> {
        let state = self.find(key, now_ms).ok_or_else(|| {
            zoom_error(
                StatusCode::NOT_FOUND,
                USER_NOT_FOUND_CODE,
                &format!("User does not exist: {key}."),
            )
        })?;
        let echo = config.presence_echo_api_updates;
        let mut record = |outcome| {
            state.user.updates.push(PresenceUpdate {
                at_ms: now_ms,
                status: update.status.to_owned(),
                via: PresenceVia::Api,
                outcome,
                duration: update.minutes,
                logged_in: None,
                event: echo && outcome == PresenceOutcome::Applied,
            });
        };
        if !state.user.logged_in {
            record(PresenceOutcome::NotLoggedIn);
            return Err(zoom_error(
                StatusCode::BAD_REQUEST,
                PRESENCE_UPDATE_FAILED_CODE,
                PRESENCE_UPDATE_FAILED_MESSAGE,
            ));
        }
        let window_end = state
            .last_api_update
            .map(|last| super::later(last, config.presence_min_interval));
        if let Some(end) = window_end.filter(|end| now < *end) {
            record(PresenceOutcome::RateLimited);
            let mut error = zoom_error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                PRESENCE_RATE_LIMIT_MESSAGE,
            );
            if config.presence_retry_after {
                let wait = end.duration_since(now).as_secs_f64().ceil().max(1.0);
                error = error.header(RETRY_AFTER, format!("{wait:.0}"));
            }
            return Err(error);
        }
        record(PresenceOutcome::Applied);
        state.set_status(update.status, update.minutes, now_ms);
        state.last_api_update = Some(now);
        Ok(echo.then(|| state.user.clone()))
    }
}

/// `{"status", "duration"?}` of a `PUT`, or Zoom's 400 `300`.
fn parse_update(body: &[u8]) -> Result<Update, ZoomError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| bad_request("Request Body should be a valid JSON object."))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad_request("Request Body should be a valid JSON object."))?;
    let status = match object.get("status") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(bad_request("Invalid field: status.")),
        None => return Err(bad_request("Missing field: status.")),
    };
    let status = canonical_status(status)
        .ok_or_else(|| PresenceError::InvalidStatus(status.to_owned()).into_zoom())?;
    let duration = match object.get("duration") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| bad_request("Invalid field: duration."))?,
        ),
    };
    let minutes = dnd_minutes(status, duration, Some(DEFAULT_DND_MINUTES))
        .map_err(PresenceError::into_zoom)?;
    Ok(Update { status, minutes })
}

/// The `user.presence_status_updated` envelope for `user`'s current status: the keys of Zoom's example
/// (`shared/vendor/zoom/webhooks/user.presence_status_updated.json`), with the time under `date_time` as Zoom's schema
/// requires (the example spells it `date-time`). `app` is the client the change was made in: the desktop client for
/// a user's own change. ❓ What Zoom reports in `app` for an API update or a sign-out is undocumented; the simulator
/// says the desktop client too.
fn presence_event(account_id: &str, user: &PresenceUser, now_ms: i64) -> SimEvent {
    let status = event_status(&user.status);
    SimEvent {
        event_ts: now_ms,
        body: json!({
            "event": PRESENCE_EVENT,
            "event_ts": now_ms,
            "payload": {
                "account_id": account_id,
                "object": {
                    "date_time": iso_time(now_ms),
                    "email": user.email,
                    "id": user.user_id,
                    "presence_status": status,
                    "app": {"type": "desktop", "presence_status": status},
                },
            },
        }),
    }
}

impl Shared {
    /// Fires `user.presence_status_updated`: to WebSocket subscribers and the configured webhook target.
    fn fire_presence_event(self: &Arc<Self>, user: &PresenceUser, now_ms: i64) {
        Counters::bump(&self.counters.presence_events);
        let event = presence_event(&self.config.account_id, user, now_ms);
        if let Some(hub) = self.hub.get() {
            hub.publish(&event.body);
        }
        let (Some(emitter), Some(runtime)) =
            (&self.presence_sink.emitter, &self.presence_sink.runtime)
        else {
            return;
        };
        let emitter = emitter.clone();
        let shared = Arc::downgrade(self);
        runtime.spawn(async move {
            let report = emitter.emit_all(std::slice::from_ref(&event)).await;
            if let Some(shared) = shared.upgrade() {
                Counters::add(
                    &shared.counters.presence_webhooks_acked,
                    report.acked as u64,
                );
                Counters::add(
                    &shared.counters.presence_webhooks_failed,
                    report.failed as u64,
                );
            }
        });
    }

    pub(super) fn presence_users(&self) -> Vec<PresenceUser> {
        lock(&self.presence).snapshot(now_ms())
    }

    pub(super) fn presence_user(&self, key: &str) -> Option<PresenceUser> {
        lock(&self.presence).user(key, now_ms())
    }

    pub(super) fn add_presence_user(
        &self,
        user: NewPresenceUser,
    ) -> Result<PresenceUser, PresenceError> {
        lock(&self.presence).add(user, now_ms())
    }

    pub(super) fn change_presence(
        self: &Arc<Self>,
        key: &str,
        change: PresenceChange,
    ) -> Result<PresenceUser, PresenceError> {
        let now_ms = now_ms();
        let (user, fire) = lock(&self.presence).change(key, change, now_ms)?;
        if let Some(fired) = fire {
            self.fire_presence_event(&fired, now_ms);
        }
        Ok(user)
    }

    fn update_presence(self: &Arc<Self>, key: &str, body: &[u8]) -> Result<(), ZoomError> {
        let update = parse_update(body)?;
        let now_ms = now_ms();
        let result =
            lock(&self.presence).api_update(key, &update, &self.config, Instant::now(), now_ms);
        match result {
            Ok(echo) => {
                if let Some(user) = echo {
                    self.fire_presence_event(&user, now_ms);
                }
                Ok(())
            }
            Err(error) => {
                if error.status == StatusCode::TOO_MANY_REQUESTS {
                    Counters::bump(&self.counters.presence_rate_limited);
                }
                Err(error)
            }
        }
    }
}

/// Where presence events go besides the WebSocket hub (the emitter has no `Debug`).
#[derive(Default)]
pub(super) struct PresenceSink {
    emitter: Option<crate::Emitter>,
    runtime: Option<tokio::runtime::Handle>,
}

impl fmt::Debug for PresenceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceSink")
            .field("webhook", &self.emitter.is_some())
            .finish()
    }
}

impl PresenceSink {
    /// The webhook emitter of `config.presence_webhook`; an unusable one (bad URL, empty secret) is logged and left
    /// out, since serving cannot fail.
    pub(super) fn new(config: &SimServerConfig) -> PresenceSink {
        let Some(webhook) = &config.presence_webhook else {
            return PresenceSink::default();
        };
        let emitter = crate::Emitter::new(crate::EmitterConfig {
            retry_scale: webhook.retry_scale,
            ..crate::EmitterConfig::new(webhook.target.clone(), webhook.secret.clone())
        });
        match emitter {
            Ok(emitter) => PresenceSink {
                emitter: Some(emitter),
                runtime: tokio::runtime::Handle::try_current().ok(),
            },
            Err(error) => {
                tracing::warn!(%error, "presence webhook disabled");
                PresenceSink::default()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Routes

type UserId = Result<Path<String>, PathRejection>;

pub(super) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    // `/sim/presence/users` is a static segment, which axum's router prefers to `/sim/presence/{user_id}`.
    router
        .route(
            Endpoint::UpdatePresenceStatus.route(),
            get(get_presence).put(put_presence),
        )
        .route("/sim/presence", get(sim_presence))
        .route("/sim/presence/users", post(sim_add_user))
        .route("/sim/presence/{user_id}", get(sim_user).post(sim_change))
}

fn user_id(id: UserId) -> Result<String, ZoomError> {
    id.map(|Path(id)| id)
        .map_err(|_| bad_request("Invalid user id."))
}

async fn put_presence(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: UserId,
    body: Bytes,
) -> Response {
    let result = shared
        .gate(Endpoint::UpdatePresenceStatus, &headers)
        .and_then(|()| user_id(id))
        .and_then(|id| shared.update_presence(&id, &body));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn get_presence(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: UserId,
) -> Response {
    let result = shared
        .gate(Endpoint::GetPresenceStatus, &headers)
        .and_then(|()| user_id(id))
        .and_then(|id| {
            shared
                .presence_user(&id)
                .ok_or_else(|| PresenceError::UnknownUser(id).into_zoom())
        });
    let user = match result {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let mut body = json!({"status": user.status});
    if let (true, Some(end)) = (user.status == DO_NOT_DISTURB, user.dnd_end_ms) {
        let remaining_ms = (end - now_ms()).max(0);
        body["end_time"] = json!(iso_time(end));
        body["remaining_time"] = json!((remaining_ms + 59_999) / 60_000);
    }
    Json(body).into_response()
}

fn control_error(error: PresenceError) -> Response {
    error.into_zoom().into_response()
}

fn control_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ZoomError> {
    serde_json::from_slice(body).map_err(|e| bad_request(&format!("Invalid request body: {e}.")))
}

async fn sim_presence(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"users": shared.presence_users()})).into_response()
}

async fn sim_user(State(shared): State<Arc<Shared>>, id: UserId) -> Response {
    let id = match user_id(id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match shared.presence_user(&id) {
        Some(user) => Json(user).into_response(),
        None => control_error(PresenceError::UnknownUser(id)),
    }
}

async fn sim_add_user(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let new: NewPresenceUser = match control_body(&body) {
        Ok(new) => new,
        Err(error) => return error.into_response(),
    };
    match shared.add_presence_user(new) {
        Ok(user) => Json(user).into_response(),
        Err(error) => control_error(error),
    }
}

async fn sim_change(State(shared): State<Arc<Shared>>, id: UserId, body: Bytes) -> Response {
    let id = match user_id(id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let change: PresenceChange = match control_body(&body) {
        Ok(change) => change,
        Err(error) => return error.into_response(),
    };
    match shared.change_presence(&id, change) {
        Ok(user) => Json(user).into_response(),
        Err(error) => control_error(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(interval: Duration) -> SimServerConfig {
        SimServerConfig {
            presence_min_interval: interval,
            ..SimServerConfig::default()
        }
    }

    fn update(status: &'static str) -> Update {
        Update {
            status,
            minutes: None,
        }
    }

    #[test]
    fn statuses_and_durations() {
        assert_eq!(canonical_status("Do_No_Disturb"), Some(DO_NOT_DISTURB));
        assert_eq!(canonical_status("Busy"), Some("Busy"));
        assert_eq!(canonical_status("busy"), None);
        assert_eq!(canonical_status("Offline"), None);
        let dnd = parse_update(br#"{"status": "Do_No_Disturb"}"#).expect("dnd");
        assert_eq!((dnd.status, dnd.minutes), (DO_NOT_DISTURB, Some(20)));
        let dnd = parse_update(br#"{"status": "Do_Not_Disturb", "duration": 1440}"#).expect("dnd");
        assert_eq!(dnd.minutes, Some(1440));
        for bad in [
            &br#"{"status": "Do_Not_Disturb", "duration": 0}"#[..],
            br#"{"status": "Do_Not_Disturb", "duration": 1441}"#,
            br#"{"status": "Do_Not_Disturb", "duration": "20"}"#,
            br#"{"status": "Away", "duration": 20}"#,
            br#"{"status": "Offline"}"#,
            br#"{"status": 3}"#,
            br#"{}"#,
            br#"[]"#,
            b"not json",
        ] {
            let error = parse_update(bad).expect_err("refused");
            assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, 300));
        }
        assert_eq!(event_status("On_A_Call"), "On_Phone_Call");
        assert_eq!(event_status("In_A_Zoom_Meeting"), "In_Meeting");
        assert_eq!(event_status("Busy"), "Busy");
    }

    #[test]
    fn one_api_update_per_interval_and_user() {
        let mut presence = Presence::default();
        presence
            .add(NewPresenceUser::new("u1", "a@example.com"), 0)
            .expect("add");
        presence
            .add(NewPresenceUser::new("u2", "b@example.com"), 0)
            .expect("add");
        let config = config(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(presence
            .api_update("u1", &update("Busy"), &config, t0, 0)
            .is_ok());
        // Another user has their own window; e-mail addresses match case-insensitively.
        assert!(presence
            .api_update("B@Example.com", &update("Busy"), &config, t0, 0)
            .is_ok());
        let refused = presence
            .api_update(
                "a@example.com",
                &update("Away"),
                &config,
                t0 + Duration::from_secs(59),
                59_000,
            )
            .expect_err("429");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        // A refused attempt does not move the window.
        assert!(presence
            .api_update(
                "u1",
                &update("Away"),
                &config,
                t0 + Duration::from_secs(60),
                60_000
            )
            .is_ok());
        let user = presence.user("u1", 60_000).expect("u1");
        assert_eq!(user.status, "Away");
        let outcomes: Vec<_> = user.updates.iter().map(|u| u.outcome).collect();
        assert_eq!(
            outcomes,
            [
                PresenceOutcome::Applied,
                PresenceOutcome::RateLimited,
                PresenceOutcome::Applied
            ]
        );
        assert_eq!(user.min_api_update_gap_ms(), Some(60_000));
    }

    #[test]
    fn user_changes_sign_in_and_out_and_dnd_ends() {
        let mut presence = Presence::default();
        presence
            .add(NewPresenceUser::new("u1", ""), 0)
            .expect("add");
        let dnd = PresenceChange {
            status: Some(DND_TYPO.to_owned()),
            duration: Some(1),
            ..PresenceChange::default()
        };
        let (user, fired) = presence.change("u1", dnd, 0).expect("dnd");
        assert_eq!(
            (user.status.as_str(), user.dnd_end_ms),
            (DO_NOT_DISTURB, Some(60_000))
        );
        assert!(fired.is_some());
        assert_eq!(presence.user("u1", 60_000).expect("u1").status, AVAILABLE);

        let out = PresenceChange {
            logged_in: Some(false),
            ..PresenceChange::default()
        };
        let (user, _) = presence.change("u1", out, 1).expect("sign out");
        assert_eq!((user.logged_in, user.status.as_str()), (false, OFFLINE));
        let busy = PresenceChange {
            status: Some("Busy".to_owned()),
            ..PresenceChange::default()
        };
        assert_eq!(
            presence.change("u1", busy.clone(), 2).err(),
            Some(PresenceError::NotLoggedIn("u1".to_owned()))
        );
        let back = PresenceChange {
            logged_in: Some(true),
            ..busy
        };
        let (user, _) = presence.change("u1", back, 3).expect("sign in");
        assert_eq!((user.logged_in, user.status.as_str()), (true, "Busy"));
        assert_eq!(user.updates.last().and_then(|u| u.logged_in), Some(true));
        assert_eq!(
            presence
                .change("nobody", PresenceChange::default(), 4)
                .err(),
            Some(PresenceError::UnknownUser("nobody".to_owned()))
        );
    }
}
