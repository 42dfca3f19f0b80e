//! The Kubernetes objects the test apiserver serves, as JSON: discovery documents, namespaces,
//! pods, their server-side tables, and `Status` errors.

use serde_json::{json, Value};

/// The version `/version` reports.
pub const GIT_VERSION: &str = "v1.32.0-frp-test";
/// Namespaces the cluster has.
pub const NAMESPACES: &[&str] = &["default", "kube-system"];
/// The pod every namespace lists; `exec` and `logs` target it.
pub const POD: &str = "web-0";
/// Its only container.
pub const CONTAINER: &str = "app";
/// Pods the watch adds, one per event, after a silent gap each.
pub const WATCHED: &[&str] = &["early", "late"];
/// When every object here was created.
const CREATED: &str = "2026-01-01T00:00:00Z";

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": CREATED, "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// `GET /api`: the legacy group's versions.
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    })
}

/// `GET /apis`: no named groups.
pub fn api_groups() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

/// `GET /api/v1`: namespaces, pods and the pod subresources the tests use.
pub fn resources() -> Value {
    let verbs = |v: &[&str]| json!(v);
    json!({
        "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": verbs(&["get", "list", "watch"]), "shortNames": ["ns"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": verbs(&["get", "list", "watch"]), "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions",
             "verbs": verbs(&["create", "get"])},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
             "verbs": verbs(&["get"])},
        ],
    })
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({
        "name": name, "uid": format!("00000000-0000-4000-8000-{:012x}", name.len()),
        "resourceVersion": "1", "creationTimestamp": CREATED,
    });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// A namespace.
pub fn namespace(name: &str) -> Value {
    json!({
        "kind": "Namespace", "apiVersion": "v1", "metadata": metadata(name, None),
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    })
}

/// A running pod with one container, [`CONTAINER`].
pub fn pod(namespace: &str, name: &str) -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1", "metadata": metadata(name, Some(namespace)),
        "spec": {"containers": [{"name": CONTAINER, "image": "example.com/app:1"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{
                "name": CONTAINER, "ready": true, "started": true, "restartCount": 0,
                "image": "example.com/app:1", "imageID": "",
                "state": {"running": {"startedAt": CREATED}},
            }],
        },
    })
}

/// A list of `kind` (`NamespaceList`, `PodList`).
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Server-side printing: the table kubectl asks for (`Accept: ...;as=Table;...`) to print
/// `kubectl get` without knowing the kind.
pub fn table(columns: &[&str], rows: Vec<(Vec<String>, Value)>) -> Value {
    let columns: Vec<Value> = columns
        .iter()
        .map(|c| {
            let format = if *c == "Name" { "name" } else { "" };
            json!({"name": c, "type": "string", "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(cells, object)| {
            let partial = json!({
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"],
            });
            json!({"cells": cells, "object": partial})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
        "columnDefinitions": columns, "rows": rows,
    })
}

/// The table of namespaces.
pub fn namespace_table() -> Value {
    let rows = NAMESPACES
        .iter()
        .map(|n| (cells(&[n, "Active", "1y"]), namespace(n)))
        .collect();
    table(&["Name", "Status", "Age"], rows)
}

/// The table of the pods of `namespace`.
pub fn pod_table(namespace: &str) -> Value {
    let row = (
        cells(&[POD, "1/1", "Running", "0", "1y"]),
        pod(namespace, POD),
    );
    table(&["Name", "Ready", "Status", "Restarts", "Age"], vec![row])
}

fn cells(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

/// A `Status` failure with HTTP code `code`.
pub fn status_failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

/// One watch event.
pub fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}
