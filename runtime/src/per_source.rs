//! Connections open at once from one source address: frps's public ports and vhost ports,
//! and the admin servers, count them the same way, so a single address (or IPv6 site) cannot
//! take every connection a listener serves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The address a per-source limit counts: an IPv4 address, or an IPv6 /64 (one host usually
/// has a whole /64 to pick addresses from). An IPv6 connection also counts against its /48
/// (one site usually has a /48, so 65,536 /64s), which gets [`SITE_FACTOR`] times the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
    V6Site(u64),
}

/// How many per-IP quotas one IPv6 /48 gets in all.
const SITE_FACTOR: usize = 4;

/// The sources a connection from `ip` counts against, with how many quotas each gets.
fn sources(ip: IpAddr) -> Vec<(Source, usize)> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => vec![(Source::V4(u32::from(v4)), 1)],
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            vec![
                (Source::V6((bits >> 64) as u64), 1),
                (Source::V6Site((bits >> 80) as u64), SITE_FACTOR),
            ]
        }
    }
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The total limit is reached (`vhostMaxConnections`, for instance).
    Total,
    /// The per-source limit is reached (`vhostMaxConnectionsPerIP`).
    PerSource,
}

/// Connections open at once, in total and per source (the vhost ports, the public tcp ports,
/// the admin API).
#[derive(Clone, Debug)]
pub struct Admission {
    total: Arc<Semaphore>,
    per_source: Arc<Mutex<HashMap<Source, usize>>>,
    max_per_source: usize,
}

impl Admission {
    /// At most `total` connections, `per_source` of them from one source.
    pub fn new(total: usize, per_source: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_source: Arc::default(),
            max_per_source: per_source,
        }
    }

    /// A slot for a connection from `ip`, released when the [`Slot`] is dropped.
    ///
    /// # Errors
    /// Which limit is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let sources = sources(ip);
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refused::Total)?;
        let mut counts = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        let full = |(source, quotas): &(Source, usize)| {
            counts.get(source).copied().unwrap_or(0) >= self.max_per_source.saturating_mul(*quotas)
        };
        if sources.iter().any(full) {
            return Err(Refused::PerSource);
        }
        for (source, _) in &sources {
            *counts.entry(*source).or_insert(0) += 1;
        }
        Ok(Slot {
            _total: permit,
            sources: sources.into_iter().map(|(s, _)| s).collect(),
            counts: Arc::clone(&self.per_source),
        })
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    _total: OwnedSemaphorePermit,
    sources: Vec<Source>,
    counts: Arc<Mutex<HashMap<Source, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for source in &self.sources {
            if let Some(n) = counts.get_mut(source) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(source);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_in_total_and_per_source() {
        let a = Admission::new(3, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = a.admit(ip("192.0.2.1")).unwrap();
        let _two = a.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(a.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerSource);
        let _v6 = a.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(a.admit(ip("198.51.100.1")).unwrap_err(), Refused::Total);
        drop(one);
        let _again = a.admit(ip("192.0.2.1")).unwrap();
        let b = Admission::new(10, 1);
        let _x = b.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(
            b.admit(ip("2001:db8::ffff")).unwrap_err(),
            Refused::PerSource,
            "one /64 is one source"
        );
        assert!(b.admit(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn one_ipv6_site_gets_four_quotas_in_all() {
        let a = Admission::new(100, 2);
        let ip = |s: String| s.parse::<IpAddr>().unwrap();
        let held: Vec<Slot> = (0..8)
            .map(|i| a.admit(ip(format!("2001:db8:0:{i}::1"))).unwrap())
            .collect();
        assert_eq!(
            a.admit(ip("2001:db8:0:99::1".into())).unwrap_err(),
            Refused::PerSource,
            "the /48 is full with 4 x 2 connections"
        );
        assert!(a.admit(ip("2001:db8:1::1".into())).is_ok(), "another /48");
        drop(held);
        assert!(a.admit(ip("2001:db8:0:99::1".into())).is_ok());
        assert!(a.per_source.lock().unwrap().len() <= 4, "counts are freed");
    }
}
