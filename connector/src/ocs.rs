//! OCS, Nextcloud's JSON API: every OCS request is built here and every
//! answer unwrapped here; the endpoints' own shapes live with their readers
//! (`cloud/user` and `status.php` below, shares in [`crate::access`],
//! activity in [`crate::activity`]).

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::entry::Identity;
use crate::error::Error;
use crate::host::Request;

/// Who the credential belongs to.
pub const USER: &str = "cloud/user";
pub const CAPABILITIES: &str = "cloud/capabilities";
/// What the user shared (`reshares=true`: also what others reshared of theirs).
pub const SHARES: &str = "apps/files_sharing/api/v1/shares";
/// The Activity app's stream of file events.
pub const ACTIVITY: &str = "apps/activity/api/v2/activity/files";

/// A GET of an OCS endpoint, as JSON. Without `OCS-APIRequest` Nextcloud
/// treats the call as a browser's and wants a CSRF token.
pub fn get(base_url: &str, endpoint: &str, query: &str) -> Request {
    let and = if query.is_empty() { "" } else { "&" };
    Request::new(
        "GET",
        format!(
            "{}/ocs/v2.php/{endpoint}?format=json{and}{query}",
            base_url.trim_end_matches('/')
        ),
    )
    .header("OCS-APIRequest", "true")
    .header("Accept", "application/json")
}

#[derive(Deserialize)]
struct Envelope<T> {
    ocs: Ocs<T>,
}

#[derive(Deserialize)]
struct Ocs<T> {
    data: T,
}

/// `ocs.data` of an answer.
pub fn data<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Envelope<T>>(body).map(|e| e.ocs.data)
}

#[derive(Deserialize)]
struct CloudUser {
    id: String,
    // Nextcloud sends both spellings; serde refuses an alias pair as a duplicate.
    #[serde(rename = "display-name", default)]
    display_name: Option<String>,
    #[serde(default)]
    displayname: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

pub fn parse_user(body: &[u8]) -> Result<Identity, Error> {
    let user: CloudUser =
        data(body).map_err(|e| Error::Protocol(format!("cloud/user answer: {e}")))?;
    if user.id.is_empty() {
        return Err(Error::Protocol(
            "cloud/user answer has an empty user id".into(),
        ));
    }
    Ok(Identity {
        display_name: user
            .display_name
            .or(user.displayname)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.id.clone()),
        // Nextcloud sends null or "" when it has none: say unknown, invent nothing.
        email: user.email.filter(|e| !e.is_empty()),
        user_id: user.id,
    })
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    versionstring: Option<String>,
    #[serde(default)]
    maintenance: bool,
}

/// The server's version, and whether it is in maintenance mode.
pub fn parse_status(body: &[u8]) -> Result<(Option<String>, bool), Error> {
    let s: Status = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("status.php answer: {e}")))?;
    Ok((s.versionstring, s.maintenance))
}

/// Whether the capabilities list the Activity app's API v2.
pub fn activity_available(body: &[u8]) -> Result<bool, Error> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("capabilities answer: {e}")))?;
    Ok(v.pointer("/ocs/data/capabilities/activity/apiv2").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;

    #[test]
    fn reads_cloud_user_fixtures() {
        let alice = parse_user(&fixture("cloud-user.json")).unwrap();
        assert_eq!(alice.user_id, "alice");
        assert_eq!(alice.display_name, "Alice Ångström");
        assert_eq!(alice.email.as_deref(), Some("alice@example.test"));
        let bob = parse_user(&fixture("cloud-user-bob.json")).unwrap();
        assert_eq!(bob.user_id, "bob");
    }

    #[test]
    fn missing_email_stays_unknown() {
        let body = br#"{"ocs":{"meta":{},"data":{"id":"u1","display-name":"","email":null}}}"#;
        let who = parse_user(body).unwrap();
        assert_eq!(who.email, None);
        assert_eq!(who.display_name, "u1");
    }

    #[test]
    fn wrong_shapes_are_protocol_errors() {
        for body in [
            &b"<html>"[..],
            br#"{"ocs":{"data":[]}}"#,
            br#"{"ocs":{"data":{"id":""}}}"#,
        ] {
            assert!(matches!(parse_user(body), Err(Error::Protocol(_))));
        }
    }

    #[test]
    fn reads_status_and_capabilities() {
        let (version, maintenance) = parse_status(&fixture("status.json")).unwrap();
        assert_eq!(version.as_deref(), Some("32.0.1"));
        assert!(!maintenance);
        assert!(activity_available(&fixture("capabilities.json")).unwrap());
        assert!(!activity_available(br#"{"ocs":{"data":{"capabilities":{}}}}"#).unwrap());
    }
}
