#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::peer_identity;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

#[test]
fn init_writes_private_keys_0600_and_certificates_0644() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet is created.
    let dir = dir.path().join("pki");
    let paths = init_ca_dir(&dir, &names(), false).unwrap();
    assert_eq!(paths, CaPaths::in_dir(&dir));
    assert_eq!(mode(&paths.ca_key), 0o600);
    assert_eq!(mode(&paths.server_key), 0o600);
    assert_eq!(mode(&paths.ca_cert), 0o644);
    assert_eq!(mode(&paths.server_cert), 0o644);
    assert_eq!(load_certs(&paths.ca_cert).unwrap().len(), 1);
    assert_eq!(load_certs(&paths.server_cert).unwrap().len(), 1);
    load_key(&paths.ca_key).unwrap();
    load_key(&paths.server_key).unwrap();
    let ca = Ca::from_pem(
        &fs::read_to_string(&paths.ca_cert).unwrap(),
        &fs::read_to_string(&paths.ca_key).unwrap(),
    )
    .unwrap();
    assert_eq!(ca.cert_der(), load_certs(&paths.ca_cert).unwrap()[0]);
}

#[test]
fn init_twice_refuses_and_leaves_the_ca_alone_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let paths = init_ca_dir(dir.path(), &names(), false).unwrap();
    let files = [
        &paths.ca_cert,
        &paths.ca_key,
        &paths.server_cert,
        &paths.server_key,
    ];
    let before: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).unwrap()).collect();

    let err = init_ca_dir(dir.path(), &names(), false).unwrap_err();
    assert!(matches!(err, CertError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    let after: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).unwrap()).collect();
    assert_eq!(before, after);

    // Any one of the four files is enough to refuse, and nothing is written.
    fs::remove_file(&paths.ca_key).unwrap();
    assert!(init_ca_dir(dir.path(), &names(), false).is_err());
    assert!(!paths.ca_key.exists());
    assert_eq!(fs::read(&paths.ca_cert).unwrap(), before[0]);

    // Forcing replaces everything and keeps the key private even if it was loosened.
    fs::set_permissions(&paths.server_key, fs::Permissions::from_mode(0o644)).unwrap();
    init_ca_dir(dir.path(), &names(), true).unwrap();
    assert_ne!(fs::read(&paths.ca_cert).unwrap(), before[0]);
    assert_ne!(fs::read(&paths.server_key).unwrap(), before[3]);
    assert_eq!(mode(&paths.server_key), 0o600);
    assert_eq!(mode(&paths.ca_key), 0o600);
}

#[test]
fn issue_writes_a_client_certificate_from_the_ca_dir() {
    let dir = tempfile::tempdir().unwrap();
    init_ca_dir(dir.path(), &names(), false).unwrap();
    let (cert_path, key_path) = issue_client_in_dir(dir.path(), "alice", false).unwrap();
    assert_eq!(cert_path, dir.path().join("alice.crt"));
    assert_eq!(key_path, dir.path().join("alice.key"));
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&cert_path), 0o644);
    let certs = load_certs(&cert_path).unwrap();
    assert_eq!(peer_identity(&certs[0]).unwrap(), "alice");
    load_key(&key_path).unwrap();

    let before = fs::read(&key_path).unwrap();
    let err = issue_client_in_dir(dir.path(), "alice", false).unwrap_err();
    assert!(matches!(err, CertError::AlreadyExists { .. }), "{err}");
    assert_eq!(fs::read(&key_path).unwrap(), before);
    issue_client_in_dir(dir.path(), "alice", true).unwrap();
    assert_ne!(fs::read(&key_path).unwrap(), before);
    assert_eq!(mode(&key_path), 0o600);
}

#[test]
fn issue_refuses_bad_and_reserved_names() {
    let dir = tempfile::tempdir().unwrap();
    init_ca_dir(dir.path(), &names(), false).unwrap();
    let ca_key = fs::read(dir.path().join("ca.key")).unwrap();
    let long = "a".repeat(65);
    for name in [
        "", "../x", ".hidden", "ca", "server", "CA", "a b", "a/b", &long,
    ] {
        let result = issue_client_in_dir(dir.path(), name, true);
        assert!(
            matches!(result, Err(CertError::InvalidIdentity(_))),
            "{name:?}: {result:?}"
        );
    }
    assert_eq!(fs::read(dir.path().join("ca.key")).unwrap(), ca_key);
    assert!(!dir.path().parent().unwrap().join("x.crt").exists());
}

#[test]
fn issue_without_a_ca_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = issue_client_in_dir(dir.path(), "alice", false).unwrap_err();
    assert!(
        matches!(&err, CertError::Io { path, .. } if path.ends_with("ca.crt")),
        "{err}"
    );
    assert!(!dir.path().join("alice.key").exists());
}

#[test]
fn write_cert_and_key_refuses_existing_files_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let issued = Ca::generate("test CA")
        .unwrap()
        .issue_client("bob")
        .unwrap();
    let cert = dir.path().join("sub/bob.crt");
    let key = dir.path().join("sub/bob.key");
    fs::create_dir_all(dir.path().join("sub")).unwrap();
    fs::write(&key, "old").unwrap();
    let err = write_cert_and_key(&cert, &key, &issued, false).unwrap_err();
    assert!(matches!(err, CertError::AlreadyExists { ref path } if *path == key));
    assert!(!cert.exists());
    write_cert_and_key(&cert, &key, &issued, true).unwrap();
    assert_eq!(fs::read_to_string(&key).unwrap(), issued.key_pem());
    assert_eq!(fs::read_to_string(&cert).unwrap(), issued.cert_pem());
}

#[test]
fn loading_missing_empty_or_garbage_files_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    let garbage = dir.path().join("garbage.pem");
    let broken = dir.path().join("broken.pem");
    fs::write(&empty, "").unwrap();
    fs::write(&garbage, b"\x00\xffnot a pem file\n").unwrap();
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    assert!(matches!(load_certs(&missing), Err(CertError::Io { .. })));
    assert!(matches!(load_key(&missing), Err(CertError::Io { .. })));
    for path in [&empty, &garbage] {
        assert!(matches!(
            load_certs(path),
            Err(CertError::NoCertificate { .. })
        ));
        assert!(matches!(
            load_key(path),
            Err(CertError::NoPrivateKey { .. })
        ));
    }
    assert!(matches!(load_certs(&broken), Err(CertError::Pem { .. })));
}

#[test]
fn a_key_file_is_not_a_certificate_and_vice_versa() {
    let dir = tempfile::tempdir().unwrap();
    let paths = init_ca_dir(dir.path(), &names(), false).unwrap();
    assert!(matches!(
        load_certs(&paths.server_key),
        Err(CertError::NoCertificate { .. })
    ));
    assert!(matches!(
        load_key(&paths.server_cert),
        Err(CertError::NoPrivateKey { .. })
    ));
}
