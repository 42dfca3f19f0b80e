//! Which QUIC handshakes frps takes on, and what it counts and logs about the others.
//!
//! An Initial packet is cheap to send and can carry any source address, so until a client's
//! address is proven (by a QUIC Retry: the client must echo a token sent to that address) it
//! may hold only a little state, for a short time:
//!
//! - from an unproven address a handshake is taken on only while fewer than
//!   [`RETRY_THRESHOLD`] are under way in all and fewer than `maxHandshakesPerIP` from that
//!   address (IPv4 address or IPv6 /64); otherwise the client gets a Retry, which costs one
//!   small packet and no state (`retry = "always"`: every client does; `"never"`: it is
//!   ignored instead), and it has `handshakeTimeout` to finish;
//! - a proven address has its own `maxHandshakesPerIP` (a spoofer cannot use up a real
//!   client's), beyond which its Initials are ignored (nothing is sent), and all handshakes
//!   together stop at [`MAX_HANDSHAKES`] (more proven ones are refused).
//!
//! Every decision is counted in [`HandshakeStats`]; warnings about them are rate-limited, so
//! a flood cannot flood the log.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frp_runtime::handshake::{HandshakeLimits, RefusedBy, RetryMode, TlsRefusal};
use quinn::ConnectionError;
use tracing::{debug, warn};

/// Handshakes that may be under way at once, all addresses together.
pub const MAX_HANDSHAKES: usize = 1024;
/// Handshakes under way from which `retry = "auto"` sends every unproven client a Retry.
pub const RETRY_THRESHOLD: usize = 64;
/// Each kind of warning is written at most this many times per [`LOG_WINDOW`].
const LOG_BURST: u32 = 5;
/// See [`LOG_BURST`].
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// What happens to one connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Start the handshake.
    Accept,
    /// Send a Retry: no state is kept.
    Retry,
    /// Send nothing, keep nothing.
    Ignore,
    /// Tell the (proven) client the server is busy.
    Refuse,
}

/// The decision for an attempt, given the handshakes under way in all (`total`) and from its
/// address (`[unproven, proven]`).
fn decide(limits: &HandshakeLimits, total: usize, from_ip: [u32; 2], validated: bool) -> Verdict {
    if validated {
        return if from_ip[1] >= limits.per_ip {
            Verdict::Ignore
        } else if total >= MAX_HANDSHAKES {
            Verdict::Refuse
        } else {
            Verdict::Accept
        };
    }
    let crowded = total >= RETRY_THRESHOLD || from_ip[0] >= limits.per_ip;
    match limits.retry {
        RetryMode::Always => Verdict::Retry,
        RetryMode::Auto if crowded => Verdict::Retry,
        RetryMode::Never if from_ip[0] >= limits.per_ip || total >= MAX_HANDSHAKES => {
            Verdict::Ignore
        }
        RetryMode::Auto | RetryMode::Never => Verdict::Accept,
    }
}

/// Counts of what happened to connection attempts since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeCounts {
    /// Handshakes under way now.
    pub under_way: u64,
    /// Handshakes started.
    pub accepted: u64,
    /// Retries sent.
    pub retried: u64,
    /// Attempts ignored (over the per-address limit).
    pub ignored: u64,
    /// Attempts refused (all handshake slots taken).
    pub refused: u64,
    /// Handshakes that ended in a TLS refusal, by either side.
    pub tls_refused: u64,
    /// Handshakes that took too long.
    pub timed_out: u64,
    /// Handshakes that failed otherwise (the client gave up, a malformed packet).
    pub failed: u64,
    /// Handshakes completed.
    pub completed: u64,
}

/// Live handshake counters, for tests and metrics; clones share them.
#[derive(Clone, Debug, Default)]
pub struct HandshakeStats(Arc<[AtomicU64; 9]>);

/// Index of each counter in [`HandshakeStats`], in [`HandshakeCounts`] field order.
#[derive(Clone, Copy, Debug)]
enum Count {
    UnderWay,
    Accepted,
    Retried,
    Ignored,
    Refused,
    TlsRefused,
    TimedOut,
    Failed,
    Completed,
}

impl HandshakeStats {
    /// The counts now.
    pub fn snapshot(&self) -> HandshakeCounts {
        let c = |i: Count| self.0[i as usize].load(Ordering::Relaxed);
        HandshakeCounts {
            under_way: c(Count::UnderWay),
            accepted: c(Count::Accepted),
            retried: c(Count::Retried),
            ignored: c(Count::Ignored),
            refused: c(Count::Refused),
            tls_refused: c(Count::TlsRefused),
            timed_out: c(Count::TimedOut),
            failed: c(Count::Failed),
            completed: c(Count::Completed),
        }
    }

