//! One identity, one session: two frpc sharing a certificate stop flapping, a reconnecting
//! client still takes over at once, its ports stay reserved while it registers again, and
//! identities that differ only in case are one client.

use std::io::Write;
use std::sync::{Arc, Mutex};

use frp_proto::{AddProxies, CloseCode, ControlMsg, ProxyKind, ProxyOutcome, ProxySpec, VhostSpec};
use frp_tests::backends::{echo_once, echo_server};
use frp_tests::raw::{encoded, next_msg, spec, RawClient};
use frp_tests::{
    client_settings, eventually, free_tcp_port, http_proxy, init_logs, server_allowing, tcp_proxy,
    vhost_settings, within, Pki, TestClient, TestServer,
};
use frps::policy::PortSet;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written while it is installed on this thread (a `#[tokio::test]` runs every
/// task on it), warnings and errors only.
#[derive(Clone, Debug, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn tcp_spec(name: &str, port: u16) -> ProxySpec {
    ProxySpec {
        remote_port: port,
        ..spec(name, ProxyKind::Tcp)
    }
}

#[tokio::test]
async fn two_clients_sharing_a_certificate_stop_flapping() {
    let logs = Captured::default();
    let _logging = logs.install();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let mut server = TestServer::start(server_allowing(&pki, &[port]));
    let cert = pki.ca.issue_client("node1").expect("cert");
    let settings = || {
        let proxies = vec![tcp_proxy("web", echo, port)];
        client_settings(pki.client_tls_with(&cert), server.addr, proxies)
    };
    let mut a = TestClient::start(settings());
    a.bound("web").await;
    let mut b = TestClient::start(settings());

    // They replace each other until frps finds them flapping and turns one away.
    let contested = |s: &frpc::ClientStatus| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("already connected"))
    };
    let a_lost = within("one of the two is refused", async {
        tokio::select! {
            _ = a.status.wait_for(contested) => true,
            _ = b.status.wait_for(contested) => false,
        }
    })
    .await;
    let (mut holder, loser) = if a_lost { (b, a) } else { (a, b) };
    let why = loser.status.borrow().last_error.clone().expect("reason");
    for needle in ["node1", "share one certificate", "frps ca issue"] {
        assert!(why.contains(needle), "lacks {needle}: {why}");
    }

    // The holder keeps its session and its port; the loser stays away.
    let public = holder.bound("web").await;
    server
        .wait_for("the holder registered", |s| {
            s.clients
                .get("node1")
                .is_some_and(|c| !c.proxies.is_empty())
        })
        .await;
    let held = server.status.borrow().clients["node1"].clone();
    assert_eq!(echo_once(public, b"still here").await, b"still here");
    assert!(holder.status.borrow().connected);
    assert!(!loser.status.borrow().connected);
    assert_eq!(server.status.borrow().clients["node1"], held);
    let warning = logs.text();
    for needle in [
        "keep replacing each other",
        "client=node1",
        &format!("holder={}", held.remote),
        "newcomer=127.0.0.1:",
    ] {
        assert!(warning.contains(needle), "lacks {needle}: {warning}");
    }
    loser.stop().await.expect("stop");
    holder.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_client_reconnecting_twice_quickly_takes_over_each_time() {
    init_logs();
    let pki = Pki::new();
    let port = free_tcp_port();
    let server = TestServer::start(server_allowing(&pki, &[port]));
    let cert = pki.ca.issue_client("node1").expect("cert");
    // Each connection replaces one the server still thinks is alive, as after a network blip.
    let mut sessions = Vec::new();
    for i in 0..3 {
        let next = RawClient::connect(pki.client_tls_with(&cert), server.addr).await;
        let (send, reader, w) = next.welcomed(vec![tcp_spec("web", port)]).await;
        assert!(
            matches!(w.results[0].outcome, ProxyOutcome::Bound { .. }),
            "{i}: {w:?}"
        );
        if let Some((previous, _, _)) = sessions.last() {
            let previous: &RawClient = previous;
            assert_eq!(
                previous.closed_with().await,
                Some(CloseCode::Replaced),
                "{i}"
            );
        }
        sessions.push((next, send, reader));
    }
    drop(sessions);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_port_stays_reserved_for_its_client_while_a_newer_session_registers() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let (port, spare) = (free_tcp_port(), free_tcp_port());
    let server = TestServer::start(server_allowing(&pki, &[port, spare]));
    let cert = pki.ca.issue_client("node1").expect("cert");
    let proxies = vec![tcp_proxy("web", echo, port), tcp_proxy("old", echo, spare)];
    let mut stale = TestClient::start_stale(&pki, &cert, server.addr, proxies);
    stale.bound("web").await;
    stale.bound("old").await;
    // A newer session of node1, driven by hand: connected, its Hello not sent yet.
    let fresh = RawClient::connect(pki.client_tls_with(&cert), server.addr).await;
    stale.wait_for("old session closed", |s| !s.connected).await;
    let gauges = server.gauges.clone();
    eventually("the old session ended", || gauges.sessions.get() == 1).await;

    let thief = vec![tcp_proxy("web", echo, port)];
    let mut ci = TestClient::connect(&pki, "ci", server.addr, thief);
    let why = ci.refused("web").await;
    assert!(why.contains("in use by another client"), "{why}");
    let (mut send, mut reader, w) = fresh.welcomed(vec![tcp_spec("web", port)]).await;
    match &w.results[0].outcome {
        ProxyOutcome::Bound { remote_addr, .. } => assert_eq!(remote_addr.port(), port),
        other => panic!("node1's port went elsewhere: {other:?}"),
    }
    // What the newer session did not claim again is free once it has registered.
    let add = ControlMsg::AddProxies(AddProxies {
        proxies: Vec::new(),
    });
    send.write_all(&encoded(&add)).await.expect("add-proxies");
    assert!(matches!(
        next_msg(&mut reader).await,
        ControlMsg::AddResults(_)
    ));
    let late = vec![tcp_proxy("old", echo, spare)];
    let mut dave = TestClient::connect(&pki, "dave", server.addr, late);
    assert_eq!(dave.bound("old").await.port(), spare);
    for c in [stale, ci, dave] {
        c.stop().await.expect("stop");
    }
    drop(fresh);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_certificate_differing_only_in_case_is_held_to_its_clients_entry() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let (narrow_port, wide_port) = (free_tcp_port(), free_tcp_port());
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    settings.policy.global =
        PortSet::from_ranges([narrow_port..=narrow_port, wide_port..=wide_port]);
    let own_ports = PortSet::from_ranges([narrow_port..=narrow_port]);
    settings
        .policy
        .per_client
        .insert("narrow".into(), own_ports);
    let own_names = frps::domains::DomainSet::parse(&["narrow.example.com".into()]).expect("set");
    settings
        .domains
        .per_client
        .insert("narrow".into(), own_names);
    let server = TestServer::start(settings);
    let web = |name, host| http_proxy(name, echo, &[host], VhostSpec::default());
    let proxies = vec![
        tcp_proxy("own-port", echo, narrow_port),
        tcp_proxy("wide-port", echo, wide_port),
        web("own-name", "narrow.example.com"),
        web("wide-name", "wide.example.com"),
    ];
    let mut upper = TestClient::connect(&pki, "NARROW", server.addr, proxies);
    upper.bound("own-port").await;
    upper.bound("own-name").await;
    let why = upper.refused("wide-port").await;
    assert!(
        why.contains("outside the allowPorts of client 'NARROW'"),
        "{why}"
    );
    let why = upper.refused("wide-name").await;
    assert!(
        why.contains("outside the allowDomains of client 'NARROW'"),
        "{why}"
    );
    upper.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn identities_differing_only_in_case_are_one_client() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let mut server = TestServer::start(server_allowing(&pki, &[port]));
    let lower = pki.ca.issue_client("node1").expect("cert");
    let proxies = || vec![tcp_proxy("web", echo, port)];
    let mut stale = TestClient::start_stale(&pki, &lower, server.addr, proxies());
    stale.bound("web").await;

    let mut upper = TestClient::connect(&pki, "NODE1", server.addr, proxies());
    let public = upper.bound("web").await;
    assert_eq!(
        public.port(),
        port,
        "NODE1 takes over node1's session and port"
    );
    stale
        .wait_for("node1's session replaced", |s| !s.connected)
        .await;
    server
        .wait_for("one client, shown as its certificate spells it", |s| {
            s.clients.len() == 1 && s.clients.get("node1").is_some_and(|c| c.name == "NODE1")
        })
        .await;
    assert_eq!(echo_once(public, b"one client").await, b"one client");
    stale.stop().await.expect("stop");
    upper.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
