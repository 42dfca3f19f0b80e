//! Property tests: arbitrary bytes never panic the decoders, arbitrary messages round-trip.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv6Addr, SocketAddr};

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use crate::tests::{encode, encode_header, v4};
use crate::*;

fn arb_name() -> impl Strategy<Value = ProxyName> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| ProxyName::new(s).unwrap())
}

/// Up to `n` printable characters: at most `4 * n` bytes.
fn arb_text(n: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{0,{n}}}")).unwrap()
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| v4(ip, port)),
        any::<(u128, u16)>().prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

fn arb_texts(max_len: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(arb_text(max_len / 4), 0..4)
}

fn arb_headers() -> impl Strategy<Value = Vec<HeaderPair>> {
    prop::collection::vec(
        ("[A-Za-z-]{1,16}", arb_text(64)).prop_map(|(name, value)| HeaderPair { name, value }),
        0..3,
    )
}

fn arb_cors() -> impl Strategy<Value = Option<CorsSpec>> {
    let cors = (
        arb_texts(64),
        arb_texts(64),
        arb_texts(64),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(|(o, m, h, c, a)| CorsSpec {
            allow_origins: o,
            allow_methods: m,
            allow_headers: h,
            allow_credentials: c,
            max_age: a,
        });
    prop::option::of(cors)
}

fn arb_vhost() -> impl Strategy<Value = VhostSpec> {
    (
        (arb_texts(253), arb_text(15), arb_texts(256), arb_text(60)),
        (arb_headers(), arb_headers(), arb_text(16), arb_text(32)),
        (arb_cors(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((d, s, l, h), (rq, rs, u, p), (cors, redirect, slashes))| VhostSpec {
                custom_domains: d,
                subdomain: s,
                locations: l,
                host_header_rewrite: h,
                request_headers: rq,
                response_headers: rs,
                http_user: u,
                http_password: Secret::new(p),
                cors,
                redirect_https: redirect,
                allow_encoded_slashes: slashes,
            },
        )
}

fn arb_spec() -> impl Strategy<Value = ProxySpec> {
    let tcp = (arb_name(), any::<u16>()).prop_map(|(name, remote_port)| ProxySpec {
        name,
        kind: ProxyKind::Tcp,
        remote_port,
        vhost: VhostSpec::default(),
    });
    let kind = prop_oneof![Just(ProxyKind::Http), Just(ProxyKind::Https)];
    let vhost = (arb_name(), kind, arb_vhost()).prop_map(|(name, kind, vhost)| ProxySpec {
        name,
        kind,
        remote_port: 0,
        vhost,
    });
    prop_oneof![tcp, vhost]
}

fn arb_result() -> impl Strategy<Value = ProxyResult> {
    let outcome = prop_oneof![
        (any::<u32>(), arb_addr()).prop_map(|(id, remote_addr)| ProxyOutcome::Bound {
            id: ProxyId(id),
            remote_addr,
        }),
        arb_text(64).prop_map(|reason| ProxyOutcome::Refused { reason }),
    ];
    (arb_name(), outcome).prop_map(|(name, outcome)| ProxyResult { name, outcome })
}

fn arb_msg() -> impl Strategy<Value = ControlMsg> {
    prop_oneof![
        (
            any::<u16>(),
            arb_text(256),
            prop::collection::vec(arb_spec(), 0..8)
        )
            .prop_map(|(minor, agent, proxies)| ControlMsg::Hello(Hello {
                minor,
                agent,
                proxies,
            })),
        (any::<u16>(), prop::collection::vec(arb_result(), 0..32))
            .prop_map(|(minor, results)| ControlMsg::Welcome(Welcome { minor, results })),
        arb_text(256).prop_map(|reason| ControlMsg::GoingAway(GoingAway { reason })),
        prop::collection::vec(arb_spec(), 0..8)
            .prop_map(|proxies| ControlMsg::AddProxies(AddProxies { proxies })),
        prop::collection::vec(arb_result(), 0..32)
            .prop_map(|results| ControlMsg::AddResults(AddResults { results })),
        prop::collection::vec(arb_name(), 0..32)
            .prop_map(|names| ControlMsg::RemoveProxies(RemoveProxies { names })),
        prop::collection::vec((arb_name(), arb_text(64)), 0..32).prop_map(|closed| {
            let closed = closed
                .into_iter()
                .map(|(name, reason)| ProxyClosed { name, reason })
                .collect();
            ControlMsg::ProxiesClosed(ProxiesClosed { closed })
        }),
    ]
}

fn arb_header() -> impl Strategy<Value = DataHeader> {
    (any::<u32>(), arb_addr()).prop_map(|(id, visitor)| DataHeader {
        proxy: ProxyId(id),
        visitor,
    })
}

/// A frame with a plausible length prefix and tag around random bytes.
fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![
        Just(1u8),
        Just(2),
        Just(3),
        Just(4),
        Just(5),
        Just(16),
        any::<u8>()
    ];
    (tag, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(tag, body)| {
        let len = u32::try_from(body.len() + 1).unwrap();
        [&len.to_be_bytes()[..], &[tag], &body].concat()
    })
}

/// Runs the control decoder over `bytes` until it stops; it must never panic.
fn drain_control(bytes: &[u8]) {
    let mut codec = ControlCodec::new();
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
    let _ = codec.decode_eof(&mut buf);
}

fn drain_data(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    let _ = decode_data_header(&mut buf);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        drain_control(&bytes);
        drain_data(&bytes);
    }

    #[test]
    fn random_frame_bodies_never_panic(frame in arb_frame()) {
        drain_control(&frame);
        drain_data(&frame);
    }

    #[test]
    fn mutated_frames_never_panic(msg in arb_msg(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&msg).to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        drain_control(&bytes);
    }

    #[test]
    fn messages_round_trip(msg in arb_msg()) {
        let mut buf = encode(&msg);
        prop_assert_eq!(ControlCodec::new().decode(&mut buf).unwrap(), Some(msg));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn chunked_streams_round_trip(
        msgs in prop::collection::vec(arb_msg(), 1..4),
        chunk in 1usize..64,
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| encode(m).to_vec()).collect();
        let mut codec = ControlCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for part in stream.chunks(chunk) {
            buf.extend_from_slice(part);
            while let Some(msg) = codec.decode(&mut buf).unwrap() {
                got.push(msg);
            }
        }
        prop_assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn data_headers_round_trip(h in arb_header(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = encode_header(&h);
        buf.extend_from_slice(&payload);
        prop_assert_eq!(decode_data_header(&mut buf).unwrap(), Some(h));
        prop_assert_eq!(&buf[..], &payload[..]);
    }
}
