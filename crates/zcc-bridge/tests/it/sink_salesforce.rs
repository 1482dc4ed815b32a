//! The Salesforce sink against a local fake of the Salesforce REST API (`crate::common::fakes::salesforce`): token
//! handling, the Task upsert and its fields, customer matching, and how failures map to outcomes.

use crate::common::crm;
use std::sync::Arc;
use std::time::Duration;

use crate::common::fakes::salesforce::{
    Failure, FakeSalesforce, Person, CLIENT_ID, CLIENT_SECRET, EXTERNAL_ID_FIELD,
};
use axum::http::Method;
use serde_json::{json, Value};
use zcc_bridge::config::{Secret, SinkConfig, SinkKind, SinkOptions};
use zcc_bridge::core::record::{DispositionView, NoteView};
use zcc_bridge::core::EngagementRecord;
use zcc_bridge::delivery::sink::{
    Message, Outcome, Sink, ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED,
};

const ADA: &str = "003FAKE000000001AAA";
const BOB: &str = "003FAKE000000002AAA";
const OBRIEN: &str = "003FAKE000000003AAA";
const LONDON: &str = "003FAKE000000004AAA";
const LEAD: &str = "00QFAKE000000001AAA";
const CONVERTED_LEAD: &str = "00QFAKE000000002AAA";

const RECORDING_LINK: &str =
    "https://bridge.example/media/recordings/r-1?expires=1767229200&sig=abc";
const TRANSCRIPT_LINK: &str =
    "https://bridge.example/media/transcripts/r-1?expires=1767229200&sig=def";

/// The fake with a few people, stored the way people type numbers into Salesforce.
async fn org() -> FakeSalesforce {
    let fake = FakeSalesforce::start().await;
    fake.add(
        Person::contact(ADA)
            .phone("(415) 555-0100")
            .email("ada@example.com"),
    );
    fake.add(Person::contact(BOB).mobile("+14155550111"));
    fake.add(Person::contact(OBRIEN).email("o'brien@example.com"));
    fake.add(Person::contact(LONDON).phone("+44 20 7946 0958"));
    fake.add(
        Person::lead(LEAD)
            .phone("415.555.0122")
            .email("lead@example.com"),
    );
    fake.add(
        Person::lead(CONVERTED_LEAD)
            .phone("(415) 555-0133")
            .converted(),
    );
    fake
}

fn config(fake: &FakeSalesforce, options: &[(&str, &str)]) -> SinkConfig {
    SinkConfig {
        timeout_seconds: 10,
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        options: SinkOptions::from_pairs(SinkKind::Salesforce, options).expect("valid options"),
        ..SinkConfig::new("salesforce", SinkKind::Salesforce, fake.url.clone())
    }
}

fn link_options() -> Vec<(&'static str, &'static str)> {
    vec![
        ("recording_url_field", "Recording_Link__c"),
        ("transcript_url_field", "Transcript_Link__c"),
    ]
}

fn build_sink(fake: &FakeSalesforce, options: &[(&str, &str)]) -> Arc<dyn Sink> {
    zcc_bridge::delivery::sinks::build(&config(fake, options), 2048).expect("the sink builds")
}

/// A settled inbound call from `consumer_number`.
fn record(engagement_id: &str, consumer_number: &str) -> EngagementRecord {
    let mut recording = crm::recording(
        "r-1",
        "u-1",
        RECORDING_LINK,
        ("2026-01-01T00:00:05Z", "2026-01-01T00:05:05Z", 300),
    );
    recording.transcript_url = Some("https://zoom.example/rec/r-1.vtt".into());
    recording.transcript_media = Some(crm::media(TRANSCRIPT_LINK));
    crm::Call {
        engagement_id,
        consumer: consumer_number,
        consumer_name: "Ada Lovelace",
        agent_id: "u-1",
        agent_name: "Agent Smith",
        times: ("2026-01-01T00:00:00Z", "2026-01-01T00:05:07Z", 307),
        note: (
            "Customer asked about the March invoice",
            "2026-01-01T00:06:00Z",
        ),
        dispositions: vec![("d-1", "Resolved")],
        recordings: vec![recording],
    }
    .record()
}

fn message(event_type: &str, record: &EngagementRecord, attempt: u32) -> Message {
    let id = format!("msg_{}_{event_type}", record.engagement_id);
    crm::message(id, event_type, record, 1_767_225_907_000, attempt)
}

