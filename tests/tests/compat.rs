//! Wire compatibility across minor versions: a frpc with http proxies against a server that
//! speaks minor 0 (hand-driven, as an older frps would answer) keeps its tcp proxies and says
//! why its http proxies are not served; against a current server it registers them after the
//! `Welcome`, in `AddProxies`, and a server going away before it answers them is no
//! protocol violation.

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
