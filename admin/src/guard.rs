//! The checks that keep other sites' pages out of the admin API: requests must name this
//! server by address when it has no credentials (DNS rebinding), and requests that change
//! state must come from its own origin (cross-site request forgery).

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use crate::api::{ApiError, ApiResponse};

/// Whether the request's `Host` is an IP address or `localhost` (with or without a port).
pub(crate) fn names_an_address(req: &Request<Incoming>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let Some(host) = host.map(str::trim) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host
            .rsplit_once(':')
            .map_or(host, |(h, port)| match port.parse::<u16>() {
                Ok(_) => h,
                Err(_) => host,
            }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// A browser's request from another site (a form or script elsewhere riding on the user's
/// saved credentials) must not change anything: for methods other than `GET`/`HEAD`/
/// `OPTIONS`, `Sec-Fetch-Site` must be same-origin (or absent) and an `Origin` must be this
/// server's: the scheme it serves (`https` with `tls`) and the `Host` the request was sent to.
pub(crate) fn cross_site(req: &Request<Incoming>, tls: bool) -> Result<(), ApiResponse> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let h = req.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let refused =
        || Err(ApiError::new(StatusCode::FORBIDDEN, "cross-origin request refused").into());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return refused();
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let scheme = if tls { "https" } else { "http" };
        let authority = origin.split_once("://").filter(|(s, _)| *s == scheme);
        if authority.is_none() || authority.map(|(_, a)| a) != text(header::HOST) {
            return refused();
        }
    }
    Ok(())
}
