//! How many streams the peer may have open toward us at once, granted as they are needed.
//!
//! quinn keeps a slot for every stream the peer may open (its stream credit,
//! `max_concurrent_bidi_streams`), and a slot that once carried a stream keeps that stream's
//! receive state, reassembly buffer included, for the life of the connection: freed states go
//! to a pool that is never shrunk. A credit granted in full up front therefore costs memory in
//! proportion to the configured ceiling (`transport.quic.maxIncomingStreams`, 10,000 on frpc)
//! once enough streams have come and gone, whether or not that many were ever open at once.
//!
//! [`StreamCredit`] starts at [`INITIAL_STREAM_CREDIT`] (or the ceiling, if lower) and doubles
//! whenever three quarters of it are in use, up to the ceiling. What quinn keeps is then
//! bounded by the most streams in use at once (about twice that), not by the ceiling. It never
//! shrinks the grant: a smaller credit would not give quinn's pool back.
//!
//! "In use" is what quinn counts, as nearly as frpc can see it: the streams whose task runs,
//! and those that ended in the last round trip or two ([`RecentEnds`]), since quinn may still
//! hold a stream after its task: a stream that ended by a reset is freed when the peer's own
//! reset arrives (frp-quic's splice sends it as soon as it sees ours), and freed credit is
//! announced to the peer in steps of an eighth of the grant. The peer can therefore always
//! open seven eighths of the grant, more than the three quarters that make it grow.
//!
//! The cost is about one round trip for a burst that outruns the grant: the peer's opens
//! beyond it wait for the `MAX_STREAMS` frame the doubling sends.

use std::time::{Duration, Instant};

use crate::gauge::Gauge;

/// The credit a connection starts with: what HTTP/3 servers commonly allow (100) with room for
/// a browser's burst of parallel requests through a tunnel.
pub const INITIAL_STREAM_CREDIT: u32 = 256;

/// The stream credit granted to the peer so far, and the ceiling it may grow to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamCredit {
    granted: u32,
    ceiling: u32,
}

impl StreamCredit {
    /// A connection's first grant under `ceiling` (the configured `maxIncomingStreams`).
    pub fn new(ceiling: u32) -> Self {
        Self {
            granted: ceiling.min(INITIAL_STREAM_CREDIT),
            ceiling,
        }
    }

    /// A grant of the whole ceiling at once, for a transport whose limit costs nothing unused.
    pub fn full(ceiling: u32) -> Self {
        Self {
            granted: ceiling,
            ceiling,
        }
    }

    /// What the peer may have open at once now.
    pub fn granted(&self) -> u32 {
        self.granted
    }

    /// Called with the number of streams in use now (those open, the one just accepted
    /// included, and those ended recently: [`RecentEnds`]): the new, larger grant when three quarters of the current one are in
    /// use, else `None`.
    pub fn on_open(&mut self, open: usize) -> Option<u32> {
        let busy = u64::try_from(open).unwrap_or(u64::MAX).saturating_mul(4);
        if self.granted >= self.ceiling || busy < u64::from(self.granted) * 3 {
            return None;
        }
        self.granted = self.granted.saturating_mul(2).min(self.ceiling);
        Some(self.granted)
    }
}

/// One connection's stream credit with what grows it: the grant, the running total of its
/// streams that ended (each stream's task holds a [`StreamEnd`] that adds to it), and which of
/// those ended recently.
#[derive(Debug)]
pub struct CreditLedger {
    credit: StreamCredit,
    ended: Gauge,
    recent: RecentEnds,
}

impl CreditLedger {
    /// A ledger for a connection whose first grant was `credit`, counting from `now`.
    pub fn new(credit: StreamCredit, now: Instant) -> Self {
        Self {
            credit,
            ended: Gauge::default(),
            recent: RecentEnds::new(now, 0),
        }
    }

    /// What the peer may have open at once now.
    pub fn granted(&self) -> u32 {
        self.credit.granted()
    }

    /// The token a stream's task holds: the stream counts as ended once it is dropped.
    pub fn stream_end(&self) -> StreamEnd {
        StreamEnd(self.ended.clone())
    }

    /// Called after a stream was accepted, with the number of stream tasks still running (the
    /// new one included), at `now` on a path with round-trip time `rtt`: the new, larger grant
    /// when the streams in use (those running and those ended recently) reached three
    /// quarters of it, else `None`.
    pub fn on_open(&mut self, running: usize, now: Instant, rtt: Duration) -> Option<u32> {
        let total = self.ended.get().unsigned_abs();
        let recent = self.recent.count(now, rtt, total);
        self.credit.on_open(running.saturating_add(recent))
    }
}

/// Counts its stream as ended in its [`CreditLedger`] when dropped, however the stream's task
/// returns.
#[derive(Debug)]
pub struct StreamEnd(Gauge);

impl Drop for StreamEnd {
    fn drop(&mut self) {
        self.0.add(1);
    }
}

/// Streams that ended within the last one to two round trips: quinn may still hold their
/// credit, waiting for the peer to acknowledge their end.
#[derive(Clone, Copy, Debug)]
pub struct RecentEnds {
    since: Instant,
    /// The running total of ended streams when the current round trip began (as last seen
    /// before it).
    mark: u64,
    /// The same for the round trip before it.
    prev: u64,
    /// The total at the last call.
    seen: u64,
}

