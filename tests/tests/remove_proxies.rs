//! Protocol minor 2 at the server, from a hand-driven client: `AddProxies` of any kind, any
//! number of times; `RemoveProxies` answered by `ProxiesClosed` in order, the port free and
//! the proxy gone from the status before the answer, its open connections still running, its
//! name free to add again under a new id; and none of it for a client before minor 2.

use std::net::SocketAddr;

use frp_proto::{
    read_data_header, AddProxies, CloseCode, ControlMsg, ProxyId, ProxyKind, ProxyName,
    ProxyOutcome, RemoveProxies,
};
use frp_tests::raw::{encoded, next_msg, spec, RawClient};
use frp_tests::{init_logs, port_free, vhost_settings, within, Pki, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn server(pki: &Pki) -> TestServer {
    let mut settings = vhost_settings(pki, &["*.example.com"]);
    settings.policy.global = frps::policy::PortSet::from_ranges([1024..=65535]);
    TestServer::start(settings)
}

fn name(n: &str) -> ProxyName {
    ProxyName::new(n).expect("name")
}

/// The id and address of a bound outcome.
fn bound(outcome: &ProxyOutcome) -> (ProxyId, SocketAddr) {
    match outcome {
        ProxyOutcome::Bound { id, remote_addr } => (*id, *remote_addr),
        other => panic!("expected bound, got {other:?}"),
    }
}

fn remove(names: &[&str]) -> Vec<u8> {
    let names = names.iter().map(|n| name(n)).collect();
    encoded(&ControlMsg::RemoveProxies(RemoveProxies { names }))
}

/// Serves the data streams the server opens on `conn` as an echo service.
fn echo_streams(conn: quinn::Connection) {
    tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                if read_data_header(&mut recv).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 4096];
                while let Ok(Some(n)) = recv.read(&mut buf).await {
                    if send.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                let _ = send.finish();
            });
        }
    });
}

async fn echo(tcp: &mut tokio::net::TcpStream, msg: &[u8]) {
    tcp.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    within("echo", tcp.read_exact(&mut back))
        .await
        .expect("read");
    assert_eq!(back, msg);
}

#[tokio::test]
async fn a_removed_proxy_frees_its_port_keeps_its_connections_and_can_come_back() {
    init_logs();
    let pki = Pki::new();
    let mut server = server(&pki);
    let raw = RawClient::connect(pki.client_tls("node1"), server.addr).await;
    let (mut send, mut reader, w) = raw.welcomed(vec![spec("a", ProxyKind::Tcp)]).await;
    echo_streams(raw.conn.clone());
    let (old_id, public) = bound(&w.results[0].outcome);
    let mut open = within("visitor connects", tokio::net::TcpStream::connect(public))
        .await
        .expect("connect");
    echo(&mut open, b"before").await;

    // Any kind, any number of times.
    let add = |names: &[&str], kind| {
        let proxies = names.iter().map(|n| spec(n, kind)).collect();
        encoded(&ControlMsg::AddProxies(AddProxies { proxies }))
    };
    send.write_all(&add(&["web"], ProxyKind::Http))
        .await
        .expect("add");
    let ControlMsg::AddResults(r) = next_msg(&mut reader).await else {
        panic!("add-results")
    };
    let (web_id, _) = bound(&r.results[0].outcome);
    send.write_all(&add(&["b"], ProxyKind::Tcp))
        .await
        .expect("second add");
    let ControlMsg::AddResults(r) = next_msg(&mut reader).await else {
        panic!("add-results")
    };
    let (b_id, _) = bound(&r.results[0].outcome);

    send.write_all(&remove(&["a", "nope", "web"]))
        .await
        .expect("remove");
    let ControlMsg::ProxiesClosed(closed) = next_msg(&mut reader).await else {
        panic!("expected proxies-closed")
    };
    let got: Vec<(&str, &str)> = closed
        .closed
        .iter()
        .map(|c| (c.name.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", "removed by the client"),
            ("nope", "no proxy of that name in this session"),
            ("web", "removed by the client")
        ]
    );
    assert!(
        port_free(public.port()),
        "the port is free when the answer arrives"
    );
    let status = server.status.borrow().clone();
    let names: Vec<&str> = status.clients["node1"]
        .proxies
        .keys()
        .map(ProxyName::as_str)
        .collect();
    assert_eq!(names, ["b"], "the status no longer lists them");
    let http = server.http.expect("http port");
    let miss = frp_tests::http::get(http, "web.example.com", "/", &[]).await;
    assert_eq!(miss.status, 404, "the route is gone");
    echo(&mut open, b"after the removal").await;

    send.write_all(&add(&["a"], ProxyKind::Tcp))
        .await
        .expect("add again");
    let ControlMsg::AddResults(r) = next_msg(&mut reader).await else {
        panic!("add-results")
    };
    let (new_id, _) = bound(&r.results[0].outcome);
    let ids = [old_id, web_id, b_id, new_id];
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        4,
        "ids are never reused in a session: {ids:?}"
    );
    server
        .wait_for("a is back", |s| {
            s.clients["node1"].proxies.contains_key(&name("a"))
        })
        .await;
    assert!(raw.conn.close_reason().is_none());
    drop(open);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_client_before_minor_two_may_not_remove() {
    init_logs();
    let pki = Pki::new();
    let server = server(&pki);
    let raw = RawClient::connect(pki.client_tls("node1"), server.addr).await;
    let (mut send, _reader, _) = raw.welcomed_as(1, vec![spec("a", ProxyKind::Tcp)]).await;
    send.write_all(&remove(&["a"])).await.expect("remove");
    assert_eq!(raw.closed_with().await, Some(CloseCode::ProtocolViolation));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn removals_after_going_away_are_a_protocol_violation() {
    init_logs();
    let pki = Pki::new();
    let server = server(&pki);
    let raw = RawClient::connect(pki.client_tls("node1"), server.addr).await;
    let (mut send, _reader, _) = raw.welcomed(vec![spec("a", ProxyKind::Tcp)]).await;
    let bye = ControlMsg::GoingAway(frp_proto::GoingAway {
        reason: "leaving".into(),
    });
    send.write_all(&encoded(&bye)).await.expect("going away");
    send.write_all(&remove(&["a"])).await.expect("remove");
    assert_eq!(raw.closed_with().await, Some(CloseCode::ProtocolViolation));
    server.stop().await.expect("stop");
}
