//! Syntax checks of the vhost fields.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn domains_and_wildcards() {
    for ok in [
        "example.com",
        "*.example.com",
        "a-b.c0.example.org",
        "xn--bcher-kva.de",
    ] {
        assert!(validate_domain(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "com",
        "*.com",
        "Example.com",
        "a..b",
        "-a.com",
        "a-.com",
        "a.com.",
        "*a.com",
        "a.*.com",
        "a b.com",
        "a_b.com",
    ] {
        assert!(validate_domain(bad).is_err(), "{bad:?}");
    }
    assert!(validate_domain(&format!("{}.com", "a".repeat(64))).is_err());
}

#[test]
fn locations() {
    assert!(validate_location("/").is_ok());
    assert!(validate_location("/api/v1").is_ok());
    assert!(
        validate_location("/api/").is_ok(),
        "a trailing '/' is allowed"
    );
    for bad in ["", "api", "/a b", "/a?b", "/\u{e9}", "/a;b", "/a%2fb"] {
        assert!(validate_location(bad).is_err(), "{bad:?}");
    }
    let e = validate_location("/a/../admin").unwrap_err();
    assert!(e.contains("write \"/admin\""), "{e}");
    let e = validate_location("/%61pi").unwrap_err();
    assert!(e.contains("write \"/api\""), "{e}");
}

#[test]
fn host_rewrites_are_hosts() {
    for ok in [
        "backend.internal",
        "Backend:8080",
        "10.0.0.1:80",
        "[::1]:8080",
        "localhost",
    ] {
        assert!(validate_host(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a b",
        "a..b",
        "host:port",
        "a/b",
        "[::1",
        "x:99999",
        "a\r\nX: y",
    ] {
        assert!(validate_host(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn headers_and_origins() {
    assert!(validate_header_name("X-Frame-Options").is_ok());
    assert!(validate_header_name("Bad Header").is_err());
    assert!(validate_header_name("").is_err());
    assert!(validate_header_value("DENY; a=b").is_ok());
    assert!(validate_header_value("a\r\nInjected: 1").is_err());
    assert!(validate_origin("*").is_ok());
    assert!(validate_origin("https://app.example.com:8443").is_ok());
    for bad in [
        "app.example.com",
        "https://",
        "https://a.com/path",
        "ftp://a.com",
    ] {
        assert!(validate_origin(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn spec_rules() {
    let mut s = VhostSpec {
        custom_domains: vec!["app.example.com".into()],
        ..Default::default()
    };
    assert!(validate_spec(&s).is_ok());
    s.http_user = "admin".into();
    assert!(validate_spec(&s).unwrap_err().contains("go together"));
    s.http_password = Secret::new("pw");
    assert!(validate_spec(&s).is_ok());
    s.response_headers = vec![HeaderPair {
        name: "Content-Length".into(),
        value: "0".into(),
    }];
    assert!(validate_spec(&s).unwrap_err().contains("frps manages it"));
    s.response_headers.clear();
    s.cors = Some(CorsSpec {
        allow_origins: vec!["*".into()],
        allow_credentials: true,
        ..Default::default()
    });
    assert!(validate_spec(&s).unwrap_err().contains("allowCredentials"));
    s.cors = None;
    s.http_user = "u".repeat(MAX_USER_LEN + 1);
    let e = validate_spec(&s).unwrap_err();
    assert!(e.starts_with("httpUser is 65 bytes long"), "{e}");
    s.http_user = "u".into();
    s.host_header_rewrite = "not a host".into();
    assert!(validate_spec(&s)
        .unwrap_err()
        .starts_with("hostHeaderRewrite"));
    s.cors = Some(CorsSpec::default());
    assert!(s.has_http_settings());
    assert!(!VhostSpec::default().has_http_settings());
}

#[test]
fn secrets_never_show_in_debug() {
    let s = VhostSpec {
        http_user: "admin".into(),
        http_password: Secret::new("hunter2"),
        ..Default::default()
    };
    let shown = format!("{s:?}");
    assert!(
        shown.contains("admin") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert_eq!(format!("{:?}", Secret::default()), "Secret(empty)");
}
