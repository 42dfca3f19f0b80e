//! The acknowledgement-aggregation estimate of the CCWG BBR draft ("extra_acked"): how much
//! more data was acknowledged in a burst than the bandwidth estimate explains.
//!
//! Where acknowledgements arrive in bunches (receivers that batch, GRO, a CPU-bound loopback,
//! Wi-Fi), a window of one bandwidth-delay product runs dry between bunches, the sender idles,
//! and the delivery rate it measures is its own window over the bunch interval: the model
//! shrinks toward what the window allows. Adding the largest recent excess to the window lets
//! the sender keep sending through the gaps. On a path whose acknowledgements are smooth the
//! excess is near zero and the window stays near one bandwidth-delay product.

use std::time::Instant;

use super::model::MaxFilter;

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Aggregation {
    /// When the current epoch began: acknowledgements since then are compared with what the
    /// bandwidth estimate would have delivered.
    epoch_start: Option<Instant>,
    /// Bytes acknowledged in the current epoch.
    epoch_acked: u64,
    /// The largest excess per round, over the last rounds.
    extra: MaxFilter,
}

impl Aggregation {
    /// `acked` bytes were acknowledged at `now`, in round `round`, with bandwidth estimate
    /// `bw` (bytes per second) and window `window` (the excess is capped at the window).
    pub fn update(&mut self, now: Instant, round: u64, acked: u64, bw: u64, window: u64) {
        if bw == 0 || acked == 0 {
            return;
        }
        let expected = match self.epoch_start {
            Some(start) => (bw as f64 * now.saturating_duration_since(start).as_secs_f64()) as u64,
            None => 0,
        };
        // Acknowledgements have fallen back to the rate the model expects: a new epoch.
        let expected = if self.epoch_start.is_none() || self.epoch_acked <= expected {
            self.epoch_start = Some(now);
            self.epoch_acked = 0;
            0
        } else {
            expected
        };
        self.epoch_acked = self.epoch_acked.saturating_add(acked);
        let extra = self.epoch_acked.saturating_sub(expected).min(window);
        self.extra.update(round, extra);
    }

    /// The largest recent excess, bytes.
    pub fn get(&self) -> u64 {
        self.extra.get()
    }

    /// Forgets everything (the model restarts).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn smooth_acknowledgements_leave_no_excess_and_bunches_do() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 1 MB/s, 1 KB every millisecond: what the model expects.
        let mut smooth = Aggregation::default();
        for i in 0..100u64 {
            smooth.update(t0 + ms(i), i / 10, 1_000, 1_000_000, 1_000_000);
        }
        assert!(smooth.get() <= 2_000, "smooth: {}", smooth.get());
        // The same rate in bunches: 10 KB at once every 10 ms.
        let mut bunched = Aggregation::default();
        for i in 0..10u64 {
            bunched.update(t0 + ms(10 * i), i, 10_000, 1_000_000, 1_000_000);
        }
        assert!(bunched.get() >= 9_000, "bunched: {}", bunched.get());
        // Never more than the window.
        let mut capped = Aggregation::default();
        capped.update(t0, 0, 50_000, 1_000_000, 20_000);
        assert_eq!(capped.get(), 20_000);
    }
}
