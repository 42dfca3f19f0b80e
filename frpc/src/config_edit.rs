//! Writing changes made through the admin API back into `frpc.toml`.
//!
//! Edits go through `toml_edit`, so the operator's comments, key order and layout survive: a
//! proxy added through the API is one more `[[proxies]]` entry (or inline entry, if the file
//! writes them inline), a proxy deleted is that entry gone, new server settings replace the
//! values of their keys. Files are replaced atomically (a temporary file in the same
//! directory, then a rename) and keep their permission bits.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike, Value};

/// Why an edit could not be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file does not parse as TOML.
    #[error("invalid TOML: {0}")]
    Toml(String),
    /// No proxy of that name in the file.
    #[error("no proxy named {0:?} in the config file")]
    NotFound(String),
    /// A value that TOML cannot hold, or a key of the wrong shape.
    #[error("{0}")]
    Shape(String),
}

/// The server settings [`set_server`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeys {
    /// `serverAddr`.
    pub addr: String,
    /// `serverPort`.
    pub port: u16,
    /// `transport.tls.serverName` (removed when `None`: it defaults to `serverAddr`).
    pub server_name: Option<String>,
    /// `transport.tls.certFile`.
    pub cert_file: String,
    /// `transport.tls.keyFile`.
    pub key_file: String,
    /// `transport.tls.trustedCaFile`.
    pub ca_file: String,
}

fn parse(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Toml(e.message().to_string()))
}

/// The names of the `[[proxies]]` entries in `text`, in order.
///
/// # Errors
/// When `text` is not TOML.
pub fn proxy_names(text: &str) -> Result<Vec<String>, EditError> {
    let doc = parse(text)?;
    Ok(entries(doc.as_item())
        .iter()
        .filter_map(|t| t.get("name")?.as_str().map(str::to_string))
        .collect())
}

/// The proxy entries of a document, as tables.
fn entries(doc: &Item) -> Vec<&dyn TableLike> {
    match doc.get("proxies") {
        Some(Item::ArrayOfTables(aot)) => aot.iter().map(|t| t as &dyn TableLike).collect(),
        Some(Item::Value(Value::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => Vec::new(),
    }
}

/// `text` with one more proxy: `entry` holds frpc.toml's keys (`name`, `type`, `localPort`,
/// ...) as JSON, already checked to be a valid proxy.
///
/// # Errors
/// When `text` is not TOML, `proxies` is not a list of tables, or `entry` holds a value
/// TOML cannot (a `null`).
pub fn add_proxy(
    text: &str,
    entry: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    // `name` and `type` first, as people write them.
    let mut keys: Vec<&String> = entry.keys().collect();
    keys.sort_by_key(|k| match k.as_str() {
        "name" => 0,
        "type" => 1,
        _ => 2,
    });
    let mut table = Table::new();
    for key in keys {
        let v = to_toml(key, &entry[key.as_str()])?;
        table.insert(key, Item::Value(v));
    }
    match doc.as_table_mut().get_mut("proxies") {
        None => {
            let mut aot = toml_edit::ArrayOfTables::new();
            aot.push(table);
            doc.as_table_mut()
                .insert("proxies", Item::ArrayOfTables(aot));
        }
        Some(Item::ArrayOfTables(aot)) => aot.push(table),
        Some(Item::Value(Value::Array(list))) => {
            list.push(Value::InlineTable(table.into_inline_table()));
        }
        Some(_) => return Err(EditError::Shape("`proxies` is not a list of tables".into())),
    }
    Ok(doc.to_string())
}

/// `text` without the proxy named `name`.
///
/// # Errors
/// [`EditError::NotFound`] when there is none; when `text` is not TOML.
pub fn remove_proxy(text: &str, name: &str) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let named = |t: &dyn TableLike| t.get("name").and_then(Item::as_str) == Some(name);
    let removed = match doc.as_table_mut().get_mut("proxies") {
        Some(Item::ArrayOfTables(aot)) => {
            let found = aot.iter().position(|t| named(t));
            found.map(|i| aot.remove(i)).is_some()
        }
        Some(Item::Value(Value::Array(list))) => {
            let found = list
                .iter()
                .position(|v| v.as_inline_table().is_some_and(|t| named(t)));
            found.map(|i| list.remove(i)).is_some()
        }
        _ => false,
    };
    match removed {
        true => Ok(doc.to_string()),
        false => Err(EditError::NotFound(name.to_string())),
    }
}

/// `text` with the server keys set to `keys` (other keys, and comments, untouched).
///
/// # Errors
/// When `text` is not TOML or `transport` / `transport.tls` is not a table.
pub fn set_server(text: &str, keys: &ServerKeys) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let root = doc.as_table_mut();
    set(root, "serverAddr", Value::from(keys.addr.as_str()));
    set(root, "serverPort", Value::from(i64::from(keys.port)));
    let transport = sub_table(root, "transport")?;
    let tls = sub_table(transport, "tls")?;
    set(tls, "certFile", Value::from(keys.cert_file.as_str()));
    set(tls, "keyFile", Value::from(keys.key_file.as_str()));
    set(tls, "trustedCaFile", Value::from(keys.ca_file.as_str()));
    match &keys.server_name {
        Some(n) => set(tls, "serverName", Value::from(n.as_str())),
        None => {
            tls.remove("serverName");
        }
    }
    Ok(doc.to_string())
}

/// Sets `key` to `v`, keeping the comments around an existing value.
fn set(t: &mut dyn TableLike, key: &str, mut v: Value) {
    if let Some(old) = t.get_mut(key).and_then(Item::as_value_mut) {
        *v.decor_mut() = old.decor().clone();
        *old = v;
        return;
    }
    t.insert(key, Item::Value(v));
}

