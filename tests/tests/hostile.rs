//! Hostile input from authenticated clients, and revoked certificates: each bad peer ends its
//! own connection with the right code, never a panic, and other clients are unaffected.

use std::time::Duration;

use frp_proto::{
    CloseCode, ControlCodec, ControlMsg, Hello, ProxyKind, ProxyName, ProxyOutcome, ProxySpec,
    PROTOCOL_MINOR,
};
use frp_tests::backends::{echo_once, echo_server};
use frp_tests::raw::{empty_hello, encoded, frame, RawClient};
use frp_tests::{
    client_settings, init_logs, server_settings, tcp_proxy, within, Pki, TestClient, TestServer,
};
use futures_util::{FutureExt as _, StreamExt as _};
use tokio_util::codec::FramedRead;

/// Sends `bytes` as the first thing on the control stream (optionally finishing it) and
/// returns the code the server closed the connection with.
async fn send_raw(pki: &Pki, server: &TestServer, bytes: &[u8], finish: bool) -> Option<CloseCode> {
    let raw = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, _recv) = raw.control().await;
    send.write_all(bytes).await.expect("write");
    if finish {
        send.finish().expect("finish");
    }
    raw.closed_with().await
}

/// A well-behaved client publishing an echo service, to show it is unaffected.
async fn bystander(pki: &Pki, server: &TestServer) -> (TestClient, std::net::SocketAddr) {
    let (echo, _task) = echo_server().await;
    let proxies = vec![tcp_proxy("echo", echo, 0)];
    let mut client = TestClient::connect(pki, "good", server.addr, proxies);
    let public = client.bound("echo").await;
    (client, public)
}

#[tokio::test]
async fn malformed_control_frames_end_only_that_connection() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(server_settings(&pki, 1024..=65535));
    let (good, public) = bystander(&pki, &server).await;

    let hello = encoded(&empty_hello());
    let too_many = frame(7, 1, &[0, 0, 0, 0, 0x0b, 0xb8]); // Hello announcing 3000 proxies
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("garbage body", frame(4, 1, &[0xff, 0xff, 0xff]), false),
        (
            "truncated then finished",
            hello[..hello.len() - 2].to_vec(),
            true,
        ),
        ("oversized length", frame(1 << 20, 1, &[0; 16]), false),
        ("u32::MAX length", frame(u32::MAX, 1, &[]), false),
        ("zero length", frame(0, 0, &[]), false),
        ("unknown tag", frame(1, 99, &[]), false),
        (
            "data header before hello",
            frame(1 + 4 + 7, 16, &[0, 0, 0, 1, 4, 127, 0, 0, 1, 0, 80]),
            false,
        ),
        (
            "welcome from a client",
            encoded(&ControlMsg::Welcome(frp_proto::Welcome {
                minor: 0,
                results: vec![],
            })),
            false,
        ),
        ("three thousand proxies", too_many, false),
        ("finished before hello", Vec::new(), true),
    ];
    for (what, bytes, finish) in cases {
        let code = send_raw(&pki, &server, &bytes, finish).await;
        assert_eq!(code, Some(CloseCode::ProtocolViolation), "{what}");
    }
    assert_eq!(echo_once(public, b"unaffected").await, b"unaffected");
    good.stop().await.expect("stop");
    server.stop().await.expect("server survives");
}

