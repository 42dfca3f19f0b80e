//! What a program plugs into the admin server: a [`Handler`] that turns an [`ApiRequest`]
//! into an [`ApiResponse`].
//!
//! Requests reach the handler authenticated, with their body read whole (at most
//! [`MAX_BODY`]); the handler never sees `/healthz`, `/readyz` or `/metrics`, which the
//! server answers itself. Errors are JSON objects `{"error": "..."}` with a fitting status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest request body accepted; larger ones get `413`.
pub const MAX_BODY: usize = 1024 * 1024;

/// One authenticated request.
#[derive(Debug)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The path, percent-decoding not applied (`/api/v1/clients/node1`).
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// Who sent it.
    pub peer: SocketAddr,
}

impl ApiRequest {
    /// The path's segments after `prefix` (`/api/v1`), or `None` when it does not start there.
    pub fn route(&self, prefix: &str) -> Option<Vec<String>> {
        let rest = self.path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v)).flatten()
        })
    }

    /// The first value of query parameter `name`, for a filter: unlike
    /// [`query_param`](Self::query_param), a value that is not valid percent-encoded UTF-8 is an error
    /// rather than no filter.
    ///
    /// # Errors
    /// `400` naming the parameter.
    pub fn query_value(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(q) = self.query.as_deref() else {
            return Ok(None);
        };
        let raw = q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        });
        match raw {
            None => Ok(None),
            Some(v) => percent_decode(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("{name}: not valid percent-encoded UTF-8"))
            }),
        }
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    /// `400` naming what is wrong (syntax, a missing or unknown field), or `415` when the
    /// body is not declared as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let declared = self
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        if declared.as_deref() != Some("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8 or an escape is malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A streamed response body (server-sent events).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>;

/// A response body: whole, or streamed.
pub enum Body {
    /// The whole body.
    Full(Bytes),
    /// Chunks as they come.
    Stream(BodyStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(b) => write!(f, "Full({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct ApiResponse {
    /// The status.
    pub status: StatusCode,
    /// Headers besides the ones the server adds (security headers, `Content-Length`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Body,
}

impl ApiResponse {
    /// `status` with `value` as JSON.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::bytes(status, "application/json", body),
            Err(e) => ApiError::internal(format!("encoding the answer: {e}")).into(),
        }
    }

    /// `200` with `value` as JSON.
    pub fn ok(value: &impl Serialize) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// `204 No Content`.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Body::Full(Bytes::new()),
        }
    }

    /// `status` with a body of `content_type`.
    pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            )],
            body: Body::Full(body.into()),
        }
    }

    /// A streamed `200` of `content_type`.
    pub fn stream(content_type: &'static str, body: BodyStream) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            )],
            body: Body::Stream(body),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// An error answer: a status and a message for `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, for the user.
    pub message: String,
    /// The input field (a config key such as `localPort`) the message is about, when it is
    /// about one: a form shows the message next to it.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, about input field `field`.
    #[must_use]
    pub fn about(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// `409 Conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// `500 Internal Server Error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `405 Method Not Allowed` for `method` on `path`.
    pub fn method(method: &Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        )
    }
}

impl From<ApiError> for ApiResponse {
    fn from(e: ApiError) -> Self {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        let body = Body {
            error: &e.message,
            field: e.field.as_deref(),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Self::bytes(e.status, "application/json", body)
    }
}

impl<T: Into<ApiResponse>> From<Result<T, ApiError>> for ApiResponse {
    fn from(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(v) => v.into(),
            Err(e) => e.into(),
        }
    }
}

/// The program's part of the admin server.
pub trait Handler: Send + Sync + 'static {
    /// Answers one authenticated request (anything but the health probes and `/metrics`).
    fn handle(&self, req: ApiRequest) -> BoxFuture<'_, ApiResponse>;

    /// Whether the program is ready to serve (`/readyz`): its listeners are bound, and for a
    /// client, its session is up. The reason when it is not.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// The program's dashboard, served at `/` and `/ui/*` (behind the same credentials).
    fn dashboard(&self) -> Option<&crate::assets::Dashboard> {
        None
    }
}

/// `t` as RFC 3339 in UTC, whole seconds (`2026-12-02T11:06:04Z`), as the APIs show times;
/// `None` before 1970 or past what the format can hold.
pub fn rfc3339(t: std::time::SystemTime) -> Option<String> {
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(path: &str, query: Option<&str>) -> ApiRequest {
        ApiRequest {
            method: Method::GET,
            path: path.into(),
            query: query.map(Into::into),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn routes_split_and_decode_segments() {
        let r = req("/api/v1/proxies/a%2Eb/", None);
        assert_eq!(r.route("/api/v1").unwrap(), ["proxies", "a.b"]);
        assert_eq!(req("/api/v1", None).route("/api/v1").unwrap().len(), 0);
        assert!(req("/api/v10", None).route("/api/v1").is_none());
        assert!(req("/api/v1/%ff", None).route("/api/v1").is_none());
        assert!(req("/api/v1/%f", None).route("/api/v1").is_none());
    }

    #[test]
    fn query_parameters() {
        let r = req("/", Some("type=tcp&x=a%20b&flag"));
        assert_eq!(r.query_param("type").as_deref(), Some("tcp"));
        assert_eq!(r.query_param("x").as_deref(), Some("a b"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("nope"), None);
    }

    #[test]
    fn json_bodies_need_the_content_type() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct T {
            #[allow(dead_code)]
            a: u8,
        }
        let mut r = req("/", None);
        r.body = Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(r.json::<T>().unwrap_err().status, 415);
        r.headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(r.json::<T>().is_ok());
        r.body = Bytes::from_static(br#"{"a":1,"b":2}"#);
        let e = r.json::<T>().unwrap_err();
        assert!(e.message.contains("unknown field `b`"), "{}", e.message);
        r.body = Bytes::from_static(b"{");
        assert_eq!(r.json::<T>().unwrap_err().status, 400);
    }

    #[test]
    fn errors_are_json_objects() {
        let r: ApiResponse = ApiError::not_found("no client \"x\"").into();
        assert_eq!(r.status, 404);
        let Body::Full(b) = r.body else { panic!() };
        assert_eq!(&b[..], br#"{"error":"no client \"x\""}"#);
        let r: ApiResponse = ApiError::bad_request("bad port").about("localPort").into();
        let Body::Full(b) = r.body else { panic!() };
        assert_eq!(&b[..], br#"{"error":"bad port","field":"localPort"}"#);
    }
}
