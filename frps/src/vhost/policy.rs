//! What frps does to each request and response of an http proxy: the proxy's own policy
//! (header rewrites, basic auth, CORS, redirect) and the proxy headers every request gets
//! (`X-Forwarded-*`, `X-Real-IP`, hop-by-hop headers removed, and the proxy headers frps does
//! not set removed, so a visitor cannot forge them, nor the URL-overriding headers some
//! frameworks honour). An `h2c` upgrade is never forwarded: a lenient service would switch
//! the connection to HTTP/2 and serve requests frps never routed.

use std::net::IpAddr;

use frp_proto::VhostSpec;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::auth::BasicAuth;
use super::cors::Cors;

/// Headers that describe one hop, never forwarded (RFC 9110 7.6.1, and `HTTP2-Settings`
/// of an h2c upgrade, RFC 7540 3.2.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "http2-settings",
];

/// Headers a `Connection` header cannot have removed: `Host` (routing and the service need
/// it), the framing hyper manages, and the headers frps sets itself.
const NEVER_HOP_BY_HOP: [&str; 6] = [
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Proxy headers a visitor could forge to mislead the service, and frps does not set: removed
/// from every request (frps sets `X-Forwarded-For`, `-Proto`, `-Host` and `X-Real-IP`).
/// `X-Original-URL` and `X-Rewrite-URL` (IIS URL Rewrite; honoured by Symfony, Laminas and
/// others) and `X-Original-URI` / `X-Forwarded-Uri` (read by auth services behind nginx or
/// Traefik) name another URL than the one frps routed, and so would bypass its locations.
const FORGEABLE: [&str; 10] = [
    "forwarded",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
];

/// The policy of one http proxy, parsed from its registration.
#[derive(Clone, Debug, Default)]
pub struct HttpPolicy {
    /// Replaces `Host` on forwarded requests.
    pub host_rewrite: Option<HeaderValue>,
    /// Set on forwarded requests.
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
    /// Set on returned responses.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// Required credentials.
    pub auth: Option<BasicAuth>,
    /// CORS answers.
    pub cors: Option<Cors>,
    /// Redirect plain-HTTP requests to `https://`.
    pub redirect_https: bool,
    /// Accept paths holding `%2F` (forwarded still encoded).
    pub allow_encoded_slashes: bool,
}

impl HttpPolicy {
    /// Parses a registration's policy (its syntax was validated already).
    ///
    /// # Errors
    /// Names a header that `hyper` refuses.
    pub fn new(spec: &VhostSpec) -> Result<Self, String> {
        let pairs = |list: &[frp_proto::HeaderPair]| {
            list.iter()
                .map(|h| {
                    let name = HeaderName::from_bytes(h.name.as_bytes());
                    let value = HeaderValue::from_str(&h.value);
                    match (name, value) {
                        (Ok(n), Ok(v)) => Ok((n, v)),
                        _ => Err(format!("header {:?} is not a valid header", h.name)),
                    }
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let host_rewrite = match spec.host_header_rewrite.as_str() {
            "" => None,
            h => Some(
                HeaderValue::from_str(h).map_err(|_| "hostHeaderRewrite is not a valid host")?,
            ),
        };
        let auth = (!spec.http_user.is_empty())
            .then(|| BasicAuth::new(&spec.http_user, spec.http_password.expose()));
        Ok(Self {
            host_rewrite,
            request_headers: pairs(&spec.request_headers)?,
            response_headers: pairs(&spec.response_headers)?,
            auth,
            cors: spec.cors.as_ref().map(Cors::new),
            redirect_https: spec.redirect_https,
            allow_encoded_slashes: spec.allow_encoded_slashes,
        })
    }

    /// Applies the rewrites to a request about to be forwarded; `authenticated` when frps
    /// checked its credentials (this proxy's or a stricter location's).
    pub fn rewrite_request(&self, headers: &mut HeaderMap, authenticated: bool) {
        // The visitor's credentials were for frps; the local service does not get them (but
        // gets an Authorization the proxy sets in requestHeaders).
        if authenticated {
            headers.remove(header::AUTHORIZATION);
        }
        if let Some(host) = &self.host_rewrite {
            headers.insert(header::HOST, host.clone());
        }
        for (name, value) in &self.request_headers {
            headers.insert(name.clone(), value.clone());
        }
    }

    /// Applies the rewrites to a response about to be returned.
    pub fn rewrite_response(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.response_headers {
            headers.insert(name.clone(), value.clone());
        }
    }

    /// Applies `responseHeaders.set` to an answer frps gives itself for this proxy (`401`,
    /// `429`, `308`, a preflight, `5xx`), without replacing a header the answer carries
    /// (`WWW-Authenticate`, `Location`, `Access-Control-*`, `Content-Type`).
    pub fn rewrite_own(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.response_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

/// Whether a request asks to switch protocols (WebSocket and other `Upgrade`s). An upgrade
/// that offers `h2c` is not one frps forwards: it is refused as RFC 9110 7.8 lets a server
/// refuse it, by serving the request over HTTP/1.1 without `Upgrade`.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_has(headers, "upgrade")
        && !tokens(headers, header::UPGRADE.as_str()).any(|t| t.eq_ignore_ascii_case("h2c"))
}

/// The comma-separated tokens of every `name` header, trimmed.
fn tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    tokens(headers, header::CONNECTION.as_str()).any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether a request's `Transfer-Encoding` is one frps forwards: none, or exactly `chunked`.
/// Other codings (`gzip, chunked`) get `501`, as nginx answers: few services decode them,
/// and a proxy that re-frames the body must not lose them.
pub fn request_coding_supported(headers: &HeaderMap) -> bool {
    let mut codings = tokens(headers, header::TRANSFER_ENCODING.as_str());
    match codings.next() {
        None => true,
        Some(first) => first.eq_ignore_ascii_case("chunked") && codings.next().is_none(),
    }
}

/// The transfer codings of a message other than its final `chunked` (`gzip` for `gzip,
/// chunked`): hyper re-frames the body, so these are sent on with it.
fn content_codings(headers: &HeaderMap) -> Option<HeaderValue> {
    let codings: Vec<&str> = tokens(headers, header::TRANSFER_ENCODING.as_str()).collect();
    let kept = match codings.split_last() {
        Some((last, rest)) if last.eq_ignore_ascii_case("chunked") => rest,
        _ => &codings[..],
    };
    match kept.is_empty() {
        true => None,
        false => HeaderValue::from_str(&kept.join(", ")).ok(),
    }
}

/// Removes hop-by-hop headers, and those `Connection` names (except `Host` and the headers
/// frps manages, [`NEVER_HOP_BY_HOP`]); keeps `Connection: upgrade` and `Upgrade` when
/// `keep_upgrade`, and transfer codings other than `chunked` (hyper adds `chunked` back).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let codings = content_codings(headers);
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !(t.is_empty() || keep_upgrade && t == "upgrade"))
        .filter(|t| !NEVER_HOP_BY_HOP.contains(&t.as_str()))
        .collect();
    for name in named.iter().map(String::as_str).chain(HOP_BY_HOP) {
        headers.remove(name);
    }
    if let Some(codings) = codings {
        headers.insert(header::TRANSFER_ENCODING, codings);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Sets `X-Forwarded-For` (appending the client to any list it sent), `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `X-Real-IP`, and removes the other proxy headers a visitor sent.
/// An IPv4 visitor on a dual-stack listener is shown as `a.b.c.d`, not `::ffff:a.b.c.d`.
pub fn set_forwarded(headers: &mut HeaderMap, client: IpAddr, proto: &str, host: &str) {
    let client = client.to_canonical();
    for name in FORGEABLE {
        headers.remove(name);
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let prior: Vec<&str> = headers
        .get_all(&xff)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let chain = match prior.is_empty() {
        true => client.to_string(),
        false => format!("{}, {client}", prior.join(", ")),
    };
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(headers, "x-forwarded-for", &chain);
    set(headers, "x-forwarded-proto", proto);
    set(headers, "x-forwarded-host", host);
    set(headers, "x-real-ip", &client.to_string());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use frp_proto::{HeaderPair, Secret};

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_headers_append_to_an_existing_chain() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-real-ip", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6;proto=https"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-server", "evil"),
        ]);
        set_forwarded(
            &mut h,
            "198.51.100.7".parse().unwrap(),
            "https",
            "app.example.com",
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 198.51.100.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.example.com");
        assert_eq!(h["x-real-ip"], "198.51.100.7");
        assert_eq!(h.len(), 4, "forged proxy headers are gone: {h:?}");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, "::1".parse().unwrap(), "http", "a.io");
        assert_eq!(fresh["x-forwarded-for"], "::1");
        let mut mapped = HeaderMap::new();
        set_forwarded(
            &mut mapped,
            "::ffff:192.0.2.7".parse().unwrap(),
            "http",
            "a.io",
        );
        assert_eq!(
            mapped["x-forwarded-for"], "192.0.2.7",
            "dual-stack listeners"
        );
        assert_eq!(mapped["x-real-ip"], "192.0.2.7");
    }

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_stay() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-kept", "yes"),
            ("upgrade", "websocket"),
        ]);
        let mut plain = h.clone();
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert_eq!(plain["x-kept"], "yes");
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
        let mut managed = map(&[
            ("connection", "Host, content-length, X-Real-IP, x-hop"),
            ("host", "app.example.com"),
            ("content-length", "3"),
            ("x-real-ip", "1.2.3.4"),
            ("x-hop", "1"),
        ]);
        strip_hop_by_hop(&mut managed, false);
        assert_eq!(managed.len(), 3, "{managed:?}");
        assert_eq!(
            managed["host"], "app.example.com",
            "Connection cannot drop Host"
        );
        assert!(!managed.contains_key("x-hop"));
    }

    #[test]
    fn codings_and_h2c() {
        assert!(request_coding_supported(&map(&[(
            "transfer-encoding",
            "Chunked"
        )])));
        assert!(request_coding_supported(&HeaderMap::new()));
        for bad in ["gzip, chunked", "chunked, chunked", "identity"] {
            assert!(
                !request_coding_supported(&map(&[("transfer-encoding", bad)])),
                "{bad}"
            );
        }
        let mut resp = map(&[
            ("transfer-encoding", "gzip"),
            ("transfer-encoding", "chunked"),
        ]);
        strip_hop_by_hop(&mut resp, false);
        assert_eq!(resp["transfer-encoding"], "gzip", "hyper adds chunked back");
        let h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "H2C"),
        ]);
        assert!(!is_upgrade(&h2c));
    }

    #[test]
    fn policy_rewrites_requests_and_responses() {
        let spec = VhostSpec {
            host_header_rewrite: "backend.local".into(),
            request_headers: vec![HeaderPair {
                name: "X-From".into(),
                value: "frps".into(),
            }],
            response_headers: vec![HeaderPair {
                name: "x-frame-options".into(),
                value: "DENY".into(),
            }],
            http_user: "u".into(),
            http_password: Secret::new("p"),
            ..VhostSpec::default()
        };
        let p = HttpPolicy::new(&spec).unwrap();
        let mut req = map(&[
            ("host", "app.example.com"),
            ("authorization", "Basic dTpw"),
            ("x-from", "client"),
        ]);
        p.rewrite_request(&mut req, true);
        assert_eq!(req["host"], "backend.local");
        assert_eq!(req["x-from"], "frps");
        assert!(!req.contains_key("authorization"));
        let own_auth = HttpPolicy {
            request_headers: vec![(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"))],
            ..p.clone()
        };
        let mut req = map(&[("authorization", "Basic dTpw")]);
        own_auth.rewrite_request(&mut req, true);
        assert_eq!(
            req["authorization"], "Bearer t",
            "the proxy's own Authorization is kept"
        );
        let mut resp = HeaderMap::new();
        p.rewrite_response(&mut resp);
        assert_eq!(resp["x-frame-options"], "DENY");
        assert!(!format!("{p:?}").contains("\"p\""));
    }
}
