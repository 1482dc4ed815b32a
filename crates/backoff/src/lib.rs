//! The one backoff of the workspace: a delay that doubles from a base to a cap (`exponential`), optionally spread
//! at random (`jittered`) so that clients failing together do not retry together. `Backoff` keeps the step for
//! reconnect loops (the Zoom and Genesys WebSocket subscribers); the REST clients, the media archiver and the
//! fetch queue call the functions with their attempt count. Std only, so neither vendor crate depends on the other
//! or on a random-number crate for this.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// `base × 2^step`, at most `cap` (saturating: any step is safe).
pub fn exponential(base: Duration, cap: Duration, step: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(step.min(31)).unwrap_or(u32::MAX))
        .min(cap)
}

/// `delay` less a random share of at most `spread` (0 to 1): uniform in [delay × (1 − spread), delay]. With
/// `spread` 0.5 this is "equal jitter".
pub fn jittered(delay: Duration, spread: f64) -> Duration {
    let spread = spread.clamp(0.0, 1.0);
    delay.mul_f64(1.0 - spread * random_fraction())
}

/// Uniform in [0, 1): std's per-process random hash keys over the clock and a counter.
fn random_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// `min` is at least 1 ms and `max` at least `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// Back to `min` (after a connection that stayed up).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = base.saturating_mul(2).min(self.max);
        jittered(base, 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut expected = Duration::from_millis(500);
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(d >= expected / 2 && d <= expected, "{d:?} vs {expected:?}");
            expected = (expected * 2).min(Duration::from_secs(60));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn exponential_doubles_to_the_cap_for_any_step() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        assert_eq!(exponential(base, cap, 0), base);
        assert_eq!(exponential(base, cap, 3), Duration::from_secs(4));
        assert_eq!(exponential(base, cap, 6), cap);
        assert_eq!(exponential(base, cap, u32::MAX), cap);
        assert_eq!(exponential(Duration::MAX, Duration::MAX, 40), Duration::MAX);
    }

    #[test]
    fn jitter_stays_in_its_band_and_varies() {
        let d = Duration::from_secs(10);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(d, 0.5)).collect();
        assert!(
            samples.iter().all(|s| *s >= d / 2 && *s <= d),
            "{samples:?}"
        );
        assert!(samples.iter().any(|s| *s != samples[0]), "no spread");
        assert_eq!(jittered(d, 0.0), d);
        assert!(jittered(d, 7.0) <= d);
    }

    #[test]
    fn backoff_doubles_jitters_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[4] >= Duration::from_millis(200) && delays[4] <= Duration::from_millis(400));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
