//! The admin web server of frps and frpc (`[webServer]` in their config files).
//!
//! One small HTTP/1.1 server (hyper, optionally over TLS) per program, on `127.0.0.1` unless
//! configured otherwise, with:
//!
//! - `GET /healthz` (the process is alive) and `GET /readyz` (it is ready: listeners bound,
//!   or for frpc its session up), which need no credentials, for probes;
//! - `GET /metrics` in the OpenMetrics text format when `enablePrometheus` is on, encoded by
//!   the `prometheus-client` crate from the program's registry plus the process's own figures;
//! - the program's dashboard ([`Dashboard`]: files embedded in the binary) at `/` and `/ui/*`;
//! - everything else handed to the program's [`Handler`] (the JSON API under `/api/v1`), with
//!   its body read whole up to 1 MiB.
//!
//! With `webServer.user` and `webServer.password` set, every request but the probes needs
//! them (basic auth, compared in constant time); repeated failures from one address are
//! answered `429` for a growing time without looking at the password. A non-loopback address
//! without credentials is a config error unless `webServer.insecureAllowOpen` is set.
//! Requests that change state (`POST`, `PUT`, `DELETE`) from another site's page are refused.

pub mod api;
pub mod assets;
mod auth;
mod body;
pub mod cli;
pub mod client;
pub mod config;
mod guard;
pub mod process;
mod server;

pub use api::{rfc3339, ApiError, ApiRequest, ApiResponse, Handler};
pub use assets::Dashboard;
pub use config::{web_settings_of, Credentials, WebServerSection, WebServerSettings};
pub use server::{AdminServer, CONTENT_SECURITY_POLICY};
