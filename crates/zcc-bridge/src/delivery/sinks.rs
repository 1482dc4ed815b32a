//! Building the configured sinks, and which messages each one takes.

use super::http::http_client;
use std::sync::Arc;

use super::crm::{hubspot::HubspotSink, salesforce::SalesforceSink, zendesk::ZendeskSink};
use super::http_sink::HttpSink;
use super::sink::{is_planned_type, Sink, CALL_LOGGED, ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED};
use crate::config::{SinkConfig, SinkKind};

/// Checks a sink's own options, which `Config::validate` leaves to the sink kind (called by `server::load_config`
/// and again when the sink is built).
pub fn check_config(config: &SinkConfig) -> Result<(), String> {
    if config.kind != SinkKind::Http {
        if let Some(other) = config
            .deliver
            .iter()
            .find(|t| t.as_str() != ENGAGEMENT_COMPLETED && t.as_str() != ENGAGEMENT_UPDATED)
        {
            return Err(format!(
                "sink {:?}: a {} sink takes engagement.completed and engagement.updated only, not {other:?}",
                config.name,
                config.kind.as_str()
            ));
        }
    }
    match config.kind {
        SinkKind::Http => HttpSink::check(config),
        SinkKind::Salesforce => SalesforceSink::check(config),
        SinkKind::Hubspot => HubspotSink::check(config),
        SinkKind::Zendesk => ZendeskSink::check(config),
    }
}

pub fn build(config: &SinkConfig, body_limit: usize) -> Result<Arc<dyn Sink>, String> {
    let client = http_client(config)?;
    Ok(match config.kind {
        SinkKind::Http => Arc::new(HttpSink::new(config, client, body_limit)?),
        SinkKind::Salesforce => Arc::new(SalesforceSink::new(config, client, body_limit)?),
        SinkKind::Hubspot => Arc::new(HubspotSink::new(config, client, body_limit)?),
        SinkKind::Zendesk => Arc::new(ZendeskSink::new(config, client, body_limit)?),
    })
}

/// Which messages a sink takes: by type, then by the engagement's channel, queue and direction.
#[derive(Debug, Clone)]
pub struct Route {
    pub sink: String,
    types: Vec<String>,
    channels: Vec<String>,
    queues: Vec<String>,
    directions: Vec<String>,
}

/// What the filters look at, for an engagement message or an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facets<'a> {
    pub channel: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub queues: &'a [String],
}

impl Route {
    pub fn new(config: &SinkConfig) -> Self {
        Self {
            sink: config.name.clone(),
            types: config.deliver.clone(),
            channels: config.channels.clone(),
            queues: config.queues.clone(),
            directions: config.directions.clone(),
        }
    }

    pub fn wants_type(&self, event_type: &str) -> bool {
        self.types.iter().any(|t| t == event_type)
    }

    /// Whether any message planned from records is wanted (the projector then watches records for this sink).
    pub fn wants_engagements(&self) -> bool {
        self.wants_type(ENGAGEMENT_COMPLETED)
            || self.wants_type(ENGAGEMENT_UPDATED)
            || self.wants_type(CALL_LOGGED)
    }

    /// Whether some real-time (non-engagement) type is wanted.
    pub fn wants_events(&self) -> bool {
        self.types.iter().any(|t| !is_planned_type(t))
    }

    /// A filter that names a value the engagement does not (yet) have excludes it.
    pub fn matches(&self, facets: Facets<'_>) -> bool {
        let one = |allowed: &[String], value: Option<&str>| {
            allowed.is_empty()
                || value.is_some_and(|v| allowed.iter().any(|a| a.eq_ignore_ascii_case(v)))
        };
        one(&self.channels, facets.channel)
            && one(&self.directions, facets.direction)
            && (self.queues.is_empty() || facets.queues.iter().any(|q| self.queues.contains(q)))
    }
}
