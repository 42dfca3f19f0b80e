//! The admin server end to end over real sockets: probes, auth and its backoff, the body
//! limit, the cross-site check, metrics and TLS, with the real command-line client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frp_admin::client::{AdminClient, Answer};
use frp_admin::{AdminServer, ApiRequest, ApiResponse, Credentials, Handler, WebServerSettings};
use futures_util::future::BoxFuture;
use hyper::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Echoes what it got: method, path, body length; ready when told.
#[derive(Default)]
struct Echo {
    ready: AtomicBool,
}

impl Handler for Echo {
    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(async move {
            ApiResponse::ok(&serde_json::json!({
                "method": req.method.as_str(),
                "path": req.path,
                "len": req.body.len(),
            }))
        })
    }

    fn ready(&self) -> Result<(), String> {
        match self.ready.load(Ordering::Relaxed) {
            true => Ok(()),
            false => Err("listeners not bound yet".into()),
        }
    }
}

struct Running {
    settings: WebServerSettings,
    echo: Arc<Echo>,
    stop: CancellationToken,
}

fn start(mut settings: WebServerSettings) -> Running {
    let echo = Arc::new(Echo::default());
    let server = AdminServer::bind(settings.clone(), echo.clone(), None).expect("bind");
    settings.addr = server.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    Running {
        settings,
        echo,
        stop,
    }
}

fn creds() -> Credentials {
    Credentials {
        user: "admin".into(),
        password: "s3cret".into(),
    }
}

async fn call(settings: &WebServerSettings, method: Method, path: &str) -> Answer {
    let client = AdminClient::new(settings).unwrap();
    tokio::time::timeout(WAIT, client.call(method, path, None))
        .await
        .expect("in time")
        .expect("answer")
}

