//! The HubSpot sink against the local fake of HubSpot's CRM API (`crate::common::fakes::hubspot`): what it sends, that
//! a later delivery of the same engagement updates the same call, and how failures map to outcomes.

use crate::common::crm;
use std::sync::Arc;
use std::time::Duration;

use crate::common::fakes::hubspot::{FakeHubspot, Recorded, CALL_TO_CONTACT, ID_PROPERTY, TOKEN};
use serde_json::{json, Value};
use zcc_bridge::config::{Secret, SinkConfig, SinkKind, SinkOptions};
use zcc_bridge::core::record::NoteView;
use zcc_bridge::core::EngagementRecord;
use zcc_bridge::delivery::sink::{
    Message, Outcome, Sink, ENGAGEMENT_COMPLETED, ENGAGEMENT_UPDATED,
};
use zcc_bridge::delivery::sinks;

const CUSTOMER: &str = "+14155550100";
const CONNECTED: &str = "f240bbac-87c9-4f6e-bf70-924b57d47db7";
const CALLS: &str = "/crm/v3/objects/calls";
const CALLS_SEARCH: &str = "/crm/v3/objects/calls/search";
const CONTACTS_SEARCH: &str = "/crm/v3/objects/contacts/search";

fn config(url: &str, token: &str, options: &[(&str, &str)]) -> SinkConfig {
    SinkConfig {
        timeout_seconds: 10,
        token: Some(Secret::new(token)),
        options: SinkOptions::from_pairs(SinkKind::Hubspot, options).expect("valid options"),
        ..SinkConfig::new("hubspot", SinkKind::Hubspot, url)
    }
}

fn sink(fake: &FakeHubspot, options: &[(&str, &str)]) -> Arc<dyn Sink> {
    sinks::build(&config(&fake.base, TOKEN, options), 2048).expect("the sink builds")
}

fn record(engagement_id: &str, number: &str) -> EngagementRecord {
    let recording = |id: &str| {
        crm::recording(
            id,
            "agent-1",
            &format!("https://bridge.example/media/{id}?sig=abc"),
            ("2026-03-02T10:00:05Z", "2026-03-02T10:02:00Z", 115),
        )
    };
    crm::Call {
        engagement_id,
        consumer: number,
        recordings: vec![recording("rec-1"), recording("rec-2")],
        ..Default::default()
    }
    .record()
}

fn message(event_type: &str, record: &EngagementRecord) -> Message {
    let id = format!("msg_{}_{event_type}", record.engagement_id);
    crm::message(id, event_type, record, 1_772_445_800_000, 1)
}

fn prop<'a>(request: &'a Recorded, name: &str) -> Option<&'a str> {
    request.body["properties"][name].as_str()
}

