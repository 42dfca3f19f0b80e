//! The real binaries as an operator runs them: `frpc status` (a table, and `--json`) and
//! `frpc reload` read `[webServer]` from `-c frpc.toml` and ask the running frpc; SIGHUP
//! rereads the file too.

use std::ffi::OsStr;
use std::path::Path;

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::procs::{binary, fixed_port, Proc};
use frp_tests::{eventually, init_logs, within, LOCALHOST};

/// Runs `frpc ARGS -c CONFIG` and returns its exit code, stdout and stderr.
async fn frpc(args: &[&str], config: &Path) -> (Option<i32>, String, String) {
    let out = within(
        "frpc subcommand",
        tokio::process::Command::new(binary("frpc"))
            .args(args)
            .arg("-c")
            .arg(config)
            .env_remove("RUST_LOG")
            .output(),
    )
    .await
    .expect("run frpc");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The `frpc status --json` answer, once the admin API answers.
async fn status_json(config: &Path) -> serde_json::Value {
    let (code, out, err) = frpc(&["status", "--json"], config).await;
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The state of proxy `name` in a status answer.
fn state(s: &serde_json::Value, name: &str) -> Option<String> {
    let proxies = s["proxies"].as_array()?;
    let p = proxies.iter().find(|p| p["name"] == name)?;
    p["state"].as_str().map(str::to_string)
}

fn proxy(name: &str, local: u16, remote: u16) -> String {
    format!(
        "\n[[proxies]]\nname = \"{name}\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\n\
         localPort = {local}\nremotePort = {remote}\n"
    )
}

#[tokio::test]
async fn status_and_reload_ask_the_running_frpc() {
    init_logs();
    binary("frps");
    let (echo, _e) = echo_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    frp_certs::init_ca_dir(&certs, &names, false).expect("ca init");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("ca issue");
    let (udp, ssh, db) = (fixed_port(), fixed_port(), fixed_port());
    let tls = "[transport.tls]\ncertFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
               trustedCaFile = \"certs/ca.crt\"\n";
    let frps = format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {udp}\nallowPorts = [{{ single = {ssh} }}, {{ single = {db} }}]\n\
         gracefulShutdownTimeout = 1\n\n[transport.tls]\ncertFile = \"certs/server.crt\"\n\
         keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n"
    );
    let base = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {udp}\ngracefulShutdownTimeout = 1\n\n\
         [webServer]\nport = {}\nuser = \"admin\"\npassword = \"pw-for-the-cli\"\n\n\
         [transport]\nreconnectMinDelayMs = 50\nreconnectMaxDelayMs = 500\n\n{tls}{}",
        fixed_port(),
        proxy("ssh", echo.port(), ssh)
    );
    let (frps_toml, frpc_toml) = (dir.path().join("frps.toml"), dir.path().join("frpc.toml"));
    std::fs::write(&frps_toml, frps).expect("write");
    std::fs::write(&frpc_toml, &base).expect("write");
    let start = |name: &str, config: &Path| {
        let args = [
            OsStr::new("--log-format"),
            OsStr::new("json"),
            OsStr::new("-c"),
            config.as_os_str(),
        ];
        Proc::spawn(
            name,
            &binary(name),
            args,
            dir.path().join(format!("{name}.log")),
        )
    };
    let _frps = start("frps", &frps_toml);
    let mut client = start("frpc", &frpc_toml);
    client.wait_log(r#""message":"proxy published""#, 1).await;

    let (code, table, err) = frpc(&["status"], &frpc_toml).await;
    assert_eq!(code, Some(0), "{err}");
    let mut lines = table.lines();
    let server = lines.next().expect("server line");
    assert!(
        server.starts_with(&format!(
            "server  127.0.0.1:{udp}  connected to 127.0.0.1:{udp} over quic since "
        )),
        "{table}"
    );
    assert!(server.contains("  rtt "), "{table}");
    assert_eq!(lines.next(), Some(""));
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "STATE", "PUBLIC", "LOCAL", "DETAIL"]
    );
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    let public = format!("127.0.0.1:{ssh}");
    let local = format!("127.0.0.1:{}", echo.port());
    assert_eq!(
        row,
        ["ssh", "tcp", "running", public.as_str(), local.as_str()],
        "{table}"
    );

    // SIGHUP rereads the file.
    std::fs::write(
        &frpc_toml,
        format!("{base}{}", proxy("db", echo.port(), db)),
    )
    .expect("write");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &client.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    client.wait_log(r#""message":"proxy published""#, 2).await;
    assert_eq!(
        state(&status_json(&frpc_toml).await, "db").as_deref(),
        Some("running")
    );
    let db_public = std::net::SocketAddr::new(LOCALHOST, db);
    assert_eq!(
        echo_once(db_public, b"db after sighup").await,
        b"db after sighup"
    );

    // `frpc reload` does the same, and says what changed.
    std::fs::write(&frpc_toml, &base).expect("write");
    let (code, out, err) = frpc(&["reload"], &frpc_toml).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!("reloaded {}\n  removed: db\n", frpc_toml.display())
    );
    eventually("db's port is free", || {
        std::net::TcpListener::bind(db_public).is_ok()
    })
    .await;
    assert_eq!(state(&status_json(&frpc_toml).await, "db"), None);
    assert_eq!(
        client.log_count(r#""message":"connected to server""#),
        1,
        "one session throughout"
    );

    // A config the reload refuses leaves the running one, and says why.
    std::fs::write(&frpc_toml, base.replace("localPort", "localPrt")).expect("write");
    let (code, _, err) = frpc(&["reload"], &frpc_toml).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("localPrt") && err.contains("400"), "{err}");
    assert_eq!(
        state(&status_json(&frpc_toml).await, "ssh").as_deref(),
        Some("running")
    );
}
