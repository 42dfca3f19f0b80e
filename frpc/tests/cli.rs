//! The `frpc` binary as an operator runs it: `--check` and config errors (every such config is
//! refused or only checked, so nothing opens a socket), and `frpc status` / `frpc reload`
//! against a running frpc whose server is not there.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

/// Exit status of a configuration error (`EX_CONFIG`).
const EXIT_CONFIG: i32 = 64;

/// The `[transport.tls]` table of a good config.
const TLS: &str =
    "[transport.tls]\ncertFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
                   trustedCaFile = \"certs/ca.crt\"\nserverName = \"localhost\"\n";

/// One good proxy.
const SSH: &str =
    "[[proxies]]\nname = \"ssh\"\ntype = \"tcp\"\nlocalPort = 22\nremotePort = 6022\n";

fn frpc<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_frpc"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run frpc")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temp dir with `certs/` holding a CA, a server certificate and a client `node1`.
fn with_certs() -> TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    let names = ["localhost".to_string()];
    frp_certs::init_ca_dir(&certs, &names, false).expect("init CA");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("issue node1");
    tmp
}

/// A client config: server address, `transport` (TLS and whatever `tls` holds), then `rest`.
fn client_config(tls: &str, rest: &str) -> String {
    format!("serverAddr = \"127.0.0.1\"\nserverPort = 7000\n\n{tls}\n{rest}")
}

/// Writes `text` to `dir/name` and runs `frpc [--check] -c` on it.
fn run(dir: &Path, name: &str, text: &str, check: bool) -> Output {
    let path = dir.join(name);
    fs::write(&path, text).expect("write config");
    let mut args = vec![OsStr::new("-c"), path.as_os_str()];
    if check {
        args.insert(0, OsStr::new("--check"));
    }
    frpc(args)
}

/// Asserts exit status 64 and that stderr contains each of `needles`.
fn assert_config_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

#[test]
fn check_accepts_a_good_config() {
    let tmp = with_certs();
    let web = "[[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalPort = 8080\nremotePort = 0\n";
    let text = client_config(TLS, &format!("{SSH}\n{web}"));
    let out = run(tmp.path(), "good.toml", &text, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("good.toml: ok"), "{stdout}");
}

#[test]
fn typo_key_names_file_key_and_value() {
    let tmp = with_certs();
    let text = client_config(TLS, SSH).replace("serverPort = 7000", "serverPortt = 7000");
    // Without --check: the error must come before any attempt to connect.
    let out = run(tmp.path(), "typo.toml", &text, false);
    assert_config_error(&out, &["typo.toml", "serverPortt", "7000"]);
}

#[test]
fn typo_in_a_proxy_is_refused() {
    let tmp = with_certs();
    let text = client_config(TLS, &SSH.replace("localPort", "localPrt"));
    let out = run(tmp.path(), "typo.toml", &text, true);
    assert_config_error(&out, &["localPrt"]);
}

#[test]
fn udp_proxy_is_not_supported() {
    let tmp = with_certs();
    let text = client_config(TLS, &SSH.replace("\"tcp\"", "\"udp\""));
    let out = run(tmp.path(), "udp.toml", &text, true);
    assert_config_error(
        &out,
        &["udp.toml", "proxies[0].type", "\"udp\"", "not supported"],
    );
}

