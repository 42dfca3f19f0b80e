//! Wire compatibility across minor versions: a frpc with http proxies against a server that
//! speaks minor 0 (hand-driven, as an older frps would answer) keeps its tcp proxies and says
//! why its http proxies are not served; against a current server it registers them after the
//! `Welcome`, in `AddProxies`, and a server going away before it answers them is no
//! protocol violation. A reload against a server before minor 2 that changes proxies starts a
//! new session at once (there is no `RemoveProxies` to send it); one that changes only a local
//! service does not.

use std::net::SocketAddr;

use frp_proto::{
    AddResults, ControlMsg, GoingAway, ProxyId, ProxyKind, ProxyOutcome, ProxyResult, Welcome,
    PROTOCOL_MINOR,
};
use frp_tests::backends::closed_port;
use frp_tests::raw::RawServer;
use frp_tests::{
    client_settings, http_proxy, init_logs, tcp_proxy, vhost_settings, within, Pki, TestClient,
    TestServer,
};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_util::codec::FramedWrite;

/// What a minor-0 frps answers a Hello of one tcp proxy: bound at `public`.
fn minor_zero_welcome(name: &frp_proto::ProxyName, public: SocketAddr) -> Welcome {
    Welcome {
        minor: 0,
        results: vec![ProxyResult {
            name: name.clone(),
            outcome: ProxyOutcome::Bound {
                id: ProxyId(1),
                remote_addr: public,
            },
        }],
    }
}

#[tokio::test]
async fn a_minor_zero_server_serves_the_tcp_proxies_and_http_ones_are_refused_with_a_reason() {
    init_logs();
    let pki = Pki::new();
    let old = RawServer::bind(&pki);
    let local = closed_port().await;
    let proxies = vec![
        tcp_proxy("ssh", local, 6022),
        http_proxy("web", local, &["web.example.com"], Default::default()),
    ];
    let mut client = TestClient::start(client_settings(
        pki.client_tls("node1"),
        old.addr(),
        proxies,
    ));
    let (conn, send, mut reader, first) = old.accept().await;
    let ControlMsg::Hello(hello) = first else {
        panic!("expected a hello, got {first:?}");
    };
    let kinds: Vec<ProxyKind> = hello.proxies.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ProxyKind::Tcp],
        "the hello holds only what minor 0 decodes"
    );
    let public: SocketAddr = "127.0.0.1:6022".parse().expect("addr");
    let welcome = minor_zero_welcome(&hello.proxies[0].name, public);
    let mut writer = FramedWrite::new(send, frp_proto::ControlCodec::new());
    within("welcome", writer.send(ControlMsg::Welcome(welcome)))
        .await
        .expect("send welcome");
    assert_eq!(client.bound("ssh").await, public);
    let reason = client.refused("web").await;
    assert_eq!(
        reason,
        "server protocol minor 0 does not support http/https proxies"
    );
    assert!(client.status.borrow().connected, "the session stays up");
    assert!(
        futures_util::FutureExt::now_or_never(reader.next()).is_none(),
        "nothing else was sent to the old server"
    );
    client.stop().await.expect("stop");
    drop(conn);
}

