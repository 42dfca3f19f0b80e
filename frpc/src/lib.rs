//! frpc, the private side of frp-quic.
//!
//! [`Client`] dials out to frps over one QUIC connection authenticated with its certificate,
//! sends a `Hello` listing its proxies and learns from the `Welcome` which were published
//! where. Then it accepts the streams the server opens, one per public connection: each starts
//! with a data header naming the proxy, after which the client dials the local service and
//! splices bytes both ways. When the connection fails the client reconnects forever with
//! exponential backoff and jitter; it gives up only on a permanent refusal.
//!
//! A running client can be reloaded ([`ClientHandle::reload`], on SIGHUP, `frpc reload` or
//! the admin API in [`api`]): unchanged proxies keep their registration and open
//! connections, the rest is withdrawn and registered with protocol minor 2 messages (see
//! [`reload`]).

pub mod api;
mod api_proxies;
mod api_server;
pub mod backoff;
pub mod cli;
mod client;
pub mod command;
pub mod config;
pub mod config_edit;
mod config_http;
mod config_proxies;
pub mod config_transport;
mod dial;
mod dial_tcp;
mod handle;
pub mod kubeconfig;
mod metrics;
mod probe;
pub mod program;
mod register;
pub mod reload;
mod session;
mod session_reload;
pub mod status;
mod stream;
mod unreachable;

pub use client::{Client, ClientError};
pub use config::{ClientSettings, LocalProxy};
pub use handle::ClientHandle;
pub use reload::{ReloadError, ReloadReport};
pub use status::{ClientStatus, ProxyState};
pub use stream::ClientGauges;
