//! Live counts of what the server holds open, for tests, the admin API and metrics.

use frp_runtime::Gauge;

/// Open resources of one server.
#[derive(Clone, Debug, Default)]
pub struct ServerGauges {
    /// Client sessions being served.
    pub sessions: Gauge,
    /// Public TCP listeners bound.
    pub listeners: Gauge,
    /// Public TCP connections accepted and not yet closed.
    pub public_connections: Gauge,
    /// Data streams opened toward clients and not yet finished.
    pub streams: Gauge,
}

impl ServerGauges {
    /// All four values, in field order, for comparing against a baseline.
    pub fn snapshot(&self) -> [i64; 4] {
        [
            self.sessions.get(),
            self.listeners.get(),
            self.public_connections.get(),
            self.streams.get(),
        ]
    }
}
