//! The real kubectl through frps/frpc to a test apiserver, in both routing modes: a tcp proxy
//! per cluster and an https proxy chosen by SNI on `vhostHTTPSPort`.
//!
//! Each mode runs every command at once (discovery, lists, a watch with silent gaps longer
//! than the QUIC idle timeout, exec over WebSocket with stdin and an exit status, a 30 s
//! `logs -f`), then checks that every request reached the apiserver authenticated by the
//! admin's own client certificate. kubectl must be installed (the tests say so if not).

use std::time::{Duration, Instant};

use frp_tests::kube::kubectl::{assert_success, finish, Kubectl};
use frp_tests::kube::rig::{KubeRig, Mode, SNI_NAME};
use frp_tests::kube::{objects, KubePki, Options, TestApiserver, ADMIN};
use frp_tests::{within, TIMEOUT};
use tokio::io::AsyncWriteExt as _;

/// Limit of `logs -f`, whose stream lasts 30 s.
const LOGS_LIMIT: Duration = Duration::from_secs(90);

async fn discovery(k: &Kubectl) {
    let v = k.ok(&["version", "-o", "json"], TIMEOUT).await;
    let v: serde_json::Value = serde_json::from_str(&v).expect("version json");
    assert_eq!(v["serverVersion"]["gitVersion"], objects::GIT_VERSION);
    assert_eq!(k.ok(&["api-versions"], TIMEOUT).await, "v1\n");
    let resources = k.ok(&["api-resources", "-o", "name"], TIMEOUT).await;
    assert_eq!(resources, "namespaces\npods\n");
}

async fn lists(k: &Kubectl) {
    let ns = k.ok(&["get", "namespaces"], TIMEOUT).await;
    let lines: Vec<Vec<&str>> = ns.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "STATUS", "AGE"],
            vec!["default", "Active", "1y"],
            vec!["kube-system", "Active", "1y"]
        ],
        "{ns}"
    );
    let pods = k.ok(&["get", "pods", "-o", "name"], TIMEOUT).await;
    assert_eq!(pods, "pod/web-0\n");
}

async fn watch(k: &Kubectl) {
    let out = k
        .ok(&["get", "pods", "--watch", "-o", "name"], TIMEOUT)
        .await;
    assert_eq!(
        out, "pod/web-0\npod/early\npod/late\n",
        "the list, then each event"
    );
}

async fn exec(k: &Kubectl) {
    let args = ["exec", "-i", objects::POD, "--", "cat"];
    let mut child = k.spawn_with_stdin(&args);
    let mut stdin = child.stdin.take().expect("stdin");
    let input: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
    stdin.write_all(&input).await.expect("write stdin");
    drop(stdin);
    let out = finish(child, TIMEOUT, &args).await;
    assert_success(&out, &args);
    assert!(out.stdout == input, "stdin came back changed");
    let args = ["exec", objects::POD, "--", "exit", "3"];
    let out = k.run(&args, TIMEOUT).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("command terminated with exit code 3"),
        "{stderr}"
    );
}

async fn logs(k: &Kubectl) {
    let start = Instant::now();
    let out = k.ok(&["logs", "-f", objects::POD], LOGS_LIMIT).await;
    let opts = Options::default();
    let expected: String = (1..=opts.log_lines)
        .map(|n| frp_tests::kube::log_line(n, opts.log_lines))
        .collect();
    assert_eq!(out, expected);
    let lasted = opts.log_interval * (opts.log_lines - 1);
    assert!(
        start.elapsed() >= lasted,
        "the log was followed, not read at once"
    );
}

/// Every kubectl command of the issue at once, then what the apiserver saw.
async fn kubectl_suite(rig: &KubeRig, sni: Option<&str>) {
    let k = rig.kubectl();
    tokio::join!(discovery(&k), lists(&k), watch(&k), exec(&k), logs(&k));
    let seen = rig.api.seen();
    let admin = frp_certs::fingerprint(&rig.api.pki.admin.cert_der());
    assert!(seen.len() >= 15, "{seen:#?}");
    for s in &seen {
        assert_eq!(s.user, ADMIN, "{s:?}");
        assert_eq!(
            s.cert_fingerprint, admin,
            "the admin's own certificate: {s:?}"
        );
        assert_eq!(s.sni.as_deref(), sni, "{s:?}");
    }
    let upgrades: Vec<_> = seen.iter().filter_map(|s| s.upgrade.as_deref()).collect();
    assert_eq!(
        upgrades, ["websocket v5.channel.k8s.io"; 2],
        "both execs over WebSocket"
    );
    // The connection held through every silent gap: one session from start to end.
    assert_eq!(rig.client.status.borrow().sessions, 1);
}

