//! A BBR-style congestion controller for quinn, written for frp-quic from the published
//! descriptions (Cardwell et al., "BBR: Congestion-Based Congestion Control", ACM Queue 2016,
//! and the IETF CCWG draft "BBR Congestion Control").
//!
//! It steers by a model of the path (the bottleneck bandwidth, a windowed maximum of delivery
//! rates, and the minimum RTT) instead of by loss, so random loss that is not caused by a queue
//! does not shrink it. The states are BBR's: Startup doubles the delivery rate each round until
//! it stops growing, Drain empties the queue Startup built, ProbeBw cycles around the model
//! (a round above it to find more bandwidth, a round below it to drain, six at it), and ProbeRtt
//! shrinks the window briefly when the minimum RTT is older than ten seconds, so a path whose
//! delay rose is learnt again.
//!
//! quinn paces at 1.25 × window / smoothed RTT; the controller therefore sets its pacing gains
//! through the window: in ProbeBw the window is the gain × the bandwidth-delay product plus a
//! small allowance for delayed acks, which keeps the bottleneck queue (and with it the delay
//! every other stream in the connection sees) near empty.
//!
//! Where acknowledgements come in bunches (a CPU-bound loopback, batching receivers), the
//! window also holds the draft's acknowledgement-aggregation estimate ([`Aggregation`]), so
//! the sender keeps sending between bunches instead of measuring its own idle time.
//!
//! Two rules from BBRv2 keep it fair and bounded: a round that lost more than 2% of what it
//! sent caps the window below where the loss began (a queue overflowed: a competing flow is
//! being pushed out), and the Startup window never exceeds its gain × the measured
//! bandwidth-delay product, so an app-limited tunnel never builds a window it has not used.

use std::time::{Duration, Instant};

use super::aggregation::Aggregation;
use super::model::{MaxFilter, MinRtt, RateSample, Sampler};
use super::BbrSettings;

/// Startup's gain, 2/ln 2: the smallest that doubles the delivery rate every round.
const STARTUP_GAIN: f64 = 2.885;
/// ProbeBw's gain cycle, one phase per minimum RTT.
const PROBE_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Window above the model in ProbeBw, as a fraction of the bandwidth-delay product: room for
/// acknowledgements that arrive a little late. Bunched ones are the aggregation estimate's
/// (it replaced half of this allowance, which was standing queue on a smooth path).
const ACK_ALLOWANCE: f64 = 0.05;
/// Startup ends once three rounds in a row grew the bandwidth by less than this.
const FULL_BW_GROWTH: f64 = 1.25;
const FULL_BW_ROUNDS: u32 = 3;
/// A round that lost more than this fraction of its data hit a full queue.
const LOSS_THRESHOLD: f64 = 0.02;
/// Where a window capped after loss goes: this fraction of what was in flight.
const LOSS_BETA: f64 = 0.85;
/// The minimum RTT estimate is refreshed by a probe once older than this.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// A whole gain cycle whose lowest RTT sample is this much above the estimate means the path's
/// delay rose: without this the window (bandwidth × a stale, lower RTT) would deliver less each
/// round, the bandwidth estimate would follow it down, and the flow would spiral to nothing
/// before the next RTT probe.
const RTT_ROSE: f64 = 1.25;
/// How long ProbeRtt holds the window down once the queue drained.
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// Smallest window, in datagrams.
const MIN_WINDOW_PACKETS: u64 = 4;

/// The controller's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Doubling the delivery rate each round.
    Startup,
    /// Emptying the queue Startup built.
    Drain,
    /// Cycling around the model; the phase indexes the gain cycle.
    ProbeBw {
        /// Index into the gain cycle.
        phase: usize,
    },
    /// Holding the window down to measure the minimum RTT again.
    ProbeRtt,
}

/// Per-round counters, reset when a round ends.
#[derive(Clone, Copy, Debug, Default)]
struct Round {
    count: u64,
    next_delivered: u64,
    delivered_at_start: u64,
    lost: u64,
    started: bool,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Bbr {
    settings: BbrSettings,
    mode: Mode,
    mss: u64,
    window: u64,
    /// Bytes in flight at the end of the last acknowledgement batch (quinn's count; the only
    /// place the state machine reads it).
    in_flight: u64,
    sampler: Sampler,
    bandwidth: MaxFilter,
    min_rtt: MinRtt,
    round: Round,
    /// Startup's full-pipe check: the best bandwidth so far and rounds without growth.
    full_bw: u64,
    full_bw_rounds: u32,
    filled_pipe: bool,
    /// Window cap after a lossy round (u64::MAX: none).
    inflight_hi: u64,
    phase_start: Instant,
    probe_rtt_done: Option<Instant>,
    acked_in_batch: u64,
    /// Acknowledged beyond what the model explains (the draft's `extra_acked`).
    aggregation: Aggregation,
}

impl Bbr {
    /// A controller for a connection whose datagrams are `mtu` bytes now.
    pub fn new(settings: BbrSettings, now: Instant, mtu: u16) -> Self {
        Self {
            settings,
            mode: Mode::Startup,
            mss: u64::from(mtu),
            window: settings.initial_window,
            in_flight: 0,
            sampler: Sampler::new(now),
            bandwidth: MaxFilter::default(),
            min_rtt: MinRtt::new(now),
            round: Round::default(),
            full_bw: 0,
            full_bw_rounds: 0,
            filled_pipe: false,
            inflight_hi: u64::MAX,
            phase_start: now,
            probe_rtt_done: None,
            acked_in_batch: 0,
            aggregation: Aggregation::default(),
        }
    }

