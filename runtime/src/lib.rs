//! What both ends of frp-quic run on.
//!
//! - [`transport`]: the QUIC transport tuning (windows, stream limits, keep-alive) and the UDP
//!   socket setup, documented where each number is chosen; the endpoint secret that lets a
//!   restarted server reset its old clients' connections.
//! - [`credit`]: the stream credit granted to the peer as streams are needed, not all at once.
//! - [`handshake`]: how frps admits handshakes (Retry, limits) and what a refused one means.
//! - [`splice`]: the data path between a TCP socket and a QUIC stream, with TCP's half-close
//!   and reset semantics carried across.
//! - [`config`]: TOML loading with frp's key names, refusing unsupported keys by name.
//! - [`gauge`]: live counters of open resources, read by tests and metrics.
//! - [`global_allocator!`]: the binaries' allocator, by their features.
//! - [`logging`] and [`shutdown`]: what the thin binaries wire up before calling the libraries.
//! - [`notify`]: readiness for systemd's `Type=notify` units.

mod allocator;
mod chunk;
pub mod config;
pub mod congestion;
pub mod credit;
pub mod gauge;
pub mod handshake;
pub mod link;
pub mod logging;
pub mod notify;
pub mod per_source;
pub mod priority;
pub mod program;
mod sections;
pub mod shutdown;
pub mod splice;
pub mod traffic;
pub mod transport;

pub use config::{ConfigError, EXIT_CONFIG};
pub use credit::{CreditLedger, StreamCredit};
pub use gauge::Gauge;
pub use splice::{splice, SpliceError, SpliceStats};
pub use traffic::Traffic;
pub use transport::QuicTuning;
