//! Golden bytes, forward compatibility and limits of the http/https part of a proxy
//! registration (minor 1): the length-prefixed `VhostSpec` inside `AddProxies`.

#![allow(clippy::unwrap_used)]

use crate::tests::{cat, decode_one, encode, encode_refused, http_spec, https_spec, name, spec};
use crate::*;

/// An http proxy with auth, CORS, redirect and encoded slashes.
fn golden_web() -> ProxySpec {
    ProxySpec {
        name: name("w"),
        kind: ProxyKind::Http,
        remote_port: 0,
        vhost: VhostSpec {
            custom_domains: vec!["a.io".into()],
            http_user: "u".into(),
            http_password: Secret::new("p"),
            cors: Some(CorsSpec {
                allow_origins: vec!["*".into()],
                allow_headers: vec!["x".into()],
                max_age: 60,
                ..CorsSpec::default()
            }),
            redirect_https: true,
            allow_encoded_slashes: true,
            ..VhostSpec::default()
        },
    }
}

/// An https proxy with a domain and a subdomain.
fn golden_kube() -> ProxySpec {
    ProxySpec {
        name: name("k"),
        kind: ProxyKind::Https,
        remote_port: 0,
        vhost: VhostSpec {
            custom_domains: vec!["k.io".into()],
            subdomain: "api".into(),
            ..VhostSpec::default()
        },
    }
}

#[test]
fn golden_http_and_https_specs() {
    let msg = ControlMsg::AddProxies(AddProxies {
        proxies: vec![golden_web(), golden_kube()],
    });
    let golden = cat(&[
        &[0, 0, 0, 0x5b, 4],    // length 91, tag AddProxies
        &[0, 2],                // two proxies
        &[0, 1, b'w', 2, 0, 0], // "w", kind http, remote port 0
        &[0, 0x2c],             // vhost spec: 44 bytes
        &[0, 1, 0, 4],
        b"a.io",                   // one custom domain
        &[0, 0, 0, 0, 0, 0],       // no subdomain, no locations, no host rewrite
        &[0, 0, 0, 0],             // no request or response headers
        &[0, 1, b'u', 0, 1, b'p'], // basic auth user and password
        &[1, 0, 1, 0, 1, b'*'],    // cors: origins ["*"]
        &[0, 0, 0, 1, 0, 1, b'x'], // no methods, headers ["x"]
        &[0, 0, 0, 0, 60],         // no credentials, max age 60
        &[1],                      // redirect to https
        &[1],                      // allow encoded slashes
        &[0, 1, b'k', 3, 0, 0],    // "k", kind https
        &[0, 0x1c],                // vhost spec: 28 bytes
        &[0, 1, 0, 4],
        b"k.io",
        &[0, 3],
        b"api",                                // subdomain
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // empty lists and texts
        &[0, 0, 0],                            // no cors, redirect, encoded slashes
    ]);
    assert_eq!(&encode(&msg)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(msg));
}

/// An AddProxies frame of one https proxy named "k" whose vhost spec is `spec` behind the
/// length `len`.
fn add_https(len: u16, spec: &[u8]) -> Vec<u8> {
    let body = cat(&[&[4, 0, 1, 0, 1, b'k', 3, 0, 0], &len.to_be_bytes(), spec]);
    let frame_len = u32::try_from(body.len()).unwrap();
    cat(&[&frame_len.to_be_bytes(), &body])
}

#[test]
fn fields_a_later_minor_appends_are_skipped() {
    let known = cat(&[&[0, 1, 0, 4], b"k.io", &[0; 17]]);
    let newer = cat(&[&known, b"future fields"]);
    let Some(ControlMsg::AddProxies(m)) = decode_one(&add_https(38, &newer)).unwrap() else {
        panic!("expected add-proxies");
    };
    assert_eq!(m.proxies[0].vhost.custom_domains, ["k.io"]);
    assert!(matches!(
        decode_one(&add_https(41, &newer)),
        Err(CodecError::Truncated { what: "vhost spec" })
    ));
    assert!(matches!(
        decode_one(&add_https(10, &known)),
        Err(CodecError::Truncated { .. } | CodecError::TrailingBytes { .. })
    ));
}

#[test]
fn golden_add_results() {
    let msg = ControlMsg::AddResults(AddResults {
        results: vec![ProxyResult {
            name: name("w"),
            outcome: ProxyOutcome::Refused {
                reason: "no".into(),
            },
        }],
    });
    let golden = cat(&[&[0, 0, 0, 11, 5, 0, 1, 0, 1, b'w', 1, 0, 2], b"no"]);
    assert_eq!(&encode(&msg)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(msg));
}

#[test]
fn vhost_fields_are_bounded() {
    let mut web = http_spec("web");
    web.vhost.custom_domains = vec!["a.io".into(); vhost::MAX_VHOST_ITEMS + 1];
    let hello = |proxies| {
        ControlMsg::Hello(Hello {
            minor: 1,
            agent: String::new(),
            proxies,
        })
    };
    let err = encode_refused(&hello(vec![web]));
    assert!(matches!(
        err,
        CodecError::TooMany {
            what: "custom domains",
            count: 17,
            max: 16
        }
    ));
    let mut web = http_spec("web");
    web.vhost.http_password = Secret::new("p".repeat(vhost::MAX_PASSWORD_LEN + 1));
    assert!(matches!(
        encode_refused(&hello(vec![web])),
        CodecError::StringTooLong {
            what: "http password",
            ..
        }
    ));
    let mut tcp = spec("ssh", 22);
    tcp.vhost.subdomain = "x".into();
    assert!(matches!(
        encode_refused(&hello(vec![tcp])),
        CodecError::InvalidValue { .. }
    ));
}

#[test]
fn vhost_flags_are_checked_on_decode() {
    let hello = |proxies| {
        ControlMsg::Hello(Hello {
            minor: 1,
            agent: String::new(),
            proxies,
        })
    };
    // Flags of 2 (encoded slashes, redirect, cors) are refused on decode.
    let mut bytes = encode(&hello(vec![https_spec("k")])).to_vec();
    let last = bytes.len() - 1;
    bytes[last] = 2;
    assert!(matches!(
        decode_one(&bytes),
        Err(CodecError::InvalidValue {
            what: "allow encoded slashes"
        })
    ));
    bytes[last] = 0;
    bytes[last - 1] = 2;
    assert!(matches!(
        decode_one(&bytes),
        Err(CodecError::InvalidValue {
            what: "redirect https"
        })
    ));
    bytes[last - 1] = 0;
    bytes[last - 2] = 2;
    assert!(matches!(
        decode_one(&bytes),
        Err(CodecError::InvalidValue { what: "cors" })
    ));
}

#[test]
fn every_field_names_the_minor_a_server_needs() {
    let web = golden_web().vhost;
    assert_eq!(
        web.first_key_newer_than(1),
        None,
        "minor 1 knows every field"
    );
    assert_eq!(web.first_key_newer_than(0), Some(("customDomains", 1)));
    let only = VhostSpec {
        allow_encoded_slashes: true,
        ..VhostSpec::default()
    };
    assert_eq!(
        only.first_key_newer_than(0),
        Some(("allowEncodedSlashes", 1))
    );
    assert_eq!(VhostSpec::default().first_key_newer_than(0), None);
}
