//! CRM sinks. Each vendor is one module that turns a [`CallSummary`] into that vendor's API calls; the summary
//! (what a CRM activity needs from an engagement record) is computed once, here, so a further CRM (ServiceNow,
//! Dynamics) is a small module of its own.

use crate::core::EngagementRecord;

/// What a CRM activity shows of an engagement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    pub engagement_id: String,
    /// e.g. "Inbound voice engagement: Billing (+14155550100)".
    pub subject: String,
    /// `voice`, `video`, `messaging`, `email`, ...
    pub channel: Option<String>,
    /// `inbound` / `outbound`.
    pub direction: Option<String>,
    /// RFC 3339.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub start_ms: Option<i64>,
    pub duration_seconds: Option<i64>,
    /// Disposition names, in the order they were saved.
    pub dispositions: Vec<String>,
    /// Note texts, in the order they were written.
    pub notes: Vec<String>,
    pub agents: Vec<String>,
    pub queues: Vec<String>,
    /// The customer's phone number (E.164 as Zoom gives it), when the consumer has one.
    pub customer_phone: Option<String>,
    /// The customer's email address, when the consumer is known by one (email channel).
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    /// Secure links to the archived recordings (bridge-signed or presigned), in recording order.
    pub recording_links: Vec<String>,
    /// Secure links to archived transcripts (recording, messaging, email, voicemail).
    pub transcript_links: Vec<String>,
    pub voicemail_links: Vec<String>,
}

impl CallSummary {
    pub fn from_record(record: &EngagementRecord) -> Self {
        let consumer = record.consumers.first();
        let number = consumer.and_then(|c| c.consumer_number.clone());
        let (customer_phone, customer_email) = match number {
            Some(n) if n.contains('@') => (None, Some(n)),
            Some(n) => (Some(n), None),
            None => (None, None),
        };
        let queues: Vec<String> = record
            .queues
            .iter()
            .map(|q| {
                q.queue_name
                    .clone()
                    .unwrap_or_else(|| q.cc_queue_id.clone())
            })
            .collect();
        let direction = record.direction.clone();
        let channel = record.channel.clone();
        let mut subject = format!(
            "{} {} engagement",
            capitalise(direction.as_deref().unwrap_or("contact center")),
            channel.as_deref().unwrap_or("")
        )
        .replace("  ", " ");
        if let Some(q) = queues.first() {
            subject.push_str(": ");
            subject.push_str(q);
        }
        if let Some(who) = customer_phone
            .as_deref()
            .or(customer_email.as_deref())
            .or(consumer.and_then(|c| c.consumer_display_name.as_deref()))
        {
            subject.push_str(&format!(" ({who})"));
        }
        // Systems of record keep links for years: the durable link, never the expiring one, when there is one.
        let link = |m: &Option<crate::core::MediaView>| {
            m.as_ref()
                .and_then(|m| m.permalink.clone().or_else(|| m.link.clone()))
        };
        let mut transcript_links: Vec<String> = record
            .recordings
            .iter()
            .filter_map(|r| link(&r.transcript_media))
            .collect();
        for t in &record.transcripts {
            if let Some(l) = link(&t.media) {
                if !transcript_links.contains(&l) {
                    transcript_links.push(l);
                }
            }
        }
        Self {
            engagement_id: record.engagement_id.clone(),
            subject,
            channel,
            direction,
            start_time: record.start_time.clone(),
            end_time: record.end_time.clone(),
            start_ms: record
                .start_time
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis()),
            duration_seconds: record.duration,
            dispositions: record
                .dispositions
                .iter()
                .map(|d| {
                    d.disposition_name
                        .clone()
                        .unwrap_or_else(|| d.disposition_id.clone())
                })
                .collect(),
            notes: record
                .notes
                .iter()
                .filter_map(|n| n.note.clone())
                .chain(record.agent_workspaces.iter().flat_map(workspace_lines))
                .collect(),
            agents: record
                .agents
                .iter()
                .map(|a| a.display_name.clone().unwrap_or_else(|| a.user_id.clone()))
                .collect(),
            queues,
            customer_phone,
            customer_email,
            customer_name: consumer.and_then(|c| c.consumer_display_name.clone()),
            recording_links: record
                .recordings
                .iter()
                .filter_map(|r| link(&r.media))
                .collect(),
            transcript_links,
            voicemail_links: record
                .voicemails
                .iter()
                .filter_map(|v| link(&v.media))
                .collect(),
        }
    }

    /// A plain-text description: disposition, notes, links. Used as the activity body by every CRM.
    pub fn description(&self) -> String {
        let mut lines = Vec::new();
        lines.push(format!(
            "Zoom Contact Center engagement {}",
            self.engagement_id
        ));
        if let Some(start) = &self.start_time {
            lines.push(format!("Start: {start}"));
        }
        if let Some(d) = self.duration_seconds {
            lines.push(format!("Duration: {}m {:02}s", d / 60, d % 60));
        }
        if !self.agents.is_empty() {
            lines.push(format!("Agent: {}", self.agents.join(", ")));
        }
        if !self.queues.is_empty() {
            lines.push(format!("Queue: {}", self.queues.join(", ")));
        }
        if !self.dispositions.is_empty() {
            lines.push(format!("Disposition: {}", self.dispositions.join(", ")));
        }
        if !self.notes.is_empty() {
            lines.push(String::new());
            lines.push("Notes:".to_string());
            lines.extend(self.notes.iter().map(|n| format!("- {n}")));
        }
        let links = [
            ("Recording", &self.recording_links),
            ("Transcript", &self.transcript_links),
            ("Voicemail", &self.voicemail_links),
        ];
        if links.iter().any(|(_, l)| !l.is_empty()) {
            lines.push(String::new());
            for (label, list) in links {
                for l in list {
                    lines.push(format!("{label}: {l}"));
                }
            }
        }
        lines.join("\n")
    }
}

/// An agent's workspace from the agent panel as note lines: the notes, the tags, the wrap-up checklist.
fn workspace_lines(w: &crate::core::record::AgentWorkspaceView) -> Vec<String> {
    let mut lines = Vec::new();
    let notes = w.notes.trim();
    if !notes.is_empty() {
        lines.push(notes.to_string());
    }
    if !w.tags.is_empty() {
        lines.push(format!("Tags: {}", w.tags.join(", ")));
    }
    if !w.checklist.is_empty() {
        let items: Vec<String> = w
            .checklist
            .iter()
            .map(|(id, done)| format!("{id} {}", if *done { "done" } else { "not done" }))
            .collect();
        lines.push(format!("Wrap-up: {}", items.join(", ")));
    }
    lines
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::AgentWorkspaceView;

    #[test]
    fn the_agents_workspace_is_in_the_activity_text() {
        let mut record = EngagementRecord {
            engagement_id: "E1".into(),
            ..Default::default()
        };
        record.agent_workspaces.push(AgentWorkspaceView {
            user_id: "U1".into(),
            notes: "Refund approved".into(),
            tags: vec!["refund".into(), "vip".into()],
            checklist: [
                ("resolved".to_string(), true),
                ("verified".to_string(), false),
            ]
            .into(),
            end_time: None,
        });
        let summary = CallSummary::from_record(&record);
        assert_eq!(
            summary.notes,
            [
                "Refund approved",
                "Tags: refund, vip",
                "Wrap-up: resolved done, verified not done"
            ]
        );
        assert!(summary.description().contains("- Refund approved"));
    }
}

pub mod hubspot;
pub mod salesforce;
pub mod zendesk;
