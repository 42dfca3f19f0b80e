//! The emulated link's arithmetic, without sockets or clocks: one direction of a bottleneck
//! (random loss, a drop-tail queue drained at a fixed rate, then the propagation delay).
//!
//! Time is nanoseconds on a clock the caller chooses, so the tests drive it by hand and
//! assert exact drops and departure times.

use serde::Serialize;

/// The shape of one direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Shape {
    /// Bottleneck rate, bits a second.
    pub rate_bps: u64,
    /// Bytes the queue before the bottleneck holds (the datagram being serialized included).
    pub queue_bytes: u64,
    /// One-way propagation delay, nanoseconds.
    pub delay_ns: u64,
    /// Probability that a datagram is lost, 0 to 1.
    pub loss: f64,
}

/// What becomes of one datagram offered to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Lost at random (before the queue, so it takes no place in it).
    Lost,
    /// Dropped because the queue had no room for it.
    Overflow,
    /// Leaves the far end of the link at this time.
    Deliver(u64),
}

/// What one direction of the link did, counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub offered: u64,
    pub offered_bytes: u64,
    pub lost: u64,
    pub overflow: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            offered: self.offered - earlier.offered,
            offered_bytes: self.offered_bytes - earlier.offered_bytes,
            lost: self.lost - earlier.lost,
            overflow: self.overflow - earlier.overflow,
            delivered: self.delivered - earlier.delivered,
            delivered_bytes: self.delivered_bytes - earlier.delivered_bytes,
        }
    }
}

/// One direction: its shape, the time the bottleneck is busy until, the loss RNG and the
/// counters.
#[derive(Debug)]
pub struct Direction {
    shape: Shape,
    busy_until: u64,
    rng: SplitMix64,
    /// What was offered and what became of it.
    pub counters: Counters,
}

impl Direction {
    /// A direction with an empty queue whose losses follow `seed`.
    pub fn new(shape: Shape, seed: u64) -> Self {
        Self {
            shape,
            busy_until: 0,
            rng: SplitMix64(seed),
            counters: Counters::default(),
        }
    }

    /// Offers a datagram of `len` bytes at time `now`: lost at random, dropped when the
    /// queue cannot take it, else serialized after everything queued before it and
    /// delivered the propagation delay later.
    pub fn offer(&mut self, now: u64, len: usize) -> Verdict {
        let len = len as u64;
        self.counters.offered += 1;
        self.counters.offered_bytes += len;
        if self.shape.loss > 0.0 && self.rng.unit() < self.shape.loss {
            self.counters.lost += 1;
            return Verdict::Lost;
        }
        let start = self.busy_until.max(now);
        if self.backlog_bytes(now) + len > self.shape.queue_bytes {
            self.counters.overflow += 1;
            return Verdict::Overflow;
        }
        self.busy_until = start + self.serialization_ns(len);
        self.counters.delivered += 1;
        self.counters.delivered_bytes += len;
        Verdict::Deliver(self.busy_until + self.shape.delay_ns)
    }

