//! frpc's admin API end to end with a real HTTP client: status, the proxies create / list /
//! delete workflow written back to frpc.toml, the config file, probes and metrics; and what is
//! refused (no or wrong credentials, malformed JSON, unknown fields, oversized bodies, an
//! invalid config) with nothing changed.

use std::path::Path;

use frp_tests::backends::echo_server;
use frp_tests::frpc_admin::{
    client_toml, json_of, proxy_in, tcp_entry, write_identity, ApiClient, RunningClient, USER,
};
use frp_tests::procs::fixed_port;
use frp_tests::{eventually, init_logs, port_free, server_settings, within, Pki, TestServer};
use serde_json::json;

const ALLOWED: std::ops::RangeInclusive<u16> = 20_000..=20_999;

/// A server allowing ports 20000-20999 and a client from a file with proxy `ssh` to an echo
/// service; waits until `ssh` is published.
async fn rig(pki: &Pki, dir: &Path) -> (TestServer, RunningClient, std::net::SocketAddr) {
    let server = TestServer::start(server_settings(pki, ALLOWED));
    let (echo, _) = echo_server().await;
    let tls = write_identity(pki, dir, "node1");
    let path = dir.join("frpc.toml");
    let text = client_toml(server.addr, &tls, fixed_port(), &tcp_entry("ssh", echo, 0));
    std::fs::write(&path, text).expect("write config");
    let mut client = RunningClient::start(&path);
    client.bound("ssh").await;
    (server, client, echo)
}

