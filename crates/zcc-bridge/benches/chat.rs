//! Chatbot channel benchmark (issue 19): 500 concurrent conversations at 200 messages/s against a bot that answers
//! in 50 ms. zoom-sim plays Zoom's bot connector (consumer sessions posting HS256-signed requests, open loop: each
//! message is sent when it is due, whatever the bridge's pace) and its Post URL; the bot is the `http` backend's
//! contract, answering after 50 ms and timing itself.
//!
//! Per message: **overhead** = (the reply's arrival at the Post URL - the start of the consumer's POST) - the bot's
//! own time for that turn (measured inside the bot). Baseline, measured in the same run with the same load, bot and
//! Post URL: a relay that does what the bridge does on the wire and nothing else (acknowledge, ask the bot, post
//! the reply; no token check, no log, no outbox). Reported: p50/p99/max overhead of both, the acknowledgement
//! latency, messages lost or answered out of order (zoom-sim's ground truth), and the bridge's memory per idle
//! conversation (RSS growth over 2,000 conversations that said one message and went quiet, after a first 2,000 to
//! warm the allocator; the bridge keeps nothing per idle conversation but a small admission cache entry).
//!
//!   cargo bench -p zcc-bridge --bench chat
//!   ZCC_BENCH_CONVERSATIONS=500 ZCC_BENCH_RATE=200 ZCC_BENCH_SECONDS=30 ZCC_BENCH_BOT_MS=50 cargo bench -p zcc-bridge --bench chat
//!   (ZCC_TEST_POSTGRES_URL set: Postgres too; each backend runs in a fresh process)

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::routing::post as on_post;
use axum::{Json, Router};
use serde_json::{json, Value};
use zcc_bridge::config::{ChatChannelConfig, Config, Secret as ConfigSecret};
use zoom_sim::chat::{run_load, JwtAlgorithm, LoadConfig, PostUrlServer, Secret, TokenSigner};

use common::{env_or, fresh_postgres, percentile, run_child};

const HS_SECRET: &str = "bench-client-secret-0123456789abcdef";
const ACCESS_TOKEN: &str = "bench-access-token-0123456789";
const CHILD: &str = "ZCC_BENCH_CHAT_CHILD";
const DB: &str = "ZCC_BENCH_CHAT_DB";

/// The bot's own time per turn, by message id.
#[derive(Default)]
struct BotClock {
    took: Mutex<HashMap<String, f64>>,
    delay: Duration,
}

