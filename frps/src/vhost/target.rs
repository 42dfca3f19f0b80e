//! What a request asks for, read once and strictly, so frps routes by the same host and path
//! the service will see: the host from an absolute-form target's authority, or else from the
//! one `Host` header (RFC 9112 3.2 and 3.2.2), and the path in canonical form
//! ([`frp_proto::vhost::path`]). Anything ambiguous is answered here instead of forwarded.

use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};

use frp_proto::vhost::guard::guard_forms;
use frp_proto::vhost::path::{canonical_keeping_slashes, match_form};

use crate::domains::normalize_host;

/// Why a request is answered before routing: its status and a sentence.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer with.
    pub status: StatusCode,
    /// The body, starting with the status.
    pub why: String,
}

fn refusal(status: StatusCode, why: &str) -> Refusal {
    Refusal {
        status,
        why: why.to_string(),
    }
}

/// The host and path of one request.
#[derive(Debug)]
pub struct Target {
    /// The host, normalized for routing.
    pub host: String,
    /// The host as the visitor wrote it (with its port): what the service gets in `Host`
    /// when the request was in absolute form, and in `X-Forwarded-Host`.
    pub shown: String,
    /// Whether the request target was in absolute form (its authority replaces `Host`).
    pub absolute: bool,
    /// The canonical path, without the query (a `%2F` in it is kept encoded).
    pub path: String,
    /// The path as locations are matched against it (`%2F` read as `/`).
    pub match_path: String,
    /// The spellings of the path a lenient service may serve ([`guard_forms`]): the
    /// passwords of the locations they reach are asked for too.
    pub guards: Vec<String>,
    /// Whether the path holds an encoded `/`, which only a proxy with
    /// `allowEncodedSlashes` accepts.
    pub encoded_slash: bool,
    /// The origin-form target forwarded: the canonical path and the query.
    pub uri: Uri,
}

impl Target {
    /// Reads the target of `req`; `sni` is the name a TLS connection frps terminated was for.
    ///
    /// # Errors
    /// The answer for a request that cannot be routed as it is: `405` for `CONNECT`, `400`
    /// for a missing, repeated or invalid `Host` or an ambiguous path, `421` for a host the
    /// connection's TLS name does not match.
    pub fn of<B>(req: &Request<B>, sni: Option<&str>) -> Result<Self, Refusal> {
        let bad = |why: &str| refusal(StatusCode::BAD_REQUEST, &format!("400 bad request: {why}"));
        if req.method() == Method::CONNECT {
            let why = "405 method not allowed: frps is not a forward proxy";
            return Err(refusal(StatusCode::METHOD_NOT_ALLOWED, why));
        }
        if req.headers().get_all(header::HOST).iter().count() > 1 {
            return Err(bad("more than one Host header"));
        }
        let authority = req.uri().authority().map(|a| a.as_str());
        let header = req.headers().get(header::HOST).map(HeaderValue::to_str);
        let shown = match (authority, header) {
            (Some(a), _) => a,
            (None, Some(Ok(h))) => h,
            (None, Some(Err(_))) => return Err(bad("the Host header is not text")),
            (None, None) => return Err(bad("a Host header is required")),
        };
        let host = normalize_host(shown).ok_or_else(|| bad("the host is not a valid name"))?;
        if let Some(sni) = sni.filter(|sni| *sni != host) {
            let why = format!("421 misdirected request: this connection is for {sni}");
            return Err(refusal(StatusCode::MISDIRECTED_REQUEST, &why));
        }
        let raw_path = match req.uri().path() {
            "" => "/",
            p => p,
        };
        let path = canonical_keeping_slashes(raw_path).map_err(|e| bad(&e.to_string()))?;
        let match_path = match_form(&path).map_err(|e| bad(&e.to_string()))?;
        let guards = guard_forms(&match_path).map_err(|e| bad(&e.to_string()))?;
        let pq = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let uri = Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|_| bad("the path cannot be forwarded"))?;
        Ok(Self {
            host,
            shown: shown.to_string(),
            absolute: authority.is_some(),
            encoded_slash: path.contains("%2F"),
            path,
            match_path,
            guards,
            uri,
        })
    }

    /// The host for `X-Forwarded-Host`: the normalized host, with the port the visitor named
    /// only when it is `listener`, the port frps was reached on (a port the visitor made up
    /// must not reach the links a service builds from this header).
    pub fn forwarded_host(&self, listener: u16) -> String {
        let port = self
            .shown
            .rsplit_once(':')
            .filter(|(host, _)| !host.contains(':') || host.ends_with(']'))
            .and_then(|(_, port)| port.parse::<u16>().ok());
        match port {
            Some(p) if p == listener => format!("{}:{p}", self.host),
            _ => self.host.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for h in hosts {
            b = b.header("host", *h);
        }
        b.body(()).unwrap()
    }

    fn status(r: Result<Target, Refusal>) -> u16 {
        r.err().map_or(200, |refused| refused.status.as_u16())
    }

    #[test]
    fn host_comes_from_the_authority_or_the_one_host_header() {
        let t = Target::of(&req("/a/./b?x=1", &["App.Example.com:8080"]), None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.shown.as_str()),
            ("app.example.com", "App.Example.com:8080")
        );
        assert_eq!(
            (t.path.as_str(), t.uri.to_string().as_str()),
            ("/a/b", "/a/b?x=1")
        );
        assert!(!t.absolute);
        let t = Target::of(&req("http://a.example.com/x", &["b.example.com"]), None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.uri.to_string().as_str()),
            ("a.example.com", "/x")
        );
        assert!(t.absolute, "the authority wins over Host");
        let t = Target::of(&req("/g%2fn/x", &["a.example.com"]), None).unwrap();
        assert_eq!(
            (t.path.as_str(), t.match_path.as_str()),
            ("/g%2Fn/x", "/g/n/x")
        );
        assert!(t.encoded_slash, "routing decides whether it may pass");
    }

    #[test]
    fn ambiguous_requests_are_answered_here() {
        assert_eq!(status(Target::of(&req("/", &[]), None)), 400);
        assert_eq!(
            status(Target::of(
                &req("/", &["a.example.com", "b.example.com"]),
                None
            )),
            400
        );
        assert_eq!(
            status(Target::of(&req("/", &["a..example.com"]), None)),
            400
        );
        assert_eq!(
            status(Target::of(&req("/a%5cb", &["a.example.com"]), None)),
            400
        );
        assert_eq!(
            status(Target::of(&req("/a/..%2fb", &["a.example.com"]), None)),
            400
        );
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri("a.example.com:443")
            .body(())
            .unwrap();
        assert_eq!(status(Target::of(&connect, None)), 405);
        let tls = Target::of(&req("/", &["b.example.com"]), Some("a.example.com"));
        assert_eq!(status(tls), 421);
        assert_eq!(status(Target::of(&req("/", &["[::1]:80"]), None)), 200);
    }
}
