//! Loading TOML config files with frp's key names, and the sections both ends share.
//!
//! Loading happens in three steps, all before anything binds: keys that frp has but frp-quic
//! does not support are refused by name with what to use instead; the rest is deserialized
//! with `deny_unknown_fields`, so a typo names the file, the line, the key and its value, and
//! the closest known key when one is near (`did you mean remotePort?`, also for frp's old
//! `remote_port` spelling); then each program validates values into typed settings.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Exit status for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// A configuration file that cannot be used, with the file it came from.
#[derive(Debug)]
pub struct ConfigError {
    /// The file, or `<built-in>` for settings made in code.
    pub path: PathBuf,
    /// What is wrong, naming the key and its value.
    pub message: String,
}

impl ConfigError {
    /// An error about `path`.
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A key frp has that frp-quic refuses, with what to do instead.
#[derive(Clone, Copy, Debug)]
pub struct Unsupported {
    /// Dotted path; a `[]` segment means "in every element of this array of tables",
    /// e.g. `proxies[].customDomains`.
    pub key: &'static str,
    /// What to use instead, or why it does not exist here.
    pub hint: &'static str,
}

/// Reads and parses `path` into `T`, refusing the `unsupported` keys first.
///
/// # Errors
/// A [`ConfigError`] naming the file and the offending key and value.
pub fn load_toml<T: DeserializeOwned>(
    path: &Path,
    unsupported: &[Unsupported],
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read file: {e}")))?;
    parse_toml(path, &text, unsupported)
}

/// Parses `text` (read from `path`) into `T`, refusing the `unsupported` keys first.
///
/// # Errors
/// A [`ConfigError`] naming the file and the offending key and value.
pub fn parse_toml<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    unsupported: &[Unsupported],
) -> Result<T, ConfigError> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| ConfigError::new(path, format!("invalid TOML: {}", toml_error(text, &e))))?;
    for u in unsupported {
        if let Some((key, value)) = find_key(&table, u.key) {
            let what = describe(&key, &value);
            return Err(ConfigError::new(
                path,
                format!("{what} is not supported by frp-quic: {}", u.hint),
            ));
        }
    }
    toml::from_str(text).map_err(|e| ConfigError::new(path, toml_error(text, &e)))
}

/// Formats a TOML error with its line, like toml's own message, but with secrets redacted
/// from the quoted line.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
    let secret = holds_secret(line);
    let shown = match line.split_once('=') {
        Some((key, _)) if secret => format!("{} = <redacted>", key.trim()),
        Some((key, value)) => format!("{} = {}", key.trim(), redact(key.trim(), value.trim())),
        None => line.to_string(),
    };
    let hint = suggestion(e.message())
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default();
    // serde quotes the value it could not take (`invalid type: integer `1234``).
    let message = match secret {
        true => without_quoted(e.message()),
        false => e.message().to_string(),
    };
    format!("line {line_no}: `{shown}`: {message}{hint}")
}

/// Whether a line sets a secret anywhere: `password = ...`, or inside an inline table
/// (`webServer = { user = "a", password = "..." }`).
fn holds_secret(line: &str) -> bool {
    line.split(['{', ',', '}'])
        .filter_map(|piece| piece.split_once('='))
        .any(|(key, _)| is_secret(key.trim().trim_matches('"')))
}

/// `message` with every backquoted value replaced by `<redacted>`.
fn without_quoted(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, piece)| if i % 2 == 1 { "<redacted>" } else { piece })
        .collect()
}

/// The known name closest to the unknown one in serde's "unknown field `x`, expected one of
/// `a`, `b`" (or "unknown variant") message, if one is close enough to be a misspelling.
fn suggestion(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, rest) = rest.split_once('`')?;
    let (_, expected) = rest.split_once("expected ")?;
    // The names are every other piece between backticks: "`a`, `b` or `c`".
    let names = expected.split('`').skip(1).step_by(2);
    closest(unknown, names)
}

/// The name in `names` nearest to `unknown` by edit distance (case, `_` and `-` ignored, so
/// frp's INI-era `remote_port` finds `remotePort`), if within a third of its length.
fn closest<'a>(unknown: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = fold(unknown);
    let allowed = (wanted.chars().count() / 3).clamp(1, 3);
    names
        .map(|name| (strsim::damerau_levenshtein(&wanted, &fold(name)), name))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// A value as it may be shown: secrets replaced, credentials in URLs removed.
