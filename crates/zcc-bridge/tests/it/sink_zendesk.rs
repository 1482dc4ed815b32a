//! The Zendesk sink against a local fake of the Zendesk Support API (tests/common/fakes/zendesk.rs): ticket
//! creation, idempotency across retries and updates, comment mode, and how failures are classified.

use crate::common::crm;
use std::sync::Arc;
use std::time::Duration;

use crate::common::fakes::zendesk::{self, FakeZendesk};
use serde_json::{json, Value};
use zcc_bridge::config::{Secret, SinkConfig, SinkKind, SinkOptions};
use zcc_bridge::core::record::NoteView;
use zcc_bridge::core::EngagementRecord;
use zcc_bridge::delivery::sink::{
    AttemptResult, Message, Outcome, Sink, ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED,
};

const CALLER: &str = "+14155550100";

fn config(fake: &FakeZendesk, options: &[(&str, &str)]) -> SinkConfig {
    SinkConfig {
        timeout_seconds: 10,
        token: Some(Secret::new(zendesk::API_TOKEN)),
        username: Some(zendesk::EMAIL.into()),
        options: SinkOptions::from_pairs(SinkKind::Zendesk, options).expect("valid options"),
        ..SinkConfig::new("zendesk", SinkKind::Zendesk, fake.url.clone())
    }
}

fn sink(config: &SinkConfig) -> Arc<dyn Sink> {
    zcc_bridge::delivery::sinks::build(config, 2048).expect("the zendesk sink builds")
}

/// A finished inbound call from `consumer` (a number, or an address for email) with a note, a disposition and
/// an archived recording.
fn record(engagement: &str, consumer: &str) -> EngagementRecord {
    crm::Call {
        engagement_id: engagement,
        consumer,
        consumer_name: "Grace Hopper",
        times: ("2026-03-02T10:00:00Z", "2026-03-02T10:05:30Z", 330),
        note: (
            "Customer disputes the March invoice",
            "2026-03-02T10:04:00Z",
        ),
        dispositions: vec![("d-1", "Billing dispute")],
        recordings: vec![crm::recording(
            "rec-1",
            "agent-1",
            "https://bridge.example/media/recording/rec-1?expires=1000&signature=first",
            ("2026-03-02T10:00:05Z", "2026-03-02T10:05:25Z", 320),
        )],
        ..Default::default()
    }
    .record()
}

fn message(id: &str, event_type: &str, record: &EngagementRecord) -> Message {
    crm::message(id.into(), event_type, record, 1_772_445_930_000, 1)
}

fn assert_outcome(result: &AttemptResult, outcome: Outcome) {
    assert_eq!(result.outcome, outcome, "{result:?}");
}

fn only_ticket(fake: &FakeZendesk) -> Value {
    let tickets = fake.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    tickets.into_iter().next().expect("one ticket")
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_u64().expect("an id")
}

fn text_of(comment: &Value) -> &str {
    comment["body"].as_str().expect("a comment body")
}