#[tokio::test]
async fn a_current_server_gets_the_http_proxies_after_the_welcome() {
    init_logs();
    let pki = Pki::new();
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    let port = frp_tests::free_tcp_port();
    settings.policy.global = frps::policy::PortSet::from_ranges([port..=port]);
    let server = TestServer::start(settings);
    let local = closed_port().await;
    let proxies = vec![
        http_proxy("web", local, &["web.example.com"], Default::default()),
        tcp_proxy("ssh", local, port),
        http_proxy("api", local, &["api.example.com"], Default::default()),
    ];
    let mut client = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = server.http.expect("http port");
    assert_eq!(client.bound("web").await, http);
    assert_eq!(client.bound("api").await, http);
    assert_eq!(client.bound("ssh").await.port(), port);
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// A hand-driven current server: accepts a frpc with `ssh` (tcp) and `web`, `api` (http),
/// checks the Hello holds only the tcp proxy, answers it with `Welcome`, and returns the
/// `AddProxies` that followed, with the connection and the control stream's write half.
async fn welcome_then_add_proxies(
    server: &RawServer,
) -> (
    quinn::Connection,
    FramedWrite<quinn::SendStream, frp_proto::ControlCodec>,
    frp_proto::AddProxies,
) {
    let (conn, send, mut reader, first) = server.accept().await;
    let ControlMsg::Hello(hello) = first else {
        panic!("expected a hello, got {first:?}");
    };
    let names: Vec<&str> = hello.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ssh"], "http proxies never travel in the hello");
    let public: SocketAddr = "127.0.0.1:6022".parse().expect("addr");
    let mut welcome = minor_zero_welcome(&hello.proxies[0].name, public);
    welcome.minor = PROTOCOL_MINOR;
    let mut writer = FramedWrite::new(send, frp_proto::ControlCodec::new());
    within("welcome", writer.send(ControlMsg::Welcome(welcome)))
        .await
        .expect("send welcome");
    let next = within("add-proxies", reader.next())
        .await
        .expect("a message")
        .expect("decodes");
    let ControlMsg::AddProxies(add) = next else {
        panic!("expected add-proxies, got {next:?}");
    };
    let names: Vec<(&str, ProxyKind)> = add
        .proxies
        .iter()
        .map(|p| (p.name.as_str(), p.kind))
        .collect();
    assert_eq!(names, [("web", ProxyKind::Http), ("api", ProxyKind::Http)]);
    (conn, writer, add)
}

fn web_client(server: SocketAddr, pki: &Pki, local: SocketAddr) -> frpc::ClientSettings {
    let proxies = vec![
        http_proxy("web", local, &["web.example.com"], Default::default()),
        tcp_proxy("ssh", local, 6022),
        http_proxy("api", local, &["api.example.com"], Default::default()),
    ];
    client_settings(pki.client_tls("node1"), server, proxies)
}

#[tokio::test]
async fn http_proxies_travel_in_add_proxies_after_the_welcome() {
    init_logs();
    let pki = Pki::new();
    let server = RawServer::bind(&pki);
    let local = closed_port().await;
    let mut client = TestClient::start(web_client(server.addr(), &pki, local));
    let (conn, mut writer, add) = welcome_then_add_proxies(&server).await;
    let vhost: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let results = add
        .proxies
        .iter()
        .zip(10..)
        .map(|(p, id)| ProxyResult {
            name: p.name.clone(),
            outcome: ProxyOutcome::Bound {
                id: ProxyId(id),
                remote_addr: vhost,
            },
        })
        .collect();
    let answer = ControlMsg::AddResults(AddResults { results });
    within("add-results", writer.send(answer))
        .await
        .expect("send add-results");
    assert_eq!(client.bound("web").await, vhost);
    assert_eq!(client.bound("api").await, vhost);
    assert_eq!(client.bound("ssh").await.port(), 6022);
    client.stop().await.expect("stop");
    drop(conn);
}

#[tokio::test]
async fn a_server_going_away_before_it_answers_add_proxies_is_no_violation() {
    init_logs();
    let pki = Pki::new();
    let server = RawServer::bind(&pki);
    let local = closed_port().await;
    let mut settings = web_client(server.addr(), &pki, local);
    // Far longer than the test's own timeouts: the client must not wait it out.
    settings.connect_timeout = std::time::Duration::from_secs(3600);
    let mut client = TestClient::start(settings);
    let (conn, mut writer, _) = welcome_then_add_proxies(&server).await;
    let notice = ControlMsg::GoingAway(GoingAway {
        reason: "server shutting down".into(),
    });
    within("going-away", writer.send(notice))
        .await
        .expect("send going-away");
    let why = client.refused("web").await;
    assert!(why.contains("going away"), "{why}");
    assert_eq!(client.bound("ssh").await.port(), 6022, "tcp proxies stay");
    assert!(client.status.borrow().connected);
    assert!(
        conn.close_reason().is_none(),
        "the client did not close the connection as a protocol violation"
    );
    client.stop().await.expect("stop");
}

#[tokio::test]
async fn a_reload_against_a_minor_one_server_reconnects_and_a_local_change_does_not() {
    init_logs();
    let pki = Pki::new();
    let old = RawServer::bind(&pki);
    let local = closed_port().await;
    let settings = client_settings(
        pki.client_tls("node1"),
        old.addr(),
        vec![tcp_proxy("ssh", local, 6022)],
    );
    let client = frpc::Client::new(settings.clone()).expect("client");
    let handle = client.handle();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(client.run(stop.clone()));
    let welcome = |names: &[&frp_proto::ProxyName]| {
        let results = names
            .iter()
            .zip(1..)
            .map(|(n, port)| ProxyResult {
                name: (*n).clone(),
                outcome: ProxyOutcome::Bound {
                    id: ProxyId(port),
                    remote_addr: SocketAddr::from(([127, 0, 0, 1], 6000 + port as u16)),
                },
            })
            .collect();
        ControlMsg::Welcome(Welcome { minor: 1, results })
    };
    let (conn, send, mut reader, first) = old.accept().await;
    let ControlMsg::Hello(hello) = first else {
        panic!("hello")
    };
    let mut writer = FramedWrite::new(send, frp_proto::ControlCodec::new());
    within("welcome", writer.send(welcome(&[&hello.proxies[0].name])))
        .await
        .expect("send");
    let mut status = handle.subscribe();
    within("ssh bound", status.wait_for(|s| s.bound("ssh").is_some()))
        .await
        .expect("status");

    // Only the local service changes: applied in place, nothing sent.
    let mut retargeted = settings.clone();
    retargeted.proxies[0].local_port = local.port().wrapping_add(1).max(1);
    let report = within("reload", handle.reload(retargeted.clone()))
        .await
        .expect("reload");
    assert_eq!(
        (report.retargeted.as_slice(), report.reconnected),
        (&["ssh".to_string()][..], false)
    );
    assert!(
        futures_util::FutureExt::now_or_never(reader.next()).is_none(),
        "nothing sent"
    );

    // A proxy added: the client says goodbye and registers everything in a new session.
    let mut added = retargeted;
    added.proxies.push(tcp_proxy("db", local, 6033));
    let reload = tokio::spawn({
        let handle = handle.clone();
        async move { handle.reload(added).await }
    });
    let bye = within("goodbye", reader.next())
        .await
        .expect("a message")
        .expect("decodes");
    assert!(
        matches!(bye, ControlMsg::GoingAway(_)),
        "no remove-proxies to a minor-1 server: {bye:?}"
    );
    let (_conn2, send2, _reader2, first) = old.accept().await;
    let ControlMsg::Hello(hello) = first else {
        panic!("hello")
    };
    let names: Vec<&frp_proto::ProxyName> = hello.proxies.iter().map(|p| &p.name).collect();
    assert_eq!(
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        ["ssh", "db"]
    );
    let mut writer2 = FramedWrite::new(send2, frp_proto::ControlCodec::new());
    within("welcome", writer2.send(welcome(&names)))
        .await
        .expect("send");
    let report = within("reload answer", reload)
        .await
        .expect("task")
        .expect("reload");
    assert_eq!(report.added, ["db"]);
    assert!(report.reconnected && report.connected, "{report:?}");
    let s = within("db bound", status.wait_for(|s| s.bound("db").is_some()))
        .await
        .expect("status")
        .clone();
    assert_eq!(s.sessions, 2);
    stop.cancel();
    within("client stops", task)
        .await
        .expect("task")
        .expect("clean stop");
    drop(conn);
}

#[tokio::test]
async fn against_a_minor_two_server_a_reload_removes_then_adds_and_withdrawals_are_shown() {
    init_logs();
    let pki = Pki::new();
    let server = RawServer::bind(&pki);
    let local = closed_port().await;
    let proxies = vec![tcp_proxy("ssh", local, 6022), tcp_proxy("db", local, 6033)];
    let settings = client_settings(pki.client_tls("node1"), server.addr(), proxies);
    let client = frpc::Client::new(settings.clone()).expect("client");
    let handle = client.handle();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(client.run(stop.clone()));
    let bound = |name: &frp_proto::ProxyName, id: u32| ProxyResult {
        name: name.clone(),
        outcome: ProxyOutcome::Bound {
            id: ProxyId(id),
            remote_addr: SocketAddr::from(([127, 0, 0, 1], 6000 + id as u16)),
        },
    };
    let (conn, send, mut reader, first) = server.accept().await;
    let ControlMsg::Hello(hello) = first else {
        panic!("hello")
    };
    let results = vec![
        bound(&hello.proxies[0].name, 1),
        bound(&hello.proxies[1].name, 2),
    ];
    let mut writer = FramedWrite::new(send, frp_proto::ControlCodec::new());
    let welcome = ControlMsg::Welcome(Welcome { minor: 2, results });
    within("welcome", writer.send(welcome)).await.expect("send");
    let mut status = handle.subscribe();
    within("both bound", status.wait_for(|s| s.bound("db").is_some()))
        .await
        .expect("status");

    // The server withdraws one by itself (its own reload): shown as refused, with the reason.
    let db = hello.proxies[1].name.clone();
    let closed = frp_proto::ProxiesClosed {
        closed: vec![frp_proto::ProxyClosed {
            name: db.clone(),
            reason: "port 6033 is no longer allowed".into(),
        }],
    };
    within("closed", writer.send(ControlMsg::ProxiesClosed(closed)))
        .await
        .expect("send");
    let s = within("db refused", status.wait_for(|s| s.refused("db").is_some()))
        .await
        .expect("status")
        .clone();
    assert_eq!(
        s.refused("db"),
        Some("withdrawn by the server: port 6033 is no longer allowed")
    );

    // A reload that drops db and changes ssh's port: RemoveProxies, then AddProxies, in one session.
    let mut next = settings;
    next.proxies = vec![tcp_proxy("ssh", local, 6044)];
    let reload = tokio::spawn({
        let handle = handle.clone();
        async move { handle.reload(next).await }
    });
    let msg = within("remove", reader.next())
        .await
        .expect("a message")
        .expect("decodes");
    let ControlMsg::RemoveProxies(r) = msg else {
        panic!("expected remove-proxies, got {msg:?}")
    };
    let names: Vec<&str> = r.names.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["db", "ssh"], "removed first, then changed");
    let msg = within("add", reader.next())
        .await
        .expect("a message")
        .expect("decodes");
    let ControlMsg::AddProxies(a) = msg else {
        panic!("expected add-proxies, got {msg:?}")
    };
    assert_eq!((a.proxies.len(), a.proxies[0].remote_port), (1, 6044));
    let answer = r
        .names
        .iter()
        .map(|n| frp_proto::ProxyClosed {
            name: n.clone(),
            reason: "removed by the client".into(),
        })
        .collect();
    let closed = ControlMsg::ProxiesClosed(frp_proto::ProxiesClosed { closed: answer });
    within("closed", writer.send(closed)).await.expect("send");
    let results = vec![bound(&a.proxies[0].name, 44)];
    within(
        "results",
        writer.send(ControlMsg::AddResults(AddResults { results })),
    )
    .await
    .expect("send");
    let report = within("reload answer", reload)
        .await
        .expect("task")
        .expect("reload");
    assert_eq!(
        (report.removed.as_slice(), report.changed.as_slice()),
        (&["db".to_string()][..], &["ssh".to_string()][..])
    );
    assert!(!report.reconnected && report.connected, "{report:?}");
    let s = handle.status();
    assert_eq!(
        (s.sessions, s.bound("ssh").map(|a| a.port())),
        (1, Some(6044))
    );
    assert!(!s.proxies.contains_key(&db), "db is no longer configured");
    stop.cancel();
    within("client stops", task)
        .await
        .expect("task")
        .expect("clean stop");
    drop(conn);
}