fn redact(key: &str, value: &str) -> String {
    if is_secret(key) {
        return "<redacted>".into();
    }
    match (value.find("://"), value.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<redacted>{}", &value[..scheme + 3], &value[at..])
        }
        _ => value.to_string(),
    }
}

/// Names a refused key without echoing secrets: sections by name only, secret values redacted.
fn describe(key: &str, value: &toml::Value) -> String {
    match value {
        toml::Value::Table(_) => format!("the `[{key}]` section"),
        toml::Value::Array(items) if items.iter().any(toml::Value::is_table) => {
            format!("the `[[{key}]]` section")
        }
        v => format!("`{key} = {}`", redact(key, &v.to_string())),
    }
}

/// Whether a key holds a secret whose value must never be echoed into an error or a log.
fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    ["token", "password", "pwd", "secret"]
        .iter()
        .any(|w| last.contains(w))
}

/// Finds the first occurrence of a dotted key (with `[]` for arrays of tables), returning the
/// concrete key path and its value.
fn find_key(table: &toml::Table, dotted: &str) -> Option<(String, toml::Value)> {
    let mut segments = dotted.split('.');
    let first = segments.next()?;
    let rest: Vec<&str> = segments.collect();
    find_in(table, first, &rest, String::new())
}

fn find_in(
    table: &toml::Table,
    segment: &str,
    rest: &[&str],
    prefix: String,
) -> Option<(String, toml::Value)> {
    let (name, is_array) = match segment.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (segment, false),
    };
    let value = table.get(name)?;
    let here = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    };
    let Some((next, tail)) = rest.split_first() else {
        return Some((here, value.clone()));
    };
    if is_array {
        let items = value.as_array()?;
        items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_in(item.as_table()?, next, tail, format!("{here}[{i}]")))
    } else {
        find_in(value.as_table()?, next, tail, here)
    }
}

/// An error and its sources, `outer: inner: ...`, for messages that must say why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Resolves a path from a config file relative to the file's own directory.
pub fn resolve(config_path: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        return file.to_path_buf();
    }
    match config_path.parent() {
        Some(dir) => dir.join(file),
        None => file.to_path_buf(),
    }
}

