//! Exponential backoff with jitter for reconnecting to the server.

use std::time::Duration;

use rand::Rng as _;

/// Reconnect delays: doubling from `min` up to `max`, each randomized to 50-100 % of its value
/// so a fleet of clients does not reconnect in lockstep after a server restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffSettings {
    /// First delay after a failure.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// The state of one backoff sequence.
#[derive(Debug)]
pub struct Backoff {
    settings: BackoffSettings,
    next: Duration,
}

impl Backoff {
    /// A sequence starting at `settings.min`.
    pub fn new(settings: BackoffSettings) -> Self {
        // A zero delay would reconnect in a tight loop.
        let min = settings.min.max(Duration::from_millis(1));
        let settings = BackoffSettings {
            min,
            max: settings.max.max(min),
        };
        Self {
            settings,
            next: min,
        }
    }

    /// Starts over from `min` (after a connection that worked).
    pub fn reset(&mut self) {
        self.next = self.settings.min;
    }

    /// The delay to wait now; doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next.min(self.settings.max);
        self.next = base.saturating_mul(2).min(self.settings.max);
        let factor = rand::rng().random_range(0.5..=1.0);
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_max_with_jitter_and_resets() {
        let s = BackoffSettings {
            min: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let mut b = Backoff::new(s);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let bases = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (d, base) in delays.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(
                *d >= base / 2 && *d <= base,
                "{d:?} not within jitter of {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
