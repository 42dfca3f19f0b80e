//! Wire encoding of [`VhostSpec`], the tail of an `http` or `https` [`ProxySpec`](crate::ProxySpec).
//!
//! The spec travels as `u16 len | fields`: a decoder reads the fields it knows and skips the
//! rest of the `len` bytes, so a later minor version can append fields that an older peer
//! ignores. Fields (every list is `u16 count` + items, every text `u16 len` + UTF-8):
//! `list<text> customDomains`, `text subdomain`, `list<text> locations`,
//! `text hostHeaderRewrite`, `list<header> requestHeaders`, `list<header> responseHeaders`,
//! `text httpUser`, `text httpPassword`, `u8 cors` (0 = none, 1 = `list<text> origins`,
//! `list<text> methods`, `list<text> headers`, `u8 credentials`, `u32 maxAge`),
//! `u8 redirectHTTPS`, `u8 allowEncodedSlashes`; a header is `text name`, `text value`;
//! booleans are 0 or 1.
//!
//! # Adding fields
//!
//! Every field changes what the server enforces, so a server must understand each field a
//! client sets. A field added later is appended, and gated by the minor version that
//! introduced it ([`VhostSpec::first_key_newer_than`]): frpc refuses, locally and by key, a
//! proxy that sets a field the server's `Welcome` minor does not know, instead of letting an
//! older server skip it (which would fail open: a password or a refusal silently dropped).
//! Skipping unknown trailing bytes is only for forward compatibility: fields a newer peer
//! sends at their defaults, or hints that change nothing a server enforces. A decoder reads
//! the fields of its own minor; fields of later minors, when added, must decode as their
//! default when absent (an older client does not send them). Every field below is minor 1.

use bytes::{Buf, BufMut};

use crate::coding::get_u16;

use crate::coding::{
    get_bool, get_list_max, get_string, get_u32, get_u8, put_list_max, put_str, Decode, Encode,
};
use crate::vhost::{
    CorsSpec, HeaderPair, Secret, VhostSpec, MAX_DOMAIN_LEN, MAX_HEADER_NAME_LEN,
    MAX_HEADER_VALUE_LEN, MAX_LOCATION_LEN, MAX_PASSWORD_LEN, MAX_USER_LEN, MAX_VHOST_ITEMS,
};
use crate::CodecError;

/// Reads a length-prefixed [`VhostSpec`], skipping fields after the ones this version knows.
pub(crate) fn get_vhost<B: Buf>(buf: &mut B) -> Result<VhostSpec, CodecError> {
    let len = usize::from(get_u16(buf, "vhost spec length")?);
    if buf.remaining() < len {
        return Err(CodecError::Truncated { what: "vhost spec" });
    }
    let mut inner = buf.take(len);
    let spec = VhostSpec::decode(&mut inner)?;
    // Fields appended by a newer minor version.
    let rest = inner.remaining();
    inner.advance(rest);
    Ok(spec)
}

/// Writes a [`VhostSpec`] behind its `u16` length.
pub(crate) fn put_vhost<B: BufMut>(buf: &mut B, spec: &VhostSpec) -> Result<(), CodecError> {
    let mut body = Vec::new();
    spec.encode(&mut body)?;
    let len = u16::try_from(body.len()).map_err(|_| CodecError::FrameTooLarge {
        len: body.len(),
        max: usize::from(u16::MAX),
    })?;
    buf.put_u16(len);
    buf.put_slice(&body);
    Ok(())
}

