//! Request paths as frps routes them: one canonical form, so the location frps matches (and
//! the policy it applies, such as basic auth) is the one the local service serves.
//!
//! A backend normalizes a path before it serves it (`/./admin`, `//admin`, `/%61dmin` and
//! `/api/../admin` all reach `/admin` in most servers). If frps matched the raw path, each of
//! those would fall through to a less protected location. So frps canonicalizes the path
//! ([`canonical`]), matches locations against it with path parameters removed
//! ([`match_form`]), and forwards the canonical path. Forms that servers disagree on are
//! refused rather than guessed ([`PathError`]): encoded `/` and `\`, a backslash, a NUL, a
//! malformed escape, and `.`/`..` segments with parameters (`/..;/admin`, which Tomcat reads
//! as `/../admin`).
//!
//! Canonical form, like nginx's: escapes of unreserved characters decoded (`%61` is `a`,
//! `%2E` is `.`), other escapes kept with uppercase hex, empty segments collapsed (`//` is
//! `/`), dot segments removed as in RFC 3986 section 5.2.4 (never above the root), a trailing
//! `/` kept.

/// Why a path is refused (answered with `400`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (an asterisk-form or empty target).
    #[error("the path does not start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    /// `%2F` or `%5C`: servers disagree on whether it separates segments.
    #[error("the path has an encoded '/' or '\\'")]
    EncodedSeparator,
    /// A literal `\`, which some servers treat as `/`.
    #[error("the path has a backslash")]
    Backslash,
    /// `%00`.
    #[error("the path has an encoded NUL")]
    Nul,
    /// A `.` or `..` segment with parameters (`..;x`), read as `..` by some servers only.
    #[error("the path has a dot segment with parameters")]
    DotParams,
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes the escapes of unreserved characters and uppercases the others.
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            return Err(PathError::Backslash);
        }
        if b != b'%' {
            // `raw` is a str and every multi-byte character is copied whole below.
            let ch = raw[i..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let (hi, lo) = match (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (Some(hi), Some(lo)) => (hi, lo),
            _ => return Err(PathError::BadEscape),
        };
        let v = hi << 4 | lo;
        match v {
            0 => return Err(PathError::Nul),
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            v if unreserved(v) => out.push(char::from(v)),
            v => out.push_str(&format!("%{v:02X}")),
        }
        i += 3;
    }
    Ok(out)
}

/// The canonical form of a request path (without its query), or why it is refused.
///
/// # Errors
/// [`PathError`] for a path servers would read differently.
pub fn canonical(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode_unreserved(raw)?;
    let mut out: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in decoded.split('/').skip(1) {
        let bare = seg.split(';').next().unwrap_or_default();
        if (bare == "." || bare == "..") && seg != bare {
            return Err(PathError::DotParams);
        }
        trailing = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if trailing && !out.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// A canonical path as locations are matched against it: each segment's parameters
/// (`;jsessionid=...`) removed, as Tomcat, Jetty and Spring do before they route.
pub fn match_form(canonical: &str) -> String {
    let segments: Vec<&str> = canonical
        .split('/')
        .skip(1)
        .map(|s| s.split(';').next().unwrap_or_default())
        .collect();
    let trailing = canonical.len() > 1 && canonical.ends_with('/');
    let kept: Vec<&str> = segments.into_iter().filter(|s| !s.is_empty()).collect();
    let mut path = format!("/{}", kept.join("/"));
    if trailing && !kept.is_empty() {
        path.push('/');
    }
    path
}

/// The routing key of a location: its canonical form without a trailing `/` (`/api/` and
/// `/api` are the same location), `/` for the root.
///
/// # Errors
/// Why the location cannot be matched: a refused form, or a `;` (matching ignores
/// parameters, so it could never match).
pub fn location_key(loc: &str) -> Result<String, String> {
    if loc.contains(';') {
        return Err(format!("location {loc:?} must not contain ';'"));
    }
    let c = canonical(loc).map_err(|e| format!("location {loc:?}: {e}"))?;
    Ok(match c.trim_end_matches('/') {
        "" => "/".to_string(),
        s => s.to_string(),
    })
}

/// Whether `location` (a [`location_key`]) covers `path` (a [`match_form`]), on a segment
/// boundary: `/api` covers `/api`, `/api/` and `/api/v1`, not `/apix`.
pub fn location_covers(location: &str, path: &str) -> bool {
    location == "/"
        || path
            .strip_prefix(location)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_spellings_become_one() {
        for raw in [
            "/admin/",
            "/./admin/",
            "//admin/",
            "/%61dmin/",
            "/%2e/admin/",
            "/api/../admin/",
            "/api/%2E%2E/admin/",
            "/../admin/.",
            "/admin//",
        ] {
            assert_eq!(canonical(raw).unwrap(), "/admin/", "{raw}");
        }
        assert_eq!(canonical("/").unwrap(), "/");
        assert_eq!(canonical("/a/b/..").unwrap(), "/a/");
        assert_eq!(canonical("/..").unwrap(), "/");
        assert_eq!(
            canonical("/a%3f%7e").unwrap(),
            "/a%3F~",
            "other escapes are kept, in uppercase"
        );
        assert_eq!(
            canonical("/a;b=1/c").unwrap(),
            "/a;b=1/c",
            "parameters are forwarded"
        );
        assert_eq!(canonical("/caf\u{e9}").unwrap(), "/caf\u{e9}");
    }

    #[test]
    fn ambiguous_forms_are_refused() {
        let cases = [
            ("*", PathError::NotAbsolute),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5Cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::Nul),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/public/..;/admin", PathError::DotParams),
            ("/.;x/admin", PathError::DotParams),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn matching_ignores_parameters() {
        assert_eq!(match_form("/admin;x"), "/admin");
        assert_eq!(match_form("/api;v=1/admin/"), "/api/admin/");
        assert_eq!(match_form("/;x"), "/");
        assert!(location_covers(
            "/admin",
            &match_form("/admin;jsessionid=1")
        ));
        assert!(location_covers("/api", "/api"));
        assert!(location_covers("/api", "/api/"));
        assert!(location_covers("/api", "/api/v1"));
        assert!(!location_covers("/api", "/apix"));
        assert!(!location_covers("/api", "/"));
        assert!(location_covers("/", "/anything"));
    }

    #[test]
    fn locations_have_one_key() {
        assert_eq!(location_key("/api/").unwrap(), "/api");
        assert_eq!(location_key("/api").unwrap(), "/api");
        assert_eq!(location_key("/").unwrap(), "/");
        assert_eq!(location_key("//").unwrap(), "/");
        assert_eq!(location_key("/%61pi").unwrap(), "/api");
        assert!(location_key("/a;b").unwrap_err().contains("';'"));
        assert!(location_key("/a%2fb").unwrap_err().contains("encoded"));
    }
}
