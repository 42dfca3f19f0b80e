//! `PUT /api/v1/server`: new server settings with PEMs, as a management plane pushes them.
//! Valid ones move the connection (to another server with another CA here) and are written
//! next to the config; a key that does not fit, a CA that is not one, or a server that does
//! not answer are refused with the old connection untouched and nothing written.

use std::os::unix::fs::PermissionsExt as _;

use rustls::pki_types::pem::PemObject as _;

use frp_tests::backends::echo_server;
use frp_tests::frpc_admin::{client_toml, json_of, tcp_entry, write_identity, RunningClient};
use frp_tests::procs::fixed_port;
use frp_tests::{init_logs, server_settings, Pki, TestServer};
use serde_json::json;

#[tokio::test]
async fn new_certificates_move_the_connection_and_bad_ones_change_nothing() {
    init_logs();
    let (pki_a, pki_b) = (Pki::new(), Pki::new());
    let mut a = TestServer::start(server_settings(&pki_a, 23_000..=23_499));
    let mut b = TestServer::start(server_settings(&pki_b, 23_500..=23_999));
    let (echo, _) = echo_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_identity(&pki_a, dir.path(), "node1");
    let path = dir.path().join("frpc.toml");
    std::fs::write(
        &path,
        client_toml(a.addr, &tls, fixed_port(), &tcp_entry("ssh", echo, 0)),
    )
    .expect("write");
    let mut client = RunningClient::start(&path);
    client.bound("ssh").await;

    let info = json_of(&client.api.get("/api/v1/server").await);
    let pem = std::fs::read_to_string(dir.path().join("certs/node1.crt")).expect("cert");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
    assert_eq!(info["clientCertFingerprint"], frp_certs::fingerprint(&der));
    assert_eq!(
        (info["server"].as_str(), info["port"].as_u64()),
        (Some("127.0.0.1"), Some(u64::from(a.addr.port())))
    );
    assert!(
        info["clientCertNotAfter"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{info}"
    );
    assert_eq!(info["clientCert"], pem);
    assert!(
        info.get("clientKey").is_none(),
        "never the private key: {info}"
    );

    let for_b = pki_b.ca.issue_client("node1").expect("cert");
    let other = pki_b.ca.issue_client("node1").expect("cert");
    let body = |key: &str, ca: &str, port: u16| {
        json!({"server": "127.0.0.1", "port": port, "serverName": "localhost",
               "caCert": ca, "clientCert": for_b.cert_pem(), "clientKey": key})
    };
    let before = std::fs::read_to_string(&path).expect("read");
    let refused = [
        (
            body(other.key_pem(), pki_b.ca.cert_pem(), b.addr.port()),
            400,
            "clientKey",
        ),
        (
            body(for_b.key_pem(), for_b.cert_pem(), b.addr.port()),
            400,
            "not a CA",
        ),
        (
            body(for_b.key_pem(), "not pem", b.addr.port()),
            400,
            "caCert",
        ),
        (
            body(
                for_b.key_pem(),
                pki_b.ca.cert_pem(),
                frp_tests::free_udp_addr().port(),
            ),
            502,
            "do not work",
        ),
    ];
    for (request, status, needle) in refused {
        let r = client.api.json("PUT", "/api/v1/server", &request).await;
        assert_eq!(r.status, status, "{}", r.body);
        assert!(
            json_of(&r)["error"]
                .as_str()
                .is_some_and(|e| e.contains(needle)),
            "{needle}: {}",
            r.body
        );
        let s = client.handle.status();
        assert_eq!(
            (s.connected, s.sessions, s.server_addr),
            (true, 1, Some(a.addr)),
            "old connection untouched"
        );
    }
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
    assert!(
        !dir.path().join("frpc-client.key").exists(),
        "nothing written"
    );

    let r = client
        .api
        .json(
            "PUT",
            "/api/v1/server",
            &body(for_b.key_pem(), pki_b.ca.cert_pem(), b.addr.port()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let s = client.handle.status();
    assert_eq!(
        (s.connected, s.server_addr),
        (true, Some(b.addr)),
        "moved to b"
    );
    b.wait_for("b serves node1", |s| {
        s.clients.get("node1").is_some_and(|c| c.proxies.len() == 1)
    })
    .await;
    a.wait_for("a lets node1 go", |s| !s.clients.contains_key("node1"))
        .await;
    let ssh = client.bound("ssh").await;
    assert!(
        (23_500..=23_999).contains(&ssh.port()),
        "published by b: {ssh}"
    );
    assert_eq!(
        frp_tests::backends::echo_once(ssh, b"via b").await,
        b"via b"
    );

    for name in ["frpc-client.crt", "frpc-client.key", "frpc-server-ca.crt"] {
        let meta = std::fs::metadata(dir.path().join(name)).expect(name);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("# frpc under test\n"), "{text}");
    assert!(
        text.contains(&format!("serverPort = {}", b.addr.port())),
        "{text}"
    );
    assert!(text.contains("keyFile = \"frpc-client.key\""), "{text}");
    let info = json_of(&client.api.get("/api/v1/server").await);
    assert_eq!(info["port"], b.addr.port());
    assert_eq!(info["caCert"], pki_b.ca.cert_pem());
    // The file now says what runs: reloading it moves nothing.
    let r = json_of(&client.api.call("POST", "/api/v1/reload", None).await);
    assert_eq!(r["serverMoved"], false, "{r}");
    assert_eq!(client.handle.status().server_addr, Some(b.addr));
    client.stop().await;
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
}
