//! The configured Genesys Cloud orgs at run time: their API clients and who their users are on Zoom.
//!
//! A Genesys user's Zoom user is, in order: the `presence.users` entry for their Genesys user id; the entry for
//! their Genesys e-mail; their Genesys e-mail itself (Zoom takes an e-mail where a user id goes). E-mails are
//! looked up through the API (`GET /api/v2/users/{id}`) and cached; a failed lookup is retried later, never
//! guessed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use genesys::{GenesysClient, User};

use crate::config::{GenesysSource, PresenceConfig};

/// How long a looked-up user is trusted, and how long a user Genesys does not know stays unknown.
const FOUND_TTL: Duration = Duration::from_secs(3600);
const NOT_FOUND_TTL: Duration = Duration::from_secs(600);
/// After a lookup failed (Genesys unreachable), sessions of that user wait this long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(30);

pub struct GenesysOrg {
    pub name: String,
    pub config: GenesysSource,
    pub client: Option<Arc<GenesysClient>>,
    users: Mutex<HashMap<String, Cached>>,
    /// Users whose sessions were ignored for want of a Zoom user (as this replica saw them).
    unmapped: Mutex<BTreeMap<String, Unmapped>>,
}

/// A Genesys user with no Zoom user, as `GET /api/v1/presence` reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unmapped {
    pub source: String,
    pub genesys_user: String,
    pub reason: String,
    /// Sessions ignored, and the last time one was (epoch ms).
    pub sessions: u64,
    pub last_seen: i64,
}

#[derive(Clone)]
enum Cached {
    /// The user's e-mail (none: Genesys knows no e-mail for them, or not them at all).
    Known(Option<String>, Instant),
    /// The lookup failed; not before this instant again.
    Failed(String, Instant),
}

/// Who a Genesys user is on Zoom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoomUser {
    Mapped(String),
    /// Not mapped and not resolvable: reported, ignored.
    Unmapped(String),
    /// Could not be decided now (lookup failed): try again later.
    Later(String),
}

impl GenesysOrg {
    pub fn new(name: &str, config: GenesysSource) -> Result<Self, String> {
        let client = match config.api()? {
            Some(api) => Some(Arc::new(
                GenesysClient::new(api).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        Ok(Self {
            name: name.to_string(),
            config,
            client,
            users: Mutex::new(HashMap::new()),
            unmapped: Mutex::new(BTreeMap::new()),
        })
    }

    /// Notes a session ignored because its user has no Zoom user.
    pub fn report_unmapped(&self, genesys_user: &str, reason: &str, now: i64) {
        let mut unmapped = self.unmapped.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = unmapped
            .entry(genesys_user.to_string())
            .or_insert_with(|| Unmapped {
                source: self.name.clone(),
                genesys_user: genesys_user.to_string(),
                reason: String::new(),
                sessions: 0,
                last_seen: now,
            });
        entry.reason = reason.to_string();
        entry.sessions += 1;
        entry.last_seen = now;
    }

    pub fn unmapped(&self) -> Vec<Unmapped> {
        self.unmapped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Users already fetched (the pull source lists them): no lookups needed for them.
    pub fn remember(&self, users: &[User]) {
        let until = Instant::now() + FOUND_TTL;
        let mut cache = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        for u in users {
            cache.insert(
                u.id.clone(),
                Cached::Known(u.address().map(str::to_ascii_lowercase), until),
            );
        }
    }

    pub async fn zoom_user(
        &self,
        mapping: &BTreeMap<String, String>,
        genesys_user: &str,
    ) -> ZoomUser {
        let found = self.resolve(mapping, genesys_user).await;
        if matches!(found, ZoomUser::Mapped(_)) {
            self.unmapped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(genesys_user);
        }
        found
    }

    async fn resolve(&self, mapping: &BTreeMap<String, String>, genesys_user: &str) -> ZoomUser {
        if let Some(zoom) = mapping.get(genesys_user) {
            return ZoomUser::Mapped(zoom.clone());
        }
        let Some(client) = self.client.as_ref().filter(|_| self.config.lookup_email) else {
            return ZoomUser::Unmapped(
                "not in presence.users (and no e-mail lookup: the source has no API access)".into(),
            );
        };
        let now = Instant::now();
        let cached = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(genesys_user)
            .cloned();
        let email = match cached {
            Some(Cached::Known(email, until)) if now < until => email,
            Some(Cached::Failed(error, until)) if now < until => return ZoomUser::Later(error),
            _ => {
                let (entry, email) = match client.user(genesys_user).await {
                    Ok(user) => {
                        let email = user.address().map(str::to_ascii_lowercase);
                        (Cached::Known(email.clone(), now + FOUND_TTL), email)
                    }
                    Err(e) if e.is_not_found() => (Cached::Known(None, now + NOT_FOUND_TTL), None),
                    Err(e) => {
                        let error = e.to_string();
                        self.users
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(
                                genesys_user.to_string(),
                                Cached::Failed(error.clone(), now + RETRY_AFTER),
                            );
                        tracing::warn!(source = %self.name, genesys_user, error = %error, "Genesys user lookup failed; will retry");
                        return ZoomUser::Later(error);
                    }
                };
                self.users
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(genesys_user.to_string(), entry);
                email
            }
        };
        match email {
            // Entries are matched without regard to case (e-mails are compared lower-cased).
            Some(email) => ZoomUser::Mapped(
                mapping
                    .get(&email)
                    .or_else(|| {
                        mapping
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(&email))
                            .map(|(_, v)| v)
                    })
                    .cloned()
                    .unwrap_or(email),
            ),
            None => ZoomUser::Unmapped("Genesys has no e-mail for this user".into()),
        }
    }
}

/// Every configured org, by source name.
#[derive(Clone, Default)]
pub struct GenesysOrgs(Arc<BTreeMap<String, Arc<GenesysOrg>>>);

impl GenesysOrgs {
    pub fn new(config: &PresenceConfig) -> Result<Self, String> {
        let mut orgs = BTreeMap::new();
        for (name, source) in &config.genesys {
            let org = GenesysOrg::new(name, source.clone())
                .map_err(|e| format!("presence.genesys.{name}: {e}"))?;
            orgs.insert(name.clone(), Arc::new(org));
        }
        Ok(Self(Arc::new(orgs)))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<GenesysOrg>> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<GenesysOrg>> {
        self.0.values()
    }
}
