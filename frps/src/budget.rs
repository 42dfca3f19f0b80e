//! A client's connection budget (`maxConnectionsPerClient`), shared by its proxies so that no
//! proxy can be starved by the others.
//!
//! Every public connection a proxy carries is a QUIC stream in its client's connection, and
//! the client grants only so many at once (frpc's `transport.quic.maxIncomingStreams`,
//! 10,000 by default). frps cannot read that credit, so it keeps a budget of its own below it
//! (8,000 by default): a connection takes a [`Ticket`] before its stream is opened and gives
//! it back when the connection ends, and when none is left the connection is refused at once
//! (a reset, or `503` on the vhost port) instead of waiting for a stream that other proxies
//! hold.
//!
//! Half of the budget is reserved in equal parts for the client's proxies: each proxy may
//! always hold `min(budget / (2 × proxies), maxConnectionsPerProxy)` connections whatever the
//! others do, and beyond that takes from the shared half while it lasts. So two ports flooded
//! with idle connections take their reservations and the shared half, and the client's other
//! proxies keep theirs. A proxy's own limit (`maxConnectionsPerProxy`) is enforced here too.
//!
//! The reservations follow the number of proxies: a proxy published later shrinks the others'
//! (connections already open stay), and the budget as a whole is never exceeded.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// Default `maxConnectionsPerClient`: below frpc's default stream credit (10,000), leaving
/// room for streams that frps has closed but whose credit has not come back yet.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 8_000;

/// Why a connection got no ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    /// The proxy holds `maxConnectionsPerProxy` connections.
    #[error("too many open connections to this proxy")]
    Proxy,
    /// The proxy holds its reservation and the client's shared budget is used up.
    #[error("the client's connection budget is used up")]
    Client,
}

/// One client connection's budget; proxies [`join`](Budget::join) it.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    state: Mutex<State>,
    /// Woken whenever a ticket is given back.
    returned: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Tickets held by all proxies.
    used: usize,
    /// Proxies holding a reservation.
    members: usize,
    /// One per proxy that joined, by slot; a proxy that left keeps its entry (without a
    /// reservation) until its last ticket comes back.
    accounts: Vec<Account>,
}

#[derive(Debug)]
struct Account {
    used: usize,
    max: usize,
    member: bool,
}

impl State {
    /// What each proxy may always hold, before its own limit.
    fn share(&self, total: usize) -> usize {
        total / (2 * self.members.max(1))
    }

    fn reserved(&self, a: &Account, share: usize) -> usize {
        match a.member {
            true => a.max.min(share),
            false => 0,
        }
    }
}

impl Budget {
    /// A budget of `total` connections.
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            state: Mutex::default(),
            returned: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once no ticket is held: every connection of the client has ended.
    pub async fn drained(&self) {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if self.state().used == 0 {
                return;
            }
            returned.await;
        }
    }

    /// Adds a proxy that may hold at most `max` connections; it leaves when the [`Share`] is
    /// dropped.
    pub fn join(self: &Arc<Self>, max: usize) -> Share {
        let mut state = self.state();
        state.members += 1;
        state.accounts.push(Account {
            used: 0,
            max,
            member: true,
        });
        Share {
            budget: Arc::clone(self),
            slot: state.accounts.len() - 1,
        }
    }

    fn take(self: &Arc<Self>, slot: usize) -> Result<Ticket, Exhausted> {
        let mut state = self.state();
        let share = state.share(self.total);
        let Some(account) = state.accounts.get(slot) else {
            return Err(Exhausted::Proxy);
        };
        if account.used >= account.max {
            return Err(Exhausted::Proxy);
        }
        let within_reservation = account.used < state.reserved(account, share);
        // What is spoken for: each proxy's connections, or its reservation if larger.
        let committed = || -> usize {
            let held = |a: &Account| a.used.max(state.reserved(a, share));
            state.accounts.iter().map(held).sum()
        };
        if state.used >= self.total || !(within_reservation || committed() < self.total) {
            return Err(Exhausted::Client);
        }
        state.used += 1;
        state.accounts[slot].used += 1;
        Ok(Ticket {
            budget: Arc::clone(self),
            slot,
        })
    }

    fn give_back(&self, slot: usize) {
        let mut state = self.state();
        state.used = state.used.saturating_sub(1);
        if let Some(a) = state.accounts.get_mut(slot) {
            a.used = a.used.saturating_sub(1);
        }
        drop(state);
        self.returned.notify_waiters();
    }

    fn leave(&self, slot: usize) {
        let mut state = self.state();
        if let Some(a) = state.accounts.get_mut(slot) {
            a.member = false;
            state.members = state.members.saturating_sub(1);
        }
    }
}

