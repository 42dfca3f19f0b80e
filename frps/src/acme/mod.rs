//! Automatic HTTPS (`[vhostHTTPS.acme]`): certificates obtained from an ACME CA (Let's
//! Encrypt, or any RFC 8555 server) for the names frps terminates TLS for, and renewed.
//!
//! Who decides what is asked for: only a name that an `http` proxy of a connected client
//! holds exactly (so it passed `allowDomains`, global and the client's own) and that
//! `acme.domains` lists (all such names when it is not set) is ever ordered, and only when
//! a visitor asks for it over TLS or when its certificate is due for renewal. A manual
//! certificate (`[[vhostHTTPS.certificates]]`, exact or wildcard) covering a name always wins.
//!
//! A name's first TLS visitor waits for the order, up to [`ISSUE_WAIT`]; later ones are
//! served from memory, and at start every stored certificate is loaded, so a restart orders
//! nothing. A failed order is not retried for a growing time (1 minute doubling to 1 hour),
//! during which visitors get the fallback certificate and a page saying why. Certificates
//! are renewed two thirds into their lifetime while the name is held, without touching open
//! connections. Challenges (tls-alpn-01 on `vhostHTTPSPort`, or http-01 on `vhostHTTPPort`)
//! are answered by frps before anything is routed, so no client sees or can answer them.

mod challenge;
mod issue;
pub mod settings;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

pub use challenge::ACME_TLS_ALPN;
pub use settings::{AcmeSettings, ChallengeKind};
use store::{Storage, Stored};

/// How long a name's first TLS visitor waits for its certificate.
pub const ISSUE_WAIT: Duration = Duration::from_secs(60);
/// How long one order may take in all, account included: a CA that stops answering fails
/// the order (and backs off) instead of holding it, and the orders behind it, forever.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);
/// The first wait after a failed order; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often renewals are looked for when nothing is due sooner.
const RENEW_CHECK: Duration = Duration::from_secs(3600);
/// Orders under way at once; more wait their turn, so a client holding many names cannot
/// make frps fire a burst at the CA (Let's Encrypt limits new orders per account).
const ORDERS_AT_ONCE: usize = 4;
/// Orders started in any hour, renewals included: well inside Let's Encrypt's 300 new orders
/// per account in 3 hours, however many names clients hold.
const ORDERS_PER_HOUR: usize = 60;

/// The certificate manager.
pub struct Acme {
    settings: AcmeSettings,
    storage: Storage,
    fallback: Arc<rustls::ServerConfig>,
    state: Mutex<State>,
    account: tokio::sync::Mutex<Option<instant_acme::Account>>,
    /// Wakes the renewal loop when a certificate arrives (its renewal time is new).
    arrived: tokio::sync::Notify,
    /// See [`ORDERS_AT_ONCE`].
    ordering: tokio::sync::Semaphore,
    /// Orders that ended with a certificate, and orders that failed.
    pub issued: AtomicU64,
    /// See [`issued`](Self::issued).
    pub failed: AtomicU64,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    certs: HashMap<String, Held>,
    /// tls-alpn-01 answers by name, http-01 answers by token (name, key authorization).
    alpn: HashMap<String, Arc<rustls::ServerConfig>>,
    tokens: HashMap<String, (String, String)>,
    /// Orders under way: their outcome, once known.
    inflight: HashMap<String, watch::Receiver<Option<Result<(), String>>>>,
    /// Names whose last order failed: why, and when to try again.
    failures: HashMap<String, Failure>,
    /// When the orders of the last hour started (at most [`ORDERS_PER_HOUR`]).
    started: std::collections::VecDeque<Instant>,
}

impl State {
    /// Whether another order may start within [`ORDERS_PER_HOUR`].
    fn budget_left(&mut self) -> bool {
        let hour_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        while self.started.front().is_some_and(|t| Some(*t) < hour_ago) {
            self.started.pop_front();
        }
        self.started.len() < ORDERS_PER_HOUR
    }
}

struct Held {
    stored: Stored,
    renewed: Option<SystemTime>,
}

struct Failure {
    error: String,
    retry: Instant,
    backoff: Duration,
}

