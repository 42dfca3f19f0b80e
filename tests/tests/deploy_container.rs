//! The container image's root filesystem, built the way the Dockerfile builds it
//! (`deploy/container/build-rootfs`: static release binaries, a non-root user, nothing else),
//! since no container engine runs here. The binaries must be static, stripped, and run inside
//! that filesystem alone as user 65532 (`chroot`, so the test needs root, as CI has); with
//! what a container runtime adds (/dev/urandom, /etc/hosts), the image's frps and frpc carry
//! a tunneled connection.
//!
//! This is the one test that makes a release build: minutes on a clean checkout, a no-op
//! after that.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::net::SocketAddr;

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::free_udp_addr;
use frp_tests::kube::manifests::{tool, workspace_root};
use frp_tests::procs::{fixed_port, Proc};

/// What the image holds, besides directories (the runtime adds /dev, /etc/hosts, ...).
const FILES: &[&str] = &[
    "etc/group",
    "etc/nsswitch.conf",
    "etc/passwd",
    "usr/local/bin/frpc",
    "usr/local/bin/frps",
];

/// Ceiling for each shipped binary (frps was 30 MB with debug info and symbols).
const MAX_BINARY: u64 = 15 << 20;

fn files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let path = e.expect("entry").path();
        if path.is_dir() {
            files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.display().to_string());
        }
    }
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` inside `root` as 65532:65532.
fn in_image(root: &Path, args: &[&str]) -> String {
    output(
        Command::new(tool("chroot"))
            .arg("--userspec=65532:65532")
            .arg(root)
            .args(args)
            .env_clear(),
    )
}

fn build_rootfs(dest: &Path) -> PathBuf {
    let root = dest.join("rootfs");
    output(
        Command::new(workspace_root().join("deploy/container/build-rootfs"))
            .arg(&root)
            .current_dir(workspace_root()),
    );
    root
}

#[tokio::test]
async fn the_image_root_filesystem_runs_static_stripped_binaries_as_nonroot() {
    let uid = output(Command::new("id").arg("-u"));
    assert_eq!(
        uid.trim(),
        "0",
        "this test runs the image's binaries under chroot, which needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = build_rootfs(dir.path());

    let mut found = Vec::new();
    files(&root, &root, &mut found);
    found.sort();
    assert_eq!(
        found, FILES,
        "the image holds the two binaries and its user, nothing else"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

    for bin in ["frps", "frpc"] {
        let path = root.join("usr/local/bin").join(bin);
        let size = std::fs::metadata(&path).expect("binary").len();
        assert!(size < MAX_BINARY, "{bin} is {size} bytes");
        let path = path.display().to_string();
        let headers = output(Command::new(tool("readelf")).args(["-lSW", &path]));
        assert!(
            !headers.contains("INTERP"),
            "{bin} is static: no program interpreter"
        );
        assert!(!headers.contains(".debug_"), "{bin} carries no debug info");
        assert!(!headers.contains(".symtab"), "{bin} is stripped");
        let version = in_image(&root, &[&format!("/usr/local/bin/{bin}"), "--version"]);
        assert!(version.starts_with(bin), "{version}");
    }

    // The image's binaries do real work with nothing but themselves: a CA and a certificate
    // written to /tmp, and a config that frps accepts.
    in_image(
        &root,
        &[
            "/usr/local/bin/frps",
            "ca",
            "init",
            "--dir",
            "/tmp/certs",
            "--name",
            "localhost",
        ],
    );
    let toml = "bindPort = 7443\nvhostHTTPSPort = 8443\n\n[transport.tls]\ncertFile = \"certs/server.crt\"\n\
                keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n";
    std::fs::write(root.join("tmp/frps.toml"), toml).expect("config");
    in_image(
        &root,
        &["/usr/local/bin/frps", "--check", "-c", "/tmp/frps.toml"],
    );

    tunnel_in_image(&root, dir.path()).await;
}

/// What every container runtime adds to an image: /dev's random devices and /etc/hosts.
fn as_a_runtime_would(root: &Path) {
    std::fs::create_dir_all(root.join("dev")).expect("mkdir dev");
    for (dev, minor) in [("random", "8"), ("urandom", "9")] {
        let path = root.join("dev").join(dev);
        output(
            Command::new("mknod")
                .args(["-m", "666"])
                .arg(&path)
                .args(["c", "1", minor]),
        );
    }
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").expect("hosts");
}

/// `[transport.tls]` with certificates under certs/.
fn tls(crt: &str, key: &str) -> String {
    format!(
        "[transport.tls]\ncertFile = \"certs/{crt}\"\nkeyFile = \"certs/{key}\"\n\
         trustedCaFile = \"certs/ca.crt\"\n"
    )
}

/// frps and frpc of the image, each run from it as 65532, carry a connection to an echo
/// service of the test's; frpc finds the server by name (static glibc reading /etc/hosts).
async fn tunnel_in_image(root: &Path, logs: &Path) {
    as_a_runtime_would(root);
    let (echo, _task) = echo_server().await;
    let (quic, public) = (free_udp_addr().port(), fixed_port());
    let issue = ["ca", "issue", "node1", "--dir", "/tmp/certs"];
    in_image(root, &[&["/usr/local/bin/frps"][..], &issue[..]].concat());
    let frps = format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {quic}\nallowPorts = [{{ single = {public} }}]\n{}",
        tls("server.crt", "server.key")
    );
    let frpc = format!(
        "serverAddr = \"localhost\"\nserverPort = {quic}\n{}\n[[proxies]]\nname = \"echo\"\n\
         type = \"tcp\"\nlocalPort = {}\nremotePort = {public}\n",
        tls("node1.crt", "node1.key"),
        echo.port()
    );
    std::fs::write(root.join("tmp/frps.toml"), frps).expect("frps.toml");
    std::fs::write(root.join("tmp/frpc.toml"), frpc).expect("frpc.toml");
    let chroot = tool("chroot");
    let run = |bin: &str| {
        let args = [
            "--userspec=65532:65532".to_string(),
            root.display().to_string(),
            format!("/usr/local/bin/{bin}"),
            "-c".into(),
            format!("/tmp/{bin}.toml"),
        ];
        Proc::spawn(bin, &chroot, args, logs.join(format!("{bin}.log")))
    };
    let _frps = run("frps");
    let mut frpc = run("frpc");
    frpc.wait_log("proxy published", 1).await;
    let public = SocketAddr::from(([127, 0, 0, 1], public));
    assert_eq!(
        echo_once(public, b"through the image").await,
        b"through the image"
    );
}

#[test]
fn the_dockerfile_builds_with_the_rootfs_script_into_an_empty_nonroot_image() {
    let dockerfile =
        std::fs::read_to_string(workspace_root().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(
        lines.contains(&"RUN deploy/container/build-rootfs /rootfs"),
        "{dockerfile}"
    );
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    assert_eq!(*stages[1], "FROM scratch", "a minimal runtime image");
    assert!(lines.contains(&"COPY --from=build /rootfs/ /"));
    assert!(lines.contains(&"USER 65532:65532"), "non-root");
}
