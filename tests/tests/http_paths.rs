//! What a request names, read the way the service will read it: paths in their canonical
//! form (so a protected location cannot be bypassed by spelling it differently), one `Host`
//! (or an absolute-form target's authority), and locations that are one key however written.

use frp_proto::{HeaderPair, Secret, VhostSpec};
use frp_tests::http::{get, http_backend, Backend};
use frp_tests::rawhttp::{exchange, get_request};
use frp_tests::{http_proxy, init_logs, vhost_settings, Pki, TestClient, TestServer};
use std::net::SocketAddr;

const HOST: &str = "site.example.com";
/// `admin:s3cret`.
const GOOD: &str = "Basic YWRtaW46czNjcmV0";

/// `/admin` behind basic auth (`admin:s3cret`).
fn admin() -> VhostSpec {
    VhostSpec {
        locations: vec!["/admin".into()],
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        ..VhostSpec::default()
    }
}

/// One local service published twice by one client: `/` open, `/admin` behind basic auth.
async fn site(pki: &Pki, app: &Backend) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(vhost_settings(pki, &["*.example.com"]));
    let proxies = vec![
        http_proxy("site", app.addr, &[HOST], VhostSpec::default()),
        http_proxy("admin", app.addr, &[HOST], admin()),
    ];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("site").await;
    c.bound("admin").await;
    (server, c, http)
}

