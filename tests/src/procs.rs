//! The real `frps` and `frpc` binaries as child processes, for tests that kill them.
//!
//! This crate cannot use another package's `CARGO_BIN_EXE_*`, so [`binary`] builds both
//! binaries once per test process, with the profile and target directory of the running test,
//! and returns their path. A [`Proc`] writes the child's stderr to a file, prints it when the
//! test panics, and kills the child when dropped, so a failing test never leaks a process.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{within, LOCALHOST};

/// How often the waits here look again.
const POLL: Duration = Duration::from_millis(20);

/// Path of the built binary `name` (`frps` or `frpc`), building both on first use.
///
/// Blocks while cargo runs: call it before entering a timed section. Under
/// `cargo test --workspace` the binaries are already built and the build is a quick no-op.
pub fn binary(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(build_binaries);
    let path = dir.join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Runs `cargo build -p frps -p frpc --bins` for this test's profile; returns the output dir.
fn build_binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // …/target/<profile>/deps/<test>-<hash>: the binaries land in …/target/<profile>.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary under <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = profile_dir
        .file_name()
        .and_then(OsStr::to_str)
        .expect("profile dir name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "frps", "-p", "frpc", "--bins"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p frps -p frpc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir
}

/// A port free for both TCP and UDP on loopback, below the kernel's ephemeral range.
///
/// The binaries take fixed ports from their config and a killed one leaves its port unbound
/// for seconds; a port from `:0` lies in the ephemeral range, where another test's outgoing
/// connections could take it meanwhile. Below that range only explicit binds compete.
pub fn fixed_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low <= 11_000 {
        return crate::free_tcp_port();
    }
    loop {
        let port = rand::random_range(10_000..ephemeral_low);
        let tcp = std::net::TcpListener::bind((LOCALHOST, port));
        let udp = std::net::UdpSocket::bind((LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// A running child process whose stderr goes to a file; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `program` with `args`, its stderr in `log` (JSON log lines, level `info`).
    pub fn spawn<I, S>(label: &str, program: &Path, args: I, log: PathBuf) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let file = File::create(&log).expect("create log file");
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        Self {
            label: label.to_string(),
            child,
            log,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        self.child.kill().expect("send SIGKILL");
        self.child.wait().expect("reap killed child")
    }

    /// Sends SIGTERM (through `kill -TERM`); the child shuts down by itself.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether the child is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many stderr lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until at least `n` stderr lines contain `needle`, failing early if the child exits.
    pub async fn wait_log(&mut self, needle: &str, n: usize) {
        let what = format!("{}: {n} log lines with {needle:?}", self.label);
        within(&what, async {
            while self.log_count(needle) < n {
                if let Some(status) = self.child.try_wait().expect("try_wait") {
                    panic!(
                        "{} exited ({status}) while waiting for {needle:?}",
                        self.label
                    );
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}) stderr ----\n{}",
                self.label,
                self.child.id(),
                self.stderr()
            );
        }
    }
}
