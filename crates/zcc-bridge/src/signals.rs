//! The wake-ups and switches that connect the pipeline's stages inside one process: the server builds one
//! `Signals` when it assembles itself and hands it to the store and the workers. A stage that committed work for
//! another says so here; the other waits here (and still polls, for work written by other replicas and for
//! retries). The switches are set once at start-up from the configuration and read inside transactions (whether
//! the projector marks records for the planner or for presence sync).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Signals {
    /// Events were logged (the live stream: one reader per process, so a stored permit is enough).
    logged: Notify,
    /// The projector committed archive jobs (archivers).
    media_queued: Notify,
    /// Deliveries were queued: real-time routes at commit, the planner, a replay (delivery workers).
    deliveries_queued: Notify,
    /// The projector or the archiver marked records for the delivery planner.
    watch_touched: Notify,
    /// The projector marked engagements for presence sync (the presence worker).
    presence_touched: Notify,
    /// Whether the projector marks changed engagements for the planner (some sink takes engagement messages).
    watching: AtomicBool,
    /// How long after a change the planner looks at the record (changes in between are gathered).
    coalesce_ms: AtomicI64,
    /// Whether real-time delivery routes exist (then committers wake the workers after each commit).
    realtime: AtomicBool,
    /// Whether the projector marks engagements for presence sync (it is on).
    presence: AtomicBool,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            logged: Notify::new(),
            media_queued: Notify::new(),
            deliveries_queued: Notify::new(),
            watch_touched: Notify::new(),
            presence_touched: Notify::new(),
            watching: AtomicBool::new(false),
            coalesce_ms: AtomicI64::new(1000),
            realtime: AtomicBool::new(false),
            presence: AtomicBool::new(false),
        }
    }
}

impl Signals {
    // Events logged.
    pub fn events_logged(&self) {
        self.logged.notify_one();
    }

    pub async fn wait_logged(&self) {
        self.logged.notified().await
    }

    // Archive jobs.
    pub fn media_queued(&self) {
        self.media_queued.notify_waiters();
    }

    /// Resolves at the next `media_queued` after it is first polled (or enabled).
    pub fn media_queued_signal(&self) -> Notified<'_> {
        self.media_queued.notified()
    }

    // Deliveries.
    pub fn deliveries_queued(&self) {
        self.deliveries_queued.notify_waiters();
    }

    pub fn deliveries_queued_signal(&self) -> Notified<'_> {
        self.deliveries_queued.notified()
    }

    pub fn watch_touched(&self) {
        self.watch_touched.notify_waiters();
    }

    pub fn watch_touched_signal(&self) -> Notified<'_> {
        self.watch_touched.notified()
    }

    /// Turns the projector's marking of changed engagements on (a sink takes engagement messages) or off.
    pub fn set_watching(&self, on: bool, coalesce_ms: i64) {
        self.coalesce_ms.store(coalesce_ms, Ordering::Relaxed);
        self.watching.store(on, Ordering::Relaxed);
    }

    /// When a record marked now is due for the planner, if records are marked at all.
    pub fn watch_due(&self, now: i64) -> Option<i64> {
        self.watching
            .load(Ordering::Relaxed)
            .then(|| now.saturating_add(self.coalesce_ms.load(Ordering::Relaxed)))
    }

    pub fn set_realtime(&self, on: bool) {
        self.realtime.store(on, Ordering::Relaxed);
    }

    pub fn realtime(&self) -> bool {
        self.realtime.load(Ordering::Relaxed)
    }

    // Presence sync.
    pub fn set_presence(&self, on: bool) {
        self.presence.store(on, Ordering::Relaxed);
    }

    pub fn presence(&self) -> bool {
        self.presence.load(Ordering::Relaxed)
    }

    pub fn presence_touched(&self) {
        self.presence_touched.notify_one();
    }

    pub async fn wait_presence(&self) {
        self.presence_touched.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planner_is_due_only_while_watching() {
        let s = Signals::default();
        assert_eq!(s.watch_due(100), None);
        s.set_watching(true, 250);
        assert_eq!(s.watch_due(100), Some(350));
        s.set_watching(false, 250);
        assert_eq!(s.watch_due(100), None);
    }

    #[tokio::test]
    async fn a_wake_up_sent_before_the_wait_is_kept_for_the_single_waiters() {
        let s = Signals::default();
        // One reader each: the permit of a notification nobody waited for yet is not lost.
        s.events_logged();
        s.wait_logged().await;
        s.presence_touched();
        s.wait_presence().await;
    }
}
