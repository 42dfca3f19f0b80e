//! HTTP written and read by hand, for what a well-behaved client library would never send
//! (odd paths, repeated `Host` headers, absolute-form targets, half-sent bodies) and for
//! services that misbehave in exact ways (closing a kept-alive connection under a request,
//! resetting an upgraded one).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::http::{backend, Backend};
use crate::within;

/// An answer read off the wire.
#[derive(Debug)]
pub struct RawReply {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The rest.
    pub body: String,
}

impl RawReply {
    /// The value of `name` in the echo service's body (`name=value` lines).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Parses `bytes` (a whole answer) into a [`RawReply`].
pub fn parse_reply(bytes: &[u8]) -> RawReply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawReply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A connection to `addr`.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    within("connect", TcpStream::connect(addr))
        .await
        .expect("connect")
}

/// Writes `bytes` to `tcp`.
pub async fn write(tcp: &mut TcpStream, bytes: &[u8]) {
    within("write", tcp.write_all(bytes)).await.expect("write");
}

/// Sends `request` as written on a fresh connection to `addr` and reads until the server
/// closes (the request should say `Connection: close`).
pub async fn exchange(addr: SocketAddr, request: &str) -> RawReply {
    let mut tcp = connect(addr).await;
    write(&mut tcp, request.as_bytes()).await;
    let mut out = Vec::new();
    // A reset after a complete answer still counts: the answer is what the test looks at.
    let _ = within("read answer", tcp.read_to_end(&mut out)).await;
    parse_reply(&out)
}

/// `GET path` for `host`, closing after the answer.
pub fn get_request(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// Reads until the end of a response head; returns the head.
pub async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = within("response head", tcp.read(&mut byte))
            .await
            .expect("read head");
        assert!(n > 0, "connection closed in the head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Opens a connection to `addr` and upgrades it to the test services' `echo` protocol for
/// `host`; returns the upgraded connection.
pub async fn upgrade(addr: SocketAddr, host: &str) -> TcpStream {
    let mut tcp = connect(addr).await;
    let req = format!(
        "GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"
    );
    write(&mut tcp, req.as_bytes()).await;
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Sends `msg` on an echoing connection and reads it back.
pub async fn echo(tcp: &mut TcpStream, msg: &[u8]) {
    write(tcp, msg).await;
    let mut back = vec![0u8; msg.len()];
    within("echo", tcp.read_exact(&mut back))
        .await
        .expect("echo back");
    assert_eq!(back, msg);
}

/// Reads a request head off `tcp` (no body); `None` when the connection ended first.
pub async fn read_request(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A service that answers the first request of each connection (keeping it alive) and
/// closes the connection when the second arrives, without answering: the race of a server
/// closing an idle keep-alive connection just as a request is sent on it, every time. The
/// counter says how many requests it closed a connection under.
pub async fn closing_backend() -> (Backend, Arc<AtomicUsize>) {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&closed);
    let backend = backend(move |mut tcp| {
        let closed = Arc::clone(&closed);
        async move {
            if read_request(&mut tcp).await.is_none() {
                return;
            }
            let body = "answered\n";
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = tcp.write_all(format!("{head}{body}").as_bytes()).await;
            if read_request(&mut tcp).await.is_some() {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
    .await;
    (backend, count)
}

/// A service that switches to `echo` on any request, reads `after` bytes, then resets.
pub async fn resetting_upgrade_backend(after: usize) -> Backend {
    backend(move |mut tcp| async move {
        if read_request(&mut tcp).await.is_none() {
            return;
        }
        let head =
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";
        let _ = tcp.write_all(head.as_bytes()).await;
        let mut buf = vec![0u8; after];
        if tcp.read_exact(&mut buf).await.is_ok() {
            frp_runtime::splice::reset_tcp(tcp);
        }
    })
    .await
}

/// Retries `GET /` for `host` on fresh connections until the answer is `want` (a permit or
/// slot freed by a connection that closed is given back by a task, not at once).
pub async fn until_status(addr: SocketAddr, host: &str, want: u16) {
    within(&format!("a {want} for {host}"), async {
        while exchange(addr, &get_request(host, "/")).await.status != want {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Whether a new connection to `addr` asking for `host` is turned away (closed or reset
/// without an answer).
pub async fn turned_away(addr: SocketAddr, host: &str) -> bool {
    let mut tcp = connect(addr).await;
    // The server may have reset it already: the write may fail.
    let _ = within("write", tcp.write_all(get_request(host, "/").as_bytes())).await;
    ends(&mut tcp).await
}

/// Whether the server ends `tcp` (EOF or reset) without sending anything more.
pub async fn ends(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        within("server ends the connection", tcp.read(&mut buf)).await,
        Ok(0) | Err(_)
    )
}
