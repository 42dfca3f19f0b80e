//! The path model a BBR-style controller steers by: delivery-rate samples, a windowed maximum
//! of them (the bottleneck bandwidth) and a minimum round-trip time that expires.
//!
//! Delivery rate follows the rate-sample method of the IETF CCWG BBR draft (section "Delivery
//! Rate Samples"): every send records how much had been delivered by then and when; when that
//! send is acknowledged, the rate is the data delivered since divided by the longer of the send
//! and ack intervals, which keeps ack compression from inflating it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Rounds the bandwidth maximum is kept for (the draft's `MaxBwFilterLen` is two probe cycles;
/// BBRv1 used ten rounds: ten keeps a lossy path's occasional low rounds from pulling it down).
pub const BW_WINDOW_ROUNDS: usize = 10;
/// A send record queue that grew under load is given back once it empties above this length.
const KEEP_RECORDS: usize = 64;

/// What was true when one datagram (or batch) left.
#[derive(Clone, Copy, Debug)]
struct SendRecord {
    sent: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_sent: Instant,
    app_limited: bool,
}

/// One rate sample: bytes delivered over an interval, from one acknowledgement batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSample {
    /// Bytes per second; 0 when the interval was too short to mean anything.
    pub rate: u64,
    /// The sample was taken while the sender had nothing more to send: a lower bound only.
    pub app_limited: bool,
    /// Delivered count when the sampled packet left (the round counter's clock).
    pub prior_delivered: u64,
}

/// Delivery-rate sampling over the sends in flight.
#[derive(Clone, Debug)]
pub struct Sampler {
    records: VecDeque<SendRecord>,
    /// Bytes acknowledged over the connection's life.
    pub delivered: u64,
    delivered_time: Instant,
    first_sent: Instant,
    /// Non-zero while sends are app-limited: `delivered` must pass it to clear the mark.
    app_limited_until: u64,
    /// The newest send acknowledged in the current batch.
    best: Option<SendRecord>,
}

impl Sampler {
    /// A sampler with nothing sent yet.
    pub fn new(now: Instant) -> Self {
        Self {
            records: VecDeque::new(),
            delivered: 0,
            delivered_time: now,
            first_sent: now,
            app_limited_until: 0,
            best: None,
        }
    }

    /// Records a send at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        if self.records.is_empty() {
            // Nothing outstanding: the next interval starts here, not at the last ack.
            self.first_sent = now;
            self.delivered_time = now;
        }
        self.records.push_back(SendRecord {
            sent: now,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent: self.first_sent,
            app_limited: self.app_limited_until != 0,
        });
    }

    /// Counts `bytes` acknowledged at `now` for the send made at `sent`.
    pub fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64) {
        self.delivered += bytes;
        self.delivered_time = now;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        // Sends older than this one were acknowledged already or are lost: drop their records.
        while self.records.front().is_some_and(|r| r.sent < sent) {
            self.records.pop_front();
        }
        let Some(record) = self.records.front().copied().filter(|r| r.sent == sent) else {
            return;
        };
        if self.best.is_none_or(|b| record.delivered >= b.delivered) {
            self.best = Some(record);
            self.first_sent = record.sent;
        }
    }

    /// Ends an acknowledgement batch: the sample of its newest acknowledged send, if any. The
    /// rate is 0 unless the interval is at least `min_interval` (normally the minimum RTT).
    pub fn end_batch(&mut self, now: Instant, min_interval: Duration) -> Option<RateSample> {
        if self.records.len() < KEEP_RECORDS && self.records.capacity() > 4 * KEEP_RECORDS {
            self.records.shrink_to(KEEP_RECORDS);
        }
        let best = self.best.take()?;
        let send_elapsed = best.sent.saturating_duration_since(best.first_sent);
        let ack_elapsed = now.saturating_duration_since(best.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        let bytes = u128::from(self.delivered - best.delivered);
        let rate = if interval.is_zero() || interval < min_interval {
            0
        } else {
            u64::try_from(bytes * 1_000_000_000 / interval.as_nanos()).unwrap_or(u64::MAX)
        };
        Some(RateSample {
            rate,
            app_limited: best.app_limited,
            prior_delivered: best.delivered,
        })
    }

    /// The sender ran out of data with `in_flight` bytes outstanding: samples taken until those
    /// are delivered are app-limited.
    pub fn mark_app_limited(&mut self, in_flight: u64) {
        self.app_limited_until = (self.delivered + in_flight).max(1);
    }

    /// Send records held (for tests and memory checks).
    pub fn records(&self) -> (usize, usize) {
        (self.records.len(), self.records.capacity())
    }
}