/// The table at `key` in `parent`, made (implicit, so no empty header is written) if absent.
fn sub_table<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
) -> Result<&'a mut dyn TableLike, EditError> {
    if parent.get(key).is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        parent.insert(key, Item::Table(t));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| EditError::Shape(format!("`{key}` is not a table")))
}

/// A JSON value as TOML (objects inline).
fn to_toml(key: &str, v: &serde_json::Value) -> Result<Value, EditError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => {
            return Err(EditError::Shape(format!(
                "`{key}`: null is not a TOML value"
            )))
        }
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) if n.is_f64() => Value::from(f),
            _ => return Err(EditError::Shape(format!("`{key}` = {n}: out of range"))),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => {
            let mut a = Array::new();
            for item in items {
                a.push(to_toml(key, item)?);
            }
            Value::Array(a)
        }
        J::Object(map) => {
            let mut t = InlineTable::new();
            for (k, item) in map {
                t.insert(k, to_toml(k, item)?);
            }
            Value::InlineTable(t)
        }
    })
}

pub use frp_certs::write_atomic;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    const FILE: &str = r#"# the node's client
serverAddr = "vps.example.com" # our server
serverPort = 7000

[transport.tls]
certFile = "certs/node1.crt"
keyFile = "certs/node1.key"
trustedCaFile = "certs/ca.crt"

# ssh first
[[proxies]]
name = "ssh"
type = "tcp"
localPort = 22 # sshd

[[proxies]]
name = "web"
type = "http"
localPort = 8080
customDomains = ["a.example.com"]
"#;

    fn entry(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn adding_and_removing_keep_comments_and_layout() {
        let e = entry(
            r#"{"type":"tcp","name":"db","localPort":5432,"requestHeaders":{"set":{"x-a":"b"}}}"#,
        );
        let added = add_proxy(FILE, &e).unwrap();
        assert!(
            added.starts_with(FILE),
            "the old text is untouched:\n{added}"
        );
        assert!(
            added.contains("[[proxies]]\nname = \"db\"\ntype = \"tcp\"\n"),
            "{added}"
        );
        assert!(
            added.contains("requestHeaders = { set = { x-a = \"b\" } }"),
            "{added}"
        );
        assert_eq!(proxy_names(&added).unwrap(), ["ssh", "web", "db"]);
        let removed = remove_proxy(&added, "web").unwrap();
        assert_eq!(proxy_names(&removed).unwrap(), ["ssh", "db"]);
        assert!(removed.contains("localPort = 22 # sshd"), "{removed}");
        assert!(removed.contains("# ssh first"), "{removed}");
        assert_eq!(
            remove_proxy(FILE, "nope"),
            Err(EditError::NotFound("nope".into()))
        );
        let parsed: toml::Table = toml::from_str(&removed).unwrap();
        assert_eq!(parsed["proxies"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn inline_proxy_lists_and_files_without_proxies() {
        let inline = "proxies = [{ name = \"a\", type = \"tcp\", localPort = 1 }]\n";
        let added =
            add_proxy(inline, &entry(r#"{"name":"b","type":"tcp","localPort":2}"#)).unwrap();
        assert_eq!(proxy_names(&added).unwrap(), ["a", "b"]);
        assert_eq!(
            proxy_names(&remove_proxy(&added, "a").unwrap()).unwrap(),
            ["b"]
        );
        let none = add_proxy("serverPort = 1\n", &entry(r#"{"name":"b"}"#)).unwrap();
        assert_eq!(proxy_names(&none).unwrap(), ["b"]);
        let e = add_proxy("", &entry(r#"{"name":null}"#)).unwrap_err();
        assert!(e.to_string().contains("null"), "{e}");
        assert!(matches!(
            add_proxy("proxies = 3", &entry("{}")),
            Err(EditError::Shape(_))
        ));
        assert!(matches!(proxy_names("a = "), Err(EditError::Toml(_))));
    }

    #[test]
    fn server_keys_replace_values_and_keep_comments() {
        let keys = ServerKeys {
            addr: "10.0.0.9".into(),
            port: 7443,
            server_name: Some("frps.internal".into()),
            cert_file: "frpc-client.crt".into(),
            key_file: "frpc-client.key".into(),
            ca_file: "frpc-server-ca.crt".into(),
        };
        let out = set_server(FILE, &keys).unwrap();
        assert!(
            out.contains("serverAddr = \"10.0.0.9\" # our server"),
            "{out}"
        );
        assert!(out.contains("serverPort = 7443\n"), "{out}");
        assert!(out.contains("certFile = \"frpc-client.crt\""), "{out}");
        assert!(out.contains("serverName = \"frps.internal\""), "{out}");
        assert!(out.contains("# the node's client") && out.contains("localPort = 22 # sshd"));
        let bare = set_server(
            "",
            &ServerKeys {
                server_name: None,
                ..keys
            },
        )
        .unwrap();
        let parsed: toml::Table = toml::from_str(&bare).unwrap();
        assert_eq!(
            parsed["transport"]["tls"]["keyFile"].as_str(),
            Some("frpc-client.key")
        );
        assert!(!bare.contains("[transport]\n"), "no empty header: {bare}");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_keep_the_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frpc.toml");
        write_atomic(&path, b"a = 1\n", 0o600).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"a = 2\n", 0o600).unwrap();
        assert_eq!(
            (fs::read_to_string(&path).unwrap().as_str(), mode(&path)),
            ("a = 2\n", 0o640)
        );
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }
}
