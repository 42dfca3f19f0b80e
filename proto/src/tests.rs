//! Round trips, golden bytes and encoder limits.

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
    vec![
        ControlMsg::Hello(Hello {
            minor: PROTOCOL_MINOR,
            agent: "frpc/0.1.0".into(),
            proxies: vec![spec("ssh", 6022), spec("web", 0)],
        }),
        ControlMsg::Hello(Hello {
            minor: PROTOCOL_MINOR,
            agent: "frpc/0.2.0".into(),
            proxies: vec![http_spec("web"), https_spec("kube"), spec("ssh", 22)],
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

fn round_trip(msg: &ControlMsg) {
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
fn golden_hello() {
    let msg = ControlMsg::Hello(Hello {
        minor: 3,
        agent: "frpc/0.1".into(),
        proxies: vec![spec("ssh", 6022), spec("web", 0)],
    });
    let golden = cat(&[
        &[0, 0, 0, 0x1f], // length: 31
        &[1],             // tag: Hello
        &[0, 3],          // minor
        &[0, 8],
        b"frpc/0.1", // agent
        &[0, 2],     // two proxies
        &[0, 3],
        b"ssh",
        &[1],          // kind: tcp
        &[0x17, 0x86], // remote port 6022
        &[0, 3],
        b"web",
        &[1],
        &[0, 0], // remote port 0: server picks
    ]);
    assert_eq!(&encode(&msg)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(msg));
}

#[test]
fn golden_welcome_and_going_away() {
    let msg = ControlMsg::Welcome(Welcome {
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
                name: name("web"),
                outcome: ProxyOutcome::Refused {
                    reason: "port in use".into(),
                },
            },
        ],
    });
    let golden = cat(&[
        &[0, 0, 0, 0x29, 2, 0, 0, 0, 2],
        &[0, 3],
        b"ssh",
        &[0, 0, 0, 0, 1, 4, 203, 0, 113, 5, 0x17, 0x86],
        &[0, 3],
        b"web",
        &[1, 0, 11],
        b"port in use",
    ]);
    assert_eq!(&encode(&msg)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(msg));

    let bye = ControlMsg::GoingAway(GoingAway {
        reason: "bye".into(),
    });
    assert_eq!(&encode(&bye)[..], &[0, 0, 0, 6, 3, 0, 3, b'b', b'y', b'e']);
}

#[test]
fn golden_data_headers() {
    let h4 = DataHeader {
        proxy: ProxyId(7),
        visitor: v4([192, 0, 2, 1], 54321),
    };
    let golden4 = [0, 0, 0, 12, 16, 0, 0, 0, 7, 4, 192, 0, 2, 1, 0xd4, 0x31];
    assert_eq!(&encode_header(&h4)[..], &golden4[..]);

    let h6 = DataHeader {
        proxy: ProxyId(0x0102_0304),
        visitor: v6("2001:db8::1", 443),
    };
    let golden6 = cat(&[
        &[0, 0, 0, 24, 16, 1, 2, 3, 4, 6],
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0x01, 0xbb],
    ]);
    assert_eq!(&encode_header(&h6)[..], &golden6[..]);
    for (h, golden) in [(h4, &golden4[..]), (h6, &golden6[..])] {
        assert_eq!(
            decode_data_header(&mut BytesMut::from(golden)).unwrap(),
            Some(h)
        );
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

#[test]
fn encoder_refuses_over_long_strings() {
    let agent = ControlMsg::Hello(Hello {
        minor: 0,
        agent: "a".repeat(MAX_TEXT_LEN + 1),
        proxies: vec![],
    });
    let err = encode_refused(&agent);
    assert!(matches!(
        err,
        CodecError::StringTooLong {
            what: "agent",
            len: 1025,
            max: 1024
        }
    ));

    let refused = ControlMsg::Welcome(Welcome {
        minor: 0,
        results: vec![ProxyResult {
            name: name("x"),
            outcome: ProxyOutcome::Refused {
                reason: "r".repeat(MAX_TEXT_LEN + 1),
            },
        }],
    });
    let err = encode_refused(&refused);
    assert!(matches!(
        err,
        CodecError::StringTooLong {
            what: "refusal reason",
            ..
        }
    ));

    let bye = ControlMsg::GoingAway(GoingAway {
        reason: "\u{e9}".repeat(MAX_TEXT_LEN / 2 + 1),
    });
    assert!(matches!(
        encode_refused(&bye),
        CodecError::StringTooLong { len: 1026, .. }
    ));
}

#[test]
fn encoder_refuses_too_many_proxies() {
    let hello = ControlMsg::Hello(Hello {
        minor: 0,
        agent: String::new(),
        proxies: vec![spec("x", 1); MAX_PROXIES + 1],
    });
    let err = encode_refused(&hello);
    assert!(matches!(
        err,
        CodecError::TooMany {
            what: "proxies",
            count: 257,
            max: 256
        }
    ));
}

#[test]
fn encoder_refuses_frames_over_the_limit() {
    // Every field is within its own limit, but 256 long refusals do not fit in 64 KiB.
    let results = (0..MAX_PROXIES)
        .map(|i| ProxyResult {
            name: name(&format!("p{i}")),
            outcome: ProxyOutcome::Refused {
                reason: "r".repeat(MAX_TEXT_LEN),
            },
        })
        .collect();
    let welcome = ControlMsg::Welcome(Welcome { minor: 0, results });
    let err = encode_refused(&welcome);
    assert!(
        matches!(err, CodecError::FrameTooLarge { len, max: MAX_FRAME_LEN } if len > MAX_FRAME_LEN)
    );
}

#[test]
fn display_messages_are_lowercase() {
    let errors = [
        CodecError::FrameTooLarge {
            len: 70000,
            max: MAX_FRAME_LEN,
        },
        CodecError::EmptyFrame,
        CodecError::UnknownTag(9),
        CodecError::Truncated { what: "agent" },
        CodecError::InvalidName(NameError::Empty),
        CodecError::UnexpectedEof,
    ];
    for err in errors {
        let msg = err.to_string();
        assert_eq!(msg, msg.to_lowercase(), "{msg}");
    }
    assert_eq!(ProxyKind::Tcp.as_str(), "tcp");
    assert_eq!(ProxyId(12).to_string(), "12");
}

fn full_welcome(reason_len: usize) -> ControlMsg {
    let results = (0..MAX_PROXIES)
        .map(|i| ProxyResult {
            name: name(&format!("{}{i:04}", "n".repeat(MAX_NAME_LEN - 4))),
            outcome: ProxyOutcome::Refused {
                reason: "r".repeat(reason_len),
            },
        })
        .collect();
    ControlMsg::Welcome(Welcome { minor: 0, results })
}

#[test]
fn safe_reason_len_is_tight() {
    round_trip(&full_welcome(MAX_SAFE_REASON_LEN));
    let err = encode_refused(&full_welcome(MAX_SAFE_REASON_LEN + 1));
    assert!(matches!(err, CodecError::FrameTooLarge { .. }));
}