#[tokio::test]
async fn first_delivery_creates_one_ticket_with_an_internal_note_and_the_matched_requester() {
    let fake = FakeZendesk::start().await;
    let grace = fake.add_user(
        "Grace Hopper",
        Some("grace@example.com"),
        Some("+1 (415) 555-0100"),
        "end-user",
    );
    fake.add_user(
        "Someone Else",
        Some("else@example.com"),
        Some("+1 212 555 0199"),
        "end-user",
    );
    let sink = sink(&config(&fake, &[]));
    let rec = record("eng-1", CALLER);

    let result = sink
        .deliver(&message("msg-1", ENGAGEMENT_COMPLETED, &rec))
        .await;
    assert_outcome(&result, Outcome::Delivered);
    assert_eq!(result.status, Some(201));
    assert!(result.body.len() <= 2048);

    let ticket = only_ticket(&fake);
    assert_eq!(ticket["external_id"], "eng-1");
    assert_eq!(ticket["requester_id"], grace);
    assert_eq!(
        ticket["subject"],
        "Inbound voice engagement: Billing (+14155550100)"
    );
    assert_eq!(
        ticket["tags"],
        json!(["zoom_contact_center", "zcc_voice", "zcc_inbound"])
    );
    let comments = fake.comments(id_of(&ticket));
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["public"], false, "an internal note");
    let text = text_of(&comments[0]);
    for needle in [
        "Zoom Contact Center engagement eng-1",
        "Agent: Ada Lovelace",
        "Disposition: Billing dispute",
        "- Customer disputes the March invoice",
        "Recording: https://bridge.example/media/recording/rec-1?expires=1000&signature=first",
        "zcc-bridge: engagement eng-1 summary ",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }

    let requests = fake.requests();
    let lines: Vec<String> = requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        [
            "GET /api/v2/tickets",
            "GET /api/v2/users/search",
            "POST /api/v2/tickets"
        ]
    );
    assert_eq!(requests[0].query("external_id"), Some("eng-1"));
    assert_eq!(requests[1].query("query"), Some("phone:*14155550100"));
    let create = &requests[2];
    assert_eq!(create.header("idempotency-key"), Some("msg-1"));
    assert_eq!(create.header("accept"), Some("application/json"));
    assert!(create
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert!(create
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    let sent = &create.body.as_ref().expect("a JSON body")["ticket"];
    assert_eq!(sent["external_id"], "eng-1");
    assert_eq!(sent["requester_id"], grace);
    assert_eq!(sent["comment"]["public"], false);
    assert!(sent.get("requester").is_none());
}

#[tokio::test]
async fn a_retry_of_the_same_message_creates_no_second_ticket() {
    let fake = FakeZendesk::start().await;
    fake.add_user("Grace Hopper", None, Some(CALLER), "end-user");
    let sink = sink(&config(&fake, &[]));
    let msg = message("msg-1", ENGAGEMENT_COMPLETED, &record("eng-1", CALLER));

    // The ticket is created but the reply is lost: the engine will try again.
    fake.lose_reply("POST", "/api/v2/tickets", 504);
    let lost = sink.deliver(&msg).await;
    assert_outcome(&lost, Outcome::Retry);
    assert_eq!(lost.status, Some(504));
    assert_eq!(fake.tickets().len(), 1);
    fake.take_requests();

    let retry = sink.deliver(&msg).await;
    assert_outcome(&retry, Outcome::Delivered);
    assert!(
        retry.body.contains("already shows this summary"),
        "{retry:?}"
    );
    let ticket = only_ticket(&fake);
    assert_eq!(fake.comments(id_of(&ticket)).len(), 1);
    let lines: Vec<String> = fake.take_requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        [
            "GET /api/v2/tickets".to_string(),
            format!("GET /api/v2/tickets/{}/comments", id_of(&ticket))
        ]
    );

    // And once more after success: still one ticket, one note.
    assert_outcome(&sink.deliver(&msg).await, Outcome::Delivered);
    assert_eq!(fake.tickets().len(), 1);
    assert_eq!(fake.comments(id_of(&ticket)).len(), 1);
}

