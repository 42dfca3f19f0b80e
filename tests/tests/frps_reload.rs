//! Reloading frps.toml on the real binaries: a file with a mistake changes nothing and says
//! why; a narrower `allowPorts` withdraws exactly the proxies outside it (their ports free
//! when the reload answers, their client told why) while the others keep carrying traffic;
//! keys that need a restart are reported; SIGHUP does the same as the API.

use std::net::SocketAddr;

use frp_tests::backends::open_echo;
use frp_tests::deployment::{echo_through, free_ports, send_signal, until_bindable};
use frp_tests::frpc_admin::json_of;
use frp_tests::frps_admin::rig;
use frp_tests::{init_logs, within, LOCALHOST};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// frps.toml with its `allowPorts` line replaced by one allowing `ports`.
fn allowing(text: &str, ports: &[u16]) -> String {
    let allow: Vec<String> = ports
        .iter()
        .map(|p| format!("{{ single = {p} }}"))
        .collect();
    text.lines()
        .map(|l| match l.starts_with("allowPorts") {
            true => format!("allowPorts = [{}]", allow.join(", ")),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_narrower_allow_ports_withdraws_exactly_the_proxies_outside_it() {
    init_logs();
    let mut r = rig(3).await;
    let path = r.d.path("frps.toml");
    let original = std::fs::read_to_string(&path).expect("frps.toml");
    // A connection open through the proxy that stays must live through every reload.
    let mut kept = open_echo(SocketAddr::new(LOCALHOST, r.ports[0])).await;

    std::fs::write(&path, format!("{original}\nallowPorts = \"not a list\n")).expect("write");
    let broken = r.api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(broken.status, 400, "{}", broken.body);
    let why = json_of(&broken)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("frps.toml"), "names the file: {why}");
    echo_through(&r.ports, b"after a broken file").await;

    let vhost = free_ports(1)[0];
    let narrow = allowing(&original, &[r.ports[0]]);
    std::fs::write(&path, format!("vhostHTTPPort = {vhost}\n{narrow}")).expect("write");
    let reload = r.api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(reload.status, 200, "{}", reload.body);
    let report = json_of(&reload);
    let mut withdrawn: Vec<&str> = report["withdrawn"]
        .as_array()
        .expect("withdrawn")
        .iter()
        .filter_map(|w| w["proxy"].as_str())
        .collect();
    withdrawn.sort_unstable();
    assert_eq!(withdrawn, ["web1", "web2"], "{report}");
    assert_eq!(
        report["restartRequired"],
        serde_json::json!(["vhostHTTPPort"])
    );
    within("withdrawn ports free", until_bindable(&r.ports[1..])).await;
    echo_through(&r.ports[..1], b"the allowed one stays").await;
    let web1 = r.get("/api/v1/proxies/web1").await;
    assert_eq!(web1["status"], "refused", "{web1}");
    let error = web1["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("no longer allowed after a server reload"),
        "{web1}"
    );
    r.node1.wait_log("server withdrew a proxy", 2).await;
    let status = json_of(&r.node1_api.get("/api/v1/status").await);
    let states: Vec<&str> = status["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .filter_map(|p| p["state"].as_str())
        .collect();
    assert_eq!(states, ["running", "refused", "refused"], "{status}");

    // SIGHUP rereads the file as the API does: the original allows every port again, and
    // nothing running is withdrawn (frpc registers the others again at its next reload).
    std::fs::write(&path, &original).expect("write");
    send_signal(r.frps.pid(), "HUP");
    r.frps
        .wait_log(r#""message":"frps.toml reloaded""#, 2)
        .await;
    let info = r.get("/api/v1/serverinfo").await;
    assert_eq!(info["proxyCounts"]["tcp"], 1, "{info}");
    let add = r.node1_api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(add.status, 200, "{}", add.body);
    within("all three published again", async {
        loop {
            let info = r.get("/api/v1/serverinfo").await;
            if info["proxyCounts"]["tcp"] == 3 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    echo_through(&r.ports, b"all back").await;

    kept.write_all(b"still here").await.expect("write");
    let mut back = [0u8; 10];
    kept.read_exact(&mut back).await.expect("read");
    assert_eq!(&back, b"still here");
}

#[tokio::test]
async fn a_reload_brings_new_certificates_for_tls_termination() {
    use frp_tests::deployment::{quic_table, Deployment};
    use frp_tests::http::{client_on, http_backend, request, send, tls_connect};
    init_logs();
    frp_tests::procs::binary("frps");
    let app = http_backend("app").await;
    let ports = free_ports(2);
    let (http, https) = (ports[0], ports[1]);
    let quic = quic_table(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(120),
    );
    let proxy = format!(
        "[[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalPort = {}\n\
         customDomains = [\"web.example.com\"]\n",
        app.addr.port()
    );
    let d = Deployment::new(app.addr, &[], &quic, &format!("{quic}\n{proxy}"));
    d.prepend(
        "frps",
        &format!(
            "vhostHTTPPort = {http}\nvhostHTTPSPort = {https}\nallowDomains = [\"*.example.com\"]"
        ),
    );
    let (mut frps, _frpc) = d.start_both().await;
    let public = SocketAddr::new(LOCALHOST, https);
    let ca = frp_certs::Ca::generate("web CA").expect("ca");
    let cert = ca
        .issue_server(&["web.example.com".to_string()])
        .expect("cert");
    let roots = || vec![ca.cert_der()];
    let before = tls_connect(public, "web.example.com", roots()).await;
    assert!(before.is_err(), "no certificate for the name yet");

    std::fs::write(d.path("web.crt"), cert.cert_pem()).expect("cert");
    std::fs::write(d.path("web.key"), cert.key_pem()).expect("key");
    let text = std::fs::read_to_string(d.path("frps.toml")).expect("frps.toml");
    let certs = "\n[[vhostHTTPS.certificates]]\ndomains = [\"web.example.com\"]\n\
                 certFile = \"web.crt\"\nkeyFile = \"web.key\"\n";
    std::fs::write(d.path("frps.toml"), format!("{text}{certs}")).expect("write");
    send_signal(frps.pid(), "HUP");
    frps.wait_log(r#""message":"frps.toml reloaded""#, 1).await;
    let tls = tls_connect(public, "web.example.com", roots())
        .await
        .expect("terminated with the new certificate");
    let mut conn = client_on(tls).await;
    let r = send(&mut conn, request("GET", "web.example.com", "/", &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("backend"), Some("app"));
}
