//! CORS decisions: preflights are answered at frps, other requests get the allow headers on
//! their response. CORS is a browser's rule, not access control, so a request from an origin
//! that is not allowed is still forwarded, only without allow headers: frps removes any the
//! service set itself, so the proxy's policy is the one browsers see. Unless every origin is
//! allowed, responses say `Vary: Origin`, so caches keep answers for different origins apart.

use frp_proto::CorsSpec;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};

/// Methods a page may use without a preflight naming them.
const SIMPLE_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];
/// Request headers a page may send without a preflight naming them.
const SAFE_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

/// A proxy's CORS policy.
#[derive(Clone, Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    credentials: bool,
    max_age: u32,
}

/// The answer to a preflight.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// Allowed: answer 204 with these headers.
    Allowed(HeaderMap),
    /// Not allowed: answer 403 and say why.
    Refused(String),
}

/// Whether `req` is a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
pub fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl Cors {
    /// The policy of a registered proxy (already validated).
    pub fn new(spec: &CorsSpec) -> Self {
        let upper = |v: &[String]| v.iter().map(|m| m.to_ascii_uppercase()).collect();
        let lower = |v: &[String]| v.iter().map(|m| m.to_ascii_lowercase()).collect();
        Self {
            any_origin: spec.allow_origins.iter().any(|o| o == "*"),
            origins: lower(&spec.allow_origins),
            methods: upper(&spec.allow_methods),
            headers: lower(&spec.allow_headers),
            credentials: spec.allow_credentials,
            max_age: spec.max_age,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Decides a preflight from its request headers.
    pub fn preflight(&self, req: &HeaderMap) -> Preflight {
        let text = |name: HeaderName| req.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin = text(header::ORIGIN);
        if !self.origin_allowed(origin) {
            return Preflight::Refused(format!("origin {origin:?} is not allowed"));
        }
        let method = text(header::ACCESS_CONTROL_REQUEST_METHOD).to_ascii_uppercase();
        if !SIMPLE_METHODS.contains(&method.as_str()) && !self.methods.contains(&method) {
            return Preflight::Refused(format!("method {method:?} is not allowed"));
        }
        let asked = text(header::ACCESS_CONTROL_REQUEST_HEADERS).to_ascii_lowercase();
        let asked: Vec<&str> = asked
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(h) = asked
            .iter()
            .find(|h| !SAFE_HEADERS.contains(h) && !self.headers.iter().any(|a| a == *h))
        {
            return Preflight::Refused(format!("request header {h:?} is not allowed"));
        }
        let mut out = self.allow_origin(origin);
        let methods = match self.methods.is_empty() {
            true => SIMPLE_METHODS.join(", "),
            false => self.methods.join(", "),
        };
        insert(&mut out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
        if !asked.is_empty() {
            insert(
                &mut out,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &asked.join(", "),
            );
        }
        if self.max_age > 0 {
            insert(
                &mut out,
                header::ACCESS_CONTROL_MAX_AGE,
                &self.max_age.to_string(),
            );
        }
        let vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
        insert(&mut out, header::VARY, vary);
        Preflight::Allowed(out)
    }

    /// Sets the allow headers on the response of an actual request from `origin`, or
    /// removes the service's own when the origin is not allowed.
    pub fn apply(&self, origin: Option<&HeaderValue>, resp: &mut HeaderMap) {
        // `*` is the same answer for every origin; a named origin is not.
        let same_for_all = self.any_origin && !self.credentials;
        if !same_for_all {
            resp.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        match origin.and_then(|o| o.to_str().ok()) {
            Some(origin) if self.origin_allowed(origin) => resp.extend(self.allow_origin(origin)),
            _ => {
                let theirs: Vec<HeaderName> = resp
                    .keys()
                    .filter(|k| k.as_str().starts_with("access-control-"))
                    .cloned()
                    .collect();
                for name in theirs {
                    resp.remove(name);
                }
            }
        }
    }

    /// `Access-Control-Allow-Origin` (and `-Credentials`) for an allowed `origin`.
    fn allow_origin(&self, origin: &str) -> HeaderMap {
        let mut out = HeaderMap::new();
        // With credentials the origin must be named; `*` is refused with credentials at load.
        let value = match self.any_origin && !self.credentials {
            true => "*",
            false => origin,
        };
        insert(&mut out, header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if self.credentials {
            insert(&mut out, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        out
    }
}

fn insert(map: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        map.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], methods: &[&str], headers: &[&str], credentials: bool) -> Cors {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Cors::new(&CorsSpec {
            allow_origins: own(origins),
            allow_methods: own(methods),
            allow_headers: own(headers),
            allow_credentials: credentials,
            max_age: 600,
        })
    }

    fn asking(origin: &str, method: &str, headers: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        insert(&mut h, header::ORIGIN, origin);
        insert(&mut h, header::ACCESS_CONTROL_REQUEST_METHOD, method);
        if !headers.is_empty() {
            insert(&mut h, header::ACCESS_CONTROL_REQUEST_HEADERS, headers);
        }
        h
    }

    #[test]
    fn preflight_allows_named_origin_method_and_headers() {
        let c = cors(&["https://ui.example.com"], &["PUT"], &["X-Token"], true);
        let Preflight::Allowed(h) = c.preflight(&asking(
            "https://ui.example.com",
            "put",
            "x-token, content-type",
        )) else {
            panic!("expected allowed");
        };
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://ui.example.com"
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "PUT");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "x-token, content-type"
        );
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
    }

    #[test]
    fn preflight_refusals_say_why() {
        let c = cors(&["https://ui.example.com"], &["PUT"], &[], false);
        let refused = |h| match c.preflight(&h) {
            Preflight::Refused(why) => why,
            Preflight::Allowed(_) => panic!("expected a refusal"),
        };
        assert!(refused(asking("https://evil.example", "GET", "")).contains("origin"));
        assert!(refused(asking("https://ui.example.com", "DELETE", "")).contains("DELETE"));
        assert!(refused(asking("https://ui.example.com", "GET", "x-secret")).contains("x-secret"));
    }

    #[test]
    fn actual_requests_get_allow_headers_only_for_allowed_origins() {
        let any = cors(&["*"], &[], &[], false);
        let mut resp = HeaderMap::new();
        any.apply(
            Some(&HeaderValue::from_static("https://a.example")),
            &mut resp,
        );
        assert_eq!(resp[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(
            !resp.contains_key(header::VARY),
            "the answer is the same for every origin"
        );
        let named = cors(&["https://ui.example.com"], &[], &[], false);
        let theirs = || {
            let mut h = HeaderMap::new();
            insert(&mut h, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
            insert(&mut h, header::ACCESS_CONTROL_EXPOSE_HEADERS, "x-secret");
            h
        };
        for origin in [Some(HeaderValue::from_static("https://evil.example")), None] {
            let mut resp = theirs();
            named.apply(origin.as_ref(), &mut resp);
            assert_eq!(resp.len(), 1, "only Vary is left: {resp:?}");
            assert_eq!(resp[header::VARY], "Origin");
        }
        let mut resp = theirs();
        named.apply(
            Some(&HeaderValue::from_static("https://UI.example.com")),
            &mut resp,
        );
        assert_eq!(
            resp[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://UI.example.com"
        );
        assert_eq!(resp[header::VARY], "Origin");
    }

    #[test]
    fn preflights_are_recognized() {
        let req = |m: Method, origin: bool| {
            let mut b = Request::builder().method(m).uri("/");
            if origin {
                b = b
                    .header("origin", "https://a")
                    .header("access-control-request-method", "GET");
            }
            b.body(()).unwrap_or_default()
        };
        assert!(is_preflight(&req(Method::OPTIONS, true)));
        assert!(!is_preflight(&req(Method::OPTIONS, false)));
        assert!(!is_preflight(&req(Method::GET, true)));
    }
}
