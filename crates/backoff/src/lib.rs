//! The one backoff of the workspace: a delay that doubles from a base to a cap (`exponential`), optionally spread
//! at random (`jittered`) so that clients failing together do not retry together. `Backoff` keeps the step for
//! reconnect loops (the Zoom and Genesys WebSocket subscribers); the REST clients, the media archiver and the
//! fetch queue call the functions with their attempt count. Std only, so neither vendor crate depends on the other
//! or on a random-number crate for this. `retry_after` reads a server's `Retry-After` (its HTTP-date form through
//! `httpdate`, itself std only), shared by the vendor clients, the chatbot outbox and the bridge's sinks.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

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

/// `Retry-After` (RFC 9110 §10.2.3): delta seconds, or an HTTP date (IMF-fixdate, or the obsolete RFC 850 and
/// asctime forms a recipient must accept) as the wait from `now`; a date in the past is zero. Surrounding
/// whitespace is ignored; anything else is `None`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
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
    fn retry_after_in_every_form() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        let minute = Some(Duration::from_secs(60));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), minute);
        // The obsolete forms RFC 9110 still asks recipients to read (chrono's RFC 2822 parser took neither).
        assert_eq!(retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now), minute);
        assert_eq!(retry_after("Sun Nov  6 08:50:37 1994", now), minute);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

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
