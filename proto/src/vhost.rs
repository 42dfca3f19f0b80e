//! What an `http` or `https` proxy registers beyond its name: the names it answers for, and
//! (for `http`) the request policy the server enforces before a request reaches the client.
//!
//! The types here are bounded by the codec (counts and lengths, see the constants) and checked
//! for syntax by the `validate_*` functions, which frpc runs when it loads its config and frps
//! runs again on what arrives, since a peer can send anything.

use std::fmt;

#[path = "vhost_guard.rs"]
pub mod guard;
#[path = "vhost_path.rs"]
pub mod path;

/// Most entries in each list of a [`VhostSpec`] (domains, locations, headers, CORS lists).
pub const MAX_VHOST_ITEMS: usize = 16;
/// Longest domain name (DNS's limit), also the limit for a CORS origin.
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest location (path prefix).
pub const MAX_LOCATION_LEN: usize = 256;
/// Longest header name.
pub const MAX_HEADER_NAME_LEN: usize = 64;
/// Longest header value.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Longest basic-auth user name.
pub const MAX_USER_LEN: usize = 64;
/// Longest basic-auth password.
pub const MAX_PASSWORD_LEN: usize = 128;

/// A secret string (a password): compared and sent, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (no password set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.is_empty() {
            true => f.write_str("Secret(empty)"),
            false => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// One header to set: `name: value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderPair {
    /// Header name (an HTTP token).
    pub name: String,
    /// Header value (visible ASCII and spaces).
    pub value: String,
}

/// A CORS policy answered and applied by the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsSpec {
    /// Origins allowed (`https://app.example.com`), or `*` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for; empty means the simple methods.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for; empty means none beyond the simple ones.
    pub allow_headers: Vec<String>,
    /// Whether credentials (cookies, authorization) may be sent.
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer; 0 leaves it to the browser.
    pub max_age: u32,
}

/// The virtual-host part of an `http` or `https` proxy registration.
///
/// For `https` proxies only the names (`custom_domains`, `subdomain`) are used; the rest must
/// be empty, because the server never sees inside their TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VhostSpec {
    /// Exact names (`app.example.com`) and wildcards (`*.example.com`).
    pub custom_domains: Vec<String>,
    /// One label that becomes `LABEL.<subDomainHost>` on the server; empty for none.
    pub subdomain: String,
    /// Path prefixes this proxy serves (`/api`); empty means `/`.
    pub locations: Vec<String>,
    /// Replaces the `Host` header sent to the local service; empty keeps it.
    pub host_header_rewrite: String,
    /// Headers set on each request before it is forwarded.
    pub request_headers: Vec<HeaderPair>,
    /// Headers set on each response before it is returned.
    pub response_headers: Vec<HeaderPair>,
    /// Basic-auth user required by the server; empty for no authentication.
    pub http_user: String,
    /// Basic-auth password for `http_user`.
    pub http_password: Secret,
    /// CORS policy answered by the server, if any.
    pub cors: Option<CorsSpec>,
    /// Whether plain-HTTP requests are redirected to `https://` (308).
    pub redirect_https: bool,
    /// Whether a path may hold `%2F`, forwarded still encoded (refused with `400` otherwise).
    pub allow_encoded_slashes: bool,
}

impl VhostSpec {
    /// Whether any of the HTTP-only settings is set (they are invalid for `https` proxies).
    pub fn has_http_settings(&self) -> bool {
        // Every key after the two naming ones (customDomains, subdomain) is HTTP-only.
        crate::wire_vhost::keys(self)
            .iter()
            .skip(2)
            .any(|&(_, _, set)| set)
    }
}

/// Checks a domain name or a `*.` wildcard: lowercase LDH labels of 1-63 characters, at least
/// two labels, no trailing dot.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_domain(name: &str) -> Result<(), String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_DOMAIN_LEN {
        return Err(format!(
            "domain {name:?} must be 1 to {MAX_DOMAIN_LEN} characters"
        ));
    }
    let labels: Vec<&str> = bare.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("domain {name:?} needs at least two labels"));
    }
    labels
        .iter()
        .try_for_each(|l| validate_label(l))
        .map_err(|why| format!("domain {name:?}: {why}"))
}

/// Checks one DNS label (a `subdomain`): 1-63 of `a-z`, `0-9`, `-`, not starting or ending
/// with `-`.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_label(label: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if label.is_empty() || label.len() > 63 {
        return Err(format!("label {label:?} must be 1 to 63 characters"));
    }
    if !label.chars().all(ok_char) {
        return Err(format!(
            "label {label:?} may hold only lowercase letters, digits and '-'"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label {label:?} must not start or end with '-'"));
    }
    Ok(())
}

/// Checks a location: starts with `/`, visible ASCII, no `?`, `#` or `;`, and written in the
/// canonical form requests are matched in ([`path::location_key`]; a trailing `/` is allowed
/// and ignored).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_location(loc: &str) -> Result<(), String> {
    if !loc.starts_with('/') || loc.len() > MAX_LOCATION_LEN {
        return Err(format!(
            "location {loc:?} must start with '/' and be at most {MAX_LOCATION_LEN} characters"
        ));
    }
    if !loc
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '?' && c != '#')
    {
        return Err(format!(
            "location {loc:?} may hold only visible ASCII, without '?' or '#'"
        ));
    }
    let key = path::location_key(loc)?;
    let written = match loc.trim_end_matches('/') {
        "" => "/",
        s => s,
    };
    if key != written {
        return Err(format!(
            "location {loc:?} is not in canonical form; write {key:?}"
        ));
    }
    Ok(())
}

