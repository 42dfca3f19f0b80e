//! `frps ca revoke` and the revocation list as an operator writes it: the binary appends,
//! never twice, atomically and keeping the file's mode; `frps --check` reads what OpenSSL
//! prints and names the line it cannot read. Nothing here opens a socket.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use frps::revocation::Revocations;
use tempfile::TempDir;

/// Exit status of a configuration error (`EX_CONFIG`).
const EXIT_CONFIG: i32 = 64;

fn frps<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_frps"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run frps")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A temp dir with `certs/` holding a CA, the server's and node1's and node2's certificates.
fn with_certs() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    let names = ["localhost".to_string()];
    frp_certs::init_ca_dir(&certs, &names, false).expect("ca init");
    for name in ["node1", "node2"] {
        frp_certs::issue_client_in_dir(&certs, name, false).expect("ca issue");
    }
    (tmp, certs)
}

/// `frps ca revoke TARGET --dir DIR [extra]`, which must succeed; returns its stdout.
fn revoke(dir: &Path, target: &str, extra: &[&str]) -> String {
    let out = revoke_output(dir, target, extra);
    assert!(out.status.success(), "ca revoke: {}", text(&out.stderr));
    text(&out.stdout)
}

fn revoke_output(dir: &Path, target: &str, extra: &[&str]) -> Output {
    let mut args = vec![OsStr::new("ca"), OsStr::new("revoke"), OsStr::new(target)];
    args.extend([OsStr::new("--dir"), dir.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    frps(args)
}

fn cert(path: &Path) -> rustls::pki_types::CertificateDer<'static> {
    frp_certs::load_certs(path).expect("cert").remove(0)
}

/// `frps --check` on a server config in `dir` whose revocationFile is `list`.
fn check_with_list(dir: &Path, list: &str) -> Output {
    let config = dir.join("frps.toml");
    let toml = format!(
        "revocationFile = \"{list}\"\n\n[transport.tls]\ncertFile = \"certs/server.crt\"\n\
         keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n"
    );
    fs::write(&config, toml).expect("write config");
    frps([OsStr::new("--check"), OsStr::new("-c"), config.as_os_str()])
}

#[test]
fn revoke_by_name_appends_once_and_frps_accepts_the_list() {
    let (tmp, certs) = with_certs();
    let list = certs.join("revoked.txt");
    let out = revoke(&certs, "node1", &[]);
    let node1 = cert(&certs.join("node1.crt"));
    let fingerprint = frp_certs::fingerprint(&node1);
    assert!(
        out.contains("CN=node1") && out.contains(&fingerprint),
        "{out}"
    );
    assert!(
        out.contains(&list.display().to_string()) && out.contains("SIGHUP"),
        "{out}"
    );
    assert_eq!(mode(&list), 0o644);
    let written = fs::read_to_string(&list).expect("list");
    let entry = written.lines().last().expect("an entry");
    assert!(entry.starts_with(&fingerprint), "{written}");
    assert!(entry.contains("# CN=node1, serial "), "{written}");

    let again = revoke(&certs, "node1", &[]);
    assert!(again.contains("already"), "{again}");
    assert_eq!(fs::read_to_string(&list).expect("list"), written);

    let parsed = Revocations::load(&list).expect("frps reads its own list");
    assert!(parsed.is_revoked(&node1));
    assert!(!parsed.is_revoked(&cert(&certs.join("node2.crt"))));
    let out = check_with_list(tmp.path(), "certs/revoked.txt");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn revoke_by_file_keeps_the_lists_content_mode_and_link() {
    let (tmp, certs) = with_certs();
    let real = tmp.path().join("lists/revoked.list");
    fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
    fs::write(&real, "serial=0A  # an old laptop").expect("write list");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).expect("chmod");
    let link = tmp.path().join("revoked.txt");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    let node2 = certs.join("node2.crt");
    let link_arg = link.to_str().expect("utf-8 path");
    revoke(
        &certs,
        node2.to_str().expect("utf-8 path"),
        &["--file", link_arg],
    );
    assert!(fs::symlink_metadata(&link).expect("link").is_symlink());
    assert_eq!(mode(&real), 0o640);
    let written = fs::read_to_string(&real).expect("list");
    assert!(
        written.starts_with("serial=0A  # an old laptop\n"),
        "{written}"
    );
    let parsed = Revocations::load(&real).expect("list parses");
    assert_eq!(parsed.len(), 2);
    assert!(parsed.is_revoked(&cert(&node2)));
    let leftovers: Vec<_> = fs::read_dir(real.parent().expect("parent"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
}

#[test]
fn revoke_refuses_a_broken_list_a_ca_and_a_missing_certificate() {
    let (_tmp, certs) = with_certs();
    let list = certs.join("revoked.txt");
    let broken = "serial=0A\nSHA1 Fingerprint=9A:7E\n";
    fs::write(&list, broken).expect("write list");
    let out = revoke_output(&certs, "node1", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("revoked.txt") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&list).expect("list"), broken);

    fs::remove_file(&list).expect("rm");
    let out = revoke_output(&certs, "ca", &[]);
    assert!(
        text(&out.stderr).contains("is a CA certificate"),
        "{}",
        text(&out.stderr)
    );
    let out = revoke_output(&certs, "nobody", &[]);
    assert!(
        text(&out.stderr).contains("nobody.crt"),
        "{}",
        text(&out.stderr)
    );
    assert!(!list.exists(), "nothing written on failure");
}

#[test]
fn check_names_the_file_and_line_of_a_list_that_does_not_parse() {
    let (tmp, certs) = with_certs();
    fs::write(certs.join("revoked.txt"), "# ok\nserial=0A\nserial=node1\n").expect("write");
    let out = check_with_list(tmp.path(), "certs/revoked.txt");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(
        err.contains("revocationFile") && err.contains("revoked.txt") && err.contains("line 3"),
        "{err}"
    );
}

/// Runs the real `openssl` on `args`; fails the test clearly when it is not installed.
fn openssl(args: &[&OsStr]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the openssl command line tool (apt install openssl): {e}")
        });
    assert!(out.status.success(), "openssl: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn what_openssl_prints_is_a_valid_list() {
    let (tmp, certs) = with_certs();
    let node1 = certs.join("node1.crt");
    let node2 = certs.join("node2.crt");
    let serial = openssl(&[
        "x509".as_ref(),
        "-noout".as_ref(),
        "-serial".as_ref(),
        "-in".as_ref(),
        node1.as_os_str(),
    ]);
    let fingerprint = openssl(&[
        "x509".as_ref(),
        "-noout".as_ref(),
        "-fingerprint".as_ref(),
        "-sha256".as_ref(),
        "-in".as_ref(),
        node2.as_os_str(),
    ]);
    assert!(serial.starts_with("serial="), "{serial}");
    assert!(
        fingerprint
            .to_ascii_lowercase()
            .starts_with("sha256 fingerprint="),
        "{fingerprint}"
    );
    let list = certs.join("revoked.txt");
    fs::write(&list, format!("{serial}{fingerprint}")).expect("write list");
    let out = check_with_list(tmp.path(), "certs/revoked.txt");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parsed = Revocations::load(&list).expect("parses");
    assert!(parsed.is_revoked(&cert(&node1)), "by serial");
    assert!(parsed.is_revoked(&cert(&node2)), "by fingerprint");
    assert!(!parsed.is_revoked(&cert(&certs.join("server.crt"))));
}
