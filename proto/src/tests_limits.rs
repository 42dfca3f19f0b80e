//! Encoder limits: values the peer would refuse are refused before anything is written.

#![allow(clippy::unwrap_used)]

use crate::tests::{encode_refused, name, round_trip, spec};
use crate::*;

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