/// The maximum of per-round maxima over the last [`BW_WINDOW_ROUNDS`] rounds.
#[derive(Clone, Debug, Default)]
pub struct MaxFilter {
    slots: [u64; BW_WINDOW_ROUNDS],
    round: u64,
}

impl MaxFilter {
    /// Offers `value` seen in `round` (rounds never go back).
    pub fn update(&mut self, round: u64, value: u64) {
        let gap = round.saturating_sub(self.round);
        // Rounds that passed with no sample forget what their slots held.
        for step in 1..=gap.min(BW_WINDOW_ROUNDS as u64) {
            self.slots[Self::slot(self.round + step)] = 0;
        }
        self.round = self.round.max(round);
        let slot = &mut self.slots[Self::slot(self.round)];
        *slot = (*slot).max(value);
    }

    /// The windowed maximum (0 before any sample).
    pub fn get(&self) -> u64 {
        self.slots.iter().copied().max().unwrap_or(0)
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        self.slots = [0; BW_WINDOW_ROUNDS];
    }

    fn slot(round: u64) -> usize {
        (round % BW_WINDOW_ROUNDS as u64) as usize
    }
}

/// Minimum RTT over a window that expires, so a path whose delay rose is learnt again.
///
/// quinn's own BBR keeps the lowest RTT ever seen, so after a path's RTT rises it sizes its
/// window for a delay the path no longer has and never recovers; this one is refreshed by the
/// controller's RTT probe once the estimate is older than the window.
#[derive(Clone, Copy, Debug)]
pub struct MinRtt {
    value: Option<Duration>,
    stamp: Instant,
    /// The lowest sample since the last [`MinRtt::start_probe`].
    probe: Option<Duration>,
}

impl MinRtt {
    /// No estimate yet.
    pub fn new(now: Instant) -> Self {
        Self {
            value: None,
            stamp: now,
            probe: None,
        }
    }

    /// Takes an RTT sample; a sample at or below the estimate renews it.
    pub fn sample(&mut self, now: Instant, rtt: Duration) {
        self.probe = Some(self.probe.map_or(rtt, |p| p.min(rtt)));
        if self.value.is_none_or(|v| rtt <= v) {
            self.value = Some(rtt);
            self.stamp = now;
        }
    }

    /// The estimate, if any sample was seen.
    pub fn get(&self) -> Option<Duration> {
        self.value
    }

    /// Whether the estimate is older than `window`.
    pub fn expired(&self, now: Instant, window: Duration) -> bool {
        self.value.is_some() && now.saturating_duration_since(self.stamp) > window
    }

    /// Starts collecting the samples of an RTT probe.
    pub fn start_probe(&mut self) {
        self.probe = None;
    }

    /// Ends a gain cycle: if even its lowest sample (taken in the cycle's draining phase, with
    /// this flow's own queue gone) was above `ratio` × the estimate, the path's delay rose:
    /// the lowest sample becomes the estimate at once. Starts collecting for the next cycle.
    pub fn end_cycle(&mut self, now: Instant, ratio: f64) {
        if let (Some(p), Some(v)) = (self.probe, self.value) {
            if p.as_secs_f64() > v.as_secs_f64() * ratio {
                self.value = Some(p);
                self.stamp = now;
            }
        }
        self.probe = None;
    }

    /// Ends an RTT probe: its lowest sample becomes the estimate, even if higher than the old.
    pub fn end_probe(&mut self, now: Instant) {
        if let Some(p) = self.probe {
            self.value = Some(p);
        }
        self.stamp = now;
    }
}
