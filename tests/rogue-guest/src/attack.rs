//! Requests a read-only connector must never get sent: writes, shares, the
//! app password, other users' files, and every way to dress them up as a
//! read. `attack NAME` in `lib.rs` sends the requests of one attack; the
//! host must refuse each before it leaves the machine. The suites that use
//! it (`tests/tests/sandbox.rs`, the real-server suite) list the names.

use crate::nextcloud::connector::http::{Header, Request};

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

fn req(method: &str, url: String, headers: Vec<Header>, body: Option<&str>) -> Request {
    Request {
        method: method.into(),
        url,
        headers,
        body: body.map(|b| b.as_bytes().to_vec()),
    }
}

fn ocs() -> Vec<Header> {
    vec![
        header("OCS-APIRequest", "true"),
        header("Accept", "application/json"),
    ]
}

/// The requests of attack `name` on the install at `base` for user `user`;
/// none for an unknown name.
pub fn requests(name: &str, base: &str, user: &str) -> Option<Vec<Request>> {
    let dav = format!("{base}/remote.php/dav/files/{user}");
    let shares = format!("{base}/ocs/v2.php/apps/files_sharing/api/v1/shares");
    let form = |body: &str| {
        let mut h = ocs();
        h.push(header("Content-Type", "application/x-www-form-urlencoded"));
        (h, Some(body.to_string()))
    };
    let one = |r: Request| Some(vec![r]);
    match name {
        "put" => one(req(
            "PUT",
            format!("{dav}/planted.txt"),
            vec![],
            Some("owned"),
        )),
        "mkcol" => one(req("MKCOL", format!("{dav}/planted"), vec![], None)),
        "delete" => one(req("DELETE", format!("{dav}/Documents"), vec![], None)),
        "move" | "copy" => one(req(
            &name.to_ascii_uppercase(),
            format!("{dav}/Documents"),
            vec![header("Destination", &format!("{dav}/Moved"))],
            None,
        )),
        "proppatch" => one(req(
            "PROPPATCH",
            format!("{dav}/Documents"),
            vec![header("Content-Type", "application/xml")],
            Some(
                r#"<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"#,
            ),
        )),
        "lock" => one(req("LOCK", format!("{dav}/Documents"), vec![], None)),
        "trace" => one(req("TRACE", format!("{dav}/"), vec![], None)),
        "share-link" => {
            let (h, b) = form("path=/Documents&shareType=3&permissions=1");
            one(req("POST", shares.clone(), h, b.as_deref()))
        }
        "share-link-v1" => {
            let (h, b) = form("path=/Documents&shareType=3");
            one(req(
                "POST",
                format!("{base}/ocs/v1.php/apps/files_sharing/api/v1/shares"),
                h,
                b.as_deref(),
            ))
        }
        "share-delete" => one(req("DELETE", format!("{shares}/1"), ocs(), None)),
        "apppassword-rotate" => one(req(
            "POST",
            format!("{base}/ocs/v2.php/core/apppassword/rotate"),
            ocs(),
            None,
        )),
        "apppassword-delete" => one(req(
            "DELETE",
            format!("{base}/ocs/v2.php/core/apppassword"),
            ocs(),
            None,
        )),
        "getapppassword" => one(req(
            "GET",
            format!("{base}/ocs/v2.php/core/getapppassword"),
            ocs(),
            None,
        )),
        "method-override-header" => Some(
            [
                "X-HTTP-Method-Override",
                "X-HTTP-Method",
                "X-Method-Override",
            ]
            .iter()
            .map(|h| {
                req(
                    "PROPFIND",
                    format!("{dav}/Documents"),
                    vec![header(h, "DELETE"), header("Depth", "0")],
                    None,
                )
            })
            .collect(),
        ),
        "method-override-query" => Some(vec![
            req(
                "GET",
                format!("{dav}/Documents?_method=DELETE"),
                vec![],
                None,
            ),
            req(
                "GET",
                format!("{base}/ocs/v2.php/cloud/user?format=json&_method=POST"),
                ocs(),
                None,
            ),
        ]),
        "header-smuggling" => Some(vec![
            req(
                "PROPFIND",
                format!("{dav}/"),
                vec![header(
                    "Depth",
                    "0\r\nContent-Length: 0\r\n\r\nDELETE /remote.php/dav/files/x HTTP/1.1",
                )],
                None,
            ),
            req(
                "PROPFIND",
                format!("{dav}/"),
                vec![header("Depth: 0\r\nX-Evil", "1")],
                None,
            ),
            req(
                "PROPFIND",
                format!("{dav}/"),
                vec![header("Depth", "0\nX-Evil: 1")],
                None,
            ),
        ]),
        "unlisted-header" => Some(
            [
                ("X-Forwarded-For", "10.0.0.1"),
                ("X-Forwarded-Host", "evil.example"),
                ("Origin", "https://evil.example"),
                ("Destination", "http://evil.example/"),
                ("Requesttoken", "x"),
            ]
            .iter()
            .map(|(n, v)| {
                req(
                    "GET",
                    format!("{base}/status.php"),
                    vec![header(n, v)],
                    None,
                )
            })
            .collect(),
        ),
        "traversal" => Some(
            [
                "..%2F..%2Fadmin%2F",
                "%2e%2e/%2e%2e/admin/",
                "%2E%2E%2F%2E%2E%2Fadmin",
                "..%5C..%5Cadmin",
                "a/..%2f..%2f..%2f..%2fstatus.php",
                ".%2e/.%2e/.%2e/.%2e/index.php/apps/files",
                "a%00b",
                "%c0%ae%c0%ae/",
                "/../../../../ocs/v2.php/core/apppassword/rotate",
                "x%0d%0aDELETE%20/",
            ]
            .iter()
            .map(|p| {
                req(
                    "PROPFIND",
                    format!("{dav}/{p}"),
                    vec![header("Depth", "1")],
                    None,
                )
            })
            .collect(),
        ),
        "other-user" => Some(
            ["admin", "bob", "alice", "admin%2f", "ADMIN"]
                .iter()
                .filter(|u| **u != user)
                .map(|u| {
                    req(
                        "PROPFIND",
                        format!("{base}/remote.php/dav/files/{u}/"),
                        vec![header("Depth", "1")],
                        None,
                    )
                })
                .collect(),
        ),
        "other-dav-roots" => Some(
            [
                format!("{base}/remote.php/webdav/"),
                format!("{base}/remote.php/dav/trashbin/{user}/trash/"),
                format!("{base}/remote.php/dav/versions/{user}/"),
                format!("{base}/remote.php/dav/uploads/{user}/"),
                format!("{base}/remote.php/dav/principals/users/"),
                format!("{base}/remote.php/dav/calendars/{user}/"),
                format!("{base}/remote.php/dav/addressbooks/users/{user}/"),
                format!("{base}/public.php/webdav/"),
                format!("{base}/index.php/apps/files/ajax/download.php"),
            ]
            .into_iter()
            .map(|u| req("PROPFIND", u, vec![header("Depth", "1")], None))
            .collect(),
        ),
        "send-all-write" => None,
        _ => None,
    }
}

/// The requests `send-all-write` hands to `send-all` in one call: the policy
/// must hold there too.
pub fn send_all_requests(base: &str, user: &str) -> Vec<Request> {
    let dav = format!("{base}/remote.php/dav/files/{user}");
    vec![
        req(
            "PUT",
            format!("{dav}/planted-by-send-all.txt"),
            vec![],
            Some("owned"),
        ),
        req(
            "POST",
            format!("{base}/ocs/v2.php/core/apppassword/rotate"),
            ocs(),
            None,
        ),
    ]
}

/// `ocs.data.id` of a `cloud/user` answer, found without a JSON parser.
pub fn user_id(json: &str) -> Option<String> {
    let start = json.find("\"id\":\"")? + 6;
    let end = json[start..].find('"')?;
    Some(json[start..start + end].to_string())
}
