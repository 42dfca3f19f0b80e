//! The `frps` binary as an operator runs it: `ca init`, `ca issue`, `--check` and config errors.
//! Nothing here opens a socket.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Sorted file names in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `frps ca init --dir D --name localhost --name 127.0.0.1 [extra]`.
fn ca_init(dir: &Path, extra: &[&str]) -> Output {
    let names = ["--name", "localhost", "--name", "127.0.0.1"];
    let mut args = vec![OsStr::new("ca"), OsStr::new("init"), OsStr::new("--dir")];
    args.push(dir.as_os_str());
    args.extend(names.iter().chain(extra).map(OsStr::new));
    frps(args)
}

/// `frps ca issue NAME --dir D [extra]`.
fn ca_issue(dir: &Path, name: &str, extra: &[&str]) -> Output {
    let mut args = vec![OsStr::new("ca"), OsStr::new("issue"), OsStr::new(name)];
    args.extend([OsStr::new("--dir"), dir.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    frps(args)
}

/// A temp dir with `certs/` made by `frps ca init`.
fn with_ca() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let certs = tmp.path().join("certs");
    let out = ca_init(&certs, &[]);
    assert!(out.status.success(), "ca init: {}", stderr(&out));
    (tmp, certs)
}

/// A server config using the certificates in `certs/`, followed by `extra`.
fn server_config(extra: &str) -> String {
    format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = 7000\nallowPorts = [{{ start = 6000, end = 6100 }}]\n\
         {extra}\n[transport.tls]\ncertFile = \"certs/server.crt\"\nkeyFile = \"certs/server.key\"\n\
         trustedCaFile = \"certs/ca.crt\"\n"
    )
}

/// Writes `text` to `dir/name` and runs `frps --check -c` on it.
fn check(dir: &Path, name: &str, text: &str) -> Output {
    let path = dir.join(name);
    fs::write(&path, text).expect("write config");
    frps([OsStr::new("--check"), OsStr::new("-c"), path.as_os_str()])
}

fn assert_config_error(out: &Output, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    err
}

