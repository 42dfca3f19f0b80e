//! `vhostHTTPPort` end to end with real HTTP clients and services: routing by host and
//! location across clients, the per-proxy policy (header rewrites, basic auth, CORS, redirect),
//! the proxy headers, keep-alive reuse, error statuses, the access log and domain refusals.

use std::time::Duration;

use frp_proto::{CorsSpec, HeaderPair, Secret, VhostSpec};
use frp_tests::backends::closed_port;
use std::net::SocketAddr;

use frp_tests::http::{client, get, http_backend, request, send, Backend};
use frp_tests::{http_proxy, init_logs, vhost_settings, Pki, TestClient, TestServer};

const ALLOW: &[&str] = &["*.example.com"];

/// Settings where alice and bob share a.example.com: the operator names it in both their
/// allowDomains (bob may also use the rest of example.com).
fn sharing_a(pki: &Pki) -> frps::ServerSettings {
    let mut settings = vhost_settings(pki, ALLOW);
    for (id, own) in [("alice", "a.example.com"), ("bob", "*.example.com")] {
        let list = [own.to_string(), "a.example.com".to_string()];
        let set = frps::domains::DomainSet::parse(&list).expect("allowDomains");
        settings.domains.per_client.insert(id.into(), set);
    }
    settings
}

#[tokio::test]
async fn hosts_and_locations_reach_their_backends_across_clients() {
    init_logs();
    let pki = Pki::new();
    let (a, b, api) = (
        http_backend("a").await,
        http_backend("b").await,
        http_backend("api").await,
    );
    let server = TestServer::start(sharing_a(&pki));
    let none = VhostSpec::default;
    let web_a = vec![http_proxy("app1", a.addr, &["a.example.com"], none())];
    let mut alice = TestClient::connect(&pki, "alice", server.addr, web_a);
    let api_spec = VhostSpec {
        locations: vec!["/api".into()],
        ..none()
    };
    let bob_proxies = vec![
        http_proxy("app2", b.addr, &["b.example.com"], none()),
        http_proxy("api", api.addr, &["a.example.com"], api_spec),
    ];
    let mut bob = TestClient::connect(&pki, "bob", server.addr, bob_proxies);
    let http = alice.bound("app1").await;
    assert_eq!(
        Some(http),
        server.http,
        "http proxies are served on vhostHTTPPort"
    );
    bob.bound("app2").await;
    bob.bound("api").await;

    let field = |host: &'static str, path: &'static str| async move {
        let r = get(http, host, path, &[]).await;
        assert_eq!(r.status, 200, "{host}{path}: {}", r.body);
        r.field("backend").unwrap_or_default().to_string()
    };
    assert_eq!(field("a.example.com", "/").await, "a");
    assert_eq!(field("b.example.com", "/index.html").await, "b");
    assert_eq!(field("a.example.com", "/api/v1/items").await, "api");
    assert_eq!(field("a.example.com", "/apix").await, "a");
    assert_eq!(field("A.Example.com:80", "/api").await, "api");

    alice.stop().await.expect("stop");
    bob.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn keep_alive_requests_reuse_one_backend_connection() {
    init_logs();
    let pki = Pki::new();
    let b = http_backend("b").await;
    let server = TestServer::start(vhost_settings(&pki, ALLOW));
    let proxies = vec![http_proxy(
        "b",
        b.addr,
        &["b.example.com"],
        VhostSpec::default(),
    )];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("b").await;
    // Five requests on one connection and five on fresh ones: one backend connection (one QUIC
    // stream) carries them all, as the pool keeps it between requests.
    let mut conn = client(http).await;
    for i in 0..5 {
        let r = send(
            &mut conn,
            request("GET", "b.example.com", &format!("/{i}"), &[]),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    for _ in 0..5 {
        assert_eq!(get(http, "b.example.com", "/", &[]).await.status, 200);
    }
    assert_eq!(b.accepted(), 1, "pooled backend connection reused");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

fn policy() -> VhostSpec {
    let header = |n: &str, v: &str| HeaderPair {
        name: n.into(),
        value: v.into(),
    };
    VhostSpec {
        host_header_rewrite: "backend.internal".into(),
        request_headers: vec![header("x-from", "frps")],
        response_headers: vec![header("x-frame-options", "DENY")],
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        cors: Some(CorsSpec {
            allow_origins: vec!["https://ui.example.com".into()],
            allow_methods: vec!["PUT".into()],
            allow_headers: vec!["x-token".into()],
            allow_credentials: true,
            max_age: 600,
        }),
        ..VhostSpec::default()
    }
}

/// A server and a client publishing `app.example.com` to `app` with [`policy`]; returns them
/// and the vhost address.
async fn with_policy(pki: &Pki, app: &Backend) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(vhost_settings(pki, ALLOW));
    let proxies = vec![http_proxy("app", app.addr, &[HOST], policy())];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("app").await;
    (server, c, http)
}

const HOST: &str = "app.example.com";
/// `admin:s3cret`.
const GOOD: (&str, &str) = ("authorization", "Basic YWRtaW46czNjcmV0");

#[tokio::test]
async fn basic_auth_is_checked_at_frps() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = with_policy(&pki, &app).await;
    for auth in [None, Some("Basic YWRtaW46d3Jvbmc="), Some("Bearer x")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let r = get(http, HOST, "/", &headers).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let challenge = r.header("www-authenticate").unwrap_or("");
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    assert_eq!(
        app.served(),
        0,
        "refused requests never reached the service"
    );
    let r = get(http, HOST, "/", &[GOOD]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.field("header:authorization"),
        None,
        "frps's credentials stay at frps"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn header_rewrites_and_forwarded_headers_reach_the_service() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = with_policy(&pki, &app).await;
    let sent = [
        GOOD,
        ("x-forwarded-for", "203.0.113.9"),
        ("x-from", "client"),
        ("forwarded", "for=6.6.6.6;proto=https"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
    ];
    let r = get(http, HOST, "/p?q=1", &sent).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("path"), Some("/p?q=1"));
    assert_eq!(r.field("header:host"), Some("backend.internal"));
    assert_eq!(r.field("header:x-from"), Some("frps"));
    let xff = r.field("header:x-forwarded-for");
    assert_eq!(xff, Some("203.0.113.9, 127.0.0.1"), "appended to the chain");
    assert_eq!(r.field("header:x-forwarded-proto"), Some("http"));
    assert_eq!(r.field("header:x-forwarded-host"), Some(HOST));
    assert_eq!(r.field("header:x-real-ip"), Some("127.0.0.1"));
    for forged in ["forwarded", "x-forwarded-port", "x-forwarded-prefix"] {
        let field = format!("header:{forged}");
        assert_eq!(r.field(&field), None, "{forged} is not passed on");
    }
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-backend"), Some("app"));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn cors_preflights_are_answered_at_frps() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = with_policy(&pki, &app).await;
    let preflight = [
        ("origin", "https://ui.example.com"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "x-token"),
    ];
    // No credentials: browsers send none with a preflight.
    let mut conn = client(http).await;
    let r = send(&mut conn, request("OPTIONS", HOST, "/items", &preflight)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let allow = |name: &str| r.header(&format!("access-control-allow-{name}"));
    assert_eq!(allow("origin"), Some("https://ui.example.com"));
    assert_eq!(allow("methods"), Some("PUT"));
    assert_eq!(allow("headers"), Some("x-token"));
    assert_eq!(allow("credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    let evil = [
        ("origin", "https://evil.example.net"),
        ("access-control-request-method", "PUT"),
    ];
    let r = send(&mut conn, request("OPTIONS", HOST, "/items", &evil)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(app.served(), 0, "preflights never reached the service");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn cors_responses_get_allow_headers_only_for_allowed_origins() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = with_policy(&pki, &app).await;
    let from = |origin| [GOOD, ("origin", origin)];
    let r = get(http, HOST, "/", &from("https://ui.example.com")).await;
    assert_eq!(r.status, 200);
    let origin = r.header("access-control-allow-origin");
    assert_eq!(origin, Some("https://ui.example.com"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = get(http, HOST, "/", &from("https://evil.example.net")).await;
    assert_eq!(
        r.status, 200,
        "cors is not access control: the request is served"
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(
        r.header("vary"),
        Some("Origin"),
        "the answer depends on Origin"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// A proxy for secure.example.com that sends plain-HTTP visitors to https.
fn redirecting(app: &Backend) -> Vec<frpc::LocalProxy> {
    let spec = VhostSpec {
        redirect_https: true,
        ..VhostSpec::default()
    };
    vec![http_proxy(
        "secure",
        app.addr,
        &["secure.example.com"],
        spec,
    )]
}

#[tokio::test]
async fn redirect_https_answers_308() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, ALLOW));
    let proxies = redirecting(&app);
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let r = get(
        c.bound("secure").await,
        "secure.example.com",
        "/a/b?c=d",
        &[],
    )
    .await;
    assert_eq!(r.status, 308);
    let port = server.https.expect("https port").port();
    let want = format!("https://secure.example.com:{port}/a/b?c=d");
    assert_eq!(r.header("location"), Some(want.as_str()));
    assert_eq!(app.served(), 0);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn redirect_https_needs_the_servers_https_port() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, ALLOW);
    settings.vhost.https_port = None;
    let server = TestServer::start(settings);
    let proxies = redirecting(&app);
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let why = c.refused("secure").await;
    assert!(
        why.contains("redirectHTTPS needs the server to serve vhostHTTPSPort"),
        "{why}"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn unknown_unreachable_and_slow_give_404_502_504_each_logged() {
    init_logs();
    let pki = Pki::new();
    let slow = http_backend("slow").await;
    let dead = closed_port().await;
    let mut settings = vhost_settings(&pki, ALLOW);
    settings.vhost.response_timeout = Duration::from_secs(1);
    let mut server = TestServer::start(settings);
    let none = VhostSpec::default;
    let proxies = vec![
        http_proxy("dead", dead, &["dead.example.com"], none()),
        http_proxy("slow", slow.addr, &["slow.example.com"], none()),
    ];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("dead").await;
    c.bound("slow").await;

    let cases = [
        ("nobody.example.com", "/x", 404, "-"),
        ("dead.example.com", "/y", 502, "dead"),
        ("slow.example.com", "/slow", 504, "slow"),
        ("slow.example.com", "/fine", 200, "slow"),
    ];
    for (host, path, status, proxy) in cases {
        let r = get(http, host, path, &[]).await;
        assert_eq!(r.status.as_u16(), status, "{host}{path}: {}", r.body);
        let e = server.next_access().await;
        assert_eq!(
            (e.host.as_str(), e.path.as_str(), e.status, e.proxy.as_str()),
            (host, path, status, proxy)
        );
        assert_eq!(
            (e.method.as_str(), e.scheme, e.client.ip()),
            ("GET", "http", frp_tests::LOCALHOST)
        );
        assert_eq!(
            e.bytes,
            r.body.len() as u64,
            "bytes counted for {host}{path}"
        );
    }
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
