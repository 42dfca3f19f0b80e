//! HTTP basic authentication, checked at frps so a request without the right password never
//! reaches the client.

use std::fmt;

use base64::Engine as _;
use hyper::header::HeaderValue;

/// The one user and password a proxy accepts.
#[derive(Clone)]
pub struct BasicAuth {
    user: String,
    password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BasicAuth {
    /// Accepts `user` with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// Whether an `Authorization` header carries this user and password.
    pub fn allows(&self, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(decode) else {
            return false;
        };
        // Both compared in full whatever the first says, so timing tells nothing.
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let password_ok = constant_time_eq(password.as_bytes(), self.password.as_bytes());
        user_ok & password_ok
    }

    /// The `WWW-Authenticate` value of a 401 (realm `frp-quic`).
    pub fn challenge() -> HeaderValue {
        HeaderValue::from_static("Basic realm=\"frp-quic\", charset=\"UTF-8\"")
    }
}

/// `Basic base64(user:password)` -> (user, password).
fn decode(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let pair = String::from_utf8(bytes).ok()?;
    let (user, password) = pair.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len_differs = u8::from(a.len() != b.len());
    let diff = a
        .iter()
        .zip(b.iter().cycle())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    (diff | len_differs) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {token}")).expect("header")
    }

    #[test]
    fn right_password_passes_and_everything_else_fails() {
        let auth = BasicAuth::new("admin", "s3cret:with-colon");
        assert!(auth.allows(Some(&basic("admin:s3cret:with-colon"))));
        assert!(!auth.allows(None));
        assert!(!auth.allows(Some(&basic("admin:wrong"))));
        assert!(!auth.allows(Some(&basic("root:s3cret:with-colon"))));
        assert!(!auth.allows(Some(&basic("admin:s3cret:with-colo"))));
        assert!(!auth.allows(Some(&basic("admin"))));
        assert!(!auth.allows(Some(&HeaderValue::from_static("Bearer abc"))));
        assert!(!auth.allows(Some(&HeaderValue::from_static("Basic !!!"))));
        let lower = format!(
            "basic {}",
            &basic("admin:s3cret:with-colon").to_str().unwrap_or("")[6..]
        );
        assert!(auth.allows(Some(&HeaderValue::from_str(&lower).expect("header"))));
    }

    #[test]
    fn equality_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcabc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", BasicAuth::new("admin", "hunter2"));
        assert!(
            shown.contains("admin") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(BasicAuth::challenge()
            .to_str()
            .unwrap_or("")
            .contains("realm=\"frp-quic\""));
    }
}
