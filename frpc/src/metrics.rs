//! frpc's Prometheus metrics (`enablePrometheus`), served by the admin server on `/metrics`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `frpc_connected` | gauge: 1 while a session is up | |
//! | `frpc_proxies` | gauge: proxies per state | `state` (`running`, `refused`, `pending`, `disabled`) |
//! | `frpc_streams_open` | gauge: tunneled connections open | |
//! | `frpc_stream_credit` | gauge: tunneled connections the server may open at once, grown with use up to `maxIncomingStreams` (0 while disconnected) | |
//! | `frpc_rtt_seconds` | gauge: the connection's round-trip time (while connected) | |
//! | `frpc_proxy_bytes_in_total` | counter: bytes from visitors to the local service | `proxy` |
//! | `frpc_proxy_bytes_out_total` | counter: bytes from the local service to visitors | `proxy` |
//! | `frpc_reconnects_total` | counter: sessions lost and connection attempts failed | |
//!
//! Labels are bounded: `proxy` takes the names of this client's configured proxies only (a
//! proxy removed by a reload loses its series), `state` four values. Bytes are counted when a
//! connection closes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use frp_proto::ProxyName;
use frp_runtime::SpliceStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::ClientSettings;
use crate::handle::Shared;
use crate::status::ProxyState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabel {
    proxy: String,
}

/// The counters; the gauges are read from the client's state at each scrape.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    bytes_in: Family<ProxyLabel, Counter>,
    bytes_out: Family<ProxyLabel, Counter>,
    reconnects: Counter,
    /// The proxies that have series, to drop those a reload removed.
    named: Mutex<HashSet<ProxyName>>,
}

impl Metrics {
    /// Counts what one connection of `proxy` moved.
    pub(crate) fn transferred(&self, proxy: &ProxyName, stats: SpliceStats) {
        let label = ProxyLabel {
            proxy: proxy.to_string(),
        };
        self.bytes_in
            .get_or_create(&label)
            .inc_by(stats.quic_to_tcp);
        self.bytes_out
            .get_or_create(&label)
            .inc_by(stats.tcp_to_quic);
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        named.insert(proxy.clone());
    }

    /// A session was lost or a connection attempt failed.
    pub(crate) fn reconnected(&self) {
        self.reconnects.inc();
    }

    /// Drops the series of proxies `settings` no longer has.
    pub(crate) fn keep_only(&self, settings: &ClientSettings) {
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        let configured = |n: &ProxyName| {
            let mut all = settings.proxies.iter().chain(&settings.disabled);
            all.any(|p| p.name == *n)
        };
        named.retain(|n| {
            let keep = configured(n);
            if !keep {
                let label = ProxyLabel {
                    proxy: n.to_string(),
                };
                self.bytes_in.remove(&label);
                self.bytes_out.remove(&label);
            }
            keep
        });
    }
}

/// A registry with every `frpc_*` metric of the client behind `shared`.
pub(crate) fn registry(shared: &Arc<Shared>) -> Registry {
    let mut r = Registry::default();
    let m = &shared.metrics;
    r.register(
        "frpc_proxy_bytes_in",
        "Bytes from visitors to the local service, per proxy",
        m.bytes_in.clone(),
    );
    r.register(
        "frpc_proxy_bytes_out",
        "Bytes from the local service to visitors, per proxy",
        m.bytes_out.clone(),
    );
    r.register(
        "frpc_reconnects",
        "Sessions lost and connection attempts failed",
        m.reconnects.clone(),
    );
    r.register_collector(Box::new(Live(Arc::clone(shared))));
    r
}

/// The gauges, read at each scrape.
#[derive(Debug)]
struct Live(Arc<Shared>);

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let status = self.0.status.borrow().clone();
        let gauge = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64| {
            let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(m)
        };
        let connected = i64::from(status.connected);
        gauge(
            &mut encoder,
            "frpc_connected",
            "Whether a session with the server is up",
            connected,
        )?;
        let streams = self.0.gauges.streams.get();
        gauge(
            &mut encoder,
            "frpc_streams_open",
            "Tunneled connections open",
            streams,
        )?;
        gauge(
            &mut encoder,
            "frpc_stream_credit",
            "Tunneled connections the server may have open at once; grows with use up to transport.quic.maxIncomingStreams",
            self.0.gauges.stream_credit.get(),
        )?;
        let mut family = encoder.encode_descriptor(
            "frpc_proxies",
            "Configured proxies by state",
            None,
            MetricType::Gauge,
        )?;
        for state in [
            ProxyState::Bound(([0, 0, 0, 0], 0).into()),
            ProxyState::Refused(String::new()),
            ProxyState::Pending,
            ProxyState::Disabled,
        ] {
            let n = status
                .proxies
                .values()
                .filter(|s| s.as_str() == state.as_str())
                .count();
            let labels = [("state", state.as_str())];
            let count = i64::try_from(n).unwrap_or(i64::MAX);
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        if let Some(rtt) = self.0.rtt() {
            let m = encoder.encode_descriptor(
                "frpc_rtt_seconds",
                "Round-trip time of the connection to the server",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(rtt.as_secs_f64()).encode(m)?;
        }
        Ok(())
    }
}
