//! Request paths as frps routes them: one canonical form, so the location frps matches (and
//! the policy it applies, such as basic auth) is the one the local service serves.
//!
//! A backend normalizes a path before it serves it (`/./admin`, `//admin`, `/%61dmin` and
//! `/api/../admin` all reach `/admin` in most servers). If frps matched the raw path, each of
//! those would fall through to a less protected location. So frps canonicalizes the path
//! ([`canonical`]), matches locations against it with path parameters removed
//! ([`match_form`]), and forwards the canonical path. Forms that servers disagree on are
//! refused rather than guessed ([`PathError`]): encoded `/` and `\`, a backslash, a NUL, a
//! malformed escape, `.`/`..` segments with parameters (`/..;/admin`, which Tomcat reads
//! as `/../admin`), an escaped `%` before a dot, slash, backslash, NUL or `%` (`%252e`, which
//! a service that decodes twice reads as `.`, and likewise before `;`, `?`, `#` or a control
//! character), an encoded control character (`%01`..`%1F`, `%7F`, which servers trim or
//! reject), and overlong UTF-8 (`%C0`/`%C1`, `%E0` or `%F0` before a low continuation, as in
//! `%C0%AE` or `%E0%80%AE`: a `.` to a lax decoder).
//!
//! Canonical form, like nginx's: escapes of unreserved characters decoded (`%61` is `a`,
//! `%2E` is `.`), other escapes kept with uppercase hex, a raw non-ASCII character encoded
//! as its UTF-8 escapes (`é` is `%C3%A9`, as browsers send it), empty segments merged (`//`
//! is `/`), dot segments removed as in RFC 3986 section 5.2.4 (never above the root), a
//! trailing `/` kept. [`canonical_keeping_slashes`] also accepts `%2F` and keeps it encoded
//! (for a proxy with `allowEncodedSlashes`); its match form reads each `%2F` as `/`.
//!
//! Routing is case-sensitive, but lenient services read `/ADMIN`, `/admin.` or `/adm%C4%B0n`
//! as `/admin`: [`guard`](super::guard) gives the spellings of a path such services may
//! serve, for frps to check that no location they reach asks for a stricter policy.

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
    /// `%25` before the escape of a dot, separator, NUL, `%`, `;`, `?`, `#` or a control
    /// character: what a service that decodes twice reads as one of those.
    #[error(
        "the path has a double-encoded '.', '/', '\\', '%', ';', '?', '#' or control character"
    )]
    DoubleEncoded,
    /// An escaped control character (`%01`..`%1F`, `%7F`): trimmed by some servers (Java's
    /// `trim()`), refused by others.
    #[error("the path has an encoded control character")]
    Control,
    /// Overlong (invalid) UTF-8 escapes, which a lax decoder reads as another character:
    /// `%C0`/`%C1` (`%C0%AE` for `.`), `%E0` before `%80`..`%9F`, `%F0` before `%80`..`%8F`.
    #[error("the path has an overlong UTF-8 escape")]
    Overlong,
    /// A segment a lenient service reads as `.` or `..` once it has decoded, trimmed or
    /// normalized it (`..%20`, `..%3B`, `%EF%BC%8E%EF%BC%8E`): see [`guard`](super::guard).
    #[error("the path has a segment a lenient service reads as '.' or '..'")]
    LooseDotSegment,
    /// An encoded `/` that makes a `.` or `..` segment (`/a/..%2Fadmin`), or that sits in
    /// a segment with parameters.
    #[error("the path has an encoded '/' next to a dot segment or a parameter")]
    EncodedSlashSegment,
}

/// The encoded `/` as canonical paths keep it.
const ENCODED_SLASH: &str = "%2F";

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The byte two hex digits at the start of `bytes` encode.
fn hex_pair(bytes: &[u8]) -> Option<u8> {
    let hi = bytes.first().copied().and_then(hex)?;
    let lo = bytes.get(1).copied().and_then(hex)?;
    Some(hi << 4 | lo)
}

/// The byte the escape `%HH` at `i` of `bytes` encodes.
fn escaped(bytes: &[u8], i: usize) -> Result<u8, PathError> {
    hex_pair(bytes.get(i + 1..).unwrap_or_default()).ok_or(PathError::BadEscape)
}

