//! HTTP for the virtual-host tests: real hyper servers as local services (plain and TLS), a
//! WebSocket echo service, and a hyper client (plain and TLS) to reach frps with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::{within, LOCALHOST};

/// Body of the requests and responses the helpers build.
pub type TestBody = BoxBody<Bytes, Infallible>;

/// Size of one chunk of a streamed pattern.
pub const CHUNK: usize = 64 * 1024;

/// A local HTTP service and how many TCP connections and requests it has accepted.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests the test services ([`http_backend`], [`tls_backend`]) answered so far.
    pub requests: Arc<AtomicUsize>,
}

impl Backend {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests that reached the service so far (frps pools connections, so one connection
    /// may carry several).
    pub fn served(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// An answer as a test looks at it.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: String,
}

impl Reply {
    /// The value of `name` in the echo service's body (`name=value` lines).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A body of fixed bytes.
pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).boxed()
}

/// An empty body.
pub fn empty() -> TestBody {
    Empty::new().boxed()
}

/// `count` chunks of [`CHUNK`] bytes, made lazily from 16 pseudo-random blocks (the same in
/// every call, so both ends can hash what they expect), so any size streams without being held
/// in memory.
pub fn pattern(count: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
    use rand::{RngCore as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let blocks: Vec<Bytes> = (0..16)
        .map(|_| {
            let mut b = vec![0u8; CHUNK];
            rng.fill_bytes(&mut b);
            Bytes::from(b)
        })
        .collect();
    (0..count).map(move |i| blocks[(i * 7 + i / 16) % 16].clone())
}

/// A streamed body of `chunks`.
pub fn stream_body(chunks: impl Iterator<Item = Bytes> + Send + Sync + 'static) -> TestBody {
    let frames = futures_util::stream::iter(chunks.map(|c| Ok(Frame::data(c))));
    http_body_util::BodyExt::boxed(StreamBody::new(frames))
}

/// Reads a body to its end, returning its length and SHA-256, without keeping it.
///
/// # Panics
/// When the body fails (a test reading an answer wants to know).
pub async fn hash_body<B>(body: B) -> (u64, [u8; 32])
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    try_hash_body(body).await.expect("body frame")
}

/// [`hash_body`], or the error that cut the body short (a service reading an upload frps
/// gave up on).
pub async fn try_hash_body<B>(mut body: B) -> Result<(u64, [u8; 32]), B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let (mut len, mut hasher) = (0u64, Sha256::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            len += data.len() as u64;
            hasher.update(&data);
        }
    }
    Ok((len, hasher.finalize().into()))
}

/// Hex of a digest.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the test services answer: a request with `Upgrade: echo` a `101` and then an echo of
/// every byte, `/slow` never in time, `/upload` the length and SHA-256 of the body,
/// `/download?n=CHUNKS` that many pattern chunks, anything else an echo of the request
/// (`backend=`, `method=`, `path=`, then `header:NAME=VALUE` lines).
async fn answer(
    name: &'static str,
    requests: Arc<AtomicUsize>,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    requests.fetch_add(1, Ordering::SeqCst);
    if req.headers().get("upgrade").is_some_and(|u| u == "echo") {
        return Ok(upgrade_echo(hyper::upgrade::on(&mut req)));
    }
    let path = req.uri().path().to_string();
    let body = match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            full("late")
        }
        "/upload" => match try_hash_body(req.into_body()).await {
            Ok((len, digest)) => full(format!("len={len}\nsha256={}\n", hex(&digest))),
            Err(e) => full(format!("error={e}\n")),
        },
        "/download" => {
            let n = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse().ok());
            stream_body(pattern(n.unwrap_or(1)))
        }
        _ => {
            let mut text = format!(
                "backend={name}\nmethod={}\npath={}\n",
                req.method(),
                req.uri()
            );
            for (k, v) in req.headers() {
                text.push_str(&format!("header:{k}={}\n", v.to_str().unwrap_or("?")));
            }
            full(text)
        }
    };
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert("x-backend", hyper::header::HeaderValue::from_static(name));
    Ok(resp)
}

