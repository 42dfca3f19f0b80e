//! Golden bytes: the exact frames of each message, so the wire format never changes by
//! accident.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;

use crate::tests::{cat, decode_one, encode, encode_header, name, spec, v4, v6};
use crate::*;

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
fn golden_remove_proxies_and_proxies_closed() {
    let remove = ControlMsg::RemoveProxies(RemoveProxies {
        names: vec![name("ssh"), name("web")],
    });
    let golden = cat(&[
        &[0, 0, 0, 13, 6], // length 13, tag: RemoveProxies
        &[0, 2],           // two names
        &[0, 3],
        b"ssh",
        &[0, 3],
        b"web",
    ]);
    assert_eq!(&encode(&remove)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(remove));

    let closed = ControlMsg::ProxiesClosed(ProxiesClosed {
        closed: vec![ProxyClosed {
            name: name("ssh"),
            reason: "port not allowed".into(),
        }],
    });
    let golden = cat(&[
        &[0, 0, 0, 26, 7], // length 26, tag: ProxiesClosed
        &[0, 1],
        &[0, 3],
        b"ssh",
        &[0, 16],
        b"port not allowed",
    ]);
    assert_eq!(&encode(&closed)[..], &golden[..]);
    assert_eq!(decode_one(&golden).unwrap(), Some(closed));
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
