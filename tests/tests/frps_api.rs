//! frps's admin API end to end, on the real binaries with real config files and a real HTTP
//! client: what it reports (clients, proxies, traffic moved), what it refuses (no or wrong
//! credentials, malformed or oversized bodies, with nothing changed), what it does
//! (disconnect a client, revoke a certificate at once), `frps status`, and a config that
//! would expose it without credentials refused at load.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use frp_tests::backends::{echo_once, random_bytes};
use frp_tests::frpc_admin::{json_of, ApiClient, PASSWORD};
use frp_tests::frps_admin::rig;
use frp_tests::procs::binary;
use frp_tests::{init_logs, within, LOCALHOST};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn clients_proxies_and_traffic_are_reported() {
    init_logs();
    let r = rig(3).await;
    let data = random_bytes(100 * 1024);
    let public = SocketAddr::new(LOCALHOST, r.ports[0]);
    assert_eq!(echo_once(public, &data).await, data);

    let web0 = r.get("/api/v1/proxies/web0").await;
    assert_eq!(web0["client"], "node1");
    assert_eq!(web0["type"], "tcp");
    assert_eq!(web0["status"], "running");
    assert_eq!(web0["remotePort"], r.ports[0]);
    for key in ["bytesIn", "bytesOut"] {
        let n = web0[key].as_u64().expect(key);
        assert!(n >= data.len() as u64, "{key} = {n}: {web0}");
    }
    assert!(web0["startedAt"].as_str().is_some(), "{web0}");

    let clients = r.get("/api/v1/clients").await;
    let clients = clients.as_array().expect("array");
    let names: Vec<&str> = clients
        .iter()
        .filter_map(|c| c["identity"].as_str())
        .collect();
    assert_eq!(names, ["node1", "node2"]);
    let node1 = &clients[0];
    assert_eq!(node1["protocolMinor"], 2);
    assert!(
        node1["agent"]
            .as_str()
            .is_some_and(|a| a.starts_with("frpc/")),
        "{node1}"
    );
    assert!(node1["rttMs"].as_f64().is_some_and(|v| v > 0.0), "{node1}");
    assert!(
        node1["congestionWindow"].as_u64().is_some_and(|v| v > 0),
        "{node1}"
    );
    assert_eq!(node1["proxies"].as_array().map(Vec::len), Some(3));
    assert!(node1["bytesIn"].as_u64().unwrap_or(0) >= data.len() as u64);
    let cert = frp_certs::load_certs(&r.d.path("certs/node1.crt")).expect("node1.crt");
    let shown = &node1["certificate"];
    assert_eq!(
        shown["fingerprint"],
        frp_certs::fingerprint(&cert[0]),
        "{node1}"
    );
    assert_eq!(shown["subject"], "CN=node1", "{node1}");
    let serial = frp_certs::serial_hex(&cert[0]).expect("serial");
    assert_eq!(
        shown["serial"].as_str().map(|s| s.replace(':', "")),
        Some(serial)
    );
    assert!(
        shown["notAfter"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{node1}"
    );
    let upper = r.get("/api/v1/clients/NODE1").await;
    assert_eq!(upper["identity"], "node1", "identities ignore case");
    assert_eq!(r.api.get("/api/v1/clients/nobody").await.status, 404);

    let info = r.get("/api/v1/serverinfo").await;
    assert_eq!(info["clientCounts"], 2);
    assert_eq!(info["proxyCounts"]["tcp"], 3);
    assert_eq!(info["proxyCounts"]["http"], 0);
    assert!(
        info["bytesIn"].as_u64().unwrap_or(0) >= data.len() as u64,
        "{info}"
    );
    assert!(
        info["handshakes"]["completed"].as_u64().unwrap_or(0) >= 2,
        "{info}"
    );

    // The traffic history: its last point is the interval under way, so what just moved
    // is in it before the first 10 s sample.
    let moved = |series: &serde_json::Value, key: &str| -> u64 {
        let points = series["points"].as_array().expect("points");
        points.iter().filter_map(|p| p[key].as_u64()).sum()
    };
    let total = r.get("/api/v1/traffic").await;
    assert_eq!(total["intervalSeconds"], 10, "{total}");
    assert!(moved(&total, "bytesIn") >= data.len() as u64, "{total}");
    let one = r.get("/api/v1/proxies/web0/traffic?client=NODE1").await;
    assert!(moved(&one, "bytesOut") >= data.len() as u64, "{one}");
    assert!(one["points"][0]["at"].as_str().is_some(), "{one}");
    let other = r.get("/api/v1/proxies/web1/traffic").await;
    assert_eq!(moved(&other, "bytesIn"), 0, "{other}");
    assert_eq!(r.api.get("/api/v1/proxies/nope/traffic").await.status, 404);
    let post = r.api.call("POST", "/api/v1/traffic", None).await;
    assert_eq!(post.status, 405);

    let tcp = r.get("/api/v1/proxies?type=tcp&client=Node1").await;
    assert_eq!(tcp.as_array().map(Vec::len), Some(3));
    let http = r.get("/api/v1/proxies?type=http").await;
    assert_eq!(http.as_array().map(Vec::len), Some(0));
    assert_eq!(r.api.get("/api/v1/proxies?type=udp").await.status, 400);
    assert_eq!(r.api.get("/api/v1/proxies/nothing").await.status, 404);

    // The first 10 s sample stores the bytes in a completed interval, server-wide and per
    // proxy; the interval under way starts again from there.
    let sampled = |series: &serde_json::Value| -> Option<u64> {
        let points = series["points"].as_array()?;
        let (_, done) = points.split_last()?;
        (!done.is_empty()).then(|| done.iter().filter_map(|p| p["bytesIn"].as_u64()).sum())
    };
    within("a traffic sample", async {
        while sampled(&r.get("/api/v1/traffic").await).is_none() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let total = r.get("/api/v1/traffic").await;
    assert!(sampled(&total).unwrap_or(0) >= data.len() as u64, "{total}");
    let one = r.get("/api/v1/proxies/web0/traffic").await;
    assert!(sampled(&one).unwrap_or(0) >= data.len() as u64, "{one}");
    let under_way = one["points"].as_array().and_then(|p| p.last().cloned());
    assert_eq!(
        under_way.map(|p| p["bytesIn"].clone()),
        Some(0.into()),
        "{one}"
    );
}

#[tokio::test]
async fn credentials_are_required_except_for_the_probes() {
    init_logs();
    let r = rig(1).await;
    let anonymous = ApiClient::new(r.api.addr, None);
    let wrong = ApiClient::new(r.api.addr, Some(("admin", "not-the-password")));
    assert_eq!(anonymous.get("/api/v1/serverinfo").await.status, 401);
    assert_eq!(wrong.get("/api/v1/clients").await.status, 401);
    // Failures from one address back off: later ones are refused without a look (429).
    for path in ["/api/v1/serverinfo", "/api/v1/clients", "/metrics"] {
        let status = wrong.get(path).await.status;
        assert!(status == 401 || status == 429, "{path}: {status}");
    }
    assert_eq!(anonymous.get("/healthz").await.status, 200);
    assert_eq!(anonymous.get("/readyz").await.status, 200);
    let metrics = r.api.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    for line in [
        "frp_server_client_counts 2",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.body.contains(line), "{line} in:\n{}", metrics.body);
    }
    assert!(!metrics.body.contains(PASSWORD));
}

/// A request body and its content type.
type Body<'a> = Option<(&'a str, Vec<u8>)>;

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    init_logs();
    let r = rig(1).await;
    let list = r.d.path("revoked.txt");
    let before = std::fs::read(&list).expect("list");
    let json = |body: &str| Some(("application/json", body.as_bytes().to_vec()));
    let cases: [(Body<'_>, u16); 5] = [
        (json("{\"serial\": "), 400),
        (json("{\"serial\": \"2a\", \"comment\": \"x\"}"), 400),
        (json("{\"serial\": \"2a\", \"fingerprint\": \"2a\"}"), 400),
        (json("{\"serial\": \"not hex\"}"), 400),
        (Some(("text/plain", b"serial=2a".to_vec())), 415),
    ];
    for (body, status) in cases {
        let r = r.api.call("POST", "/api/v1/revocations", body).await;
        assert_eq!(r.status, status, "{}", r.body);
        assert!(json_of(&r)["error"].as_str().is_some(), "{}", r.body);
    }
    // Over 1 MiB: refused from the declared length, before a byte of the body is read (a
    // client still sending it may see its connection close under it, so none is sent here).
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let head = format!(
        "POST /api/v1/revocations HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.api.addr,
        (1 << 20) + 1
    );
    let mut tcp = tokio::net::TcpStream::connect(r.api.addr)
        .await
        .expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("head");
    let mut answer = Vec::new();
    within("413", tcp.read_to_end(&mut answer))
        .await
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        std::fs::read(&list).expect("list"),
        before,
        "nothing written"
    );
    assert_eq!(
        r.get("/api/v1/revocations").await["entries"],
        serde_json::json!([])
    );
    assert_eq!(r.api.get("/api/v1/proxies?client=%ff").await.status, 400);

    // Every accepted spelling leaves a list frps still starts with.
    let print = "AB:".repeat(31) + "CD";
    let entries = [
        serde_json::json!({ "serial": "00" }),
        serde_json::json!({ "serial": "serial=2A:8D:70" }),
        serde_json::json!({ "fingerprint": print }),
        serde_json::json!({ "fingerprint": format!("sha256 Fingerprint={print}") }),
    ];
    for body in &entries {
        let answer = r.api.json("POST", "/api/v1/revocations", body).await;
        assert_eq!(answer.status, 200, "{body}: {}", answer.body);
    }
    let listed = r.get("/api/v1/revocations").await;
    assert_eq!(
        listed["entries"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
    let check = std::process::Command::new(binary("frps"))
        .args(["--check", "-c"])
        .arg(r.d.path("frps.toml"))
        .output()
        .expect("frps --check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(r.api.call("PUT", "/api/v1/clients", None).await.status, 405);
    assert_eq!(r.api.get("/api/v2/clients").await.status, 404);
}

#[tokio::test]
async fn a_client_is_disconnected_and_then_revoked() {
    init_logs();
    let mut r = rig(1).await;
    let gone = r.api.call("DELETE", "/api/v1/clients/node2", None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    // It was not revoked: it comes back.
    r.node2.wait_log(frp_tests::deployment::CONNECTED, 2).await;
    r.until_clients(2).await;

    let pem = std::fs::read_to_string(r.d.path("certs/node2.crt")).expect("node2 cert");
    let body = serde_json::json!({ "certificate": pem });
    let revoked = r.api.json("POST", "/api/v1/revocations", &body).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let revoked = json_of(&revoked);
    assert_eq!(revoked["alreadyListed"], false);
    assert_eq!(revoked["disconnected"], 1);
    let entry = revoked["entry"].as_str().expect("entry").to_string();
    assert!(entry.starts_with("sha256="), "{entry}");
    // node2 is refused from now on: frpc gives up with its permanent-refusal status.
    let status = within("node2 gives up", async {
        loop {
            if let Some(s) = r.node2.wait_exit(Duration::ZERO) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(status.code(), Some(2), "{}", r.node2.stderr());
    r.until_clients(1).await;
    let list = std::fs::read_to_string(r.d.path("revoked.txt")).expect("list");
    let hex = entry.trim_start_matches("sha256=");
    assert!(list.contains(hex), "{list}");
    assert_eq!(
        r.get("/api/v1/revocations").await["entries"],
        serde_json::json!([entry])
    );
    let again = r.api.json("POST", "/api/v1/revocations", &body).await;
    assert_eq!(json_of(&again)["alreadyListed"], true);
    assert_eq!(
        std::fs::read_to_string(r.d.path("revoked.txt")).expect("list"),
        list
    );
}

#[tokio::test]
async fn frps_status_prints_tables_and_json() {
    init_logs();
    let r = rig(2).await;
    let run = |json: bool| {
        let mut cmd = std::process::Command::new(binary("frps"));
        cmd.arg("status").arg("-c").arg(r.d.path("frps.toml"));
        if json {
            cmd.arg("--json");
        }
        cmd.output().expect("run frps status")
    };
    let out = run(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("2 client(s) connected\nCLIENT"), "{text}");
    for needle in [
        "node1",
        "node2",
        "PROXY",
        "web0",
        "web1",
        "running",
        &r.ports[0].to_string(),
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let out = run(true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(v["clients"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["proxies"].as_array().map(Vec::len), Some(2));
}

#[test]
fn an_open_admin_api_without_credentials_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    frp_certs::init_ca_dir(&certs, &["localhost".into()], false).expect("ca");
    let config = dir.path().join("frps.toml");
    let tls = "[transport.tls]\ncertFile = \"certs/server.crt\"\nkeyFile = \"certs/server.key\"\n\
               trustedCaFile = \"certs/ca.crt\"\n";
    std::fs::write(
        &config,
        format!("{tls}\n[webServer]\naddr = \"0.0.0.0\"\nport = 7500\n"),
    )
    .expect("write");
    let out = std::process::Command::new(binary("frps"))
        .args(["--check", "-c"])
        .arg(&config)
        .output()
        .expect("frps --check");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("webServer.user") && err.contains("0.0.0.0"),
        "{err}"
    );
    let open =
        format!("{tls}\n[webServer]\naddr = \"0.0.0.0\"\nport = 7500\ninsecureAllowOpen = true\n");
    std::fs::write(&config, open).expect("write");
    let out = std::process::Command::new(binary("frps"))
        .args(["--check", "-c"])
        .arg(&config)
        .output()
        .expect("frps --check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_access_log_streams_requests_as_they_are_served() {
    use frp_tests::deployment::{free_ports, quic_table, Deployment};
    use frp_tests::frpc_admin::USER;
    use frp_tests::http::{client, http_backend, request, send};
    use http_body_util::BodyExt as _;
    init_logs();
    binary("frps");
    let app = http_backend("app").await;
    let ports = free_ports(2);
    let quic = quic_table(Duration::from_secs(5), Duration::from_secs(120));
    let web = format!(
        "{quic}\n[webServer]\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        ports[1]
    );
    let proxy = format!(
        "{quic}\n[[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalPort = {}\n\
         customDomains = [\"web.example.com\", \"other.example.com\"]\n",
        app.addr.port()
    );
    let d = Deployment::new(app.addr, &[], &web, &proxy);
    let top = format!(
        "vhostHTTPPort = {}\nallowDomains = [\"*.example.com\"]",
        ports[0]
    );
    d.prepend("frps", &top);
    let (_frps, _frpc) = d.start_both().await;
    let api = ApiClient::new(SocketAddr::new(LOCALHOST, ports[1]), Some((USER, PASSWORD)));
    assert_eq!(api.get("/api/v1/access-log?status=7xx").await.status, 400);

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let path = "/api/v1/access-log?host=web.example.com&status=4xx";
    let req = request(
        "GET",
        &api.addr.to_string(),
        path,
        &[("authorization", &format!("Basic {auth}"))],
    );
    let mut stream = client(api.addr).await;
    let resp = within("stream opens", stream.send_request(req))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();

    let vhost = SocketAddr::new(LOCALHOST, ports[0]);
    let mut visitor = client(vhost).await;
    // A path holding %2F is refused by frps (400) unless the proxy allows encoded slashes.
    let visits = [
        ("other.example.com", "/a%2Fb"),
        ("web.example.com", "/ok"),
        ("web.example.com", "/a%2Fb"),
    ];
    for (host, path) in visits {
        send(&mut visitor, request("GET", host, path, &[])).await;
    }
    let event = within("the 400 arrives", async {
        loop {
            let frame = body.frame().await.expect("stream open").expect("frame");
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(json) = text.strip_prefix("data: ") {
                return serde_json::from_str::<serde_json::Value>(json.trim()).expect("json");
            }
        }
    })
    .await;
    assert_eq!(event["host"], "web.example.com", "{event}");
    assert_eq!(event["status"], 400, "only the 4xx of that host: {event}");
    assert_eq!(event["method"], "GET");

    let info = json_of(&api.get("/api/v1/serverinfo").await);
    let classes = &info["vhostRequests"];
    assert_eq!(classes["2xx"], 1, "{info}");
    assert_eq!(classes["4xx"], 2, "{info}");
    assert_eq!(classes["5xx"], 0, "{info}");
}