impl RecentEnds {
    /// Counting from `now`, when `total` streams had ended.
    pub fn new(now: Instant, total: u64) -> Self {
        Self {
            since: now,
            mark: total,
            prev: total,
            seen: total,
        }
    }

    /// How many streams ended in the current round trip and the one before it, given the
    /// running `total` of ended streams at `now` on a path with round-trip time `rtt`. Ends
    /// first seen one round trip on count from the round trip before; ends first seen after a
    /// longer quiet spell do not count.
    pub fn count(&mut self, now: Instant, rtt: Duration, total: u64) -> usize {
        let span = rtt.max(MIN_SPAN);
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= span * 2 {
            // After a quiet spell the ends since the last call cannot be placed in time; most
            // of them are likely old, and counting them could double the grant for nothing.
            (self.prev, self.mark, self.since) = (total, total, now);
        } else if elapsed >= span {
            (self.prev, self.mark, self.since) = (self.mark, self.seen, self.since + span);
        }
        self.seen = total;
        usize::try_from(total.saturating_sub(self.prev)).unwrap_or(usize::MAX)
    }
}

/// The shortest window [`RecentEnds`] counts in (loopback round trips are microseconds).
const MIN_SPAN: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ends_count_the_last_round_trips_only() {
        let rtt = Duration::from_millis(40);
        let t0 = Instant::now();
        let mut r = RecentEnds::new(t0, 1_000);
        // 300 short streams ended 0.1 ms apart: all within the first round trip.
        for i in 1..=300 {
            assert_eq!(
                r.count(t0 + Duration::from_micros(100 * i), rtt, 1_000 + i),
                i as usize
            );
        }
        // One round trip on, the previous one still counts; two on, only the newer ends.
        assert_eq!(r.count(t0 + Duration::from_millis(45), rtt, 1_310), 310);
        assert_eq!(r.count(t0 + Duration::from_millis(85), rtt, 1_312), 12);
        // After a quiet spell, the ends since the last call are taken for old ones...
        assert_eq!(r.count(t0 + Duration::from_secs(5), rtt, 1_320), 0);
        // ...and counting starts again from there.
        assert_eq!(r.count(t0 + Duration::from_millis(5_010), rtt, 1_325), 5);
        // A round-trip time that grows widens the window.
        let slow = Duration::from_millis(400);
        assert_eq!(r.count(t0 + Duration::from_millis(5_300), slow, 1_330), 10);
    }

    #[test]
    fn the_ledger_counts_ended_streams_as_in_use_for_a_round_trip() {
        let rtt = Duration::from_millis(40);
        let t0 = Instant::now();
        let mut ledger = CreditLedger::new(StreamCredit::new(10_000), t0);
        // 90 streams ended (their tokens dropped) within one round trip, and 90 running:
        // 180 in use, under three quarters of 256.
        for _ in 0..90 {
            drop(ledger.stream_end());
        }
        let at = t0 + Duration::from_millis(1);
        assert_eq!(ledger.on_open(90, at, rtt), None);
        // 12 more ended: 192 in use, so the grant doubles.
        for _ in 0..12 {
            drop(ledger.stream_end());
        }
        assert_eq!(ledger.on_open(90, at, rtt), Some(512));
        assert_eq!(ledger.granted(), 512);
        // Long after, those ends no longer count.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(ledger.on_open(1, later, rtt), None);
    }

    #[test]
    fn starts_small_and_never_above_the_ceiling() {
        assert_eq!(StreamCredit::new(10_000).granted(), INITIAL_STREAM_CREDIT);
        assert_eq!(StreamCredit::new(1).granted(), 1);
        let mut c = StreamCredit::new(300);
        assert_eq!(c.on_open(192), Some(300));
        assert_eq!(c.on_open(300), None, "at the ceiling it stays");
    }

    #[test]
    fn doubles_at_three_quarters_in_use() {
        let mut c = StreamCredit::new(10_000);
        assert_eq!(c.on_open(191), None);
        assert_eq!(c.on_open(192), Some(512));
        assert_eq!(c.on_open(383), None);
        assert_eq!(c.on_open(384), Some(1024));
        // Fewer streams later never take a grant back.
        assert_eq!(c.on_open(1), None);
        assert_eq!(c.granted(), 1024);
    }

    #[test]
    fn churn_at_low_concurrency_keeps_the_first_grant() {
        let mut c = StreamCredit::new(10_000);
        for _ in 0..100_000 {
            assert_eq!(c.on_open(32), None);
        }
        assert_eq!(c.granted(), INITIAL_STREAM_CREDIT);
    }

    #[test]
    fn a_burst_reaches_the_ceiling_and_stops() {
        let mut c = StreamCredit::new(10_000);
        let mut grants = Vec::new();
        for open in 1..=20_000 {
            grants.extend(c.on_open(open));
        }
        assert_eq!(grants, [512, 1024, 2048, 4096, 8192, 10_000]);
    }
}
