//! The location guard: a password is never weaker than that of any location a spelling of
//! the path reaches in a lenient service.
//!
//! frps routes by the canonical path ([`path`](super::path)), case-sensitively, but the
//! service behind it may read more spellings as one path than frps routes as one. Each
//! equivalence that mainstream servers apply (Java/Spring, Go, .NET/IIS, Node/Express,
//! Python, nginx; the full table with the server behind each row is
//! `docs/path-equivalences.md`) is either refused by [`path`](super::path) (`400`) or folded
//! here into a *guard form*, and frps asks for the password of every location whose guard key
//! ([`guard_key`]) covers one of the request's guard forms ([`guard_forms`]):
//!
//! | equivalence | who applies it | here |
//! |---|---|---|
//! | ASCII case (`/ADMIN`) | IIS/NTFS, ASP.NET Core routing, Express (default), Spring `setCaseSensitive(false)` | folded: lowercase |
//! | Unicode case to ASCII (`İ`, `ı`, `ſ`, `K`, `ß`, `ﬀ`) | Java `equalsIgnoreCase`, Go `strings.EqualFold`, .NET `OrdinalIgnoreCase`, Python `casefold` | folded: full case mapping |
//! | compatibility forms (`ａｄｍｉｎ`, `ⓐ`, `ｱ`) and accents (`ā`) | NFKC normalization, Windows "best fit" ANSI conversion | folded: NFKD, combining marks dropped |
//! | trailing dots and spaces (`/admin.`, `/admin%20`) | Windows path normalization (IIS) | folded: trimmed |
//! | surrounding whitespace (`%20admin`, `%C2%A0`, `%E3%80%80`) | Java `trim()` (Spring's `trimTokens`), .NET `Trim()`, Go `TrimSpace`, Python `strip()` | folded: trimmed (Unicode `White_Space`, U+200B, U+FEFF) |
//! | a second decoding (`%2561`, `%2520`) | IIS double decoding, services that decode again | folded: a second form decoded twice |
//! | bytes that are not UTF-8 (`%DF`, `%A0`) | Tomcat before 8 (ISO-8859-1), WSGI `PATH_INFO` | folded: read as Latin-1 |
//! | `;` after decoding (`/admin%3Bx`) | servers that decode before removing path parameters | folded: segment ends there |
//! | `?`, `#` after decoding (`/admin%3Fx`) | a service or proxy that decodes, then splits the query | folded: path ends there |
//! | NTFS streams (`/admin::$DATA`) | IIS static files on NTFS | folded: segment ends at `:` |
//! | a segment that becomes `.` or `..` (`..%20`, `..%3B`, `．．`) | any of the above, then dot-segment removal | refused ([`PathError::LooseDotSegment`]) |
//!
//! Folding only ever adds a password (a form that reaches a stricter location makes the
//! request need its credentials too); it never changes which proxy serves the request or
//! the path the service gets. Windows 8.3 short names (`ADMINI~1`) cannot be computed from a
//! path and are not folded.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::path::PathError;

/// The guard forms of a [`match_form`](super::path::match_form) path: the path decoded once
/// and decoded twice, each folded (see the module docs). Compare them with [`covers`].
///
/// # Errors
/// [`PathError::LooseDotSegment`] when a form has a segment that folds to dots only.
pub fn guard_forms(match_path: &str) -> Result<Vec<String>, PathError> {
    let once = decoded(match_path, 1);
    let mut forms = vec![skeleton(&once)?];
    if match_path.contains("%25") {
        let twice = skeleton(&decoded(match_path, 2))?;
        if twice != forms[0] {
            forms.push(twice);
        }
    }
    Ok(forms)
}

/// The guard key of a [`location_key`](super::path::location_key): its path decoded once and
/// folded, as requests' guard forms are.
pub fn guard_key(location_key: &str) -> String {
    skeleton(&decoded(location_key, 1)).unwrap_or_else(|_| location_key.to_ascii_lowercase())
}

/// Whether a location's [`guard_key`] covers a request's guard `form`, on a segment boundary.
pub fn covers(guard_key: &str, form: &str) -> bool {
    guard_key == "/"
        || form
            .strip_prefix(guard_key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `path` with its escapes decoded `times` times, read as UTF-8 where it is UTF-8 and as
/// Latin-1 elsewhere.
fn decoded(path: &str, times: usize) -> String {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..times {
        bytes = percent_decoded(&bytes);
    }
    utf8_or_latin1(&bytes)
}

fn percent_decoded(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let pair =
            (bytes.get(i + 1).copied().and_then(hex)).zip(bytes.get(i + 2).copied().and_then(hex));
        match (b, pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn utf8_or_latin1(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                return out;
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let bad_len = e.error_len().unwrap_or(bad.len());
                out.extend(bad.iter().take(bad_len).map(|&b| char::from(b)));
                bytes = bad.get(bad_len..).unwrap_or_default();
            }
        }
    }
}

/// Whitespace some server trims: Java's `trim()` (everything up to U+0020), Unicode
/// `White_Space` (.NET `Trim()`, Go `TrimSpace`, Python `strip()`), and U+180E, U+200B,
/// U+FEFF (whitespace to older Unicode versions and .NET Framework's `Trim()`).
fn is_trimmed(c: char) -> bool {
    c <= ' ' || c.is_whitespace() || matches!(c, '\u{180e}' | '\u{200b}' | '\u{feff}')
}

/// `c` folded: compatibility decomposition without combining marks, then full case folding
/// (lowercase of the uppercase of the lowercase, so `ſ`, `ı`, `ß` and `K` reach ASCII).
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        return out.push(c.to_ascii_lowercase());
    }
    decompose_compatible(c, |d| {
        let folded = d.to_lowercase().flat_map(char::to_uppercase);
        for f in folded.flat_map(char::to_lowercase) {
            if !is_combining_mark(f) {
                out.push(f);
            }
        }
    });
}

/// The folded form of a decoded path (see the module docs).
fn skeleton(path: &str) -> Result<String, PathError> {
    let mut folded = String::with_capacity(path.len());
    for c in path.chars() {
        fold_char(c, &mut folded);
    }
    let path = folded.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len() + 1);
    for segment in path.split(['/', '\\']).skip(1) {
        let bare = segment.split([';', ':']).next().unwrap_or_default();
        let bare = bare.trim_matches(is_trimmed);
        if !bare.is_empty() && bare.chars().all(|c| c == '.' || is_trimmed(c)) {
            return Err(PathError::LooseDotSegment);
        }
        let bare = bare.trim_end_matches(|c| c == '.' || is_trimmed(c));
        if !bare.is_empty() {
            out.push('/');
            out.push_str(bare);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
#[path = "vhost_guard_tests.rs"]
mod tests;