fn text(task: &crate::common::fakes::salesforce::Task, field: &str) -> String {
    task.field(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_call_becomes_one_task_updated_in_place() {
    let fake = org().await;
    let sink = build_sink(&fake, &link_options());
    let first = record("eng-0001", "+14155550100");

    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &first, 1))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(result.status, Some(201));
    assert_eq!(result.error, None);

    let task = fake.task("eng-0001").expect("the Task exists");
    assert!(
        text(&task, "Subject").starts_with("Inbound voice engagement: Billing"),
        "{task:?}"
    );
    let description = text(&task, "Description");
    for expected in [
        "Zoom Contact Center engagement eng-0001",
        "Agent: Agent Smith",
        "Customer asked about the March invoice",
        RECORDING_LINK,
        TRANSCRIPT_LINK,
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} not in {description:?}"
        );
    }
    assert_eq!(text(&task, "Status"), "Completed");
    assert_eq!(text(&task, "TaskSubtype"), "Call");
    assert_eq!(text(&task, "ActivityDate"), "2026-01-01");
    assert_eq!(text(&task, "CallType"), "Inbound");
    assert_eq!(task.field("CallDurationInSeconds"), Some(&json!(307)));
    assert_eq!(text(&task, "CallDisposition"), "Resolved");
    assert_eq!(text(&task, "Recording_Link__c"), RECORDING_LINK);
    assert_eq!(text(&task, "Transcript_Link__c"), TRANSCRIPT_LINK);
    assert_eq!(
        text(&task, "WhoId"),
        ADA,
        "E.164 +14155550100 is (415) 555-0100 in the org"
    );

    // What went over the wire.
    let requests = fake.requests();
    let token = &requests[0];
    assert!(token.is_token_request(), "{requests:?}");
    assert_eq!(token.method, "POST");
    assert!(token
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")));
    let form = token.form();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(CLIENT_SECRET)
    );
    let lookup = &requests[1];
    assert_eq!(
        (lookup.method.as_str(), lookup.path.as_str()),
        ("GET", "/services/data/v60.0/query")
    );
    let q = lookup.param("q").expect("a q parameter");
    assert!(q.starts_with("SELECT Id FROM Contact WHERE"), "{q}");
    assert!(q.contains("'(415) 555-0100'"), "{q}");
    let upsert = requests.last().expect("the upsert");
    assert_eq!(upsert.method, "PATCH");
    assert_eq!(
        upsert.path,
        format!("/services/data/v60.0/sobjects/Task/{EXTERNAL_ID_FIELD}/eng-0001")
    );
    assert!(upsert
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    for r in &requests[1..] {
        assert!(
            r.header("authorization")
                .is_some_and(|v| v.starts_with("Bearer 00DFAKE")),
            "{r:?}"
        );
    }
    assert!(
        upsert.json().get(EXTERNAL_ID_FIELD).is_none(),
        "the external id is in the URL only"
    );

    // A later change: same Task, new values.
    let mut updated = first.clone();
    updated.notes.push(NoteView {
        note_id: "n-2".into(),
        note: Some("Called back: refund issued".into()),
        user_id: Some("u-1".into()),
        last_modified_time: Some("2026-01-01T01:00:00Z".into()),
    });
    updated.dispositions.push(DispositionView {
        disposition_id: "d-2".into(),
        disposition_name: Some("Refund".into()),
    });
    let result = sink
        .deliver(&message(ENGAGEMENT_UPDATED, &updated, 1))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(result.status, Some(204));
    let tasks = fake.tasks();
    assert_eq!(tasks.len(), 1, "upserted, not duplicated");
    assert_eq!(tasks[0].id, task.id);
    assert!(text(&tasks[0], "Description").contains("Called back: refund issued"));
    assert_eq!(text(&tasks[0], "CallDisposition"), "Resolved, Refund");

    // A replay of the same message changes nothing either.
    let again = sink
        .deliver(&message(ENGAGEMENT_UPDATED, &updated, 2))
        .await;
    assert_eq!(again.outcome, Outcome::Delivered);
    assert_eq!(fake.tasks().len(), 1);

    assert_eq!(
        fake.token_requests().len(),
        1,
        "the token is cached across deliveries"
    );
}