#[tokio::test]
async fn kubectl_through_a_tcp_proxy() {
    let rig = KubeRig::start(Mode::Tcp, &[], false).await;
    // tls-server-name is the original host, an IP: kubectl sends no SNI.
    kubectl_suite(&rig, None).await;
    rig.stop().await;
}

#[tokio::test]
async fn kubectl_through_an_https_proxy_by_sni() {
    let rig = KubeRig::start(Mode::Sni, &[SNI_NAME], false).await;
    kubectl_suite(&rig, Some(SNI_NAME)).await;
    rig.stop().await;
}

#[tokio::test]
async fn an_sni_name_missing_from_the_apiserver_sans_fails_verification() {
    let rig = KubeRig::start(Mode::Sni, &[], false).await;
    let out = rig
        .kubectl()
        .run(&["get", "--raw", "/version"], TIMEOUT)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("x509: certificate is valid for") && stderr.contains(SNI_NAME),
        "{stderr}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn tcp_mode_verifies_against_tls_server_name_not_the_tunnel_host() {
    let rig = KubeRig::start(Mode::Tcp, &[], false).await;
    let k = rig.kubectl();
    let version = k.ok(&["get", "--raw", "/version"], TIMEOUT).await;
    assert!(version.contains(objects::GIT_VERSION), "{version}");
    // Without tls-server-name kubectl checks `localhost`, which the certificate does not list.
    let without = rig.kubeconfig().replace("tls-server-name", "x-unused");
    let out = Kubectl::new(&without)
        .run(&["get", "--raw", "/version"], TIMEOUT)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not localhost"),
        "{stderr}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_certificate_the_apiserver_does_not_trust_is_refused_through_the_tunnel() {
    let rig = KubeRig::start(Mode::Tcp, &[], false).await;
    // The same kubeconfig with a client certificate from another cluster's CA.
    let stranger = KubePki::new(&[]);
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let own = b64(rig.api.pki.admin.cert_pem());
    let own_key = b64(rig.api.pki.admin.key_pem());
    let other = rig
        .kubeconfig()
        .replace(&own, &b64(stranger.admin.cert_pem()))
        .replace(&own_key, &b64(stranger.admin.key_pem()));
    assert_ne!(other, rig.kubeconfig());
    let out = Kubectl::new(&other)
        .run(&["get", "--raw", "/version"], TIMEOUT)
        .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(rig.api.seen().is_empty(), "no request got through");
    rig.stop().await;
}

#[tokio::test]
async fn the_apiserver_answers_kubectl_directly() {
    // The control: the test apiserver itself, without the tunnel.
    let api = TestApiserver::start(KubePki::new(&[]), Options::default()).await;
    let k = Kubectl::new(&api.kubeconfig());
    tokio::join!(discovery(&k), lists(&k), exec(&k));
    api.stop().await;
}

/// Reads from `out` until `want` has arrived in full.
async fn read_exactly(out: &mut tokio::process::ChildStdout, want: &[u8]) {
    use tokio::io::AsyncReadExt as _;
    let mut got = vec![0u8; want.len()];
    within("exec echo", out.read_exact(&mut got))
        .await
        .expect("read kubectl stdout");
    assert_eq!(got, want);
}

#[tokio::test]
async fn an_exec_session_survives_a_connection_migration() {
    let rig = KubeRig::start(Mode::Tcp, &[], true).await;
    let relay = rig.relay.as_ref().expect("relay").handle();
    let before = relay.upstream_addr().expect("upstream");
    let args = ["exec", "-i", objects::POD, "--", "cat"];
    let k = rig.kubectl();
    let mut child = k.spawn_with_stdin(&args);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    stdin.write_all(b"before\n").await.expect("write");
    read_exactly(&mut stdout, b"before\n").await;

    // frpc's address changes under the session (NAT rebinding): QUIC migrates the connection.
    let after = within("rebind", relay.rebind()).await.expect("rebind");
    assert_ne!(after, before);
    stdin.write_all(b"after\n").await.expect("write");
    read_exactly(&mut stdout, b"after\n").await;
    let mut server_status = rig.server.status.clone();
    let moved =
        server_status.wait_for(|s| s.clients.get("cluster1").is_some_and(|c| c.remote == after));
    within("frps sees the new address", moved)
        .await
        .expect("status");
    stdin.write_all(b"still here\n").await.expect("write");
    read_exactly(&mut stdout, b"still here\n").await;
    drop(stdin);

    let out = finish(child, TIMEOUT, &args).await;
    assert_success(&out, &args);
    assert!(out.stdout.is_empty(), "nothing more on stdout: {out:?}");
    assert!(out.stderr.is_empty(), "the user noticed nothing: {out:?}");
    let status = rig.client.status.borrow().clone();
    assert_eq!(status.sessions, 1, "the same QUIC connection throughout");
    rig.stop().await;
}
