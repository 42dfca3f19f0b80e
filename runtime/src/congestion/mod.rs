//! Congestion control for the QUIC transport: `transport.quic.congestionControl` in both files.
//!
//! - `bbr` (the default): [`Bbr`], written for this project and plugged in through quinn's
//!   `ControllerFactory`. It steers by the path's measured bandwidth and minimum RTT, so random
//!   loss does not shrink it: through a 40 ms, 1%-loss, 200 Mbit/s link a tunneled transfer
//!   runs at 181 Mbit/s where Cubic manages 3-5 (bench/README.md, WAN mode), and it keeps the
//!   bottleneck queue near empty, which is what interactive streams beside a bulk one wait in.
//!   On loopback it moves what Cubic does at the same CPU per byte (README, Performance).
//! - `cubic`: quinn's Cubic (RFC 9438), loss-based, what TCP on Linux uses.
//! - `newreno`: quinn's NewReno (RFC 9002's reference controller).
//!
//! The sender's controller is the one that matters for a direction: frpc's for bytes a
//! published service sends back, frps's for bytes visitors send in. Set both the same.

mod aggregation;
mod bbr;
mod controller;
mod model;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use quinn_proto::congestion::{Controller, ControllerFactory, CubicConfig, NewRenoConfig};
use serde::Deserialize;

pub use bbr::{Bbr, Mode};

/// Which congestion controller a QUIC connection runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CongestionControl {
    /// frp-quic's BBR-style controller ([`Bbr`]), the default: as fast as Cubic on loopback,
    /// and 35-60x Cubic through a lossy long link (README, Performance).
    #[default]
    Bbr,
    /// quinn's Cubic.
    Cubic,
    /// quinn's NewReno.
    #[serde(rename = "newreno")]
    NewReno,
}

impl CongestionControl {
    /// The config value's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bbr => "bbr",
            Self::Cubic => "cubic",
            Self::NewReno => "newreno",
        }
    }

    /// The factory quinn builds each connection's controller with.
    pub fn factory(self) -> Arc<dyn ControllerFactory + Send + Sync> {
        match self {
            Self::Bbr => Arc::new(BbrSettings::default()),
            Self::Cubic => Arc::new(CubicConfig::default()),
            Self::NewReno => Arc::new(NewRenoConfig::default()),
        }
    }
}

impl std::fmt::Display for CongestionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Bbr`]'s fixed settings; also its `ControllerFactory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BbrSettings {
    /// Window before anything was measured, bytes: quinn's and RFC 9002's 14,720.
    pub initial_window: u64,
    /// Largest window, bytes: above the connection's send window (32 MiB) it buys nothing.
    pub max_window: u64,
}

impl Default for BbrSettings {
    fn default() -> Self {
        Self {
            initial_window: 14_720,
            max_window: 64 * 1024 * 1024,
        }
    }
}

impl ControllerFactory for BbrSettings {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Bbr::new(*self, now, current_mtu))
    }
}
