use std::path::Path;

use super::*;

/// A kubeconfig as kubeadm writes it, with a second context, a relative CA path for the
/// second cluster and an extra field (`extensions`) on the user.
const SOURCE: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    certificate-authority-data: Q0EK
    server: https://10.0.0.1:6443
- name: other
  cluster:
    certificate-authority: pki/ca.crt
    server: https://[fd00::1]:6443
    tls-server-name: api.other.internal
contexts:
- name: kubernetes-admin@kubernetes
  context:
    cluster: kubernetes
    user: kubernetes-admin
    namespace: apps
- name: other
  context:
    cluster: other
    user: other-admin
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q1JUCg==
    client-key-data: S0VZCg==
- name: other-admin
  user:
    client-certificate: pki/admin.crt
    client-key: /etc/pki/admin.key
";

fn tcp(server: &str) -> Tunnel {
    Tunnel {
        server: server.into(),
        route: Route::Tcp(None),
    }
}

fn load(yaml: &str) -> Yaml {
    YamlLoader::load_from_str(yaml).expect("yaml")[0].clone()
}

#[test]
fn tcp_route_keeps_the_original_host_as_tls_server_name() {
    let out = rewrite(
        SOURCE,
        Path::new("/k"),
        None,
        &tcp("https://vps.example.com:6443"),
        None,
    )
    .expect("rewrite");
    let doc = load(&out.yaml);
    let cluster = &doc["clusters"][0];
    assert_eq!(
        cluster["name"].as_str(),
        Some("kubernetes-admin@kubernetes-tunnel")
    );
    assert_eq!(
        cluster["cluster"]["server"].as_str(),
        Some("https://vps.example.com:6443")
    );
    assert_eq!(
        cluster["cluster"]["tls-server-name"].as_str(),
        Some("10.0.0.1")
    );
    assert_eq!(
        cluster["cluster"]["certificate-authority-data"].as_str(),
        Some("Q0EK")
    );
    assert_eq!(out.tls_server_name, "10.0.0.1");
    let ctx = &doc["contexts"][0];
    assert_eq!(doc["current-context"].as_str(), ctx["name"].as_str());
    assert_eq!(ctx["context"]["cluster"].as_str(), cluster["name"].as_str());
    assert_eq!(ctx["context"]["user"].as_str(), Some("kubernetes-admin"));
    assert_eq!(ctx["context"]["namespace"].as_str(), Some("apps"));
    let user = &doc["users"][0];
    assert_eq!(user["name"].as_str(), Some("kubernetes-admin"));
    assert_eq!(user["user"]["client-key-data"].as_str(), Some("S0VZCg=="));
    assert_eq!(
        doc["users"].as_vec().map(Vec::len),
        Some(1),
        "only the context's user"
    );
}

#[test]
fn tcp_route_keeps_an_existing_tls_server_name_and_makes_paths_absolute() {
    let t = tcp("https://[2001:db8::7]:7443");
    let out = rewrite(SOURCE, Path::new("/k"), Some("other"), &t, Some("lab")).expect("rewrite");
    let doc = load(&out.yaml);
    let cluster = &doc["clusters"][0]["cluster"];
    assert_eq!(
        cluster["tls-server-name"].as_str(),
        Some("api.other.internal")
    );
    assert_eq!(
        cluster["certificate-authority"].as_str(),
        Some("/k/pki/ca.crt")
    );
    let user = &doc["users"][0]["user"];
    assert_eq!(
        user["client-certificate"].as_str(),
        Some("/k/pki/admin.crt")
    );
    assert_eq!(user["client-key"].as_str(), Some("/etc/pki/admin.key"));
    assert_eq!(doc["current-context"].as_str(), Some("lab"));
}

#[test]
fn an_explicit_name_and_the_sni_route_set_tls_server_name() {
    let t = Tunnel {
        server: "https://vps.example.com:6443".into(),
        route: Route::Tcp(Some("kubernetes".into())),
    };
    let out = rewrite(SOURCE, Path::new("/"), None, &t, None).expect("rewrite");
    assert_eq!(out.tls_server_name, "kubernetes");
    let t = Tunnel {
        server: "https://vps.example.com".into(),
        route: Route::Sni("kube1.example.com".into()),
    };
    let out = rewrite(SOURCE, Path::new("/"), Some("other"), &t, None).expect("rewrite");
    let doc = load(&out.yaml);
    assert_eq!(
        doc["clusters"][0]["cluster"]["tls-server-name"].as_str(),
        Some("kube1.example.com"),
        "SNI routing overrides the original name: kubectl sends tls-server-name as SNI"
    );
}

#[test]
fn bad_inputs_are_refused_with_the_reason() {
    let t = tcp("https://vps:6443");
    let err = |src: &str, ctx: Option<&str>, t: &Tunnel| {
        format!(
            "{:#}",
            rewrite(src, Path::new("/"), ctx, t, None).expect_err("refused")
        )
    };
    assert!(err(SOURCE, Some("nope"), &t).contains("no entry named \"nope\" in contexts"));
    assert!(err("kind: Config\n", None, &t).contains("no current-context"));
    assert!(err(SOURCE, None, &tcp("http://vps:6443")).contains("not an https:// URL"));
    assert!(err("a: [\n", None, &t).contains("parsing YAML"));
    let no_user = SOURCE.replace("- name: kubernetes-admin\n", "- name: someone-else\n");
    assert!(err(&no_user, None, &t).contains("no entry named \"kubernetes-admin\" in users"));
}

#[test]
fn hosts_of_urls() {
    assert_eq!(host_of("https://a.example:1/x").expect("host"), "a.example");
    assert_eq!(host_of("https://[fd00::1]:6443").expect("host"), "fd00::1");
    assert_eq!(host_of("https://10.0.0.1").expect("host"), "10.0.0.1");
    assert!(host_of("https://:6443").is_err());
    assert_eq!(url_host("fd00::1"), "[fd00::1]");
    assert_eq!(url_host("vps.example.com"), "vps.example.com");
}

#[test]
fn write_private_refuses_to_overwrite_without_force_and_writes_mode_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.yaml");
    write_private(&path, "one", false).expect("first write");
    let e = write_private(&path, "two", false).expect_err("exists");
    assert!(format!("{e:#}").contains("pass --force"), "{e:#}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "one");
    write_private(&path, "three", true).expect("forced");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "three");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
