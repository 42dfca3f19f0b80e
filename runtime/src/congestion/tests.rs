//! The controller's state machine on synthetic paths: a discrete-event model of one
//! bottleneck (rate, drop-tail queue, propagation delay, seeded random loss) drives
//! [`Bbr`] through quinn's controller calls exactly as a connection would, with made-up
//! instants, so nothing here depends on the machine's speed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use quinn_proto::congestion::Controller;

use super::model::{MaxFilter, MinRtt, Sampler};
use super::{Bbr, BbrSettings, CongestionControl, Mode};

const MSS: u64 = 1200;

/// A path: bottleneck rate, round-trip propagation delay, queue, random loss.
#[derive(Clone, Copy)]
struct Path {
    rate: u64,
    rtt: Duration,
    queue: u64,
    loss: f64,
}

impl Path {
    fn wan() -> Self {
        // 200 Mbit/s, 40 ms, one BDP of queue: the emulated link.
        let rate = 25_000_000;
        Self {
            rate,
            rtt: Duration::from_millis(40),
            queue: rate / 25,
            loss: 0.0,
        }
    }
}

/// What the simulated sender offers: bulk (always data) or a packet per interval.
#[derive(Clone, Copy)]
enum Load {
    Bulk,
    Every(Duration),
}

struct Sim {
    cc: Bbr,
    path: Path,
    t0: Instant,
    now: Duration,
    link_free: Duration,
    in_flight: u64,
    events: BinaryHeap<Reverse<(Duration, u64, bool, Duration)>>,
    seq: u64,
    rng: u64,
    delivered: u64,
    lost: u64,
    next_send: Duration,
    app_limited: bool,
}

