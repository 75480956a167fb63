//! The reads a run makes before it lists anything: who the user is, what
//! they shared, where the activity stream stands. On a real server each
//! starts PHP anew (13–100 ms measured on Nextcloud 32) and none needs
//! another's answer, so a run sends them together ([`send_together`]). The activity cursor is among
//! them, so it is read before the listing begins: whatever changes while
//! the listing runs is replayed by the next run.

use crate::access::{self, Grant};
use crate::activity;
use crate::body::read_body;
use crate::entry::Identity;
use crate::error::Error;
use crate::host::{Host, Level, Request, Response, send_each};
use crate::ocs;

/// Largest OCS answer read (a `cloud/user` answer is about 1 KiB).
pub const OCS_BODY_CAP: usize = 1024 * 1024;
/// Largest share list read: about 1 KiB a share.
const SHARES_BODY_CAP: usize = 64 * 1024 * 1024;

/// Sends `requests` at once (the host caps concurrency and sends the first
/// alone until the credential has worked); the answers in the order asked,
/// or the first failure in that order.
pub fn send_together<H: Host, const N: usize>(
    host: &H,
    requests: [Request; N],
) -> Result<[Response<H::Body>; N], Error> {
    let answers = send_each(host, requests.into())?
        .into_iter()
        .map(|a| a.map_err(Error::from))
        .collect::<Result<Vec<_>, _>>()?;
    // `send_each` checked the count.
    answers
        .try_into()
        .map_err(|_| Error::Http(format!("the host did not answer {N} requests")))
}

pub fn identity_request(base_url: &str) -> Request {
    ocs::get(base_url, ocs::USER, "")
}

/// Who the credential belongs to. The user id may differ from the login
/// name (LDAP, e-mail logins) and is what DAV paths use.
pub fn identity<H: Host>(base_url: &str, response: Response<H::Body>) -> Result<Identity, Error> {
    match response.status {
        200 => ocs::parse_user(&read_body(response.body, OCS_BODY_CAP)?),
        404 => Err(Error::Http(format!(
            "no Nextcloud answered at {base_url} (HTTP 404 for the OCS user endpoint); check base_url"
        ))),
        status => Err(Error::status("reading the user's identity", status)),
    }
}

pub fn shares_request(base_url: &str) -> Request {
    ocs::get(base_url, ocs::SHARES, "reshares=true")
}

/// What the user shared, and with whom. A server without the sharing app
/// has no shares.
pub fn shares<H: Host>(host: &H, response: Response<H::Body>) -> Result<Vec<Grant>, Error> {
    match response.status {
        200 => {
            let (grants, skipped) =
                access::parse_shares(&read_body(response.body, SHARES_BODY_CAP)?)?;
            for s in skipped {
                host.log(
                    Level::Info,
                    &format!("not modelled, left out of permissions: {s}"),
                );
            }
            Ok(grants)
        }
        404 => {
            host.log(
                Level::Info,
                "no sharing app on the server: no shares to map",
            );
            Ok(Vec::new())
        }
        status => Err(Error::status("reading the share list", status)),
    }
}

pub fn newest_activity_request(base_url: &str) -> Request {
    ocs::get(base_url, ocs::ACTIVITY, "sort=desc&limit=1")
}

/// The newest activity id, or none when the server has no Activity app.
pub fn newest_activity<H: Host>(
    host: &H,
    response: Response<H::Body>,
) -> Result<Option<u64>, Error> {
    match response.status {
        200 => {
            let body = read_body(response.body, OCS_BODY_CAP)?;
            let page = activity::parse_page(&body).map_err(|e| Error::Protocol(e.to_string()))?;
            Ok(Some(page.first().map(|a| a.id).unwrap_or(0)))
        }
        204 | 304 => Ok(Some(0)),
        status => {
            host.log(
                Level::Info,
                &format!("no Activity app (HTTP {status}); changes will be found by etags"),
            );
            Ok(None)
        }
    }
}