#[tokio::test]
async fn the_first_delivery_creates_the_call_and_later_ones_update_it() {
    let fake = FakeHubspot::start().await;
    fake.add_contact(&[("firstname", "Other"), ("phone", "+14155559999")]);
    let grace = fake.add_contact(&[("firstname", "Grace"), ("mobilephone", CUSTOMER)]);
    let sink = sink(
        &fake,
        &[("disposition_map", &format!("Resolved={CONNECTED}"))],
    );

    let mut engagement = record("eng-1", CUSTOMER);
    let first = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &engagement))
        .await;
    assert_eq!(first.outcome, Outcome::Delivered, "{first:?}");
    assert_eq!(first.status, Some(201));
    let logged: Value = serde_json::from_str(&first.body).expect("a JSON summary");
    assert_eq!(logged["action"], "created");
    assert_eq!(logged["contact_id"], grace.as_str());

    let requests = fake.requests();
    assert!(requests
        .iter()
        .all(|r| r.headers.get("authorization") == Some(&format!("Bearer {TOKEN}"))));
    let order: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("POST", CONTACTS_SEARCH),
            ("POST", CALLS_SEARCH),
            ("POST", CALLS)
        ],
        "one contact search, one call search, one create"
    );

    // The contact search: phone variants on phone and mobilephone, OR-ed.
    let groups = requests[0].body["filterGroups"]
        .as_array()
        .expect("filter groups");
    let properties: Vec<&str> = groups
        .iter()
        .filter_map(|g| g["filters"][0]["propertyName"].as_str())
        .collect();
    assert_eq!(properties, ["phone", "mobilephone"]);
    assert_eq!(groups[1]["filters"][0]["operator"], "IN");
    assert!(groups[1]["filters"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .any(|v| v == CUSTOMER));

    // The call search by the engagement id property.
    let filter = &requests[1].body["filterGroups"][0]["filters"][0];
    assert_eq!(filter["propertyName"], ID_PROPERTY);
    assert_eq!(filter["operator"], "EQ");
    assert_eq!(filter["value"], "eng-1");

    let create = &requests[2];
    assert_eq!(prop(create, ID_PROPERTY), Some("eng-1"));
    assert_eq!(prop(create, "hs_timestamp"), Some("1772445600000"));
    assert_eq!(
        prop(create, "hs_call_title"),
        Some("Inbound voice engagement: Billing (+14155550100)")
    );
    assert_eq!(prop(create, "hs_call_direction"), Some("INBOUND"));
    assert_eq!(prop(create, "hs_call_duration"), Some("125000"));
    assert_eq!(prop(create, "hs_call_status"), Some("COMPLETED"));
    assert_eq!(prop(create, "hs_call_disposition"), Some(CONNECTED));
    assert_eq!(prop(create, "hs_call_from_number"), Some(CUSTOMER));
    assert_eq!(prop(create, "hs_call_to_number"), None);
    assert_eq!(
        prop(create, "hs_call_recording_url"),
        Some("https://bridge.example/media/rec-1?sig=abc"),
        "the first recording"
    );
    let body = prop(create, "hs_call_body").expect("a body");
    for expected in [
        "Zoom Contact Center engagement eng-1",
        "Disposition: Resolved",
        "- Customer asked about the March invoice",
        "Agent: Ada Lovelace",
        "https://bridge.example/media/rec-2?sig=abc",
    ] {
        assert!(body.contains(expected), "{expected:?} not in {body}");
    }
    let association = &create.body["associations"][0];
    assert_eq!(association["to"]["id"], grace.as_str());
    assert_eq!(
        association["types"][0]["associationCategory"],
        "HUBSPOT_DEFINED"
    );
    assert_eq!(
        association["types"][0]["associationTypeId"],
        CALL_TO_CONTACT
    );

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call_id = calls[0].id.clone();
    assert_eq!(
        calls[0].properties.get(ID_PROPERTY).map(String::as_str),
        Some("eng-1")
    );
    assert_eq!(fake.associations().len(), 1);
    assert_eq!(fake.associations()[0].call_id, call_id);
    assert_eq!(fake.associations()[0].contact_id, grace);
    assert_eq!(fake.associations()[0].type_id, CALL_TO_CONTACT);

    // A later change of the same engagement: the same call, updated, and nothing created.
    engagement.notes.push(NoteView {
        note_id: "n-2".into(),
        note: Some("Follow-up: credit issued".into()),
        user_id: Some("agent-1".into()),
        last_modified_time: None,
    });
    fake.clear_requests();
    let second = sink
        .deliver(&message(ENGAGEMENT_UPDATED, &engagement))
        .await;
    assert_eq!(second.outcome, Outcome::Delivered, "{second:?}");
    assert_eq!(second.status, Some(200));
    assert!(
        fake.requests_to("POST", CALLS).is_empty(),
        "no second create"
    );
    let patches = fake.requests_to("PATCH", &format!("{CALLS}/{call_id}"));
    assert_eq!(patches.len(), 1);
    assert!(prop(&patches[0], "hs_call_body")
        .expect("body")
        .contains("credit issued"));
    let association_path =
        format!("/crm/v4/objects/calls/{call_id}/associations/default/contacts/{grace}");
    assert_eq!(
        fake.requests_to("PUT", &association_path).len(),
        1,
        "the association is made sure of"
    );
    assert_eq!(fake.calls().len(), 1);
    assert!(fake.calls()[0].properties["hs_call_body"].contains("credit issued"));
    assert_eq!(fake.associations().len(), 1);

    // A fresh sink (another replica, a restart) finds the call by search and updates it too.
    fake.clear_requests();
    let other = sink_for_restart(&fake);
    let third = other
        .deliver(&message(ENGAGEMENT_UPDATED, &engagement))
        .await;
    assert_eq!(third.outcome, Outcome::Delivered, "{third:?}");
    assert_eq!(fake.requests_to("POST", CALLS_SEARCH).len(), 1);
    assert_eq!(
        fake.requests_to("PATCH", &format!("{CALLS}/{call_id}"))
            .len(),
        1
    );
    assert!(fake.requests_to("POST", CALLS).is_empty());
    assert_eq!(fake.calls().len(), 1);
}

