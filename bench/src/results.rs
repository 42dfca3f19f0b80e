//! The raw figures of one run, as written to the `.json` file.

use serde::Serialize;

use crate::meta::Meta;
use crate::probe::Ttfb;
use crate::tools::{IperfRun, WrkRun};

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub started_utc: String,
    pub command: String,
    pub settings: Settings,
    pub meta: Meta,
    pub peers: Vec<PeerResult>,
}

/// The knobs the run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub duration_s: u64,
    pub runs: u32,
    pub idle_conns: [usize; 2],
    /// Seconds waited after the last iperf3 run before the after-load figures.
    pub settle_s: u64,
    /// Idle connections held after the load, each having carried one `GET /1k`.
    pub http_idle_conns: usize,
    pub ttfb_samples: usize,
    pub relay_delay_ms: u64,
    /// Only frp-quic's connect-time figure was measured.
    pub connect_only: bool,
}

/// One peer's figures; a figure that could not be measured is `None` and its reason is in
/// `errors`.
#[derive(Debug, Default, Serialize)]
pub struct PeerResult {
    pub peer: String,
    /// Why the peer was not measured at all (a tool is missing).
    pub skipped: Option<String>,
    pub errors: Vec<String>,
    pub iperf: Vec<IperfFigure>,
    /// Best keep-alive run (highest req/s).
    pub wrk_keepalive: Option<WrkRun>,
    /// Best `Connection: close` run.
    pub wrk_close: Option<WrkRun>,
    pub idle: Option<IdleFigures>,
    /// Resident memory after the traffic figures, idle and with HTTP connections held.
    pub after_load: Option<AfterLoad>,
    /// CPU seconds of the tunnel's processes per 10^9 bytes moved by iperf3.
    pub cpu_s_per_gb: Option<f64>,
    pub cpu_s_total: Option<f64>,
    pub iperf_bytes_total: u64,
    /// New connection to first response byte, straight on loopback.
    pub ttfb: Option<Ttfb>,
    /// The same with the delay relay between frpc and frps (frp-quic only).
    pub ttfb_delayed: Option<Ttfb>,
    /// Median round trip of a small datagram through the delay relay alone, milliseconds:
    /// what the relay really adds, next to the nominal twice the delay.
    pub relay_rtt_ms: Option<f64>,
    /// Percent of the machine's CPU time stolen by the hypervisor during the traffic figures.
    pub steal_pct: Option<f64>,
    /// frpc's connect with no flood, then under a QUIC Initial flood (frp-quic only).
    pub connect_quiet: Option<ConnectRun>,
    pub connect_flooded: Option<ConnectRun>,
    /// How much of the recorded function order the binaries carry (frp-quic and its
    /// variants): see `bench/link-order`.
    pub link_order: Option<String>,
    /// `GET /metrics` on frps and frpc once a second while the idle-connection and traffic
    /// figures ran (frp-quic+admin only).
    pub scrapes: Option<Scrapes>,
}

impl PeerResult {
    /// Whether anything failed: an error, or idle connections that failed or broke.
    pub fn has_failures(&self) -> bool {
        let idle = self
            .idle
            .as_ref()
            .is_some_and(|i| i.failed > 0 || i.broken_after > 0);
        let http = self
            .after_load
            .as_ref()
            .is_some_and(|a| a.http_failed > 0 || a.http_closed_after > 0);
        let scrapes = self.scrapes.as_ref().is_some_and(|s| s.failed > 0);
        !self.errors.is_empty() || idle || http || scrapes
    }

    /// The best throughput of `streams` streams in one direction, Gbit/s.
    pub fn gbps(&self, streams: u32, reverse: bool) -> Option<f64> {
        self.iperf
            .iter()
            .find(|f| f.streams == streams && f.reverse == reverse)
            .and_then(|f| f.best_gbps)
    }
}

/// One iperf3 configuration: every run, and the best.
#[derive(Debug, Clone, Serialize)]
pub struct IperfFigure {
    pub streams: u32,
    /// `-R`: the published service sends, the visitor receives.
    pub reverse: bool,
    pub best_gbps: Option<f64>,
    pub runs: Vec<IperfRun>,
}

