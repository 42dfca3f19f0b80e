//! A misspelled key, at the top or in a nested section of frps.toml or frpc.toml, is refused
//! with the closest known key ("did you mean"), and frp's INI-era snake_case names find their
//! TOML spelling. A `trustedCaFile` holding a leaf certificate is refused by `--check`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

mod common;

use common::{with_certs, write};

/// Exit status of a configuration error (`EX_CONFIG`).
const EXIT_CONFIG: i32 = 64;

const SERVER_TLS: &str = "[transport.tls]\ncertFile = \"certs/server.crt\"\n\
                          keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n";
const CLIENT_TLS: &str = "[transport.tls]\ncertFile = \"certs/node1.crt\"\n\
                          keyFile = \"certs/node1.key\"\ntrustedCaFile = \"certs/ca.crt\"\n";
const PROXY: &str = "[[proxies]]\nname = \"ssh\"\ntype = \"tcp\"\nlocalPort = 22\n";

fn server_error(dir: &Path, text: &str) -> String {
    let path = write(dir, "frps.toml", text);
    frps::ServerSettings::from_file(&path)
        .expect_err("refused")
        .to_string()
}

fn client_error(dir: &Path, text: &str) -> String {
    let path = write(dir, "frpc.toml", text);
    frpc::ClientSettings::from_file(&path)
        .expect_err("refused")
        .to_string()
}

fn assert_suggests(message: &str, typo: &str, key: &str) {
    assert!(message.contains(typo), "{message}");
    assert!(
        message.ends_with(&format!("did you mean `{key}`?")),
        "{typo} should suggest {key}: {message}"
    );
}

#[test]
fn frps_typos_suggest_the_key_at_every_depth() {
    let tmp = with_certs();
    let cases = [
        ("bindPrt = 7000\n", "bindPrt", "bindPort"),
        ("allow_ports = []\n", "allow_ports", "allowPorts"),
        (
            "[transport.quic]\nkeepAlivePeriod = 10\n",
            "keepAlivePeriod",
            "keepalivePeriod",
        ),
        (
            "[[clients]]\nname = \"a\"\nallowPort = []\n",
            "allowPort",
            "allowPorts",
        ),
        ("allowPorts = [{ singel = 6022 }]\n", "singel", "single"),
    ];
    for (extra, typo, key) in cases {
        let text = if extra.starts_with('[') {
            format!("{SERVER_TLS}\n{extra}")
        } else {
            format!("{extra}\n{SERVER_TLS}")
        };
        assert_suggests(&server_error(tmp.path(), &text), typo, key);
    }
    let text = SERVER_TLS.replace("certFile", "certFiel");
    assert_suggests(&server_error(tmp.path(), &text), "certFiel", "certFile");
}

#[test]
fn frpc_typos_suggest_the_key_at_every_depth() {
    let tmp = with_certs();
    let cases = [
        ("serverAdr = \"x\"\n", "", "serverAdr", "serverAddr"),
        ("", "remotPort = 6022\n", "remotPort", "remotePort"),
        ("", "local_ip = \"127.0.0.1\"\n", "local_ip", "localIP"),
        (
            "",
            "[proxies.cors]\nallowOrigin = [\"*\"]\n",
            "allowOrigin",
            "allowOrigins",
        ),
    ];
    for (top, in_proxy, typo, key) in cases {
        let text = format!("{top}\n{CLIENT_TLS}\n{PROXY}{in_proxy}");
        assert_suggests(&client_error(tmp.path(), &text), typo, key);
    }
    let text = format!("{}\n{PROXY}", CLIENT_TLS.replace("keyFile", "keyfile"));
    assert_suggests(&client_error(tmp.path(), &text), "keyfile", "keyFile");
}

#[test]
fn a_name_far_from_every_key_gets_no_guess() {
    let tmp = with_certs();
    let message = server_error(tmp.path(), &format!("colour = \"blue\"\n{SERVER_TLS}"));
    assert!(
        message.contains("colour") && !message.contains("did you mean"),
        "{message}"
    );
}

#[test]
fn check_refuses_a_leaf_as_trusted_ca_file() {
    let tmp = with_certs();
    let text = SERVER_TLS.replace("certs/ca.crt", "certs/node1.crt");
    let path = write(tmp.path(), "frps.toml", &text);
    let out = Command::new(env!("CARGO_BIN_EXE_frps"))
        .args([OsStr::new("--check"), OsStr::new("-c"), path.as_os_str()])
        .env_remove("RUST_LOG")
        .output()
        .expect("run frps");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for needle in [
        "node1.crt",
        "CN=node1",
        "is not a CA certificate",
        "trustedCaFile",
    ] {
        assert!(err.contains(needle), "lacks {needle:?}: {err}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ok"));
}