pub use crate::sections::{QuicSection, TlsFiles, TlsSection};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::transport::QuicTuning;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)] // only its shape matters: what it accepts and refuses
    struct Demo {
        bind_port: u16,
        #[serde(default)]
        proxies: Vec<toml::Table>,
    }

    const NONE: &[Unsupported] = &[];

    #[test]
    fn typo_names_file_key_and_value() {
        let e = parse_toml::<Demo>(
            Path::new("x.toml"),
            "bindPort = 1\nbindPortt = 7000\n",
            NONE,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("x.toml: "), "{msg}");
        assert!(msg.contains("bindPortt"), "{msg}");
        assert!(msg.contains("7000"), "{msg}");
    }

    #[test]
    fn typo_suggests_the_closest_key() {
        let cases = [
            ("bindPortt = 7000\n", "bindPort"),
            ("bind_port = 7000\n", "bindPort"),
            ("BINDPORT = 7000\n", "bindPort"),
            ("[[proxies]]\nx = 1\n[[proxie]]\n", "proxies"),
        ];
        for (text, want) in cases {
            let msg = parse_toml::<Demo>(Path::new("x.toml"), text, NONE)
                .unwrap_err()
                .to_string();
            assert!(
                msg.ends_with(&format!("; did you mean `{want}`?")),
                "{text}: {msg}"
            );
        }
        let msg = parse_toml::<Demo>(Path::new("x.toml"), "colour = 1\n", NONE)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("did you mean"), "nothing close: {msg}");
    }

    #[test]
    fn suggestions_read_serdes_messages() {
        let field = "unknown field `remotPort`, expected one of `localPort`, `remotePort`";
        assert_eq!(suggestion(field), Some("remotePort"));
        let two = "unknown field `nme`, expected `name` or `type`";
        assert_eq!(suggestion(two), Some("name"));
        let variant = "unknown variant `tpc`, expected one of `tcp`, `http`, `https`";
        assert_eq!(suggestion(variant), Some("tcp"));
        assert_eq!(suggestion("unknown field `x`, there are no fields"), None);
        assert_eq!(suggestion("invalid type: string, expected u16"), None);
    }

    #[test]
    fn unsupported_key_is_named_with_hint() {
        let list = [Unsupported {
            key: "proxies[].customDomains",
            hint: "use type = tcp",
        }];
        let text = "bindPort = 1\n[[proxies]]\nname='a'\n[[proxies]]\ncustomDomains=['x']\n";
        let e = parse_toml::<Demo>(Path::new("c.toml"), text, &list).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("proxies[1].customDomains"), "{msg}");
        assert!(msg.contains("use type = tcp"), "{msg}");
    }

    #[test]
    fn nested_unsupported_key() {
        let list = [Unsupported {
            key: "auth.token",
            hint: "mutual TLS",
        }];
        let text = "bindPort = 1\n[auth]\ntoken = 'sekrit'\n";
        let e = parse_toml::<Demo>(Path::new("c.toml"), text, &list).unwrap_err();
        assert!(e.to_string().contains("auth.token"));
        assert!(!e.to_string().contains("sekrit"), "secret echoed: {e}");
    }

    #[test]
    fn refused_section_is_named_without_its_values() {
        let list = [Unsupported {
            key: "auth",
            hint: "mutual TLS",
        }];
        let text = "bindPort = 1\n[auth]\nmethod = 'token'\ntoken = 'sekrit'\n";
        let msg = parse_toml::<Demo>(Path::new("c.toml"), text, &list)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`[auth]` section"), "{msg}");
        assert!(!msg.contains("sekrit") && !msg.contains("method"), "{msg}");
    }

    #[test]
    fn secrets_in_unknown_keys_and_urls_are_redacted() {
        let e = parse_toml::<Demo>(
            Path::new("c.toml"),
            "bindPort = 1\ntoken = 'hunter2'\n",
            NONE,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("token") && e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let list = [Unsupported {
            key: "proxyURL",
            hint: "no",
        }];
        let text = "bindPort = 1\nproxyURL = 'http://bob:s3cret@proxy:8080'\n";
        let e = parse_toml::<Demo>(Path::new("c.toml"), text, &list)
            .unwrap_err()
            .to_string();
        assert!(e.contains("@proxy:8080") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn secrets_in_bad_values_and_inline_tables_are_redacted() {
        let e = parse_toml::<Demo>(Path::new("c.toml"), "token = 87654321\n", NONE)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token") && !e.contains("87654321"), "{e}");
        let inline = "bindPort = { user = \"a\", password = \"LeakMe123\" }\n";
        let e = parse_toml::<Demo>(Path::new("c.toml"), inline, NONE)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("LeakMe123"), "{e}");
    }

    #[test]
    fn bad_value_type_is_reported() {
        let e = parse_toml::<Demo>(Path::new("c.toml"), "bindPort = 'abc'\n", NONE).unwrap_err();
        assert!(e.to_string().contains("abc"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_next_to_the_config() {
        let p = resolve(Path::new("/etc/frp/frpc.toml"), Path::new("certs/a.crt"));
        assert_eq!(p, Path::new("/etc/frp/certs/a.crt"));
        let p = resolve(Path::new("/etc/frp/frpc.toml"), Path::new("/abs/a.crt"));
        assert_eq!(p, Path::new("/abs/a.crt"));
    }

    #[test]
    fn quic_tuning_bounds() {
        let d = QuicTuning::with_streams(10);
        let p = Path::new("c.toml");
        let s = QuicSection {
            keepalive_period: Some(30),
            max_idle_timeout: Some(30),
            max_incoming_streams: None,
            ..QuicSection::default()
        };
        assert!(s.tuning(p, d).is_err());
        let s = QuicSection {
            keepalive_period: Some(5),
            max_idle_timeout: Some(20),
            max_incoming_streams: Some(7),
            ..QuicSection::default()
        };
        let t = s.tuning(p, d).unwrap();
        assert_eq!(t.idle_timeout, Duration::from_secs(20));
        assert_eq!(t.max_incoming_streams, 7);
        assert_eq!(t.congestion, crate::congestion::CongestionControl::Bbr);
        let s: QuicSection = toml::from_str("congestionControl = \"cubic\"").unwrap();
        let t = s.tuning(p, d).unwrap();
        assert_eq!(t.congestion, crate::congestion::CongestionControl::Cubic);
    }
}
