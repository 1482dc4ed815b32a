//! Logging (`tracing`, text or JSON) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber once; later calls (tests starting several servers) are no-ops.
///
/// Text logs are one line per event whatever the event holds: values from requests are logged as escaped fields,
/// and the writer (`OneLine`) escapes any control character that still reaches it, so no request can start a
/// line of its own, move the cursor or hide text. Colours are used only on a terminal (and not with `NO_COLOR`).
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.format {
        LogFormat::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder
                .with_ansi(colours)
                .with_writer(move || OneLine::new(std::io::stderr(), colours))
                .try_init()
        }
    };
}

/// A writer for text logs that keeps every event on one line: each write is one formatted event (the formatter
/// writes an event with a single `write_all`), and every control character in it but the final newline is written
/// escaped (`\n`, `\x1b`, `\u{9b}`). With `colours`, ESC passes (the formatter's colour codes; it escapes ESC
/// in values itself).
pub struct OneLine<W> {
    inner: W,
    colours: bool,
}

impl<W: std::io::Write> OneLine<W> {
    pub fn new(inner: W, colours: bool) -> Self {
        Self { inner, colours }
    }
}

/// `text` with control characters escaped, except a final newline and (with `colours`) ESC.
pub fn escape_line(text: &str, colours: bool) -> std::borrow::Cow<'_, str> {
    let (body, newline) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text, ""),
    };
    let needs = |c: char| c.is_control() && c != '\t' && !(colours && c == '\x1b');
    if !body.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in body.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push_str(newline);
    std::borrow::Cow::Owned(out)
}

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(escape_line(&text, self.colours).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Latencies of work done here (a request, a commit, a merge): half a millisecond to ten seconds.
const FAST: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// One call to another system (a sink's HTTP request): 5 ms to a minute.
const CALL: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// A file download and upload: a tenth of a second to half an hour.
const TRANSFER: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0,
];
/// From cause to delivery, through settling and retries (which back off for hours): a tenth of a second to a day.
const END_TO_END: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14_400.0, 43_200.0,
    86_400.0,
];
/// Human time (how long an agent stays in a status, how long a reconciliation runs): a second to a working day.
const HUMAN: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0,
    28_800.0,
];
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Buckets fitted to what each histogram measures (a 10-minute break must not land in `+Inf`). Exact names win
/// over the suffixes; any other `*_seconds` histogram gets `FAST`.
fn histogram_buckets() -> Vec<(Matcher, &'static [f64])> {
    let full = |name: &str, buckets| (Matcher::Full(name.into()), buckets);
    vec![
        full("zcc_delivery_attempt_seconds", CALL),
        full("zcc_delivery_latency_seconds", END_TO_END),
        full("zcc_media_archive_seconds", TRANSFER),
        full("zcc_agent_status_duration_seconds", HUMAN),
        full("zcc_reconcile_run_seconds", HUMAN),
        (Matcher::Suffix("_seconds".into()), FAST),
        (Matcher::Suffix("_batch_size".into()), SIZES),
    ]
}

/// The process-wide Prometheus recorder (metrics macros are global, so one per process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder = Ok(PrometheusBuilder::new());
            for (matcher, buckets) in histogram_buckets() {
                builder = builder.and_then(|b| b.set_buckets_for_metric(matcher, buckets));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn each_histogram_has_buckets_that_fit_what_it_measures() {
        let recorder = PrometheusBuilder::new();
        let recorder = histogram_buckets()
            .into_iter()
            .try_fold(recorder, |b, (m, buckets)| {
                b.set_buckets_for_metric(m, buckets)
            })
            .expect("buckets")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("zcc_agent_status_duration_seconds", "status" => "Break")
                .record(600.0);
            metrics::histogram!("zcc_delivery_latency_seconds", "sink" => "crm").record(7200.0);
            metrics::histogram!("zcc_webhook_ingest_seconds").record(0.003);
        });
        let text = handle.render();
        let bucket = |metric: &str, le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!("{metric}_bucket{{"))
                        && l.contains(&format!("le=\"{le}\""))
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
        };
        // A 10-minute break lands in a finite bucket, and a delivery two hours late too.
        assert_eq!(
            bucket("zcc_agent_status_duration_seconds", "600"),
            Some(1),
            "{text}"
        );
        assert_eq!(
            bucket("zcc_delivery_latency_seconds", "14400"),
            Some(1),
            "{text}"
        );
        assert_eq!(
            bucket("zcc_delivery_latency_seconds", "3600"),
            Some(0),
            "{text}"
        );
        assert_eq!(
            bucket("zcc_webhook_ingest_seconds", "0.004"),
            Some(1),
            "{text}"
        );
        assert_eq!(
            bucket("zcc_webhook_ingest_seconds", "0.002"),
            Some(0),
            "{text}"
        );
    }

    #[test]
    fn one_line_escapes_control_characters() {
        let mut out = Vec::new();
        let mut w = OneLine::new(&mut out, false);
        w.write_all("a\nb\r\x1b[31mc\0d\u{9b}e\tf\n".as_bytes())
            .unwrap();
        w.write_all(b"plain\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\nb\\r\\x1b[31mc\\x00d\\u{9b}e\tf\nplain\n"
        );
        assert_eq!(escape_line("\x1b[1mx\n", true), "\x1b[1mx\n");
        assert_eq!(escape_line("x\n\n", true), "x\\n\n");
    }
}