#[tokio::test]
async fn other_spellings_of_a_protected_path_are_still_protected() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = site(&pki, &app).await;
    assert_eq!(
        exchange(http, &get_request(HOST, "/public")).await.status,
        200
    );
    for path in [
        "/admin/",
        "/./admin/",
        "//admin/",
        "/%61dmin/",
        "/%2e/admin/",
        "/admin;jsessionid=1/",
        "/api/../admin/",
        "/api/%2E%2E/admin/x",
        // A case-insensitive service (Express, ASP.NET, IIS) serves these from /admin.
        "/ADMIN/",
        "/Admin",
        "/%41dmin/",
        // Windows trims trailing dots and spaces from segments.
        "/admin.",
        "/admin%20/x",
        // A service that decodes twice reads %2561 as 'a'.
        "/%2561dmin/",
    ] {
        let r = exchange(http, &get_request(HOST, path)).await;
        assert_eq!(r.status, 401, "{path} must need the password: {}", r.body);
    }
    let authed = format!(
        "GET /Admin/x HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {GOOD}\r\nConnection: close\r\n\r\n"
    );
    let r = exchange(http, &authed).await;
    assert_eq!(r.status, 200, "the password lets it through: {}", r.body);
    assert_eq!(r.field("backend"), Some("app"));
    assert_eq!(
        r.field("header:authorization"),
        None,
        "the credentials checked stay at frps"
    );
    assert_eq!(
        app.served(),
        2,
        "only /public and the authorized request got through"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn ambiguous_paths_are_refused_and_the_service_gets_the_canonical_one() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = site(&pki, &app).await;
    for path in [
        "/admin%2fx",
        "/x%5cadmin",
        "/public/..;/admin/",
        "/a%zz",
        "/public/%252e%252e/admin/",
        "/public/%252E%252e/admin/",
        "/public/%C0%AE%C0%AE/admin/",
        "/public/%c0%ae/admin/",
    ] {
        let r = exchange(http, &get_request(HOST, path)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    let authed = format!(
        "GET /x/.././admin//a%62c?q=%2F HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {GOOD}\r\nConnection: close\r\n\r\n"
    );
    let r = exchange(http, &authed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.field("path"),
        Some("/admin/abc?q=%2F"),
        "the query is left alone"
    );
    assert_eq!(
        app.served(),
        1,
        "only the canonical request reached the service"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_host_is_one_header_or_the_absolute_targets_authority() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = site(&pki, &app).await;
    let bad = [
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: other.example.com\r\nConnection: close\r\n\r\n"),
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
        get_request("site..example.com", "/"),
        get_request(".site.example.com", "/"),
    ];
    for req in &bad {
        assert_eq!(exchange(http, req).await.status, 400, "{req:?}");
    }
    let absolute = format!(
        "GET http://{HOST}/abs HTTP/1.1\r\nHost: nobody.example.com\r\nConnection: close\r\n\r\n"
    );
    let r = exchange(http, &absolute).await;
    assert_eq!(r.status, 200, "routed by the authority: {}", r.body);
    assert_eq!(r.field("header:host"), Some(HOST), "Host is replaced by it");
    assert_eq!(
        r.field("path"),
        Some("/abs"),
        "the service gets origin form"
    );
    let hop = format!(
        "GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: host, x-forwarded-for, close\r\n\r\n"
    );
    let r = exchange(http, &hop).await;
    assert_eq!(
        r.field("header:host"),
        Some(HOST),
        "Connection cannot remove Host"
    );
    assert!(
        r.field("header:x-forwarded-for").is_some(),
        "nor what frps sets"
    );
    let r = exchange(http, &get_request("Site.Example.COM.:80", "/")).await;
    assert_eq!(r.status, 200, "case, port and a trailing dot do not matter");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_location_is_one_key_with_or_without_its_trailing_slash() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    // Both clients may share the host; still, one location has one holder.
    let named = frps::domains::DomainSet::parse(&[HOST.to_string()]).expect("set");
    for id in ["alice", "bob"] {
        settings.domains.per_client.insert(id.into(), named.clone());
    }
    let server = TestServer::start(settings);
    let at = |loc: &str| VhostSpec {
        locations: vec![loc.into()],
        ..VhostSpec::default()
    };
    let mut alice = TestClient::connect(
        &pki,
        "alice",
        server.addr,
        vec![http_proxy("api", app.addr, &[HOST], at("/api"))],
    );
    let http = alice.bound("api").await;
    let mut bob = TestClient::connect(
        &pki,
        "bob",
        server.addr,
        vec![http_proxy("api", app.addr, &[HOST], at("/api/"))],
    );
    let why = bob.refused("api").await;
    assert!(
        why.contains("asked for site.example.com/api, which another client holds"),
        "{why}"
    );
    assert_eq!(get(http, HOST, "/api", &[]).await.status, 200);
    assert_eq!(get(http, HOST, "/api/v1", &[]).await.status, 200);
    alice.stop().await.expect("stop");
    bob.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn an_authorization_the_proxy_sets_survives_basic_auth() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let spec = VhostSpec {
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        request_headers: vec![HeaderPair {
            name: "Authorization".into(),
            value: "Bearer service-token".into(),
        }],
        ..VhostSpec::default()
    };
    let mut c = TestClient::connect(
        &pki,
        "node1",
        server.addr,
        vec![http_proxy("app", app.addr, &[HOST], spec)],
    );
    let http = c.bound("app").await;
    let r = get(http, HOST, "/", &[("authorization", GOOD)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.field("header:authorization"),
        Some("Bearer service-token")
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn encoded_slashes_pass_only_where_the_proxy_allows_them() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let gitlab = VhostSpec {
        allow_encoded_slashes: true,
        ..VhostSpec::default()
    };
    let proxies = vec![
        http_proxy("gitlab", app.addr, &["git.example.com"], gitlab),
        http_proxy("admin", app.addr, &["git.example.com"], admin()),
        http_proxy("plain", app.addr, &[HOST], VhostSpec::default()),
    ];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("gitlab").await;
    c.bound("admin").await;
    c.bound("plain").await;
    let git = "git.example.com";
    let r = exchange(http, &get_request(git, "/api/v4/projects/group%2fname")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.field("path"),
        Some("/api/v4/projects/group%2Fname"),
        "forwarded still encoded"
    );
    let r = exchange(http, &get_request(git, "/api/queues/%2F/q")).await;
    assert_eq!(r.field("path"), Some("/api/queues/%2F/q"));
    for path in ["/x/..%2Fadmin/", "/x%2F..%2Fadmin", "/x%2F.%2Fadmin"] {
        let r = exchange(http, &get_request(git, path)).await;
        assert_eq!(r.status, 400, "{path}: a dot segment once decoded");
    }
    let r = exchange(http, &get_request(git, "/%2Fadmin/")).await;
    assert_ne!(
        r.status, 200,
        "read as /admin, which has no opt-in: {}",
        r.body
    );
    let r = exchange(http, &get_request(HOST, "/a%2Fb")).await;
    assert_eq!(r.status, 400, "no opt-in: {}", r.body);
    assert_eq!(app.served(), 2);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
