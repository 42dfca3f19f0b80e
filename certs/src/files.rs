//! Certificate and key files: the layout behind `frps ca ...`, writing with safe permissions,
//! and loading PEM files.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{validate_identity, Ca, CertError, Issued};

/// Subject common name of the CA made by [`init_ca_dir`].
pub const CA_COMMON_NAME: &str = "frp-quic CA";
/// File mode of private keys: readable by the owner only.
const KEY_MODE: u32 = 0o600;
/// File mode of certificates: they are public.
const CERT_MODE: u32 = 0o644;
/// Names that would make [`issue_client_in_dir`] overwrite the CA's own files.
const RESERVED_NAMES: [&str; 2] = ["ca", "server"];

/// The four files written by [`init_ca_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPaths {
    /// The CA certificate, `DIR/ca.crt`: every client and the server trust it.
    pub ca_cert: PathBuf,
    /// The CA private key, `DIR/ca.key`.
    pub ca_key: PathBuf,
    /// The server certificate, `DIR/server.crt`.
    pub server_cert: PathBuf,
    /// The server private key, `DIR/server.key`.
    pub server_key: PathBuf,
}

impl CaPaths {
    /// The paths of the CA and server files inside `dir`.
    pub fn in_dir(dir: &Path) -> CaPaths {
        CaPaths {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

/// `frps ca init`: writes DIR/ca.crt, DIR/ca.key, DIR/server.crt, DIR/server.key (server cert for `names`, CA CN "frp-quic CA"), refusing before writing anything if any of them exists unless `force`.
///
/// # Errors
///
/// [`CertError::AlreadyExists`] for an existing file without `force`, [`CertError::Io`] if the
/// directory or a file cannot be written, and the errors of [`Ca::issue_server`].
pub fn init_ca_dir(dir: &Path, names: &[String], force: bool) -> Result<CaPaths, CertError> {
    let paths = CaPaths::in_dir(dir);
    if !force {
        refuse_existing(&[
            &paths.ca_cert,
            &paths.ca_key,
            &paths.server_cert,
            &paths.server_key,
        ])?;
    }
    // Everything that can fail for a reason other than I/O happens before the first write.
    let ca = Ca::generate(CA_COMMON_NAME)?;
    let server = ca.issue_server(names)?;
    create_dir(dir)?;
    write_file(&paths.ca_key, ca.key_pem(), KEY_MODE, force)?;
    write_file(&paths.ca_cert, ca.cert_pem(), CERT_MODE, force)?;
    write_cert_and_key(&paths.server_cert, &paths.server_key, &server, force)?;
    Ok(paths)
}

/// `frps ca issue NAME`: loads DIR/ca.crt and DIR/ca.key and writes a client certificate for identity `name` to DIR/NAME.crt and DIR/NAME.key, returning those two paths.
///
/// # Errors
///
/// [`CertError::InvalidIdentity`] if `name` is not a valid identity, is "ca" or "server"
/// (whose files belong to the CA), or differs only in case from a client whose files are in
/// `dir` (even with `force`: frps ignores case, so both would be one client),
/// [`CertError::AlreadyExists`] for an existing file without `force`, and the errors of
/// loading the CA and writing the files.
pub fn issue_client_in_dir(
    dir: &Path,
    name: &str,
    force: bool,
) -> Result<(PathBuf, PathBuf), CertError> {
    validate_identity(name)?;
    // Case-insensitive, for file systems where "CA.crt" is "ca.crt".
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(CertError::InvalidIdentity(format!(
            "{name:?}: reserved for the CA's own files"
        )));
    }
    refuse_case_variant(dir, name)?;
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    if !force {
        refuse_existing(&[&cert_path, &key_path])?;
    }
    let paths = CaPaths::in_dir(dir);
    let ca = Ca::from_pem(&read_text(&paths.ca_cert)?, &read_text(&paths.ca_key)?)?;
    let issued = ca.issue_client(name)?;
    write_cert_and_key(&cert_path, &key_path, &issued, force)?;
    Ok((cert_path, key_path))
}

/// Writes `issued` as a PEM certificate (mode 0644) and a PEM private key (mode 0600), creating missing directories and replacing existing files only if `force`.
///
/// # Errors
///
/// [`CertError::AlreadyExists`] for an existing file without `force` (checked for both files
/// before writing either), [`CertError::Io`] if a directory or file cannot be written.
pub fn write_cert_and_key(
    cert_path: &Path,
    key_path: &Path,
    issued: &Issued,
    force: bool,
) -> Result<(), CertError> {
    if !force {
        refuse_existing(&[cert_path, key_path])?;
    }
    for path in [cert_path, key_path] {
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
    }
    write_file(key_path, issued.key_pem(), KEY_MODE, force)?;
    write_file(cert_path, issued.cert_pem(), CERT_MODE, force)
}

/// Loads every PEM certificate in the file at `path`, in order (leaf first for a chain).
///
/// # Errors
///
/// [`CertError::Io`] if the file cannot be read, [`CertError::Pem`] if a PEM section is
/// malformed, [`CertError::NoCertificate`] if the file holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = fs::read(path).map_err(|e| CertError::io(path, e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads the first PEM private key (PKCS#8, PKCS#1 or SEC1) in the file at `path`.
///
/// # Errors
///
/// [`CertError::Io`] if the file cannot be read, [`CertError::Pem`] if a PEM section is
/// malformed, [`CertError::NoPrivateKey`] if the file holds no private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = fs::read(path).map_err(|e| CertError::io(path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => CertError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => pem_error(path, &other),
    })
}

