//! `ZoomClient::download` against the simulator's file URLs: whole and ranged transfers, redirects, token renewal,
//! files still processing, a transfer cut mid-body and resumed, the token kept off other hosts, 416, a stalled body.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt as _;
use zoom::api::{ClientConfig, Download, DownloadError, ZoomClient};
use zoom_sim::{generate, GeneratorConfig, Scenario, SimServer, SimServerConfig};

/// Not a multiple of the simulator's 64 KiB chunks nor of its 8-byte words.
const SIZE: u64 = 1_000_003;

/// A scenario whose payload URLs point at the simulator serving it.
async fn serve(config: SimServerConfig) -> (Scenario, SimServer) {
    let bound = SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let scenario = generate(&GeneratorConfig {
        seed: 7,
        engagements: 10,
        api_base: format!("{}/v2", bound.base_url()),
        ..GeneratorConfig::default()
    });
    let server = bound.serve(config, &scenario);
    (scenario, server)
}

fn sim(tweak: impl FnOnce(&mut SimServerConfig)) -> SimServerConfig {
    let mut config = SimServerConfig {
        media_bytes: SIZE,
        ..SimServerConfig::default()
    };
    tweak(&mut config);
    config
}

fn client(server: &SimServer, tweak: impl FnOnce(&mut ClientConfig)) -> ZoomClient {
    let defaults = SimServerConfig::default();
    let mut config = ClientConfig {
        account_id: defaults.account_id,
        client_id: defaults.client_id,
        client_secret: defaults.client_secret,
        oauth_base: server.base_url(),
        api_base: format!("{}/v2", server.base_url()),
        ..Default::default()
    };
    tweak(&mut config);
    ZoomClient::new(config).expect("client")
}

/// The `download_url` of the first recording and of the first voicemail, as REST lists them (the webhooks carry
/// none): formed from the scenario's REST base as Zoom forms them.
fn recording_url(scenario: &Scenario) -> String {
    let object = first_object(scenario, "contact_center.recording_completed");
    let field = |key: &str| object[key].as_str().unwrap_or_default().to_owned();
    zoom_sim::urls::recording_download(
        &scenario.api_base,
        &field("recording_id"),
        &field("channel"),
    )
}

fn voicemail_url(scenario: &Scenario) -> String {
    let object = first_object(scenario, "contact_center.inbox_message_received");
    let id = object["message_id"].as_str().unwrap_or_default();
    zoom_sim::urls::voicemail_download(&scenario.api_base, id)
}

fn first_object<'a>(scenario: &'a Scenario, event: &str) -> &'a serde_json::Value {
    scenario
        .events
        .iter()
        .filter(|e| e.event() == event)
        .find_map(|e| e.object())
        .unwrap_or_else(|| panic!("no {event}"))
}

/// The file as a plain reqwest client sees it: an oracle independent of `download`. Call it after any transfer
/// that is meant to be cut (the simulator cuts the first transfer of each file).
async fn reference_bytes(client: &ZoomClient, url: &str) -> Vec<u8> {
    let token = client.access_token().await.expect("token");
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("reference download");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.bytes().await.expect("reference body").to_vec()
}

/// The whole body, or the bytes received before the stream's error, and the error.
async fn drain(download: Download) -> (Vec<u8>, Option<DownloadError>) {
    let mut body = download.body;
    let mut received = Vec::new();
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(error) => {
                assert!(body.next().await.is_none(), "nothing after an error");
                return (received, Some(error));
            }
        }
    }
    (received, None)
}

async fn complete(download: Download) -> Vec<u8> {
    match drain(download).await {
        (bytes, None) => bytes,
        (bytes, Some(error)) => panic!("body broke after {} bytes: {error}", bytes.len()),
    }
}