/// One proxy's place in its client's [`Budget`].
#[derive(Debug)]
pub struct Share {
    budget: Arc<Budget>,
    slot: usize,
}

impl Share {
    /// A ticket for one more connection, at once.
    ///
    /// # Errors
    /// Which limit is reached.
    pub fn try_take(&self) -> Result<Ticket, Exhausted> {
        self.budget.take(self.slot)
    }

    /// A ticket, waiting up to `wait` for one to come back when none is left.
    ///
    /// # Errors
    /// Which limit was still reached when `wait` ran out.
    pub async fn take_within(&self, wait: Duration) -> Result<Ticket, Exhausted> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before trying, so a ticket given back in between is not missed.
            let returned = self.budget.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            let refused = match self.try_take() {
                Ok(ticket) => return Ok(ticket),
                Err(e) => e,
            };
            if tokio::time::timeout_at(deadline, returned).await.is_err() {
                return Err(refused);
            }
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.leave(self.slot);
    }
}

/// One connection's place in the budget, given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    budget: Arc<Budget>,
    slot: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.budget.give_back(self.slot);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fill(share: &Share) -> Vec<Ticket> {
        std::iter::from_fn(|| share.try_take().ok()).collect()
    }

    #[test]
    fn flooded_proxies_leave_the_others_their_reservations() {
        // The shape: 8,000 for the client, 5,000 per proxy, four proxies.
        let budget = Budget::new(8_000);
        let proxies: Vec<Share> = (0..4).map(|_| budget.join(5_000)).collect();
        let a = fill(&proxies[0]);
        let b = fill(&proxies[1]);
        assert_eq!(
            a.len(),
            5_000,
            "reservation (1,000) and the shared half (4,000)"
        );
        assert_eq!(
            b.len(),
            1_000,
            "its reservation only: the shared half is gone"
        );
        assert_eq!(proxies[0].try_take().unwrap_err(), Exhausted::Proxy);
        assert_eq!(proxies[1].try_take().unwrap_err(), Exhausted::Client);
        let c = fill(&proxies[2]);
        let d = fill(&proxies[3]);
        assert_eq!((c.len(), d.len()), (1_000, 1_000));
        drop(a);
        assert_eq!(fill(&proxies[1]).len(), 4_000, "the shared half is back");
    }

    #[test]
    fn one_proxy_alone_is_bounded_by_its_limit_and_the_budget() {
        let budget = Budget::new(100);
        let only = budget.join(1_000);
        assert_eq!(fill(&only).len(), 100);
        let budget = Budget::new(100);
        let only = budget.join(30);
        let held = fill(&only);
        assert_eq!(held.len(), 30);
        assert_eq!(only.try_take().unwrap_err(), Exhausted::Proxy);
    }

    #[test]
    fn a_proxy_that_leaves_gives_its_reservation_to_the_others() {
        let budget = Budget::new(100);
        let a = budget.join(100);
        let b = budget.join(100);
        let held = fill(&a);
        assert_eq!(held.len(), 75, "b keeps its 25");
        drop(b);
        let more = fill(&a);
        assert_eq!(held.len() + more.len(), 100, "never more than the budget");
        drop((held, more));
        assert_eq!(budget.state().used, 0);
    }

    #[test]
    fn a_proxy_that_leaves_with_connections_open_still_counts_them() {
        let budget = Budget::new(10);
        let a = budget.join(10);
        let held = fill(&a);
        assert_eq!(held.len(), 10);
        drop(a);
        let b = budget.join(10);
        assert_eq!(b.try_take().unwrap_err(), Exhausted::Client);
        drop(held);
        assert_eq!(fill(&b).len(), 10);
    }

    #[tokio::test]
    async fn waiting_takes_a_ticket_given_back_meanwhile() {
        let budget = Budget::new(1);
        let only = budget.join(5);
        let held = only.try_take().unwrap();
        let wait = Duration::from_millis(10);
        assert_eq!(only.take_within(wait).await.unwrap_err(), Exhausted::Client);
        let release = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(held);
        });
        assert!(only.take_within(Duration::from_secs(5)).await.is_ok());
        release.await.unwrap();
    }
}
