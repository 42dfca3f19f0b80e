//! Client identities: a certificate's common name, compared without regard to case.
//!
//! `NARROW` and `narrow` are one client: they share one session slot, one set of ports and
//! names, and one `[[clients]]` entry. Every map keyed by identity uses [`canonical`]; logs
//! and messages keep the certificate's own spelling ([`ClientId`]'s `Display`).

use std::fmt;

/// The form an identity is compared and keyed in: ASCII lowercase (identities are ASCII).
pub fn canonical(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A connected client's identity: the certificate's spelling, and its [`canonical`] key.
#[derive(Clone, Debug)]
pub struct ClientId {
    name: String,
    key: String,
}

impl ClientId {
    /// The identity of a certificate whose common name is `name`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let key = canonical(&name);
        Self { name, key }
    }

    /// The name as the certificate spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key every lookup and comparison uses.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for ClientId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ClientId {}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_variants_are_one_identity_shown_as_spelled() {
        let (upper, lower) = (ClientId::new("NARROW"), ClientId::new("narrow"));
        assert_eq!(upper, lower);
        assert_eq!(upper.key(), "narrow");
        assert_eq!(upper.to_string(), "NARROW");
        assert_ne!(ClientId::new("narrow"), ClientId::new("narrow2"));
    }
}
