//! Tests of the canonical path forms.
#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn equivalent_spellings_become_one() {
    for raw in [
        "/admin/",
        "/./admin/",
        "//admin/",
        "/%61dmin/",
        "/%2e/admin/",
        "/api/../admin/",
        "/api/%2E%2E/admin/",
        "/../admin/.",
        "/admin//",
    ] {
        assert_eq!(canonical(raw).unwrap(), "/admin/", "{raw}");
    }
    assert_eq!(canonical("/").unwrap(), "/");
    assert_eq!(canonical("/a/b/..").unwrap(), "/a/");
    assert_eq!(canonical("/..").unwrap(), "/");
    assert_eq!(
        canonical("/a%3f%7e").unwrap(),
        "/a%3F~",
        "other escapes are kept, in uppercase"
    );
    assert_eq!(
        canonical("/a;b=1/c").unwrap(),
        "/a;b=1/c",
        "parameters are forwarded"
    );
}

#[test]
fn ambiguous_forms_are_refused() {
    let cases = [
        ("*", PathError::NotAbsolute),
        ("/a%2fb", PathError::EncodedSeparator),
        ("/a%5Cb", PathError::EncodedSeparator),
        ("/a\\b", PathError::Backslash),
        ("/a%00", PathError::Nul),
        ("/a%zz", PathError::BadEscape),
        ("/a%4", PathError::BadEscape),
        ("/public/..;/admin", PathError::DotParams),
        ("/.;x/admin", PathError::DotParams),
    ];
    for (raw, want) in cases {
        assert_eq!(canonical(raw), Err(want), "{raw}");
    }
}

#[test]
fn matching_ignores_parameters() {
    assert_eq!(match_form("/admin;x").unwrap(), "/admin");
    assert_eq!(match_form("/api;v=1/admin/").unwrap(), "/api/admin/");
    assert_eq!(match_form("/;x").unwrap(), "/");
    assert!(location_covers(
        "/admin",
        &match_form("/admin;jsessionid=1").unwrap()
    ));
    assert!(location_covers("/api", "/api"));
    assert!(location_covers("/api", "/api/"));
    assert!(location_covers("/api", "/api/v1"));
    assert!(!location_covers("/api", "/apix"));
    assert!(!location_covers("/api", "/"));
    assert!(location_covers("/", "/anything"));
}

#[test]
fn locations_have_one_key() {
    assert_eq!(location_key("/api/").unwrap(), "/api");
    assert_eq!(location_key("/api").unwrap(), "/api");
    assert_eq!(location_key("/").unwrap(), "/");
    assert_eq!(location_key("//").unwrap(), "/");
    assert_eq!(location_key("/%61pi").unwrap(), "/api");
    assert!(location_key("/a;b").unwrap_err().contains("';'"));
    assert!(location_key("/a%2fb").unwrap_err().contains("encoded"));
}

#[test]
fn an_escaped_percent_before_anything_else_is_kept() {
    assert_eq!(canonical("/100%25").unwrap(), "/100%25");
    assert_eq!(canonical("/a%25zz").unwrap(), "/a%25zz");
    assert_eq!(canonical("/a%2541").unwrap(), "/a%2541");
    assert_eq!(canonical("/caf%C3%A9").unwrap(), "/caf%C3%A9");
}

#[test]
fn encoded_slashes_can_be_kept_and_match_as_slashes() {
    let kept = canonical_keeping_slashes("/api/v4/projects/group%2fname").unwrap();
    assert_eq!(
        kept, "/api/v4/projects/group%2Fname",
        "forwarded still encoded"
    );
    assert_eq!(match_form(&kept).unwrap(), "/api/v4/projects/group/name");
    let vhost = canonical_keeping_slashes("/api/queues/%2F/q").unwrap();
    assert_eq!(
        match_form(&vhost).unwrap(),
        "/api/queues/q",
        "'//' is merged"
    );
    assert_eq!(canonical("/a%2Fb"), Err(PathError::EncodedSeparator));
    for raw in [
        "/public/..%2Fadmin",
        "/a%2F.%2Fb",
        "/a%2F..",
        "/a%2Fb;x",
        "/x;%2Fadmin",
    ] {
        let c = canonical_keeping_slashes(raw).unwrap();
        assert_eq!(match_form(&c), Err(PathError::EncodedSlashSegment), "{raw}");
    }
    assert_eq!(
        canonical_keeping_slashes("/a%5Cb"),
        Err(PathError::EncodedSeparator),
        "an encoded backslash stays refused"
    );
}

#[test]
fn raw_non_ascii_is_encoded_as_browsers_send_it() {
    assert_eq!(canonical("/caf\u{e9}").unwrap(), "/caf%C3%A9");
    assert_eq!(canonical("/caf%c3%a9").unwrap(), "/caf%C3%A9");
    assert_eq!(
        location_key("/caf%C3%A9").unwrap(),
        canonical("/caf\u{e9}").unwrap()
    );
}

#[test]
fn controls_overlong_utf8_and_double_encoded_structure_are_refused() {
    for (raw, want) in [
        ("/a%09", PathError::Control),
        ("/a%1f", PathError::Control),
        ("/a%7F", PathError::Control),
        ("/a%E0%80%AE", PathError::Overlong),
        ("/a%F0%8F%80%AE", PathError::Overlong),
        ("/a%253b", PathError::DoubleEncoded),
        ("/a%253F", PathError::DoubleEncoded),
        ("/a%2523", PathError::DoubleEncoded),
        ("/a%250A", PathError::DoubleEncoded),
    ] {
        assert_eq!(canonical(raw), Err(want), "{raw}");
    }
    for ok in [
        "/a%E0%A0%80",
        "/a%F0%90%80%80",
        "/a%E9",
        "/a%2520",
        "/a%253C",
    ] {
        assert!(canonical(ok).is_ok(), "{ok}");
    }
}
