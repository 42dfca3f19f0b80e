//! The real `kubectl` as a child process, with a kubeconfig of the test's own.
//!
//! kubectl is found on `PATH` (or at `$FRP_KUBECTL`); a test that needs it fails with a clear
//! message when it is missing. Each [`Kubectl`] has its own temporary `HOME` and discovery
//! cache, so tests running in parallel share nothing, and every run is under a time limit
//! after which the child is killed.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Path of the kubectl binary: `$FRP_KUBECTL`, else the first `kubectl` on `PATH`.
///
/// # Panics
/// When there is none, saying how to get one.
pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FRP_KUBECTL") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl not found on PATH: the kubectl tests drive the real kubectl (v1.32); \
             install it (e.g. `apt-get install kubectl`) or set FRP_KUBECTL to its path"
        )
    })
}

/// kubectl with one kubeconfig.
#[derive(Debug)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: TempDir,
}

impl Kubectl {
    /// kubectl using the kubeconfig `yaml` (written to a private temporary directory).
    pub fn new(yaml: &str) -> Self {
        let home = tempfile::tempdir().expect("kubectl home");
        let kubeconfig = home.path().join("kubeconfig");
        std::fs::write(&kubeconfig, yaml).expect("write kubeconfig");
        Self::with_file(home, kubeconfig)
    }

    /// kubectl using the kubeconfig file at `kubeconfig`, with `home` as `HOME`.
    pub fn with_file(home: TempDir, kubeconfig: PathBuf) -> Self {
        Self {
            bin: kubectl_path(),
            kubeconfig,
            home,
        }
    }

    /// The kubeconfig file in use.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A command running kubectl with `args`, this kubeconfig, a private cache, no stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Starts kubectl with `args` and a piped stdin.
    pub fn spawn_with_stdin(&self, args: &[&str]) -> Child {
        let mut c = self.command(args);
        c.stdin(Stdio::piped());
        c.spawn().expect("spawn kubectl")
    }

    /// Runs kubectl with `args` to completion within `limit`.
    ///
    /// # Panics
    /// When it cannot be started or takes longer than `limit` (it is killed then).
    pub async fn run(&self, args: &[&str], limit: Duration) -> Output {
        let child = self.command(args).spawn().expect("spawn kubectl");
        finish(child, limit, args).await
    }

    /// Runs kubectl with `args` within `limit`, asserts that it succeeded, returns its stdout.
    pub async fn ok(&self, args: &[&str], limit: Duration) -> String {
        let out = self.run(args, limit).await;
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Waits for `child` within `limit` and collects its output.
///
/// # Panics
/// When it takes longer (the child is killed as it is dropped).
pub async fn finish(child: Child, limit: Duration, args: &[&str]) -> Output {
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => out.expect("kubectl output"),
        Err(_) => panic!("kubectl {args:?} took over {limit:?}"),
    }
}

/// Asserts that kubectl exited 0, showing its stderr otherwise.
pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
