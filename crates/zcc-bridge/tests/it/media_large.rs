//! A 1 GiB recording archived into every store with bounded memory. In a test binary of its own so that the
//! process's memory is this test's alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::archives::{stores, use_store};
use crate::common::sim::{reconcile, simulator, use_simulator};
use crate::common::*;
use zcc_bridge::config::Secret;
use zoom_sim::SimServerConfig;

const GIB: u64 = 1 << 30;

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_recording_is_archived_with_bounded_memory() {
    let sim_config = SimServerConfig {
        media_bytes: GIB,
        ..Default::default()
    };
    for store in stores() {
        // One engagement with a recording: one 1 GiB file (and maybe a small transcript).
        let (sim, scenario) = simulator(1, 1, sim_config.clone()).await;
        assert!(
            scenario
                .truth
                .engagements
                .iter()
                .any(|e| !e.recording_ids.is_empty()),
            "seed 1 gives the engagement a recording"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer::start_with(&Backend::Sqlite, |c| {
            use_simulator(c, &sim, &sim_config);
            c.media.enabled = true;
            c.media.link_secret = Some(Secret::new("test-link-secret-0123456789"));
            use_store(c, store, dir.path());
        })
        .await;
        let baseline = rss();
        let peak = Arc::new(AtomicU64::new(baseline));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let started = Instant::now();
        reconcile(&server, &scenario).await;
        let stats = loop {
            let stats = server.get_json("/api/v1/media/stats").await;
            if stats["pending"] == 0 {
                break stats;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "{store:?}: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        done.store(true, Ordering::Relaxed);
        sampler.await.expect("sampler");
        let seconds = started.elapsed().as_secs_f64();
        let rows = server
            .get_json("/api/v1/media?kind=recording&state=archived")
            .await;
        let row = &rows["media"][0];
        assert_eq!(row["bytes"], GIB, "{store:?}: {stats} {row}");
        assert_eq!(row["sha256"].as_str().map(str::len), Some(64));
        let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
        eprintln!(
            "{store:?}: 1 GiB archived in {seconds:.1} s ({:.0} MB/s), peak RSS growth {:.1} MiB",
            GIB as f64 / seconds / 1e6,
            growth as f64 / 1048576.0
        );
        assert!(
            growth < 100 * 1024 * 1024,
            "{store:?}: memory grew by {} MiB while archiving 1 GiB",
            growth / 1048576
        );
        server.shutdown().await;
        sim.shutdown().await;
    }
}