#[tokio::test]
async fn an_update_adds_a_note_to_the_same_ticket_once() {
    let fake = FakeZendesk::start().await;
    fake.add_user("Grace Hopper", None, Some(CALLER), "end-user");
    let sink = sink(&config(&fake, &[]));
    let mut rec = record("eng-1", CALLER);
    assert_outcome(
        &sink
            .deliver(&message("msg-1", ENGAGEMENT_COMPLETED, &rec))
            .await,
        Outcome::Delivered,
    );
    let ticket = id_of(&only_ticket(&fake));

    // Later: a second note and a transcript.
    rec.notes.push(NoteView {
        note_id: "n-2".into(),
        note: Some("Refund approved by supervisor".into()),
        user_id: Some("agent-2".into()),
        last_modified_time: Some("2026-03-02T11:00:00Z".into()),
    });
    rec.recordings[0].transcript_media = Some(crm::media(
        "https://bridge.example/media/recording_transcript/rec-1?expires=2000&signature=t",
    ));
    let update = message("msg-2", ENGAGEMENT_UPDATED, &rec);
    fake.take_requests();
    let result = sink.deliver(&update).await;
    assert_outcome(&result, Outcome::Delivered);
    assert_eq!(result.status, Some(200));
    assert_eq!(fake.tickets().len(), 1);
    let comments = fake.comments(ticket);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1]["public"], false);
    let text = text_of(&comments[1]);
    assert!(text.contains("- Refund approved by supervisor"), "{text}");
    assert!(
        text.contains("Transcript: https://bridge.example/media/recording_transcript/rec-1"),
        "{text}"
    );
    let put = fake
        .take_requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a PUT");
    assert_eq!(put.path, format!("/api/v2/tickets/{ticket}"));
    assert_eq!(
        put.body.as_ref().expect("body")["ticket"]["comment"]["public"],
        false
    );
    assert!(put.header("idempotency-key").is_none());

    // The same update again, and a later one with the links signed anew but nothing else changed: no new note.
    assert_outcome(&sink.deliver(&update).await, Outcome::Delivered);
    rec.recordings[0].media = Some(crm::media(
        "https://bridge.example/media/recording/rec-1?expires=9000&signature=again",
    ));
    assert_outcome(
        &sink
            .deliver(&message("msg-3", ENGAGEMENT_UPDATED, &rec))
            .await,
        Outcome::Delivered,
    );
    assert_eq!(fake.comments(ticket).len(), 2);
    assert!(fake.take_requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn comment_mode_adds_to_the_requesters_newest_open_ticket() {
    let fake = FakeZendesk::start().await;
    let grace = fake.add_user("Grace Hopper", Some("grace@example.com"), None, "end-user");
    let other = fake.add_user("Other", Some("other@example.com"), None, "end-user");
    let older = fake.add_ticket(grace, "Invoice question", "open", None);
    let newest_open = fake.add_ticket(grace, "Refund status", "pending", None);
    fake.add_ticket(grace, "Old matter", "solved", None);
    fake.add_ticket(other, "Not hers", "open", None);
    let sink = sink(&config(&fake, &[("mode", "comment")]));
    let rec = record("eng-7", "grace@example.com");
    let msg = message("msg-7", ENGAGEMENT_COMPLETED, &rec);

    let result = sink.deliver(&msg).await;
    assert_outcome(&result, Outcome::Delivered);
    assert_eq!(fake.tickets().len(), 4, "no ticket created");
    assert_eq!(fake.comments(older).len(), 1);
    let comments = fake.comments(newest_open);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[1]["public"], false);
    let text = text_of(&comments[1]);
    assert!(
        text.starts_with("Inbound voice engagement: Billing (grace@example.com)"),
        "{text}"
    );
    assert!(
        text.contains("- Customer disputes the March invoice"),
        "{text}"
    );
    let requests = fake.take_requests();
    assert_eq!(requests[1].query("query"), Some("email:grace@example.com"));
    assert_eq!(
        requests[2].path,
        format!("/api/v2/users/{grace}/tickets/requested")
    );

    // A retry finds its own note there.
    assert_outcome(&sink.deliver(&msg).await, Outcome::Delivered);
    assert_eq!(fake.comments(newest_open).len(), 2);
    assert!(fake.take_requests().iter().all(|r| r.method == "GET"));

    // No open ticket: a ticket of its own, as in ticket mode.
    fake.set_status(newest_open, "solved");
    fake.set_status(older, "closed");
    let result = sink
        .deliver(&message(
            "msg-8",
            ENGAGEMENT_COMPLETED,
            &record("eng-8", "grace@example.com"),
        ))
        .await;
    assert_outcome(&result, Outcome::Delivered);
    let created = fake
        .tickets()
        .into_iter()
        .find(|t| t["external_id"] == "eng-8")
        .expect("a new ticket");
    assert_eq!(created["requester_id"], grace);
}

