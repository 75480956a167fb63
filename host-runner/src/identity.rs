//! The user id the credential belongs to, as the host itself learned it.
//!
//! `{user}` in the grants ([`crate::capability`]) must never be a value the
//! connector chose, or a hostile one could read another user's DAV root
//! (`remote.php/dav/files/bob/`) with a credential that reaches it (an
//! admin's). The login name is not the user id either (LDAP and e-mail
//! logins differ), so the host asks the server once, with its own request,
//! and keeps the answer in the database, where no import of the connector
//! reaches: later runs cost no extra request, and a no-change sync stays at
//! two. Nextcloud never changes a user's id.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpError, OutgoingRequest};
use crate::store::Store;

/// The longest user id accepted (Nextcloud allows 64 characters).
const MAX_USER_ID: usize = 255;

/// The key the resolved id is kept under: one login at one install.
fn account_key(config: &Config) -> String {
    format!("{}@{}", config.username, config.base_url)
}

/// The user id of `config`'s credential: remembered, or asked of the server.
pub fn resolve(config: &Config, http: &HttpClient, store: &Store) -> Result<String> {
    let key = account_key(config);
    if let Some(id) = store.host_identity(&key)? {
        return Ok(id);
    }
    let url = format!("{}/ocs/v2.php/cloud/user?format=json", config.base_url);
    let mut request = OutgoingRequest::get(url.as_str());
    request.headers = vec![
        ("OCS-APIRequest".into(), "true".into()),
        ("Accept".into(), "application/json".into()),
    ];
    let (status, body) = http.send_for_host(request).map_err(|e| match e {
        HttpError::Unauthorized(m) => Error::Unauthorized(m),
        other => Error::Server(format!(
            "cannot ask Nextcloud who the credential belongs to: {other}"
        )),
    })?;
    let id = match status {
        200 => user_id(&body).map_err(|why| {
            Error::Server(format!(
                "the answer to GET {url} is not Nextcloud's user JSON ({why}); check base_url"
            ))
        })?,
        404 => {
            return Err(Error::Server(format!(
                "no Nextcloud answered at {} (HTTP 404 for the OCS user endpoint); check base_url",
                config.base_url
            )));
        }
        status => {
            return Err(Error::Server(format!(
                "GET {url} answered HTTP {status}; the host cannot learn the user id it grants access to"
            )));
        }
    };
    store.set_host_identity(&key, &id)?;
    tracing::debug!("the credential belongs to user id `{id}`");
    Ok(id)
}

/// `ocs.data.id`, checked to be a plausible single path segment.
fn user_id(body: &[u8]) -> std::result::Result<String, String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let id = json
        .pointer("/ocs/data/id")
        .and_then(|v| v.as_str())
        .ok_or("no `ocs.data.id` string")?;
    if id.is_empty()
        || id.len() > MAX_USER_ID
        || id == "."
        || id == ".."
        || id.chars().any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(format!("`{}` is not a usable user id", id.escape_debug()));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_id_is_read_and_checked() {
        let body = |id: &str| {
            serde_json::json!({"ocs": {"meta": {"status": "ok"}, "data": {"id": id, "displayname": "A"}}})
                .to_string()
        };
        assert_eq!(user_id(body("alice").as_bytes()).unwrap(), "alice");
        assert_eq!(
            user_id(body("Ål ice@x.org").as_bytes()).unwrap(),
            "Ål ice@x.org"
        );
        for bad in ["", "..", "a/b", "a\\b", "a\nb", &"x".repeat(300)] {
            assert!(user_id(body(bad).as_bytes()).is_err(), "{bad:?}");
        }
        assert!(user_id(b"<html>").is_err());
        assert!(user_id(br#"{"ocs":{"data":{"id":7}}}"#).is_err());
    }
}
