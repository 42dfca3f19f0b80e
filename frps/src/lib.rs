//! frps, the public side of frp-quic.
//!
//! [`Server`] owns one QUIC endpoint. Every client authenticates with a certificate from the
//! deployment's CA; the certificate's common name is its identity. A client's `Hello` lists
//! the proxies it wants; each is checked against the [`policy`] (deny by default), bound on
//! `proxyBindAddr`, and answered in the `Welcome`. Each public TCP connection becomes a fresh
//! server-opened QUIC stream: a data header plus the visitor's first bytes, then raw bytes
//! both ways. When a client's connection ends its listeners close at once, so its ports are
//! free for its next connection; a newer connection of the same identity replaces an older one
//! (unless the two keep replacing each other: [`takeover`]). Identities ignore case
//! ([`identity`]).
//!
//! `http` and `https` proxies share the server's `vhostHTTPPort` and `vhostHTTPSPort` and are
//! chosen by name ([`vhost`]); the names a client may claim are deny-by-default like ports
//! ([`domains`]).

pub mod acme;
pub mod admin;
mod admission;
pub mod budget;
pub mod ca_revoke;
pub mod cli;
pub mod config;
mod config_limits;
mod config_vhost;
pub mod domains;
pub mod gauges;
pub mod identity;
pub mod policy;
mod proxy;
pub mod registry;
pub mod revocation;
mod server;
mod session;
mod session_publish;
mod session_vhost;
pub mod stats;
pub mod status;
pub mod takeover;
mod tcp_transport;
pub mod vhost;

pub use admin::ServerApi;
pub use admission::{HandshakeCounts, HandshakeStats};
pub use config::ServerSettings;
pub use gauges::ServerGauges;
pub use registry::{ClientStatus, ServerStatus};
pub use server::{Reloader, Server};
pub use vhost::{AccessEntry, VhostSettings};
