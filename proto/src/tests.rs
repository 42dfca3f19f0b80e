//! Shared samples and helpers of the codec tests, and round trips (golden bytes are in
//! `tests_golden.rs`, encoder limits in `tests_limits.rs`).

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::*;

pub(crate) fn name(s: &str) -> ProxyName {
    ProxyName::new(s).unwrap()
}

pub(crate) fn spec(n: &str, remote_port: u16) -> ProxySpec {
    ProxySpec {
        name: name(n),
        kind: ProxyKind::Tcp,
        remote_port,
        vhost: VhostSpec::default(),
    }
}

/// An http proxy using every vhost field.
pub(crate) fn http_spec(n: &str) -> ProxySpec {
    ProxySpec {
        name: name(n),
        kind: ProxyKind::Http,
        remote_port: 0,
        vhost: VhostSpec {
            custom_domains: vec!["app.example.com".into(), "*.example.org".into()],
            subdomain: "app".into(),
            locations: vec!["/".into(), "/api".into()],
            host_header_rewrite: "backend.local".into(),
            request_headers: vec![HeaderPair {
                name: "x-from".into(),
                value: "frps".into(),
            }],
            response_headers: vec![HeaderPair {
                name: "x-frame-options".into(),
                value: "DENY".into(),
            }],
            http_user: "admin".into(),
            http_password: Secret::new("pw"),
            cors: Some(CorsSpec {
                allow_origins: vec!["https://ui.example.com".into()],
                allow_methods: vec!["PUT".into()],
                allow_headers: vec!["x-token".into()],
                allow_credentials: true,
                max_age: 600,
            }),
            redirect_https: true,
            allow_encoded_slashes: true,
        },
    }
}

/// An https proxy: names only.
pub(crate) fn https_spec(n: &str) -> ProxySpec {
    ProxySpec {
        name: name(n),
        kind: ProxyKind::Https,
        remote_port: 0,
        vhost: VhostSpec {
            custom_domains: vec!["kube.example.com".into()],
            ..VhostSpec::default()
        },
    }
}

pub(crate) fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(a), port))
}

pub(crate) fn v6(s: &str, port: u16) -> SocketAddr {
    SocketAddr::from((s.parse::<Ipv6Addr>().unwrap(), port))
}

/// A few messages of every kind, covering both address families and both outcomes.
pub(crate) fn samples() -> Vec<ControlMsg> {
    let mut all = hellos_and_welcomes();
    all.extend(vhost_samples());
    all
}

fn hellos_and_welcomes() -> Vec<ControlMsg> {
    vec![
        ControlMsg::Hello(Hello {
            minor: PROTOCOL_MINOR,
            agent: "frpc/0.1.0".into(),
            proxies: vec![spec("ssh", 6022), spec("web", 0)],
        }),
        ControlMsg::Hello(Hello {
            minor: u16::MAX,
            agent: String::new(),
            proxies: vec![],
        }),
        ControlMsg::Welcome(Welcome {
            minor: 0,
            results: vec![
                ProxyResult {
                    name: name("ssh"),
                    outcome: ProxyOutcome::Bound {
                        id: ProxyId(1),
                        remote_addr: v4([203, 0, 113, 5], 6022),
                    },
                },
                ProxyResult {
                    name: name("web6"),
                    outcome: ProxyOutcome::Bound {
                        id: ProxyId(u32::MAX),
                        remote_addr: v6("2001:db8::1", 443),
                    },
                },
                ProxyResult {
                    name: name("db"),
                    outcome: ProxyOutcome::Refused {
                        reason: "port 5432 is not allowed".into(),
                    },
                },
            ],
        }),
        ControlMsg::Welcome(Welcome {
            minor: 0,
            results: vec![],
        }),
        ControlMsg::GoingAway(GoingAway {
            reason: "server shutting down \u{1F44B}".into(),
        }),
        ControlMsg::GoingAway(GoingAway {
            reason: String::new(),
        }),
    ]
}

