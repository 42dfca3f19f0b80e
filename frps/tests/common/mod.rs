//! What the config tests share: a directory with certificates, and config files written in it.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A temp dir with `certs/` holding a CA, the server certificate (for `localhost`) and
/// node1's.
pub fn with_certs() -> TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    frp_certs::init_ca_dir(&certs, &["localhost".to_string()], false).expect("ca init");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("ca issue");
    tmp
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write config");
    path
}
