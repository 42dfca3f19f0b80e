//! The `[[proxies]]` keys of `http` and `https` proxies, turned into the [`VhostSpec`] that
//! travels in `Hello`. frps enforces all of it; frpc only checks it early so a mistake is a
//! config error naming the key, not a refusal at connect time.

use std::collections::BTreeMap;
use std::fmt;

use frp_proto::vhost::validate_spec;
use frp_proto::{CorsSpec, HeaderPair, ProxyKind, Secret, VhostSpec};
use serde::Deserialize;

use crate::config::ProxyEntry;

/// A password from the config file; its `Debug` never shows it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// `requestHeaders` / `responseHeaders`: frp's `set.<name> = value` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSection {
    /// Headers to set, replacing any of the same name.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// `cors` of an http proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorsSection {
    /// Origins allowed (`https://app.example.com`), or `"*"`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for (default: the simple methods).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Whether cookies and authorization may be sent (default false).
    pub allow_credentials: Option<bool>,
    /// Seconds a browser may cache a preflight answer.
    pub max_age: Option<u32>,
}

impl ProxyEntry {
    /// The http-only keys that are set, by their config names.
    fn http_only_keys(&self) -> Vec<&'static str> {
        let set = [
            ("locations", self.locations.is_some()),
            ("hostHeaderRewrite", self.host_header_rewrite.is_some()),
            ("requestHeaders", self.request_headers.is_some()),
            ("responseHeaders", self.response_headers.is_some()),
            ("httpUser", self.http_user.is_some()),
            ("httpPassword", self.http_password.is_some()),
            ("cors", self.cors.is_some()),
            ("redirectHTTPS", self.redirect_https.is_some()),
            ("allowEncodedSlashes", self.allow_encoded_slashes.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }

    /// The first vhost key that is set, by its config name.
    fn first_vhost_key(&self) -> Option<&'static str> {
        let names = [
            ("customDomains", self.custom_domains.is_some()),
            ("subdomain", self.subdomain.is_some()),
        ];
        let named = names.iter().find(|(_, on)| *on).map(|(k, _)| *k);
        named.or_else(|| self.http_only_keys().first().copied())
    }
}

/// Builds the vhost part of proxy `at` of `kind`.
///
/// # Errors
/// Names the key (`proxies[1].customDomains`) and what is wrong with it.
pub fn vhost_spec(at: &str, kind: ProxyKind, keys: &ProxyEntry) -> Result<VhostSpec, String> {
    match kind {
        ProxyKind::Tcp => {
            if let Some(key) = keys.first_vhost_key() {
                return Err(format!(
                    "{at}.{key} is for type \"http\" or \"https\" proxies, not \"tcp\""
                ));
            }
            return Ok(VhostSpec::default());
        }
        ProxyKind::Https => {
            if let Some(key) = keys.http_only_keys().first() {
                return Err(format!(
                    "{at}.{key} is not available for type \"https\": frps passes its TLS through untouched; use type \"http\""
                ));
            }
        }
        ProxyKind::Http => {}
    }
    let spec = build(keys);
    if spec.custom_domains.is_empty() && spec.subdomain.is_empty() {
        return Err(format!(
            "{at}: a type \"{kind}\" proxy needs customDomains or subdomain"
        ));
    }
    check_counts(at, &spec)?;
    validate_spec(&spec).map_err(|e| format!("{at}: {e}"))?;
    Ok(spec)
}