/// One certificate as `GET /api/v1/acme` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertView {
    /// The name.
    pub name: String,
    /// When the certificate in use expires (none yet: `null`).
    pub not_after: Option<String>,
    /// When it is due for renewal.
    pub renew_at: Option<String>,
    /// When it was last obtained by this process.
    pub last_renewal: Option<String>,
    /// Why the last order failed, while that is the latest news.
    pub last_error: Option<String>,
}

impl Acme {
    /// Opens the storage directory and loads every certificate in it.
    ///
    /// # Errors
    /// When the directory cannot be created or the fallback certificate made.
    pub fn start(settings: AcmeSettings) -> Result<Arc<Self>, String> {
        let storage = Storage::open(&settings.storage_dir)?;
        let (loaded, broken) = storage.load_all();
        for (name, why) in broken {
            warn!(%name, error = %why, "a stored ACME certificate does not load; it will be ordered again");
        }
        info!(count = loaded.len(), dir = %settings.storage_dir.display(), "ACME certificates loaded");
        let certs = loaded
            .into_iter()
            .map(|(n, stored)| {
                (
                    n,
                    Held {
                        stored,
                        renewed: None,
                    },
                )
            })
            .collect();
        Ok(Arc::new(Self {
            settings,
            storage,
            fallback: challenge::fallback_config()?,
            state: Mutex::new(State {
                certs,
                ..State::default()
            }),
            account: tokio::sync::Mutex::new(None),
            arrived: tokio::sync::Notify::new(),
            ordering: tokio::sync::Semaphore::new(ORDERS_AT_ONCE),
            issued: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }))
    }

    /// The settings in force.
    pub fn settings(&self) -> &AcmeSettings {
        &self.settings
    }

    /// Whether `acme.domains` lets `name` have a certificate.
    pub fn covers(&self, name: &str) -> bool {
        self.settings
            .domains
            .as_ref()
            .is_none_or(|set| set.patterns().iter().any(|p| p.matches(name)))
    }

    /// The tls-alpn-01 answer for `name`, while its validation is under way.
    pub fn tls_alpn_answer(&self, name: &str) -> Option<Arc<rustls::ServerConfig>> {
        self.lock().alpn.get(name).cloned()
    }

    /// The http-01 answer for a request to `host` for `path`, while it is under way.
    pub fn http_answer(&self, host: &str, path: &str) -> Option<String> {
        let token = path.strip_prefix("/.well-known/acme-challenge/")?;
        let state = self.lock();
        let (name, answer) = state.tokens.get(token)?;
        (name == host).then(|| answer.clone())
    }

