//! The run's figures: a markdown table on stdout and a JSON file in the results directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    /// UTC start of the run, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// `git describe --always --dirty` of the tree the harness ran from.
    pub revision: String,
    /// The machine.
    pub host: Host,
    /// How the run was set up.
    pub settings: Settings,
    /// Seconds to issue every client's certificate (key pair and signature).
    pub cert_issue_secs: f64,
    /// frps's resident memory.
    pub memory: Memory,
    /// Connecting all clients.
    pub connect: Phase,
    /// All clients connected, nothing but keep-alives.
    pub idle: Phase,
    /// Clients still connected at the end of the idle phase (all of them in a good run).
    pub idle_connected_at_end: usize,
    /// frps killed (SIGKILL) and started again; `None` with `--no-restart`.
    pub restart: Option<Restart>,
    /// Clients whose frpc gave up (a permanent refusal); 0 in a good run.
    pub clients_gave_up: usize,
    /// This harness's own VmRSS with every client connected, KiB.
    pub harness_rss_kib: u64,
}

/// The machine.
#[derive(Debug, Serialize)]
pub struct Host {
    /// Its host name.
    pub hostname: String,
    /// Its CPU count.
    pub cpus: usize,
    /// 1-minute load average when the run started (other work on a shared machine).
    pub loadavg_at_start: f64,
}

/// The run's parameters.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Clients.
    pub clients: usize,
    /// Of which publish one tcp proxy.
    pub publishers: usize,
    /// Connection attempts in flight at once while connecting.
    pub in_flight: usize,
    /// frps's `transport.quic.maxHandshakesPerIP`.
    pub handshakes_per_ip: u32,
    /// Streams a non-publishing client lets frps open (`maxIncomingStreams`).
    pub idle_client_streams: u32,
    /// frps's `RUST_LOG`.
    pub frps_log: String,
}

/// frps's VmRSS at the points of the run, KiB.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// Started, bound, no client yet.
    pub before_kib: u64,
    /// Every client connected (2 s after the last).
    pub connected_kib: u64,
    /// (connected − before) / clients.
    pub per_client_kib: f64,
    /// The restarted frps with every client back.
    pub after_restart_kib: Option<u64>,
}

/// One phase: how long it took and the CPU frps and this harness used meanwhile.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// Its length.
    pub secs: f64,
    /// Connections completed per second (the connect phase only: clients / secs).
    pub per_sec: Option<f64>,
    /// frps's user + system CPU, percent of one core.
    pub frps_cpu_pct: f64,
    /// This harness's (all the clients'), percent of one core.
    pub harness_cpu_pct: f64,
    /// Every other process on the machine, percent of one core (a shared machine's noise).
    pub others_cpu_pct: f64,
    /// Host CPU time stolen by the hypervisor meanwhile, percent.
    pub steal_pct: f64,
}

/// The restart.
#[derive(Debug, Serialize)]
pub struct Restart {
    /// SIGKILL to the new frps's port bound.
    pub restart_secs: f64,
    /// SIGKILL to each client noticing its session was gone, seconds.
    pub noticed: Spread,
    /// SIGKILL to each client having a new session, seconds (`max`: all reconnected).
    pub reconnected: Spread,
    /// How the clients learnt their session was gone: the restarted frps's stateless reset
    /// (at their next packet), their idle timeout, or otherwise.
    pub noticed_by: BTreeMap<&'static str, usize>,
    /// The new frps's CPU from its start to the last reconnect.
    pub phase: Phase,
}

/// Percentiles of per-client times, seconds (to within the 0.1 s the states are polled at).
#[derive(Debug, Serialize)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The last client.
    pub max: f64,
}

impl Spread {
    /// The percentiles of `times` (those not seen count as the longest).
    pub fn of(times: &[Option<Duration>]) -> Self {
        let mut secs: Vec<f64> = times
            .iter()
            .map(|t| t.map_or(f64::INFINITY, |d| d.as_secs_f64()))
            .collect();
        secs.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((secs.len() as f64 * q).ceil() as usize).saturating_sub(1);
            secs.get(i).copied().unwrap_or(0.0)
        };
        Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl Results {
    /// Prints the figures as a markdown table.
    pub fn print(&self) {
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let m = &self.memory;
        let n = self.settings.clients;
        println!("\n| N = {n} ({}, {}) | |", self.date, self.revision);
        println!("|---|---|");
        println!("| frps RSS before clients | {} |", mib(m.before_kib));
        println!("| frps RSS, all connected | {} |", mib(m.connected_kib));
        println!("| frps RSS per client | {:.1} KiB |", m.per_client_kib);
        let c = &self.connect;
        println!(
            "| connect all, ≤ {} in flight | {:.1} s, {:.0} handshakes/s; {} |",
            self.settings.in_flight,
            c.secs,
            c.per_sec.unwrap_or(0.0),
            cpu(c)
        );
        let i = &self.idle;
        println!("| idle {:.0} s | {} |", i.secs, cpu(i));
        if let Some(r) = &self.restart {
            let (a, b) = (&r.noticed, &r.reconnected);
            println!("| SIGKILL → frps bound again | {:.2} s |", r.restart_secs);
            println!(
                "| SIGKILL → client noticed, p50 / p90 / max | {:.1} / {:.1} / {:.1} s |",
                a.p50, a.p90, a.max
            );
            println!(
                "| SIGKILL → client reconnected, p50 / p90 / max | {:.1} / {:.1} / {:.1} s; {} |",
                b.p50,
                b.p90,
                b.max,
                cpu(&r.phase)
            );
            println!("| how the clients noticed | {:?} |", r.noticed_by);
        }
        if let Some(kib) = m.after_restart_kib {
            println!("| frps RSS after reconnect | {} |", mib(kib));
        }
        println!(
            "| harness RSS, all connected | {} |",
            mib(self.harness_rss_kib)
        );
    }

    /// Writes `dir/<UTC date-time>-n<N>.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stamp: String = self
            .date
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let path = dir.join(format!("{stamp}-n{}.json", self.settings.clients));
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// A phase's CPU in words: frps's, the harness's, everything else's, the steal.
fn cpu(p: &Phase) -> String {
    format!(
        "CPU % of one core: frps {:.1}, harness {:.1}, others {:.0}; steal {:.1}%",
        p.frps_cpu_pct, p.harness_cpu_pct, p.others_cpu_pct, p.steal_pct
    )
}

/// Now in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `git describe --always --dirty` of the harness's tree, or "unknown".
pub fn revision() -> String {
    std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR")])
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_string())
}

/// The machine as the report names it.
pub fn host() -> Host {
    Host {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_at_start: crate::procfs::loadavg(),
    }
}
