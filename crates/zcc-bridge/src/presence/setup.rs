//! `zcc-bridge genesys setup`: what the push path needs in a Genesys Cloud org, instead of the blueprint's
//! Postman steps (reference §1.6, §2).
//!
//! It creates or updates (idempotently, matched by name) the two process-automation triggers on
//! `v2.detail.events.conversation.{id}.user.start` / `.user.end`, with `matchCriteria` from the source's rule
//! (media types, directions, queues), targeting the workflow, data format `Json`. It writes the web-services
//! data action that posts the event to `POST /webhooks/genesys/<source>` and an Archy workflow that calls it,
//! to import (triggers can only target a workflow, and a workflow reaches us only through a data action).

use std::path::Path;

use anyhow::Context as _;
use genesys::models::{MatchCriterion, Trigger, TriggerTarget, WorkflowTargetSettings};
use genesys::GenesysClient;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::GenesysSource;

pub const START_TOPIC: &str = "v2.detail.events.conversation.{id}.user.start";
pub const END_TOPIC: &str = "v2.detail.events.conversation.{id}.user.end";

/// What setup did with one trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOutcome {
    Created,
    Updated,
    Unchanged,
    /// `--dry-run`: would be created / updated.
    WouldCreate,
    WouldUpdate,
}

#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub triggers: Vec<(String, TriggerOutcome, Option<String>)>,
    pub exported: Vec<String>,
}

/// The triggers the source needs.
pub fn desired_triggers(name: &str, source: &GenesysSource, workflow_id: &str) -> Vec<Trigger> {
    let upper = |values: &[String]| -> Vec<Value> {
        values
            .iter()
            .map(|v| Value::String(v.to_ascii_uppercase()))
            .collect()
    };
    let mut criteria = vec![MatchCriterion {
        json_path: "userId".into(),
        operator: "Exists".into(),
        value: Some(Value::Bool(true)),
        values: None,
    }];
    let mut one_of = |path: &str, values: Vec<Value>| {
        if !values.is_empty() {
            criteria.push(MatchCriterion {
                json_path: path.into(),
                operator: "In".into(),
                value: None,
                values: Some(values),
            });
        }
    };
    one_of("mediaType", upper(&source.media_types));
    one_of("direction", upper(&source.directions));
    one_of(
        "queueId",
        source.queues.iter().cloned().map(Value::String).collect(),
    );
    [START_TOPIC, END_TOPIC]
        .iter()
        .map(|topic| {
            let event = topic.rsplit('.').take(2).collect::<Vec<_>>();
            Trigger {
                id: None,
                topic_name: (*topic).to_string(),
                name: format!("zcc-bridge {name} user.{}", event[0]),
                description: Some(format!(
                    "Managed by `zcc-bridge genesys setup`: sends agent session events to zcc-bridge \
                     (POST /webhooks/genesys/{name}) for Zoom presence sync."
                )),
                target: TriggerTarget {
                    kind: "Workflow".into(),
                    id: workflow_id.to_string(),
                    workflow_target_settings: Some(WorkflowTargetSettings {
                        data_format: "Json".into(),
                    }),
                },
                match_criteria: criteria.clone(),
                enabled: true,
                event_ttl_seconds: None,
                version: None,
            }
        })
        .collect()
}

/// Creates or updates the triggers so they are exactly `desired`; matched to existing ones by topic and name.
pub async fn apply_triggers(
    client: &GenesysClient,
    desired: &[Trigger],
    dry_run: bool,
) -> Result<Vec<(String, TriggerOutcome, Option<String>)>, genesys::GenesysError> {
    let topics: Vec<&str> = desired.iter().map(|t| t.topic_name.as_str()).collect();
    let existing = client.triggers(&topics).await?;
    let mut out = Vec::new();
    for want in desired {
        let found = existing
            .iter()
            .find(|t| t.topic_name == want.topic_name && t.name == want.name);
        let outcome = match found {
            None if dry_run => (TriggerOutcome::WouldCreate, None),
            None => {
                let made = client.create_trigger(want).await?;
                (TriggerOutcome::Created, made.id)
            }
            Some(have) if have.same_definition(want) => {
                (TriggerOutcome::Unchanged, have.id.clone())
            }
            Some(have) if dry_run => (TriggerOutcome::WouldUpdate, have.id.clone()),
            Some(have) => {
                let id = have.id.clone().unwrap_or_default();
                let update = Trigger {
                    id: None,
                    version: have.version,
                    ..want.clone()
                };
                client.update_trigger(&id, &update).await?;
                (TriggerOutcome::Updated, Some(id))
            }
        };
        out.push((want.name.clone(), outcome.0, outcome.1));
    }
    Ok(out)
}

