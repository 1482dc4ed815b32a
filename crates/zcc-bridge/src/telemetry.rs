//! Logging (`tracing`, text or JSON) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber once; later calls (tests starting several servers) are no-ops.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Checks a `log.level` filter: it must parse as a `tracing` filter, and every target in it must look like a module
/// path (`zcc_bridge::http`). `EnvFilter` itself takes any other word as a target name (`!!!` would turn logging
/// off for everything else).
pub fn check_filter(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\" or \"zcc_bridge=debug,info\")".into());
    }
    for directive in filter.split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let target = directive.split(['[', '=']).next().unwrap_or_default();
        let is_level = target
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_ok();
        let target_ok = target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
        if !(is_level || target_ok || (target.is_empty() && directive.starts_with('['))) {
            return Err(format!(
                "{directive:?} is neither a level (trace, debug, info, warn, error, off) nor TARGET=LEVEL with a \
                 module path as the target"
            ));
        }
    }
    EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|e| format!("{filter:?} is not a valid filter: {e}"))
}

/// The process-wide Prometheus recorder (metrics macros are global, so one per process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), &sizes));
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "metric buckets rejected; using summaries");
                    PrometheusBuilder::new()
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    handle
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics stays empty");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "zcc_webhook_events_total",
        "Webhook events received, by event type and outcome (stored, duplicate, quarantined, failed)"
    );
    metrics::describe_counter!(
        "zcc_webhook_duplicates_total",
        "Redelivered events recorded as duplicates"
    );
    metrics::describe_counter!(
        "zcc_webhook_rejected_total",
        "Webhook requests refused before storage, by reason (signature, stale timestamp, too large, ...)"
    );
    metrics::describe_histogram!(
        "zcc_webhook_ingest_seconds",
        "Time from request to durable acknowledgement"
    );
    metrics::describe_histogram!(
        "zcc_ingest_commit_batch_size",
        "Items per group-committed transaction"
    );
    metrics::describe_histogram!(
        "zcc_ingest_commit_seconds",
        "Duration of one group-commit transaction"
    );
    metrics::describe_histogram!(
        "zcc_projection_batch_size",
        "Events merged into records per projector transaction"
    );
    metrics::describe_histogram!(
        "zcc_projection_seconds",
        "Duration of one projector transaction"
    );
    metrics::describe_counter!(
        "zcc_projection_failures_total",
        "Projector batches that failed after retries (their events stay queued for the next sweep)"
    );
}
