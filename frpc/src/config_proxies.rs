//! `[[proxies]]` entries validated into [`LocalProxy`]s: names, types, local targets, the
//! vhost part (in `config_http.rs`), and the check that they fit in one `Hello`.

use std::time::Duration;

use frp_proto::{encode_control, AddProxies, ControlMsg, Hello, ProxyKind, ProxyName, ProxySpec};

use crate::config::{LocalProxy, ProxyEntry};

/// The `[[proxies]]` of a file: those to publish, and the names of the disabled ones.
#[derive(Debug)]
pub(crate) struct Proxies {
    pub(crate) enabled: Vec<LocalProxy>,
    pub(crate) disabled: Vec<LocalProxy>,
}

/// Validates every entry; disabled ones are checked but only their names kept.
///
/// # Errors
/// Names the entry and key that is wrong.
pub(crate) fn proxies(entries: &[ProxyEntry]) -> Result<Proxies, String> {
    let mut out: Vec<LocalProxy> = Vec::new();
    let mut disabled: Vec<LocalProxy> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("proxies[{i}]");
        let proxy = proxy(&at, e)?;
        if out.iter().chain(&disabled).any(|p| p.name == proxy.name) {
            return Err(format!(
                "{at}.name = {:?}: another proxy has that name",
                e.name
            ));
        }
        match e.enabled {
            Some(false) => disabled.push(proxy),
            _ => out.push(proxy),
        }
    }
    if out.len() > frp_proto::MAX_PROXIES {
        return Err(format!(
            "{} proxies; at most {} are supported",
            out.len(),
            frp_proto::MAX_PROXIES
        ));
    }
    fits_one_hello(&out)?;
    Ok(Proxies {
        enabled: out,
        disabled,
    })
}

fn proxy(at: &str, e: &ProxyEntry) -> Result<LocalProxy, String> {
    let name =
        ProxyName::new(e.name.clone()).map_err(|err| format!("{at}.name = {:?}: {err}", e.name))?;
    let kind = match e.kind.as_str() {
        "tcp" => ProxyKind::Tcp,
        "http" => ProxyKind::Http,
        "https" => ProxyKind::Https,
        "udp" | "tcpmux" | "stcp" | "xtcp" | "sudp" => {
            return Err(format!(
                "{at}.type = {:?} is not supported yet; use \"tcp\", \"http\" or \"https\"",
                e.kind
            ))
        }
        other => {
            return Err(format!(
                "{at}.type = {other:?} is not a proxy type; use \"tcp\", \"http\" or \"https\""
            ))
        }
    };
    if e.local_port == 0 {
        return Err(format!(
            "{at}.localPort = 0: must be a port between 1 and 65535"
        ));
    }
    let local_host = e.local_ip.clone().unwrap_or_else(|| "127.0.0.1".into());
    if local_host.is_empty() {
        return Err(format!("{at}.localIP is empty"));
    }
    if let (true, Some(port)) = (kind.is_vhost(), e.remote_port) {
        return Err(format!(
            "{at}.remotePort = {port}: a type \"{kind}\" proxy is served on the server's vhost port; remove the key"
        ));
    }
    let vhost = crate::config_http::vhost_spec(at, kind, e)?;
    Ok(LocalProxy {
        name,
        kind,
        local_host,
        local_port: e.local_port,
        remote_port: e.remote_port.unwrap_or(0),
        vhost,
        idle_timeout: idle_timeout(at, kind, e.idle_timeout)?,
    })
}

/// Most seconds `idleTimeout` may be: a week.
const MAX_IDLE_TIMEOUT: u64 = 604_800;

/// `idleTimeout`: tcp and https proxies only (http ones have the server's vhost timeouts).
fn idle_timeout(at: &str, kind: ProxyKind, secs: Option<u64>) -> Result<Option<Duration>, String> {
    let Some(secs) = secs else { return Ok(None) };
    if kind == ProxyKind::Http {
        return Err(format!(
            "{at}.idleTimeout: an http proxy's connections are timed by the server (vhostUpgradeIdleTimeout); remove the key"
        ));
    }
    if !(1..=MAX_IDLE_TIMEOUT).contains(&secs) {
        return Err(format!(
            "{at}.idleTimeout = {secs}: must be between 1 and {MAX_IDLE_TIMEOUT} seconds (remove the key for no limit)"
        ));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// The proxies as a session registers them: the http/https ones (for `AddProxies`) and the
/// tcp ones (for the `Hello`).
pub(crate) fn registration(proxies: &[LocalProxy]) -> (Vec<ProxySpec>, Vec<ProxySpec>) {
    proxies
        .iter()
        .map(LocalProxy::spec)
        .partition(|p| p.kind.is_vhost())
}

/// The tcp proxies travel in the `Hello`, the http/https ones in one `AddProxies`; each is one
/// control frame (64 KiB): refuse at load time a set of proxies whose domains, headers and
/// locations do not fit, rather than failing at every connect.
fn fits_one_hello(proxies: &[LocalProxy]) -> Result<(), String> {
    let (vhost, tcp) = registration(proxies);
    let hello = ControlMsg::Hello(Hello {
        minor: frp_proto::PROTOCOL_MINOR,
        agent: String::new(),
        proxies: tcp,
    });
    let add = ControlMsg::AddProxies(AddProxies { proxies: vhost });
    let mut buf = bytes::BytesMut::new();
    encode_control(&hello, &mut buf)
        .and_then(|()| encode_control(&add, &mut buf))
        .map_err(|e| {
            format!("the proxies do not fit in one registration ({e}); use fewer domains, locations or headers")
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(kind: &str, extra: &str) -> ProxyEntry {
        toml::from_str(&format!(
            "name = \"p\"\ntype = \"{kind}\"\nlocalPort = 22\ncustomDomains = [\"a.example.com\"]\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn idle_timeout_for_tcp_and_https_only() {
        let tcp = toml::from_str::<ProxyEntry>(
            "name = \"p\"\ntype = \"tcp\"\nlocalPort = 22\nidleTimeout = 300",
        )
        .unwrap();
        let p = proxy("proxies[0]", &tcp).unwrap();
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(300)));
        let p = proxy("proxies[0]", &entry("https", "idleTimeout = 5")).unwrap();
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            proxy("proxies[0]", &entry("https", ""))
                .unwrap()
                .idle_timeout,
            None
        );
        let e = proxy("proxies[0]", &entry("http", "idleTimeout = 5")).unwrap_err();
        assert!(
            e.starts_with("proxies[0].idleTimeout") && e.contains("http"),
            "{e}"
        );
        let e = proxy("proxies[0]", &entry("https", "idleTimeout = 0")).unwrap_err();
        assert!(e.contains("idleTimeout = 0"), "{e}");
    }
}