    /// The self-signed certificate for the error page.
    pub fn fallback(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.fallback)
    }

    /// The certificate for `name` (held by a client: the caller checked): from memory, or
    /// ordered now and waited for up to [`ISSUE_WAIT`].
    ///
    /// # Errors
    /// Why there is none: the order failed (and when it will be tried again) or is still
    /// under way.
    pub async fn certificate(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut outcome = {
            let mut state = self.lock();
            if let Some(held) = state.certs.get(name) {
                if held.stored.not_after > SystemTime::now() {
                    return Ok(Arc::clone(&held.stored.config));
                }
            }
            match state.inflight.get(name) {
                Some(rx) => rx.clone(),
                None => {
                    if let Some(f) = state
                        .failures
                        .get(name)
                        .filter(|f| f.retry > Instant::now())
                    {
                        let wait = f.retry.saturating_duration_since(Instant::now()).as_secs();
                        return Err(format!("the last order failed; next attempt in {wait} s"));
                    }
                    if !state.budget_left() {
                        warn!(%name, "ACME order budget for this hour used up; not ordering");
                        return Err("too many certificates were ordered in the last hour".into());
                    }
                    self.begin(&mut state, name)
                }
            }
        };
        let done = tokio::time::timeout(ISSUE_WAIT, outcome.wait_for(Option::is_some)).await;
        match done {
            Err(_) => Err(format!(
                "the certificate for {name} is still being obtained"
            )),
            Ok(Err(_)) => Err("the order was abandoned".into()),
            Ok(Ok(result)) => match result.clone() {
                Some(Ok(())) => self
                    .held(name)
                    .ok_or_else(|| "no certificate after the order".into()),
                // The CA's own words go to the log and the API, not to every visitor.
                Some(Err(_)) => Err("the order failed".into()),
                None => Err("no outcome".into()),
            },
        }
    }

    /// Starts an order for `name` in the background; returns its outcome channel.
    fn begin(
        self: &Arc<Self>,
        state: &mut State,
        name: &str,
    ) -> watch::Receiver<Option<Result<(), String>>> {
        state.started.push_back(Instant::now());
        let (tx, rx) = watch::channel(None);
        state.inflight.insert(name.to_string(), rx.clone());
        let acme = Arc::clone(self);
        let name = name.to_string();
        tokio::spawn(async move {
            let result = match acme.ordering.acquire().await {
                Ok(_turn) => match tokio::time::timeout(ORDER_TIMEOUT, acme.order(&name)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("the CA did not finish within {ORDER_TIMEOUT:?}")),
                },
                Err(_) => Err("shutting down".to_string()),
            };
            acme.finish(&name, &result);
            let _ = tx.send(Some(result.map(drop)));
        });
        rx
    }

    /// Records an order's outcome.
    fn finish(&self, name: &str, result: &Result<Stored, String>) {
        let mut state = self.lock();
        state.inflight.remove(name);
        match result {
            Ok(stored) => {
                self.issued.fetch_add(1, Ordering::Relaxed);
                info!(%name, "ACME certificate obtained");
                state.failures.remove(name);
                let held = Held {
                    stored: stored.clone(),
                    renewed: Some(SystemTime::now()),
                };
                state.certs.insert(name.to_string(), held);
                self.arrived.notify_one();
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let backoff = state
                    .failures
                    .get(name)
                    .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                warn!(%name, error = %e, retry_in = ?backoff, "ACME order failed");
                let failure = Failure {
                    error: e.clone(),
                    retry: Instant::now() + backoff,
                    backoff,
                };
                state.failures.insert(name.to_string(), failure);
            }
        }
    }

    fn held(&self, name: &str) -> Option<Arc<rustls::ServerConfig>> {
        let state = self.lock();
        state.certs.get(name).map(|h| Arc::clone(&h.stored.config))
    }

    /// Renews certificates that are due while `holds(name)` says a client holds the name,
    /// until `stop` is cancelled.
    pub async fn renew_loop(
        self: Arc<Self>,
        holds: impl Fn(&str) -> bool + Send + 'static,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let next = self.renew_due(&holds);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.arrived.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Starts the renewals that are due; returns how long until the next one.
    fn renew_due(self: &Arc<Self>, holds: &impl Fn(&str) -> bool) -> Duration {
        let now = SystemTime::now();
        let mut state = self.lock();
        let mut next = RENEW_CHECK;
        let due: Vec<String> = (state.certs.iter())
            .filter_map(|(name, h)| match h.stored.renew_at().duration_since(now) {
                Ok(wait) => {
                    next = next.min(wait);
                    None
                }
                Err(_) => Some(name.clone()),
            })
            .collect();
        for name in due {
            let busy = state.inflight.contains_key(&name) || !state.budget_left();
            let waiting = state
                .failures
                .get(&name)
                .is_some_and(|f| f.retry > Instant::now());
            if !busy && !waiting && holds(&name) && self.covers(&name) {
                info!(%name, "renewing the ACME certificate");
                self.begin(&mut state, &name);
            }
            // Looked at again: after the renewal's outcome, or when the name may be held again.
            next = next.min(Duration::from_secs(30));
        }
        next.max(Duration::from_secs(1))
    }

    /// Every certificate held or tried, by name.
    pub fn list(&self) -> Vec<CertView> {
        let state = self.lock();
        let mut names: Vec<&String> = state.certs.keys().chain(state.failures.keys()).collect();
        names.sort();
        names.dedup();
        let time = |t: SystemTime| frp_admin::rfc3339(t);
        names
            .into_iter()
            .map(|name| {
                let held = state.certs.get(name);
                CertView {
                    name: name.clone(),
                    not_after: held.and_then(|h| time(h.stored.not_after)),
                    renew_at: held.and_then(|h| time(h.stored.renew_at())),
                    last_renewal: held.and_then(|h| h.renewed).and_then(time),
                    last_error: state.failures.get(name).map(|f| f.error.clone()),
                }
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