#[tokio::test]
async fn status_reports_the_connection_and_every_proxy() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, _) = rig(&pki, dir.path()).await;
    let r = client.api.get("/api/v1/status").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let s = json_of(&r);
    assert_eq!(s["server"]["state"], "connected");
    assert_eq!(s["server"]["addr"], server.addr.to_string());
    assert_eq!(s["server"]["protocolMinor"], frp_proto::PROTOCOL_MINOR);
    assert!(s["server"]["rttMs"].as_f64().is_some(), "{s}");
    assert!(
        s["server"]["since"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{s}"
    );
    let ssh = proxy_in(&s, "ssh").expect("ssh listed");
    assert_eq!(
        (ssh["type"].as_str(), ssh["state"].as_str()),
        (Some("tcp"), Some("running"))
    );
    let public: std::net::SocketAddr = ssh["remoteAddr"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("addr");
    assert!(ALLOWED.contains(&public.port()));
    let ready = client.api.get("/readyz").await;
    assert_eq!(
        (ready.status.as_u16(), json_of(&ready)["status"].as_str()),
        (200, Some("ready"))
    );
    let metrics = client.api.get("/metrics").await.body;
    for line in [
        "\nfrpc_connected 1\n",
        "frpc_proxies{state=\"running\"} 1",
        "\nfrpc_rtt_seconds ",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    // Bytes per proxy, counted when a connection closes.
    let back = frp_tests::backends::echo_once(public, b"twelve bytes").await;
    assert_eq!(back, b"twelve bytes");
    within("bytes counted", async {
        loop {
            let body = client.api.get("/metrics").await.body;
            if body.contains("frpc_proxy_bytes_in_total{proxy=\"ssh\"} 12\n")
                && body.contains("frpc_proxy_bytes_out_total{proxy=\"ssh\"} 12\n")
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn credentials_are_required_and_failures_back_off() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, _) = rig(&pki, dir.path()).await;
    let anonymous = ApiClient::new(client.api.addr, None);
    let r = anonymous.get("/api/v1/status").await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Basic")));
    assert_eq!(json_of(&r)["error"], "authentication required");
    let wrong = ApiClient::new(client.api.addr, Some((USER, "not-the-password")));
    assert_eq!(wrong.get("/api/v1/status").await.status, 401);
    let r = anonymous
        .json(
            "POST",
            "/api/v1/proxies",
            &json!({"name": "x", "type": "tcp", "localPort": 1}),
        )
        .await;
    assert_eq!(r.status, 401, "no change without credentials");
    assert!(!std::fs::read_to_string(&client.path)
        .expect("read")
        .contains("\"x\""));
    // The probes need none: they say nothing but "up".
    assert_eq!(anonymous.get("/healthz").await.status, 200);
    // Five failures are free (three so far); then even the right password waits.
    for _ in 0..2 {
        assert_eq!(wrong.get("/api/v1/status").await.status, 401);
    }
    assert_eq!(wrong.get("/api/v1/status").await.status, 429);
    let r = client.api.get("/api/v1/status").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn proxies_are_created_listed_and_deleted_through_the_file() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, mut client, echo) = rig(&pki, dir.path()).await;
    let entry = json!({"name": "web2", "type": "tcp", "localIP": "127.0.0.1",
                       "localPort": echo.port(), "remotePort": 0});
    let r = client.api.json("POST", "/api/v1/proxies", &entry).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let answer = json_of(&r);
    assert_eq!(answer["reload"]["added"], json!(["web2"]));
    assert_eq!(
        answer["proxy"]["state"], "running",
        "registered at once: {answer}"
    );
    let public = client.bound("web2").await;
    let wanted = public.port();
    assert!(ALLOWED.contains(&wanted));
    let back = frp_tests::backends::echo_once(public, b"through the new proxy").await;
    assert_eq!(back, b"through the new proxy");
    let text = std::fs::read_to_string(&client.path).expect("read");
    assert!(
        text.starts_with("# frpc under test\n"),
        "comments stay: {text}"
    );
    assert!(text.contains("name = \"web2\""), "{text}");

    let list = json_of(&client.api.get("/api/v1/proxies").await);
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["ssh", "web2"]);
    assert_eq!(list[1]["config"]["localPort"], echo.port(), "{list}");
    assert_eq!(list[1]["remoteAddr"], public.to_string(), "{list}");
    assert_eq!(client.api.get("/api/v1/proxies/web2").await.status, 200);
    assert_eq!(client.api.get("/api/v1/proxies/nope").await.status, 404);

    let dup = client.api.json("POST", "/api/v1/proxies", &entry).await;
    assert_eq!(dup.status, 409, "{}", dup.body);

    // Edited in place: a fixed remote port instead of any; the proxy moves there.
    let fixed = ALLOWED
        .clone()
        .find(|p| *p != wanted && port_free(*p))
        .expect("another allowed port");
    let mut changed = entry.clone();
    changed["remotePort"] = json!(fixed);
    let r = client
        .api
        .json("PUT", "/api/v1/proxies/web2", &changed)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        json_of(&r)["proxy"]["remoteAddr"],
        format!("127.0.0.1:{fixed}"),
        "{}",
        r.body
    );
    let text = std::fs::read_to_string(&client.path).expect("read");
    assert!(text.contains(&format!("remotePort = {fixed}")), "{text}");
    assert_eq!(text.matches("name = \"web2\"").count(), 1, "{text}");
    let moved = std::net::SocketAddr::new(frp_tests::LOCALHOST, fixed);
    assert_eq!(
        frp_tests::backends::echo_once(moved, b"moved").await,
        b"moved"
    );
    let renamed = json!({"name": "other", "type": "tcp", "localPort": echo.port()});
    let r = client
        .api
        .json("PUT", "/api/v1/proxies/web2", &renamed)
        .await;
    assert_eq!(
        (r.status.as_u16(), json_of(&r)["field"].clone()),
        (400, json!("name"))
    );
    let nope = json!({"name": "nope", "type": "tcp", "localPort": echo.port()});
    let r = client.api.json("PUT", "/api/v1/proxies/nope", &nope).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let wanted = fixed;

    let r = client
        .api
        .call("DELETE", "/api/v1/proxies/web2", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["reload"]["removed"], json!(["web2"]));
    server
        .wait_for("server drops web2", |s| {
            s.clients.get("node1").is_some_and(|c| c.proxies.len() == 1)
        })
        .await;
    eventually("web2's port is free", || port_free(wanted)).await;
    assert!(!std::fs::read_to_string(&client.path)
        .expect("read")
        .contains("web2"));
    let r = client
        .api
        .call("DELETE", "/api/v1/proxies/web2", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(json_of(&r)["error"]
        .as_str()
        .is_some_and(|e| e.contains("web2")));
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, client, _) = rig(&pki, dir.path()).await;
    let before = std::fs::read_to_string(&client.path).expect("read");
    let sessions = client.handle.status().sessions;
    let api = &client.api;
    let post = |body: &'static [u8], ctype: &'static str| {
        api.call("POST", "/api/v1/proxies", Some((ctype, body.to_vec())))
    };
    let r = post(b"{\"name\": \"x\",", "application/json").await;
    assert_eq!(r.status, 400);
    assert!(
        json_of(&r)["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid JSON body")),
        "{}",
        r.body
    );
    let r = post(
        b"{\"name\":\"x\",\"type\":\"tcp\",\"localPort\":1,\"colour\":\"red\"}",
        "application/json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown field `colour`"), "{}", r.body);
    let r = post(
        b"{\"name\":\"x\",\"type\":\"tcp\",\"localPort\":0}",
        "application/json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("localPort = 0"),
        "validated as the file is: {}",
        r.body
    );
    // Errors about one key name it, for a form to show the message beside that field.
    assert_eq!(json_of(&r)["field"], "localPort", "{}", r.body);
    let wrong_type = b"{\"name\":\"x\",\"type\":\"tcp\",\"localPort\":\"abc\"}";
    let r = post(wrong_type, "application/json").await;
    assert_eq!(json_of(&r)["field"], "localPort", "{}", r.body);
    let r = post(b"{\"type\":\"tcp\",\"localPort\":1}", "application/json").await;
    assert_eq!(json_of(&r)["field"], "name", "{}", r.body);
    let r = post(b"[1, 2]", "application/json").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post(b"name=x", "application/x-www-form-urlencoded").await;
    assert_eq!(r.status, 415, "{}", r.body);
    let huge = vec![b' '; 1024 * 1024 + 1];
    let r = api
        .call(
            "POST",
            "/api/v1/proxies",
            Some(("application/json", huge.clone())),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    let r = api
        .call("PUT", "/api/v1/config", Some(("application/toml", huge)))
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(api.call("PATCH", "/api/v1/status", None).await.status, 405);
    assert_eq!(api.get("/api/v1/nothing").await.status, 404);
    assert_eq!(api.get("/api/v2/status").await.status, 404);
    assert_eq!(
        std::fs::read_to_string(&client.path).expect("read"),
        before,
        "the file is untouched"
    );
    let status = client.handle.status();
    assert_eq!(
        (status.sessions, status.proxies.len()),
        (sessions, 1),
        "the client is untouched"
    );
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_config_file_is_read_and_replaced_whole() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, mut client, echo) = rig(&pki, dir.path()).await;
    let text = std::fs::read_to_string(&client.path).expect("read");
    let r = client.api.get("/api/v1/config").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, text.as_str()));

    // Invalid: refused with --check's message, nothing written, nothing reloaded.
    let bad = text.replace("localPort", "localPrt");
    let r = client
        .api
        .call(
            "PUT",
            "/api/v1/config",
            Some(("application/toml", bad.clone().into_bytes())),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let message = json_of(&r)["error"].as_str().expect("error").to_string();
    assert_eq!(std::fs::read_to_string(&client.path).expect("read"), text);
    let check_copy = dir.path().join("check.toml");
    let expected = frpc::ClientSettings::from_text(&client.path, &bad)
        .expect_err("invalid")
        .to_string();
    assert_eq!(message, expected);
    std::fs::write(&check_copy, &bad).expect("write copy");
    let out = std::process::Command::new(frp_tests::procs::binary("frpc"))
        .args(["--check", "-c"])
        .arg(&check_copy)
        .output()
        .expect("frpc --check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = message.replace(
        &client.path.display().to_string(),
        &check_copy.display().to_string(),
    );
    assert_eq!(
        stderr.trim(),
        format!("error: {shown}"),
        "the same message as --check"
    );

    // Valid: written, then reloaded.
    let good = format!("{text}{}", tcp_entry("db", echo, 0));
    let r = client
        .api
        .call(
            "PUT",
            "/api/v1/config",
            Some(("application/toml", good.clone().into_bytes())),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["added"], json!(["db"]));
    assert_eq!(std::fs::read_to_string(&client.path).expect("read"), good);
    let public = client.bound("db").await;
    server
        .wait_for("server lists db", |s| {
            s.clients
                .get("node1")
                .is_some_and(|c| c.proxies.values().any(|a| *a == public))
        })
        .await;
    let r = client.api.call("POST", "/api/v1/reload", None).await;
    let report = json_of(&r);
    assert_eq!(
        (r.status.as_u16(), report["added"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{report}"
    );
    client.stop().await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn readiness_follows_the_session() {
    init_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = write_identity(&pki, dir.path(), "node1");
    let nowhere = frp_tests::free_udp_addr();
    let path = dir.path().join("frpc.toml");
    std::fs::write(&path, client_toml(nowhere, &tls, fixed_port(), "")).expect("write");
    let client = RunningClient::start(&path);
    let r = client.api.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(json_of(&r)["status"], "not ready");
    let s = json_of(&client.api.get("/api/v1/status").await);
    assert_ne!(s["server"]["state"], "connected");
    assert!(
        s["server"]["lastError"].is_string() || s["server"]["state"] == "connecting",
        "{s}"
    );
    client.stop().await;
}
