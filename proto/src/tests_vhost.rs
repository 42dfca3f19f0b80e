//! Golden bytes and limits of the http/https part of a proxy registration (minor 1).

#![allow(clippy::unwrap_used)]

use crate::tests::{cat, decode_one, encode, encode_refused, http_spec, https_spec, name, spec};
use crate::*;

#[test]
fn golden_http_and_https_specs() {
    let web = ProxySpec {
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
            ..VhostSpec::default()
        },
    };
    let kube = ProxySpec {
        name: name("k"),
        kind: ProxyKind::Https,
        remote_port: 0,
        vhost: VhostSpec {
            custom_domains: vec!["k.io".into()],
            subdomain: "api".into(),
            ..VhostSpec::default()
        },
    };
    let msg = ControlMsg::Hello(Hello {
        minor: 1,
        agent: "a".into(),
        proxies: vec![web, kube],
    });
    let golden = cat(&[
        &[0, 0, 0, 0x5a, 1],    // length 90, tag Hello
        &[0, 1, 0, 1, b'a'],    // minor 1, agent "a"
        &[0, 2],                // two proxies
        &[0, 1, b'w', 2, 0, 0], // "w", kind http, remote port 0
        &[0, 1, 0, 4],
        b"a.io",                   // one custom domain
        &[0, 0, 0, 0, 0, 0],       // no subdomain, no locations, no host rewrite
        &[0, 0, 0, 0],             // no request or response headers
        &[0, 1, b'u', 0, 1, b'p'], // basic auth user and password
        &[1, 0, 1, 0, 1, b'*'],    // cors: origins ["*"]
        &[0, 0, 0, 1, 0, 1, b'x'], // no methods, headers ["x"]
        &[0, 0, 0, 0, 60],         // no credentials, max age 60
        &[1],                      // redirect to https
        &[0, 1, b'k', 3, 0, 0],    // "k", kind https
        &[0, 1, 0, 4],
        b"k.io",
        &[0, 3],
        b"api",                                // subdomain
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // empty lists and texts
        &[0, 0],                               // no cors, no redirect
    ]);
    assert_eq!(&encode(&msg)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(msg));
}

#[test]
fn vhost_fields_are_bounded_and_checked() {
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
    // A redirect flag of 2 and a cors flag of 2 are refused on decode.
    let mut bytes = encode(&hello(vec![https_spec("k")])).to_vec();
    let last = bytes.len() - 1;
    bytes[last] = 2;
    assert!(matches!(
        decode_one(&bytes),
        Err(CodecError::InvalidValue {
            what: "redirect https"
        })
    ));
    bytes[last] = 0;
    bytes[last - 1] = 2;
    assert!(matches!(
        decode_one(&bytes),
        Err(CodecError::InvalidValue { what: "cors" })
    ));
}
