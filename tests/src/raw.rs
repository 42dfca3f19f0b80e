//! A hand-driven protocol peer: an authenticated client that sends whatever bytes a test wants,
//! for checking how the server treats malformed or hostile input.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use frp_proto::{encode_control, CloseCode, ControlMsg, Hello, PROTOCOL_MINOR};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream};

use crate::within;

/// A raw QUIC connection to frps with a valid client certificate.
#[derive(Debug)]
pub struct RawClient {
    /// The endpoint (kept alive with the connection).
    pub endpoint: Endpoint,
    /// The connection.
    pub conn: Connection,
}

impl RawClient {
    /// Connects to `server` presenting the certificate in `tls`.
    pub async fn connect(tls: Arc<rustls::ClientConfig>, server: SocketAddr) -> Self {
        let crypto = QuicClientConfig::try_from(tls).expect("quic tls");
        let config = quinn::ClientConfig::new(Arc::new(crypto));
        let endpoint = Endpoint::client((crate::LOCALHOST, 0).into()).expect("endpoint");
        let connecting = endpoint
            .connect_with(config, server, "localhost")
            .expect("connect");
        let conn = within("raw handshake", connecting)
            .await
            .expect("handshake");
        Self { endpoint, conn }
    }

    /// Opens the control stream.
    pub async fn control(&self) -> (SendStream, RecvStream) {
        within("open control stream", self.conn.open_bi())
            .await
            .expect("open_bi")
    }

    /// Waits for the server to close the connection; returns its application close code.
    pub async fn closed_with(&self) -> Option<CloseCode> {
        match within("server closes the connection", self.conn.closed()).await {
            ConnectionError::ApplicationClosed(c) => {
                CloseCode::from_code(c.error_code.into_inner())
            }
            _ => None,
        }
    }
}

/// The bytes of a frame with an arbitrary length prefix, tag and body.
pub fn frame(len: u32, tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = len.to_be_bytes().to_vec();
    v.push(tag);
    v.extend_from_slice(body);
    v
}

/// The bytes of a valid control message.
pub fn encoded(msg: &ControlMsg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_control(msg, &mut buf).expect("encode");
    buf.to_vec()
}

/// A valid `Hello` with no proxies.
pub fn empty_hello() -> ControlMsg {
    ControlMsg::Hello(Hello {
        minor: PROTOCOL_MINOR,
        agent: "raw-test".into(),
        proxies: Vec::new(),
    })
}
