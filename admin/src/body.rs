//! Reading a request body whole, at most [`MAX_BODY`] bytes.
//!
//! A body over the limit, declared or sent, gets `413` (and the connection closes) after up
//! to [`DRAIN`] more bytes of it are read and dropped, for at most [`DRAIN_TIME`]: a server
//! that answers and closes while the client is still sending makes the kernel reset the
//! connection, and the reset can destroy the `413` before the client reads it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use crate::api::{ApiError, MAX_BODY};

/// How much of a refused body is read and dropped so the client sees its `413`.
const DRAIN: usize = 4 * MAX_BODY;
/// How long that may take.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The request's head and whole body.
///
/// # Errors
/// `413` for a body over [`MAX_BODY`] (declared or sent), `400` when it cannot be read.
pub(crate) async fn read(req: Request<Incoming>) -> Result<(Parts, Bytes), ApiError> {
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 1 MiB");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        drain(&mut body, DRAIN).await;
        return Err(too_large());
    }
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        let data = frame.data_ref().map_or(&[][..], |d| d.as_ref());
        if whole.len() + data.len() > MAX_BODY {
            drain(&mut body, DRAIN).await;
            return Err(too_large());
        }
        whole.extend_from_slice(data);
    }
    Ok((parts, Bytes::from(whole)))
}

/// Reads and drops up to `limit` bytes of `body`, within [`DRAIN_TIME`].
async fn drain(body: &mut Incoming, limit: usize) {
    let read = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}
