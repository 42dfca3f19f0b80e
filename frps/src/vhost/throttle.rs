//! Backoff for wrong basic-auth passwords, per visitor address: after `vhostAuthMaxFailures`
//! wrong passwords from one IPv4 address or IPv6 /64 (each less than [`FAILURE_WINDOW`] after
//! the previous one), every request from it that needs a password gets `429` with
//! `Retry-After` for a while, without its password being checked, so guessing learns nothing.
//! The wait starts at one second and doubles with each further burst, up to
//! `vhostAuthMaxBackoff`; a source that sends no wrong password for that long starts afresh.
//!
//! Memory is bounded: addresses live in two generations of at most [`GENERATION`] entries;
//! when the newer one is full the older one is dropped (an address seen again moves to the
//! newer one), so an attacker with many addresses evicts old entries but cannot grow the map.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Wrong passwords further apart than this do not add up.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The first wait.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Addresses kept per generation (two generations: at most twice this many, ~50 bytes each).
pub const GENERATION: usize = 16_384;

/// The address a failure counts against: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// What one source did lately.
#[derive(Clone, Copy, Debug)]
struct State {
    failures: u32,
    bursts: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<Source, State>,
    previous: HashMap<Source, State>,
}

impl Generations {
    /// The state of `source`, moved to the current generation.
    fn get(&mut self, source: Source) -> Option<&mut State> {
        if !self.current.contains_key(&source) {
            let state = self.previous.remove(&source)?;
            self.insert(source, state);
        }
        self.current.get_mut(&source)
    }

    fn insert(&mut self, source: Source, state: State) {
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(source, state);
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// Wrong passwords per source, and who must wait (see the module docs).
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    max_backoff: Duration,
    sources: Mutex<Generations>,
}

impl AuthThrottle {
    /// `max_failures` wrong passwords start a wait of at most `max_backoff`.
    pub fn new(max_failures: u32, max_backoff: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            max_backoff,
            sources: Mutex::default(),
        }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `ip` must still wait, if it must.
    pub fn wait(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut sources = self.sources();
        let until = sources.get(Source::of(ip))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a wrong password from `ip`; the wait it starts, when it starts one (once per
    /// burst: the caller logs it).
    pub fn failed(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let source = Source::of(ip);
        let mut sources = self.sources();
        let fresh = State {
            failures: 0,
            bursts: 0,
            last: now,
            blocked_until: None,
        };
        if sources.get(source).is_none() {
            sources.insert(source, fresh);
        }
        let state = sources.get(source)?;
        let quiet = now.saturating_duration_since(state.last);
        if quiet > self.max_backoff {
            *state = fresh;
        } else if quiet > FAILURE_WINDOW {
            state.failures = 0;
        }
        state.last = now;
        state.failures += 1;
        if state.failures < self.max_failures {
            return None;
        }
        state.failures = 0;
        state.bursts = state.bursts.saturating_add(1);
        let doublings = state.bursts.saturating_sub(1).min(31);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        state.blocked_until = Some(now + backoff);
        Some(backoff)
    }

    /// Sources tracked (for tests).
    pub fn tracked(&self) -> usize {
        self.sources().len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_failures_starts_a_doubling_wait() {
        let t = AuthThrottle::new(3, Duration::from_secs(600));
        let a = ip("192.0.2.1");
        assert_eq!((t.failed(a), t.failed(a)), (None, None));
        assert_eq!(t.wait(a), None, "two failures are not a burst");
        assert_eq!(t.failed(a), Some(Duration::from_secs(1)), "logged once");
        assert_eq!(t.wait(a), Some(Duration::from_secs(1)));
        assert_eq!(
            t.wait(ip("192.0.2.2")),
            None,
            "other addresses are not held"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(t.wait(a), None, "the wait is over");
        for want in [2, 4, 8] {
            assert_eq!((t.failed(a), t.failed(a)), (None, None));
            assert_eq!(t.failed(a), Some(Duration::from_secs(want)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_capped_and_forgotten() {
        let t = AuthThrottle::new(1, Duration::from_secs(5));
        let a = ip("2001:db8::1");
        for want in [1, 2, 4, 5, 5] {
            assert_eq!(t.failed(a), Some(Duration::from_secs(want)));
        }
        assert!(
            t.wait(ip("2001:db8::ffff")).is_some(),
            "one /64 is one source"
        );
        assert!(t.wait(ip("2001:db8:0:1::1")).is_none());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(t.failed(a), Some(Duration::from_secs(1)), "afresh");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_far_apart_do_not_add_up() {
        let t = AuthThrottle::new(2, Duration::from_secs(600));
        let a = ip("192.0.2.1");
        assert_eq!(t.failed(a), None);
        tokio::time::advance(FAILURE_WINDOW + Duration::from_secs(1)).await;
        assert_eq!(t.failed(a), None);
        assert!(t.failed(a).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn many_addresses_cannot_grow_the_map() {
        let t = AuthThrottle::new(1, Duration::from_secs(600));
        for n in 0..(3 * GENERATION as u32) {
            t.failed(IpAddr::V4(n.into()));
        }
        assert!(t.tracked() <= 2 * GENERATION, "{}", t.tracked());
        let last = IpAddr::V4((3 * GENERATION as u32 - 1).into());
        assert!(t.wait(last).is_some(), "recent sources are kept");
    }
}