/// The frpc keys of the fields a [`VhostSpec`] sets, each with the protocol minor that
/// introduced it and whether this spec sets it (differs from the default). The two naming
/// keys come first; every later one is HTTP-only ([`VhostSpec::has_http_settings`]).
pub(crate) fn keys(spec: &VhostSpec) -> [(&'static str, u16, bool); 11] {
    [
        ("customDomains", 1, !spec.custom_domains.is_empty()),
        ("subdomain", 1, !spec.subdomain.is_empty()),
        ("locations", 1, !spec.locations.is_empty()),
        ("hostHeaderRewrite", 1, !spec.host_header_rewrite.is_empty()),
        ("requestHeaders", 1, !spec.request_headers.is_empty()),
        ("responseHeaders", 1, !spec.response_headers.is_empty()),
        ("httpUser", 1, !spec.http_user.is_empty()),
        ("httpPassword", 1, !spec.http_password.is_empty()),
        ("cors", 1, spec.cors.is_some()),
        ("redirectHTTPS", 1, spec.redirect_https),
        ("allowEncodedSlashes", 1, spec.allow_encoded_slashes),
    ]
}

impl VhostSpec {
    /// The first key this spec sets that a server speaking protocol minor `minor` does not
    /// know, with the minor it needs: frpc must not send such a proxy, since the server
    /// would skip the field and enforce less than the config says.
    pub fn first_key_newer_than(&self, minor: u16) -> Option<(&'static str, u16)> {
        keys(self)
            .into_iter()
            .find(|(_, since, set)| *set && *since > minor)
            .map(|(key, since, _)| (key, since))
    }
}

/// A label is at most 63 bytes.
const MAX_LABEL_LEN: usize = 63;

fn get_texts<B: Buf>(
    buf: &mut B,
    what: &'static str,
    max_len: usize,
) -> Result<Vec<String>, CodecError> {
    get_list_max(buf, what, MAX_VHOST_ITEMS, |b| get_string(b, what, max_len))
}

fn put_texts<B: BufMut>(
    buf: &mut B,
    items: &[String],
    what: &'static str,
    max_len: usize,
) -> Result<(), CodecError> {
    put_list_max(buf, items, what, MAX_VHOST_ITEMS, |b, s| {
        put_str(b, s, what, max_len)
    })
}

fn get_headers<B: Buf>(buf: &mut B, what: &'static str) -> Result<Vec<HeaderPair>, CodecError> {
    get_list_max(buf, what, MAX_VHOST_ITEMS, |b| {
        Ok(HeaderPair {
            name: get_string(b, "header name", MAX_HEADER_NAME_LEN)?,
            value: get_string(b, "header value", MAX_HEADER_VALUE_LEN)?,
        })
    })
}

fn put_headers<B: BufMut>(
    buf: &mut B,
    items: &[HeaderPair],
    what: &'static str,
) -> Result<(), CodecError> {
    put_list_max(buf, items, what, MAX_VHOST_ITEMS, |b, h| {
        put_str(b, &h.name, "header name", MAX_HEADER_NAME_LEN)?;
        put_str(b, &h.value, "header value", MAX_HEADER_VALUE_LEN)
    })
}

impl Decode for CorsSpec {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            allow_origins: get_texts(buf, "cors origins", MAX_DOMAIN_LEN)?,
            allow_methods: get_texts(buf, "cors methods", MAX_HEADER_NAME_LEN)?,
            allow_headers: get_texts(buf, "cors headers", MAX_HEADER_NAME_LEN)?,
            allow_credentials: get_bool(buf, "cors credentials")?,
            max_age: get_u32(buf, "cors max age")?,
        })
    }
}

impl Encode for CorsSpec {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_texts(buf, &self.allow_origins, "cors origins", MAX_DOMAIN_LEN)?;
        put_texts(
            buf,
            &self.allow_methods,
            "cors methods",
            MAX_HEADER_NAME_LEN,
        )?;
        put_texts(
            buf,
            &self.allow_headers,
            "cors headers",
            MAX_HEADER_NAME_LEN,
        )?;
        buf.put_u8(u8::from(self.allow_credentials));
        buf.put_u32(self.max_age);
        Ok(())
    }
}

impl Decode for VhostSpec {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            custom_domains: get_texts(buf, "custom domains", MAX_DOMAIN_LEN)?,
            subdomain: get_string(buf, "subdomain", MAX_LABEL_LEN)?,
            locations: get_texts(buf, "locations", MAX_LOCATION_LEN)?,
            host_header_rewrite: get_string(buf, "host header rewrite", MAX_DOMAIN_LEN)?,
            request_headers: get_headers(buf, "request headers")?,
            response_headers: get_headers(buf, "response headers")?,
            http_user: get_string(buf, "http user", MAX_USER_LEN)?,
            http_password: Secret::new(get_string(buf, "http password", MAX_PASSWORD_LEN)?),
            cors: match get_u8(buf, "cors")? {
                0 => None,
                1 => Some(CorsSpec::decode(buf)?),
                _ => return Err(CodecError::InvalidValue { what: "cors" }),
            },
            redirect_https: get_bool(buf, "redirect https")?,
            allow_encoded_slashes: get_bool(buf, "allow encoded slashes")?,
        })
    }
}

impl Encode for VhostSpec {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_texts(buf, &self.custom_domains, "custom domains", MAX_DOMAIN_LEN)?;
        put_str(buf, &self.subdomain, "subdomain", MAX_LABEL_LEN)?;
        put_texts(buf, &self.locations, "locations", MAX_LOCATION_LEN)?;
        put_str(
            buf,
            &self.host_header_rewrite,
            "host header rewrite",
            MAX_DOMAIN_LEN,
        )?;
        put_headers(buf, &self.request_headers, "request headers")?;
        put_headers(buf, &self.response_headers, "response headers")?;
        put_str(buf, &self.http_user, "http user", MAX_USER_LEN)?;
        let password = self.http_password.expose();
        put_str(buf, password, "http password", MAX_PASSWORD_LEN)?;
        match &self.cors {
            None => buf.put_u8(0),
            Some(cors) => {
                buf.put_u8(1);
                cors.encode(buf)?;
            }
        }
        buf.put_u8(u8::from(self.redirect_https));
        buf.put_u8(u8::from(self.allow_encoded_slashes));
        Ok(())
    }
}