fn sink_for_restart(fake: &FakeHubspot) -> Arc<dyn Sink> {
    sink(
        fake,
        &[("disposition_map", &format!("Resolved={CONNECTED}"))],
    )
}

#[tokio::test]
async fn a_call_written_moments_ago_is_updated_even_before_search_sees_it() {
    let fake = FakeHubspot::start().await;
    fake.set_search_lag(true);
    let sink = sink(&fake, &[]);
    let engagement = record("eng-lag", CUSTOMER);
    let first = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &engagement))
        .await;
    assert_eq!(first.outcome, Outcome::Delivered, "{first:?}");
    let second = sink
        .deliver(&message(ENGAGEMENT_UPDATED, &engagement))
        .await;
    assert_eq!(second.outcome, Outcome::Delivered, "{second:?}");
    assert_eq!(
        fake.calls().len(),
        1,
        "search lagged, the sink remembered the call"
    );
    assert_eq!(fake.requests_to("POST", CALLS).len(), 1);
}

#[tokio::test]
async fn without_a_matching_contact_the_call_is_created_unassociated() {
    let fake = FakeHubspot::start().await;
    fake.add_contact(&[("firstname", "Other"), ("phone", "+14155559999")]);
    let sink = sink(&fake, &[]);
    let result = sink
        .deliver(&message(
            ENGAGEMENT_COMPLETED,
            &record("eng-2", "+14155550123"),
        ))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    let creates = fake.requests_to("POST", CALLS);
    assert_eq!(creates.len(), 1);
    // HubSpot's schema requires the key; its guides leave it out: an empty list satisfies both.
    assert_eq!(
        creates[0].body.get("associations"),
        Some(&json!([])),
        "{:?}",
        creates[0].body
    );
    assert_eq!(
        prop(&creates[0], "hs_call_disposition"),
        None,
        "no map, no outcome"
    );
    assert!(fake.associations().is_empty());
    assert!(fake.requests().iter().all(|r| r.method != "PUT"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn an_email_customer_is_found_by_email() {
    let fake = FakeHubspot::start().await;
    let grace = fake.add_contact(&[("firstname", "Grace"), ("email", "grace@example.com")]);
    let sink = sink(&fake, &[]);
    let mut engagement = record("eng-mail", "Grace@Example.com");
    engagement.channel = Some("email".into());
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &engagement))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    let search = &fake.requests_to("POST", CONTACTS_SEARCH)[0];
    assert_eq!(
        search.body["filterGroups"][0]["filters"][0]["propertyName"],
        "email"
    );
    assert_eq!(fake.associations()[0].contact_id, grace);
    let create = &fake.requests_to("POST", CALLS)[0];
    assert_eq!(prop(create, "hs_call_from_number"), None);
}

#[tokio::test]
async fn a_503_is_retried_and_the_next_attempt_delivers() {
    let fake = FakeHubspot::start().await;
    let sink = sink(&fake, &[]);
    let engagement = record("eng-3", CUSTOMER);
    fake.fail_next(1, 503);
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &engagement))
        .await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, Some(503));
    assert!(
        result.error.as_deref().unwrap_or("").contains("HTTP 503"),
        "{result:?}"
    );
    assert!(fake.calls().is_empty());

    let again = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &engagement))
        .await;
    assert_eq!(again.outcome, Outcome::Delivered, "{again:?}");
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_429_is_retried_after_what_hubspot_asks() {
    let fake = FakeHubspot::start().await;
    let sink = sink(&fake, &[]);
    fake.rate_limit_next(Some(7), "SECONDLY");
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-4", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, Some(429));
    assert_eq!(result.retry_after, Some(Duration::from_secs(7)));
    let error = result.error.expect("an error");
    assert!(
        error.contains("RATE_LIMIT") && error.contains("SECONDLY"),
        "{error}"
    );
    assert!(result.body.contains("policyName"), "{}", result.body);

    // The daily limit, without Retry-After: retried on the engine's own schedule.
    fake.rate_limit_next(None, "DAILY");
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-4", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Retry);
    assert_eq!(result.retry_after, None);
    assert!(
        result.error.as_deref().unwrap_or("").contains("DAILY"),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_400_is_rejected_with_hubspots_reason() {
    let fake = FakeHubspot::start().await;
    // The admin did not create this call property: HubSpot refuses the search.
    let sink = sink(&fake, &[("id_property", "zoom_engagement_ref")]);
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-5", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    assert_eq!(result.status, Some(400));
    let error = result.error.expect("an error");
    assert!(
        error.starts_with("search calls: HTTP 400 VALIDATION_ERROR"),
        "{error}"
    );
    assert!(error.contains("zoom_engagement_ref"), "{error}");
    assert!(fake.calls().is_empty());

    // Created, the property works.
    fake.define_call_property("zoom_engagement_ref");
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-5", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Delivered, "{result:?}");
    assert_eq!(
        fake.calls()[0]
            .properties
            .get("zoom_engagement_ref")
            .map(String::as_str),
        Some("eng-5")
    );
}

#[tokio::test]
async fn a_bad_token_is_rejected_and_explained_without_the_token() {
    let fake = FakeHubspot::start().await;
    let wrong = "pat-na1-revoked-0000";
    let sink = sinks::build(&config(&fake.base, wrong, &[]), 2048).expect("the sink builds");
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-6", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    assert_eq!(result.status, Some(401));
    let error = result.error.expect("an error");
    assert!(
        error.contains("INVALID_AUTHENTICATION") && error.contains("token"),
        "{error}"
    );
    assert!(
        !error.contains(wrong) && !result.body.contains(wrong),
        "{error}"
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn messages_that_are_not_engagements_are_rejected_without_a_request() {
    let fake = FakeHubspot::start().await;
    let sink = sink(&fake, &[]);
    let mut event = message(ENGAGEMENT_COMPLETED, &record("eng-7", CUSTOMER));
    event.event_type = "contact_center.engagement_started".into();
    let result = sink.deliver(&event).await;
    assert_eq!(result.outcome, Outcome::Reject, "{result:?}");
    let mut broken = message(ENGAGEMENT_COMPLETED, &record("eng-7", CUSTOMER));
    broken.data = "{\"engagement_id\": 7}".into();
    assert_eq!(sink.deliver(&broken).await.outcome, Outcome::Reject);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_api_is_a_network_retry() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let sink = sinks::build(&config(&format!("http://{addr}"), TOKEN, &[]), 2048)
        .expect("the sink builds");
    let result = sink
        .deliver(&message(ENGAGEMENT_COMPLETED, &record("eng-8", CUSTOMER)))
        .await;
    assert_eq!(result.outcome, Outcome::Retry, "{result:?}");
    assert_eq!(result.status, None);
    assert!(
        result
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("search contacts: connection failed"),
        "{result:?}"
    );
}

#[test]
fn the_configuration_is_checked() {
    let ok = config("", TOKEN, &[]);
    assert!(
        sinks::check_config(&ok).is_ok(),
        "an empty url means https://api.hubapi.com"
    );
    let mut no_token = ok.clone();
    no_token.token = None;
    assert!(sinks::build(&no_token, 2048).is_err());
    assert!(sinks::check_config(&config("ftp://api.hubapi.com", TOKEN, &[])).is_err());
    assert!(
        sinks::check_config(&config("", TOKEN, &[("disposition_map", "Resolved=green")])).is_err()
    );
    // A key the kind does not take is refused when the configuration is read, before any sink is built.
    let refused = SinkOptions::from_pairs(SinkKind::Hubspot, &[("idproperty", "x")])
        .expect_err("unknown key");
    assert!(
        refused.contains("idproperty") && refused.contains("id_property"),
        "{refused}"
    );
}
