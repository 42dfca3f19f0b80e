//! The connection and registration limits of frps.toml (`maxPortsPerClient`,
//! `maxConnectionsPerProxy`, `maxConnectionsPerClient`, `maxConnectionsPerIP`,
//! `maxTakeoversPerMinute`, `maxPendingConnectionsPerProxy`), range-checked into
//! [`ServerSettings`].

use crate::config::{ServerFile, ServerSettings};

/// Applies the limits `file` sets to `s`.
///
/// # Errors
/// The key, its value and the range it must be in.
pub(crate) fn apply_limits(s: &mut ServerSettings, file: &ServerFile) -> Result<(), String> {
    let wire = frp_proto::MAX_PROXIES;
    match file.max_ports_per_client {
        None | Some(0) => {}
        Some(n) if n <= wire => s.max_proxies_per_client = n,
        Some(n) => return Err(format!("`maxPortsPerClient = {n}`: at most {wire}")),
    }
    match file.max_connections_per_proxy {
        None => {}
        Some(n) if (1..=1_000_000).contains(&n) => s.max_connections_per_proxy = n,
        Some(n) => {
            return Err(format!(
                "`maxConnectionsPerProxy = {n}`: must be between 1 and 1000000"
            ))
        }
    }
    apply_connection_limits(s, file)?;
    match file.max_takeovers_per_minute {
        None => {}
        Some(n) if (1..=1000).contains(&n) => s.max_takeovers_per_minute = n,
        Some(n) => {
            return Err(format!(
                "`maxTakeoversPerMinute = {n}`: must be between 1 and 1000"
            ))
        }
    }
    match file.max_pending_connections_per_proxy {
        None => {}
        Some(n) if (1..=65_536).contains(&n) => s.max_pending_per_proxy = n,
        Some(n) => {
            return Err(format!(
                "`maxPendingConnectionsPerProxy = {n}`: must be between 1 and 65536"
            ))
        }
    }
    Ok(())
}

/// `maxConnectionsPerClient` and `maxConnectionsPerIP` (after `maxPortsPerClient`).
fn apply_connection_limits(s: &mut ServerSettings, file: &ServerFile) -> Result<(), String> {
    // Each proxy's reservation is the budget over twice the proxies: at least one each.
    let least = 2 * s.max_proxies_per_client;
    match file.max_connections_per_client {
        None => {}
        Some(n) if (least..=1_000_000).contains(&n) => s.max_connections_per_client = n,
        Some(n) => {
            return Err(format!(
            "`maxConnectionsPerClient = {n}`: must be between {least} (twice maxPortsPerClient, \
                 so each proxy keeps a share) and 1000000"
        ))
        }
    }
    match file.max_connections_per_ip {
        None => {}
        Some(n) if (1..=1_000_000).contains(&n) => s.max_connections_per_ip = n,
        Some(n) => {
            return Err(format!(
                "`maxConnectionsPerIP = {n}`: must be between 1 and 1000000"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn limits(text: &str) -> Result<(usize, usize), String> {
        let file: ServerFile = toml::from_str(text).unwrap();
        let ca = frp_certs::Ca::generate("test CA").unwrap();
        let cert = ca.issue_server(&["localhost".to_string()]).unwrap();
        let tls = frp_certs::server_tls_config(
            vec![cert.cert_der()],
            cert.key_der(),
            vec![ca.cert_der()],
        );
        let mut s = ServerSettings::new(Arc::new(tls.unwrap()));
        apply_limits(&mut s, &file)?;
        Ok((s.max_connections_per_client, s.max_connections_per_ip))
    }

    #[test]
    fn connection_budget_and_per_source_cap() {
        assert_eq!(limits(""), Ok((8_000, 256)));
        let set = "maxConnectionsPerClient = 600\nmaxConnectionsPerIP = 10";
        assert_eq!(limits(set), Ok((600, 10)));
        let e = limits("maxConnectionsPerClient = 100").unwrap_err();
        assert!(
            e.contains("maxConnectionsPerClient = 100") && e.contains("512"),
            "{e}"
        );
        let fewer = "maxPortsPerClient = 10\nmaxConnectionsPerClient = 100";
        assert_eq!(
            limits(fewer),
            Ok((100, 256)),
            "twice maxPortsPerClient is enough"
        );
        let e = limits("maxConnectionsPerIP = 0").unwrap_err();
        assert!(e.contains("maxConnectionsPerIP = 0"), "{e}");
    }
}
