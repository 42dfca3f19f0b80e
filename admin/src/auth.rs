//! Basic auth for the admin server: constant-time checks and a per-address backoff.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::config::Credentials;

/// Failed attempts from one address before it has to wait.
pub const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with every further failure.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// A failure older than this is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Addresses tracked at once; past this, the stalest entries are dropped.
const MAX_TRACKED: usize = 4096;

/// The credentials as SHA-256 digests, so comparing takes the same time whatever the length
/// or the first differing byte of a guess.
#[derive(Debug)]
pub struct Checker {
    user: [u8; 32],
    password: [u8; 32],
}

impl Checker {
    /// A checker for `c`.
    pub fn new(c: &Credentials) -> Self {
        Self {
            user: digest(c.user.as_bytes()),
            password: digest(c.password.as_bytes()),
        }
    }

    /// Whether an `Authorization` header value carries these credentials (`Basic` scheme).
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let user_ok = digest(&user).ct_eq(&self.user);
        let password_ok = digest(&password).ct_eq(&self.password);
        (user_ok & password_ok).into()
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// `Basic base64(user:password)` to its two halves.
fn parse_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 1024 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Failed logins per client address (an IPv4 address or an IPv6 /64): after
/// [`FREE_FAILURES`], further attempts wait 1 s, 2 s, 4 s ... up to 5 minutes, during which
/// they are answered `429` without looking at the password.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// What a failure did to the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Still within the free attempts.
    Counted,
    /// The address must now wait this long; the first of a burst (log it once).
    Blocked(Duration),
    /// The address was blocked already and waits longer now.
    Extended(Duration),
}

impl Backoff {
    /// How long `ip` must still wait before its next attempt is looked at, if at all.
    pub fn wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let until = entries.get(&key(ip))?.blocked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Failure {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&key(ip)) {
            evict(&mut entries, now);
        }
        let e = entries.entry(key(ip)).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(e.last) > FORGET_AFTER {
            *e = Entry {
                failures: 0,
                last: now,
                blocked_until: None,
            };
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures <= FREE_FAILURES {
            return Failure::Counted;
        }
        let doublings = (e.failures - FREE_FAILURES - 1).min(16);
        let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
        let was_blocked = e.blocked_until.is_some();
        e.blocked_until = Some(now + wait);
        if was_blocked {
            Failure::Extended(wait)
        } else {
            Failure::Blocked(wait)
        }
    }

    /// Forgets the failures of `ip` after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key(ip));
    }
}

/// Drops forgotten entries, and if that is not enough, the least recently seen half.
fn evict(entries: &mut HashMap<IpAddr, Entry>, now: Instant) {
    entries.retain(|_, e| now.duration_since(e.last) <= FORGET_AFTER);
    if entries.len() < MAX_TRACKED {
        return;
    }
    let mut seen: Vec<Instant> = entries.values().map(|e| e.last).collect();
    seen.sort_unstable();
    let cutoff = seen[seen.len() / 2];
    entries.retain(|_, e| e.last > cutoff);
}

/// IPv4 addresses as they are, IPv6 by /64 (one host's usual share).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6([s[0], s[1], s[2], s[3], 0, 0, 0, 0].into())
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn basic(s: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        format!("Basic {b64}").into_bytes()
    }

    #[test]
    fn checks_user_and_password() {
        let c = Checker::new(&Credentials {
            user: "admin".into(),
            password: "p:w".into(),
        });
        assert!(c.accepts(Some(&basic("admin:p:w"))));
        assert!(c.accepts(Some(b"basic YWRtaW46cDp3")));
        for bad in ["admin:p", "admin:p:w ", "Admin:p:w", ":p:w", "adminp:w", ""] {
            assert!(!c.accepts(Some(&basic(bad))), "{bad}");
        }
        assert!(!c.accepts(None));
        assert!(!c.accepts(Some(b"Bearer x")));
        assert!(!c.accepts(Some(b"Basic !!!")));
    }

    #[test]
    fn failures_back_off_per_address_and_success_forgets() {
        let b = Backoff::default();
        let (a, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(b.failed(a, t), Failure::Counted);
        }
        assert_eq!(b.wait(a, t), None);
        assert_eq!(b.failed(a, t), Failure::Blocked(Duration::from_secs(1)));
        assert_eq!(b.wait(a, t), Some(Duration::from_secs(1)));
        assert_eq!(b.failed(a, t), Failure::Extended(Duration::from_secs(2)));
        assert_eq!(b.wait(other, t), None);
        assert_eq!(b.wait(a, t + Duration::from_secs(3)), None);
        b.succeeded(a);
        assert_eq!(b.failed(a, t), Failure::Counted);
    }

    #[test]
    fn ipv6_counts_by_64_and_memory_is_bounded() {
        let b = Backoff::default();
        let t = Instant::now();
        for i in 0..=FREE_FAILURES {
            let ip: IpAddr = format!("2001:db8::{i}").parse().unwrap();
            b.failed(ip, t);
        }
        assert!(b.wait("2001:db8::ffff".parse().unwrap(), t).is_some());
        for i in 0..(MAX_TRACKED as u32 * 2) {
            b.failed(
                IpAddr::V4(i.into()),
                t + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(b.entries.lock().unwrap().len() <= MAX_TRACKED);
    }
}
