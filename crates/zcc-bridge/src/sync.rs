//! `zcc-bridge sync --from T --to T`: reconciles a window now, in this process, with a progress line and a
//! summary. Safe while a server runs on the same database: everything goes through the deduplicating event log,
//! and the server's projector also merges what this process logs.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::core::time::DateAs;
use anyhow::Context;

use crate::config::Config;
use crate::ingest::EventLog;
use crate::projection::Projector;
use crate::reconcile::{Reconciler, RunKind, RunReport, RunSettings, RunSummary};

/// RFC 3339, or `yyyy-mm-dd` (its first second as `from`, its last as `to`), to epoch ms.
/// A command-line time: RFC 3339 or yyyy-mm-dd (`end_of_day`: the date's last second, as windows end).
pub fn parse_time(value: &str, end_of_day: bool) -> anyhow::Result<i64> {
    let date_as = if end_of_day {
        DateAs::EndInclusive
    } else {
        DateAs::Start
    };
    crate::core::time::parse_time(value, date_as).map_err(anyhow::Error::msg)
}

pub async fn run(config: Config, from: &str, to: &str) -> anyhow::Result<RunReport> {
    let from = parse_time(from, false).context("--from")?;
    let to = parse_time(to, true).context("--to")?;
    let client_config = config.zoom.client_config().context(
        "sync needs the Zoom Server-to-Server OAuth app: set zoom.account_id, zoom.client_id and zoom.client_secret",
    )?;
    let client = Arc::new(zoom::api::ZoomClient::new(client_config)?);
    let store = crate::server::open_store(&config, Default::default()).await?;
    let (feed, projection, projector) =
        Projector::start(store.clone(), crate::sources::Decoder::from_config(&config));
    let (log, committers) = EventLog::start(store.clone(), config.ingest.max_batch, feed);
    let reconciler = Reconciler::new(
        client,
        store.clone(),
        log,
        projection,
        RunSettings {
            concurrency: config.reconcile.concurrency,
            ..Default::default()
        },
    );
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let progress = move |s: &RunSummary| {
        let line = format!(
            "{}/{} parts  {} engagements, {} recordings, {} voicemails  {} new, {} unchanged  ({:.0} s)",
            s.parts_done,
            s.parts_total,
            s.engagements_seen,
            s.recordings_seen,
            s.voicemails_seen,
            s.resources_logged,
            s.resources_unchanged,
            started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    };
    let outcome = reconciler
        .run_window(RunKind::Manual, from, to, &progress)
        .await;
    if tty {
        eprintln!();
    }
    drop(reconciler);
    committers.drain().await;
    projector.drain().await;
    store.close().await;
    let row = outcome?;
    Ok(RunReport::from_row(&row))
}

/// The summary as people read it.
pub fn describe(report: &RunReport) -> String {
    let s = &report.summary;
    let m = &s.missed;
    format!(
        "reconciliation run {} ({}) {} to {}: {}\n\
         seen:      {} engagements, {} recordings, {} voicemails\n\
         logged:    {} new or changed resources, {} unchanged\n\
         records:   {} created, {} changed\n\
         missed by webhooks: {} engagements, {} notes, {} dispositions, {} recordings, {} transcripts, {} voicemails\n\
         took {:.1} s{}",
        report.id,
        report.kind,
        report.window_from,
        report.window_to,
        report.status,
        s.engagements_seen,
        s.recordings_seen,
        s.voicemails_seen,
        s.resources_logged,
        s.resources_unchanged,
        s.created,
        s.changed,
        m.engagements,
        m.notes,
        m.dispositions,
        m.recordings,
        m.transcripts,
        m.voicemails,
        report.duration_seconds.unwrap_or_default(),
        report
            .error
            .as_ref()
            .map(|e| format!("\nerror: {e}"))
            .unwrap_or_default(),
    )
}