#[tokio::test]
async fn second_hello_and_silence_are_refused_with_their_codes() {
    init_logs();
    let pki = Pki::new();
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.hello_timeout = Duration::from_millis(300);
    let server = TestServer::start(settings);

    // A second Hello after the Welcome.
    let raw = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, recv) = raw.control().await;
    send.write_all(&encoded(&empty_hello()))
        .await
        .expect("hello");
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let welcome = within("welcome", reader.next())
        .await
        .expect("frame")
        .expect("decode");
    assert!(matches!(welcome, ControlMsg::Welcome(_)));
    send.write_all(&encoded(&empty_hello()))
        .await
        .expect("second hello");
    assert_eq!(raw.closed_with().await, Some(CloseCode::ProtocolViolation));

    // Connected but never says Hello (no control stream at all).
    let silent = RawClient::connect(pki.client_tls("silent"), server.addr).await;
    assert_eq!(silent.closed_with().await, Some(CloseCode::HelloTimeout));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_client_gets_one_stream_and_bounded_registrations() {
    init_logs();
    let pki = Pki::new();
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.policy.global = frps::policy::PortSet::from_ranges([40100..=40104]);
    settings.max_proxies_per_client = 200;
    let server = TestServer::start(settings);
    let raw = RawClient::connect(pki.client_tls("greedy"), server.addr).await;
    let (mut send, recv) = raw.control().await;

    let proxies = (0..frp_proto::MAX_PROXIES)
        .map(|i| ProxySpec {
            name: ProxyName::new(format!("p{i}")).expect("name"),
            kind: ProxyKind::Tcp,
            remote_port: 0,
            vhost: Default::default(),
        })
        .collect();
    let hello = ControlMsg::Hello(Hello {
        minor: PROTOCOL_MINOR,
        agent: "greedy".into(),
        proxies,
    });
    send.write_all(&encoded(&hello)).await.expect("hello");
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let Some(Ok(ControlMsg::Welcome(w))) = within("welcome", reader.next()).await else {
        panic!("expected a welcome");
    };
    let bound = w
        .results
        .iter()
        .filter(|r| matches!(r.outcome, ProxyOutcome::Bound { .. }))
        .count();
    let refused_over_limit = w.results[200..]
        .iter()
        .all(|r| matches!(&r.outcome, ProxyOutcome::Refused { reason } if reason.contains("at most 200")));
    assert!(
        bound <= 5,
        "only the five allowed ports can be bound, got {bound}"
    );
    assert!(
        refused_over_limit,
        "proxies past maxPortsPerClient must be refused"
    );

    // The server grants a client exactly one bidirectional stream: its control stream.
    assert!(
        raw.conn.open_bi().now_or_never().is_none(),
        "a second stream must not be granted"
    );
    assert!(raw.conn.close_reason().is_none(), "the connection stays up");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn revoked_certificates_are_refused_and_disconnected_on_reload() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("revoked.txt");
    let early = pki.ca.issue_client("early").expect("cert");
    let later = pki.ca.issue_client("later").expect("cert");
    std::fs::write(
        &list,
        format!(
            "# lost laptop\n{}\n",
            frp_certs::serial_hex(&early.cert_der()).expect("serial")
        ),
    )
    .expect("write list");
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.revoked = frps::revocation::Revocations::load(&list).expect("list");
    settings.revocation_file = Some(list.clone());
    let mut server = TestServer::start(settings);

    // Listed at start: refused at connect, for good.
    let refused = TestClient::start(client_settings(
        pki.client_tls_with(&early),
        server.addr,
        vec![],
    ));
    match refused.finished().await {
        Err(frpc::ClientError::Permanent(reason)) => {
            assert!(reason.contains("revoked"), "{reason}")
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }

    // Connected, then listed: the reload (SIGHUP's job) disconnects it.
    let (echo, _e) = echo_server().await;
    let mut victim = TestClient::start(client_settings(
        pki.client_tls_with(&later),
        server.addr,
        vec![tcp_proxy("e", echo, 0)],
    ));
    victim.bound("e").await;
    let (bystander, public) = bystander(&pki, &server).await;
    std::fs::write(
        &list,
        format!("{}\n", frp_certs::fingerprint(&later.cert_der())),
    )
    .expect("rewrite list");
    assert_eq!(server.reloader.reload().expect("reload"), 1);
    match victim.finished().await {
        Err(frpc::ClientError::Permanent(reason)) => {
            assert!(reason.contains("revoked"), "{reason}")
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    server
        .wait_for("victim gone", |s| !s.clients.contains_key("later"))
        .await;
    assert_eq!(echo_once(public, b"still here").await, b"still here");

    // A broken list is refused and the old one stays in force.
    std::fs::write(&list, "not a serial\n").expect("break list");
    assert!(server.reloader.reload().is_err());
    bystander.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn one_busy_proxy_cannot_take_every_stream_of_its_client() {
    use frp_tests::backends::open_echo;
    use tokio::io::AsyncReadExt as _;
    init_logs();
    let pki = Pki::new();
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.max_connections_per_proxy = 3;
    let server = TestServer::start(settings);
    let (echo, _e) = echo_server().await;
    let proxies = vec![tcp_proxy("busy", echo, 0), tcp_proxy("quiet", echo, 0)];
    let mut client = TestClient::connect(&pki, "node1", server.addr, proxies);
    let (busy, quiet) = (client.bound("busy").await, client.bound("quiet").await);

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open_echo(busy).await);
    }
    // The fourth is turned away at once instead of waiting for stream credit.
    let mut fourth = tokio::net::TcpStream::connect(busy).await.expect("connect");
    let mut buf = [0u8; 8];
    match within("fourth connection refused", fourth.read(&mut buf)).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the fourth connection got {n} bytes"),
    }
    assert_eq!(echo_once(quiet, b"quiet proxy").await, b"quiet proxy");
    drop(held.pop());
    frp_tests::eventually("a slot frees up", || {
        server.gauges.public_connections.get() < 3
    })
    .await;
    assert_eq!(echo_once(busy, b"room again").await, b"room again");
    drop(held);
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

fn vhost_spec(name: &str, kind: ProxyKind, vhost: frp_proto::VhostSpec) -> ProxySpec {
    ProxySpec {
        name: ProxyName::new(name).expect("name"),
        kind,
        remote_port: 0,
        vhost,
    }
}

fn domains(d: &[&str]) -> frp_proto::VhostSpec {
    frp_proto::VhostSpec {
        custom_domains: d.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Vhost registrations frpc would never send, each with (part of) the reason frps gives; the
/// last one is fine.
fn hostile_vhost_specs() -> Vec<(ProxySpec, &'static str)> {
    use frp_proto::{HeaderPair, VhostSpec};
    let spec = vhost_spec;
    let smuggle = VhostSpec {
        response_headers: vec![HeaderPair {
            name: "transfer-encoding".into(),
            value: "chunked".into(),
        }],
        ..domains(&["a.example.com"])
    };
    let https_with_auth = VhostSpec {
        http_user: "u".into(),
        http_password: frp_proto::Secret::new("p"),
        ..domains(&["b.example.com"])
    };
    let dotted = VhostSpec {
        locations: vec!["/public/../admin".into()],
        ..domains(&["c.example.com"])
    };
    vec![
        (
            spec("bad-name", ProxyKind::Http, domains(&["Not A Domain"])),
            "\"Not A Domain\"",
        ),
        (
            spec("no-name", ProxyKind::Http, domains(&[])),
            "needs customDomains or subdomain",
        ),
        (
            spec("smuggle", ProxyKind::Http, smuggle),
            "cannot be set: frps manages it",
        ),
        (
            spec("https-auth", ProxyKind::Https, https_with_auth),
            "takes only customDomains",
        ),
        (
            spec("dotted", ProxyKind::Http, dotted),
            "not in canonical form",
        ),
        (
            spec("ok", ProxyKind::Http, domains(&["ok.example.com"])),
            "",
        ),
    ]
}

#[tokio::test]
async fn bad_vhost_registrations_are_refused_one_by_one() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(frp_tests::vhost_settings(&pki, &["*.example.com"]));
    let raw = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, recv) = raw.control().await;
    let (proxies, reasons): (Vec<ProxySpec>, Vec<&str>) = hostile_vhost_specs().into_iter().unzip();
    let hello = ControlMsg::Hello(Hello {
        minor: PROTOCOL_MINOR,
        agent: "mallory".into(),
        proxies,
    });
    send.write_all(&encoded(&hello)).await.expect("hello");
    let mut reader = FramedRead::new(recv, ControlCodec::new());
    let Some(Ok(ControlMsg::Welcome(w))) = within("welcome", reader.next()).await else {
        panic!("expected a welcome");
    };
    assert_eq!(w.results.len(), reasons.len());
    for (r, want) in w.results.iter().zip(reasons) {
        match (&r.outcome, want) {
            (ProxyOutcome::Bound { .. }, "") => {}
            (ProxyOutcome::Refused { reason }, want) if !want.is_empty() => {
                assert!(reason.contains(want), "{}: {reason}", r.name);
            }
            (outcome, _) => panic!("{}: unexpected {outcome:?}", r.name),
        }
    }
    server.stop().await.expect("stop");
}
