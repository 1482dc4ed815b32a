//! The agent panel's load: Home URL to first paint on loopback, and the bytes transferred, in headless Chromium
//! (Debian's, through ChromeDriver) against a release build of the bridge.
//!
//! Each cold load is a fresh browser profile (nothing cached): navigation start to `first-contentful-paint`, to
//! the panel's own JavaScript having run (the status line leaves "Starting…": the vendored SDK loaded and `config`
//! answered; outside Zoom it fails at once, as it must), and `load`, with the bytes on the wire (`transferSize` of the
//! document and every file) and the bytes decoded. A warm load reloads in the same profile (files revalidated with
//! their ETags: 304s).
//!
//!   scripts/browser.sh cargo bench -p zcc-bridge --bench zoomapp
//!   ZCC_BENCH_LOADS=20 scripts/browser.sh cargo bench -p zcc-bridge --bench zoomapp
//!
//! Without `ZCC_CHROMEDRIVER_URL` (set by scripts/browser.sh) it says so and exits.

mod common;

use std::time::{Duration, Instant};

use common::env_or;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use zcc_bridge::config::{Config, Secret};

const METRICS: &str = "const paint = performance.getEntriesByName('first-contentful-paint')[0];\
    const nav = performance.getEntriesByType('navigation')[0];\
    const res = performance.getEntriesByType('resource');\
    return {fcp_ms: paint ? paint.startTime : null, load_ms: nav.loadEventEnd, ready_ms: performance.getEntriesByName('zcc-panel-started')[0]?.startTime ?? null,\
            transferred: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),\
            decoded: nav.decodedBodySize + res.reduce((n, r) => n + r.decodedBodySize, 0),\
            files: res.length + 1, names: res.map(r => new URL(r.name).pathname),\
            status: document.getElementById('status-line').textContent};";

async fn browser(webdriver: &str, profile: &std::path::Path) -> anyhow::Result<Client> {
    let chromium = std::env::var("ZCC_CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display()), "--window-size=460,1300"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(webdriver)
        .await?)
}

/// Loads the Home URL (or reloads) and waits until the panel's script has run; returns the page's figures.
async fn load(client: &Client, url: Option<&str>) -> anyhow::Result<Value> {
    match url {
        Some(url) => client.goto(url).await?,
        None => client.refresh().await?,
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = client.execute(METRICS, vec![]).await?;
        let started = m["status"].as_str().is_some_and(|s| s != "Starting…");
        if started && m["fcp_ms"].is_number() && m["load_ms"].as_f64().is_some_and(|l| l > 0.0) {
            return Ok(m);
        }
        anyhow::ensure!(Instant::now() < deadline, "the panel did not load: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn summary(name: &str, values: &mut [f64]) -> String {
    values.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "{name}: median {:.1}, p90 {:.1}, min {:.1}, max {:.1}",
        pick(0.5),
        pick(0.9),
        values[0],
        values[values.len() - 1]
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    common::init_logging();
    let Ok(webdriver) = std::env::var("ZCC_CHROMEDRIVER_URL") else {
        eprintln!("zoomapp bench: needs ChromeDriver; run it as `scripts/browser.sh cargo bench -p zcc-bridge --bench zoomapp`");
        return Ok(());
    };
    let loads: usize = env_or("ZCC_BENCH_LOADS", 10);
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None)?;
    config.server.listen = ([127, 0, 0, 1], 0).into();
    config.storage.database =
        Secret::new(format!("sqlite://{}", dir.path().join("b.db").display()));
    config.storage.media = format!("file://{}", dir.path().join("media").display());
    config.media.enabled = false;
    let server = zcc_bridge::start(config).await?;
    let url = format!("http://{}/zoomapp/", server.addr());

    let (mut fcp, mut ready, mut onload) = (Vec::new(), Vec::new(), Vec::new());
    let (mut warm_fcp, mut warm_bytes) = (Vec::new(), Vec::new());
    let mut cold: Option<Value> = None;
    for i in 0..loads {
        let profile = tempfile::tempdir()?;
        let client = browser(&webdriver, profile.path()).await?;
        let m = load(&client, Some(&url)).await?;
        fcp.push(m["fcp_ms"].as_f64().unwrap_or(f64::NAN));
        onload.push(m["load_ms"].as_f64().unwrap_or(f64::NAN));
        if let Some(r) = m["ready_ms"].as_f64() {
            ready.push(r);
        }
        if i == 0 {
            cold = Some(m);
        }
        let w = load(&client, None).await?;
        warm_fcp.push(w["fcp_ms"].as_f64().unwrap_or(f64::NAN));
        warm_bytes.push(w["transferred"].as_f64().unwrap_or(f64::NAN));
        client.close().await.ok();
    }
    let cold = cold.unwrap_or_default();
    println!("zoomapp bench: {loads} cold loads of {url} (fresh profile each), then a reload each");
    println!(
        "  cold: {} files, {} bytes transferred, {} bytes decoded; panel says {}",
        cold["files"], cold["transferred"], cold["decoded"], cold["status"]
    );
    println!("  files after the document: {}", cold["names"]);
    println!("  {} ms", summary("cold first contentful paint", &mut fcp));
    println!("  {} ms", summary("cold load event", &mut onload));
    if !ready.is_empty() {
        println!("  {} ms", summary("cold panel script done", &mut ready));
    }
    println!(
        "  {} ms",
        summary("warm (reload) first contentful paint", &mut warm_fcp)
    );
    println!(
        "  {} bytes",
        summary("warm (reload) bytes transferred", &mut warm_bytes)
    );
    server.shutdown().await?;
    Ok(())
}