#[tokio::test]
async fn an_unknown_email_customer_becomes_the_requester_and_an_unknown_caller_does_not() {
    let fake = FakeZendesk::start().await;
    let sink = sink(&config(&fake, &[("tags", "vip")]));

    let rec = record("eng-mail", "new.customer@example.com");
    assert_outcome(
        &sink
            .deliver(&message("m-1", ENGAGEMENT_COMPLETED, &rec))
            .await,
        Outcome::Delivered,
    );
    let create = fake
        .take_requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create");
    assert_eq!(
        create.body.as_ref().expect("body")["ticket"]["requester"],
        json!({"name": "Grace Hopper", "email": "new.customer@example.com"})
    );
    assert_eq!(
        create.body.as_ref().expect("body")["ticket"]["tags"],
        json!(["zoom_contact_center", "zcc_voice", "zcc_inbound", "vip"])
    );

    let rec = record("eng-call", "+44 20 7946 0000");
    assert_outcome(
        &sink
            .deliver(&message("m-2", ENGAGEMENT_COMPLETED, &rec))
            .await,
        Outcome::Delivered,
    );
    let create = fake
        .take_requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create");
    let sent = &create.body.as_ref().expect("body")["ticket"];
    assert!(
        sent.get("requester").is_none() && sent.get("requester_id").is_none(),
        "{sent}"
    );
    let ticket = fake
        .tickets()
        .into_iter()
        .find(|t| t["external_id"] == "eng-call")
        .expect("ticket");
    assert_eq!(ticket["requester_id"], zendesk::AGENT_ID);
}

#[tokio::test]
async fn an_update_to_a_closed_ticket_opens_a_follow_up() {
    let fake = FakeZendesk::start().await;
    let grace = fake.add_user("Grace Hopper", None, Some(CALLER), "end-user");
    let sink = sink(&config(&fake, &[]));
    let mut rec = record("eng-1", CALLER);
    assert_outcome(
        &sink
            .deliver(&message("msg-1", ENGAGEMENT_COMPLETED, &rec))
            .await,
        Outcome::Delivered,
    );
    let first = id_of(&only_ticket(&fake));
    fake.set_status(first, "closed");

    rec.dispositions[0].disposition_name = Some("Refunded".into());
    let result = sink
        .deliver(&message("msg-2", ENGAGEMENT_UPDATED, &rec))
        .await;
    assert_outcome(&result, Outcome::Delivered);
    let tickets = fake.tickets();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[1]["external_id"], "eng-1");
    assert_eq!(tickets[1]["requester_id"], grace);
    assert_eq!(tickets[1]["followup_source_id"], first);

    // The follow-up is the engagement's ticket from now on.
    rec.dispositions[0].disposition_name = Some("Refunded in full".into());
    assert_outcome(
        &sink
            .deliver(&message("msg-3", ENGAGEMENT_UPDATED, &rec))
            .await,
        Outcome::Delivered,
    );
    assert_eq!(fake.tickets().len(), 2);
    assert_eq!(fake.comments(id_of(&tickets[1])).len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = FakeZendesk::start().await;
    let sink = sink(&config(&fake, &[]));
    let msg = message("msg-1", ENGAGEMENT_COMPLETED, &record("eng-1", CALLER));

    fake.fail_next(1, 503);
    let result = sink.deliver(&msg).await;
    assert_outcome(&result, Outcome::Retry);
    assert_eq!(result.status, Some(503));
    let error = result.error.as_deref().unwrap_or("");
    assert!(
        error.contains("HTTP 503") && error.contains("ServiceUnavailable"),
        "{error}"
    );
    assert!(fake.tickets().is_empty());

    assert_outcome(&sink.deliver(&msg).await, Outcome::Delivered);
    assert_eq!(fake.tickets().len(), 1);
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_given_time() {
    let fake = FakeZendesk::start().await;
    let sink = sink(&config(&fake, &[]));
    fake.rate_limit_next(7);
    let result = sink
        .deliver(&message(
            "msg-1",
            ENGAGEMENT_COMPLETED,
            &record("eng-1", CALLER),
        ))
        .await;
    assert_outcome(&result, Outcome::Retry);
    assert_eq!(result.status, Some(429));
    assert_eq!(result.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn validation_errors_are_rejected_with_zendesks_reason() {
    let fake = FakeZendesk::start().await;
    let sink = sink(&config(&fake, &[]));
    fake.fail_when(
        "POST",
        "/api/v2/tickets",
        422,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
               "details": {"requester": [{"description": "Requester: Email is invalid", "error": "InvalidValue"}]}}),
    );
    let result = sink
        .deliver(&message(
            "msg-1",
            ENGAGEMENT_COMPLETED,
            &record("eng-1", CALLER),
        ))
        .await;
    assert_outcome(&result, Outcome::Reject);
    assert_eq!(result.status, Some(422));
    let error = result.error.as_deref().unwrap_or("");
    assert!(
        error.contains("create the ticket")
            && error.contains(
                "RecordInvalid: Record validation errors (requester: Requester: Email is invalid)"
            ),
        "{error}"
    );
    assert!(result.body.contains("RecordInvalid"));
}

#[tokio::test]
async fn bad_credentials_are_rejected_without_showing_the_token() {
    let fake = FakeZendesk::start().await;
    let mut config = config(&fake, &[]);
    config.token = Some(Secret::new("not-the-token-xyz"));
    let result = sink(&config)
        .deliver(&message(
            "msg-1",
            ENGAGEMENT_COMPLETED,
            &record("eng-1", CALLER),
        ))
        .await;
    assert_outcome(&result, Outcome::Reject);
    assert_eq!(result.status, Some(401));
    let error = result.error.as_deref().unwrap_or("");
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(!error.contains("not-the-token-xyz") && !result.body.contains("not-the-token-xyz"));
    assert!(fake.tickets().is_empty());
}

#[tokio::test]
async fn an_oauth_access_token_is_sent_as_bearer() {
    let fake = FakeZendesk::start().await;
    let mut config = config(&fake, &[("auth", "bearer")]);
    config.token = Some(Secret::new(zendesk::OAUTH_TOKEN));
    config.username = None;
    let result = sink(&config)
        .deliver(&message(
            "msg-1",
            ENGAGEMENT_COMPLETED,
            &record("eng-1", CALLER),
        ))
        .await;
    assert_outcome(&result, Outcome::Delivered);
    let requests = fake.requests();
    let expected = format!("Bearer {}", zendesk::OAUTH_TOKEN);
    assert!(requests
        .iter()
        .all(|r| r.header("authorization") == Some(expected.as_str())));
}

#[tokio::test]
async fn network_errors_are_retried() {
    let fake = FakeZendesk::start().await;
    let mut config = config(&fake, &[]);
    // A port nothing listens on (the fake's, bound and released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    config.url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let result = sink(&config)
        .deliver(&message(
            "msg-1",
            ENGAGEMENT_COMPLETED,
            &record("eng-1", CALLER),
        ))
        .await;
    assert_outcome(&result, Outcome::Retry);
    assert_eq!(result.status, None);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("find the engagement's ticket: ")),
        "{result:?}"
    );
}

