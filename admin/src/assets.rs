//! The dashboard's files, embedded in the binary: nothing is read from disk or fetched at run
//! time, and the page loads only from its own origin (see
//! [`CONTENT_SECURITY_POLICY`](crate::CONTENT_SECURITY_POLICY): no inline script or style).
//!
//! Each program brings its page ([`Dashboard`]: `index.html` and `app.js`); the stylesheet,
//! the shared script module and the icon are common to frps and frpc. Served at `/` and
//! `/ui/*` for `GET` and `HEAD`, with a strong `ETag` so a browser revalidates instead of
//! downloading again (`Cache-Control: private, no-cache`).

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::api::ApiResponse;

/// One program's page.
#[derive(Debug, Clone, Copy)]
pub struct Dashboard {
    /// `index.html`, served at `/`.
    pub index: &'static [u8],
    /// `app.js`, served at `/ui/app.js` (an ES module importing `./common.js`).
    pub app: &'static [u8],
}

const STYLE: &[u8] = include_bytes!("../assets/style.css");
const COMMON: &[u8] = include_bytes!("../assets/common.js");
const FAVICON: &[u8] = include_bytes!("../assets/favicon.svg");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

impl Dashboard {
    /// Every file of this page with its path and type: what a browser loads, in all.
    pub fn files(&self) -> [(&'static str, &'static str, &'static [u8]); 5] {
        [
            ("/", HTML, self.index),
            ("/ui/app.js", JS, self.app),
            ("/ui/common.js", JS, COMMON),
            ("/ui/style.css", CSS, STYLE),
            ("/ui/favicon.svg", SVG, FAVICON),
        ]
    }

    /// The total size of the page's files in bytes (uncompressed).
    pub fn weight(&self) -> usize {
        self.files().iter().map(|(_, _, b)| b.len()).sum()
    }

    /// The file a `method` request for `path` asks for, or `None` when it is not a `GET` or
    /// `HEAD` of one of them. `headers` are the request's (`If-None-Match`).
    pub fn serve(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<ApiResponse> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return None;
        }
        let path = match path {
            "/index.html" | "/ui" | "/ui/" => "/",
            p => p,
        };
        let (_, kind, body) = self.files().into_iter().find(|(p, _, _)| *p == path)?;
        let etag = etag(body);
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == etag || t.trim() == "*");
        let answer = match fresh {
            true => ApiResponse::bytes(StatusCode::NOT_MODIFIED, kind, Bytes::new()),
            false => ApiResponse::bytes(StatusCode::OK, kind, Bytes::from_static(body)),
        };
        let etag = HeaderValue::from_str(&etag).ok()?;
        Some(answer.with_header(header::ETAG, etag).with_header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ))
    }
}

/// A strong validator: the first 16 bytes of the file's SHA-256, quoted.
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PAGE: Dashboard = Dashboard {
        index: b"<!doctype html>",
        app: b"import './common.js';",
    };

    fn get(path: &str, headers: HeaderMap) -> Option<ApiResponse> {
        PAGE.serve(&Method::GET, path, &headers)
    }

    #[test]
    fn serves_each_file_with_its_type_and_revalidates() {
        let page = get("/", HeaderMap::new()).unwrap();
        assert_eq!(page.status, StatusCode::OK);
        let kind = |r: &ApiResponse| {
            r.headers
                .iter()
                .find(|(n, _)| n == header::CONTENT_TYPE)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(kind(&page).unwrap(), HTML);
        assert_eq!(
            kind(&get("/ui/app.js", HeaderMap::new()).unwrap()).unwrap(),
            JS
        );
        assert_eq!(
            kind(&get("/ui/style.css", HeaderMap::new()).unwrap()).unwrap(),
            CSS
        );
        let tag = page
            .headers
            .iter()
            .find(|(n, _)| n == header::ETAG)
            .unwrap()
            .1
            .clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(get("/", h).unwrap().status, StatusCode::NOT_MODIFIED);
        assert!(get("/ui/nope.js", HeaderMap::new()).is_none());
        assert!(get("/api/v1/status", HeaderMap::new()).is_none());
        assert_eq!(
            PAGE.weight(),
            PAGE.files().iter().map(|f| f.2.len()).sum::<usize>()
        );
    }
}
