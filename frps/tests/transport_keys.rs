//! The TCP transport's keys: `transport.tcpPort` in frps.toml (default: bindPort's number, a
//! taken default only warned about, an explicit one required), and `transport.protocol` and
//! `transport.tcpPort` in frpc.toml.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use frpc::config_transport::Protocol;
mod common;

use common::{with_certs, write};

const SERVER_TLS: &str = "[transport.tls]\ncertFile = \"certs/server.crt\"\n\
                          keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n";
const CLIENT_TLS: &str = "[transport.tls]\ncertFile = \"certs/node1.crt\"\n\
                          keyFile = \"certs/node1.key\"\ntrustedCaFile = \"certs/ca.crt\"\n";

fn server(dir: &Path, top: &str) -> Result<frps::ServerSettings, String> {
    let path = write(dir, "frps.toml", &format!("{top}\n{SERVER_TLS}"));
    frps::ServerSettings::from_file(&path).map_err(|e| e.to_string())
}

fn client(dir: &Path, top: &str) -> Result<frpc::ClientSettings, String> {
    let path = write(dir, "frpc.toml", &format!("{top}\n{CLIENT_TLS}"));
    frpc::ClientSettings::from_file(&path).map_err(|e| e.to_string())
}

#[test]
fn frps_takes_tunnels_on_bind_ports_number_unless_told_otherwise() {
    let tmp = with_certs();
    let s = server(tmp.path(), "bindAddr = \"127.0.0.1\"\nbindPort = 7100").expect("ok");
    let want = SocketAddr::from((Ipv4Addr::LOCALHOST, 7100));
    assert_eq!((s.tcp_bind, s.tcp_required), (Some(want), false));
    let s = server(tmp.path(), "bindPort = 7100\ntransport.tcpPort = 7200").expect("ok");
    assert_eq!(s.tcp_bind.map(|a| a.port()), Some(7200));
    assert!(s.tcp_required, "an explicit port must bind");
    let s = server(tmp.path(), "transport.tcpPort = 0").expect("ok");
    assert_eq!(s.tcp_bind, None);
}

#[tokio::test]
async fn a_taken_default_port_is_only_warned_about_and_a_taken_explicit_one_stops_frps() {
    let tmp = with_certs();
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut s = server(tmp.path(), "bindAddr = \"127.0.0.1\"").expect("ok");
    s.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    s.tcp_bind = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let defaulted = frps::Server::bind(s.clone()).expect("runs without the tcp transport");
    assert_eq!(defaulted.tcp_addr(), None);
    drop(defaulted);
    s.tcp_required = true;
    let err = frps::Server::bind(s).expect_err("explicit port taken");
    assert!(format!("{err:#}").contains("transport.tcpPort"), "{err:#}");
}

#[test]
fn frpc_dials_auto_by_default_and_names_frps_transports_it_lacks() {
    let tmp = with_certs();
    let c = client(tmp.path(), "serverPort = 7100").expect("ok");
    assert_eq!((c.protocol, c.tcp_port()), (Protocol::Auto, 7100));
    let c = client(
        tmp.path(),
        "transport.protocol = \"tcp\"\ntransport.tcpPort = 443",
    )
    .expect("ok");
    assert_eq!((c.protocol, c.tcp_port()), (Protocol::Tcp, 443));
    let err = client(tmp.path(), "transport.protocol = \"websocket\"").expect_err("refused");
    assert!(
        err.contains("websocket transport is not supported"),
        "{err}"
    );
    let err = client(tmp.path(), "transport.tcpPort = 0").expect_err("refused");
    assert!(err.contains("transport.tcpPort = 0"), "{err}");
}
