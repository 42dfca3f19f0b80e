//! When a newer connection of an identity may take over the live one: flapping detection.
//!
//! A client that reconnects after a network change replaces its own older connection, which
//! the server may not have seen die yet: that takeover is allowed at once. Two frpc sharing
//! one certificate (a DaemonSet with one Secret) replace each other in a loop instead, and
//! every route with them flaps. So takeovers of a live connection are counted per identity:
//! once `limit` happened within [`WINDOW`], the next one is refused (the holder keeps its
//! connection and its routes), and so is every further one until no competing connection of
//! that identity has tried for [`QUIET`]. A connection whose holder is gone is never a
//! takeover, so a dead holder (freed by the QUIC idle timeout) never locks its client out.
//!
//! A refused connection is closed with [`CloseCode::IdentityInUse`] and a reason naming the
//! holder's address, which frpc prints before it waits a minute or more.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use frp_proto::CloseCode;
use frp_runtime::link::Link as Connection;
use tracing::{info, warn};

use crate::identity::ClientId;
use crate::session::close;

/// The sliding window takeovers are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a flapping identity's takeovers stay refused after the last attempt. Longer than
/// the minute frpc waits after such a refusal, so two clients that keep trying stay apart.
pub const QUIET: Duration = Duration::from_secs(120);
/// Takeovers of one identity's live connection allowed within [`WINDOW`] by default.
pub const DEFAULT_LIMIT: usize = 3;

/// What to do with a connection that would take over a live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Replace the holder.
    Allow,
    /// Refuse: this attempt showed the identity is flapping (log it loudly, once).
    Tripped,
    /// Refuse: the identity was already found flapping and is still contested.
    Refused,
}

/// Why a connection may not take over its identity's live one.
#[derive(Debug)]
pub struct Contested {
    /// The live connection's address.
    pub holder: SocketAddr,
    /// Whether this attempt is the one that showed the identity flapping.
    pub tripped: bool,
}

#[derive(Debug, Default)]
struct History {
    /// When the recent takeovers happened, oldest first (at most `limit`).
    recent: VecDeque<Instant>,
    /// While in the future, takeovers are refused.
    pinned_until: Option<Instant>,
}

/// Recent takeovers by identity key.
#[derive(Debug, Default)]
pub struct Takeovers {
    by_identity: HashMap<String, History>,
}

impl Takeovers {
    /// Decides on a connection of `key` that would replace its live holder at `now`, when
    /// `limit` takeovers are allowed within [`WINDOW`].
    pub fn attempt(&mut self, key: &str, now: Instant, limit: usize) -> Verdict {
        self.forget_stale(now);
        let h = self.by_identity.entry(key.to_string()).or_default();
        while h.recent.front().is_some_and(|t| now - *t >= WINDOW) {
            h.recent.pop_front();
        }
        if h.pinned_until.is_some_and(|t| t > now) {
            h.pinned_until = Some(now + QUIET);
            return Verdict::Refused;
        }
        if h.recent.len() >= limit {
            h.recent.clear();
            h.pinned_until = Some(now + QUIET);
            return Verdict::Tripped;
        }
        h.recent.push_back(now);
        Verdict::Allow
    }

    /// Drops identities with nothing recent left, so the map stays as small as the set of
    /// identities that took over within the last [`QUIET`].
    fn forget_stale(&mut self, now: Instant) {
        self.by_identity.retain(|_, h| {
            let recent = h.recent.back().is_some_and(|t| now - *t < WINDOW);
            recent || h.pinned_until.is_some_and(|t| t > now)
        });
    }
}

/// Closes a connection that may not take over its identity's live one, saying why in words
/// its operator can act on; the first refusal of a flapping identity is a warning.
pub(crate) fn refuse_takeover(conn: &Connection, identity: &ClientId, contested: &Contested) {
    let (holder, newcomer) = (contested.holder, conn.remote_address());
    if contested.tripped {
        warn!(
            client = %identity, %holder, %newcomer,
            "two connections of one identity keep replacing each other; keeping the connected \
             one and refusing the other: do two frpc share one certificate?"
        );
    } else {
        info!(client = %identity, %holder, %newcomer, "refused a takeover of a flapping identity");
    }
    let reason = format!(
        "identity {identity} is already connected from {holder}; do two frpc share one \
         certificate? give each node its own (frps ca issue NODE)"
    );
    close(conn, CloseCode::IdentityInUse, &reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_few_reconnects_take_over_and_flapping_is_refused() {
        let mut t = Takeovers::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let v = t.attempt("node1", t0 + i * SEC, DEFAULT_LIMIT);
            assert_eq!(v, Verdict::Allow, "{i}");
        }
        assert_eq!(t.attempt("node1", t0 + 3 * SEC, 3), Verdict::Tripped);
        assert_eq!(t.attempt("node1", t0 + 4 * SEC, 3), Verdict::Refused);
        assert_eq!(t.attempt("other", t0 + 4 * SEC, 3), Verdict::Allow);
    }

    #[test]
    fn takeovers_spread_over_more_than_a_minute_never_trip() {
        let mut t = Takeovers::default();
        let t0 = Instant::now();
        for i in 0..20 {
            assert_eq!(
                t.attempt("node1", t0 + i * 21 * SEC, 3),
                Verdict::Allow,
                "{i}"
            );
        }
    }

    #[test]
    fn refusals_last_while_contested_and_end_after_a_quiet_spell() {
        let mut t = Takeovers::default();
        let t0 = Instant::now();
        assert_eq!(t.attempt("n", t0, 1), Verdict::Allow);
        assert_eq!(t.attempt("n", t0 + SEC, 1), Verdict::Tripped);
        // The loser retries every 90 s (frpc waits at least a minute): still refused.
        let mut at = t0 + SEC;
        for _ in 0..5 {
            at += 90 * SEC;
            assert_eq!(t.attempt("n", at, 1), Verdict::Refused);
        }
        assert_eq!(t.attempt("n", at + QUIET, 1), Verdict::Allow);
        assert_eq!(t.by_identity.len(), 1);
        assert_eq!(t.attempt("m", at + QUIET + WINDOW, 1), Verdict::Allow);
        assert!(
            !t.by_identity.contains_key("n"),
            "stale entries are dropped"
        );
    }
}