#[tokio::test]
async fn messages_without_an_engagement_record_are_rejected() {
    let fake = FakeZendesk::start().await;
    let sink = sink(&config(&fake, &[]));
    let event = Message {
        id: "msg-ev".into(),
        event_type: "contact_center.engagement_started".into(),
        created_at: 0,
        engagement_id: Some("eng-1".into()),
        data: "{}".into(),
        attempt: 1,
    };
    assert_outcome(&sink.deliver(&event).await, Outcome::Reject);
    let broken = Message {
        event_type: ENGAGEMENT_COMPLETED.into(),
        data: "{\"engagement_id\": 1}".into(),
        ..event
    };
    assert_outcome(&sink.deliver(&broken).await, Outcome::Reject);
    assert!(fake.requests().is_empty());
}

#[test]
fn the_configuration_is_checked() {
    let mut bad = SinkConfig {
        deliver: vec![ENGAGEMENT_COMPLETED.into()],
        timeout_seconds: 10,
        username: Some(zendesk::EMAIL.into()),
        ..SinkConfig::new("zd", SinkKind::Zendesk, "https://acme.zendesk.com")
    };
    assert!(zcc_bridge::delivery::sinks::check_config(&bad).is_err());
    bad.token = Some(Secret::new("t"));
    assert!(zcc_bridge::delivery::sinks::check_config(&bad).is_ok());
    // A value the kind's options do not take is refused when the configuration is read, by key.
    let refused = SinkOptions::from_pairs(SinkKind::Zendesk, &[("mode", "everything")])
        .expect_err("mode = everything");
    assert!(refused.starts_with("mode: "), "{refused}");
}
