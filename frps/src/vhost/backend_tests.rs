//! The backend pool's retry rules and keep-alive reading.

use super::*;

fn request(method: Method, headers: &[&'static str]) -> Request<RequestBody> {
    let mut req = Request::new(RequestBody::empty());
    *req.method_mut() = method;
    for h in headers {
        req.headers_mut()
            .insert(*h, hyper::header::HeaderValue::from_static("k"));
    }
    req
}

#[test]
fn only_safe_or_keyed_requests_are_sent_twice() {
    for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        assert!(Resend::of(&request(m, &[])).is_some());
    }
    for m in [Method::PUT, Method::DELETE, Method::POST, Method::PATCH] {
        assert!(Resend::of(&request(m.clone(), &[])).is_none(), "{m}");
        assert!(Resend::of(&request(m, &["idempotency-key"])).is_some());
    }
    assert!(Resend::of(&request(Method::DELETE, &["x-idempotency-key"])).is_some());
}

#[test]
fn keep_alive_timeouts_shorten_the_idle_time() {
    let mut h = HeaderMap::new();
    assert_eq!(keep_for(&h), IDLE_TIMEOUT);
    h.insert(
        "keep-alive",
        hyper::header::HeaderValue::from_static("timeout=2, max=100"),
    );
    assert_eq!(keep_for(&h), Duration::from_secs(1));
    h.insert(
        "keep-alive",
        hyper::header::HeaderValue::from_static("timeout=1"),
    );
    assert!(keep_for(&h).is_zero());
    h.insert(
        "keep-alive",
        hyper::header::HeaderValue::from_static("timeout=75"),
    );
    assert_eq!(keep_for(&h), IDLE_TIMEOUT);
    h.insert(
        "keep-alive",
        hyper::header::HeaderValue::from_static("max=5, Timeout = 3"),
    );
    assert_eq!(keep_for(&h), Duration::from_secs(2), "keys ignore case");
}
