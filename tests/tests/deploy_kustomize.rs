//! The Kustomize bases under deploy/kubernetes, rendered by `kubectl kustomize`: the bases
//! alone, and an overlay as the README's Install section writes one (namespace, the Secrets
//! and ConfigMap generated from files), whose generated names the workloads must follow.

use std::path::Path;

use frp_tests::kube::manifests::{
    assert_locked_down, container, find, kinds, objects, run, secret_data, service_ports, text,
    workspace_root,
};
use yaml_rust2::Yaml;

fn base(name: &str) -> String {
    workspace_root()
        .join("deploy/kubernetes")
        .join(name)
        .display()
        .to_string()
}

fn kustomize(dir: &str) -> Vec<Yaml> {
    objects(&run("kubectl", &["kustomize", dir]))
}

/// The name of the Secret or ConfigMap volume `volume` of a workload.
fn volume_source(workload: &Yaml, volume: &str) -> String {
    let volumes = workload["spec"]["template"]["spec"]["volumes"]
        .as_vec()
        .expect("volumes");
    let v = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some(volume))
        .expect("volume");
    let name = v["secret"]["secretName"]
        .as_str()
        .or(v["configMap"]["name"].as_str());
    name.expect("secret or configMap").to_string()
}

/// Files of a generator: (name, contents).
type Files<'a> = &'a [(&'a str, &'a str)];

/// Writes an overlay of `base` in `dir` generating `generators` (kind, name, files).
fn overlay(dir: &Path, base: &str, generators: &[(&str, &str, Files<'_>)]) {
    // Kustomize takes a base by relative path only.
    let dir = std::fs::canonicalize(dir).expect("canonical dir");
    let ups = "../".repeat(dir.components().count() - 1);
    let base = format!("{ups}{}", base.trim_start_matches('/'));
    let dir = dir.as_path();
    let mut k = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         namespace: frp-system\nresources:\n  - {base}\n"
    );
    for kind in ["secretGenerator", "configMapGenerator"] {
        let mine: Vec<_> = generators.iter().filter(|g| g.0 == kind).collect();
        if !mine.is_empty() {
            k.push_str(&format!("{kind}:\n"));
        }
        for (_, name, files) in mine {
            k.push_str(&format!("  - name: {name}\n    files:\n"));
            for (file, contents) in *files {
                std::fs::write(dir.join(file), contents).expect("write file");
                k.push_str(&format!("      - {file}\n"));
            }
        }
    }
    std::fs::write(dir.join("kustomization.yaml"), k).expect("kustomization");
}

#[test]
fn frps_base_and_overlay() {
    let o = kustomize(&base("frps"));
    assert_eq!(
        kinds(&o),
        [
            "Deployment/frps",
            "Service/frps",
            "Service/frps-admin",
            "ServiceAccount/frps"
        ]
    );
    let deploy = find(&o, "Deployment", "frps");
    assert_locked_down(deploy, &[]);
    let c = container(deploy);
    assert_eq!(text(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert_eq!(text(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
    let svc = find(&o, "Service", "frps");
    assert_eq!(text(&svc["spec"]["type"]), "LoadBalancer");
    assert_eq!(
        service_ports(svc),
        [
            ("quic".into(), 443, "UDP".into()),
            ("https".into(), 443, "TCP".into())
        ]
    );
    assert_eq!(
        text(&svc["spec"]["selector"]["app.kubernetes.io/name"]),
        "frps"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let certs = tempfile::tempdir().expect("certs");
    frp_certs::init_ca_dir(certs.path(), &["tunnel.example.org".to_string()], false).expect("ca");
    let pem = |f: &str| std::fs::read_to_string(certs.path().join(f)).expect("pem");
    let (ca, crt, key) = (pem("ca.crt"), pem("server.crt"), pem("server.key"));
    let toml = "bindPort = 7443\n";
    let cert_files: &[(&str, &str)] =
        &[("ca.crt", &ca), ("server.crt", &crt), ("server.key", &key)];
    overlay(
        dir.path(),
        &base("frps"),
        &[
            ("secretGenerator", "frps-certs", cert_files),
            ("secretGenerator", "frps-config", &[("frps.toml", toml)]),
        ],
    );
    let o = kustomize(&dir.path().display().to_string());
    assert!(o
        .iter()
        .all(|x| text(&x["metadata"]["namespace"]) == "frp-system"));
    let deploy = find(&o, "Deployment", "frps");
    let certs_secret = volume_source(deploy, "certs");
    assert!(certs_secret.starts_with("frps-certs-"), "{certs_secret}");
    let secret = find(&o, "Secret", &certs_secret);
    assert_eq!(secret_data(secret, "ca.crt"), ca);
    assert_eq!(secret_data(secret, "server.crt"), crt);
    assert_eq!(secret_data(secret, "server.key"), key);
    let config = find(&o, "Secret", &volume_source(deploy, "config"));
    assert_eq!(secret_data(config, "frps.toml"), toml);
}

#[test]
fn frpc_base_and_overlay() {
    let o = kustomize(&base("frpc"));
    assert_eq!(kinds(&o), ["Deployment/frpc", "ServiceAccount/frpc"]);
    let deploy = find(&o, "Deployment", "frpc");
    assert_eq!(deploy["spec"]["replicas"].as_i64(), Some(1));
    assert_locked_down(deploy, &[]);

    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "serverAddr = \"tunnel.example.org\"\n";
    overlay(
        dir.path(),
        &base("frpc"),
        &[
            ("configMapGenerator", "frpc-config", &[("frpc.toml", toml)]),
            (
                "secretGenerator",
                "frpc-certs",
                &[
                    ("ca.crt", "CA\n"),
                    ("client.crt", "CRT\n"),
                    ("client.key", "KEY\n"),
                ],
            ),
        ],
    );
    let o = kustomize(&dir.path().display().to_string());
    let deploy = find(&o, "Deployment", "frpc");
    let cm = find(&o, "ConfigMap", &volume_source(deploy, "config"));
    assert_eq!(text(&cm["data"]["frpc.toml"]), toml);
    let secret = find(&o, "Secret", &volume_source(deploy, "certs"));
    assert_eq!(secret_data(secret, "client.key"), "KEY\n");
}
