//! Validated proxy names.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::MAX_NAME_LEN;

/// Validated proxy name: 1..=MAX_NAME_LEN chars, ASCII alphanumerics plus '-', '_', '.'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyName(String);

/// Why a string is not a valid [`ProxyName`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    #[error("proxy name is empty")]
    Empty,
    /// The name has more than `max` characters.
    #[error("proxy name is {len} characters long, at most {max} are allowed")]
    TooLong {
        /// Length of the rejected name, in characters.
        len: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// The name contains a character other than ASCII letters, digits, '-', '_' and '.'.
    #[error("proxy name contains {0:?}; only ascii letters, digits, '-', '_' and '.' are allowed")]
    InvalidChar(char),
}

impl ProxyName {
    /// Validates `s` as a proxy name.
    ///
    /// # Errors
    ///
    /// Returns a [`NameError`] if `s` is empty, longer than [`MAX_NAME_LEN`] or contains a
    /// character outside ASCII letters, digits, '-', '_' and '.'.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        let len = s.chars().count();
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                len,
                max: MAX_NAME_LEN,
            });
        }
        if let Some(c) = s.chars().find(|&c| !is_name_char(c)) {
            return Err(NameError::InvalidChar(c));
        }
        Ok(Self(s))
    }

    /// Returns the name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the name as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl fmt::Display for ProxyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProxyName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for ProxyName {
    type Error = NameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for ProxyName {
    type Error = NameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ProxyName> for String {
    fn from(name: ProxyName) -> Self {
        name.0
    }
}

impl AsRef<str> for ProxyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ProxyName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashMap;

    #[test]
    fn accepts_valid_names() {
        for s in [
            "a",
            "ssh",
            "web-1",
            "my_app.v2",
            "A.B-C_D",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            let name = ProxyName::new(s).unwrap();
            assert_eq!(name.as_str(), s);
            assert_eq!(name.to_string(), s);
            assert_eq!(s.parse::<ProxyName>().unwrap(), name);
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(ProxyName::new(""), Err(NameError::Empty));
    }

    #[test]
    fn rejects_too_long() {
        let err = ProxyName::new("x".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert_eq!(
            err,
            NameError::TooLong {
                len: MAX_NAME_LEN + 1,
                max: MAX_NAME_LEN
            }
        );
    }

    #[test]
    fn rejects_invalid_chars() {
        for (s, c) in [
            ("a b", ' '),
            ("a/b", '/'),
            ("caf\u{e9}", '\u{e9}'),
            ("x\0", '\0'),
            ("a:1", ':'),
            ("\u{1F600}", '\u{1F600}'),
        ] {
            assert_eq!(ProxyName::new(s), Err(NameError::InvalidChar(c)), "{s:?}");
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(NameError::Empty.to_string(), "proxy name is empty");
        let msg = NameError::InvalidChar('/').to_string();
        assert!(msg.starts_with("proxy name contains '/'"), "{msg}");
    }

    #[test]
    fn borrows_as_str_in_maps() {
        let mut map = HashMap::new();
        map.insert(ProxyName::new("ssh").unwrap(), 1);
        assert_eq!(map.get("ssh"), Some(&1));
    }
}
