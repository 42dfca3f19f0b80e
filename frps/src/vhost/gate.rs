//! What frps answers itself for a routed request, before anything reaches the client: the
//! https redirect, a CORS preflight, basic auth (and its backoff, [`AuthThrottle`]).
//!
//! These answers, and the `5xx` frps gives for a routed request, carry the proxy's
//! `responseHeaders.set` too (security headers such as `X-Frame-Options` belong on a login
//! prompt as much as on the page), without replacing a header the answer itself needs
//! ([`HttpPolicy::rewrite_own`](super::policy::HttpPolicy::rewrite_own)).

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use tracing::warn;

use super::auth::BasicAuth;
use super::backend::Routed;
use super::cors::{is_preflight, Preflight};
use super::service::{text, Frontend, Response};
use super::target::Target;
pub use super::throttle::AuthThrottle;

/// The passwords a request must pass: its proxy's, and those of the proxies a lenient
/// service could serve its path from (the stricter policy wins).
pub fn required_auths(routed: &Routed) -> impl Iterator<Item = &BasicAuth> {
    std::iter::once(&routed.backend)
        .chain(&routed.guards)
        .filter_map(|b| b.policy.auth.as_ref())
}

/// The answer frps gives itself, if any (see the module docs); `client` is the visitor.
pub fn gate<B>(
    front: &Frontend,
    routed: &Routed,
    target: &Target,
    req: &Request<B>,
    client: IpAddr,
) -> Option<Response> {
    let policy = &routed.backend.policy;
    // ACME validations (frps's own, or a service's own) stay on http: the canonical path
    // (dot segments resolved, as it is forwarded), one token under the prefix and no more.
    let token = target.path.strip_prefix("/.well-known/acme-challenge/");
    let challenge = token.is_some_and(|t| !t.is_empty() && !t.contains('/'));
    if policy.redirect_https && front.scheme == "http" && !challenge {
        return Some(redirect(target, front.https_port));
    }
    if let (Some(cors), true) = (&policy.cors, is_preflight(req)) {
        return Some(match cors.preflight(req.headers()) {
            Preflight::Allowed(headers) => {
                let body = Empty::new().map_err(|e| match e {}).boxed();
                let mut resp = hyper::Response::new(body);
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp.headers_mut().extend(headers);
                resp
            }
            Preflight::Refused(why) => text(StatusCode::FORBIDDEN, &format!("cors: {why}")),
        });
    }
    let mut auths = required_auths(routed).peekable();
    auths.peek()?;
    if let Some(wait) = front.throttle.wait(client) {
        return Some(too_many(wait));
    }
    let given = req.headers().get(header::AUTHORIZATION);
    if auths.all(|auth| auth.allows(given)) {
        return None;
    }
    // A request without credentials (a browser's first) is no guess.
    let backoff = given.and_then(|_| front.throttle.failed(client));
    if let Some(backoff) = backoff {
        let proxy = &routed.backend.name;
        let secs = backoff.as_secs();
        warn!(%client, %proxy, backoff_secs = secs, "repeated wrong basic-auth passwords; backing off");
    }
    let mut resp = text(StatusCode::UNAUTHORIZED, "401 unauthorized");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, BasicAuth::challenge());
    Some(resp)
}

/// `429` with `Retry-After` (whole seconds, rounded up).
fn too_many(wait: Duration) -> Response {
    let mut resp = text(
        StatusCode::TOO_MANY_REQUESTS,
        "429 too many requests: too many wrong passwords from this address",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// 308 to the same URL over https, on `https_port` unless it is 443.
fn redirect(target: &Target, https_port: Option<u16>) -> Response {
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "308 use https");
    let port = match https_port {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let location = format!("https://{}{port}{}", target.host, target.uri);
    if let Ok(location) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}