/// Decodes the escapes of unreserved characters and uppercases the others; `%2F` is kept
/// as it is (uppercase).
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            return Err(PathError::Backslash);
        }
        if b.is_ascii() && b != b'%' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        if b != b'%' {
            // A raw non-ASCII byte (of a character `raw` holds whole): encoded, as a browser
            // sends it, so `é` and `%C3%A9` are one path.
            push_escape(&mut out, b);
            i += 1;
            continue;
        }
        match escaped(bytes, i)? {
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::EncodedSeparator),
            v if v < 0x20 || v == 0x7F => return Err(PathError::Control),
            v if overlong(v, next_escaped(bytes, i + 3)) => return Err(PathError::Overlong),
            v if unreserved(v) => out.push(char::from(v)),
            v => push_escape(&mut out, v),
        }
        i += 3;
    }
    if double_encoded(&out) {
        return Err(PathError::DoubleEncoded);
    }
    Ok(out)
}

/// The byte an escape starting at `i` encodes, if one starts there.
fn next_escaped(bytes: &[u8], i: usize) -> Option<u8> {
    (bytes.get(i) == Some(&b'%'))
        .then(|| escaped(bytes, i).ok())
        .flatten()
}

/// Appends `%HH` (uppercase hex) for `b`.
fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xF)]));
}

/// Whether the escaped byte `lead`, followed by the escaped byte `next` (if any), starts an
/// overlong UTF-8 sequence.
fn overlong(lead: u8, next: Option<u8>) -> bool {
    match (lead, next) {
        (0xC0 | 0xC1, _) => true,
        (0xE0, Some(n)) => (0x80..=0x9F).contains(&n),
        (0xF0, Some(n)) => (0x80..=0x8F).contains(&n),
        _ => false,
    }
}

/// Whether a decoded path has `%25` before what a second decoding makes a dot, separator,
/// NUL, `%`, `;`, `?`, `#` or control character (the hex digits may have been escapes
/// themselves: `%25%32%65`).
fn double_encoded(decoded: &str) -> bool {
    decoded.match_indices("%25").any(|(i, _)| {
        let next = decoded.as_bytes().get(i + 3..).unwrap_or_default();
        hex_pair(next).is_some_and(|v| {
            v < 0x20 || v == 0x7F || matches!(v, b'.' | b'/' | b'\\' | b'%' | b';' | b'?' | b'#')
        })
    })
}

/// The canonical form of a request path (without its query), or why it is refused.
///
/// # Errors
/// [`PathError`] for a path servers would read differently, `%2F` included.
pub fn canonical(raw: &str) -> Result<String, PathError> {
    let path = canonical_keeping_slashes(raw)?;
    match path.contains(ENCODED_SLASH) {
        true => Err(PathError::EncodedSeparator),
        false => Ok(path),
    }
}

/// [`canonical`], except that `%2F` is accepted and kept encoded (for a proxy whose service
/// tells an encoded slash from a separator, as GitLab and RabbitMQ do).
///
/// # Errors
/// As [`canonical`], without the refusal of `%2F`.
pub fn canonical_keeping_slashes(raw: &str) -> Result<String, PathError> {
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
    Ok(joined(&out, trailing))
}

/// `/` and `segments` joined by `/`, with a trailing `/` when asked for and not the root.
fn joined(segments: &[&str], trailing: bool) -> String {
    let mut path = format!("/{}", segments.join("/"));
    if trailing && !segments.is_empty() {
        path.push('/');
    }
    path
}

/// A canonical path as locations are matched against it: each segment's parameters
/// (`;jsessionid=...`) removed, as Tomcat, Jetty and Spring do before they route, and each
/// `%2F` read as `/` (so `//` merges there too).
///
/// # Errors
/// [`PathError::EncodedSlashSegment`] when an encoded `/` makes a `.` or `..` segment or
/// shares a segment with parameters: read as `/`, the path would not be canonical.
pub fn match_form(canonical: &str) -> Result<String, PathError> {
    let mut kept: Vec<&str> = Vec::new();
    for seg in canonical.split('/').skip(1) {
        let bare = seg.split(';').next().unwrap_or_default();
        if !seg.contains(ENCODED_SLASH) {
            kept.push(bare);
            continue;
        }
        if seg != bare {
            return Err(PathError::EncodedSlashSegment);
        }
        for piece in seg.split(ENCODED_SLASH) {
            if matches!(piece, "." | "..") {
                return Err(PathError::EncodedSlashSegment);
            }
            kept.push(piece);
        }
    }
    let trailing =
        canonical.len() > 1 && (canonical.ends_with('/') || canonical.ends_with(ENCODED_SLASH));
    kept.retain(|s| !s.is_empty());
    Ok(joined(&kept, trailing))
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
#[path = "vhost_path_tests.rs"]
mod tests;
