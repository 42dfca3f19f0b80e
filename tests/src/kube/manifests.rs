//! Rendered Kubernetes manifests as the deployment tests read them: the tools that render them
//! (`helm`, `kubectl kustomize`), found with a clear message when missing, and the objects of
//! a multi-document YAML stream.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use yaml_rust2::{Yaml, YamlLoader};

/// The workspace root (deploy/, examples/ live there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Path of `tool` on `PATH`.
///
/// # Panics
/// When it is not there, saying how to install it.
pub fn tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{tool} not found on PATH: the deployment tests need it; `.ci/install-tools` installs it")
    })
}

/// Runs `tool args` and returns its stdout.
///
/// # Panics
/// When it fails, with its stderr.
pub fn run(tool_name: &str, args: &[&str]) -> String {
    let out = try_run(tool_name, args);
    match out {
        Ok(stdout) => stdout,
        Err(stderr) => panic!("{tool_name} {args:?} failed:\n{stderr}"),
    }
}

/// Runs `tool args`: its stdout, or its stderr when it fails.
pub fn try_run(tool_name: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tool(tool_name))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {tool_name}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// The objects of a YAML stream (empty documents dropped).
pub fn objects(stream: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(stream)
        .expect("rendered YAML parses")
        .into_iter()
        .filter(|d| !matches!(d, Yaml::Null))
        .collect()
}

/// The object of `kind` named `name`.
///
/// # Panics
/// When there is none, listing what there is.
pub fn find<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    objects
        .iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", kinds(objects)))
}

/// `Kind/name` of every object, sorted.
pub fn kinds(objects: &[Yaml]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or("?");
            format!("{kind}/{}", o["metadata"]["name"].as_str().unwrap_or("?"))
        })
        .collect();
    k.sort();
    k
}

/// `s` of a YAML string node.
pub fn text(y: &Yaml) -> &str {
    y.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {y:?}"))
}

/// The decoded value of key `key` of Secret `secret`'s `data`.
pub fn secret_data(secret: &Yaml, key: &str) -> String {
    // Long values may come wrapped over several lines.
    let data: String = text(&secret["data"][key])
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let b = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("secret data is base64");
    String::from_utf8(b).expect("utf-8")
}

/// Base64 of `s`, on one line.
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The first container of a workload's pod template.
pub fn container(workload: &Yaml) -> &Yaml {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

/// Asserts the pod security the issue asks for: non-root, read-only root filesystem, no
/// privilege escalation, every capability dropped and only `added` (if any) added.
pub fn assert_locked_down(workload: &Yaml, added: &[&str]) {
    let pod = &workload["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true), "{pod:?}");
    assert!(pod["runAsUser"].as_i64().is_some_and(|u| u > 0));
    let c = &container(workload)["securityContext"];
    assert_eq!(c["readOnlyRootFilesystem"].as_bool(), Some(true), "{c:?}");
    assert_eq!(c["allowPrivilegeEscalation"].as_bool(), Some(false));
    let caps = |k: &str| -> Vec<String> {
        c["capabilities"][k]
            .as_vec()
            .map(|v| v.iter().map(|c| text(c).to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(caps("drop"), ["ALL"]);
    assert_eq!(caps("add"), added);
}

/// `(name, port, protocol)` of every port of a Service.
pub fn service_ports(service: &Yaml) -> Vec<(String, i64, String)> {
    service["spec"]["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .map(|p| {
            let n = text(&p["name"]).to_string();
            (
                n,
                p["port"].as_i64().expect("port"),
                text(&p["protocol"]).to_string(),
            )
        })
        .collect()
}
