//! Every config file under `<workspace>/examples` must load for real: parsed with the same
//! `deny_unknown_fields` parsers as the binaries and validated with freshly made certificates,
//! so an example can never drift from the accepted keys.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Server names put in the example server certificate.
const SERVER_NAMES: [&str; 2] = ["vps.example.com", "localhost"];

/// Which program reads an example file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Server,
    Client,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every `*.toml` under `dir`, recursively, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(toml_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The program an example is for, from its file name; anything else is a mistake.
fn kind_of(path: &Path) -> Kind {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name");
    if name.starts_with("frps") {
        Kind::Server
    } else if name.starts_with("frpc") {
        Kind::Client
    } else {
        panic!(
            "{}: example names must start with \"frps\" or \"frpc\" so the test knows which \
             program reads them",
            path.display()
        )
    }
}

/// `transport.tls.<key>` of a parsed example, if set.
fn tls_path(table: &toml::Table, key: &str) -> Option<PathBuf> {
    let value = table.get("transport")?.get("tls")?.get(key)?;
    Some(PathBuf::from(
        value.as_str().expect("TLS paths are strings"),
    ))
}

/// The directory holding the example's certificates (that of `trustedCaFile`, relative to the
/// example) and the client identities whose files it references (`certs/NAME.crt`).
fn cert_layout(path: &Path, text: &str) -> (PathBuf, Vec<String>) {
    let table: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("{}: not valid TOML: {e}", path.display()));
    let ca = tls_path(&table, "trustedCaFile")
        .unwrap_or_else(|| panic!("{}: no transport.tls.trustedCaFile", path.display()));
    assert!(ca.is_relative(), "{}: use relative paths", path.display());
    let dir = ca
        .parent()
        .expect("trustedCaFile has a parent")
        .to_path_buf();
    let mut clients = Vec::new();
    for key in ["certFile", "keyFile"] {
        let file = tls_path(&table, key)
            .unwrap_or_else(|| panic!("{}: no transport.tls.{key}", path.display()));
        assert_eq!(
            file.parent(),
            Some(dir.as_path()),
            "{}: {key} should sit next to trustedCaFile",
            path.display()
        );
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file stem");
        if stem != "server" && !clients.iter().any(|c| c == stem) {
            clients.push(stem.to_string());
        }
    }
    (dir, clients)
}

/// Copies the example into a fresh directory with a CA, a server certificate and the client
/// certificates it references, returning the directory and the copy's path.
fn stage(example: &Path) -> (TempDir, PathBuf) {
    let text = fs::read_to_string(example).expect("read example");
    let (cert_dir, clients) = cert_layout(example, &text);
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join(cert_dir);
    let names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
    frp_certs::init_ca_dir(&certs, &names, false).expect("init CA");
    for name in &clients {
        frp_certs::issue_client_in_dir(&certs, name, false)
            .unwrap_or_else(|e| panic!("issuing {name}: {e}"));
    }
    stage_vhost_certificates(tmp.path(), &text);
    let copy = tmp.path().join(example.file_name().expect("file name"));
    fs::write(&copy, text).expect("copy example");
    (tmp, copy)
}

/// Issues the certificates `[[vhostHTTPS.certificates]]` entries name, for their domains, at
/// their certFile / keyFile under `dir`.
fn stage_vhost_certificates(dir: &Path, text: &str) {
    let table: toml::Table = toml::from_str(text).expect("valid TOML");
    let Some(entries) = table
        .get("vhostHTTPS")
        .and_then(|v| v.get("certificates"))
        .and_then(|c| c.as_array())
    else {
        return;
    };
    let ca = frp_certs::Ca::generate("example web CA").expect("ca");
    for entry in entries {
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(|v| v.as_str())
                .expect("certificate path")
        };
        let domains: Vec<String> = entry
            .get("domains")
            .and_then(|d| d.as_array())
            .expect("domains")
            .iter()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        let issued = ca.issue_server(&domains).expect("example web certificate");
        let (cert, key) = (dir.join(field("certFile")), dir.join(field("keyFile")));
        frp_certs::write_cert_and_key(&cert, &key, &issued, false).expect("write");
    }
}