#[tokio::test]
async fn an_expired_session_is_renewed_within_the_attempt() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0002", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");

    fake.expire_tokens();
    fake.clear_requests();
    let result = sink
        .deliver(&message(
            ENGAGEMENT_UPDATED,
            &record("eng-0002", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    let requests = fake.requests();
    let statuses: Vec<(bool, u16)> = requests
        .iter()
        .map(|r| (r.is_token_request(), r.status))
        .collect();
    assert_eq!(
        statuses[..3],
        [(false, 401), (true, 200), (false, 200)],
        "401 INVALID_SESSION_ID, a new token, the same call again: {requests:?}"
    );
    assert_ne!(
        requests[0].header("authorization"),
        requests[2].header("authorization")
    );
    assert_eq!(fake.token_requests().len(), 1);
    assert_eq!(fake.tasks().len(), 1);
}

#[tokio::test]
async fn concurrent_attempts_share_one_token_request() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..8 {
        let sink = sink.clone();
        let m = message(
            ENGAGEMENT_COMPLETED,
            &record(&format!("eng-c{i}"), "+14155550100"),
            1,
        );
        attempts.spawn(async move { sink.deliver(&m).await });
    }
    while let Some(result) = attempts.join_next().await {
        let result = result.expect("the attempt ran");
        assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    }
    assert_eq!(fake.token_requests().len(), 1);
    assert_eq!(fake.tasks().len(), 8);
}

#[tokio::test]
async fn unavailable_salesforce_is_retried_later() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    fake.fail_next(1, Failure::unavailable().on(Method::PATCH).retry_after("7"));
    let m = message(ENGAGEMENT_COMPLETED, &record("eng-0003", "+14155550100"), 1);
    let result = sink.deliver(&m).await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, Some(503));
    assert_eq!(result.retry_after, Some(Duration::from_secs(7)));
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("SERVER_UNAVAILABLE")),
        "{result:?}"
    );
    assert!(result.body.contains("Server temporarily unavailable"));
    assert!(fake.tasks().is_empty());

    // A failing lookup ends the attempt too (the Task would otherwise lose its WhoId for good).
    fake.fail_next(1, Failure::unavailable().on(Method::GET));
    let result = sink.deliver(&m).await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, Some(503));

    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0003", "+14155550100"),
            2,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
}

#[tokio::test]
async fn refused_tasks_are_rejected_with_salesforce_error_code() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    fake.fail_next(
        1,
        Failure::new(
            400,
            json!([{"message": "Subject: data value too large", "errorCode": "STRING_TOO_LONG", "fields": ["Subject"]}]),
        )
        .on(Method::PATCH),
    );
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0004", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    assert_eq!(result.status, Some(400));
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("STRING_TOO_LONG")),
        "{result:?}"
    );

    // An external-id field the org does not have: 404 NOT_FOUND from the fake, rejected.
    let wrong = build_sink(&fake, &[("external_id_field", "Missing_Field__c")]);
    let result = wrong
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0004", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    assert_eq!(result.status, Some(404));
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("NOT_FOUND")),
        "{result:?}"
    );

    // Gone stays Gone (a retired API version, for instance).
    fake.fail_next(
        1,
        Failure::new(410, json!([{"message": "retired", "errorCode": "GONE"}])),
    );
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0005", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Gone, "{result:?}");
}

#[tokio::test]
async fn a_lead_is_matched_when_no_contact_is() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0006", "+14155550122"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    let task = fake.task("eng-0006").expect("the Task");
    assert_eq!(text(&task, "WhoId"), LEAD);
    let queries: Vec<String> = fake
        .api_requests()
        .iter()
        .filter_map(|r| r.param("q"))
        .collect();
    assert!(queries[0].contains("FROM Contact"), "{queries:?}");
    assert!(
        queries[1].contains("FROM Lead") && queries[1].contains("IsConverted = false"),
        "{queries:?}"
    );

    // A mobile number matches too.
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0007", "+14155550111"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        text(&fake.task("eng-0007").expect("the Task"), "WhoId"),
        BOB
    );

    // An email consumer (email channel) is matched by email.
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0008", "LEAD@example.com"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        text(&fake.task("eng-0008").expect("the Task"), "WhoId"),
        LEAD
    );
}

#[tokio::test]
async fn no_match_means_no_who_id() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    // Not in the org at all; and a converted Lead's number, which must not be used.
    for (id, number) in [("eng-0009", "+14155550199"), ("eng-0010", "+14155550133")] {
        let result = sink
            .deliver(&message(ENGAGEMENT_COMPLETED, &record(id, number), 1))
            .await;
        assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
        let task = fake.task(id).expect("the Task is still logged");
        assert_eq!(task.field("WhoId"), None, "{task:?}");
    }
    // No SOSL fallback when disabled; with it, a number stored in another format is still found.
    let without = build_sink(&fake, &[("sosl_fallback", "false")]);
    fake.clear_requests();
    let result = without
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0011", "+442079460958"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        fake.task("eng-0011").expect("the Task").field("WhoId"),
        None
    );
    assert!(fake
        .api_requests()
        .iter()
        .all(|r| !r.path.ends_with("/search")));

    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0012", "+442079460958"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        text(&fake.task("eng-0012").expect("the Task"), "WhoId"),
        LONDON
    );
    let search = fake
        .api_requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/search"))
        .expect("a SOSL search");
    assert_eq!(
        search
            .param("q")
            .as_deref()
            .map(|q| q.split(" RETURNING").next().unwrap_or_default()),
        Some("FIND {442079460958} IN PHONE FIELDS")
    );

    // Matching off: no lookups at all.
    let off = build_sink(&fake, &[("match_customer", "false")]);
    fake.clear_requests();
    let result = off
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0013", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        fake.task("eng-0013").expect("the Task").field("WhoId"),
        None
    );
    assert!(fake.api_requests().iter().all(|r| r.method == "PATCH"));
}