fn build(keys: &ProxyEntry) -> VhostSpec {
    let lower = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|d| d.to_ascii_lowercase()).collect()
    };
    let headers = |h: &Option<HeaderSection>| -> Vec<HeaderPair> {
        h.iter()
            .flat_map(|s| &s.set)
            .map(|(name, value)| HeaderPair {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    };
    VhostSpec {
        custom_domains: lower(&keys.custom_domains),
        subdomain: keys
            .subdomain
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        locations: keys.locations.clone().unwrap_or_default(),
        host_header_rewrite: keys.host_header_rewrite.clone().unwrap_or_default(),
        request_headers: headers(&keys.request_headers),
        response_headers: headers(&keys.response_headers),
        http_user: keys.http_user.clone().unwrap_or_default(),
        http_password: Secret::new(keys.http_password.clone().unwrap_or_default().0),
        cors: keys.cors.as_ref().map(|c| CorsSpec {
            allow_origins: c.allow_origins.clone(),
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
            allow_credentials: c.allow_credentials.unwrap_or(false),
            max_age: c.max_age.unwrap_or(0),
        }),
        redirect_https: keys.redirect_https.unwrap_or(false),
        allow_encoded_slashes: keys.allow_encoded_slashes.unwrap_or(false),
    }
}

/// The wire limits, reported with the config's key names.
fn check_counts(at: &str, spec: &VhostSpec) -> Result<(), String> {
    let max = frp_proto::vhost::MAX_VHOST_ITEMS;
    let cors = spec.cors.clone().unwrap_or_default();
    let lists = [
        ("customDomains", spec.custom_domains.len()),
        ("locations", spec.locations.len()),
        ("requestHeaders.set", spec.request_headers.len()),
        ("responseHeaders.set", spec.response_headers.len()),
        ("cors.allowOrigins", cors.allow_origins.len()),
        ("cors.allowMethods", cors.allow_methods.len()),
        ("cors.allowHeaders", cors.allow_headers.len()),
    ];
    match lists.iter().find(|(_, n)| *n > max) {
        Some((key, n)) => Err(format!(
            "{at}.{key} has {n} entries; at most {max} are allowed"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(text: &str) -> ProxyEntry {
        toml::from_str(&format!(
            "name = \"p\"\ntype = \"http\"\nlocalPort = 80\n{text}"
        ))
        .unwrap()
    }

    #[test]
    fn http_proxy_with_every_key() {
        let k = keys(
            r#"customDomains = ["App.Example.com"]
            locations = ["/api"]
            hostHeaderRewrite = "backend"
            requestHeaders.set.x-from = "frps"
            responseHeaders.set.x-frame-options = "DENY"
            httpUser = "admin"
            httpPassword = "hunter2"
            redirectHTTPS = true
            allowEncodedSlashes = true
            cors = { allowOrigins = ["https://ui.example.com"], maxAge = 60 }"#,
        );
        let s = vhost_spec("proxies[0]", ProxyKind::Http, &k).unwrap();
        assert_eq!(s.custom_domains, ["app.example.com"]);
        assert_eq!(s.request_headers[0].name, "x-from");
        assert_eq!(s.http_password.expose(), "hunter2");
        assert_eq!(s.cors.unwrap().max_age, 60);
        assert!(s.allow_encoded_slashes);
        assert!(!format!("{k:?}").contains("hunter2"));
    }

    #[test]
    fn refusals_name_the_key() {
        let e = vhost_spec(
            "proxies[2]",
            ProxyKind::Https,
            &keys("customDomains = [\"a.io\"]\nlocations = [\"/\"]"),
        )
        .unwrap_err();
        assert!(
            e.contains("proxies[2].locations") && e.contains("https"),
            "{e}"
        );
        let e = vhost_spec("p", ProxyKind::Tcp, &keys("subdomain = \"x\"")).unwrap_err();
        assert!(e.contains("not \"tcp\""), "{e}");
        let e = vhost_spec("p", ProxyKind::Http, &keys("locations = [\"/\"]")).unwrap_err();
        assert!(e.contains("needs customDomains or subdomain"), "{e}");
        let e = vhost_spec("p", ProxyKind::Http, &keys("customDomains = [\"a b\"]")).unwrap_err();
        assert!(e.contains("\"a b\""), "{e}");
        let e = vhost_spec(
            "p",
            ProxyKind::Http,
            &keys("subdomain = \"a\"\nhttpUser = \"u\""),
        )
        .unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let many = format!("customDomains = [{}]", vec!["\"a.io\""; 17].join(","));
        let e = vhost_spec("p", ProxyKind::Http, &keys(&many)).unwrap_err();
        assert!(e.contains("p.customDomains has 17"), "{e}");
    }
}