/// Resident memory with idle tunneled connections held open.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    /// Idle, then at each count of held connections.
    pub points: Vec<RssPoint>,
    /// Connections that could not be established (or did not echo).
    pub failed: usize,
    pub first_error: Option<String>,
    /// Held connections that no longer echoed after the last measurement.
    pub broken_after: usize,
    /// (server+client RSS at the largest count − idle) / that count, KiB.
    pub kib_per_conn: Option<f64>,
}

/// Resident memory on the tunnel that carried the traffic figures, once they have ended.
#[derive(Debug, Clone, Serialize)]
pub struct AfterLoad {
    /// One second after the last iperf3 run ended.
    pub at_1s: RssPoint,
    /// After `settle_s` seconds: the "idle after load" figure.
    pub settled: RssPoint,
    /// Then with `http_idle_conns` idle connections held, each after one `GET /1k`.
    pub with_http: RssPoint,
    /// HTTP connections that could not be established.
    pub http_failed: usize,
    pub http_first_error: Option<String>,
    /// Held HTTP connections closed by the other end by the time of the measurement.
    pub http_closed_after: usize,
    /// (server+client RSS with the HTTP connections − settled) / connections held, KiB.
    pub kib_per_http_conn: Option<f64>,
}

/// Server and client RSS with `held` connections open.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssPoint {
    /// Connections meant to be held (the target count).
    pub target: usize,
    /// Connections actually held.
    pub held: usize,
    pub server_kib: u64,
    pub client_kib: u64,
    /// Of the above, the processes' own pages (RssAnon): VmRSS less the program's and
    /// libraries' file pages.
    pub server_anon_kib: u64,
    pub client_anon_kib: u64,
}

impl RssPoint {
    /// Server plus client, KiB.
    pub fn total_kib(&self) -> u64 {
        self.server_kib + self.client_kib
    }

    /// Server plus client RssAnon, KiB.
    pub fn anon_total_kib(&self) -> u64 {
        self.server_anon_kib + self.client_anon_kib
    }
}

/// One timed frpc connect, from its start to the first echo through the tunnel.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConnectRun {
    /// Initials a second the flood reached (0: no flood).
    pub initials_per_s: f64,
    pub initials_sent: u64,
    pub connect_ms: f64,
    /// Whether the flood was still running when the echo came back.
    pub flood_outlasted_connect: bool,
    /// frps's peak RSS (VmHWM) over the whole figure.
    pub server_peak_rss_kib: u64,
}

/// Scrapes of the admin servers' `/metrics`, counted over a peer's tunnels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scrapes {
    pub ok: u64,
    pub failed: u64,
    /// OpenMetrics text received, all scrapes together.
    pub bytes: u64,
    /// Request to whole answer, all successful scrapes together, and the longest.
    pub total_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
}

impl Scrapes {
    /// Counts a successful scrape of `bytes` that took `took`.
    pub fn ok_one(&mut self, bytes: usize, took: std::time::Duration) {
        let ms = took.as_secs_f64() * 1e3;
        self.ok += 1;
        self.bytes += bytes as u64;
        self.total_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Counts a failed scrape; the first error is kept.
    pub fn failed_one(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }

    /// Adds the counts of `other` (another tunnel of the same peer).
    pub fn add(&mut self, other: Scrapes) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.bytes += other.bytes;
        self.total_ms += other.total_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// One line for the notes.
    pub fn note(&self) -> String {
        let mean = |total: f64| total / self.ok.max(1) as f64;
        let mut line = format!(
            "control plane on: {} scrapes of /metrics (frps and frpc, each once a second), \
             {:.1} KiB and {:.1} ms each on average, {:.1} ms at most; {} failed",
            self.ok,
            mean(self.bytes as f64) / 1024.0,
            mean(self.total_ms),
            self.max_ms,
            self.failed
        );
        if let Some(e) = &self.first_error {
            line.push_str(&format!(" (first: {e})"));
        }
        line
    }
}
