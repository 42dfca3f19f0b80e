//! frps's Prometheus metrics (`enablePrometheus`), read from the live state at each scrape
//! and encoded by `prometheus-client` (OpenMetrics text):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `frp_server_client_counts` | gauge: clients connected | |
//! | `frp_server_proxy_counts` | gauge: proxies published | `type` |
//! | `frp_server_connection_counts` | gauge: public connections open | `client`, `name`, `type` |
//! | `frp_server_traffic_in_total` | counter: bytes from visitors since the proxy was published | `client`, `name`, `type` |
//! | `frp_server_traffic_out_total` | counter: bytes back to visitors | `client`, `name`, `type` |
//! | `frp_server_traffic_total` | counter: all bytes since the start, ended proxies included | `direction` (`in`, `out`) |
//! | `frp_server_quic_rtt_seconds` | gauge: round-trip time | `client` |
//! | `frp_server_quic_congestion_window_bytes` | gauge | `client` |
//! | `frp_server_quic_lost_packets_total` | counter: packets lost on the connection | `client` |
//! | `frp_server_handshakes_total` | counter: connection attempts by outcome | `outcome` |
//! | `frp_server_handshakes_in_progress` | gauge | |
//! | `frp_server_acme_orders_total` | counter: ACME orders (with `[vhostHTTPS.acme]`) | `result` (`issued`, `failed`) |
//! | `frp_server_vhost_requests_total` | counter: HTTP requests answered | `scheme`, `class` (`2xx`...) |
//! | `process_*` | the process's CPU, RSS, open files (from `frp-admin`) | |
//!
//! Label values are bounded by what the server allows: `client` by the connected clients,
//! `name` by each one's proxies (`maxPortsPerClient`), `type` three values, `outcome` seven,
//! `scheme` × `class` ten. A client or proxy that goes away loses its series; a proxy's
//! counters start again at 0 when it is published again (Prometheus's `rate()` handles the
//! reset), while `frp_server_traffic_total` only grows.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::views::ServerInfo;
use super::ServerApi;
use crate::registry::SessionView;

/// A registry whose one collector reads the server behind `api` at each scrape.
pub(crate) fn registry(api: Arc<ServerApi>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Live(api)));
    r
}

#[derive(Debug)]
struct Live(Arc<ServerApi>);

type Result = std::result::Result<(), std::fmt::Error>;

/// Writes one family: `(labels, value)` per series.
fn family<L, V>(
    enc: &mut DescriptorEncoder<'_>,
    (name, help, kind): (&str, &str, MetricType),
    series: impl IntoIterator<Item = (L, V)>,
) -> Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
    V: Into<f64>,
{
    let mut f = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in series {
        let v: f64 = v.into();
        let m = f.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(m)?,
            _ => ConstGauge::new(v).encode(m)?,
        }
    }
    Ok(())
}

/// Counts as metric values (exact below 2^53).
fn num(n: u64) -> f64 {
    n as f64
}

impl Collector for Live {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result {
        let sessions = self.0.shared.registry.sessions();
        let info = ServerInfo::from_sessions(&self.0, &sessions);
        let gauge = MetricType::Gauge;
        let counter = MetricType::Counter;
        let none: [(&str, &str); 0] = [];
        let clients = ("frp_server_client_counts", "Clients connected", gauge);
        family(&mut enc, clients, [(none, num(info.client_counts as u64))])?;
        let by_type = info
            .proxy_counts
            .iter()
            .map(|(k, n)| ([("type", k.as_str())], num(*n as u64)));
        family(
            &mut enc,
            ("frp_server_proxy_counts", "Proxies published", gauge),
            by_type,
        )?;
        proxies(&mut enc, &sessions)?;
        let total = [
            ([("direction", "in")], num(info.bytes_in)),
            ([("direction", "out")], num(info.bytes_out)),
        ];
        let help = "Bytes carried since the start, proxies that ended included";
        family(&mut enc, ("frp_server_traffic", help, counter), total)?;
        quic(&mut enc, &sessions)?;
        self.handshakes(&mut enc)?;
        if let Some(acme) = &self.0.shared.acme {
            let orders = [
                (
                    [("result", "issued")],
                    num(acme.issued.load(Ordering::Relaxed)),
                ),
                (
                    [("result", "failed")],
                    num(acme.failed.load(Ordering::Relaxed)),
                ),
            ];
            let help = "ACME orders by result (renewals included)";
            family(&mut enc, ("frp_server_acme_orders", help, counter), orders)?;
        }
        let requests = self.0.shared.access.counts();
        let requests = requests
            .iter()
            .map(|(scheme, class, n)| ([("scheme", *scheme), ("class", class.as_str())], num(*n)));
        let help = "HTTP requests answered on the vhost ports, by status class";
        family(
            &mut enc,
            ("frp_server_vhost_requests", help, counter),
            requests,
        )
    }
}