impl Sim {
    fn new(path: Path) -> Self {
        let t0 = Instant::now();
        Self {
            cc: Bbr::new(BbrSettings::default(), t0, MSS as u16),
            path,
            t0,
            now: Duration::ZERO,
            link_free: Duration::ZERO,
            in_flight: 0,
            events: BinaryHeap::new(),
            seq: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            delivered: 0,
            lost: 0,
            next_send: Duration::ZERO,
            app_limited: false,
        }
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: reproducible, good enough for a loss pattern.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn send_one(&mut self) {
        let at = self.t0 + self.now;
        self.cc.on_sent(at, MSS, self.seq);
        self.in_flight += MSS;
        let serialise = Duration::from_nanos(MSS * 1_000_000_000 / self.path.rate);
        let start = self.link_free.max(self.now);
        let queued = (start - self.now).as_nanos() as u64 * self.path.rate / 1_000_000_000;
        let dropped = queued > self.path.queue || self.random() < self.path.loss;
        // A lost packet is noticed about one RTT later, when later ones are acknowledged.
        let when = if dropped {
            self.now + self.path.rtt + self.path.rtt / 8
        } else {
            self.link_free = start + serialise;
            self.link_free + self.path.rtt
        };
        self.events
            .push(Reverse((when, self.seq, dropped, self.now)));
        self.seq += 1;
    }

    /// Runs until `until`, offering `load`; returns bytes delivered in that time.
    fn run(&mut self, until: Duration, load: Load) -> u64 {
        let before = self.delivered;
        self.app_limited = matches!(load, Load::Every(_));
        while self.now < until {
            self.offer(load);
            let next_event = self.events.peek().map(|Reverse(e)| e.0);
            let next = match load {
                Load::Bulk => next_event,
                Load::Every(_) => {
                    Some(next_event.map_or(self.next_send, |e| e.min(self.next_send)))
                }
            };
            let Some(next) = next else { break };
            self.now = next.max(self.now);
            self.deliver();
        }
        self.delivered - before
    }

    fn offer(&mut self, load: Load) {
        match load {
            Load::Bulk => {
                while self.in_flight + MSS <= self.cc.window() {
                    self.send_one();
                }
            }
            Load::Every(gap) if self.now >= self.next_send => {
                self.send_one();
                self.next_send = self.now + gap;
            }
            Load::Every(_) => {}
        }
    }

    fn deliver(&mut self) {
        let at = self.t0 + self.now;
        let mut any = false;
        while let Some(&Reverse((when, _, dropped, sent))) = self.events.peek() {
            if when > self.now {
                break;
            }
            self.events.pop();
            self.in_flight -= MSS;
            if dropped {
                self.lost += MSS;
                self.cc.on_congestion_event(at, self.t0 + sent, false, MSS);
            } else {
                self.delivered += MSS;
                self.cc.ack(at, self.t0 + sent, MSS);
                any = true;
            }
        }
        if any {
            self.cc.end_acks(at, self.in_flight, self.app_limited);
        }
    }
}

fn mbit(bytes: u64, over: Duration) -> f64 {
    bytes as f64 * 8.0 / over.as_secs_f64() / 1e6
}

#[test]
fn startup_finds_the_bottleneck_and_settles_in_probe_bw() {
    let mut sim = Sim::new(Path::wan());
    sim.run(Duration::from_secs(3), Load::Bulk);
    assert!(
        matches!(sim.cc.mode(), Mode::ProbeBw { .. }),
        "{:?}",
        sim.cc.mode()
    );
    let bw = sim.cc.bandwidth() as f64 / 25e6;
    assert!(
        (0.9..1.15).contains(&bw),
        "bandwidth estimate {bw:.2} of the bottleneck"
    );
    let rtt = sim.cc.min_rtt().expect("min rtt");
    assert!(
        rtt >= Duration::from_millis(40) && rtt < Duration::from_millis(42),
        "{rtt:?}"
    );
    let moved = sim.run(Duration::from_secs(8), Load::Bulk);
    let rate = mbit(moved, Duration::from_secs(5));
    assert!(rate > 180.0, "{rate:.1} Mbit/s of 200");
    // The window stays near one BDP (1 MB): the queue, and every stream's delay, stay small.
    assert!(sim.cc.window() < 1_500_000, "window {}", sim.cc.window());
}

#[test]
fn one_percent_random_loss_does_not_shrink_it() {
    let mut sim = Sim::new(Path {
        loss: 0.01,
        ..Path::wan()
    });
    sim.run(Duration::from_secs(3), Load::Bulk);
    let moved = sim.run(Duration::from_secs(13), Load::Bulk);
    let rate = mbit(moved, Duration::from_secs(10));
    assert!(rate > 170.0, "{rate:.1} Mbit/s of 200 at 1% loss");
    // Startup may overflow the queue and set a cap; random loss never lowers it below a BDP.
    let cap = sim.cc.inflight_cap();
    assert!(
        sim.lost > 0 && cap.is_none_or(|c| c >= 1_000_000),
        "cap {cap:?}"
    );
}

#[test]
fn a_lossy_round_from_a_full_queue_caps_the_window() {
    // A queue of a tenth of a BDP overflows in every probe above the model.
    let path = Path {
        queue: 100_000,
        ..Path::wan()
    };
    let mut sim = Sim::new(path);
    sim.run(Duration::from_secs(2), Load::Bulk);
    assert!(
        sim.cc.inflight_cap().is_some(),
        "no cap after overflow losses"
    );
    let moved = sim.run(Duration::from_secs(7), Load::Bulk);
    let rate = mbit(moved, Duration::from_secs(5));
    let loss = sim.lost as f64 / (sim.lost + sim.delivered) as f64;
    assert!(rate > 150.0, "{rate:.1} Mbit/s");
    assert!(
        loss < 0.05,
        "loss {loss:.3}: the cap should stop repeated overflows"
    );
}

#[test]
fn an_app_limited_sender_keeps_a_small_window() {
    // One datagram every 5 ms (2 Mbit/s) on a 200 Mbit/s path for a minute.
    let mut sim = Sim::new(Path::wan());
    sim.run(
        Duration::from_secs(60),
        Load::Every(Duration::from_millis(5)),
    );
    assert_eq!(
        sim.cc.mode(),
        Mode::Startup,
        "an app-limited flow never fills the pipe"
    );
    assert!(
        sim.cc.window() <= 3 * BbrSettings::default().initial_window,
        "window {} grew without being used",
        sim.cc.window()
    );
    // Turned bulk, it still finds the bottleneck.
    let moved = sim.run(Duration::from_secs(66), Load::Bulk);
    assert!(mbit(moved, Duration::from_secs(6)) > 150.0);
}

#[test]
fn a_path_whose_delay_rose_is_learnt_within_a_gain_cycle() {
    let mut sim = Sim::new(Path::wan());
    sim.run(Duration::from_secs(3), Load::Bulk);
    sim.path.rtt = Duration::from_millis(100);
    sim.run(Duration::from_secs(5), Load::Bulk);
    let rtt = sim.cc.min_rtt().expect("min rtt");
    assert!(rtt >= Duration::from_millis(100), "still believes {rtt:?}");
    let moved = sim.run(Duration::from_secs(8), Load::Bulk);
    let rate = mbit(moved, Duration::from_secs(3));
    assert!(rate > 170.0, "{rate:.1} Mbit/s after the RTT rose");
}

#[test]
fn persistent_congestion_restarts_from_the_minimum_window() {
    let mut sim = Sim::new(Path::wan());
    sim.run(Duration::from_secs(2), Load::Bulk);
    let at = sim.t0 + sim.now;
    sim.cc.on_congestion_event(at, at, true, 100 * MSS);
    assert_eq!(sim.cc.mode(), Mode::Startup);
    assert_eq!(sim.cc.window(), 4 * MSS);
    assert_eq!(sim.cc.bandwidth(), 0);
}

#[test]
fn send_records_are_given_back_when_the_flow_goes_quiet() {
    let mut sim = Sim::new(Path::wan());
    sim.run(Duration::from_secs(2), Load::Bulk);
    let (held, cap) = sim.cc.records();
    assert!(held > 100 && cap >= held, "{held} / {cap}");
    // Everything in flight is acknowledged or declared lost; the next batch shrinks it.
    sim.run(Duration::from_secs(3), Load::Every(Duration::from_secs(1)));
    let (held, cap) = sim.cc.records();
    assert!(held <= 1 && cap <= 64, "{held} / {cap}");
}

#[test]
fn the_bandwidth_filter_forgets_after_ten_rounds() {
    let mut f = MaxFilter::default();
    f.update(1, 500);
    f.update(2, 100);
    assert_eq!(f.get(), 500);
    f.update(10, 90);
    assert_eq!(f.get(), 500);
    f.update(11, 80);
    assert_eq!(f.get(), 100, "round 1 left the window");
    f.update(40, 7);
    assert_eq!(f.get(), 7, "a long gap forgets everything");
}

#[test]
fn min_rtt_expires_and_a_probe_takes_its_lowest_sample() {
    let t0 = Instant::now();
    let mut m = MinRtt::new(t0);
    m.sample(t0, Duration::from_millis(40));
    m.sample(t0 + Duration::from_secs(5), Duration::from_millis(90));
    assert_eq!(m.get(), Some(Duration::from_millis(40)));
    let later = t0 + Duration::from_secs(11);
    assert!(m.expired(later, Duration::from_secs(10)));
    m.start_probe();
    m.sample(later, Duration::from_millis(95));
    m.sample(later, Duration::from_millis(92));
    m.end_probe(later);
    assert_eq!(m.get(), Some(Duration::from_millis(92)));
    assert!(!m.expired(later, Duration::from_secs(10)));
}

#[test]
fn rate_samples_use_the_longer_of_the_send_and_ack_intervals() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut s = Sampler::new(t0);
    for i in 0..10 {
        s.on_sent(t0 + ms(i));
    }
    // All ten acknowledged at once 50 ms after the first left (ack compression).
    for i in 0..10 {
        s.on_ack(t0 + ms(50), t0 + ms(i), 1000);
    }
    let sample = s.end_batch(t0 + ms(50), ms(40)).expect("a sample");
    // 10,000 bytes over the 50 ms ack interval, not over a zero-length burst.
    assert_eq!(sample.rate, 200_000);
    assert!(!sample.app_limited);
    s.mark_app_limited(0);
    s.on_sent(t0 + ms(60));
    s.on_ack(t0 + ms(100), t0 + ms(60), 1000);
    let sample = s.end_batch(t0 + ms(100), ms(40)).expect("a sample");
    assert!(sample.app_limited);
}

#[test]
fn the_config_names_the_three_controllers() {
    #[derive(serde::Deserialize)]
    struct C {
        cc: CongestionControl,
    }
    for name in ["bbr", "cubic", "newreno"] {
        let c: C = toml::from_str(&format!("cc = \"{name}\"")).expect(name);
        assert_eq!(c.cc.as_str(), name);
        let _ = c.cc.factory();
    }
    let e = toml::from_str::<C>("cc = \"vegas\"")
        .err()
        .expect("refused");
    assert!(e.to_string().contains("bbr"), "{e}");
    assert_eq!(CongestionControl::default(), CongestionControl::Bbr);
}