#[tokio::test]
async fn whole_file_is_streamed_with_its_metadata() {
    let (scenario, server) = serve(sim(|_| {})).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);

    let download = client.download(&url, 0).await.expect("download");
    assert_eq!(
        (download.status, download.start, download.total),
        (200, 0, Some(SIZE))
    );
    assert!(
        matches!(
            download.content_type.as_deref(),
            Some("audio/mpeg" | "video/mp4")
        ),
        "{download:?}"
    );
    let etag = download.etag.clone().expect("etag");
    let bytes = complete(download).await;
    assert_eq!(bytes.len() as u64, SIZE);
    assert_eq!(bytes, reference_bytes(&client, &url).await);

    // The voicemail is another file; the same file again has the same ETag.
    let voicemail = complete(
        client
            .download(&voicemail_url(&scenario), 0)
            .await
            .expect("voicemail"),
    )
    .await;
    assert_eq!(voicemail.len() as u64, SIZE);
    assert_ne!(voicemail, bytes);
    let again = client.download(&url, 0).await.expect("again");
    assert_eq!(again.etag.as_deref(), Some(etag.as_str()));
    drop(again);

    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 1, "{stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");
    assert_eq!(stats.list_recordings, 0, "downloads are not REST calls");
    server.shutdown().await;
}

