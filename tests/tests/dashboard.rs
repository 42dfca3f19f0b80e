//! The dashboards in a real headless browser (Debian's Chromium over WebDriver), on the real
//! binaries with real config files: what an operator sees and does from frps's page (log in,
//! a client appearing live, traffic figures, the live access log, disconnect, revoke) and
//! from frpc's (add a proxy that is then reachable through frps, see the API's refusal next
//! to the field, remove it); wrong credentials see nothing, and no request leaves the origin.
//!
//! With `FRP_SCREENSHOTS=<dir>` set, the frps test writes `dashboard-overview.png` and
//! `dashboard-clients.png` there (the README's pictures: `FRP_SCREENSHOTS=docs cargo test -p
//! frp-tests --test dashboard`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use frp_tests::backends::{echo_once, echo_server, random_bytes};
use frp_tests::browser::Browser;
use frp_tests::deployment::{free_ports, quic_table, Deployment, CONNECTED, PUBLISHED};
use frp_tests::frpc_admin::{json_of, ApiClient, PASSWORD, USER};
use frp_tests::http::{client, http_backend, request, send, Backend};
use frp_tests::procs::{binary, Proc};
use frp_tests::{init_logs, within, LOCALHOST};

const MIB: u64 = 1024 * 1024;

/// frps (vhost HTTP, admin API with credentials, a revocation list) and node1 (its own admin
/// API on loopback; `web0` tcp to an echo service, `app` http to a web app).
struct Site {
    d: Deployment,
    _frps: Proc,
    node1: Proc,
    /// frps's and node1's admin ports.
    web: Vec<u16>,
    /// frps's vhost HTTP port.
    vhost: u16,
    /// `web0`'s public port, and two more that frps allows and nothing uses yet.
    ports: Vec<u16>,
    echo: SocketAddr,
    api: ApiClient,
    _app: Backend,
    _echo: tokio::task::JoinHandle<()>,
}

async fn site() -> Site {
    binary("frps");
    let (echo, _echo) = echo_server().await;
    let app = http_backend("app").await;
    let ports = free_ports(6);
    let (web, vhost, tcp) = (ports[..2].to_vec(), ports[2], ports[3..].to_vec());
    let quic = quic_table(Duration::from_secs(5), Duration::from_secs(120));
    let frps_web = format!(
        "{quic}\n[webServer]\naddr = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n",
        web[0]
    );
    let frpc_extra = format!(
        "{quic}\n[webServer]\naddr = \"127.0.0.1\"\nport = {}\n\n[[proxies]]\nname = \"app\"\n\
         type = \"http\"\nlocalPort = {}\ncustomDomains = [\"app.example.com\"]\n",
        web[1],
        app.addr.port()
    );
    let d = Deployment::new(echo, &tcp[..1], &frps_web, &frpc_extra);
    let spare = format!(
        "allowPorts = [{{ single = {} }}, {{ single = {} }}, ",
        tcp[1], tcp[2]
    );
    let frps_toml = std::fs::read_to_string(d.path("frps.toml")).expect("frps.toml");
    let frps_toml = frps_toml.replacen("allowPorts = [", &spare, 1);
    std::fs::write(d.path("frps.toml"), frps_toml).expect("write frps.toml");
    std::fs::write(d.path("revoked.txt"), "").expect("write list");
    let top = format!(
        "vhostHTTPPort = {vhost}\nallowDomains = [\"*.example.com\"]\n\
         revocationFile = \"revoked.txt\""
    );
    d.prepend("frps", &top);
    frp_certs::issue_client_in_dir(&d.path("certs"), "node2", false).expect("issue node2");
    let node2 = std::fs::read_to_string(d.path("frpc.toml")).expect("frpc.toml");
    let node2 = node2.replace("node1", "node2");
    let node2 = node2.split("[webServer]").next().expect("head");
    std::fs::write(d.path("frpc-node2.toml"), node2).expect("write node2");
    let frps = d.start("frps", 1);
    let mut node1 = d.start("frpc", 1);
    node1.wait_log(PUBLISHED, 2).await;
    let api = ApiClient::new(SocketAddr::new(LOCALHOST, web[0]), Some((USER, PASSWORD)));
    Site {
        d,
        _frps: frps,
        node1,
        web,
        vhost,
        ports: tcp,
        echo,
        api,
        _app: app,
        _echo,
    }
}

