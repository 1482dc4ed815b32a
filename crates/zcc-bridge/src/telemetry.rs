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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