/// The web-services data action (import under Integrations → Actions of a "Web Services Data Actions"
/// integration whose credentials are User Defined with a field `token`).
pub fn data_action(name: &str, public_url: &str) -> Value {
    json!({
        "name": format!("zcc-bridge {name}: post agent session event"),
        "integrationType": "custom-rest-actions",
        "actionType": "custom",
        "config": {
            "request": {
                "requestUrlTemplate": format!("{}/webhooks/genesys/{name}", public_url.trim_end_matches('/')),
                "requestType": "POST",
                "headers": {
                    "Authorization": "Bearer ${credentials.token}",
                    "Content-Type": "application/json"
                },
                "requestTemplate": "{\"jsonData\": ${input.eventJson}}"
            },
            "response": {
                "translationMap": {},
                "translationMapDefaults": {},
                "successTemplate": "{}"
            }
        },
        "contract": {
            "input": {"inputSchema": {
                "type": "object",
                "required": ["eventJson"],
                "properties": {"eventJson": {"type": "string", "description": "The trigger's event (Flow.jsonData) as JSON text"}},
                "additionalProperties": true
            }},
            "output": {"successSchema": {"type": "object", "properties": {}, "additionalProperties": true}}
        },
        "secure": false
    })
}

/// An Archy workflow (YAML) that posts `Flow.jsonData` through the data action. Archy's YAML schema is
/// unconfirmed here: check it with `archy validate` before `archy publish`.
pub fn archy_workflow(name: &str) -> String {
    format!(
        r#"# zcc-bridge presence sync workflow for source "{name}" (generated by `zcc-bridge genesys setup`).
# Publish with Archy: archy publish --file workflow.yaml  (validate first: the YAML schema here is unconfirmed).
workflow:
  name: zcc-bridge {name} presence
  division: Home
  startUpRef: "/workflow/states/state[Post event_1]"
  defaultLanguage: en-us
  supportedLanguages:
    en-us:
      none: true
  variables:
    - jsonVariable:
        name: Flow.jsonData
        initialValue:
          noValue: true
        isInput: true
        isOutput: false
  states:
    - state:
        name: Post event
        refId: Post event_1
        actions:
          - callData:
              name: Post to zcc-bridge
              timeout:
                lit:
                  minutes: 1
              category:
                zcc-bridge:
                  dataAction:
                    zcc-bridge {name}: post agent session event:
                      inputs:
                        eventJson:
                          exp: ToString(Flow.jsonData)
              outputs:
                success:
                  actions:
                    - endWorkflow:
                        name: Done
                failure:
                  actions:
                    - endWorkflow:
                        name: Failed
                timeout:
                  actions:
                    - endWorkflow:
                        name: Timed out
          - endWorkflow:
              name: End
"#
    )
}

/// Writes the data action, the workflow and the trigger bodies into `dir`.
pub fn export(
    dir: &Path,
    name: &str,
    public_url: &str,
    triggers: &[Trigger],
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        (
            "data-action.json",
            serde_json::to_string_pretty(&data_action(name, public_url))?,
        ),
        ("workflow.yaml", archy_workflow(name)),
        ("triggers.json", serde_json::to_string_pretty(triggers)?),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_filter_by_the_rule() {
        let source = GenesysSource {
            media_types: vec!["voice".into(), "chat".into()],
            directions: vec!["inbound".into()],
            ..Default::default()
        };
        let t = desired_triggers("gc", &source, "wf-1");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "zcc-bridge gc user.start");
        assert_eq!(t[1].name, "zcc-bridge gc user.end");
        assert_eq!(t[1].topic_name, END_TOPIC);
        let paths: Vec<&str> = t[0]
            .match_criteria
            .iter()
            .map(|c| c.json_path.as_str())
            .collect();
        assert_eq!(paths, ["userId", "mediaType", "direction"]);
        assert_eq!(
            t[0].match_criteria[1].values,
            Some(vec![json!("VOICE"), json!("CHAT")])
        );
        let action = data_action("gc", "https://bridge.example.com/");
        assert_eq!(
            action["config"]["request"]["requestUrlTemplate"],
            "https://bridge.example.com/webhooks/genesys/gc"
        );
    }
}