fn vhost_samples() -> Vec<ControlMsg> {
    vec![
        ControlMsg::Hello(Hello {
            minor: PROTOCOL_MINOR,
            agent: "frpc/0.2.0".into(),
            proxies: vec![http_spec("web"), https_spec("kube"), spec("ssh", 22)],
        }),
        ControlMsg::AddProxies(AddProxies {
            proxies: vec![http_spec("web"), https_spec("kube")],
        }),
        ControlMsg::AddResults(AddResults {
            results: vec![ProxyResult {
                name: name("web"),
                outcome: ProxyOutcome::Bound {
                    id: ProxyId(3),
                    remote_addr: v4([203, 0, 113, 5], 80),
                },
            }],
        }),
    ]
}

pub(crate) fn encode(msg: &ControlMsg) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_control(msg, &mut buf).unwrap();
    buf
}

pub(crate) fn encode_header(h: &DataHeader) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_data_header(h, &mut buf);
    buf
}

/// Decodes exactly one message from `bytes`, which must hold nothing else.
pub(crate) fn decode_one(bytes: &[u8]) -> Result<Option<ControlMsg>, CodecError> {
    let mut buf = BytesMut::from(bytes);
    let msg = ControlCodec::new().decode(&mut buf)?;
    if msg.is_some() {
        assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
    }
    Ok(msg)
}

pub(crate) fn round_trip(msg: &ControlMsg) {
    let bytes = encode(msg);
    assert!(bytes.len() <= 4 + MAX_FRAME_LEN);
    assert_eq!(decode_one(&bytes).unwrap().as_ref(), Some(msg));
}

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn every_message_kind_round_trips() {
    for msg in samples() {
        round_trip(&msg);
    }
}

#[test]
fn max_size_fields_round_trip() {
    let long_name = "n".repeat(MAX_NAME_LEN - 4);
    let proxies: Vec<_> = (0..MAX_PROXIES)
        .map(|i| spec(&format!("{long_name}{i:04}"), u16::try_from(i).unwrap()))
        .collect();
    // 512 two-byte characters: exactly MAX_TEXT_LEN bytes.
    let agent = "\u{e9}".repeat(MAX_TEXT_LEN / 2);
    assert_eq!(agent.len(), MAX_TEXT_LEN);
    round_trip(&ControlMsg::Hello(Hello {
        minor: 1,
        agent,
        proxies: proxies.clone(),
    }));
    let results = proxies
        .iter()
        .enumerate()
        .map(|(i, p)| ProxyResult {
            name: p.name.clone(),
            outcome: ProxyOutcome::Bound {
                id: ProxyId(u32::try_from(i).unwrap()),
                remote_addr: v6("fd00::1234:5678", p.remote_port),
            },
        })
        .collect();
    round_trip(&ControlMsg::Welcome(Welcome { minor: 0, results }));
    round_trip(&ControlMsg::GoingAway(GoingAway {
        reason: "r".repeat(MAX_TEXT_LEN),
    }));
}

#[test]
fn data_headers_round_trip() {
    for visitor in [
        v4([0, 0, 0, 0], 0),
        v4([255, 255, 255, 255], u16::MAX),
        v6("::", 0),
        v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", u16::MAX),
        v6("::ffff:192.0.2.1", 80),
    ] {
        let h = DataHeader {
            proxy: ProxyId(42),
            visitor,
        };
        let mut buf = encode_header(&h);
        buf.extend_from_slice(b"payload");
        assert_eq!(decode_data_header(&mut buf).unwrap(), Some(h));
        assert_eq!(&buf[..], b"payload");
    }
}

#[test]
fn encoder_impls_match_encode_control() {
    for msg in samples() {
        let mut owned = BytesMut::new();
        ControlCodec::new().encode(msg.clone(), &mut owned).unwrap();
        let mut borrowed = BytesMut::new();
        ControlCodec::new().encode(&msg, &mut borrowed).unwrap();
        assert_eq!(owned, encode(&msg));
        assert_eq!(borrowed, owned);
    }
}

/// Encodes after some existing bytes and checks a refusal leaves them untouched.
pub(crate) fn encode_refused(msg: &ControlMsg) -> CodecError {
    let mut buf = BytesMut::from(&b"prev"[..]);
    let err = encode_control(msg, &mut buf).unwrap_err();
    assert_eq!(&buf[..], b"prev");
    err
}