async fn bot(State(clock): State<Arc<BotClock>>, Json(turn): Json<Value>) -> Json<Value> {
    let started = Instant::now();
    tokio::time::sleep(clock.delay).await;
    let text = turn["text"].as_str().unwrap_or_default();
    let reply = json!({"replies": [{"type": "text", "text": format!("You said: {text}")}]});
    let id = turn["message_id"].as_str().unwrap_or_default().to_string();
    clock
        .took
        .lock()
        .expect("lock")
        .insert(id, started.elapsed().as_secs_f64() * 1000.0);
    Json(reply)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn start_bot(delay: Duration) -> (String, Arc<BotClock>) {
    let clock = Arc::new(BotClock {
        delay,
        ..Default::default()
    });
    let url = serve(
        Router::new()
            .route("/turn", on_post(bot))
            .with_state(clock.clone()),
    )
    .await;
    (format!("{url}/turn"), clock)
}

/// The baseline: acknowledge, then ask the bot and post its reply (what the bridge does on the wire, nothing more).
#[derive(Clone)]
struct Relay {
    http: reqwest::Client,
    bot: String,
    post: String,
}

async fn relay(State(r): State<Relay>, body: axum::body::Bytes) -> Json<Value> {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = request["id"].as_str().unwrap_or_default().to_string();
    tokio::spawn(async move {
        let turn = json!({"version": "1", "conversation_id": request["sessionId"], "message_id": id,
            "kind": "message", "text": request["message"]["value"], "user": {"id": "u", "anonymous": true}});
        let Ok(answer) = r.http.post(&r.bot).json(&turn).send().await else {
            return;
        };
        let Ok(answer) = answer.json::<Value>().await else {
            return;
        };
        let text = answer["replies"][0]["text"].clone();
        let reply = json!({"id": format!("r-{id}"), "sessionId": request["sessionId"], "replyToId": id,
            "messages": [{"type": "text", "value": text}]});
        let _ = r
            .http
            .post(&r.post)
            .bearer_auth(ACCESS_TOKEN)
            .json(&reply)
            .send()
            .await;
    });
    Json(json!({"status": "ok"}))
}

struct Figures {
    sent: usize,
    acknowledged: usize,
    answered: usize,
    lost: usize,
    out_of_order: usize,
    overhead: Vec<f64>,
    ack: Vec<f64>,
}

async fn measure(
    label: &str,
    webhook: String,
    post: &PostUrlServer,
    clock: &BotClock,
    load: &LoadConfig,
) -> Figures {
    let signer = Arc::new(
        TokenSigner::hs("cs-bench", JwtAlgorithm::HS256, &Secret::new(HS_SECRET)).expect("signer"),
    );
    let before = post.received().len();
    let config = LoadConfig {
        webhook_url: webhook,
        session_prefix: format!("{label}-"),
        ..load.clone()
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client");
    let truth = run_load(http, signer, &config).await;
    let acknowledged = truth
        .messages()
        .filter(|m| (200..300).contains(&m.status))
        .count();
    post.wait_for(before + acknowledged, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received = post.received();
    let mine = &received[before..];
    let check = truth.check(mine, |_| true);
    let arrival: HashMap<String, SystemTime> = mine
        .iter()
        .filter_map(|r| Some((r.reply()?.reply_to_id?, r.at)))
        .collect();
    let took = clock.took.lock().expect("lock").clone();
    let mut overhead = Vec::new();
    let mut ack = Vec::new();
    for m in truth.messages() {
        ack.push(m.ack_ms);
        let (Some(at), Some(bot_ms)) = (arrival.get(&m.message_id), took.get(&m.message_id)) else {
            continue;
        };
        let at = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        overhead.push(at - m.sent_at_ms - bot_ms);
    }
    overhead.sort_by(f64::total_cmp);
    ack.sort_by(f64::total_cmp);
    Figures {
        sent: check.messages,
        acknowledged: check.acknowledged,
        answered: check.answered,
        lost: check.missing.len(),
        out_of_order: check.out_of_order.len(),
        overhead,
        ack,
    }
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Opens `n` conversations that say one message each and go quiet; waits until all are answered.
async fn idle_conversations(webhook: &str, prefix: &str, n: usize, answered: &Arc<AtomicUsize>) {
    let signer =
        TokenSigner::hs("cs-bench", JwtAlgorithm::HS256, &Secret::new(HS_SECRET)).expect("signer");
    let http = reqwest::Client::new();
    let before = answered.load(Ordering::SeqCst);
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..n {
        let (http, webhook, token, permits) = (
            http.clone(),
            webhook.to_string(),
            signer.sign(Some(&format!("idle{i}@example.com"))),
            permits.clone(),
        );
        let body = json!({"id": format!("{prefix}{i}-m1"), "sessionId": format!("{prefix}{i}"),
            "conversationMode": "START_CONVERSATION", "message": {"type": "text", "value": "hi"},
            "conversationVariables": {}, "languageCode": "en-US", "additionalPayload": null});
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            let _ = http
                .post(webhook)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < before + n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1}")
}

async fn run_backend(label: &str, db_url: String) -> anyhow::Result<()> {
    let conversations = env_or("ZCC_BENCH_CONVERSATIONS", 500usize);
    let rate = env_or("ZCC_BENCH_RATE", 200.0f64);
    let seconds = env_or("ZCC_BENCH_SECONDS", 30.0f64);
    let bot_ms = env_or("ZCC_BENCH_BOT_MS", 50u64);
    let idle = env_or("ZCC_BENCH_IDLE", 2000usize);
    let messages_per_conversation =
        ((rate * seconds) / conversations as f64).ceil().max(1.0) as usize;
    let (bot_url, clock) = start_bot(Duration::from_millis(bot_ms)).await;
    let post = PostUrlServer::start(Secret::new(ACCESS_TOKEN)).await?;

    let dir = tempfile::tempdir()?;
    let db_url = if db_url == "sqlite" {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    } else {
        db_url
    };
    let mut config = Config::load(None)?;
    config.server.listen = ([127, 0, 0, 1], 0).into();
    config.storage.database = ConfigSecret::new(db_url);
    config.storage.media = format!("file://{}", dir.path().join("media").display());
    config.media.enabled = false;
    config.reconcile.enabled = false;
    config.server.max_connections = 4096;
    config.server.max_requests_per_ip = 0;
    let channel: ChatChannelConfig = serde_json::from_value(json!({
        "client_id": "cs-bench", "jwt_algorithm": "HS256", "jwt_secret": HS_SECRET, "auto_register": true,
        "post_url": post.url(), "access_token": ACCESS_TOKEN,
        "bot": {"kind": "http", "url": bot_url, "timeout_ms": 5000}
    }))?;
    config.chat.channels.insert("bench".into(), channel);
    let idle_answered = Arc::new(AtomicUsize::new(0));
    let counter = idle_answered.clone();
    let idle_post = serve(Router::new().route(
        "/post",
        on_post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Json(json!({"status": "ok"}))
            }
        }),
    ))
    .await;
    let idle_channel: ChatChannelConfig = serde_json::from_value(json!({
        "client_id": "cs-bench", "jwt_algorithm": "HS256", "jwt_secret": HS_SECRET, "auto_register": true,
        "post_url": format!("{idle_post}/post"), "access_token": ACCESS_TOKEN,
        "bot": {"kind": "http", "url": bot_url, "timeout_ms": 5000}
    }))?;
    config.chat.channels.insert("idle".into(), idle_channel);
    let server = zcc_bridge::start(config).await?;
    let base = format!("http://{}", server.addr());

    let relay_url = serve(
        Router::new()
            .route("/relay", on_post(relay))
            .with_state(Relay {
                http: reqwest::Client::new(),
                bot: bot_url.clone(),
                post: post.url(),
            }),
    )
    .await;
    let load = LoadConfig {
        conversations,
        messages_per_conversation,
        rate_per_second: rate,
        retries: 0,
        ..LoadConfig::default()
    };
    eprintln!(
        "{label}: {conversations} conversations x {messages_per_conversation} messages at {rate}/s, bot {bot_ms} ms"
    );
    let base_figures = measure(
        "baseline",
        format!("{relay_url}/relay"),
        &post,
        &clock,
        &load,
    )
    .await;
    let bridge = measure(
        "bridge",
        format!("{base}/chat/zoom/bench"),
        &post,
        &clock,
        &load,
    )
    .await;

    // Memory per idle conversation: RSS growth over `idle` quiet conversations, after as many to warm up. They
    // talk to a second channel whose Post URL only counts (the recording one would keep every reply in memory).
    let idle_webhook = format!("{base}/chat/zoom/idle");
    let warm_start = rss_kib();
    idle_conversations(&idle_webhook, "warm-", idle, &idle_answered).await;
    let before = rss_kib();
    idle_conversations(&idle_webhook, "idle-", idle, &idle_answered).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    server.shutdown().await?;

    let print = |name: &str, f: &Figures| {
        println!(
            "| {label} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.sent,
            f.acknowledged,
            f.answered,
            f.lost,
            f.out_of_order,
            ms(percentile(&f.overhead, 0.5)),
            ms(percentile(&f.overhead, 0.99)),
            ms(f.overhead.last().copied().unwrap_or(f64::NAN)),
            ms(percentile(&f.ack, 0.5)),
            ms(percentile(&f.ack, 0.99)),
        );
    };
    println!("| backend | path | sent | acked | answered | lost | out of order | overhead p50 ms | p99 ms | max ms | ack p50 ms | ack p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    print("baseline relay", &base_figures);
    print("bridge", &bridge);
    let p99 = percentile(&bridge.overhead, 0.99);
    println!(
        "{label}: bridge overhead p99 {} ms over the bot's own time (baseline {} ms; target <= 10 ms: {})",
        ms(p99),
        ms(percentile(&base_figures.overhead, 0.99)),
        if p99 <= 10.0 { "met" } else { "NOT met" }
    );
    println!(
        "{label}: RSS {:.1} MiB after the load, {:.1} MiB after {idle} warm-up conversations, {:.1} MiB after {idle} \
         more idle ones: {:.2} KiB per idle conversation",
        warm_start / 1024.0,
        before / 1024.0,
        after / 1024.0,
        (after - before) / idle as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logging();
    if let Ok(label) = std::env::var(CHILD) {
        let db = std::env::var(DB)?;
        return run_backend(&label, db).await;
    }
    run_child(CHILD, DB, "sqlite", "sqlite").await?;
    if let Ok(admin) = std::env::var("ZCC_TEST_POSTGRES_URL") {
        if !admin.is_empty() {
            let url = fresh_postgres(&admin, "chat").await?;
            run_child(CHILD, DB, "postgres", &url).await?;
        }
    }
    Ok(())
}
