//! The long-lived answers of the test apiserver, sent chunked as they happen: a watch whose
//! events are separated by silent gaps, and `logs -f`.
//!
//! A producer task writes into a channel the response body reads from; when the client goes
//! away the body is dropped and the producer's next send fails, which ends it.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use tokio::sync::mpsc;

use super::objects::{self, WATCHED};
use crate::http::TestBody;

/// A chunked response whose chunks `produce` sends, with `content_type`.
fn streamed<F, Fut>(content_type: &'static str, produce: F) -> Response<TestBody>
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(produce(tx));
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let mut r = Response::new(StreamBody::new(frames).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `GET .../pods?watch=1`: one `ADDED` event per pod of [`WATCHED`], each after `gap` of
/// silence, then a last silent `gap` and the end of the stream.
pub(super) fn watch(namespace: &str, gap: Duration) -> Response<TestBody> {
    let namespace = namespace.to_string();
    streamed("application/json", move |tx| async move {
        for name in WATCHED {
            tokio::time::sleep(gap).await;
            let event = objects::event("ADDED", objects::pod(&namespace, name));
            if tx.send(Bytes::from(format!("{event}\n"))).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(gap).await;
    })
}

/// The `n`th line (from 1) of the container's log.
pub fn log_line(n: u32, of: u32) -> String {
    format!("log line {n} of {of}\n")
}

/// `GET .../log`: `lines` lines; when following, one every `interval` (the first at once), so
/// the stream lasts `(lines - 1) * interval`.
pub(super) fn logs(follow: bool, lines: u32, interval: Duration) -> Response<TestBody> {
    streamed("text/plain", move |tx| async move {
        for n in 1..=lines {
            if follow && n > 1 {
                tokio::time::sleep(interval).await;
            }
            if tx.send(Bytes::from(log_line(n, lines))).await.is_err() {
                return;
            }
        }
    })
}
