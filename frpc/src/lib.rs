//! frpc, the private side of frp-quic.
//!
//! [`Client`] dials out to frps over one QUIC connection authenticated with its certificate,
//! sends a `Hello` listing its proxies and learns from the `Welcome` which were published
//! where. Then it accepts the streams the server opens, one per public connection: each starts
//! with a data header naming the proxy, after which the client dials the local service and
//! splices bytes both ways. When the connection fails the client reconnects forever with
//! exponential backoff and jitter; it gives up only on a permanent refusal.

pub mod backoff;
pub mod cli;
mod client;
pub mod config;
mod config_http;
mod config_proxies;
pub mod kubeconfig;
mod session;
pub mod status;
mod stream;

pub use client::{Client, ClientError};
pub use config::{ClientSettings, LocalProxy};
pub use status::{ClientStatus, ProxyState};
pub use stream::ClientGauges;
