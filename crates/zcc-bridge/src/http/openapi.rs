//! The OpenAPI 3.1 document of the HTTP API (`GET /api/v1/openapi.json`), generated from the handlers'
//! `#[utoipa::path]` attributes and the types they answer with. A unit test keeps it equal to the router's routes;
//! `scripts/openapi-fuzz.sh` (run by `scripts/test.sh`) fuzzes the live server from it with schemathesis.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "zcc-bridge",
        description = "Zoom Contact Center integration server: webhook ingest, engagement records, the event log, \
            reconciliation, the media archive, delivery to systems of record, real-time agent activity and presence. \
            Every `/api/v1` route takes the admin token as `Authorization: Bearer ...`. Lists page with `cursor` \
            (the previous page's `next_cursor`) and `limit`; times are RFC 3339 (fields that stay epoch milliseconds \
            end in `_ms`, or are Zoom's own `event_ts`); durations carry their unit in the name; errors are RFC 9457 \
            problem documents.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::api::list_engagements,
        super::api::get_engagement,
        super::live::engagement_activity,
        super::live::agents,
        super::live::agent,
        super::live::stream,
        super::api::presence,
        super::api::list_events,
        super::api::get_event,
        super::api::list_quarantine,
        super::api::get_quarantine,
        super::api::replay_quarantine,
        super::api::stats,
        super::api::reconciliation,
        super::api::start_reconciliation,
        super::api::reconciliation_run,
        super::media::list,
        super::media::stats,
        super::media::retry,
        super::media::revoke_permalinks,
        super::deliveries::list,
        super::deliveries::replay_many,
        super::deliveries::show,
        super::deliveries::replay_one,
        super::deliveries::sinks,
        super::deliveries::enable,
        super::webhooks::zoom,
        super::flow::post,
        super::genesys::post,
        super::chat::inbound,
        super::chat::callback,
        super::chat::list_channels,
        super::chat::create_channel,
        super::chat::get_channel,
        super::chat::update_channel,
        super::chat::delete_channel,
        super::chat::list_users,
        super::chat::add_user,
        super::chat::get_user,
        super::chat::delete_user,
        super::chat::credentials,
        super::chat::list_sessions,
        super::chat::get_session,
        super::media::serve,
        super::media::permalink,
        document,
        super::healthz,
        super::readyz,
        super::metrics,
    ),
    components(schemas(Problem)),
    modifiers(&AdminApi),
    security(("admin_token" = [])),
    tags(
        (name = "records", description = "Engagement records, the event log, the quarantine"),
        (name = "real time", description = "Agents, engagement activity, the live stream, presence"),
        (name = "operations", description = "Reconciliation and replays"),
        (name = "media", description = "The media archive"),
        (name = "delivery", description = "Deliveries to systems of record"),
        (name = "ingest", description = "Webhooks from Zoom, Flow scripts and Genesys Cloud (signed; no admin token)"),
        (name = "chat", description = "The chatbot channel: Zoom's bot connector posts here; channels, users and sessions (docs/chat/)"),
        (name = "media links", description = "Signed links to archived files (no admin token)"),
        (name = "health", description = "Liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The admin token's security scheme, and the answers every `/api/v1` route can give besides its own: 401
/// without the token, 503 when the database cannot be reached.
struct AdminApi;

impl Modify for AdminApi {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "admin.token (ZCC_BRIDGE_ADMIN__TOKEN) or an API key (zcc-bridge keys create), as \
                         Authorization: Bearer ...; a read_only key may GET, an operator key may also replay, \
                         retry, re-enable and start runs",
                    ))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "Problem",
                    )))),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    responses.entry("401".into()).or_insert_with(|| {
                        problem("Missing or wrong admin token or API key").into()
                    });
                    responses.entry("403".into()).or_insert_with(|| {
                        problem("The API key's role does not allow this route").into()
                    });
                    responses.entry("503".into()).or_insert_with(|| {
                        problem("The database could not be reached; retry later").into()
                    });
                }
                // A path parameter that does not fit its route is refused like any other request.
                if path.contains('{') {
                    responses
                        .entry("404".into())
                        .or_insert_with(|| problem("No such item").into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn document() -> Response {
    // Built once: the document is fixed when the binary is built.
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The `.route("...")` paths of a router's source, with the prefix it is nested under. The Zoom App's pages
    /// (`http/zoomapp.rs`, under `/zoomapp/`) are a web app loaded in the Zoom client, not part of this API.
    fn routes(source: &str, prefix: &str) -> BTreeSet<String> {
        source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| {
                let rest = rest.trim_start().strip_prefix('"')?;
                let path = &rest[..rest.find('"')?];
                Some(if path.starts_with("/api/v1/") {
                    path.to_string()
                } else {
                    format!("{prefix}{path}")
                })
            })
            .collect()
    }

    #[test]
    fn the_document_describes_every_route_and_nothing_else() {
        let mut routed = routes(include_str!("mod.rs"), "");
        routed.extend(routes(include_str!("api.rs"), "/api/v1"));
        routed.extend(routes(include_str!("chat.rs"), "/api/v1"));
        let documented: BTreeSet<String> = ApiDoc::openapi().paths.paths.into_keys().collect();
        assert_eq!(routed, documented);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_admin_token_on_the_api() {
        let doc: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().expect("json")).expect("parses");
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        assert_eq!(doc["security"][0]["admin_token"], serde_json::json!([]));
        let engagements = &doc["paths"]["/api/v1/engagements"]["get"];
        assert!(engagements["responses"]["401"].is_object());
        assert_eq!(
            doc["paths"]["/webhooks/zoom"]["post"]["security"],
            serde_json::json!([{}])
        );
        assert!(
            doc["components"]["schemas"]["EngagementRecord"]["properties"]["engagement_id"]
                .is_object()
        );
    }
}
