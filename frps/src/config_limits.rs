//! The connection and registration limits of frps.toml (`maxPortsPerClient`,
//! `maxConnectionsPerProxy`, `maxConnectionsPerClient`, `maxConnectionsPerIP`,
//! `maxTakeoversPerMinute`, `maxPendingConnectionsPerProxy`), range-checked into
//! [`ServerSettings`].

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::config::{ServerFile, ServerSettings};

/// Sets `*into` to `value` when the file gives one inside `range`.
///
/// # Errors
/// `` `key = value`: must be between A and B `` for a value outside it.
pub(crate) fn in_range<T: PartialOrd + Copy + Display>(
    key: &str,
    value: Option<T>,
    range: RangeInclusive<T>,
    into: &mut T,
) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) if range.contains(&v) => {
            *into = v;
            Ok(())
        }
        Some(v) => Err(format!(
            "`{key} = {v}`: must be between {} and {}",
            range.start(),
            range.end()
        )),
    }
}

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
    let per_proxy = file.max_connections_per_proxy;
    let into = &mut s.max_connections_per_proxy;
    in_range("maxConnectionsPerProxy", per_proxy, 1..=1_000_000, into)?;
    apply_connection_limits(s, file)?;
    let takeovers = file.max_takeovers_per_minute;
    let into = &mut s.max_takeovers_per_minute;
    in_range("maxTakeoversPerMinute", takeovers, 1..=1000, into)?;
    let pending = file.max_pending_connections_per_proxy;
    let into = &mut s.max_pending_per_proxy;
    in_range("maxPendingConnectionsPerProxy", pending, 1..=65_536, into)
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
    let per_ip = file.max_connections_per_ip;
    in_range(
        "maxConnectionsPerIP",
        per_ip,
        1..=1_000_000,
        &mut s.max_connections_per_ip,
    )
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
