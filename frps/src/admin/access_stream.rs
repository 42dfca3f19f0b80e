//! `GET /api/v1/access-log`: the vhost ports' access log as it happens, as server-sent events
//! (`text/event-stream`), one `data:` line of JSON per request, optionally filtered by host
//! and status. A comment line goes out every [`KEEPALIVE`] so idle proxies in between keep
//! the stream open; a reader too slow for the traffic is told how many entries it missed.

use std::time::Duration;

use bytes::Bytes;
use frp_admin::{ApiError, ApiRequest, ApiResponse};
use hyper::header::{HeaderValue, CACHE_CONTROL};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::ServerApi;
use crate::vhost::AccessEntry;

/// How often an idle stream sends a comment line.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Which entries a stream carries (`?host=` and `?status=`, both optional).
#[derive(Clone, Debug, Default)]
struct Filter {
    /// Exact host, lowercase.
    host: Option<String>,
    /// An exact status (`404`) or a class (`5xx`, as its first digit).
    status: Option<Status>,
}

#[derive(Clone, Copy, Debug)]
enum Status {
    Exact(u16),
    Class(u16),
}

impl Filter {
    fn of(req: &ApiRequest) -> Result<Self, ApiError> {
        let status = match req.query_value("status")? {
            None => None,
            Some(s) => Some(parse_status(&s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status={s:?}: expected a code (404) or a class (5xx)"
                ))
            })?),
        };
        let host = req.query_value("host")?.map(|h| h.to_ascii_lowercase());
        Ok(Self { host, status })
    }

    fn matches(&self, e: &AccessEntry) -> bool {
        let host = self.host.as_ref().is_none_or(|h| *h == e.host);
        let status = match self.status {
            None => true,
            Some(Status::Exact(code)) => e.status == code,
            Some(Status::Class(digit)) => e.status / 100 == digit,
        };
        host && status
    }
}

fn parse_status(s: &str) -> Option<Status> {
    let s = s.trim().to_ascii_lowercase();
    if let Some(digit) = s.strip_suffix("xx") {
        let d: u16 = digit.parse().ok()?;
        return (1..=5).contains(&d).then_some(Status::Class(d));
    }
    let code: u16 = s.parse().ok()?;
    (100..=599).contains(&code).then_some(Status::Exact(code))
}

/// One entry as the stream sends it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView<'a> {
    client: String,
    scheme: &'a str,
    host: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    bytes: u64,
    duration_ms: u64,
    proxy: &'a str,
}

fn event(e: &AccessEntry) -> Bytes {
    let view = EntryView {
        client: e.client.to_string(),
        scheme: e.scheme,
        host: &e.host,
        method: &e.method,
        path: &e.path,
        status: e.status,
        bytes: e.bytes,
        duration_ms: u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
        proxy: &e.proxy,
    };
    let json = serde_json::to_string(&view).unwrap_or_default();
    Bytes::from(format!("data: {json}\n\n"))
}

impl ServerApi {
    pub(crate) fn access_log(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let filter = Filter::of(req)?;
        let state = (
            self.shared.access.subscribe(),
            self.shared.shutdown.clone(),
            filter,
        );
        let stream = futures_util::stream::unfold(state, |(mut rx, stop, filter)| async move {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return None,
                    r = tokio::time::timeout(KEEPALIVE, rx.recv()) => r,
                };
                let chunk = match next {
                    Err(_) => Bytes::from_static(b": keep-alive\n\n"),
                    Ok(Ok(e)) if filter.matches(&e) => event(&e),
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(n))) => Bytes::from(format!(": missed {n}\n\n")),
                    Ok(Err(RecvError::Closed)) => return None,
                };
                return Some((Ok(chunk), (rx, stop, filter)));
            }
        });
        let response = ApiResponse::stream("text/event-stream", Box::pin(stream));
        Ok(response.with_header(CACHE_CONTROL, HeaderValue::from_static("no-cache")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters() {
        assert!(matches!(parse_status("404"), Some(Status::Exact(404))));
        assert!(matches!(parse_status("5XX"), Some(Status::Class(5))));
        for bad in ["", "6xx", "0xx", "99", "600", "abc", "4x"] {
            assert!(parse_status(bad).is_none(), "{bad}");
        }
    }
}
