//! `frpc --check` on what operators hand it: the shipped examples as they are (their
//! throw-away certificates included), a leaf certificate as `trustedCaFile`, a misspelled key.
//! Nothing here opens a socket.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit status of a configuration error (`EX_CONFIG`).
const EXIT_CONFIG: i32 = 64;

fn check(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frpc"))
        .args([OsStr::new("--check"), OsStr::new("-c"), config.as_os_str()])
        .env_remove("RUST_LOG")
        .output()
        .expect("run frpc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn shipped_client_examples_pass_check_as_they_are() {
    for name in ["frpc-kube.toml", "frpc.toml", "frpc-web.toml"] {
        let out = check(&examples().join(name));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("{name}: ok")), "{name}");
    }
}

/// A temp dir with `certs/` and a client config whose `transport.tls` is `tls`.
fn config_with_tls(tls: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    frp_certs::init_ca_dir(&certs, &["localhost".to_string()], false).expect("ca init");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("ca issue");
    let path = tmp.path().join("frpc.toml");
    let toml = format!("serverAddr = \"localhost\"\n\n[transport.tls]\n{tls}");
    std::fs::write(&path, toml).expect("write config");
    (tmp, path)
}

#[test]
fn a_leaf_as_trusted_ca_file_is_refused() {
    let tls = "certFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
               trustedCaFile = \"certs/server.crt\"\n";
    let (_tmp, path) = config_with_tls(tls);
    let out = check(&path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for needle in [
        "server.crt",
        "CN=frp-quic-server",
        "is not a CA certificate",
    ] {
        assert!(err.contains(needle), "lacks {needle:?}: {err}");
    }
}

#[test]
fn a_misspelled_key_gets_a_suggestion() {
    let tls = "certFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
               trusted_ca_file = \"certs/ca.crt\"\n";
    let (_tmp, path) = config_with_tls(tls);
    let out = check(&path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("did you mean `trustedCaFile`?"), "{err}");
}
