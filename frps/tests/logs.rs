//! Log lines written to a pipe (journald, a file, a log shipper) are plain text: no ANSI
//! colour escapes unless stderr is a terminal.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Upper bound for frps to write its first lines.
const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn text_logs_on_a_pipe_have_no_colour_escapes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    let names = ["localhost".to_string()];
    frp_certs::init_ca_dir(&certs, &names, false).expect("ca init");
    let config = tmp.path().join("frps.toml");
    let toml = "bindAddr = \"127.0.0.1\"\nbindPort = 0\n\n[transport.tls]\n\
                certFile = \"certs/server.crt\"\nkeyFile = \"certs/server.key\"\n\
                trustedCaFile = \"certs/ca.crt\"\n";
    std::fs::write(&config, toml).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_frps"))
        .arg("-c")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn frps");
    let stderr = child.stderr.take().expect("stderr pipe");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(line) if line.contains("frps listening") => break line,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no listening line from frps ({e}); got {seen:?}");
            }
        }
    };
    child.kill().expect("kill frps");
    child.wait().expect("reap frps");
    seen.push(listening);
    for line in &seen {
        assert!(
            !line.contains('\u{1b}'),
            "ANSI escape in a piped log line: {line:?}"
        );
        assert!(
            line.contains("INFO") || line.contains("WARN"),
            "a text line: {line:?}"
        );
    }
}