impl Site {
    /// frps's dashboard at `route`, logged in (credentials in the URL, as a browser's login
    /// prompt would send them).
    fn frps_url(&self, route: &str) -> String {
        format!("http://{USER}:{PASSWORD}@127.0.0.1:{}/{route}", self.web[0])
    }

    /// Whether frps's API lists a client `identity` now.
    async fn lists(&self, identity: &str) -> bool {
        let clients = json_of(&self.api.get("/api/v1/clients").await);
        let all = clients.as_array().cloned().unwrap_or_default();
        all.iter().any(|c| c["identity"] == identity)
    }

    /// Waits until frps's API lists (or no longer lists) `identity`.
    async fn until_listed(&self, identity: &str, listed: bool) {
        within(&format!("{identity} listed: {listed}"), async {
            while self.lists(identity).await != listed {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

#[tokio::test]
async fn the_frps_dashboard_shows_and_runs_the_tunnels() {
    init_logs();
    let s = site().await;
    let b = Browser::start().await;
    b.open(&s.frps_url("#/clients")).await;
    b.wait("#clients tr[data-client=\"node1\"]").await;
    b.eval("window.frpMarker = 'not reloaded'").await;

    // A client that connects shows up within 2 s, without a reload.
    let mut node2 = s.d.start_with("frpc", "frpc-node2", 1);
    s.until_listed("node2", true).await;
    let listed = Instant::now();
    b.wait("#clients tr[data-client=\"node2\"]").await;
    let shown = listed.elapsed();
    assert!(
        shown <= Duration::from_secs(2),
        "node2 appeared after {shown:?}"
    );
    assert_eq!(b.eval("return window.frpMarker").await, "not reloaded");

    // 10 MiB through web0: its traffic figure shows at least that.
    let data = random_bytes(10 * MIB as usize);
    let public = SocketAddr::new(LOCALHOST, s.ports[0]);
    assert!(echo_once(public, &data).await == data, "echoed intact");
    b.click("a[href=\"#/proxies\"]").await;
    let row = "#proxies tr[data-proxy=\"web0\"]";
    let at_least = |v: &str| v.parse::<u64>().is_ok_and(|n| n >= 10 * MIB);
    b.wait_attr(row, "data-bytes-in", at_least).await;
    b.wait_attr(row, "data-bytes-out", at_least).await;
    let text = b
        .wait_text(row, |t| mib_figures(t).iter().any(|m| *m >= 10.0))
        .await;
    assert!(text.contains("MiB"), "{text}");

    access_log_is_live(&s, &b).await;
    screenshots(&s, &b).await;
    disconnect_and_revoke(&s, &b, &mut node2).await;
    stays_on_its_origin(&b).await;
    drop(b);
    wrong_credentials_see_nothing(&s).await;
}

/// The numbers shown before "MiB" in `text`.
fn mib_figures(text: &str) -> Vec<f64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[1].starts_with("MiB"))
        .filter_map(|w| w[0].parse().ok())
        .collect()
}

/// A request through the vhost port appears in the live log, with its host and status.
async fn access_log_is_live(s: &Site, b: &Browser) {
    b.click("a[href=\"#/log\"]").await;
    let vhost = SocketAddr::new(LOCALHOST, s.vhost);
    let row = "#access-log tr[data-host=\"app.example.com\"][data-status=\"200\"]";
    within("the request appears in the log", async {
        // Sent until seen: the page subscribes when the view opens, and only requests from
        // then on are streamed.
        loop {
            let mut visitor = client(vhost).await;
            let reply = send(
                &mut visitor,
                request("GET", "app.example.com", "/seen-live", &[]),
            );
            assert_eq!(reply.await.status, 200);
            if b.has(row).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let text = b.wait_text(row, |t| t.contains("/seen-live")).await;
    assert!(text.contains("GET"), "{text}");
}

/// The overview and clients pages as PNGs, written to `$FRP_SCREENSHOTS` when set.
async fn screenshots(s: &Site, b: &Browser) {
    let dir = std::env::var_os("FRP_SCREENSHOTS").map(std::path::PathBuf::from);
    if dir.is_some() {
        // For the pictures: a few intervals of traffic, so the chart has a shape.
        let public = SocketAddr::new(LOCALHOST, s.ports[0]);
        for i in 0..36 {
            let size = (1 + i % 5) * 256 * 1024;
            echo_once(public, &random_bytes(size)).await;
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    }
    b.click("a[href=\"#/overview\"]").await;
    b.wait_attr("[data-stat=\"clients\"]", "data-value", |v| v == "2")
        .await;
    b.wait("#traffic-chart").await;
    b.wait_attr("[data-stat=\"rate\"]", "data-value", |v| !v.is_empty())
        .await;
    let overview = b.screenshot().await;
    assert!(overview.starts_with(b"\x89PNG"), "a PNG");
    b.click("a[href=\"#/clients\"]").await;
    b.wait("#clients tr[data-client=\"node2\"]").await;
    let clients = b.screenshot().await;
    if let Some(dir) = dir {
        let dir = if dir.is_absolute() {
            dir
        } else {
            // Relative to the workspace, not to this crate.
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(dir)
        };
        std::fs::write(dir.join("dashboard-overview.png"), overview).expect("write png");
        std::fs::write(dir.join("dashboard-clients.png"), clients).expect("write png");
    }
}

/// "Disconnect" makes node2 reconnect; "Revoke" names its certificate, does nothing when
/// cancelled, and when confirmed lists it and keeps node2 out.
async fn disconnect_and_revoke(s: &Site, b: &Browser, node2: &mut Proc) {
    let row = "#clients tr[data-client=\"node2\"]";
    b.click(&format!("{row} button[data-action=\"disconnect\"]"))
        .await;
    node2.wait_log(CONNECTED, 2).await;
    s.until_listed("node2", true).await;

    let cert = frp_certs::load_certs(&s.d.path("certs/node2.crt")).expect("node2.crt");
    let fingerprint = frp_certs::fingerprint(&cert[0]);
    b.click(&format!("{row} button[data-action=\"revoke\"]"))
        .await;
    let named = b.wait_text("#confirm", |t| t.contains(&fingerprint)).await;
    assert!(named.contains("node2"), "{named}");
    b.click("#confirm-cancel").await;
    let list = json_of(&s.api.get("/api/v1/revocations").await);
    assert_eq!(list["entries"], serde_json::json!([]), "cancelled: {list}");

    b.click(&format!("{row} button[data-action=\"revoke\"]"))
        .await;
    b.wait_text("#confirm", |t| t.contains(&fingerprint)).await;
    b.click("#confirm-ok").await;
    within("the revocation is written", async {
        loop {
            let list = json_of(&s.api.get("/api/v1/revocations").await);
            if list["entries"] == serde_json::json!([format!("sha256={fingerprint}")]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    s.until_listed("node2", false).await;
    within("the row goes", async {
        while b.has(row).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(s.lists("node1").await, "node1 stays");
}

/// Everything the page loaded came from its own origin.
async fn stays_on_its_origin(b: &Browser) {
    let urls = b
        .eval(
            "return performance.getEntriesByType('resource')\
             .map(e => [e.name, new URL(e.name).origin])",
        )
        .await;
    let urls: Vec<(String, String)> = serde_json::from_value(urls).expect("urls");
    let origin = b.eval("return location.origin").await;
    let origin = origin.as_str().expect("origin").to_string();
    assert!(urls.len() > 4, "the page's files and API calls: {urls:?}");
    for (url, from) in &urls {
        assert_eq!(from, &origin, "{url} is not on {origin}");
    }
}

/// Wrong or no credentials get the login refusal and nothing of the dashboard.
async fn wrong_credentials_see_nothing(s: &Site) {
    let addr = SocketAddr::new(LOCALHOST, s.web[0]);
    for path in ["/", "/ui/app.js", "/ui/common.js", "/ui/style.css"] {
        let wrong = ApiClient::new(addr, Some((USER, "wrong"))).get(path).await;
        assert_eq!(wrong.status, 401, "{path}: {}", wrong.body);
        assert!(
            !wrong.body.contains("<html") && !wrong.body.contains("import"),
            "{path}"
        );
    }
    let b = Browser::start().await;
    let urls = [
        format!("http://{USER}:wrong@127.0.0.1:{}/#/clients", s.web[0]),
        format!("http://127.0.0.1:{}/", s.web[0]),
    ];
    for url in urls {
        b.open(&url).await;
        let source = b.client.source().await.expect("source");
        assert!(!source.contains("node1"), "{url}: {source}");
        assert!(
            !b.has("#clients").await && !b.has("nav").await,
            "{url}: {source}"
        );
    }
}

#[tokio::test]
async fn the_frpc_page_adds_and_removes_a_proxy() {
    init_logs();
    let mut s = site().await;
    let b = Browser::start().await;
    b.open(&format!("http://127.0.0.1:{}/", s.web[1])).await;
    b.wait_attr("#server-state", "data-state", |v| v == "connected")
        .await;
    b.wait("#proxies tr[data-proxy=\"web0\"][data-state=\"running\"]")
        .await;

    // A name in use: the API's message is shown next to the name field.
    let form = "form#add-proxy";
    fill(
        &b,
        form,
        &[("name", "web0"), ("localPort", "1"), ("remotePort", "1")],
    )
    .await;
    b.click(&format!("{form} button[type=\"submit\"]")).await;
    b.wait_text("[data-error-for=\"name\"]", |t| t.contains("exists"))
        .await;

    let added = s.ports[1];
    let echo_port = s.echo.port().to_string();
    let remote = added.to_string();
    let fields = [
        ("name", "added"),
        ("localPort", &echo_port),
        ("remotePort", &remote),
    ];
    fill(&b, form, &fields).await;
    b.click(&format!("{form} button[type=\"submit\"]")).await;
    b.wait("#proxies tr[data-proxy=\"added\"][data-state=\"running\"]")
        .await;
    s.node1.wait_log(PUBLISHED, 3).await;
    let through = SocketAddr::new(LOCALHOST, added);
    assert_eq!(echo_once(through, b"via frps").await, b"via frps");
    let file = std::fs::read_to_string(s.d.path("frpc.toml")).expect("frpc.toml");
    assert!(
        file.contains("name = \"added\""),
        "written to the file: {file}"
    );

    // Edited: the form loads the proxy, the name stays, a new remote port is saved and used.
    let row = "#proxies tr[data-proxy=\"added\"]";
    b.click(&format!("{row} button[data-action=\"edit\"]"))
        .await;
    b.wait("form#add-proxy[data-mode=\"edit\"][data-editing=\"added\"]")
        .await;
    let moved = s.ports[2];
    fill(&b, form, &[("remotePort", &moved.to_string())]).await;
    b.click("#add-submit").await;
    b.wait("form#add-proxy[data-mode=\"add\"]").await;
    let moved = SocketAddr::new(LOCALHOST, moved);
    within("the proxy moves", async {
        while tokio::net::TcpStream::connect(moved).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(echo_once(moved, b"moved").await, b"moved");
    let file = std::fs::read_to_string(s.d.path("frpc.toml")).expect("frpc.toml");
    assert_eq!(file.matches("name = \"added\"").count(), 1, "{file}");
    let through = moved;

    b.click("#proxies tr[data-proxy=\"added\"] button[data-action=\"remove\"]")
        .await;
    b.wait_text("#confirm", |t| t.contains("added")).await;
    b.click("#confirm-ok").await;
    within("the row goes", async {
        while b.has("#proxies tr[data-proxy=\"added\"]").await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    within("the port is freed", async {
        while tokio::net::TcpListener::bind(through).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Types `fields` into the form's inputs (by `name`), replacing what they held; the type
/// stays `tcp`.
async fn fill(b: &Browser, form: &str, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let input = b.wait(&format!("{form} [name=\"{name}\"]")).await;
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
}
