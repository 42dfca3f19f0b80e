//! `frpc kubeconfig` as an operator runs it: the endpoint from a proxy of frpc.toml or given,
//! the source found where kubectl looks, no overwriting without `--force`, mode 0600.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

/// The cluster's own kubeconfig, as kubeadm writes admin.conf (shortened data).
const ADMIN_CONF: &str = "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    \
    certificate-authority-data: Q0EK\n    server: https://10.0.0.1:6443\n  name: kubernetes\n\
    contexts:\n- context:\n    cluster: kubernetes\n    user: kubernetes-admin\n  \
    name: kubernetes-admin@kubernetes\ncurrent-context: kubernetes-admin@kubernetes\n\
    users:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: Q1JUCg==\n    \
    client-key-data: S0VZCg==\n";

/// An frpc.toml (certificates in `certs/`) publishing the apiserver both ways.
const FRPC_TOML: &str = "serverAddr = \"vps.example.com\"\n\n[transport.tls]\n\
    certFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\ntrustedCaFile = \"certs/ca.crt\"\n\n\
    [[proxies]]\nname = \"kube\"\ntype = \"tcp\"\nlocalIP = \"10.0.0.1\"\nlocalPort = 6443\nremotePort = 6443\n\n\
    [[proxies]]\nname = \"kube-sni\"\ntype = \"https\"\nlocalIP = \"10.0.0.1\"\nlocalPort = 6443\n\
    customDomains = [\"kube1.example.com\"]\n\n\
    [[proxies]]\nname = \"any-port\"\ntype = \"tcp\"\nlocalPort = 6443\n";

fn setup() -> TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    frp_certs::init_ca_dir(&certs, &["vps.example.com".to_string()], false).expect("ca");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("node1");
    fs::write(tmp.path().join("frpc.toml"), FRPC_TOML).expect("frpc.toml");
    fs::write(tmp.path().join("admin.conf"), ADMIN_CONF).expect("admin.conf");
    tmp
}

fn frpc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frpc"))
        .arg("kubeconfig")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run frpc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_tcp_proxy_gives_its_public_port_and_keeps_the_original_name() {
    let dir = setup();
    let out = frpc(
        dir.path(),
        &["--from", "admin.conf", "--proxy", "kube", "-o", "k.yaml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = fs::read_to_string(dir.path().join("k.yaml")).expect("written");
    assert!(
        written.contains("server: \"https://vps.example.com:6443\""),
        "{written}"
    );
    assert!(written.contains("tls-server-name: 10.0.0.1"), "{written}");
    assert!(written.contains("current-context: kubernetes-admin@kubernetes-tunnel"));
    let mode = fs::metadata(dir.path().join("k.yaml"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        text(&out.stderr).contains("wrote k.yaml"),
        "{}",
        text(&out.stderr)
    );

    // Never overwritten without --force.
    let again = frpc(
        dir.path(),
        &[
            "--from",
            "admin.conf",
            "--proxy",
            "kube-sni",
            "-o",
            "k.yaml",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("k.yaml exists; pass --force"));
    assert_eq!(
        fs::read_to_string(dir.path().join("k.yaml")).expect("kept"),
        written
    );
    let forced = [
        "--from",
        "admin.conf",
        "--proxy",
        "kube-sni",
        "-o",
        "k.yaml",
        "--force",
    ];
    assert!(frpc(dir.path(), &forced).status.success());
    assert_ne!(
        fs::read_to_string(dir.path().join("k.yaml")).expect("new"),
        written
    );
}

#[test]
fn an_https_proxy_routes_by_sni_and_says_what_the_certificate_needs() {
    let dir = setup();
    let out = frpc(
        dir.path(),
        &[
            "--from",
            "admin.conf",
            "--proxy",
            "kube-sni",
            "--https-port",
            "8443",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("server: \"https://vps.example.com:8443\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("tls-server-name: kube1.example.com"),
        "{yaml}"
    );
    let note = text(&out.stderr);
    assert!(
        note.contains("kube1.example.com must be in the apiserver certificate's SANs"),
        "{note}"
    );
}

#[test]
fn the_source_defaults_to_where_kubectl_looks() {
    let dir = setup();
    fs::create_dir(dir.path().join(".kube")).expect("mkdir");
    fs::rename(
        dir.path().join("admin.conf"),
        dir.path().join(".kube/config"),
    )
    .expect("mv");
    let out = frpc(
        dir.path(),
        &[
            "--server",
            "https://203.0.113.7:7443",
            "--tls-server-name",
            "kubernetes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("server: \"https://203.0.113.7:7443\""),
        "{yaml}"
    );
    assert!(yaml.contains("tls-server-name: kubernetes"), "{yaml}");
}

#[test]
fn endpoints_that_cannot_be_known_are_refused_with_what_to_do() {
    let dir = setup();
    let out = frpc(dir.path(), &["--from", "admin.conf", "--proxy", "any-port"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pass --server https://HOST:PORT"),
        "{}",
        text(&out.stderr)
    );
    let out = frpc(dir.path(), &["--from", "admin.conf", "--proxy", "nope"]);
    assert!(text(&out.stderr).contains("no proxy named \"nope\""));
    let out = frpc(dir.path(), &["--from", "admin.conf"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap: one of --server or --proxy is required"
    );
    let out = frpc(
        dir.path(),
        &["--from", "missing.yaml", "--server", "https://a:1"],
    );
    assert!(
        text(&out.stderr).contains("reading missing.yaml"),
        "{}",
        text(&out.stderr)
    );
}