/// Per-proxy connections and traffic.
fn proxies(enc: &mut DescriptorEncoder<'_>, sessions: &[SessionView]) -> Result {
    let each = || {
        sessions.iter().flat_map(|s| {
            s.proxies.iter().map(move |p| {
                let labels = [
                    ("client", s.name.clone()),
                    ("name", p.name.to_string()),
                    ("type", p.kind.as_str().to_string()),
                ];
                (labels, p)
            })
        })
    };
    let conns = each().map(|(l, p)| (l, num(p.connections.get().max(0) as u64)));
    let help = "Public connections open, per proxy";
    family(
        enc,
        ("frp_server_connection_counts", help, MetricType::Gauge),
        conns,
    )?;
    let bytes_in = each().map(|(l, p)| (l, num(p.bytes_in())));
    let help = "Bytes from visitors to the service, per proxy, since it was published";
    family(
        enc,
        ("frp_server_traffic_in", help, MetricType::Counter),
        bytes_in,
    )?;
    let bytes_out = each().map(|(l, p)| (l, num(p.bytes_out())));
    let help = "Bytes from the service to visitors, per proxy, since it was published";
    family(
        enc,
        ("frp_server_traffic_out", help, MetricType::Counter),
        bytes_out,
    )
}

/// quinn's figures for each client's connection.
fn quic(enc: &mut DescriptorEncoder<'_>, sessions: &[SessionView]) -> Result {
    let stats: Vec<_> = sessions
        .iter()
        .map(|s| ([("client", s.name.clone())], s.conn.path_stats()))
        .collect();
    let rtt = stats.iter().map(|(l, p)| (l.clone(), p.rtt.as_secs_f64()));
    let help = "Round-trip time of the client's connection";
    family(
        enc,
        ("frp_server_quic_rtt_seconds", help, MetricType::Gauge),
        rtt,
    )?;
    let cwnd = stats.iter().map(|(l, p)| (l.clone(), num(p.cwnd)));
    let help = "Congestion window of the client's connection";
    let name = "frp_server_quic_congestion_window_bytes";
    family(enc, (name, help, MetricType::Gauge), cwnd)?;
    let lost = stats.iter().map(|(l, p)| (l.clone(), num(p.lost_packets)));
    let help = "Packets lost on the client's connection";
    family(
        enc,
        ("frp_server_quic_lost_packets", help, MetricType::Counter),
        lost,
    )
}

impl Live {
    fn handshakes(&self, enc: &mut DescriptorEncoder<'_>) -> Result {
        let h = self.0.handshakes.snapshot();
        let outcomes = [
            ("completed", h.completed),
            ("retried", h.retried),
            ("ignored", h.ignored),
            ("refused", h.refused),
            ("tls_refused", h.tls_refused),
            ("timed_out", h.timed_out),
            ("failed", h.failed),
        ];
        let series = outcomes.map(|(o, n)| ([("outcome", o)], num(n)));
        let help = "Connection attempts by outcome (refused and ignored: no room for them)";
        family(
            enc,
            ("frp_server_handshakes", help, MetricType::Counter),
            series,
        )?;
        let none: [(&str, &str); 0] = [];
        let help = "QUIC handshakes under way";
        let name = "frp_server_handshakes_in_progress";
        family(
            enc,
            (name, help, MetricType::Gauge),
            [(none, num(h.under_way))],
        )
    }
}
