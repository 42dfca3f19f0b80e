//! The container image's root filesystem, built the way the Dockerfile builds it
//! (`deploy/container/build-rootfs`: static release binaries, a non-root user, nothing else),
//! since no container engine runs here. The binaries must be static, stripped, and run inside
//! that filesystem alone as user 65532 (`chroot`, so the test needs root, as CI has).
//!
//! This is the one test that makes a release build: minutes on a clean checkout, a no-op
//! after that.

use std::path::{Path, PathBuf};
use std::process::Command;

use frp_tests::kube::manifests::{tool, workspace_root};

/// What the image holds, besides directories.
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

#[test]
fn the_image_root_filesystem_runs_static_stripped_binaries_as_nonroot() {
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