#[test]
fn ca_init_writes_private_keys_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("certs");
    let out = ca_init(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        listing(&dir),
        ["ca.crt", "ca.key", "server.crt", "server.key"]
    );
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert_eq!(mode(&dir.join("server.key")), 0o600);
    assert!(stdout(&out).contains("ca.key"), "{}", stdout(&out));

    let key = fs::read(dir.join("ca.key")).expect("ca.key");
    let again = ca_init(&dir, &[]);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(err.contains("already exists"), "{err}");
    assert!(
        err.contains(&dir.join("ca.crt").display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("ca.key")).expect("ca.key"), key);

    let forced = ca_init(&dir, &["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(fs::read(dir.join("ca.key")).expect("ca.key"), key);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
}

#[test]
fn ca_issue_writes_a_client_certificate_once() {
    let (_tmp, certs) = with_ca();
    let out = ca_issue(&certs, "node1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(certs.join("node1.crt").is_file());
    assert_eq!(mode(&certs.join("node1.key")), 0o600);

    let key = fs::read(certs.join("node1.key")).expect("node1.key");
    let again = ca_issue(&certs, "node1", &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("node1.crt"), "{}", stderr(&again));
    assert_eq!(fs::read(certs.join("node1.key")).expect("node1.key"), key);

    let forced = ca_issue(&certs, "node1", &["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(fs::read(certs.join("node1.key")).expect("node1.key"), key);
}

#[test]
fn ca_issue_refuses_bad_and_reserved_names_without_writing() {
    let (tmp, certs) = with_ca();
    let before = (listing(tmp.path()), listing(&certs));
    let ca_crt = fs::read(certs.join("ca.crt")).expect("ca.crt");
    for name in ["../evil", "ca", "server", "a/b", ".hidden"] {
        let out = ca_issue(&certs, name, &[]);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            stderr(&out).contains("invalid identity"),
            "{name}: {}",
            stderr(&out)
        );
        assert_eq!((listing(tmp.path()), listing(&certs)), before, "{name}");
    }
    assert_eq!(fs::read(certs.join("ca.crt")).expect("ca.crt"), ca_crt);
}

#[test]
fn ca_issue_refuses_a_name_that_differs_only_in_case() {
    let (tmp, certs) = with_ca();
    let out = ca_issue(&certs, "narrow", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = (listing(tmp.path()), listing(&certs));
    let key = fs::read(certs.join("narrow.key")).expect("narrow.key");
    for extra in [&[][..], &["--force"][..]] {
        let out = ca_issue(&certs, "NARROW", extra);
        assert!(!out.status.success(), "NARROW {extra:?} was accepted");
        let err = stderr(&out);
        for needle in ["\"NARROW\"", "narrow.crt", "ignore case"] {
            assert!(err.contains(needle), "{extra:?}: lacks {needle}: {err}");
        }
        assert_eq!((listing(tmp.path()), listing(&certs)), before, "{extra:?}");
    }
    assert_eq!(fs::read(certs.join("narrow.key")).expect("key"), key);
    let out = ca_issue(&certs, "narrow2", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn ca_issue_without_a_ca_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = ca_issue(tmp.path(), "node1", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ca.crt"), "{}", stderr(&out));
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn check_accepts_a_good_config() {
    let (tmp, _certs) = with_ca();
    let text = server_config("[[clients]]\nname = \"node1\"\nallowPorts = [{ single = 6022 }]");
    let out = check(tmp.path(), "good.toml", &text);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok"), "{}", stdout(&out));
}

#[test]
fn clients_differing_only_in_case_are_a_config_error() {
    let (tmp, _certs) = with_ca();
    let entries = "[[clients]]\nname = \"narrow\"\n[[clients]]\nname = \"NARROW\"";
    let out = check(tmp.path(), "case.toml", &server_config(entries));
    assert_config_error(
        &out,
        &[
            "case.toml",
            "\"NARROW\"",
            "\"narrow\"",
            "differ only in case",
        ],
    );
}

#[test]
fn takeover_limit_is_checked() {
    let (tmp, _certs) = with_ca();
    let out = check(
        tmp.path(),
        "ok.toml",
        &server_config("maxTakeoversPerMinute = 5"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = check(
        tmp.path(),
        "zero.toml",
        &server_config("maxTakeoversPerMinute = 0"),
    );
    assert_config_error(&out, &["zero.toml", "maxTakeoversPerMinute = 0"]);
}

#[test]
fn typo_key_names_file_key_and_value() {
    let (tmp, _certs) = with_ca();
    let path = tmp.path().join("bad.toml");
    let text = server_config("").replace("bindPort = 7000", "bindPortt = 7000");
    fs::write(&path, text).expect("write");
    let out = frps([OsStr::new("-c"), path.as_os_str()]);
    assert_config_error(&out, &[&path.display().to_string(), "bindPortt", "7000"]);
}

#[test]
fn unsupported_auth_is_named_and_token_not_printed() {
    let (tmp, _certs) = with_ca();
    let text = format!(
        "{}\n[auth]\ntoken = \"abc-secret-123\"\n",
        server_config("")
    );
    let out = check(tmp.path(), "auth.toml", &text);
    let err = assert_config_error(&out, &["auth", "not supported", "frps ca issue"]);
    assert!(!err.contains("abc-secret-123"), "token printed: {err}");
}

#[test]
fn reversed_port_range_is_refused() {
    let (tmp, _certs) = with_ca();
    let text = server_config("").replace("start = 6000, end = 6100", "start = 10, end = 5");
    let out = check(tmp.path(), "ports.toml", &text);
    assert_config_error(&out, &["allowPorts"]);
}

#[test]
fn unsupported_nested_transport_key_is_named() {
    let (tmp, _certs) = with_ca();
    let text = server_config("").replace(
        "[transport.tls]",
        "[transport]\ntcpMux = true\n[transport.tls]",
    );
    let out = check(tmp.path(), "mux.toml", &text);
    assert_config_error(&out, &["transport.tcpMux", "not supported"]);
}

#[test]
fn missing_config_file_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("nope.toml");
    let out = frps([OsStr::new("--check"), OsStr::new("-c"), path.as_os_str()]);
    assert_config_error(&out, &["nope.toml"]);
}

#[test]
fn missing_certificate_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = check(tmp.path(), "nocerts.toml", &server_config(""));
    assert_config_error(&out, &["nocerts.toml", "transport.tls"]);
}

#[test]
fn help_mentions_the_main_options() {
    let out = frps(["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for word in ["--config", "--check", "ca", "--log-format"] {
        assert!(help.contains(word), "frps --help lacks {word}: {help}");
    }
    let out = frps(["ca", "init", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for word in ["--dir", "--name", "--force"] {
        assert!(
            help.contains(word),
            "frps ca init --help lacks {word}: {help}"
        );
    }
}
