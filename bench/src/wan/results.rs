//! What one WAN run keeps (the `.json`): the link alone, each controller's figures with the
//! link's counters over each, and the fairness figure.

use serde::Serialize;

use super::alone::{Alone, Rtt};
use super::figures::{Pings, Shared, Spread};
use super::relay::LinkStats;
use super::{Cc, WanSettings};
use crate::meta::Meta;

/// Everything one WAN run measured.
#[derive(Debug, Serialize)]
pub struct WanReport {
    pub started_utc: String,
    pub command: String,
    pub settings: WanSettings,
    pub meta: Meta,
    pub relay_alone: Option<Alone>,
    pub rtt: Option<Rtt>,
    pub controllers: Vec<CcResult>,
    pub fairness: Option<Fairness>,
    pub errors: Vec<String>,
    /// Percent of the machine's CPU time stolen by the hypervisor over the run.
    pub steal_pct: Option<f64>,
    /// /proc/loadavg at the start and at the end: other work on the machine.
    pub loadavg: Vec<String>,
}

impl WanReport {
    pub fn new(started_utc: String, settings: WanSettings, meta: Meta) -> Self {
        Self {
            started_utc,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            settings,
            meta,
            relay_alone: None,
            rtt: None,
            controllers: Vec::new(),
            fairness: None,
            errors: Vec::new(),
            steal_pct: None,
            loadavg: Vec::new(),
        }
    }

    /// Keeps the value, or notes the error (with what was being measured).
    pub fn keep<T>(&mut self, what: &str, value: anyhow::Result<T>) -> Option<T> {
        value
            .map_err(|e| {
                eprintln!("   {what} failed: {e:#}");
                self.errors.push(format!("{what}: {e:#}"));
            })
            .ok()
    }

    /// Whether anything failed.
    pub fn has_failures(&self) -> bool {
        !self.errors.is_empty()
            || self.controllers.iter().any(|c| !c.errors.is_empty())
            || self.fairness.as_ref().is_some_and(|f| !f.errors.is_empty())
    }

    /// The round trip the time to first byte is divided by: measured, else nominal.
    pub fn rtt_ms(&self) -> f64 {
        self.rtt
            .as_ref()
            .map_or(self.settings.rtt_ms as f64, |r| r.median_ms)
    }
}

/// One controller's figures and the link's counters over each.
#[derive(Debug, Serialize)]
pub struct CcResult {
    pub cc: Cc,
    pub errors: Vec<String>,
    pub bulk_up_mbit: Option<f64>,
    pub bulk_down_mbit: Option<f64>,
    pub ttfb: Option<Spread>,
    pub pings: Option<Pings>,
    pub link: Vec<FigureLink>,
}

impl CcResult {
    pub fn new(cc: Cc) -> Self {
        Self {
            cc,
            errors: Vec::new(),
            bulk_up_mbit: None,
            bulk_down_mbit: None,
            ttfb: None,
            pings: None,
            link: Vec::new(),
        }
    }

    /// Notes that `what` failed, and returns the result as it stands.
    pub fn failed(mut self, what: &str, e: anyhow::Error) -> Self {
        eprintln!("   {what} failed: {e:#}");
        self.errors.push(format!("{what}: {e:#}"));
        self
    }

    /// Keeps the link's counters over a figure and its value, or notes its error.
    pub fn keep<T>(&mut self, what: &str, fl: FigureLink, value: anyhow::Result<T>) -> Option<T> {
        self.link.push(fl);
        value
            .map_err(|e| {
                eprintln!("   {what} failed: {e:#}");
                self.errors.push(format!("{what}: {e:#}"));
            })
            .ok()
    }
}

/// Two tunnels sharing the bottleneck.
#[derive(Debug, Serialize)]
pub struct Fairness {
    pub cc: [Cc; 2],
    pub runs: Vec<Shared>,
    pub link: Vec<FigureLink>,
    pub errors: Vec<String>,
}

impl Fairness {
    pub fn new(cc: [Cc; 2]) -> Self {
        Self {
            cc,
            runs: Vec::new(),
            link: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Notes that the setup failed.
    pub fn failed(mut self, e: anyhow::Error) -> Self {
        eprintln!("   fairness setup failed: {e:#}");
        self.errors.push(format!("setup: {e:#}"));
        self
    }
}

/// The link's counters over one figure, and the kernel's UDP buffer errors meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct FigureLink {
    pub figure: String,
    pub stats: LinkStats,
    pub kernel_rcvbuf_errors: Option<u64>,
    pub kernel_sndbuf_errors: Option<u64>,
}
