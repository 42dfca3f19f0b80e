//! `AddProxies` from a hand-driven client: after the `Welcome` (one per session from a client
//! before minor 2), never after the client's `GoingAway`, and bounded with the `Hello` by
//! `maxPortsPerClient` and by the names already asked for.

use frp_proto::{AddProxies, CloseCode, ControlMsg, GoingAway, ProxyKind, ProxyOutcome};
use frp_tests::raw::{encoded, next_msg, spec, RawClient};
use frp_tests::{init_logs, vhost_settings, Pki, TestServer};

fn add(names: &[&str]) -> Vec<u8> {
    let proxies = names.iter().map(|n| spec(n, ProxyKind::Http)).collect();
    encoded(&ControlMsg::AddProxies(AddProxies { proxies }))
}

/// The refusal reasons of an `AddResults`, `None` for a proxy that was bound.
fn reasons(msg: ControlMsg) -> Vec<Option<String>> {
    let ControlMsg::AddResults(r) = msg else {
        panic!("expected add-results, got {msg:?}");
    };
    r.results
        .into_iter()
        .map(|r| match r.outcome {
            ProxyOutcome::Bound { .. } => None,
            ProxyOutcome::Refused { reason } => Some(reason),
        })
        .collect()
}

fn server(pki: &Pki, max_proxies: usize) -> TestServer {
    let mut settings = vhost_settings(pki, &["*.example.com"]);
    settings.policy.global = frps::policy::PortSet::from_ranges([1024..=65535]);
    settings.max_proxies_per_client = max_proxies;
    TestServer::start(settings)
}

#[tokio::test]
async fn add_proxies_shares_the_hellos_names_and_budget() {
    init_logs();
    let pki = Pki::new();
    let server = server(&pki, 3);
    let raw = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let hello = vec![spec("ssh", ProxyKind::Tcp), spec("db", ProxyKind::Tcp)];
    let (mut send, mut reader, w) = raw.welcomed(hello).await;
    assert_eq!(w.results.len(), 2);
    send.write_all(&add(&["ssh", "web", "api"]))
        .await
        .expect("add");
    let got = reasons(next_msg(&mut reader).await);
    let dup = got[0].as_deref().unwrap_or_default();
    assert!(dup.contains("'ssh' appears twice"), "{dup}");
    assert_eq!(got[1], None, "the third proxy fits the budget");
    let over = got[2].as_deref().unwrap_or_default();
    assert!(over.contains("at most 3 proxies"), "{over}");
    assert!(
        raw.conn.close_reason().is_none(),
        "refusals, not a violation"
    );
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_second_add_proxies_from_a_minor_one_client_is_a_protocol_violation() {
    init_logs();
    let pki = Pki::new();
    let server = server(&pki, 256);
    let raw = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, mut reader, _) = raw.welcomed_as(1, Vec::new()).await;
    send.write_all(&add(&["web"])).await.expect("add");
    assert_eq!(reasons(next_msg(&mut reader).await), [None]);
    send.write_all(&add(&["api"])).await.expect("second add");
    assert_eq!(raw.closed_with().await, Some(CloseCode::ProtocolViolation));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn add_proxies_first_or_after_going_away_is_a_protocol_violation() {
    init_logs();
    let pki = Pki::new();
    let server = server(&pki, 256);
    let first = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, _recv) = first.control().await;
    send.write_all(&add(&["web"])).await.expect("add first");
    assert_eq!(
        first.closed_with().await,
        Some(CloseCode::ProtocolViolation)
    );

    let late = RawClient::connect(pki.client_tls("mallory"), server.addr).await;
    let (mut send, _reader, _) = late.welcomed(Vec::new()).await;
    let bye = ControlMsg::GoingAway(GoingAway {
        reason: "leaving".into(),
    });
    send.write_all(&encoded(&bye)).await.expect("going away");
    send.write_all(&add(&["web"])).await.expect("add after");
    assert_eq!(late.closed_with().await, Some(CloseCode::ProtocolViolation));
    server.stop().await.expect("stop");
}
