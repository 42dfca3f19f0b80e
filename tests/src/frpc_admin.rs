//! frpc as the binary runs it (its config a real `frpc.toml` in a temp dir, its admin API on
//! a loopback port) in-process, and a real HTTP client for that API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use frpc::program::Program;
use frpc::{ClientError, ClientHandle, ClientSettings, ClientStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::{client, full, send, Reply};
use crate::{within, Pki};

/// The admin API's credentials in these tests.
pub const USER: &str = "admin";
/// The admin API's password in these tests.
pub const PASSWORD: &str = "s3cret-admin-pw";

/// Writes a client certificate for `identity` issued by `pki`'s CA, and the CA, into
/// `dir/certs/`; returns the `[transport.tls]` section that names them.
pub fn write_identity(pki: &Pki, dir: &Path, identity: &str) -> String {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let issued = pki.ca.issue_client(identity).expect("client cert");
    std::fs::write(certs.join(format!("{identity}.crt")), issued.cert_pem()).expect("cert");
    std::fs::write(certs.join(format!("{identity}.key")), issued.key_pem()).expect("key");
    std::fs::write(certs.join("ca.crt"), pki.ca.cert_pem()).expect("ca");
    format!(
        "[transport.tls]\ncertFile = \"certs/{identity}.crt\"\nkeyFile = \"certs/{identity}.key\"\n\
         trustedCaFile = \"certs/ca.crt\"\nserverName = \"localhost\"\n"
    )
}

/// An frpc.toml for `server`: quick reconnects, `tls` (from [`write_identity`]), an admin API
/// on `web_port` with [`USER`] / [`PASSWORD`] and metrics, then `rest` (the proxies).
pub fn client_toml(server: SocketAddr, tls: &str, web_port: u16, rest: &str) -> String {
    format!(
        "# frpc under test\nserverAddr = \"{ip}\"\nserverPort = {port}\n\
         gracefulShutdownTimeout = 5\nenablePrometheus = true\n\n\
         [transport]\ndialServerTimeout = 5\nreconnectMinDelayMs = 50\nreconnectMaxDelayMs = 500\n\n\
         {tls}\n[webServer]\naddr = \"127.0.0.1\"\nport = {web_port}\nuser = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n\n{rest}",
        ip = server.ip(),
        port = server.port(),
    )
}

/// A `[[proxies]]` entry of type tcp.
pub fn tcp_entry(name: &str, local: SocketAddr, remote_port: u16) -> String {
    format!(
        "[[proxies]]\nname = \"{name}\"\ntype = \"tcp\"\nlocalIP = \"{}\"\nlocalPort = {}\nremotePort = {remote_port}\n\n",
        local.ip(),
        local.port()
    )
}

/// A running frpc configured by a file, with its admin API.
#[derive(Debug)]
pub struct RunningClient {
    /// The config file.
    pub path: PathBuf,
    /// The client.
    pub handle: ClientHandle,
    /// Its status.
    pub status: watch::Receiver<ClientStatus>,
    /// Its admin API, with the right credentials.
    pub api: ApiClient,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ClientError>>,
}

impl RunningClient {
    /// Loads `path` (as `frpc -c path` does) and runs the client and its admin API.
    pub fn start(path: &Path) -> Self {
        let settings = ClientSettings::from_file(path).expect("config loads");
        let program = Program::new(path, settings).expect("program");
        let addr = program.admin_addr().expect("the config has a webServer");
        let handle = program.handle();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(program.run(cancel.clone()));
        Self {
            path: path.to_path_buf(),
            status: handle.subscribe(),
            handle,
            api: ApiClient::new(addr, Some((USER, PASSWORD))),
            cancel,
            task,
        }
    }

    /// Waits until `pred` holds for the status.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl FnMut(&ClientStatus) -> bool,
    ) -> ClientStatus {
        within(what, self.status.wait_for(pred))
            .await
            .expect("status channel")
            .clone()
    }

    /// Waits until proxy `name` is published; its public address.
    pub async fn bound(&mut self, name: &str) -> SocketAddr {
        let s = self
            .wait_for(&format!("{name} bound"), |s| s.bound(name).is_some())
            .await;
        s.bound(name).expect("bound")
    }

    /// Stops the client and its API.
    pub async fn stop(self) {
        self.cancel.cancel();
        within("client stops", self.task)
            .await
            .expect("client task")
            .expect("client ends cleanly");
    }
}

/// A client of an admin API.
#[derive(Clone, Debug)]
pub struct ApiClient {
    /// Where the API listens.
    pub addr: SocketAddr,
    auth: Option<String>,
}

impl ApiClient {
    /// A client of the API at `addr`, sending `credentials` when given.
    pub fn new(addr: SocketAddr, credentials: Option<(&str, &str)>) -> Self {
        let auth = credentials.map(|(u, p)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Basic {b64}")
        });
        Self { addr, auth }
    }

    /// `method path` with `body` of `content_type`.
    pub async fn call(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(auth) = &self.auth {
            b = b.header("authorization", auth.as_str());
        }
        let body = match body {
            Some((ctype, bytes)) => {
                b = b.header("content-type", ctype);
                full(bytes)
            }
            None => full(Vec::new()),
        };
        let mut c = client(self.addr).await;
        send(&mut c, b.body(body).expect("request")).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None).await
    }

    /// `method path` with a JSON body.
    pub async fn json(&self, method: &str, path: &str, v: &serde_json::Value) -> Reply {
        let body = serde_json::to_vec(v).expect("json");
        self.call(method, path, Some(("application/json", body)))
            .await
    }
}

/// The body of `r` as JSON.
pub fn json_of(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// The proxy named `name` in a `GET /api/v1/status` answer.
pub fn proxy_in<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["proxies"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}
