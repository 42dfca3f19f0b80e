//! The clients: real frpc [`Client`]s, all in this process, each with its own certificate, its
//! own UDP socket and QUIC endpoint, and frpc's own reconnect loop (backoff with jitter).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use frpc::{Client, ClientSettings, ClientStatus};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a client may hold its connect slot waiting for its first session; after that the
/// slot goes to the next client and this one keeps retrying on its own.
const SLOT_HOLD: Duration = Duration::from_secs(30);
/// How often the clients' states are polled.
const POLL: Duration = Duration::from_millis(100);
/// Clients whose giving-up is printed; the rest are only counted.
const REPORTED_ERRORS: usize = 5;

/// Per client, when it noticed its session was gone and when it had a new one.
#[derive(Debug)]
pub struct Renewal {
    /// First seen disconnected (or already in a new session).
    pub noticed: Vec<Option<Duration>>,
    /// First seen in a new session.
    pub renewed: Vec<Option<Duration>>,
    /// How many noticed by which error: `stateless reset`, `idle timeout`, `other`, or
    /// `unseen` (reconnected between two polls, its error already cleared).
    pub reasons: BTreeMap<&'static str, usize>,
    classified: Vec<bool>,
}

impl Renewal {
    fn new(n: usize) -> Self {
        Self {
            noticed: vec![None; n],
            renewed: vec![None; n],
            reasons: BTreeMap::new(),
            classified: vec![false; n],
        }
    }

    /// Takes in client `i`'s state `s` at `now`; `base` is its session count before.
    fn observe(&mut self, i: usize, s: &ClientStatus, base: u64, now: Duration) {
        let renewed = s.connected && s.sessions > base;
        if !s.connected || renewed {
            self.noticed[i].get_or_insert(now);
        }
        // The error follows the disconnection a moment later, and a new session clears it.
        if self.noticed[i].is_some() && !self.classified[i] && (renewed || s.last_error.is_some()) {
            self.classified[i] = true;
            let reason = match s.last_error.as_deref() {
                None => "unseen",
                Some(e) if e.contains("reset") => "stateless reset",
                Some(e) if e.contains("idle timeout") => "idle timeout",
                Some(_) => "other",
            };
            *self.reasons.entry(reason).or_default() += 1;
        }
        if renewed {
            self.renewed[i].get_or_insert(now);
        }
    }
}

/// Every client started so far.
#[derive(Debug, Default)]
pub struct Fleet {
    statuses: Vec<watch::Receiver<ClientStatus>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    gave_up: Arc<AtomicUsize>,
}

impl Fleet {
    /// Starts a client for each of `all`, at most `in_flight` of them between their start and
    /// their first session at once (a client past [`SLOT_HOLD`] frees its slot).
    pub async fn launch(
        &mut self,
        all: Vec<ClientSettings>,
        in_flight: usize,
    ) -> anyhow::Result<()> {
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        for settings in all {
            let slot = Arc::clone(&slots).acquire_owned().await?;
            let client = Client::new(settings)?;
            let mut status = client.status();
            self.statuses.push(client.status());
            self.spawn(client);
            tokio::spawn(async move {
                let _slot = slot;
                let _ = tokio::time::timeout(SLOT_HOLD, status.wait_for(|s| s.connected)).await;
            });
        }
        Ok(())
    }

    fn spawn(&self, client: Client) {
        let shutdown = self.shutdown.clone();
        let gave_up = Arc::clone(&self.gave_up);
        self.tasks.spawn(async move {
            if let Err(e) = client.run(shutdown).await {
                if gave_up.fetch_add(1, Ordering::Relaxed) < REPORTED_ERRORS {
                    eprintln!("a client gave up: {e}");
                }
            }
        });
    }

    /// How many clients there are.
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// How many have a session up.
    pub fn connected(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| s.borrow().connected)
            .count()
    }

    /// Each client's count of sessions so far.
    pub fn sessions(&self) -> Vec<u64> {
        self.statuses.iter().map(|s| s.borrow().sessions).collect()
    }

    /// Waits until every client has a session, for at most `timeout`; returns the time taken.
    pub async fn all_connected(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        while self.connected() < self.len() {
            self.check(start, timeout, "connecting")?;
            tokio::time::sleep(POLL).await;
        }
        Ok(start.elapsed())
    }

    /// Waits until every client has a session newer than `baseline`; returns, per client,
    /// when it was first seen without its old session and when with a new one, counted from
    /// `from` (to within [`POLL`]).
    pub async fn all_renewed(
        &self,
        baseline: &[u64],
        from: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Renewal> {
        let mut times = Renewal::new(self.len());
        loop {
            let now = from.elapsed();
            for (i, (s, base)) in self.statuses.iter().zip(baseline).enumerate() {
                times.observe(i, &s.borrow(), *base, now);
            }
            if times.renewed.iter().all(Option::is_some) {
                return Ok(times);
            }
            self.check(from, timeout, "reconnecting")?;
            tokio::time::sleep(POLL).await;
        }
    }

    fn check(&self, start: Instant, timeout: Duration, what: &str) -> anyhow::Result<()> {
        if start.elapsed() > timeout {
            bail!(
                "{what}: gave up after {timeout:?} with {} of {} clients connected ({} gave up)",
                self.connected(),
                self.len(),
                self.gave_up.load(Ordering::Relaxed)
            );
        }
        Ok(())
    }

    /// Clients whose `run` ended with an error (a permanent refusal).
    pub fn gave_up(&self) -> usize {
        self.gave_up.load(Ordering::Relaxed)
    }

    /// Stops every client (each closes its connection), waiting up to 5 s.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
    }
}
