//! A real Prometheus (Debian's `prometheus` package) scrapes frps and frpc, both the real
//! binaries with `enablePrometheus`: queried through Prometheus's HTTP API it finds both
//! targets up, a client count of 2, and per-proxy traffic counters on both sides that grew by
//! at least the bytes moved through the tunnel.

use std::net::SocketAddr;

use frp_tests::backends::{echo_once, random_bytes};
use frp_tests::frpc_admin::{PASSWORD, USER};
use frp_tests::frps_admin::rig;
use frp_tests::prometheus::{Prometheus, Sample, Target};
use frp_tests::{init_logs, LOCALHOST};

/// Whether the one sample of an answer is at least `at_least`.
fn reaches(samples: &[Sample], at_least: f64) -> bool {
    samples.len() == 1 && samples[0].value >= at_least
}

#[tokio::test]
async fn prometheus_scrapes_clients_and_traffic_from_frps_and_frpc() {
    init_logs();
    let r = rig(2).await;
    let data = random_bytes(256 * 1024);
    let public = SocketAddr::new(LOCALHOST, r.ports[0]);
    for _ in 0..2 {
        assert_eq!(echo_once(public, &data).await, data);
    }
    let moved = 2.0 * data.len() as f64;
    let targets = [
        Target {
            job: "frps".into(),
            addr: r.api.addr,
            basic_auth: Some((USER.into(), PASSWORD.into())),
        },
        Target {
            job: "frpc".into(),
            addr: r.node1_api.addr,
            basic_auth: None,
        },
    ];
    let prom = Prometheus::start(&targets).await;

    prom.wait_for("frp_server_client_counts", |s| reaches(s, 2.0))
        .await;
    let query = r#"frp_server_traffic_in_total{client="node1",name="web0",type="tcp"}"#;
    prom.wait_for(query, |s| reaches(s, moved)).await;
    let query = r#"frp_server_traffic_out_total{name="web0"}"#;
    prom.wait_for(query, |s| reaches(s, moved)).await;
    let query = r#"sum(frp_server_traffic_total)"#;
    prom.wait_for(query, |s| reaches(s, 2.0 * moved)).await;
    let query = r#"frp_server_proxy_counts{type="tcp"}"#;
    prom.wait_for(query, |s| reaches(s, 2.0)).await;
    let query = r#"frp_server_quic_rtt_seconds{client="node2"}"#;
    prom.wait_for(query, |s| s.len() == 1 && s[0].value > 0.0)
        .await;
    let query = r#"frpc_proxy_bytes_in_total{proxy="web0"}"#;
    prom.wait_for(query, |s| reaches(s, moved)).await;
    prom.wait_for("frpc_connected", |s| reaches(s, 1.0)).await;

    let up = prom.up().await;
    assert_eq!(up.get("frps"), Some(&1.0), "{up:?}");
    assert_eq!(up.get("frpc"), Some(&1.0), "{up:?}");
}
