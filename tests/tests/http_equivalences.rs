//! The location guard end to end: `/` is open and `/admin` (with `/key`, `/class` and `/ff`)
//! needs a password; every spelling a mainstream server reads as a protected location gets
//! `401` without the password or `400`, never the open backend's `200`. Each row names the
//! server behaviour it models (the table is `docs/path-equivalences.md`).

use frp_proto::{Secret, VhostSpec};
use frp_tests::http::http_backend;
use frp_tests::rawhttp::{exchange, get_request};
use frp_tests::TestClient;
use frp_tests::{http_proxy, init_logs, vhost_settings, Pki, TestServer};

const HOST: &str = "site.example.com";

/// (request target, the server behaviour that reads it as a protected location).
const SPELLINGS: &[(&str, &str)] = &[
    ("/ADMIN/", "IIS, ASP.NET Core, Express: ASCII case ignored"),
    (
        "/adm%C4%B0n",
        "Java equalsIgnoreCase: U+0130 lowercases to 'i'",
    ),
    ("/adm\u{130}n", "the same, sent as raw UTF-8"),
    (
        "/adm%C4%B1n",
        ".NET OrdinalIgnoreCase: U+0131 uppercases to 'I'",
    ),
    (
        "/%E2%84%AAey",
        "Go strings.EqualFold: KELVIN SIGN is 'k' (/key)",
    ),
    ("/cla%C5%BF%C5%BF", "Java, Go: LONG S is 's' (/class)"),
    ("/cla%C3%9F", "Python casefold: 'ß' is 'ss' (/class)"),
    ("/cla%DF", "Tomcat before 8 reads ISO-8859-1: 'ß' (/class)"),
    (
        "/%EF%AC%80",
        "Java toUpperCase, Python casefold: U+FB00 is 'ff' (/ff)",
    ),
    ("/%EF%BD%81dmin", "NFKC: FULLWIDTH 'a'"),
    (
        "/%C4%81dmin",
        "Windows best-fit ANSI conversion: 'ā' is 'a'",
    ),
    ("/admin.", "Windows: trailing dots trimmed"),
    ("/admin%20", "Windows: trailing spaces trimmed"),
    ("/%20admin", "Spring AntPathMatcher trimTokens: Java trim()"),
    (
        "/Admin%2520",
        "double decoding, then the trailing space trimmed",
    ),
    ("/%2561dmin", "IIS double decoding"),
    ("/admin%09", "Java trim(): an encoded TAB"),
    ("/admin%0D", "Java trim(): an encoded CR"),
    ("/admin%A0", "ISO-8859-1 NO-BREAK SPACE, .NET Trim()"),
    ("/admin%C2%A0", ".NET Trim(), Go TrimSpace: NO-BREAK SPACE"),
    ("/admin%E3%80%80", ".NET Trim(): IDEOGRAPHIC SPACE"),
    ("/admin%3Bx", "decoding before removing ';' parameters"),
    (
        "/admin%3Fx",
        "a proxy that decodes, then splits off the query",
    ),
    ("/admin::$DATA", "IIS on NTFS: the data stream of /admin"),
    ("/x/..%20/admin", "Windows: '.. ' is '..'"),
    ("/x/%EF%BC%8E%EF%BC%8E/admin", "NFKC: fullwidth '..'"),
    (
        "/x/%E0%80%AE%E0%80%AE/admin",
        "lax UTF-8: overlong 3-byte '.'",
    ),
    ("/admin%2509", "double decoding, then Java trim()"),
];

#[tokio::test]
async fn every_spelling_of_a_protected_location_needs_its_password_or_is_refused() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let protected = VhostSpec {
        locations: ["/admin", "/key", "/class", "/ff"]
            .map(String::from)
            .to_vec(),
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        ..VhostSpec::default()
    };
    let proxies = vec![
        http_proxy("site", app.addr, &[HOST], VhostSpec::default()),
        http_proxy("admin", app.addr, &[HOST], protected),
    ];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("site").await;
    c.bound("admin").await;
    for (target, server_behaviour) in SPELLINGS {
        let r = exchange(http, &get_request(HOST, target)).await;
        assert!(
            matches!(r.status, 400 | 401),
            "{target} ({server_behaviour}) got {}: {}",
            r.status,
            r.body
        );
    }
    assert_eq!(app.served(), 0, "no spelling reached the open backend");
    for open in ["/public", "/administrator", "/caf%C3%A9"] {
        let r = exchange(http, &get_request(HOST, open)).await;
        assert_eq!(r.status, 200, "{open} stays open: {}", r.body);
    }
    let authed = format!(
        "GET /ADMIN%20 HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\nConnection: close\r\n\r\n"
    );
    let r = exchange(http, &authed).await;
    assert_eq!(
        r.status, 200,
        "the password lets a spelling through: {}",
        r.body
    );
    assert_eq!(r.field("path"), Some("/ADMIN%20"), "forwarded as sent");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_non_ascii_location_is_one_path_raw_or_encoded() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let cafe = VhostSpec {
        locations: vec!["/caf%C3%A9".into()],
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        ..VhostSpec::default()
    };
    let proxies = vec![
        http_proxy("site", app.addr, &[HOST], VhostSpec::default()),
        http_proxy("cafe", app.addr, &[HOST], cafe),
    ];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("site").await;
    c.bound("cafe").await;
    for target in [
        "/caf%C3%A9",
        "/caf%c3%a9",
        "/caf\u{e9}",
        "/CAF\u{c9}",
        "/cafe%CC%81",
    ] {
        let r = exchange(http, &get_request(HOST, target)).await;
        assert_eq!(r.status, 401, "{target}: {}", r.body);
    }
    assert_eq!(app.served(), 0);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
