//! The traffic history behind the dashboard's charts: bytes moved per 10-second interval over
//! the last hour, for the whole server and for each published proxy, kept in memory.
//!
//! A sampler reads the live counters every [`INTERVAL`] and stores what moved since the last
//! sample. Rings are sparse: an interval that moved nothing costs nothing, so an idle proxy
//! costs one map entry; a proxy that moved bytes in every interval of the hour costs
//! [`POINTS`] × 24 bytes (8.4 KiB) at most, and so does the server's total. A proxy's ring
//! goes when the proxy does (its client left or withdrew it); one published again starts a
//! new one. Served by `GET /api/v1/traffic` and `GET /api/v1/proxies/{name}/traffic`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use frp_admin::rfc3339;
use frp_proto::ProxyName;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::ServerApi;
use crate::registry::Registry;
use crate::stats::ProxyStats;

/// One point per this much time.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Points kept: one hour.
pub const POINTS: u64 = 360;

/// Bytes moved: visitors to services (`in`) and back (`out`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bytes {
    into: u64,
    out: u64,
}

impl Bytes {
    fn since(self, earlier: Self) -> Self {
        Self {
            into: self.into.saturating_sub(earlier.into),
            out: self.out.saturating_sub(earlier.out),
        }
    }

    fn is_zero(self) -> bool {
        self.into == 0 && self.out == 0
    }
}

/// One series: the intervals (by number) that moved bytes, oldest first, and the counters
/// as the last sample saw them.
#[derive(Debug, Default)]
struct Ring {
    points: Vec<(u64, Bytes)>,
    seen: Bytes,
}

impl Ring {
    /// Records interval `tick`, which ends with the counters at `now`.
    fn record(&mut self, tick: u64, now: Bytes) {
        let moved = now.since(self.seen);
        self.seen = now;
        let oldest = tick.saturating_sub(POINTS - 1);
        let stale = self.points.iter().take_while(|(t, _)| *t < oldest).count();
        self.points.drain(..stale);
        if !moved.is_zero() {
            // Grown one point at a time: the bound above is what it holds, not twice that.
            self.points.reserve_exact(1);
            self.points.push((tick, moved));
        }
    }

    /// Every interval of the window up to `tick` (zeros filled in), then `moving`, what the
    /// interval under way has moved so far.
    fn series(&self, tick: u64, moving: Bytes) -> Vec<Bytes> {
        let first = tick.saturating_sub(POINTS - 1).max(1);
        let mut out = vec![Bytes::default(); (tick + 1 - first) as usize];
        for (t, b) in self
            .points
            .iter()
            .filter(|(t, _)| *t >= first && *t <= tick)
        {
            out[(t - first) as usize] = *b;
        }
        out.push(moving);
        out
    }
}

/// Which proxy a ring belongs to: its client's key and name.
type ProxyKey = (String, ProxyName);

#[derive(Debug, Default)]
struct State {
    /// Intervals completed since the start.
    tick: u64,
    total: Ring,
    proxies: HashMap<ProxyKey, (Weak<ProxyStats>, Ring)>,
}

/// The server's and every proxy's history.
#[derive(Debug)]
pub struct History {
    started: SystemTime,
    state: Mutex<State>,
}

/// `GET /api/v1/traffic`: bytes per interval, oldest first; the last point is the interval
/// under way (it ends now).
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// The length of one interval.
    pub interval_seconds: u64,
    /// The intervals.
    pub points: Vec<Point>,
}

/// One interval.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// When it ended (RFC 3339).
    pub at: Option<String>,
    /// Bytes from visitors to services during it.
    pub bytes_in: u64,
    /// Bytes back to visitors during it.
    pub bytes_out: u64,
}

impl Default for History {
    fn default() -> Self {
        Self {
            started: SystemTime::now(),
            state: Mutex::default(),
        }
    }
}