/// Loads a staged example with the parser of its program, returning an error message.
fn load(kind: Kind, path: &Path) -> Result<(), String> {
    match kind {
        Kind::Server => frps::ServerSettings::from_file(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        Kind::Client => frpc::ClientSettings::from_file(path)
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

#[test]
fn every_example_loads_with_real_certificates() {
    let files = toml_files(&examples_dir());
    let kinds: Vec<Kind> = files.iter().map(|f| kind_of(f)).collect();
    let servers = kinds.iter().filter(|k| **k == Kind::Server).count();
    let clients = kinds.iter().filter(|k| **k == Kind::Client).count();
    assert!(servers >= 1, "no frps*.toml example in {files:?}");
    assert!(clients >= 1, "no frpc*.toml example in {files:?}");
    let mut failures = Vec::new();
    for (file, kind) in files.iter().zip(&kinds) {
        let (_tmp, copy) = stage(file);
        if let Err(e) = load(*kind, &copy) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not load:\n{}",
        failures.join("\n")
    );
    assert_eq!(servers + clients, files.len());
}

/// As shipped, with the throw-away certificates of `examples/certs`: `frpc --check -c
/// examples/frpc-kube.toml` must work from a clean checkout.
#[test]
fn every_example_loads_as_shipped() {
    let files = toml_files(&examples_dir());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| load(kind_of(file), file).err())
        .collect();
    assert!(
        failures.is_empty(),
        "examples that do not load as shipped (examples/certs/generate.sh remakes their \
         certificates):\n{}",
        failures.join("\n")
    );
}

#[test]
fn server_example_has_the_documented_policy() {
    let (_tmp, copy) = stage(&examples_dir().join("frps.toml"));
    let s = frps::ServerSettings::from_file(&copy).expect("frps.toml loads");
    assert_eq!(s.bind.port(), 7000);
    let p = &s.policy;
    assert!(p.check("ci-runner", 6000).is_ok());
    assert!(p.check("ci-runner", 6100).is_ok());
    assert!(p.check("ci-runner", 6101).is_err());
    assert!(p.check("node1", 6022).is_ok());
    assert!(p.check("node1", 6023).is_err(), "node1 is narrowed to 6022");
}

#[test]
fn client_example_publishes_ssh_and_web() {
    let (_tmp, copy) = stage(&examples_dir().join("frpc.toml"));
    let s = frpc::ClientSettings::from_file(&copy).expect("frpc.toml loads");
    assert_eq!(s.server_host, "vps.example.com");
    assert_eq!(s.server_port, 7000);
    assert_eq!(s.server_name, "vps.example.com");
    let ports: Vec<(u16, u16)> = s
        .proxies
        .iter()
        .map(|p| (p.local_port, p.remote_port))
        .collect();
    assert_eq!(ports, [(22, 6022), (8080, 0)]);
}

#[test]
fn kube_example_keeps_port_6443() {
    let (_tmp, copy) = stage(&examples_dir().join("frpc-kube.toml"));
    let s = frpc::ClientSettings::from_file(&copy).expect("frpc-kube.toml loads");
    let p = s.proxies.first().expect("one proxy");
    assert_eq!(
        (p.local_host.as_str(), p.local_port, p.remote_port),
        ("10.0.0.1", 6443, 6443)
    );
}

#[test]
fn vhost_examples_have_the_documented_names() {
    let (_tmp, copy) = stage(&examples_dir().join("frps-vhost.toml"));
    let s = frps::ServerSettings::from_file(&copy).expect("frps-vhost.toml loads");
    assert_eq!(
        (s.vhost.http_port, s.vhost.https_port),
        (Some(80), Some(443))
    );
    let name = |n: &str| frps::domains::DomainPattern::parse(n).expect("name");
    assert!(s.domains.check("ci", &name("x.example.com")).is_ok());
    assert!(s.domains.check("ci", &name("example.com")).is_err());
    assert!(s
        .domains
        .check("node1", &name("dash.node1.example.com"))
        .is_ok());
    assert!(s
        .domains
        .check("node1", &name("other.example.com"))
        .is_err());
    assert!(s.vhost.certificates.find("app.example.com").is_some());
    assert_eq!(
        (s.vhost.max_connections, s.vhost.max_connections_per_ip),
        (10_000, 256)
    );
    let app = name("app.example.com");
    assert!(
        s.domains.names_exactly("node1", &app) && s.domains.names_exactly("node2", &app),
        "node1 and node2 share app.example.com"
    );

    let (_tmp, copy) = stage(&examples_dir().join("frpc-web.toml"));
    let c = frpc::ClientSettings::from_file(&copy).expect("frpc-web.toml loads");
    let kinds: Vec<&str> = c.proxies.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["http", "http", "http", "https"]);
    let dash = c
        .proxies
        .iter()
        .find(|p| p.name.as_str() == "dashboard")
        .expect("dashboard");
    assert_eq!(dash.vhost.http_user, "admin");
    assert!(
        !format!("{dash:?}").contains("change-me"),
        "the password never shows in Debug"
    );
}

#[test]
fn a_file_with_another_name_is_refused() {
    let result = std::panic::catch_unwind(|| kind_of(Path::new("examples/server.toml")));
    assert!(result.is_err());
}