async fn raw(settings: &WebServerSettings, request: String) -> String {
    let mut tcp = tokio::net::TcpStream::connect(settings.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tcp.read_to_end(&mut out);
    let _ = tokio::time::timeout(WAIT, read)
        .await
        .expect("answer in time");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn probes_need_no_credentials_and_say_whether_ready() {
    let mut s = WebServerSettings::loopback(0);
    s.credentials = Some(creds());
    let r = start(s);
    let mut anonymous = r.settings.clone();
    anonymous.credentials = None;
    assert_eq!(call(&anonymous, Method::GET, "/healthz").await.status, 200);
    let not_ready = call(&anonymous, Method::GET, "/readyz").await;
    assert_eq!(not_ready.status, 503);
    assert_eq!(not_ready.error_text(), "listeners not bound yet");
    r.echo.ready.store(true, Ordering::Relaxed);
    assert_eq!(call(&anonymous, Method::GET, "/readyz").await.status, 200);
    // Everything else needs them, /metrics included.
    for path in ["/api/v1/x", "/metrics", "/"] {
        let a = call(&anonymous, Method::GET, path).await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(a.error_text(), "authentication required");
    }
    let a = call(&r.settings, Method::GET, "/api/v1/x").await;
    assert_eq!(a.status, 200);
    assert!(String::from_utf8_lossy(&a.body).contains(r#""path":"/api/v1/x""#));
    r.stop.cancel();
}

#[tokio::test]
async fn wrong_passwords_back_off_with_429_and_a_login_prompt_first() {
    let mut s = WebServerSettings::loopback(0);
    s.credentials = Some(creds());
    let r = start(s);
    let head = raw(
        &r.settings,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    );
    let head = head.await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{head}"
    );
    let mut wrong = r.settings.clone();
    wrong.credentials = Some(Credentials {
        password: "guess".into(),
        ..creds()
    });
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(call(&wrong, Method::GET, "/api/v1/x").await.status.as_u16());
    }
    assert_eq!(statuses[..4], [401; 4], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // While blocked even the right password gets 429: guessing gets no signal.
    let blocked = call(&r.settings, Method::GET, "/api/v1/x").await;
    assert_eq!(blocked.status, 429);
    let answer = raw(
        &r.settings,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    );
    assert!(answer.await.to_ascii_lowercase().contains("retry-after: "));
    r.stop.cancel();
}

#[tokio::test]
async fn bodies_over_one_mib_get_413_whatever_their_framing() {
    let r = start(WebServerSettings::loopback(0));
    let big = 1024 * 1024 + 1;
    let declared = format!(
        "POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n"
    );
    assert!(raw(&r.settings, declared).await.starts_with("HTTP/1.1 413"));
    let chunk = "a".repeat(64 * 1024);
    let mut chunked =
        "POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_string();
    for _ in 0..17 {
        chunked.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    chunked.push_str("0\r\n\r\n");
    assert!(raw(&r.settings, chunked).await.starts_with("HTTP/1.1 413"));
    let client = AdminClient::new(&r.settings).unwrap();
    let ok = client
        .call(Method::POST, "/api/v1/x", Some(vec![b'a'; 1024 * 1024]))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains(r#""len":1048576"#));
    r.stop.cancel();
}

#[tokio::test]
async fn state_changes_from_another_site_are_refused() {
    let r = start(WebServerSettings::loopback(0));
    let host = r.settings.addr.to_string();
    let req = |method: &str, extra: &str| {
        format!("{method} /api/v1/x HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let cases = [
        ("POST", "Origin: http://evil.example\r\n".to_string(), "403"),
        (
            "DELETE",
            "Sec-Fetch-Site: cross-site\r\n".to_string(),
            "403",
        ),
        ("PUT", "Origin: null\r\n".to_string(), "403"),
        // The right host, the wrong scheme: another origin.
        ("POST", format!("Origin: https://{host}\r\n"), "403"),
        (
            "POST",
            format!("Origin: http://{host}\r\nSec-Fetch-Site: same-origin\r\n"),
            "200",
        ),
        ("POST", String::new(), "200"),
        ("GET", "Origin: http://evil.example\r\n".to_string(), "200"),
    ];
    for (method, extra, want) in cases {
        let answer = raw(&r.settings, req(method, &extra)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want}")),
            "{method} {extra}: {answer}"
        );
    }
    r.stop.cancel();
}

#[tokio::test]
async fn metrics_are_openmetrics_with_the_process_figures() {
    let r = start(WebServerSettings::loopback(0));
    let a = call(&r.settings, Method::GET, "/metrics").await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body);
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    r.stop.cancel();
    let mut off = WebServerSettings::loopback(0);
    off.prometheus = false;
    let r = start(off);
    assert_eq!(call(&r.settings, Method::GET, "/metrics").await.status, 404);
    r.stop.cancel();
}

#[tokio::test]
async fn tls_with_the_client_pinning_the_configured_certificate() {
    let ca = frp_certs::Ca::generate("admin test").unwrap();
    let cert = ca.issue_server(&["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("admin.crt"), dir.path().join("admin.key"));
    std::fs::write(&crt, cert.cert_pem()).unwrap();
    std::fs::write(&key, cert.key_pem()).unwrap();
    let section: frp_admin::WebServerSection = toml::from_str(&format!(
        "port = 1\n[tls]\ncertFile = {crt:?}\nkeyFile = {key:?}"
    ))
    .unwrap();
    let mut s = section
        .settings(&dir.path().join("frps.toml"), false)
        .unwrap()
        .unwrap();
    s.addr.set_port(0);
    let r = start(s);
    assert_eq!(r.settings.url().split("://").next(), Some("https"));
    assert_eq!(call(&r.settings, Method::GET, "/healthz").await.status, 200);
    // A client pinning another certificate refuses the server.
    let other = ca.issue_server(&["127.0.0.1".to_string()]).unwrap();
    std::fs::write(&crt, other.cert_pem()).unwrap();
    let mut pinned_other = r.settings.clone();
    pinned_other.tls_cert_file = Some(crt);
    let client = AdminClient::new(&pinned_other).unwrap();
    let e = client
        .call(Method::GET, "/healthz", None)
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("another certificate"), "{e:#}");
    r.stop.cancel();
}

#[tokio::test]
async fn without_credentials_only_requests_to_an_address_are_answered() {
    let r = start(WebServerSettings::loopback(0));
    let port = r.settings.addr.port();
    let req = |host: &str| {
        format!("POST /api/v1/x HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    // A page on rebind.attacker.example, which resolves to 127.0.0.1, is same-origin with it.
    let rebound = raw(&r.settings, req(&format!("rebind.attacker.example:{port}"))).await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("DNS rebinding"), "{rebound}");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw(&r.settings, req(&host)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    // With credentials the API may be reached by name (a DNS name on its certificate).
    let mut settings = WebServerSettings::loopback(0);
    settings.credentials = Some(creds());
    let named = start(settings);
    let answer = call(&named.settings, Method::GET, "/api/v1/x").await;
    assert_eq!(answer.status, 200);
    r.stop.cancel();
    named.stop.cancel();
}

#[tokio::test]
async fn one_source_holding_idle_connections_leaves_the_probes_to_others() {
    let r = start(WebServerSettings::loopback(0));
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(
            tokio::net::TcpStream::connect(r.settings.addr)
                .await
                .unwrap(),
        );
    }
    // 127.0.0.2 is another source on the same loopback interface.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(r.settings.addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, other.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The 33rd and later connections from the busy source were closed at once.
    let mut closed = 0;
    for mut tcp in idle {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 40 - 32, "the per-address cap");
    r.stop.cancel();
}