#[tokio::test]
async fn a_range_from_the_middle_returns_the_rest_of_the_file() {
    let (scenario, server) = serve(sim(|_| {})).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);
    let whole = reference_bytes(&client, &url).await;

    for from in [1, 400_001, SIZE - 1] {
        let download = client.download(&url, from).await.expect("ranged download");
        assert_eq!(
            (download.status, download.start, download.total),
            (206, from, Some(SIZE)),
            "{from}"
        );
        let rest = complete(download).await;
        assert_eq!(&rest[..], &whole[from as usize..], "{from}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn redirects_to_a_download_link_are_followed() {
    let (scenario, server) = serve(sim(|c| c.download_redirect = true)).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);

    let download = client.download(&url, 0).await.expect("download");
    assert_eq!((download.status, download.total), (200, Some(SIZE)));
    let whole = complete(download).await;
    assert_eq!(whole.len() as u64, SIZE);
    // The Range header survives the redirect.
    let download = client.download(&url, 123_457).await.expect("ranged");
    assert_eq!((download.status, download.start), (206, 123_457));
    assert_eq!(complete(download).await, &whole[123_457..]);

    let stats = server.stats();
    assert_eq!(stats.download_redirects, 2, "{stats:?}");
    assert_eq!(stats.downloads, 2, "{stats:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_transparently() {
    let (scenario, server) = serve(sim(|c| c.media_bytes = 300_000)).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);
    let first = complete(client.download(&url, 0).await.expect("first")).await;

    server.expire_all_tokens();
    let download = client.download(&url, 0).await.expect("after expiry");
    assert_eq!(download.status, 200);
    assert_eq!(complete(download).await, first);

    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 2, "{stats:?}");
    assert_eq!(stats.unauthorized, 1, "one refusal, then the new token");
    assert_eq!(stats.downloads, 2, "{stats:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_file_still_processing_is_not_ready_then_downloads() {
    let delay = Duration::from_millis(1200);
    let (scenario, server) = serve(sim(|c| {
        c.media_bytes = 256 * 1024;
        c.media_processing_delay = delay;
    }))
    .await;
    let started = std::time::Instant::now();
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);

    let error = client
        .download(&url, 0)
        .await
        .expect_err("still processing");
    assert!(
        started.elapsed() < delay,
        "the test ran too slowly to see the delay"
    );
    match &error {
        DownloadError::NotReady {
            status: 404,
            code: Some(code),
            message,
        } => {
            assert_eq!(*code, i64::from(zoom_sim::server::FILE_NOT_FOUND_CODE));
            assert!(message.contains("processed"), "{message}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    assert!(error.is_retryable());

    tokio::time::sleep(delay.saturating_sub(started.elapsed()) + Duration::from_millis(100)).await;
    let download = client.download(&url, 0).await.expect("ready now");
    assert_eq!(complete(download).await.len(), 256 * 1024);

    // An unknown file is a 404 too (Zoom does not tell "gone" from "not yet").
    let unknown = format!(
        "{}/v2/contact_center/recording/download/doesNotExist000000000A",
        server.base_url()
    );
    match client.download(&unknown, 0).await {
        Err(DownloadError::NotReady { status: 404, .. }) => {}
        other => panic!("expected NotReady, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_cut_transfer_fails_on_the_stream_and_resumes_from_the_received_offset() {
    const CUT: u64 = 300_000;
    let (scenario, server) = serve(sim(|c| c.cut_first_download_after = Some(CUT))).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);

    let download = client.download(&url, 0).await.expect("head");
    assert_eq!((download.status, download.total), (200, Some(SIZE)));
    let (mut received, error) = drain(download).await;
    let error = error.expect("the first transfer is cut");
    assert!(matches!(error, DownloadError::Network(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(received.len() as u64, CUT);

    let resumed = client
        .download(&url, received.len() as u64)
        .await
        .expect("resume");
    assert_eq!(
        (resumed.status, resumed.start, resumed.total),
        (206, CUT, Some(SIZE))
    );
    received.extend(complete(resumed).await);
    assert_eq!(received, reference_bytes(&client, &url).await);

    let stats = server.stats();
    assert_eq!(stats.downloads_cut, 1, "{stats:?}");
    assert_eq!(stats.downloads, 3, "cut, resumed, reference: {stats:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn urls_off_the_api_origin_are_refused_without_a_request() {
    let (scenario, server) = serve(sim(|_| {})).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);
    let port = server.local_addr().port();
    let path = url
        .strip_prefix(&server.base_url())
        .expect("payload URLs are on the simulator");

    // Another port of the same host: a listener that would record any request.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let trap_port = trap.local_addr().expect("addr").port();
    let elsewhere = [
        format!("http://localhost:{port}{path}"),
        format!("http://127.0.0.1:{trap_port}{path}"),
        format!("https://127.0.0.1:{port}{path}"),
        format!("http://evil.example{path}"),
        format!("ftp://127.0.0.1:{port}{path}"),
        path.to_owned(),
        String::new(),
    ];
    for target in &elsewhere {
        match client.download(target, 0).await {
            Err(
                error @ DownloadError::Refused {
                    status: 0,
                    code: None,
                    ..
                },
            ) => {
                assert!(!error.is_retryable());
                assert!(!error.to_string().contains("type="), "no query in {error}");
            }
            other => panic!("{target}: expected a refusal, got {other:?}"),
        }
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), trap.accept()).await;
    assert!(accepted.is_err(), "nothing connected to the other port");
    let stats = server.stats();
    assert_eq!(stats.token_requests, 0, "not even a token: {stats:?}");
    assert_eq!(stats.download_requests, 0, "{stats:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_range_past_the_end_is_not_satisfiable() {
    let (scenario, server) = serve(sim(|_| {})).await;
    let client = client(&server, |_| {});
    let url = recording_url(&scenario);
    for from in [SIZE, SIZE + 10_000] {
        match client.download(&url, from).await {
            Err(error @ DownloadError::RangeNotSatisfiable { total: Some(SIZE) }) => {
                assert!(!error.is_retryable());
            }
            other => panic!("{from}: expected 416, got {other:?}"),
        }
    }
    // The last byte is still satisfiable.
    let last = client.download(&url, SIZE - 1).await.expect("last byte");
    assert_eq!(complete(last).await.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_body_fails_after_the_read_timeout() {
    // 16 small chunks a second: a gap of ~62 ms between chunks, longer than the 25 ms read timeout.
    let (scenario, server) = serve(sim(|c| {
        c.media_bytes = 4096;
        c.download_bytes_per_second = Some(160);
    }))
    .await;
    let client = client(&server, |c| {
        c.download_read_timeout = Duration::from_millis(25)
    });
    let url = recording_url(&scenario);
    let error = match client.download(&url, 0).await {
        // The response head may wait for the first (throttled) chunk, or come at once.
        Err(error) => error,
        Ok(download) => {
            let (received, error) = drain(download).await;
            assert!((received.len() as u64) < 4096);
            error.expect("the stalled body fails")
        }
    };
    match &error {
        DownloadError::Network(message) => {
            assert!(!message.contains(&server.base_url()), "no URL: {message}")
        }
        other => panic!("expected a network error, got {other:?}"),
    }
    server.shutdown().await;
}

#[test]
fn payload_urls_carry_a_query_the_refusal_must_not_echo() {
    // The guard above (`contains("type=")`) only means something if payload URLs have a query.
    let scenario = generate(&GeneratorConfig {
        seed: 7,
        engagements: 3,
        ..GeneratorConfig::default()
    });
    let url = recording_url(&scenario);
    assert!(url.contains("?type="), "{url}");
}