/// `101 Switching Protocols` to `echo`, then every byte sent back until the visitor stops.
fn upgrade_echo(on: hyper::upgrade::OnUpgrade) -> Response<TestBody> {
    tokio::spawn(async move {
        if let Ok(up) = on.await {
            let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
            if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
            }
        }
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("upgrade", hyper::header::HeaderValue::from_static("echo"));
    h.insert(
        "connection",
        hyper::header::HeaderValue::from_static("upgrade"),
    );
    resp
}

async fn serve_one<I>(io: I, name: &'static str, requests: Arc<AtomicUsize>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| answer(name, Arc::clone(&requests), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// Listens on 127.0.0.1:0 and hands each connection to `serve` in its own task, counting them.
pub async fn backend<F, Fut>(serve: F) -> Backend
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind backend");
    let backend = Backend {
        addr: listener.local_addr().expect("addr"),
        connections: Arc::default(),
        requests: Arc::default(),
    };
    let count = Arc::clone(&backend.connections);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp));
        }
    });
    backend
}

/// A plain HTTP service named `name` on 127.0.0.1:0.
pub async fn http_backend(name: &'static str) -> Backend {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let b = backend(move |tcp| serve_one(tcp, name, Arc::clone(&counted))).await;
    Backend { requests, ..b }
}

/// An HTTPS service named `name` presenting `cert` (TLS ends here, not at frps).
pub async fn tls_backend(name: &'static str, cert: &frp_certs::Issued) -> Backend {
    let config = frp_certs::public_server_tls_config(vec![cert.cert_der()], cert.key_der())
        .expect("backend tls");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let b = backend(move |tcp| {
        let accept = acceptor.accept(tcp);
        let counted = Arc::clone(&counted);
        async move {
            if let Ok(tls) = accept.await {
                serve_one(tls, name, counted).await;
            }
        }
    })
    .await;
    Backend { requests, ..b }
}

/// An HTTPS service named `name` with a certificate for `name` from `ca`.
pub async fn tls_service(ca: &frp_certs::Ca, name: &'static str) -> Backend {
    let cert = ca.issue_server(&[name.to_string()]).expect("service cert");
    tls_backend(name, &cert).await
}

/// A WebSocket service that echoes every message.
pub async fn ws_echo_backend() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind ws");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let accept = tokio_tungstenite::accept_async(tcp);
                let Ok(Ok(mut ws)) = tokio::time::timeout(crate::TIMEOUT, accept).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An HTTP/1.1 client connection over `io`.
pub async fn client_on<I>(io: I) -> SendRequest<TestBody>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = hyper::client::conn::http1::handshake(TokioIo::new(io));
    let (sender, conn) = within("http handshake", handshake)
        .await
        .expect("http handshake");
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

/// An HTTP/1.1 client connection to `addr`.
pub async fn client(addr: SocketAddr) -> SendRequest<TestBody> {
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    client_on(tcp).await
}

/// TLS to `addr` with SNI `name`, trusting only `roots`.
///
/// # Errors
/// The handshake error (a refused certificate, a closed connection).
pub async fn tls_connect(
    addr: SocketAddr,
    name: &str,
    roots: Vec<CertificateDer<'static>>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = within("connect", TcpStream::connect(addr)).await?;
    let server_name = ServerName::try_from(name.to_string()).expect("server name");
    within("tls handshake", connector.connect(server_name, tcp)).await
}

/// Sends `req` and reads the whole answer.
pub async fn send(sender: &mut SendRequest<TestBody>, req: Request<TestBody>) -> Reply {
    within("http ready", sender.ready())
        .await
        .expect("connection ready");
    let resp = within("http response", sender.send_request(req))
        .await
        .expect("response");
    let (parts, body) = resp.into_parts();
    let body = within("http body", body.collect())
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A request for `path` on `host` with extra `headers`.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Request<TestBody> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(empty()).expect("request")
}

/// One GET of `path` on `host` through `addr`, on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut c = client(addr).await;
    send(&mut c, request("GET", host, path, headers)).await
}

/// This process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
