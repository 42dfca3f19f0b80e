//! What each published proxy has carried, counted live by the data path, for the admin API
//! and `/metrics`.
//!
//! A [`ProxyStats`] is made when a proxy is published and shared (one `Arc`) by its listener,
//! its vhost backend and every connection it carries: each connection holds its
//! [`connections`](ProxyStats::connections) gauge while open and adds its bytes to
//! [`traffic`](ProxyStats::traffic) as they move (one relaxed atomic add per chunk). "In" is
//! what visitors sent toward the client's service, "out" what came back, as in frp's
//! `traffic_in` / `traffic_out`. When a proxy goes away its bytes move to the registry's
//! totals of ended proxies ([`ProxyStats::retire_into`]), so the server's figures keep
//! counting what ended.

use std::net::SocketAddr;
use std::time::SystemTime;

use frp_proto::{ProxyKind, ProxyName};
use frp_runtime::{Gauge, Traffic};

use crate::domains::DomainPattern;

/// One published proxy: what it is and what it carried.
#[derive(Debug)]
pub struct ProxyStats {
    /// Its name (unique within its client's session).
    pub name: ProxyName,
    /// `tcp`, `http` or `https`.
    pub kind: ProxyKind,
    /// The public address: a tcp proxy's own port, or the vhost port.
    pub remote: SocketAddr,
    /// The names an http/https proxy answers for (empty for tcp).
    pub hosts: Vec<DomainPattern>,
    /// An http proxy's locations (empty otherwise).
    pub locations: Vec<String>,
    /// When it was published.
    pub started: SystemTime,
    /// Its public connections (http: backend connections) open now.
    pub connections: Gauge,
    /// Bytes moved: visitor to service (`tcp_to_quic`, "in") and back (`quic_to_tcp`, "out").
    pub traffic: Traffic,
}

impl ProxyStats {
    /// A proxy published now, with nothing carried yet.
    pub fn new(name: ProxyName, kind: ProxyKind, remote: SocketAddr) -> Self {
        Self {
            name,
            kind,
            remote,
            hosts: Vec::new(),
            locations: Vec::new(),
            started: SystemTime::now(),
            connections: Gauge::default(),
            traffic: Traffic::default(),
        }
    }

    /// Bytes from visitors toward the service so far.
    pub fn bytes_in(&self) -> u64 {
        self.traffic.tcp_to_quic()
    }

    /// Bytes from the service back to visitors so far.
    pub fn bytes_out(&self) -> u64 {
        self.traffic.quic_to_tcp()
    }

    /// Adds what this proxy carried to `retired`, the totals of proxies that went away.
    pub fn retire_into(&self, retired: &Traffic) {
        retired.add_tcp_to_quic(self.bytes_in());
        retired.add_quic_to_tcp(self.bytes_out());
    }
}