#[tokio::test]
async fn quotes_in_an_email_cannot_inject_soql() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    // Unescaped, this would read `Email = 'x@example.com' OR Email != 'y'` and match everybody.
    let hostile = "x@example.com' OR Email != 'y";
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0014", hostile),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        fake.task("eng-0014").expect("the Task").field("WhoId"),
        None
    );
    let q = fake.api_requests()[0].param("q").expect("a query");
    assert!(
        q.contains("Email = 'x@example.com\\' OR Email != \\'y'"),
        "{q}"
    );
    assert!(
        fake.api_requests().iter().all(|r| r.status != 400),
        "every query parsed"
    );

    // And a real quote in an address still matches.
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0015", "o'brien@example.com"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        text(&fake.task("eng-0015").expect("the Task"), "WhoId"),
        OBRIEN
    );
}

#[tokio::test]
async fn bad_credentials_are_rejected_without_leaking_them() {
    let fake = org().await;
    let mut c = config(&fake, &[]);
    c.client_secret = Some(Secret::new("wrong-secret-value"));
    let sink = zcc_bridge::delivery::sinks::build(&c, 2048).expect("the sink builds");
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0016", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    assert_eq!(result.status, Some(400));
    let error = result.error.clone().unwrap_or_default();
    assert!(
        error.contains("invalid_client") && error.contains("client_secret"),
        "{error}"
    );
    assert!(!format!("{result:?}").contains("wrong-secret-value"));
    assert!(fake.api_requests().is_empty());

    // A token endpoint that is down is retried, not rejected.
    fake.fail_token(Some((503, json!({"error": "unavailable"}))));
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0016", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, Some(503));

    // Nothing listening: a network error, retried.
    let mut gone = config(&fake, &[]);
    gone.url = "http://127.0.0.1:9".into();
    let sink = zcc_bridge::delivery::sinks::build(&gone, 2048).expect("the sink builds");
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-0016", "+14155550100"),
            1,
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, None);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("token request")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_create_only_task_subtype_is_left_out_of_updates() {
    let fake = org().await;
    fake.task_subtype_create_only(true);
    let sink = build_sink(&fake, &[]);
    let r = record("eng-0017", "+14155550100");
    assert_eq!(
        sink.deliver(&message(ENGAGEMENT_COMPLETED, &r, 1))
            .await
            .outcome,
        Outcome::Delivered
    );
    fake.clear_requests();
    let result = sink.deliver(&message(ENGAGEMENT_UPDATED, &r, 1)).await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    let patches: Vec<_> = fake
        .api_requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].status, 400);
    assert!(patches[1].json().get("TaskSubtype").is_none());
    assert_eq!(patches[1].status, 204);
    assert_eq!(
        text(&fake.task("eng-0017").expect("the Task"), "TaskSubtype"),
        "Call"
    );
}

#[tokio::test]
async fn other_messages_are_rejected_untouched() {
    let fake = org().await;
    let sink = build_sink(&fake, &[]);
    let event = Message {
        id: "msg_rt".into(),
        event_type: "contact_center.engagement_started".into(),
        created_at: 1_767_225_600_000,
        engagement_id: Some("eng-0018".into()),
        data: "{}".into(),
        attempt: 1,
    };
    let result = sink.deliver(&event).await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    let broken = Message {
        data: "{not json".into(),
        event_type: ENGAGEMENT_COMPLETED.into(),
        ..event
    };
    assert_eq!(sink.deliver(&broken).await.outcome, Outcome::Reject);
    assert!(fake.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn configuration_is_checked_when_built() {
    let fake = org().await;
    let mut c = config(&fake, &[]);
    c.client_id = None;
    let err = zcc_bridge::delivery::sinks::build(&c, 2048)
        .err()
        .expect("refused");
    assert!(err.contains("client_id"), "{err}");
    let mut c = config(&fake, &[]);
    c.client_secret = None;
    assert!(zcc_bridge::delivery::sinks::check_config(&c).is_err());
    let c = config(&fake, &[("external_id_field", "Bad Field")]);
    assert!(zcc_bridge::delivery::sinks::check_config(&c).is_err());
    let mut c = config(&fake, &[]);
    c.url = "myorg.my.salesforce.com".into();
    assert!(zcc_bridge::delivery::sinks::check_config(&c).is_err());
    assert!(zcc_bridge::delivery::sinks::check_config(&config(&fake, &link_options())).is_ok());
}