#[test]
fn http_proxy_is_checked() {
    let tmp = with_certs();
    let web = "[[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalPort = 8080\n\
               customDomains = [\"app.example.com\"]\nhttpUser = \"admin\"\nhttpPassword = \"pw-4711\"\n";
    let out = run(tmp.path(), "web.toml", &client_config(TLS, web), true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bad = web.replace("localPort = 8080", "localPort = 8080\nremotePort = 80");
    let out = run(tmp.path(), "web.toml", &client_config(TLS, &bad), true);
    assert_config_error(&out, &["proxies[0].remotePort", "vhost port"]);
    assert!(!stderr(&out).contains("pw-4711"), "{}", stderr(&out));
}

#[test]
fn unknown_proxy_type_is_refused() {
    let tmp = with_certs();
    let text = client_config(TLS, &SSH.replace("\"tcp\"", "\"tpc\""));
    let out = run(tmp.path(), "tpc.toml", &text, true);
    assert_config_error(&out, &["\"tpc\"", "not a proxy type"]);
}

#[test]
fn frps_transports_frp_quic_lacks_are_named() {
    let tmp = with_certs();
    let transport = format!("[transport]\nprotocol = \"kcp\"\n\n{TLS}");
    let out = run(
        tmp.path(),
        "proto.toml",
        &client_config(&transport, SSH),
        true,
    );
    let needles = [
        "transport.protocol",
        "kcp transport is not supported",
        "\"tcp\"",
    ];
    assert_config_error(&out, &needles);
    // The ones it has pass.
    let transport = format!("[transport]\nprotocol = \"tcp\"\ntcpPort = 443\n\n{TLS}");
    let out = run(
        tmp.path(),
        "tcp.toml",
        &client_config(&transport, SSH),
        true,
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn unsupported_proxy_key_is_named() {
    let tmp = with_certs();
    let proxy = format!("{SSH}customDomains = [\"example.com\"]\n");
    let out = run(
        tmp.path(),
        "domains.toml",
        &client_config(TLS, &proxy),
        true,
    );
    assert_config_error(&out, &["proxies[0].customDomains", "not \"tcp\""]);
    let proxy = format!("{SSH}routeByHTTPUser = \"alice\"\n");
    let out = run(tmp.path(), "user.toml", &client_config(TLS, &proxy), true);
    assert_config_error(&out, &["proxies[0].routeByHTTPUser", "not supported"]);
}

#[test]
fn duplicate_proxy_names_are_refused() {
    let tmp = with_certs();
    let text = client_config(TLS, &format!("{SSH}\n{}", SSH.replace("6022", "6023")));
    let out = run(tmp.path(), "dup.toml", &text, true);
    assert_config_error(&out, &["proxies[1].name", "\"ssh\""]);
}

#[test]
fn missing_trusted_ca_key_is_named() {
    let tmp = with_certs();
    let tls = TLS.replace("trustedCaFile = \"certs/ca.crt\"\n", "");
    let out = run(tmp.path(), "noca.toml", &client_config(&tls, SSH), true);
    assert_config_error(&out, &["noca.toml", "transport.tls.trustedCaFile"]);
}

#[test]
fn missing_trusted_ca_file_is_named() {
    let tmp = with_certs();
    fs::remove_file(tmp.path().join("certs/ca.crt")).expect("remove ca.crt");
    let out = run(tmp.path(), "noca.toml", &client_config(TLS, SSH), true);
    assert_config_error(&out, &["noca.toml", "ca.crt"]);
}

#[test]
fn missing_config_file_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("nope.toml");
    let out = frpc([OsStr::new("-c"), path.as_os_str()]);
    assert_config_error(&out, &["nope.toml"]);
}

#[test]
fn help_mentions_the_main_options() {
    let out = frpc(["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--config", "--check", "--log-format", "64"] {
        assert!(help.contains(word), "frpc --help lacks {word}: {help}");
    }
}

#[test]
fn unsupported_secret_tables_are_named_without_their_values() {
    let tmp = with_certs();
    let cases = [
        ("[auth]\ntoken = \"tok-4711\"\n", "auth", "tok-4711"),
        (
            "[[visitors]]\nname = \"v\"\nsecretKey = \"sk-4711\"\n",
            "visitors",
            "sk-4711",
        ),
    ];
    for (table, key, secret) in cases {
        let text = format!("{}\n{table}", client_config(TLS, SSH));
        let out = run(tmp.path(), "secret.toml", &text, true);
        assert_config_error(&out, &[key, "not supported"]);
        assert!(
            !stderr(&out).contains(secret),
            "{key}: secret printed: {}",
            stderr(&out)
        );
    }
}

#[test]
fn server_only_quic_keys_are_refused_by_name() {
    let tmp = with_certs();
    for key in [
        "retry = \"always\"",
        "maxHandshakesPerIP = 4",
        "handshakeTimeout = 3",
    ] {
        let text = format!("{}\n[transport.quic]\n{key}\n", client_config(TLS, SSH));
        let out = run(tmp.path(), "quic.toml", &text, true);
        let name = key.split(' ').next().expect("key name");
        assert_config_error(
            &out,
            &[
                "quic.toml",
                &format!("`transport.quic.{name}` is a server setting"),
                "frps.toml",
            ],
        );
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    l.local_addr().expect("addr").port()
}

/// A child process killed when dropped, so a failing test leaks none.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn web_server_is_checked_and_open_addresses_need_credentials() {
    let tmp = with_certs();
    let with = |web: &str| format!("{}\n{web}", client_config(TLS, SSH));
    let open = "[webServer]\naddr = \"0.0.0.0\"\nport = 7400\n";
    let out = run(tmp.path(), "open.toml", &with(open), true);
    assert_config_error(&out, &["open.toml", "webServer.addr", "insecureAllowOpen"]);
    // Refused before anything binds or connects, not only by --check.
    let out = run(tmp.path(), "open.toml", &with(open), false);
    assert_config_error(&out, &["insecureAllowOpen"]);
    let out = run(
        tmp.path(),
        "open.toml",
        &with(&format!("{open}insecureAllowOpen = true\n")),
        true,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let creds = format!("{open}user = \"admin\"\npassword = \"pw-4711\"\n");
    let out = run(tmp.path(), "creds.toml", &with(&creds), true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let half = "[webServer]\nport = 7400\nuser = \"admin\"\n";
    assert_config_error(
        &run(tmp.path(), "half.toml", &with(half), true),
        &["webServer.password"],
    );
    let typo = format!("{creds}prot = 1\n");
    let out = run(tmp.path(), "typo.toml", &with(&typo), true);
    assert_config_error(&out, &["prot"]);
    assert!(!stderr(&out).contains("pw-4711"), "{}", stderr(&out));
    let prom = format!("enablePrometheus = true\n{}", client_config(TLS, SSH));
    assert_config_error(
        &run(tmp.path(), "prom.toml", &prom, true),
        &["enablePrometheus", "webServer.port"],
    );
}

#[test]
fn status_needs_a_web_server_port_and_a_running_frpc() {
    let tmp = with_certs();
    let path = tmp.path().join("frpc.toml");
    fs::write(&path, client_config(TLS, SSH)).expect("write");
    let out = frpc([OsStr::new("status"), OsStr::new("-c"), path.as_os_str()]);
    assert_config_error(&out, &["webServer.port", "no admin API"]);
    let web = format!("[webServer]\nport = {}\n", free_port());
    fs::write(&path, format!("{}\n{web}", client_config(TLS, SSH))).expect("write");
    let out = frpc([OsStr::new("reload"), OsStr::new("-c"), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is the program running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_and_reload_show_a_frpc_waiting_for_its_server() {
    let tmp = with_certs();
    let path = tmp.path().join("frpc.toml");
    let nowhere = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp = nowhere.local_addr().expect("addr").port();
    drop(nowhere);
    let off = "[[proxies]]\nname = \"off\"\ntype = \"tcp\"\nlocalPort = 23\nenabled = false\n";
    let text = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {udp}\n\n[webServer]\nport = {}\n\n\
         [transport]\nreconnectMinDelayMs = 50\nreconnectMaxDelayMs = 200\n\n{TLS}\n{SSH}\n{off}",
        free_port()
    );
    fs::write(&path, &text).expect("write");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_frpc"))
        .arg("-c")
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start frpc");
    let _running = Running(child);
    let status = |json: bool| {
        let mut args = vec![OsStr::new("status"), OsStr::new("-c"), path.as_os_str()];
        if json {
            args.push(OsStr::new("--json"));
        }
        frpc(args)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let table = loop {
        let out = status(false);
        if out.status.code() == Some(0) {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer: {}",
            stderr(&out)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let lines: Vec<&str> = table.lines().collect();
    let server = format!("server  127.0.0.1:{udp}  ");
    assert!(lines[0].starts_with(&server), "{table}");
    assert!(
        lines[0].contains("waiting") || lines[0].contains("connecting"),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .skip_while(|l| !l.starts_with("NAME"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "TYPE", "STATE", "PUBLIC", "LOCAL", "DETAIL"],
        "{table}"
    );
    assert_eq!(
        rows[1],
        ["ssh", "tcp", "pending", "-", "127.0.0.1:22"],
        "{table}"
    );
    assert_eq!(
        rows[2],
        ["off", "tcp", "disabled", "-", "127.0.0.1:23"],
        "{table}"
    );
    assert_eq!(rows.len(), 3, "{table}");
    let json: String = String::from_utf8_lossy(&status(true).stdout).into_owned();
    assert!(json.starts_with("{\"server\":{"), "{json}");
    assert!(
        json.contains("\"name\":\"ssh\",\"type\":\"tcp\",\"state\":\"pending\""),
        "{json}"
    );

    let db = "[[proxies]]\nname = \"db\"\ntype = \"tcp\"\nlocalPort = 5432\n";
    fs::write(&path, format!("{text}\n{db}")).expect("write");
    let out = frpc([OsStr::new("reload"), OsStr::new("-c"), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said,
        format!(
            "reloaded {}\n  added: db\n  not connected: the proxies register at the next connection\n",
            path.display()
        )
    );
    let table = String::from_utf8_lossy(&status(false).stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["db", "tcp", "pending"])),
        "{table}"
    );
}
