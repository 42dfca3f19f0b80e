//! Which tunneled streams go first when several have data to send in one connection.
//!
//! Interactive streams (an SSH session, a keep-alive HTTP request, a `kubectl exec`) write
//! little and wait for an answer; a bulk one (an `scp`, an image pull) writes as fast as the
//! window lets it. quinn sends higher-priority streams' data first, so a stream starts at the
//! default priority and drops to [`BULK`] once it has written [`BULK_AFTER`] bytes without
//! pausing for [`QUIET`]; after such a pause it is interactive again. A ping beside a transfer
//! then waits only for the packets already in flight, not behind the transfer's send buffer.
//! The control stream never writes much, so it stays ahead of every bulk stream.

use std::time::{Duration, Instant};

/// quinn's default stream priority: what new and interactive streams have.
pub const INTERACTIVE: i32 = 0;
/// Priority of a stream that is moving bulk data.
pub const BULK: i32 = -1;
/// Bytes written in one burst after which a stream counts as bulk (a few initial windows: a
/// web page or an API answer stays interactive).
pub const BULK_AFTER: u64 = 256 * 1024;
/// A pause this long between writes ends a burst.
pub const QUIET: Duration = Duration::from_millis(100);

/// Tracks one stream's writes and says when its priority should change.
#[derive(Clone, Copy, Debug, Default)]
pub struct Burst {
    bytes: u64,
    last: Option<Instant>,
    bulk: bool,
}

impl Burst {
    /// Counts `n` bytes written at `now`; returns the priority to set when it changes.
    pub fn wrote(&mut self, now: Instant, n: u64) -> Option<i32> {
        let paused = self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) >= QUIET);
        self.last = Some(now);
        if paused {
            self.bytes = 0;
        }
        self.bytes = self.bytes.saturating_add(n);
        let bulk = self.bytes > BULK_AFTER;
        if bulk == self.bulk {
            return None;
        }
        self.bulk = bulk;
        Some(if bulk { BULK } else { INTERACTIVE })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_burst_becomes_bulk_and_a_pause_makes_it_interactive_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = Burst::default();
        // Small writes with pauses between them never change anything.
        for i in 0..100 {
            assert_eq!(b.wrote(t0 + ms(200 * i), 4096), None);
        }
        let t1 = t0 + ms(30_000);
        let mut changes = vec![];
        for i in 0..10 {
            changes.extend(b.wrote(t1 + ms(i), 64 * 1024));
        }
        assert_eq!(changes, [BULK], "demoted once, after 256 KiB");
        assert_eq!(b.wrote(t1 + ms(50), 64 * 1024), None, "still in the burst");
        assert_eq!(b.wrote(t1 + ms(150), 100), Some(INTERACTIVE), "after a pause");
        assert_eq!(b.wrote(t1 + ms(151), 100), None);
    }
}