/// A [`CertError::Pem`] for the file at `path`.
fn pem_error(path: &Path, error: &pem::Error) -> CertError {
    CertError::Pem {
        what: path.display().to_string(),
        detail: error.to_string(),
    }
}

/// Reads a UTF-8 text file.
fn read_text(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|e| CertError::io(path, e))
}

/// Creates `dir` and its missing parents.
fn create_dir(dir: &Path) -> Result<(), CertError> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| CertError::io(dir, e))
}

/// Refuses `name` when `dir` holds the certificate or key of an identity that differs from it
/// only in case (a missing `dir` holds none).
fn refuse_case_variant(dir: &Path, name: &str) -> Result<(), CertError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CertError::io(dir, e)),
    };
    for file in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        let stem = file.strip_suffix(".crt").or(file.strip_suffix(".key"));
        if let Some(other) = stem.filter(|s| s.eq_ignore_ascii_case(name) && *s != name) {
            return Err(CertError::InvalidIdentity(format!(
                "{name:?}: {file} exists, and identities ignore case, so {name:?} would be the \
                 same client as {other:?}; reissue {other:?} (with --force) or pick another name"
            )));
        }
    }
    Ok(())
}

/// Fails with [`CertError::AlreadyExists`] for the first path that exists (a dangling symlink
/// counts: writing through it would create a file somewhere else).
fn refuse_existing(paths: &[&Path]) -> Result<(), CertError> {
    match paths.iter().find(|p| fs::symlink_metadata(p).is_ok()) {
        Some(path) => Err(CertError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` with permissions `mode`; without `force` the file must not
/// exist yet (checked atomically by the open), with `force` it is truncated.
fn write_file(path: &Path, contents: &str, mode: u32, force: bool) -> Result<(), CertError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    set_create_mode(&mut options, mode);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CertError::AlreadyExists {
            path: path.to_path_buf(),
        },
        _ => CertError::io(path, e),
    })?;
    // The mode given at creation is reduced by the umask and ignored for an existing file;
    // set it explicitly before any secret is written.
    set_mode(&file, mode).map_err(|e| CertError::io(path, e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CertError::io(path, e))
}

/// Makes `options` create a file with permission bits `mode` (Unix; elsewhere the
/// platform's defaults apply).
#[cfg(unix)]
pub fn set_create_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

/// Makes `options` create a file with permission bits `mode` (Unix; elsewhere the
/// platform's defaults apply).
#[cfg(not(unix))]
pub fn set_create_mode(_options: &mut OpenOptions, _mode: u32) {}

/// Gives `file` the permission bits `mode` (Unix; elsewhere nothing).
///
/// # Errors
/// When the permissions cannot be changed.
#[cfg(unix)]
pub fn set_mode(file: &fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// Gives `file` the permission bits `mode` (Unix; elsewhere nothing).
///
/// # Errors
/// When the permissions cannot be changed.
#[cfg(not(unix))]
pub fn set_mode(_file: &fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The permission bits of the file at `path` (Unix), or `None` when it does not exist or the
/// platform has none.
pub fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(all(test, unix))]
#[path = "files_tests.rs"]
mod tests;

/// Replaces `path` with `contents` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over it. The file keeps its permission bits (a new one gets
/// `mode`).
///
/// # Errors
/// When the directory cannot be written.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mode = mode_of(path).unwrap_or(mode);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        set_create_mode(&mut options, mode);
        let mut f = options.open(&tmp)?;
        set_mode(&f, mode)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // The rename is durable once the directory is; failing to sync it is not worth an error.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