    /// Bytes still waiting for (or in) the bottleneck at `now`.
    pub fn backlog_bytes(&self, now: u64) -> u64 {
        let busy_ns = u128::from(self.busy_until.saturating_sub(now));
        let bytes = busy_ns * u128::from(self.shape.rate_bps) / 8 / 1_000_000_000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    /// Nanoseconds the bottleneck takes to send `len` bytes.
    fn serialization_ns(&self, len: u64) -> u64 {
        let ns = u128::from(len) * 8 * 1_000_000_000 / u128::from(self.shape.rate_bps.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// SplitMix64: a tiny, well-mixed generator, so a seed gives the same losses on any machine.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBIT: u64 = 1_000_000;

    fn shape(rate_mbit: u64, queue_bytes: u64, loss: f64) -> Shape {
        Shape {
            rate_bps: rate_mbit * MBIT,
            queue_bytes,
            delay_ns: 20_000_000,
            loss,
        }
    }

    #[test]
    fn serializes_at_the_rate_then_adds_the_delay() {
        // 1,000 bytes at 8 Mbit/s take exactly 1 ms.
        let mut d = Direction::new(shape(8, 10_000, 0.0), 1);
        assert_eq!(d.offer(0, 1_000), Verdict::Deliver(1_000_000 + 20_000_000));
        // Queued behind the first: leaves 1 ms after it.
        assert_eq!(d.offer(0, 1_000), Verdict::Deliver(2_000_000 + 20_000_000));
        // After the queue has drained, a datagram starts at once.
        assert_eq!(
            d.offer(10_000_000, 1_000),
            Verdict::Deliver(11_000_000 + 20_000_000)
        );
    }

    #[test]
    fn queue_overflow_drops_exactly_what_exceeds_it() {
        // A burst of 25 datagrams of 1,000 bytes at one instant into a 10,000-byte queue:
        // the first 10 fit, the other 15 are dropped.
        let mut d = Direction::new(shape(200, 10_000, 0.0), 1);
        let verdicts: Vec<Verdict> = (0..25).map(|_| d.offer(0, 1_000)).collect();
        let delivered = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Deliver(_)))
            .count();
        assert_eq!(delivered, 10);
        assert!(verdicts[10..].iter().all(|v| *v == Verdict::Overflow));
        assert_eq!(d.counters.overflow, 15);
        assert_eq!(d.counters.delivered_bytes, 10_000);
        assert_eq!(d.backlog_bytes(0), 10_000);
    }

    #[test]
    fn a_draining_queue_makes_room_again() {
        // 8 Mbit/s: one byte a microsecond. Full at t=0; 1 ms later 1,000 bytes have left.
        let mut d = Direction::new(shape(8, 4_000, 0.0), 1);
        for _ in 0..4 {
            assert!(matches!(d.offer(0, 1_000), Verdict::Deliver(_)));
        }
        assert_eq!(d.offer(0, 1_000), Verdict::Overflow);
        assert_eq!(d.backlog_bytes(1_000_000), 3_000);
        assert_eq!(
            d.offer(1_000_000, 1_000),
            Verdict::Deliver(5_000_000 + 20_000_000)
        );
        assert_eq!(d.offer(1_000_000, 1), Verdict::Overflow);
    }

    #[test]
    fn a_datagram_larger_than_the_queue_never_fits() {
        let mut d = Direction::new(shape(200, 1_000, 0.0), 1);
        assert_eq!(d.offer(0, 1_001), Verdict::Overflow);
        assert!(matches!(d.offer(0, 1_000), Verdict::Deliver(_)));
    }

    #[test]
    fn loss_fraction_follows_the_setting() {
        // 100,000 datagrams at 1%: expect 1,000, sd ~31; bounds at about 5 sd.
        let mut d = Direction::new(shape(200, u64::MAX, 0.01), 42);
        for i in 0..100_000u64 {
            d.offer(i * 1_000_000, 100);
        }
        let lost = d.counters.lost;
        assert!((850..=1_150).contains(&lost), "{lost} lost");
        assert_eq!(d.counters.delivered + lost, 100_000);
        assert_eq!(d.counters.overflow, 0);
    }

    #[test]
    fn a_seed_gives_the_same_losses() {
        let pattern = |seed| {
            let mut d = Direction::new(shape(200, u64::MAX, 0.05), seed);
            (0..2_000)
                .map(|i| d.offer(i * 1_000_000, 100) == Verdict::Lost)
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
    }

    #[test]
    fn lost_datagrams_take_no_queue_space() {
        let mut d = Direction::new(shape(200, 1_000, 1.0), 1);
        for _ in 0..10 {
            assert_eq!(d.offer(0, 1_000), Verdict::Lost);
        }
        assert_eq!(d.backlog_bytes(0), 0);
        assert_eq!(d.counters.overflow, 0);
    }

    #[test]
    fn counters_subtract() {
        let mut d = Direction::new(shape(200, 10_000, 0.0), 1);
        d.offer(0, 500);
        let before = d.counters;
        d.offer(0, 700);
        let diff = d.counters.since(&before);
        assert_eq!((diff.offered, diff.delivered_bytes), (1, 700));
    }
}
