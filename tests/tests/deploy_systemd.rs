//! The systemd units under deploy/systemd: `systemd-analyze verify` (Debian's systemd;
//! `.ci/install-tools` installs it), the settings the issue asks for, and the binaries'
//! `Type=notify` readiness, received on a `NOTIFY_SOCKET` of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use frp_tests::kube::manifests::{tool, workspace_root};
use frp_tests::{free_tcp_port, free_udp_addr, within};
use tokio::net::{TcpStream, UnixDatagram};

fn unit(name: &str) -> String {
    let path = workspace_root().join("deploy/systemd").join(name);
    std::fs::read_to_string(path).expect("read unit")
}

/// The values of `key=` lines of a unit.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

/// `systemd-analyze verify` of `unit` whose ExecStart names `binary`; stderr if it fails.
fn verify(dir: &Path, name: &str, unit: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new(tool("systemd-analyze"))
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(stderr)
    }
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bin in ["frps", "frpc"] {
        let name = format!("{bin}.service");
        let shipped = unit(&name);
        // verify checks that ExecStart's program exists: point it at the binary just built.
        let built = frp_tests::procs::binary(bin);
        let installed = format!("/usr/local/bin/{bin}");
        let here = shipped.replace(&installed, &built.display().to_string());
        assert_ne!(here, shipped, "{name} runs {installed}");
        verify(dir.path(), &name, &here).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        // As shipped, the missing program is the only complaint.
        let e = verify(dir.path(), &name, &shipped).expect_err("not installed here");
        let complaints: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            complaints,
            [format!(
                "{name}: Command {installed} is not executable: No such file or directory"
            )]
        );

        assert_eq!(values(&shipped, "Type"), ["notify"], "{name}");
        assert_eq!(values(&shipped, "Restart"), ["always"]);
        assert_eq!(values(&shipped, "DynamicUser"), ["yes"]);
        assert_eq!(values(&shipped, "ProtectSystem"), ["strict"]);
        assert_eq!(values(&shipped, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
        let ambient = values(&shipped, "AmbientCapabilities");
        if bin == "frps" {
            assert_eq!(ambient, ["CAP_NET_BIND_SERVICE"]);
        } else {
            assert!(ambient.is_empty(), "frpc needs no capability");
            assert_eq!(values(&shipped, "CapabilityBoundingSet"), [""]);
        }
    }
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin -c config` with `NOTIFY_SOCKET` set to a socket of the test's; returns the
/// child and the socket.
fn start_notified(dir: &Path, bin: &str, config: &Path) -> (Child, UnixDatagram) {
    let socket = dir.join("notify.sock");
    let rx = UnixDatagram::bind(&socket).expect("bind notify socket");
    let child = Command::new(frp_tests::procs::binary(bin))
        .arg("-c")
        .arg(config)
        .env("NOTIFY_SOCKET", &socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    (Child(child), rx)
}

async fn next_notification(rx: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = within("sd_notify datagram", rx.recv(&mut buf))
        .await
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A certificate directory and its path.
fn certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    frp_certs::init_ca_dir(&certs, &["localhost".to_string()], false).expect("ca");
    frp_certs::issue_client_in_dir(&certs, "node1", false).expect("client");
    certs
}

#[tokio::test]
async fn frps_notifies_ready_once_its_listeners_are_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let (udp, https) = (free_udp_addr(), free_tcp_port());
    let config = dir.path().join("frps.toml");
    let toml = format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {}\nvhostHTTPSPort = {https}\n\n[transport.tls]\n\
         certFile = \"certs/server.crt\"\nkeyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n",
        udp.port()
    );
    std::fs::write(&config, toml).expect("config");
    let (_child, rx) = start_notified(dir.path(), "frps", &config);
    assert_eq!(next_notification(&rx).await, "READY=1\n");
    // Ready means bound: the vhost listener accepts at once.
    within("connect", TcpStream::connect(("127.0.0.1", https)))
        .await
        .expect("vhostHTTPSPort is bound when READY=1 arrives");
}

#[tokio::test]
async fn frpc_notifies_ready_while_its_server_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs(dir.path());
    let config = dir.path().join("frpc.toml");
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\n\n[transport.tls]\n\
         certFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\ntrustedCaFile = \"certs/ca.crt\"\n\
         serverName = \"localhost\"\n",
        free_udp_addr().port()
    );
    std::fs::write(&config, toml).expect("config");
    let (mut child, rx) = start_notified(dir.path(), "frpc", &config);
    assert_eq!(next_notification(&rx).await, "READY=1\n");
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "still running, reconnecting"
    );
}
