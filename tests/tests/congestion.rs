//! `transport.quic.congestionControl` reaches the connections: a real QUIC connection with
//! mutual TLS, both ends built from [`QuicTuning::transport_config`] (what frps and frpc
//! build their endpoints from), runs the configured controller on each side.

use std::sync::Arc;

use frp_runtime::congestion::{Bbr, CongestionControl};
use frp_runtime::transport::{bind_udp, endpoint};
use frp_runtime::QuicTuning;
use frp_tests::{within, Pki, LOCALHOST};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::congestion::{Controller, Cubic, NewReno};

/// Which controller `c` is, by its concrete type.
fn kind(c: Box<dyn Controller>) -> CongestionControl {
    let any = c.into_any();
    if any.is::<Bbr>() {
        CongestionControl::Bbr
    } else if any.is::<Cubic>() {
        CongestionControl::Cubic
    } else {
        assert!(any.is::<NewReno>(), "an unknown controller");
        CongestionControl::NewReno
    }
}

#[tokio::test]
async fn each_end_runs_the_controller_its_config_names() {
    let pki = Pki::new();
    for cc in [
        CongestionControl::Bbr,
        CongestionControl::Cubic,
        CongestionControl::NewReno,
    ] {
        let mut tuning = QuicTuning::with_streams(8);
        tuning.congestion = cc;
        let transport = tuning.transport_config().expect("transport config");

        let crypto = QuicServerConfig::try_from(pki.server_tls()).expect("server tls");
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::clone(&transport));
        let socket = bind_udp((LOCALHOST, 0).into()).expect("bind");
        let server = endpoint(socket, Some(server)).expect("server endpoint");
        let addr = server.local_addr().expect("server address");

        let crypto = QuicClientConfig::try_from(pki.client_tls("node1")).expect("client tls");
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport);
        let socket = bind_udp((LOCALHOST, 0).into()).expect("bind");
        let client_end = endpoint(socket, None).expect("client endpoint");
        let connecting = client_end
            .connect_with(client, addr, "localhost")
            .expect("connect");
        let accepted = async { server.accept().await.expect("incoming").await };
        let (dialled, accepted) =
            within("handshake", async { tokio::join!(connecting, accepted) }).await;
        let (dialled, accepted) = (
            dialled.expect("client side"),
            accepted.expect("server side"),
        );
        assert_eq!(kind(dialled.congestion_state()), cc, "client side");
        assert_eq!(kind(accepted.congestion_state()), cc, "server side");
        dialled.close(0u32.into(), b"done");
        server.close(0u32.into(), b"done");
    }
}
