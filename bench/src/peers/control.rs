//! frp-quic's control plane, on for the `frp-quic+admin` peer: `enablePrometheus` and a
//! `[webServer]` (loopback, basic auth) in both frps.toml and frpc.toml, and a scraper that
//! GETs `/metrics` from frps and frpc once a second for as long as the tunnel runs, so the
//! figures include the cost of being scraped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use frp_tests::http::{client_on, request, send};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::probe::wait_until;
use crate::procs::LOCALHOST;
use crate::results::Scrapes;

/// How often each `/metrics` is scraped (Prometheus's usual interval is 15 s or more).
const INTERVAL: Duration = Duration::from_secs(1);
/// How long one scrape may take before it counts as failed.
const SCRAPE_LIMIT: Duration = Duration::from_secs(5);
/// How long the admin servers may take to answer once the tunnel is up.
const READY: Duration = Duration::from_secs(10);
/// Basic-auth credentials of both admin servers (loopback only).
const USER: &str = "bench";
const PASSWORD: &str = "bench-control-plane";
/// `Authorization` of every scrape: `base64("bench:bench-control-plane")`. A wrong value
/// gets 401, which fails the tunnel's start.
const AUTHORIZATION: &str = "Basic YmVuY2g6YmVuY2gtY29udHJvbC1wbGFuZQ==";

/// `config` (frps.toml or frpc.toml text) with the control plane on: `enablePrometheus`
/// first (top-level keys must precede every table) and `[webServer]` on `port` last.
pub fn enable(config: &str, port: u16) -> String {
    format!(
        "enablePrometheus = true\n\
         {config}\n\
         [webServer]\n\
         addr = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n"
    )
}

/// The admin servers of one tunnel and, once started, the tasks scraping them.
#[derive(Debug)]
pub struct ControlPlane {
    endpoints: Arc<Vec<Endpoint>>,
    stats: Arc<Mutex<Scrapes>>,
    tasks: Vec<JoinHandle<()>>,
}

/// One program's admin server.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    program: &'static str,
    addr: SocketAddr,
}

impl ControlPlane {
    /// The admin servers of the programs, each on its loopback port: `(program, port)` pairs,
    /// the ports given to [`enable`].
    pub fn new(admin_ports: &[(&'static str, u16)]) -> Self {
        let endpoints = admin_ports.iter().map(|&(program, port)| Endpoint {
            program,
            addr: SocketAddr::from((LOCALHOST, port)),
        });
        Self {
            endpoints: Arc::new(endpoints.collect()),
            stats: Arc::default(),
            tasks: Vec::new(),
        }
    }

    /// Waits until every `/metrics` answers, then scrapes each once a second, each on its own
    /// task (as Prometheus scrapes its targets), until dropped.
    pub async fn start(&mut self) -> Result<()> {
        for &e in self.endpoints.iter() {
            let what = format!("{} /metrics", e.program);
            wait_until(&what, READY, || async move { scrape(e).await.map(drop) }).await?;
        }
        for i in 0..self.endpoints.len() {
            let (endpoints, stats) = (Arc::clone(&self.endpoints), Arc::clone(&self.stats));
            self.tasks
                .push(tokio::spawn(scrape_loop(endpoints, i, stats)));
        }
        Ok(())
    }

    /// The scrapes so far.
    pub fn scrapes(&self) -> Scrapes {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Every [`INTERVAL`]: one scrape of `e`, its outcome counted in `stats`.
async fn scrape_loop(endpoints: Arc<Vec<Endpoint>>, i: usize, stats: Arc<Mutex<Scrapes>>) {
    let e = &endpoints[i];
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let outcome = match tokio::time::timeout(SCRAPE_LIMIT, scrape(*e)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no answer in {SCRAPE_LIMIT:?}")),
        };
        let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(bytes) => s.ok_one(bytes, started.elapsed()),
            Err(err) => s.failed_one(format!("{}: {err:#}", e.program)),
        }
    }
}

/// One `GET /metrics` on a new connection (as Prometheus without keep-alive): the size of
/// the OpenMetrics text. The harness's HTTP client (frp-tests) panics on a broken exchange,
/// so the exchange runs on a task of its own and a panic is a failed scrape.
async fn scrape(e: Endpoint) -> Result<usize> {
    let tcp = TcpStream::connect(e.addr)
        .await
        .with_context(|| format!("connect to {}'s admin server at {}", e.program, e.addr))?;
    let host = e.addr.to_string();
    let exchange = tokio::spawn(async move {
        let headers = [("authorization", AUTHORIZATION)];
        let mut sender = client_on(tcp).await;
        send(&mut sender, request("GET", &host, "/metrics", &headers)).await
    });
    let reply = exchange
        .await
        .with_context(|| format!("GET /metrics of {}", e.program))?;
    if !reply.status.is_success() {
        bail!("/metrics answered {}: {}", reply.status, reply.body);
    }
    if !reply.body.ends_with("# EOF\n") {
        bail!("/metrics is not OpenMetrics text (no `# EOF` line at the end)");
    }
    Ok(reply.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_key_first_table_last() {
        let text = enable(
            "bindPort = 7000\n\n[transport.tls]\ncertFile = \"c\"\n",
            7500,
        );
        let first_table = text.find('[').expect("a table");
        assert!(text.find("enablePrometheus = true").expect("the key") < first_table);
        assert!(text.ends_with(&format!(
            "port = 7500\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
        )));
    }

    #[test]
    fn authorization_is_the_credentials() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pair = format!("{USER}:{PASSWORD}");
        let mut b64 = String::new();
        for chunk in pair.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                let c = ALPHABET[(n >> (18 - 6 * i) & 63) as usize];
                b64.push(if i <= chunk.len() { char::from(c) } else { '=' });
            }
        }
        assert_eq!(AUTHORIZATION, format!("Basic {b64}"));
    }
}
