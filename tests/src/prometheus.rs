//! A real Prometheus server (Debian's `prometheus` package) scraping the programs under
//! test, queried through its HTTP API.
//!
//! It listens on `127.0.0.1:0`; its actual port is read from the kernel's socket table for
//! its process (Prometheus does not print it). Its data lives in a temporary directory, and
//! the process is killed when the [`Prometheus`] is dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::BodyExt as _;

use crate::within;

/// How often the waits here look again.
const POLL: Duration = Duration::from_millis(100);

/// One program for Prometheus to scrape.
#[derive(Clone, Debug)]
pub struct Target {
    /// The job name (`frps`, `frpc`).
    pub job: String,
    /// The program's admin address.
    pub addr: SocketAddr,
    /// Basic-auth user and password, when the admin API has them.
    pub basic_auth: Option<(String, String)>,
}

/// One sample of a query's answer: its labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second and waits until it is ready.
    ///
    /// # Panics
    /// With a clear message when `prometheus` is not installed (`apt install prometheus`).
    pub async fn start(targets: &[Target]) -> Self {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets, dir.path())).expect("write config");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).expect("log file"))
            .spawn()
            .expect("start prometheus");
        let pid = child.id();
        let addr = within("prometheus listening", async {
            loop {
                if let Some(addr) = listening_port(pid) {
                    return addr;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        let p = Self {
            child,
            addr,
            _dir: dir,
        };
        within("prometheus ready", async {
            while get(p.addr, "/-/ready").await.map(|(s, _)| s) != Some(200) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        p
    }

    /// Runs an instant query; the samples of its vector answer.
    pub async fn query(&self, promql: &str) -> Vec<Sample> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let (status, body) = get(self.addr, &path).await.expect("prometheus answers");
        assert_eq!(status, 200, "query {promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        result.iter().map(sample).collect()
    }

    /// Waits (under the harness timeout) until `promql` answers with samples that satisfy
    /// `pred`, and returns them.
    pub async fn wait_for(&self, promql: &str, pred: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
        within(&format!("prometheus: {promql}"), async {
            loop {
                let samples = self.query(promql).await;
                if pred(&samples) {
                    return samples;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
    }

    /// The health of each scrape target (`up`), by job.
    pub async fn up(&self) -> BTreeMap<String, f64> {
        let samples = self.query("up").await;
        samples
            .into_iter()
            .map(|s| (s.labels.get("job").cloned().unwrap_or_default(), s.value))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs a real Prometheus server: `prometheus` is not on PATH \
                 (install Debian's package: apt-get install prometheus; .ci/run does)"
            )
        })
}

fn scrape_config(targets: &[Target], dir: &Path) -> String {
    let mut out = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n");
    out.push_str("scrape_configs:\n");
    for t in targets {
        out.push_str(&format!("  - job_name: {}\n", t.job));
        if let Some((user, password)) = &t.basic_auth {
            let file = dir.join(format!("{}.password", t.job));
            std::fs::write(&file, password).expect("password file");
            out.push_str(&format!(
                "    basic_auth:\n      username: {user}\n      password_file: {}\n",
                file.display()
            ));
        }
        out.push_str(&format!(
            "    static_configs:\n      - targets: ['{}']\n",
            t.addr
        ));
    }
    out
}

/// The TCP port process `pid` listens on, from `/proc/<pid>/fd` and `/proc/net/tcp`.
fn listening_port(pid: u32) -> Option<SocketAddr> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| {
            let link = std::fs::read_link(e.ok()?.path()).ok()?;
            let s = link.to_str()?;
            Some(s.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
        if *state != "0A" || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        let (ip, port) = local.split_once(':')?;
        // The address is the raw `u32` in host byte order, printed in hex.
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let port = u16::from_str_radix(port, 16).ok()?;
        Some(SocketAddr::from((ip.to_ne_bytes(), port)))
    })
}

fn sample(v: &serde_json::Value) -> Sample {
    let labels = v["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let value = v["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    Sample { labels, value }
}

/// Percent-encodes a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on `addr`: status and body, or `None` when the connection fails.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let io = hyper_util::rt::TokioIo::new(tcp);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let res = sender.send_request(req).await.ok()?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.ok()?.to_bytes();
    driver.abort();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}
