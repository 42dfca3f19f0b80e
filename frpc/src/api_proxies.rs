//! `/api/v1/proxies`: list, create and delete proxies, written back to the config file.

use frp_admin::{ApiError, ApiRequest, ApiResponse};
use hyper::StatusCode;
use serde::Serialize;

use crate::api::{proxy_views, ClientApi, ProxyView};
use crate::config::ProxyEntry;
use crate::config_edit::{self, EditError};
use crate::reload::ReloadReport;

/// The answer to `POST` and `DELETE`: the reload it caused, and the proxy as it is now.
#[derive(Debug, Serialize)]
struct Changed {
    reload: ReloadReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<ProxyView>,
}

impl ClientApi {
    /// `GET /api/v1/proxies`: every proxy with its state and its keys in the file.
    pub(crate) fn list_proxies(&self) -> Result<ApiResponse, ApiError> {
        let mut views = proxy_views(&self.handle.status(), &self.handle.settings());
        let entries = self.file_entries();
        for v in &mut views {
            v.config = entries
                .iter()
                .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(v.name.as_str()))
                .cloned();
        }
        Ok(ApiResponse::ok(&views))
    }

    /// `GET /api/v1/proxies/{name}`.
    pub(crate) fn get_proxy(&self, name: &str) -> Result<ApiResponse, ApiError> {
        let mut views = proxy_views(&self.handle.status(), &self.handle.settings());
        let Some(mut v) = views.drain(..).find(|v| v.name == name) else {
            return Err(ApiError::not_found(format!("no proxy named {name:?}")));
        };
        let entries = self.file_entries();
        v.config = entries
            .into_iter()
            .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name));
        Ok(ApiResponse::ok(&v))
    }

    /// `POST /api/v1/proxies`: one proxy as frpc.toml's keys in JSON, validated as the file
    /// would be, written to it and registered. `201`, `400`, or `409` for a name in use.
    pub(crate) async fn add_proxy(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let (body, parsed) = proxy_body(req)?;
        let entry = body.as_object().cloned().unwrap_or_default();
        let _one = self.changing.lock().await;
        let text = self.read()?;
        if config_edit::proxy_names(&text)
            .map_err(edit_error)?
            .contains(&parsed.name)
        {
            let why = format!("a proxy named {:?} exists", parsed.name);
            return Err(ApiError::conflict(why).about("name"));
        }
        let new_text = config_edit::add_proxy(&text, &entry).map_err(edit_error)?;
        let reload = self.commit(&new_text).await?;
        let proxy = self.proxy_now(&parsed.name);
        Ok(ApiResponse::json(
            StatusCode::CREATED,
            &Changed { reload, proxy },
        ))
    }

    /// `PUT /api/v1/proxies/{name}`: the proxy's entry replaced by the body (the keys of a
    /// `[[proxies]]` entry, its `name` unchanged), validated as the file would be and applied
    /// as a reload: the proxy is registered again with its new settings. `404` for a name
    /// the file does not have.
    pub(crate) async fn replace_proxy(
        &self,
        name: &str,
        req: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let (body, parsed) = proxy_body(req)?;
        if parsed.name != name {
            let why = format!("the name cannot change ({name:?}): remove the proxy and add one");
            return Err(ApiError::bad_request(why).about("name"));
        }
        let entry = body.as_object().cloned().unwrap_or_default();
        let _one = self.changing.lock().await;
        let without = without(&self.read()?, name)?;
        let new_text = config_edit::add_proxy(&without, &entry).map_err(edit_error)?;
        let reload = self.commit(&new_text).await?;
        let proxy = self.proxy_now(name);
        Ok(ApiResponse::ok(&Changed { reload, proxy }))
    }

    /// `DELETE /api/v1/proxies/{name}`: removed from the file and withdrawn. `404` for a name
    /// the file does not have.
    pub(crate) async fn delete_proxy(&self, name: &str) -> Result<ApiResponse, ApiError> {
        let _one = self.changing.lock().await;
        let new_text = without(&self.read()?, name)?;
        let reload = self.commit(&new_text).await?;
        Ok(ApiResponse::ok(&Changed {
            reload,
            proxy: None,
        }))
    }

    /// Validates the new file's `text` (errors naming their key), writes it and applies it.
    async fn commit(&self, text: &str) -> Result<ReloadReport, ApiError> {
        let settings = self.validate(text).map_err(|e| about_field(e, None))?;
        self.write(text)?;
        self.apply(settings).await
    }

    /// Proxy `name` as it is now.
    fn proxy_now(&self, name: &str) -> Option<ProxyView> {
        let views = proxy_views(&self.handle.status(), &self.handle.settings());
        views.into_iter().find(|v| v.name == name)
    }

    /// The `[[proxies]]` entries of the file as JSON, secrets redacted; none if it does not
    /// parse (the status still lists the running proxies).
    fn file_entries(&self) -> Vec<serde_json::Value> {
        let Ok(text) = self.read() else {
            return Vec::new();
        };
        let Ok(table) = toml::from_str::<toml::Table>(&text) else {
            return Vec::new();
        };
        let Some(list) = table.get("proxies").and_then(toml::Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|v| {
                let mut json = serde_json::to_value(v).ok()?;
                if let Some(pw) = json.get_mut("httpPassword") {
                    *pw = serde_json::Value::String("<redacted>".into());
                }
                Some(json)
            })
            .collect()
    }
}

