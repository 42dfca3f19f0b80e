//! `frps ca revoke NAME|FILE`: appends a certificate to the revocation list.
//!
//! The line written is the certificate's SHA-256 fingerprint (it names exactly one
//! certificate, whoever issued it) with a comment giving its subject, serial and the date:
//! `3f9a...e1  # CN=node1, serial 5d1c...07, revoked 2026-12-02`. The list is replaced
//! atomically (a temporary file in the same directory, then a rename), keeps its file mode
//! (0644 for a new list), and is never given an entry twice. A list that does not parse is
//! left alone with an error naming the line, since frps would refuse it anyway. frps applies
//! the new list on SIGHUP.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rustls::pki_types::CertificateDer;

use crate::revocation::Revocations;

/// File name of the list `frps ca revoke` writes in the certificate directory by default.
pub const DEFAULT_LIST: &str = "revoked.txt";

/// Mode of a new list: readable by everyone, as the certificates it names are public.
#[cfg(unix)]
const LIST_MODE: u32 = 0o644;

/// What `frps ca revoke` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The list written (or found to hold the certificate already).
    pub list: PathBuf,
    /// The certificate's subject, `CN=node1`.
    pub subject: String,
    /// The certificate's SHA-256 fingerprint, lowercase hex.
    pub fingerprint: String,
    /// Whether the list already held the certificate, so nothing was written.
    pub already: bool,
}

/// The certificate file `target` names: a path when it holds a `/` or ends in `.crt` or
/// `.pem`, otherwise the client name `target` in `dir` (`dir/target.crt`, as `ca issue`
/// wrote it).
pub fn certificate_path(target: &str, dir: &Path) -> PathBuf {
    let is_path = target.contains('/')
        || target.contains(std::path::MAIN_SEPARATOR)
        || target.ends_with(".crt")
        || target.ends_with(".pem");
    if is_path {
        PathBuf::from(target)
    } else {
        dir.join(format!("{target}.crt"))
    }
}

/// Adds the certificate in `cert_file` (its first certificate: the leaf of a chain) to the
/// list at `list`, creating the list if it does not exist.
///
/// # Errors
/// When the certificate cannot be read or is a CA certificate, when the existing list cannot
/// be read or does not parse, or when the new list cannot be written.
pub fn revoke(cert_file: &Path, list: &Path) -> anyhow::Result<Revoked> {
    let certs = frp_certs::load_certs(cert_file)?;
    let cert = certs.first().context("no certificate")?;
    revoke_certificate(cert, &cert_file.display().to_string(), list)
}

/// Adds `cert` (`what` names it in messages) to the list at `list`, as [`revoke`] does.
///
/// # Errors
/// As [`revoke`].
pub fn revoke_certificate(
    cert: &CertificateDer<'_>,
    what: &str,
    list: &Path,
) -> anyhow::Result<Revoked> {
    if frp_certs::is_ca(cert)? {
        bail!(
            "{what} is a CA certificate: revoking it here would not stop its clients; make a \
             new CA with `frps ca init --force` instead"
        );
    }
    let (list, old, current) = read_list(list)?;
    let revoked = Revoked {
        subject: frp_certs::subject(cert)?,
        fingerprint: frp_certs::fingerprint(cert),
        already: current.is_revoked(cert),
        list,
    };
    if revoked.already {
        return Ok(revoked);
    }
    let text = appended(old.as_deref(), cert, &revoked)?;
    replace_checked(&revoked.list, &text)?;
    Ok(revoked)
}

/// Adds one entry as the list's format takes it (a serial or a SHA-256 fingerprint, see
/// [`crate::revocation`]) to the list at `list`; returns the entry as the list now reads it
/// (`serial=...` or `sha256=...`) and whether it was there already (nothing written).
///
/// # Errors
/// When `entry` is not one entry, or the list cannot be read, parsed or written.
pub fn revoke_entry(entry: &str, list: &Path) -> anyhow::Result<(String, bool)> {
    let entry = entry.trim();
    if entry.contains(['\n', '\r', '#']) {
        bail!("an entry is one serial or fingerprint, without line breaks or comments");
    }
    let parsed = Revocations::parse(entry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = match parsed.entries().as_slice() {
        [one] => one.clone(),
        _ => bail!("expected a serial or a SHA-256 fingerprint"),
    };
    let (list, old, current) = read_list(list)?;
    if current.includes(&parsed) {
        return Ok((name, true));
    }
    let today = time::OffsetDateTime::now_utc().date();
    let text = with_line(old.as_deref(), &format!("{name}  # revoked {today}"));
    replace_checked(&list, &text)?;
    Ok((name, false))
}

/// The list at `path` (links resolved): its text, if it exists, and its entries.
fn read_list(path: &Path) -> anyhow::Result<(PathBuf, Option<String>, Revocations)> {
    let list = real_path(path)?;
    let old = match fs::read_to_string(&list) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", list.display())),
    };
    let current = Revocations::parse(old.as_deref().unwrap_or_default()).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; fix the list first (frps refuses a list that does not parse)",
            list.display()
        )
    })?;
    Ok((list, old, current))
}

/// `old` (or a header for a new list) followed by the entry for `cert`.
fn appended(
    old: Option<&str>,
    cert: &CertificateDer<'_>,
    entry: &Revoked,
) -> anyhow::Result<String> {
    let serial = frp_certs::serial_hex(cert)?;
    let today = time::OffsetDateTime::now_utc().date();
    let line = format!(
        "{}  # {}, serial {serial}, revoked {today}",
        entry.fingerprint, entry.subject
    );
    Ok(with_line(old, &line))
}

/// `old` (or a header for a new list) followed by `line`.
fn with_line(old: Option<&str>, line: &str) -> String {
    let mut text = match old {
        Some(old) => old.to_string(),
        None => "# Certificates frps refuses: one SHA-256 fingerprint or serial per line.\n\
                 # Written by `frps ca revoke` and the admin API; frps rereads it on SIGHUP.\n"
            .to_string(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    text
}

/// `path` with symbolic links resolved when it exists, so a linked list stays linked.
fn real_path(path: &Path) -> anyhow::Result<PathBuf> {
    match fs::canonicalize(path) {
        Ok(real) => Ok(real),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(e) => Err(e).with_context(|| format!("resolving {}", path.display())),
    }
}

/// [`replace`], after checking that `text` parses as a list: nothing that frps would refuse
/// to start with is ever written.
fn replace_checked(path: &Path, text: &str) -> anyhow::Result<()> {
    Revocations::parse(text)
        .map_err(|e| anyhow::anyhow!("the new list would not parse ({e}); nothing written"))?;
    replace(path, text)
}

/// Replaces the file at `path` with `text` in one rename, keeping its mode.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".revoked-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let written = tmp
        .write_all(text.as_bytes())
        .and_then(|()| keep_mode(tmp.as_file(), path))
        .and_then(|()| tmp.as_file().sync_all());
    written.with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Gives `file` the mode of the file at `like`, or 0644 when there is none.
#[cfg(unix)]
fn keep_mode(file: &fs::File, like: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(like).map_or(LIST_MODE, |m| m.permissions().mode() & 0o7777);
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn keep_mode(_file: &fs::File, _like: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        let dir = Path::new("/etc/frp/certs");
        assert_eq!(
            certificate_path("node1", dir),
            Path::new("/etc/frp/certs/node1.crt")
        );
        assert_eq!(certificate_path("n.crt", dir), Path::new("n.crt"));
        assert_eq!(certificate_path("./n", dir), Path::new("./n"));
        assert_eq!(certificate_path("a/b.pem", dir), Path::new("a/b.pem"));
    }
}
