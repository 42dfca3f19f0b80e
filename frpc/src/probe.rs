//! `transport.protocol = "auto"` on TCP: try QUIC again now and then, and move the session
//! back once it connects. The new QUIC session takes the proxies over; the TCP one drains
//! (its open connections finish, then it closes), so nothing open is cut.

use frp_runtime::link::Transport;
use rand::Rng as _;
use tokio::time::Instant;

use crate::config::ClientSettings;
use crate::config_transport::{Protocol, QUIC_PROBE};

/// When a session on `transport` with `settings` next tries QUIC: only `auto` on TCP does,
/// every [`QUIC_PROBE`] plus up to a quarter of it.
pub(crate) fn next_probe(settings: &ClientSettings, transport: Transport) -> Option<Instant> {
    if settings.protocol != Protocol::Auto || transport != Transport::Tcp {
        return None;
    }
    let jitter = rand::rng().random_range(0.0..=0.25);
    Some(Instant::now() + QUIC_PROBE.mul_f64(1.0 + jitter))
}

/// Sleeps until `at`, or forever without one.
pub(crate) async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
