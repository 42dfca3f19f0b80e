//! Which ports each client identity may publish: deny by default.
//!
//! A port is allowed when it is inside the global `allowPorts` **and**, when the identity has a
//! `[[clients]]` entry with its own `allowPorts`, inside that list too. With no global
//! `allowPorts` nothing may be published.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use serde::Deserialize;

use crate::identity::canonical;

/// The refusal when the server's `allowPorts` is empty.
pub const NO_PORTS: &str = "the server allows no ports: its allowPorts is empty";

/// One element of `allowPorts`: `{ start = 6000, end = 6100 }` or `{ single = 6200 }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortRangeEntry {
    /// First port of a range.
    pub start: Option<u16>,
    /// Last port of a range (inclusive).
    pub end: Option<u16>,
    /// A single port.
    pub single: Option<u16>,
}

impl std::fmt::Display for PortRangeEntry {
    /// Shows the entry as it was written in TOML.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = [
            ("start", self.start),
            ("end", self.end),
            ("single", self.single),
        ];
        let set: Vec<String> = fields
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
            .collect();
        write!(f, "{{ {} }}", set.join(", "))
    }
}

/// A validated, non-empty set of ports (never containing 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<RangeInclusive<u16>>,
}

impl PortSet {
    /// Builds a set from config entries.
    ///
    /// # Errors
    /// Describes the first entry that is not exactly a `single` or a `start..=end` with
    /// `1 <= start <= end`.
    pub fn from_entries(entries: &[PortRangeEntry]) -> Result<Self, String> {
        let ranges = entries
            .iter()
            .map(entry_range)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { ranges })
    }

    /// A set from ranges given in code (tests, built-in defaults).
    pub fn from_ranges(ranges: impl IntoIterator<Item = RangeInclusive<u16>>) -> Self {
        Self {
            ranges: ranges.into_iter().filter(|r| *r.start() >= 1).collect(),
        }
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|r| r.contains(&port))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every port in the set, in configuration order.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|r| r.clone())
    }
}

impl std::fmt::Display for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|r| match r.start() == r.end() {
                true => r.start().to_string(),
                false => format!("{}-{}", r.start(), r.end()),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn entry_range(e: &PortRangeEntry) -> Result<RangeInclusive<u16>, String> {
    match (e.start, e.end, e.single) {
        (None, None, Some(p)) if p >= 1 => Ok(p..=p),
        (Some(s), Some(t), None) if s >= 1 && s <= t => Ok(s..=t),
        _ => Err(format!(
            "invalid allowPorts entry {e}: use {{ start = A, end = B }} with 1 <= A <= B, or {{ single = P }} with P >= 1"
        )),
    }
}

/// The server's authorization policy for ports.
#[derive(Clone, Debug, Default)]
pub struct PortPolicy {
    /// Global `allowPorts`; empty means nothing may be published.
    pub global: PortSet,
    /// Per-identity `allowPorts` from `[[clients]]` entries that have one, keyed by the
    /// [`canonical`] (lowercase) identity.
    pub per_client: HashMap<String, PortSet>,
}

impl PortPolicy {
    /// Checks whether `identity` may publish `port`, with a reason when it may not.
    ///
    /// # Errors
    /// A sentence a client operator can act on.
    pub fn check(&self, identity: &str, port: u16) -> Result<(), String> {
        if self.global.is_empty() {
            return Err(NO_PORTS.into());
        }
        if !self.global.contains(port) {
            return Err(format!(
                "port {port} is outside the server's allowPorts ({})",
                self.global
            ));
        }
        match self.own(identity) {
            Some(own) if !own.contains(port) => Err(format!(
                "port {port} is outside the allowPorts of client '{identity}' ({own})"
            )),
            _ => Ok(()),
        }
    }

    /// The ports `identity` may publish, in order, for picking one when the client asks for 0.
    pub fn candidates(&self, identity: &str) -> impl Iterator<Item = u16> + '_ {
        let own = self.own(identity);
        self.global
            .ports()
            .filter(move |p| own.is_none_or(|own| own.contains(*p)))
    }

    /// The `[[clients]]` narrowing of `identity`, in any case.
    fn own(&self, identity: &str) -> Option<&PortSet> {
        self.per_client.get(&canonical(identity))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy() -> PortPolicy {
        let mut per_client = HashMap::new();
        per_client.insert("alice".to_string(), PortSet::from_ranges([6010..=6012]));
        PortPolicy {
            global: PortSet::from_ranges([6000..=6100, 7000..=7000]),
            per_client,
        }
    }

    #[test]
    fn deny_by_default_with_no_allow_ports() {
        let p = PortPolicy::default();
        assert!(p
            .check("bob", 6000)
            .unwrap_err()
            .contains("allows no ports"));
    }

    #[test]
    fn global_and_client_lists_both_apply() {
        let p = policy();
        assert!(p.check("bob", 6050).is_ok());
        assert!(p.check("bob", 7000).is_ok());
        assert!(p
            .check("bob", 6500)
            .unwrap_err()
            .contains("outside the server's"));
        assert!(p.check("alice", 6011).is_ok());
        assert!(p
            .check("alice", 6050)
            .unwrap_err()
            .contains("client 'alice'"));
        let e = p.check("ALICE", 6050).unwrap_err();
        assert!(
            e.contains("client 'ALICE'"),
            "case variants are narrowed too: {e}"
        );
        assert_eq!(p.candidates("Alice").count(), 3);
    }

    #[test]
    fn candidates_respect_both_lists() {
        let p = policy();
        assert_eq!(
            p.candidates("alice").collect::<Vec<_>>(),
            [6010, 6011, 6012]
        );
        assert_eq!(p.candidates("bob").count(), 102);
    }

    #[test]
    fn entries_parse_and_bad_ones_are_refused() {
        let ok = [
            PortRangeEntry {
                start: Some(1),
                end: Some(2),
                single: None,
            },
            PortRangeEntry {
                single: Some(9),
                ..Default::default()
            },
        ];
        assert_eq!(PortSet::from_entries(&ok).unwrap().to_string(), "1-2,9");
        for bad in [
            PortRangeEntry {
                start: Some(5),
                end: Some(4),
                single: None,
            },
            PortRangeEntry {
                start: Some(5),
                end: None,
                single: None,
            },
            PortRangeEntry {
                start: Some(1),
                end: Some(2),
                single: Some(3),
            },
            PortRangeEntry {
                single: Some(0),
                ..Default::default()
            },
            PortRangeEntry::default(),
        ] {
            assert!(PortSet::from_entries(&[bad]).is_err());
        }
    }
}
