//! Client-side request budgets per rate-limit label. Zoom's limits are per account and shared by every app on
//! it, so the budget is configurable (a share of the plan's limit), and requests are spaced evenly rather than
//! sent in bursts that a per-second window would refuse.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Zoom's rate-limit labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLabel {
    Light,
    Medium,
    Heavy,
}

/// Spaces calls at most `per_second` apart (a burst of one): each caller reserves the next free slot, then
/// sleeps until it. Fair in arrival order; cheap (one mutex, no background task).
#[derive(Debug)]
pub struct Budget {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl Budget {
    /// `per_second` of 0 means unlimited.
    pub fn new(per_second: f64) -> Self {
        let interval = if per_second > 0.0 && per_second.is_finite() {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        Self {
            interval,
            next_slot: Mutex::new(None),
        }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = match *next {
                Some(t) if t > now => t,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    /// Pushes every later slot back (after a 429: the account's shared limit is busier than our share).
    pub async fn pause(&self, duration: Duration) {
        let mut next = self.next_slot.lock().await;
        let resume = Instant::now() + duration;
        if next.is_none_or(|t| t < resume) {
            *next = Some(resume);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_calls_evenly() {
        let budget = Budget::new(100.0);
        let started = Instant::now();
        for _ in 0..11 {
            budget.acquire().await;
        }
        // The first call is immediate, the next ten 10 ms apart.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    }

    #[tokio::test]
    async fn pause_delays_the_next_slot() {
        let budget = Budget::new(1000.0);
        budget.acquire().await;
        budget.pause(Duration::from_millis(200)).await;
        let started = Instant::now();
        budget.acquire().await;
        assert!(started.elapsed() >= Duration::from_millis(190));
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let budget = Budget::new(0.0);
        let started = Instant::now();
        for _ in 0..1000 {
            budget.acquire().await;
        }
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