/// The file's `text` without proxy `name`; `404` when it has none.
fn without(text: &str, name: &str) -> Result<String, ApiError> {
    match config_edit::remove_proxy(text, name) {
        Err(EditError::NotFound(_)) => Err(ApiError::not_found(format!("no proxy named {name:?}"))),
        other => other.map_err(edit_error),
    }
}

/// A proxy body: a JSON object of `[[proxies]]` keys, checked with the file's types; errors
/// name the key they are about.
fn proxy_body(req: &ApiRequest) -> Result<(serde_json::Value, ProxyEntry), ApiError> {
    let body: serde_json::Value = req.json()?;
    if !body.is_object() {
        let why = "the body must be a JSON object of [[proxies]] keys";
        return Err(ApiError::bad_request(why));
    }
    let parsed: ProxyEntry = serde_path_to_error::deserialize(body.clone()).map_err(|e| {
        let key = e.path().iter().next().map(ToString::to_string);
        let error = ApiError::bad_request(format!("invalid proxy: {}", e.inner()));
        about_field(error, key)
    })?;
    Ok((body, parsed))
}

/// `error` about input field `key`, or the `[[proxies]]` key its message names (`proxies[3].
/// localPort = 0: ...`, ``missing field `name` ``), so a form can show it beside that field.
fn about_field(error: ApiError, key: Option<String>) -> ApiError {
    let named = || {
        let m = &error.message;
        let after = |pat: &str| m.find(pat).map(|i| &m[i + pat.len()..]);
        let in_proxies = m
            .find("proxies[")
            .and_then(|i| m[i..].find("].").map(|j| &m[i + j + 2..]));
        let key = in_proxies.or_else(|| after("field `"))?;
        let end = key
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(key.len());
        (end > 0).then(|| key[..end].to_string())
    };
    match key.filter(|k| !k.is_empty() && k != ".").or_else(named) {
        Some(k) => error.about(k),
        None => error,
    }
}

fn edit_error(e: EditError) -> ApiError {
    ApiError::bad_request(format!("the config file cannot be edited: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn field(message: &str) -> Option<String> {
        about_field(ApiError::bad_request(message), None).field
    }

    #[test]
    fn errors_name_the_key_they_are_about() {
        let m = "/etc/frpc.toml: proxies[3].localPort = 0: must be a port between 1 and 65535";
        assert_eq!(field(m).as_deref(), Some("localPort"));
        assert_eq!(
            field("invalid proxy: missing field `name`").as_deref(),
            Some("name")
        );
        let m = "invalid proxy: unknown field `colour`, expected one of `name`, `type`";
        assert_eq!(field(m).as_deref(), Some("colour"));
        assert_eq!(field("the config file cannot be edited"), None);
        let e = about_field(ApiError::bad_request("x"), Some("remotePort".into()));
        assert_eq!(e.field.as_deref(), Some("remotePort"));
    }
}
