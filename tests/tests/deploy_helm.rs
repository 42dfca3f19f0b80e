//! The Helm charts under deploy/helm, rendered by the real `helm` (`.ci/install-tools`
//! installs it) with their default values and with seed-style values: the objects, names,
//! ports and security settings, Secrets that decode to the PEM given, and configs the real
//! binaries accept (`--check`).

use std::path::Path;
use std::process::Command;

use frp_tests::kube::manifests::{
    assert_locked_down, b64, container, find, kinds, objects, run, secret_data, service_ports,
    text, try_run, workspace_root,
};
use yaml_rust2::Yaml;

fn chart(name: &str) -> String {
    workspace_root()
        .join("deploy/helm")
        .join(name)
        .display()
        .to_string()
}

/// `helm lint` and `helm template rel CHART` with `extra` arguments.
fn render(name: &str, extra: &[&str]) -> Vec<Yaml> {
    let chart = chart(name);
    let mut lint = vec!["lint", "--strict", chart.as_str()];
    lint.extend_from_slice(extra);
    run("helm", &lint);
    let mut args = vec!["template", "rel", chart.as_str()];
    args.extend_from_slice(extra);
    objects(&run("helm", &args))
}

/// A CA, a server certificate for `tunnel.example.org` and a client `cluster1`, as files.
fn certs(dir: &Path) {
    frp_certs::init_ca_dir(dir, &["tunnel.example.org".to_string()], false).expect("ca");
    frp_certs::issue_client_in_dir(dir, "cluster1", false).expect("client");
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).expect("read pem")
}

