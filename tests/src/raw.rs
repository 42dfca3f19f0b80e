//! Hand-driven protocol peers: an authenticated client that sends whatever bytes a test wants,
//! for checking how the server treats malformed or hostile input, and a server that answers a
//! real frpc as an older version would.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use frp_proto::{
    encode_control, CloseCode, ControlCodec, ControlMsg, Hello, ProxyKind, ProxySpec, VhostSpec,
    Welcome, PROTOCOL_MINOR,
};
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

    /// Opens the control stream, sends a `Hello` with `proxies` and reads the `Welcome`.
    pub async fn welcomed(&self, proxies: Vec<ProxySpec>) -> (SendStream, ControlReader, Welcome) {
        self.welcomed_as(PROTOCOL_MINOR, proxies).await
    }

    /// As [`RawClient::welcomed`], for a client of protocol `minor`.
    pub async fn welcomed_as(
        &self,
        minor: u16,
        proxies: Vec<ProxySpec>,
    ) -> (SendStream, ControlReader, Welcome) {
        let (mut send, recv) = self.control().await;
        let hello = ControlMsg::Hello(Hello {
            minor,
            agent: "raw-test".into(),
            proxies,
        });
        send.write_all(&encoded(&hello)).await.expect("hello");
        let mut reader = tokio_util::codec::FramedRead::new(recv, ControlCodec::new());
        match next_msg(&mut reader).await {
            ControlMsg::Welcome(w) => (send, reader, w),
            other => panic!("expected a welcome, got {other:?}"),
        }
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

/// A registration as a hand-driven client sends it: tcp with no vhost part, or http/https
/// for `NAME.example.com`.
pub fn spec(name: &str, kind: ProxyKind) -> ProxySpec {
    let vhost = match kind {
        ProxyKind::Tcp => VhostSpec::default(),
        _ => VhostSpec {
            custom_domains: vec![format!("{name}.example.com")],
            ..VhostSpec::default()
        },
    };
    ProxySpec {
        name: frp_proto::ProxyName::new(name).expect("name"),
        kind,
        remote_port: 0,
        vhost,
    }
}

/// A hand-driven server: a QUIC endpoint with the deployment's server certificate that speaks
/// whatever a test wants (an older protocol minor, say) to a real frpc.
#[derive(Debug)]
pub struct RawServer {
    /// The endpoint; clients connect to its address.
    pub endpoint: Endpoint,
}

impl RawServer {
    /// Binds 127.0.0.1:0 presenting the server certificate of `pki`.
    pub fn bind(pki: &crate::Pki) -> Self {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(pki.server_tls())
            .expect("quic server tls");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint =
            Endpoint::server(config, (crate::LOCALHOST, 0).into()).expect("server endpoint");
        Self { endpoint }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("addr")
    }

    /// Accepts one client and its control stream; returns the connection, the stream's halves
    /// and the first message the client sent.
    pub async fn accept(&self) -> (Connection, SendStream, ControlReader, ControlMsg) {
        let incoming = within("client connects", self.endpoint.accept())
            .await
            .expect("endpoint open");
        let conn = within("handshake", incoming.accept().expect("accept"))
            .await
            .expect("handshake");
        let (send, recv) = within("control stream", conn.accept_bi())
            .await
            .expect("control stream");
        let mut reader = tokio_util::codec::FramedRead::new(recv, ControlCodec::new());
        let first = within("first message", futures_util::StreamExt::next(&mut reader))
            .await
            .expect("a message")
            .expect("decodes");
        (conn, send, reader, first)
    }
}

/// The next control message from the server.
pub async fn next_msg(reader: &mut ControlReader) -> ControlMsg {
    within("control message", futures_util::StreamExt::next(reader))
        .await
        .expect("a message")
        .expect("decodes")
}

/// The read half of a control stream, framed.
pub type ControlReader = tokio_util::codec::FramedRead<RecvStream, ControlCodec>;
