//! Reloading frpc without dropping what did not change: a 200 MiB transfer through an
//! unchanged proxy survives three reloads that add, change and remove other proxies (its
//! SHA-256 intact, no new session); a proxy a reload removes is gone from the server and its
//! port free; a new local service takes effect without a new registration.

use std::net::SocketAddr;

use frp_tests::backends::{digest_server, echo_once, echo_server};
use frp_tests::frpc_admin::{client_toml, json_of, tcp_entry, write_identity, RunningClient};
use frp_tests::http::{pattern, CHUNK};
use frp_tests::procs::fixed_port;
use frp_tests::{eventually, init_logs, port_free, server_settings, within, Pki, TestServer};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// 200 MiB in chunks of 64 KiB.
const CHUNKS: usize = 200 * 1024 * 1024 / CHUNK;

/// Sends [`CHUNKS`] chunks of [`pattern`] to `public`: half, then tells `halfway` and waits for
/// `go`, then the rest; returns the digest the service answered and the one expected.
async fn transfer(
    public: SocketAddr,
    halfway: oneshot::Sender<()>,
    go: oneshot::Receiver<()>,
) -> ([u8; 32], [u8; 32]) {
    let mut tcp = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    let mut expected = Sha256::new();
    let mut pause = Some((halfway, go));
    for (i, chunk) in pattern(CHUNKS).enumerate() {
        if i == CHUNKS / 2 {
            if let Some((halfway, go)) = pause.take() {
                let _ = halfway.send(());
                within("reloads done", go).await.expect("go");
            }
        }
        expected.update(&chunk);
        within("write", tcp.write_all(&chunk)).await.expect("write");
    }
    tcp.shutdown().await.expect("shutdown");
    let mut got = [0u8; 32];
    within("digest", tcp.read_exact(&mut got))
        .await
        .expect("digest");
    (got, expected.finalize().into())
}

#[tokio::test]
async fn a_transfer_through_an_unchanged_proxy_survives_three_reloads() {
    init_logs();
    let pki = Pki::new();
    let mut server = TestServer::start(server_settings(&pki, 21_000..=21_999));
    let (digest, _) = digest_server().await;
    let (echo, _) = echo_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_identity(&pki, dir.path(), "node1");
    let path = dir.path().join("frpc.toml");
    let base = client_toml(
        server.addr,
        &tls,
        fixed_port(),
        &tcp_entry("bulk", digest, 0),
    );
    std::fs::write(&path, format!("{base}{}", tcp_entry("b", echo, 0))).expect("write");
    let mut client = RunningClient::start(&path);
    let bulk = client.bound("bulk").await;
    let b_before = client.bound("b").await;

    let (halfway_tx, halfway) = oneshot::channel();
    let (go, go_rx) = oneshot::channel();
    let running = tokio::spawn(transfer(bulk, halfway_tx, go_rx));
    within("first half sent", halfway).await.expect("halfway");

    // 1: add a proxy (POST, written to the file).
    let entry = json!({"name": "c", "type": "tcp", "localPort": echo.port(), "remotePort": 0});
    let r = client.api.json("POST", "/api/v1/proxies", &entry).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = client.bound("c").await;
    assert_eq!(echo_once(c, b"c works").await, b"c works");

    // 2: change a proxy's registration (its public port): it is registered again.
    let text = std::fs::read_to_string(&path).expect("read");
    let b_port = (21_000..=21_999)
        .find(|p| *p != b_before.port() && *p != bulk.port() && *p != c.port() && port_free(*p))
        .expect("a free allowed port");
    let changed = text.replacen(
        &format!("localPort = {}\nremotePort = 0", echo.port()),
        &format!("localPort = {}\nremotePort = {b_port}", echo.port()),
        1,
    );
    assert_ne!(changed, text);
    let r = client
        .api
        .call(
            "PUT",
            "/api/v1/config",
            Some(("application/toml", changed.into_bytes())),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["changed"], json!(["b"]), "{}", r.body);
    let b_after = client
        .wait_for("b moved", |s| {
            s.bound("b").is_some_and(|a| a.port() == b_port)
        })
        .await;
    assert_eq!(
        echo_once(b_after.bound("b").expect("b"), b"b moved").await,
        b"b moved"
    );

    // 3: remove two proxies (the file edited, then a reload as SIGHUP does).
    std::fs::write(&path, &base).expect("write");
    let r = client.api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        json_of(&r)["removed"],
        json!(["b", "c"]),
        "the reload's own answer"
    );
    server
        .wait_for("server keeps only bulk", |s| {
            s.clients.get("node1").is_some_and(|n| n.proxies.len() == 1)
        })
        .await;
    eventually("b's and c's ports are free", || {
        port_free(b_port) && port_free(c.port())
    })
    .await;

    let _ = go.send(());
    let (got, expected) = within("transfer ends", running)
        .await
        .expect("transfer task");
    assert_eq!(got, expected, "200 MiB arrived intact");
    let status = client.handle.status();
    assert_eq!(status.sessions, 1, "no reload needed a new session");
    assert_eq!(
        status.bound("bulk"),
        Some(bulk),
        "bulk kept its registration"
    );
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_new_local_service_needs_no_new_registration() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(server_settings(&pki, 22_000..=22_999));
    let (first, _) = echo_server().await;
    let (second, _) = digest_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_identity(&pki, dir.path(), "node1");
    let path = dir.path().join("frpc.toml");
    let text = client_toml(server.addr, &tls, fixed_port(), &tcp_entry("svc", first, 0));
    std::fs::write(&path, &text).expect("write");
    let mut client = RunningClient::start(&path);
    let public = client.bound("svc").await;
    let mut open = frp_tests::backends::open_echo(public).await;

    let moved = text.replace(
        &format!("localPort = {}", first.port()),
        &format!("localPort = {}", second.port()),
    );
    std::fs::write(&path, moved).expect("write");
    let r = client.api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(json_of(&r)["retargeted"], json!(["svc"]), "{}", r.body);
    assert_eq!(json_of(&r)["changed"], json!([]), "{}", r.body);
    // The open connection still reaches the first service; a new one the second.
    open.write_all(b"still echoed").await.expect("write");
    let mut back = [0u8; 12];
    within("echo", open.read_exact(&mut back))
        .await
        .expect("read");
    assert_eq!(&back, b"still echoed");
    let mut fresh = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    fresh.write_all(b"hash me").await.expect("write");
    fresh.shutdown().await.expect("shutdown");
    let mut digest = [0u8; 32];
    within("digest", fresh.read_exact(&mut digest))
        .await
        .expect("digest");
    assert_eq!(digest, frp_tests::backends::sha256(b"hash me"));
    let status = client.handle.status();
    assert_eq!((status.sessions, status.bound("svc")), (1, Some(public)));
    client.stop().await;
    server.stop().await.expect("stop");
}