/// Checks a `hostHeaderRewrite`: a host name or IPv4 address (letters, digits, `-`, `.`) or
/// a bracketed IPv6 address, optionally with `:port`, at most [`MAX_DOMAIN_LEN`] characters.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_host(host: &str) -> Result<(), String> {
    let bad = || {
        format!("{host:?} is not a host: use a name or address, optionally with :port, at most {MAX_DOMAIN_LEN} characters")
    };
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(bad());
        }
    }
    let ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            let ldh = |c: char| c.is_ascii_alphanumeric() || c == '-';
            name.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(ldh))
        }
    };
    match ok && host.len() <= MAX_DOMAIN_LEN {
        true => Ok(()),
        false => Err(bad()),
    }
}

/// Checks a header name: an HTTP token of at most [`MAX_HEADER_NAME_LEN`] characters.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN || !name.chars().all(token) {
        return Err(format!(
            "header name {name:?} must be 1 to {MAX_HEADER_NAME_LEN} token characters"
        ));
    }
    Ok(())
}

/// Checks a header value: visible ASCII and spaces (no control characters, so no CR/LF).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_header_value(value: &str) -> Result<(), String> {
    let ok = |c: char| c == ' ' || c == '\t' || c.is_ascii_graphic();
    if value.len() > MAX_HEADER_VALUE_LEN || !value.chars().all(ok) {
        return Err(format!(
            "header value must be at most {MAX_HEADER_VALUE_LEN} characters of visible ASCII"
        ));
    }
    Ok(())
}

/// Checks a CORS origin: `*`, or `http(s)://host[:port]` with no path.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn validate_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
    });
    if !ok || origin.len() > MAX_DOMAIN_LEN {
        return Err(format!(
            "origin {origin:?} must be \"*\" or scheme://host[:port], like \"https://app.example.com\""
        ));
    }
    Ok(())
}

/// Headers a proxy may not set with `requestHeaders` / `responseHeaders`: they frame the
/// message or describe the hop, and frps owns them (`Host` has `hostHeaderRewrite`).
pub const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Checks everything in `spec` except the limits the codec enforces.
///
/// # Errors
/// The first problem found, naming the field.
pub fn validate_spec(spec: &VhostSpec) -> Result<(), String> {
    validate_lengths(spec)?;
    spec.custom_domains
        .iter()
        .try_for_each(|d| validate_domain(d))?;
    if !spec.subdomain.is_empty() {
        validate_label(&spec.subdomain).map_err(|e| format!("subdomain: {e}"))?;
    }
    spec.locations
        .iter()
        .try_for_each(|l| validate_location(l))?;
    if !spec.host_header_rewrite.is_empty() {
        validate_host(&spec.host_header_rewrite).map_err(|e| format!("hostHeaderRewrite: {e}"))?;
    }
    for h in spec.request_headers.iter().chain(&spec.response_headers) {
        validate_header_name(&h.name)?;
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&h.name))
        {
            return Err(format!(
                "header {:?} cannot be set: frps manages it (use hostHeaderRewrite for Host)",
                h.name
            ));
        }
        validate_header_value(&h.value).map_err(|e| format!("{}: {e}", h.name))?;
    }
    if spec.http_user.contains(':') {
        return Err("httpUser must not contain ':'".into());
    }
    if spec.http_user.is_empty() != spec.http_password.is_empty() {
        return Err("httpUser and httpPassword go together: set both or neither".into());
    }
    if let Some(cors) = &spec.cors {
        validate_cors(cors)?;
    }
    Ok(())
}

/// The text limits the codec enforces, reported with the config's key names.
fn validate_lengths(spec: &VhostSpec) -> Result<(), String> {
    let password = spec.http_password.expose();
    let lengths = [
        ("httpUser", spec.http_user.len(), MAX_USER_LEN),
        ("httpPassword", password.len(), MAX_PASSWORD_LEN),
        (
            "hostHeaderRewrite",
            spec.host_header_rewrite.len(),
            MAX_DOMAIN_LEN,
        ),
    ];
    match lengths.iter().find(|(_, len, max)| len > max) {
        Some((key, len, max)) => Err(format!(
            "{key} is {len} bytes long; at most {max} are allowed"
        )),
        None => Ok(()),
    }
}

fn validate_cors(cors: &CorsSpec) -> Result<(), String> {
    if cors.allow_origins.is_empty() {
        return Err("cors.allowOrigins is empty: name the origins, or \"*\"".into());
    }
    cors.allow_origins
        .iter()
        .try_for_each(|o| validate_origin(o))?;
    cors.allow_methods
        .iter()
        .chain(&cors.allow_headers)
        .try_for_each(|m| validate_header_name(m).map_err(|e| format!("cors: {e}")))?;
    if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
        return Err(
            "cors.allowCredentials = true cannot be combined with allowOrigins \"*\"".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "vhost_tests.rs"]
mod tests;