    fn add(&self, i: Count) {
        self.0[i as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn sub(&self, i: Count) {
        self.0[i as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Handshakes under way: in all, and per address `[unproven, proven]`.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    per_ip: HashMap<IpAddr, [u32; 2]>,
}

/// The key handshakes are counted under: an IPv4 address, or an IPv6 /64.
fn ip_key(addr: SocketAddr) -> IpAddr {
    match addr.ip().to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Decides on connection attempts and keeps count of the handshakes under way.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: HandshakeLimits,
    table: Arc<Mutex<Table>>,
    stats: HandshakeStats,
    logs: Logs,
}

/// One handshake's place in the count; released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    table: Arc<Mutex<Table>>,
    stats: HandshakeStats,
    key: IpAddr,
    validated: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.total = t.total.saturating_sub(1);
        if let Some(counts) = t.per_ip.get_mut(&self.key) {
            let c = &mut counts[usize::from(self.validated)];
            *c = c.saturating_sub(1);
            if *counts == [0, 0] {
                t.per_ip.remove(&self.key);
            }
        }
        self.stats.sub(Count::UnderWay);
    }
}

impl Admission {
    /// Admission with `limits`, counting into `stats`.
    pub(crate) fn new(limits: HandshakeLimits, stats: HandshakeStats) -> Self {
        Self {
            limits,
            table: Arc::default(),
            stats,
            logs: Logs::default(),
        }
    }

    /// Decides on `incoming`: returns it with its slot and timeout when its handshake should
    /// start; otherwise answers it (Retry, ignore, refuse) and returns `None`.
    pub(crate) fn admit(
        &self,
        incoming: quinn::Incoming,
    ) -> Option<(quinn::Incoming, Slot, Duration)> {
        let remote = incoming.remote_address();
        let validated = incoming.remote_address_validated();
        let key = ip_key(remote);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = t.per_ip.get(&key).copied().unwrap_or_default();
        let verdict = decide(&self.limits, t.total, from_ip, validated);
        if verdict == Verdict::Accept {
            t.total += 1;
            t.per_ip.entry(key).or_default()[usize::from(validated)] += 1;
            drop(t);
            self.stats.add(Count::UnderWay);
            self.stats.add(Count::Accepted);
            let slot = Slot {
                table: Arc::clone(&self.table),
                stats: self.stats.clone(),
                key,
                validated,
            };
            return Some((incoming, slot, self.limits.timeout(validated)));
        }
        let total = t.total;
        drop(t);
        self.answer(incoming, verdict, remote, total);
        None
    }

    fn answer(
        &self,
        incoming: quinn::Incoming,
        verdict: Verdict,
        remote: SocketAddr,
        total: usize,
    ) {
        match verdict {
            Verdict::Retry => match incoming.retry() {
                Ok(()) => {
                    self.stats.add(Count::Retried);
                    if let Some(suppressed) = self.logs.retry.allow() {
                        warn!(%remote, under_way = total, suppressed, "many handshakes under way: answering new clients with a retry to prove their address");
                    }
                }
                // Only an address already proven cannot be sent a Retry; it is not unproven.
                Err(e) => e.into_incoming().ignore(),
            },
            Verdict::Ignore => {
                incoming.ignore();
                self.stats.add(Count::Ignored);
                if let Some(suppressed) = self.logs.ignored.allow() {
                    warn!(%remote, limit = self.limits.per_ip, suppressed, "ignoring handshakes from an address over transport.quic.maxHandshakesPerIP");
                }
            }
            // (`Accept` never gets here: `admit` starts those.)
            Verdict::Refuse | Verdict::Accept => {
                incoming.refuse();
                self.stats.add(Count::Refused);
                if let Some(suppressed) = self.logs.refused.allow() {
                    warn!(%remote, under_way = total, suppressed, "too many handshakes under way; refusing");
                }
            }
        }
    }

    /// Counts and logs how a started handshake ended (`None`: it timed out).
    pub(crate) fn finished(&self, remote: SocketAddr, outcome: Option<&ConnectionError>) {
        let Some(e) = outcome else {
            self.stats.add(Count::TimedOut);
            return debug!(%remote, "client handshake timed out");
        };
        let Some(r) = TlsRefusal::of(e) else {
            self.stats.add(Count::Failed);
            // The client gave up or sent garbage: unauthenticated peers can do that at will.
            return debug!(%remote, error = %e, "client handshake failed");
        };
        self.stats.add(Count::TlsRefused);
        let Some(suppressed) = self.logs.tls.allow() else {
            return;
        };
        let reason = &r.problem;
        match (r.by, r.problem.about_certificate()) {
            (RefusedBy::Us, true) => {
                warn!(%remote, %reason, suppressed, "refused a client's certificate")
            }
            (RefusedBy::Peer, true) => {
                warn!(%remote, %reason, suppressed, "a client refused this server's certificate")
            }
            _ => warn!(%remote, %reason, suppressed, "client handshake refused"),
        }
    }

    /// Counts a completed handshake.
    pub(crate) fn completed(&self) {
        self.stats.add(Count::Completed);
    }
}

/// One rate limiter per kind of warning.
#[derive(Debug, Default)]
struct Logs {
    retry: LogLimiter,
    ignored: LogLimiter,
    refused: LogLimiter,
    tls: LogLimiter,
}

/// Lets [`LOG_BURST`] lines through per [`LOG_WINDOW`] and counts the ones it holds back.
#[derive(Debug, Default)]
struct LogLimiter(Mutex<LimiterState>);

#[derive(Debug, Default)]
struct LimiterState {
    window_start: Option<Instant>,
    shown: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(lines held back since the last one shown)` when a line may be written now.
    fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.window_start.is_none_or(|start| now >= start + LOG_WINDOW) {
            s.window_start = Some(now);
            s.shown = 0;
        }
        if s.shown >= LOG_BURST {
            s.suppressed += 1;
            return None;
        }
        s.shown += 1;
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(retry: RetryMode) -> HandshakeLimits {
        HandshakeLimits {
            retry,
            per_ip: 4,
            ..HandshakeLimits::default()
        }
    }

    #[test]
    fn auto_retries_unproven_clients_once_crowded() {
        let l = limits(RetryMode::Auto);
        assert_eq!(decide(&l, 0, [0, 0], false), Verdict::Accept);
        assert_eq!(
            decide(&l, RETRY_THRESHOLD - 1, [3, 0], false),
            Verdict::Accept
        );
        assert_eq!(decide(&l, RETRY_THRESHOLD, [0, 0], false), Verdict::Retry);
        assert_eq!(decide(&l, 5, [4, 0], false), Verdict::Retry);
        // A spoofer filling an address's unproven count does not block its proven client.
        assert_eq!(decide(&l, 5, [4, 0], true), Verdict::Accept);
    }

    #[test]
    fn proven_addresses_have_their_own_cap_then_are_ignored() {
        for mode in [RetryMode::Auto, RetryMode::Always, RetryMode::Never] {
            let l = limits(mode);
            assert_eq!(decide(&l, 10, [0, 3], true), Verdict::Accept);
            assert_eq!(decide(&l, 10, [0, 4], true), Verdict::Ignore);
            assert_eq!(decide(&l, MAX_HANDSHAKES, [0, 0], true), Verdict::Refuse);
        }
    }

    #[test]
    fn always_and_never() {
        let always = limits(RetryMode::Always);
        assert_eq!(decide(&always, 0, [0, 0], false), Verdict::Retry);
        let never = limits(RetryMode::Never);
        assert_eq!(
            decide(&never, RETRY_THRESHOLD, [0, 0], false),
            Verdict::Accept
        );
        assert_eq!(decide(&never, 0, [4, 0], false), Verdict::Ignore);
        assert_eq!(
            decide(&never, MAX_HANDSHAKES, [0, 0], false),
            Verdict::Ignore
        );
    }

    #[test]
    fn addresses_are_counted_by_ipv4_address_and_ipv6_64() {
        let a = |s: &str| ip_key(s.parse().expect("socket address"));
        assert_eq!(a("192.0.2.1:1"), a("192.0.2.1:2"));
        assert_ne!(a("192.0.2.1:1"), a("192.0.2.2:1"));
        assert_eq!(a("[::ffff:192.0.2.1]:1"), a("192.0.2.1:9"));
        assert_eq!(a("[2001:db8:1:2::1]:1"), a("[2001:db8:1:2:ffff::9]:1"));
        assert_ne!(a("[2001:db8:1:2::1]:1"), a("[2001:db8:1:3::1]:1"));
    }

    #[test]
    fn the_log_limiter_holds_back_a_flood_and_counts_it() {
        let l = LogLimiter::default();
        let t0 = Instant::now();
        let shown = (0..1000).filter(|_| l.allow_at(t0).is_some()).count();
        assert_eq!(shown, LOG_BURST as usize);
        assert_eq!(
            l.allow_at(t0 + LOG_WINDOW),
            Some(1000 - u64::from(LOG_BURST))
        );
        assert_eq!(l.allow_at(t0 + LOG_WINDOW), Some(0));
    }
}
