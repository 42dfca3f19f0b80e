//! Refused handshakes as the operator reads them, with the real binaries: frpc says once, in
//! words, which side refused and why (no Rust type names, no bare alert names), and frps logs
//! the refusal; a frpc started before frps says where to look.

use frp_tests::backends::echo_server;
use frp_tests::deployment::{Deployment, LISTENING};
use frp_tests::procs::{binary, fixed_port, Proc};
use frp_tests::{init_logs, TIMEOUT};

/// frpc's exit status for a permanent refusal.
const EXIT_REFUSED: i32 = 2;

/// Waits for frpc to give up; returns its stderr, checked to carry `needle` on exactly one
/// line and no Rust type name.
fn gave_up_once(frpc: &mut Proc, needle: &str) -> String {
    let status = frpc.wait_exit(TIMEOUT).expect("frpc gives up");
    let err = frpc.stderr();
    assert_eq!(status.code(), Some(EXIT_REFUSED), "{err}");
    let lines = err.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines, 1, "{needle:?} once in: {err}");
    for rust in [
        "DnsName(",
        "IpAddress(",
        "BadSignature",
        "UnknownIssuer",
        "error 4",
        "error 5",
    ] {
        assert!(!err.contains(rust), "{rust:?} in: {err}");
    }
    err
}

/// A deployment and its running frps.
async fn deployment(frpc_quic: &str) -> (Deployment, Proc) {
    binary("frps");
    let (echo, _e) = echo_server().await;
    let d = Deployment::new(echo, &[fixed_port()], "", frpc_quic);
    let mut frps = d.start("frps", 1);
    frps.wait_log(LISTENING, 1).await;
    (d, frps)
}

/// Replaces `from` with `to` in the deployment's frpc.toml.
fn edit_frpc(d: &Deployment, from: &str, to: &str) {
    let path = d.path("frpc.toml");
    let text = std::fs::read_to_string(&path).expect("read frpc.toml");
    assert!(text.contains(from), "{from:?} not in frpc.toml");
    std::fs::write(&path, text.replace(from, to)).expect("write frpc.toml");
}

#[tokio::test]
async fn a_wrong_server_name_is_this_clients_refusal_in_words() {
    init_logs();
    let (d, mut frps) = deployment("").await;
    edit_frpc(
        &d,
        "trustedCaFile = \"certs/ca.crt\"\n",
        "trustedCaFile = \"certs/ca.crt\"\nserverName = \"wrong.example.com\"\n",
    );
    let mut frpc = d.start("frpc", 1);
    let err = gave_up_once(
        &mut frpc,
        "this client refused the server's certificate: it is not valid for the name \
         \\\"wrong.example.com\\\", only for localhost, 127.0.0.1; set transport.tls.serverName",
    );
    assert!(!err.contains("server refused"), "{err}");
    frps.wait_log("a client refused this server's certificate", 1)
        .await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_the_servers_refusal_in_words() {
    init_logs();
    let (d, mut frps) = deployment("").await;
    let other = d.path("other");
    let names = ["localhost".to_string()];
    frp_certs::init_ca_dir(&other, &names, false).expect("other CA");
    frp_certs::issue_client_in_dir(&other, "node1", false).expect("other client cert");
    edit_frpc(&d, "certs/node1.", "other/node1.");
    let mut frpc = d.start("frpc", 1);
    gave_up_once(
        &mut frpc,
        "the server refused this client's certificate: it was not issued by the trusted CA",
    );
    frps.wait_log("refused a client's certificate", 1).await;
    assert_eq!(frps.log_count("it was not issued by the trusted CA"), 1);
}

#[tokio::test]
async fn a_server_that_is_not_there_gets_a_hint() {
    init_logs();
    binary("frpc");
    let (echo, _e) = echo_server().await;
    // Nothing listens on the deployment's UDP port: frps is never started.
    let d = Deployment::new(echo, &[fixed_port()], "", "");
    edit_frpc(&d, "[transport]\n", "[transport]\ndialServerTimeout = 1\n");
    let mut frpc = d.start("frpc", 1);
    // The kernel answers with "port unreachable", so frpc need not wait for a timeout.
    frpc.wait_log("port unreachable", 1).await;
    let err = frpc.stderr();
    let port = d.server.port();
    assert!(err.contains("is frps running there"), "{err}");
    assert!(err.contains(&format!("UDP port {port}")), "{err}");
    assert!(frpc.is_running(), "frpc keeps trying");
}