impl History {
    /// Samples `api`'s server every [`INTERVAL`] until `stop` is cancelled or `api` is gone.
    pub async fn sample(api: Weak<ServerApi>, stop: CancellationToken) {
        let start = tokio::time::Instant::now() + INTERVAL;
        let mut every = tokio::time::interval_at(start, INTERVAL);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Some(api) = api.upgrade() else {
                return;
            };
            api.history.record(&api.shared.registry);
        }
    }

    /// Ends an interval: stores what every proxy and the server moved in it.
    pub fn record(&self, registry: &Registry) {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        let mut live: HashMap<ProxyKey, (Weak<ProxyStats>, Ring)> = HashMap::new();
        let mut total = Bytes::default();
        let proxies = &mut state.proxies;
        let (into, out) = registry.each_proxy(|client, stats| {
            let now = counters(stats);
            total.into += now.into;
            total.out += now.out;
            let key = (client.to_string(), stats.name.clone());
            let (was, mut ring) = proxies.remove(&key).unwrap_or_default();
            if !std::ptr::eq(was.as_ptr(), Arc::as_ptr(stats)) {
                // Published again: new counters, the same series.
                ring.seen = Bytes::default();
            }
            ring.record(tick, now);
            live.insert(key, (Arc::downgrade(stats), ring));
        });
        total.into += into;
        total.out += out;
        state.proxies = live;
        state.total.record(tick, total);
    }

    /// The server's total.
    pub fn total(&self, registry: &Registry) -> Series {
        let (into, out) = registry.traffic();
        let now = Bytes { into, out };
        let state = self.lock();
        let moving = now.since(state.total.seen);
        self.series(state.tick, state.total.series(state.tick, moving))
    }

    /// The published proxy `stats` of the client whose key is `client`.
    pub fn proxy(&self, client: &str, stats: &ProxyStats) -> Series {
        let state = self.lock();
        let key = (client.to_string(), stats.name.clone());
        let now = counters(stats);
        let empty = Ring::default();
        let points = match state.proxies.get(&key) {
            Some((was, ring)) if std::ptr::eq(was.as_ptr(), stats) => {
                ring.series(state.tick, now.since(ring.seen))
            }
            // Published again since the last sample: all its counters are new.
            Some((_, ring)) => ring.series(state.tick, now),
            None => empty.series(state.tick, now),
        };
        self.series(state.tick, points)
    }

    fn series(&self, tick: u64, points: Vec<Bytes>) -> Series {
        let first = tick.saturating_sub(POINTS - 1).max(1);
        let end_of = |t: u64| self.started + INTERVAL * u32::try_from(t).unwrap_or(u32::MAX);
        let count = points.len();
        let points = points.into_iter().enumerate().map(|(i, b)| Point {
            at: match i + 1 == count {
                true => rfc3339(SystemTime::now()),
                false => rfc3339(end_of(first + i as u64)),
            },
            bytes_in: b.into,
            bytes_out: b.out,
        });
        Series {
            interval_seconds: INTERVAL.as_secs(),
            points: points.collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn counters(stats: &ProxyStats) -> Bytes {
    Bytes {
        into: stats.bytes_in(),
        out: stats.bytes_out(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b(into: u64, out: u64) -> Bytes {
        Bytes { into, out }
    }

    #[test]
    fn a_ring_stores_what_moved_per_interval_and_skips_quiet_ones() {
        let mut r = Ring::default();
        r.record(1, b(100, 10));
        r.record(2, b(100, 10));
        r.record(3, b(250, 30));
        assert_eq!(r.points, [(1, b(100, 10)), (3, b(150, 20))]);
        let s = r.series(3, b(260, 30).since(r.seen));
        assert_eq!(s, [b(100, 10), b(0, 0), b(150, 20), b(10, 0)]);
    }

    #[test]
    fn a_ring_holds_one_hour_and_no_more() {
        let mut r = Ring::default();
        for t in 1..=1000 {
            r.record(t, b(t, t));
        }
        assert_eq!(r.points.len() as u64, POINTS);
        assert_eq!(r.points[0].0, 1000 - POINTS + 1);
        assert!(r.points.capacity() as u64 <= POINTS + 1);
        let s = r.series(1000, b(0, 0));
        assert_eq!(s.len() as u64, POINTS + 1);
        assert!(s[..POINTS as usize].iter().all(|p| *p == b(1, 1)));
        assert_eq!(s[POINTS as usize], b(0, 0));
    }

    #[test]
    fn counters_that_went_back_count_nothing() {
        let mut r = Ring::default();
        r.record(1, b(500, 500));
        r.record(2, b(10, 10));
        assert_eq!(r.points, [(1, b(500, 500))]);
        assert_eq!(r.seen, b(10, 10));
    }
}
