//! Scheduled reconciliation: the nightly window (default 02:00 in a configured time zone) and an optional
//! incremental one every few minutes. Each runs under a database-wide lock, so with several Postgres replicas
//! only one runs it, and each decides from the runs table (not from memory) what is due, so a replica that
//! starts after a missed night catches up and an interrupted run is resumed.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;

use super::{now_ms, ReconcileError, Reconciler, RunKind};
use crate::store::RunRow;

const LOCK: &str = "zcc-bridge:reconciliation-scheduler";

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub nightly_at: NaiveTime,
    pub timezone: Tz,
    /// How far before the previous run's end the nightly window starts again (late data).
    pub lookback: Duration,
    /// Longest catch-up after downtime.
    pub max_catch_up: Duration,
    /// `None`: no incremental runs.
    pub incremental_every: Option<Duration>,
    pub incremental_lookback: Duration,
}

impl ScheduleSettings {
    pub fn from_config(
        config: &crate::config::ReconcileConfig,
    ) -> Result<Self, crate::config::InvalidValue> {
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        Ok(Self {
            nightly_at: config.nightly_time()?,
            timezone: config.time_zone()?,
            lookback: Duration::from_secs(u64::from(config.lookback_days) * 86_400),
            incremental_every: (config.incremental_interval_minutes > 0)
                .then(|| minutes(config.incremental_interval_minutes)),
            incremental_lookback: minutes(config.incremental_lookback_minutes),
            ..Default::default()
        })
    }
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            nightly_at: NaiveTime::from_hms_opt(2, 0, 0).unwrap_or(NaiveTime::MIN),
            timezone: Tz::UTC,
            lookback: Duration::from_secs(2 * 86_400),
            max_catch_up: Duration::from_secs(31 * 86_400),
            incremental_every: None,
            incremental_lookback: Duration::from_secs(3600),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The latest occurrence of `at` (local time in `tz`) at or before `now`. A local time that a DST change skips
/// falls back to the day's earliest valid reading of it.
pub fn previous_occurrence(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let local_today = now.with_timezone(&tz).date_naive();
    for days_back in 0..3 {
        let Some(date) = local_today.checked_sub_days(chrono::Days::new(days_back)) else {
            break;
        };
        let candidate = tz
            .from_local_datetime(&date.and_time(at))
            .earliest()
            .or_else(|| {
                // Skipped by a DST jump: an hour later exists.
                tz.from_local_datetime(&(date.and_time(at) + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        if let Some(t) = candidate.filter(|t| *t <= now) {
            return t;
        }
    }
    now - chrono::Duration::days(1)
}

/// The next occurrence strictly after `now`.
pub fn next_occurrence(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let mut probe = now + chrono::Duration::hours(26);
    let mut next = previous_occurrence(probe, at, tz);
    // Walk back to the first occurrence after now.
    while next > now {
        probe = next - chrono::Duration::seconds(1);
        let earlier = previous_occurrence(probe, at, tz);
        if earlier <= now {
            break;
        }
        next = earlier;
    }
    next
}

/// Runs the schedule until `shutdown` turns true.
pub async fn run(
    reconciler: Reconciler,
    settings: ScheduleSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = resume_interrupted(&reconciler).await {
        tracing::warn!(error = %e, "could not resume interrupted reconciliation runs");
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match tick(&reconciler, &settings).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(error = %e, "scheduled reconciliation failed; retrying in a minute");
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn resume_interrupted(reconciler: &Reconciler) -> Result<(), ReconcileError> {
    let Some(lock) = reconciler.store().try_exclusive(LOCK).await? else {
        return Ok(());
    };
    let running = reconciler.store().runs(None, Some("running"), 20).await?;
    for row in running {
        reconciler.resume(row).await?;
    }
    lock.release().await;
    Ok(())
}

/// Runs whatever is due; returns how long to sleep before looking again.
async fn tick(
    reconciler: &Reconciler,
    settings: &ScheduleSettings,
) -> Result<Duration, ReconcileError> {
    let store = reconciler.store();
    let now = Utc::now();
    let last_nightly = latest(store.runs(Some(RunKind::Nightly.as_str()), None, 1).await?);
    let last_good = latest(
        store
            .runs(Some(RunKind::Nightly.as_str()), Some("succeeded"), 1)
            .await?,
    );
    let due_since = previous_occurrence(now, settings.nightly_at, settings.timezone);
    // A first start waits for the next night; after that a missed (or failed) night is caught up at once, a
    // failed one no more often than every 15 minutes.
    let recent_failure = last_nightly.as_ref().is_some_and(|r| {
        r.status == "failed" && now.timestamp_millis() - r.started_at < 15 * 60 * 1000
    });
    let nightly_due = !recent_failure
        && last_good.as_ref().map_or(last_nightly.is_some(), |r| {
            r.started_at < due_since.timestamp_millis()
        });
    let incremental_due_at = match settings.incremental_every {
        Some(every) => {
            let last = latest(
                store
                    .runs(Some(RunKind::Incremental.as_str()), None, 1)
                    .await?,
            );
            Some(last.map_or(0, |r| r.started_at.saturating_add(ms(every))))
        }
        None => None,
    };
    let incremental_due = incremental_due_at.is_some_and(|t| t <= now.timestamp_millis());

    if nightly_due || incremental_due {
        let Some(lock) = store.try_exclusive(LOCK).await? else {
            // Another replica is running it; look again shortly.
            return Ok(Duration::from_secs(30));
        };
        let result = if nightly_due {
            run_nightly(reconciler, settings, last_nightly.as_ref()).await
        } else {
            run_incremental(reconciler, settings).await
        };
        lock.release().await;
        result?;
        return Ok(Duration::from_secs(1));
    }
    if last_nightly.is_none() {
        // Make the first night's run due by recording when the schedule started (an empty, finished run).
        let started = store
            .create_run(
                RunKind::Nightly.as_str(),
                now.timestamp_millis(),
                now.timestamp_millis(),
                now.timestamp_millis(),
            )
            .await?;
        let mut done = started;
        done.status = "succeeded".into();
        done.finished_at = Some(done.started_at);
        store.save_run(&done).await?;
    }
    let next_nightly = next_occurrence(now, settings.nightly_at, settings.timezone);
    let mut wait = (next_nightly - now)
        .to_std()
        .unwrap_or(Duration::from_secs(1));
    if let Some(at) = incremental_due_at {
        let until = Duration::from_millis(u64::try_from(at - now.timestamp_millis()).unwrap_or(0));
        wait = wait.min(until);
    }
    // Wake at least every 10 minutes to notice clock or configuration surprises.
    Ok(wait.clamp(Duration::from_secs(1), Duration::from_secs(600)))
}

fn latest(rows: Vec<RunRow>) -> Option<RunRow> {
    rows.into_iter().next()
}

async fn run_nightly(
    reconciler: &Reconciler,
    settings: &ScheduleSettings,
    last: Option<&RunRow>,
) -> Result<(), ReconcileError> {
    let now = now_ms();
    let store = reconciler.store();
    // Resume from the last successful nightly's end (or a day back), then step back by the lookback.
    let last_ok = latest(
        store
            .runs(Some(RunKind::Nightly.as_str()), Some("succeeded"), 1)
            .await?,
    );
    let since = last_ok
        .map(|r| r.window_to)
        .or(last.map(|r| r.window_to))
        .unwrap_or(now - 86_400_000)
        .min(now - 86_400_000);
    let from = since
        .saturating_sub(ms(settings.lookback))
        .max(now.saturating_sub(ms(settings.max_catch_up)));
    reconciler
        .run_window(RunKind::Nightly, from, now, &|_| {})
        .await?;
    Ok(())
}

async fn run_incremental(
    reconciler: &Reconciler,
    settings: &ScheduleSettings,
) -> Result<(), ReconcileError> {
    let now = now_ms();
    let store = reconciler.store();
    let mut last_end = None;
    for kind in [RunKind::Incremental, RunKind::Nightly] {
        if let Some(r) = latest(
            store
                .runs(Some(kind.as_str()), Some("succeeded"), 1)
                .await?,
        ) {
            last_end = Some(last_end.map_or(r.window_to, |e: i64| e.max(r.window_to)));
        }
    }
    let every = settings.incremental_every.map(ms).unwrap_or(3_600_000);
    let from = last_end
        .unwrap_or(now - every)
        .saturating_sub(ms(settings.incremental_lookback))
        .max(now.saturating_sub(ms(settings.max_catch_up)));
    reconciler
        .run_window(RunKind::Incremental, from, now, &|_| {})
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn occurrences_in_a_time_zone() {
        let two = NaiveTime::from_hms_opt(2, 0, 0).expect("time");
        let la: Tz = "America/Los_Angeles".parse().expect("tz");
        // 2026-11-21 09:00 UTC is 01:00 in Los Angeles (PST, UTC-8): the last 02:00 was yesterday's.
        let now = utc("2026-11-21T09:00:00Z");
        assert_eq!(
            previous_occurrence(now, two, la),
            utc("2026-11-20T10:00:00Z")
        );
        assert_eq!(next_occurrence(now, two, la), utc("2026-11-21T10:00:00Z"));
        assert_eq!(
            previous_occurrence(now, two, Tz::UTC),
            utc("2026-11-21T02:00:00Z")
        );
        assert_eq!(
            next_occurrence(now, two, Tz::UTC),
            utc("2026-11-22T02:00:00Z")
        );
        // 2026-03-08 02:00 does not exist in Los Angeles (clocks jump to 03:00): the run happens at 03:00 PDT.
        let spring = utc("2026-03-08T12:00:00Z");
        assert_eq!(
            previous_occurrence(spring, two, la),
            utc("2026-03-08T10:00:00Z")
        );
    }
}
