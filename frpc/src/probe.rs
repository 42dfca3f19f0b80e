//! `transport.protocol = "auto"` on TCP: try QUIC again now and then, and move the session
//! back once it connects. The new QUIC session takes the proxies over; the TCP one drains
//! (its open connections finish, then it closes), so nothing open is cut.

use std::sync::Arc;

use frp_runtime::link::Transport;
use futures_util::future::BoxFuture;
use rand::Rng as _;
use tokio::time::Instant;

use crate::config::ClientSettings;
use crate::config_transport::{Protocol, QUIC_PROBE};
use crate::handle::Shared;
use crate::register::{Registered, SessionError};

impl Shared {
    /// Connects over QUIC (whatever `transport.protocol` says) and registers, as a future
    /// that owns what it needs.
    pub(crate) fn attempt_quic(
        self: &Arc<Self>,
        settings: Arc<ClientSettings>,
    ) -> BoxFuture<'static, Result<Registered, SessionError>> {
        let me = Arc::clone(self);
        Box::pin(async move {
            let est = me.connect_quic(settings).await?;
            crate::register::register(est).await
        })
    }
}

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