/// Runs `bin --check -c` on `toml` with its /etc/frp/certs paths pointed at `certs`.
fn check_config(bin: &str, toml: &str, certs: &Path, renames: &[(&str, &str)]) {
    let mut toml = toml.replace("/etc/frp/certs/", &format!("{}/", certs.display()));
    for (from, to) in renames {
        toml = toml.replace(from, to);
    }
    let file = certs.join(format!("{bin}.toml"));
    std::fs::write(&file, &toml).expect("write config");
    let out = Command::new(frp_tests::procs::binary(bin))
        .arg("--check")
        .arg("-c")
        .arg(&file)
        .output()
        .expect("run --check");
    assert!(
        out.status.success(),
        "{bin} --check refused the rendered config:\n{toml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn frps_chart_with_default_values() {
    let o = render("frps", &[]);
    assert_eq!(
        kinds(&o),
        [
            "Deployment/rel-frps",
            "Secret/rel-frps-config",
            "Service/rel-frps",
            "Service/rel-frps-admin",
            "ServiceAccount/rel-frps"
        ]
    );
    let svc = find(&o, "Service", "rel-frps");
    assert_eq!(text(&svc["spec"]["type"]), "LoadBalancer");
    let ports = service_ports(svc);
    assert_eq!(
        ports,
        [
            ("quic".into(), 443, "UDP".into()),
            ("https".into(), 443, "TCP".into())
        ]
    );
    let deploy = find(&o, "Deployment", "rel-frps");
    assert_locked_down(deploy, &[]);
    let c = container(deploy);
    assert_eq!(text(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert_eq!(text(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
    assert_eq!(text(&c["readinessProbe"]["httpGet"]["port"]), "web");
    let volumes = deploy["spec"]["template"]["spec"]["volumes"]
        .as_vec()
        .expect("volumes");
    assert_eq!(
        text(&volumes[1]["secret"]["secretName"]),
        "rel-frps-certs",
        "made by the user"
    );
    let toml = secret_data(find(&o, "Secret", "rel-frps-config"), "frps.toml");
    for line in [
        "bindPort = 7443",
        "vhostHTTPSPort = 8443",
        "[webServer]",
        "addr = \"0.0.0.0\"",
        "port = 7500",
    ] {
        assert!(toml.lines().any(|l| l == line), "{line} missing in\n{toml}");
    }
    let password = toml
        .lines()
        .find_map(|l| l.strip_prefix("password = "))
        .expect("password");
    assert_eq!(
        password.len(),
        34,
        "a generated 32-character password: {password}"
    );
}

#[test]
fn frps_chart_with_seed_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let (ca, crt, key) = (
        read(dir.path(), "ca.crt"),
        read(dir.path(), "server.crt"),
        read(dir.path(), "server.key"),
    );
    let values = format!(
        "frps:\n  frpHostURL: tunnel.example.org\n  server:\n    crt: {}\n    key: {}\n  ca:\n    crt: {}\n\
         \x20 config:\n    allowPorts: [{{single: 6443}}, {{start: 7001, end: 7003}}]\n    \
         allowDomains: [\"*.kube.example.org\"]\n  webServer:\n    enabled: false\n\
         namespaceOverride: frp-system\nservice:\n  name: frp-edge\n",
        b64(&crt),
        b64(&key),
        b64(&ca)
    );
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).expect("values");
    let o = render("frps", &["-f", file.to_str().expect("utf-8")]);
    assert_eq!(
        kinds(&o),
        [
            "Deployment/rel-frps",
            "Secret/rel-frps-certs",
            "Secret/rel-frps-config",
            "Service/frp-edge",
            "ServiceAccount/rel-frps"
        ]
    );
    assert!(o
        .iter()
        .all(|x| text(&x["metadata"]["namespace"]) == "frp-system"));
    let ports: Vec<(String, i64, String)> = service_ports(find(&o, "Service", "frp-edge"));
    let want: Vec<(String, i64, String)> = [("quic", 443, "UDP"), ("https", 443, "TCP")]
        .into_iter()
        .chain([("tcp-6443", 6443, "TCP"), ("tcp-7001", 7001, "TCP")])
        .chain([("tcp-7002", 7002, "TCP"), ("tcp-7003", 7003, "TCP")])
        .map(|(n, p, t)| (n.to_string(), p, t.to_string()))
        .collect();
    assert_eq!(ports, want);
    let secret = find(&o, "Secret", "rel-frps-certs");
    assert_eq!(secret_data(secret, "ca.crt"), ca);
    assert_eq!(secret_data(secret, "server.crt"), crt);
    assert_eq!(secret_data(secret, "server.key"), key);
    let deploy = find(&o, "Deployment", "rel-frps");
    let c = container(deploy);
    assert_eq!(
        text(&c["readinessProbe"]["tcpSocket"]["port"]),
        "https",
        "no control plane: the port"
    );
    let toml = secret_data(find(&o, "Secret", "rel-frps-config"), "frps.toml");
    assert!(
        toml.contains("allowPorts = [{ single = 6443 }, { start = 7001, end = 7003 }]"),
        "{toml}"
    );
    check_config("frps", &toml, dir.path(), &[]);
}

#[test]
fn frps_chart_refuses_certificates_that_are_not_base64_pem() {
    let e = try_run(
        "helm",
        &[
            "template",
            "rel",
            &chart("frps"),
            "--set",
            "frps.server.crt=abc",
        ],
    )
    .expect_err("half the certificates");
    assert!(e.contains("go together"), "{e}");
    let not_pem = b64("not a certificate");
    let set = format!("frps.server.crt={not_pem},frps.server.key={not_pem},frps.ca.crt={not_pem}");
    let e =
        try_run("helm", &["template", "rel", &chart("frps"), "--set", &set]).expect_err("not PEM");
    assert!(e.contains("must be the base64 of a PEM file"), "{e}");
}

#[test]
fn frps_chart_lets_a_nonroot_pod_bind_port_443_without_capabilities() {
    let o = render("frps", &["--set", "frps.config.vhostHTTPSPort=443"]);
    let deploy = find(&o, "Deployment", "rel-frps");
    assert_locked_down(deploy, &[]);
    let sysctl = &deploy["spec"]["template"]["spec"]["securityContext"]["sysctls"][0];
    assert_eq!(text(&sysctl["name"]), "net.ipv4.ip_unprivileged_port_start");
    assert_eq!(text(&sysctl["value"]), "0");
    let default = render("frps", &[]);
    let pod = &find(&default, "Deployment", "rel-frps")["spec"]["template"]["spec"];
    assert!(
        pod["securityContext"]["sysctls"].is_badvalue(),
        "only when a port needs it"
    );
}

#[test]
fn frpc_chart_with_default_values() {
    let o = render("frpc", &[]);
    assert_eq!(
        kinds(&o),
        [
            "ConfigMap/rel-frpc",
            "Deployment/rel-frpc",
            "ServiceAccount/rel-frpc"
        ]
    );
    let deploy = find(&o, "Deployment", "rel-frpc");
    assert_eq!(
        deploy["spec"]["replicas"].as_i64(),
        Some(1),
        "one identity, one replica"
    );
    assert_eq!(text(&deploy["spec"]["strategy"]["type"]), "Recreate");
    assert_locked_down(deploy, &[]);
    let toml = text(&find(&o, "ConfigMap", "rel-frpc")["data"]["frpc.toml"]).to_string();
    for line in [
        "localIP = \"kubernetes.default.svc\"",
        "localPort = 443",
        "type = \"tcp\"",
        "remotePort = 6443",
    ] {
        assert!(toml.lines().any(|l| l == line), "{line} missing in\n{toml}");
    }
}

#[test]
fn frpc_chart_with_seed_values_in_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let (ca, crt, key) = (
        read(dir.path(), "ca.crt"),
        read(dir.path(), "cluster1.crt"),
        read(dir.path(), "cluster1.key"),
    );
    let set = format!(
        "frpc.serverAddr=tunnel.example.org,frpc.client.crt={},frpc.client.key={},frpc.ca.crt={},\
         frpc.apiserver.type=https,frpc.apiserver.domain=kube1.kube.example.org,namespaceOverride=cluster-agents",
        b64(&crt),
        b64(&key),
        b64(&ca)
    );
    let o = render("frpc", &["--set", &set]);
    assert!(o
        .iter()
        .all(|x| text(&x["metadata"]["namespace"]) == "cluster-agents"));
    let secret = find(&o, "Secret", "rel-frpc-certs");
    assert_eq!(secret_data(secret, "client.crt"), crt);
    assert_eq!(secret_data(secret, "client.key"), key);
    assert_eq!(secret_data(secret, "ca.crt"), ca);
    let toml = text(&find(&o, "ConfigMap", "rel-frpc")["data"]["frpc.toml"]).to_string();
    assert!(
        toml.contains("customDomains = [\"kube1.kube.example.org\"]"),
        "{toml}"
    );
    let renames = [
        ("client.crt", "cluster1.crt"),
        ("client.key", "cluster1.key"),
    ];
    check_config("frpc", &toml, dir.path(), &renames);

    // DaemonSet mode: one identity per node, each node's certificate picked by its name.
    let set = format!(
        "mode=daemonset,frpc.ca.crt={},nodeCertificates.node-a.crt={},nodeCertificates.node-a.key={}",
        b64(&ca),
        b64(&crt),
        b64(&key)
    );
    let o = render("frpc", &["--set", &set]);
    let ds = find(&o, "DaemonSet", "rel-frpc");
    let env = &container(ds)["env"][0];
    assert_eq!(text(&env["name"]), "NODE_NAME");
    assert_eq!(
        text(&env["valueFrom"]["fieldRef"]["fieldPath"]),
        "spec.nodeName"
    );
    let mounts = container(ds)["volumeMounts"].as_vec().expect("mounts");
    let exprs: Vec<&str> = mounts
        .iter()
        .filter_map(|m| m["subPathExpr"].as_str())
        .collect();
    assert_eq!(exprs, ["$(NODE_NAME).crt", "$(NODE_NAME).key"]);
    assert_eq!(
        secret_data(find(&o, "Secret", "rel-frpc-certs"), "node-a.crt"),
        crt
    );
}

#[test]
fn frps_chart_without_https_vhosts_publishes_the_tcp_transport() {
    let o = render(
        "frps",
        &[
            "--set",
            "frps.config.vhostHTTPSPort=0",
            "--set",
            "frps.webServer.enabled=false",
        ],
    );
    let ports = service_ports(find(&o, "Service", "rel-frps"));
    assert_eq!(
        ports,
        [
            ("quic".into(), 443, "UDP".into()),
            ("tunnel-tcp".into(), 443, "TCP".into())
        ]
    );
    let c = container(find(&o, "Deployment", "rel-frps"));
    let tunnel = c["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .find(|p| text(&p["name"]) == "tunnel-tcp")
        .expect("a tunnel-tcp container port");
    assert_eq!(
        tunnel["containerPort"].as_i64(),
        Some(7443),
        "bindPort's number"
    );
    assert_eq!(text(&tunnel["protocol"]), "TCP");
    assert_eq!(
        text(&c["readinessProbe"]["tcpSocket"]["port"]),
        "tunnel-tcp"
    );
    let toml = secret_data(find(&o, "Secret", "rel-frps-config"), "frps.toml");
    assert!(!toml.contains("vhostHTTPSPort"), "{toml}");
}