    /// The current state.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The bottleneck bandwidth estimate, bytes per second.
    pub fn bandwidth(&self) -> u64 {
        self.bandwidth.get()
    }

    /// The minimum RTT estimate.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.get()
    }

    /// The window cap set by a lossy round, if any.
    pub fn inflight_cap(&self) -> Option<u64> {
        (self.inflight_hi != u64::MAX).then_some(self.inflight_hi)
    }

    /// The send records the rate sampler holds: (length, capacity).
    pub fn records(&self) -> (usize, usize) {
        self.sampler.records()
    }

    /// One send at `sent` of `bytes` was acknowledged at `now` (quinn's `on_ack`; the RTT
    /// sample is taken from the two instants, not from quinn's estimator, whose minimum never
    /// expires).
    pub fn ack(&mut self, now: Instant, sent: Instant, bytes: u64) {
        self.sampler.on_ack(now, sent, bytes);
        self.min_rtt
            .sample(now, now.saturating_duration_since(sent));
        self.acked_in_batch += bytes;
    }

    /// An acknowledgement batch ended with `in_flight` bytes outstanding (quinn's
    /// `on_end_acks`): the model, the state and the window are updated here.
    pub fn end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool) {
        self.in_flight = in_flight;
        if app_limited {
            self.sampler.mark_app_limited(in_flight);
        }
        let min_interval = self.min_rtt.get().unwrap_or_default();
        if let Some(sample) = self.sampler.end_batch(now, min_interval) {
            self.take_sample(sample);
        }
        let (round, bw) = (self.round.count, self.bandwidth.get());
        (self.aggregation).update(now, round, self.acked_in_batch, bw, self.window);
        if std::mem::take(&mut self.round.started) {
            self.end_round();
        }
        self.advance_mode(now);
        self.set_window();
        self.acked_in_batch = 0;
    }

    /// Loss of `lost` bytes (0: an ECN mark); `persistent`: every packet over several RTOs.
    pub fn lost(&mut self, lost: u64, persistent: bool) {
        // An ECN mark reports no bytes: count it as one datagram's worth.
        self.round.lost += if lost == 0 { self.mss } else { lost };
        if persistent {
            // The model no longer describes the path.
            self.bandwidth.reset();
            self.aggregation.reset();
            self.full_bw = 0;
            self.full_bw_rounds = 0;
            self.filled_pipe = false;
            self.mode = Mode::Startup;
            self.window = self.min_window();
        }
    }

    /// The path MTU changed to `mtu`.
    pub fn set_mtu(&mut self, mtu: u16) {
        self.mss = u64::from(mtu);
        self.window = self.window.max(self.min_window());
    }

    /// The congestion window, bytes.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The initial window, bytes.
    pub fn initial_window(&self) -> u64 {
        self.settings.initial_window
    }

    /// Records a send at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.sampler.on_sent(now);
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_PACKETS * self.mss
    }

    /// Bandwidth × minimum RTT × `gain`; `None` until both were measured.
    fn bdp(&self, gain: f64) -> Option<u64> {
        let bw = self.bandwidth.get();
        let rtt = self.min_rtt.get()?;
        (bw > 0).then_some((bw as f64 * rtt.as_secs_f64() * gain) as u64)
    }

    fn take_sample(&mut self, sample: RateSample) {
        if sample.prior_delivered >= self.round.next_delivered {
            self.round.count += 1;
            self.round.next_delivered = self.sampler.delivered;
            self.round.started = true;
        }
        if sample.rate > 0 && (!sample.app_limited || sample.rate >= self.bandwidth.get()) {
            self.bandwidth.update(self.round.count, sample.rate);
        }
        if self.round.started && sample.rate > 0 && !sample.app_limited {
            self.check_full_pipe();
        }
    }

    /// Startup's exit: three rounds without 25% more bandwidth.
    fn check_full_pipe(&mut self) {
        if self.filled_pipe {
            return;
        }
        let bw = self.bandwidth.get();
        if bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = bw;
            self.full_bw_rounds = 0;
            return;
        }
        self.full_bw_rounds += 1;
        self.filled_pipe = self.full_bw_rounds >= FULL_BW_ROUNDS;
    }

    /// At a round's end: a lossy round caps the window (and ends Startup).
    fn end_round(&mut self) {
        let delivered = self.sampler.delivered - self.round.delivered_at_start;
        let lost = self.round.lost;
        self.round.delivered_at_start = self.sampler.delivered;
        self.round.lost = 0;
        let sent = delivered + lost;
        if sent == 0 || (lost as f64) <= LOSS_THRESHOLD * sent as f64 || lost < 3 * self.mss {
            return;
        }
        let floor = self.bdp(1.0).unwrap_or(0).max(self.min_window());
        self.inflight_hi = ((self.window as f64 * LOSS_BETA) as u64).max(floor);
        match self.mode {
            Mode::Startup => self.filled_pipe = true,
            Mode::ProbeBw { .. } => self.mode = Mode::ProbeBw { phase: 1 },
            Mode::Drain | Mode::ProbeRtt => {}
        }
    }

    fn advance_mode(&mut self, now: Instant) {
        if self.mode != Mode::ProbeRtt && self.min_rtt.expired(now, MIN_RTT_WINDOW) {
            self.mode = Mode::ProbeRtt;
            self.min_rtt.start_probe();
            self.probe_rtt_done = None;
            return;
        }
        match self.mode {
            Mode::Startup if self.filled_pipe => self.mode = Mode::Drain,
            Mode::Drain if self.in_flight <= self.bdp(1.0).unwrap_or(0) => self.enter_probe_bw(now),
            Mode::ProbeBw { phase } => self.next_phase(now, phase),
            Mode::ProbeRtt => self.probe_rtt(now),
            _ => {}
        }
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        // Start in a cruising phase: the first probe comes after the queue is known empty.
        self.mode = Mode::ProbeBw { phase: 2 };
        self.phase_start = now;
        self.min_rtt.start_probe();
    }

    fn next_phase(&mut self, now: Instant, phase: usize) {
        let rtt = self.min_rtt.get().unwrap_or(Duration::from_millis(100));
        if now.saturating_duration_since(self.phase_start) < rtt {
            return;
        }
        let next = (phase + 1) % PROBE_GAINS.len();
        if next == 0 {
            self.min_rtt.end_cycle(now, RTT_ROSE);
        }
        if next == 0 && self.inflight_hi != u64::MAX {
            // A whole cycle passed since the cap: probe above it again, a quarter at a time,
            // and drop it once it no longer binds.
            self.inflight_hi = self.inflight_hi.saturating_add(self.inflight_hi / 4);
            if self.inflight_hi > self.window.saturating_mul(4) {
                self.inflight_hi = u64::MAX;
            }
        }
        self.mode = Mode::ProbeBw { phase: next };
        self.phase_start = now;
    }

    fn probe_rtt(&mut self, now: Instant) {
        let target = self.probe_rtt_window();
        match self.probe_rtt_done {
            None if self.in_flight <= target => {
                self.probe_rtt_done = Some(now + PROBE_RTT_TIME);
            }
            Some(done) if now >= done => {
                self.min_rtt.end_probe(now);
                if self.filled_pipe {
                    self.enter_probe_bw(now);
                } else {
                    self.mode = Mode::Startup;
                }
            }
            _ => {}
        }
    }

    fn probe_rtt_window(&self) -> u64 {
        self.bdp(0.5).unwrap_or(0).max(self.min_window())
    }

    /// The window the current state aims at.
    fn target_window(&self) -> u64 {
        let allowance = self.bdp(ACK_ALLOWANCE).unwrap_or(0) + self.min_window();
        match self.mode {
            Mode::Startup => self
                .bdp(STARTUP_GAIN)
                .unwrap_or(0)
                .max(self.settings.initial_window),
            // Draining ends at one BDP in flight: no aggregation allowance here.
            Mode::Drain => self.bdp(1.0).unwrap_or(self.window) + allowance,
            Mode::ProbeBw { phase } => {
                let bunches = self.aggregation.get();
                self.bdp(PROBE_GAINS[phase]).unwrap_or(self.window) + allowance + bunches
            }
            Mode::ProbeRtt => self.probe_rtt_window(),
        }
    }

    fn set_window(&mut self) {
        let target = self.target_window();
        let grown = self.window.saturating_add(self.acked_in_batch);
        self.window = match self.mode {
            // Growing modes grow by what was acknowledged, never past the target.
            Mode::Startup | Mode::ProbeBw { .. } => grown.min(target),
            Mode::Drain | Mode::ProbeRtt => target,
        };
        self.window = self
            .window
            .min(self.inflight_hi)
            .min(self.settings.max_window)
            .max(self.min_window());
    }
}
