//! `/status.php` and the OCS endpoints (`cloud/capabilities`, `cloud/user`),
//! shaped after the captured answers.

use axum::http::{HeaderMap, StatusCode, header};

use crate::http::{Auth, Resp, builder, finish, header_str, hv};
use crate::json::{J, obj, s, strs};
use crate::sim::UserSpec;

const CSP_OCS: &str =
    "default-src 'none';base-uri 'none';manifest-src 'self';frame-ancestors 'none'";
const FEATURE_POLICY: &str = "autoplay 'none';camera 'none';fullscreen 'none';geolocation 'none';microphone 'none';payment 'none'";

pub fn status() -> Resp {
    let body = obj([
        ("installed", J::Bool(true)),
        ("maintenance", J::Bool(false)),
        ("needsDbUpgrade", J::Bool(false)),
        ("version", s("32.0.1.2")),
        ("versionstring", s("32.0.1")),
        ("edition", s("")),
        ("productname", s("Nextcloud")),
        ("extendedSupport", J::Bool(false)),
    ]);
    finish(
        builder(StatusCode::OK)
            .header("Access-Control-Allow-Origin", "*")
            .header(header::CONTENT_TYPE, "application/json"),
        body.to_json(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OcsFormat {
    Json,
    Xml,
}

/// OCS answers XML unless `format=json` or an `Accept: application/json`.
pub fn format(query: &str, headers: &HeaderMap) -> OcsFormat {
    for pair in query.split('&') {
        match pair {
            "format=json" => return OcsFormat::Json,
            "format=xml" => return OcsFormat::Xml,
            _ => {}
        }
    }
    if header_str(headers, "accept").is_some_and(|a| a.contains("application/json")) {
        OcsFormat::Json
    } else {
        OcsFormat::Xml
    }
}

/// The headers every OCS answer has, up to `X-User-Id`.
pub fn ocs_builder(status: StatusCode, user: Option<&str>) -> axum::http::response::Builder {
    let mut b = builder(status)
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header("Content-Security-Policy", CSP_OCS)
        .header("Feature-Policy", FEATURE_POLICY);
    if status == StatusCode::UNAUTHORIZED {
        b = b.header(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Authorisation Required\"",
        );
    }
    if let Some(u) = user {
        b = b.header("X-User-Id", hv(u));
    }
    b
}

pub fn ocs_ok(data: J, query: &str, headers: &HeaderMap, user: &str) -> Resp {
    ocs_response(
        StatusCode::OK,
        ("ok", 200, "OK"),
        data,
        query,
        headers,
        Some(user),
    )
}

/// An OCS v2 error: the HTTP status doubles as `statuscode`.
pub fn ocs_failure(
    status: StatusCode,
    message: &str,
    query: &str,
    headers: &HeaderMap,
    user: &str,
) -> Resp {
    ocs_response(
        status,
        ("failure", status.as_u16() as i64, message),
        J::Arr(vec![]),
        query,
        headers,
        Some(user),
    )
}

/// The AppFramework CSRF check: OCS calls need `OCS-APIRequest: true`.
pub fn csrf_check(headers: &HeaderMap, user: &str) -> Option<Resp> {
    let has_ocs_header = header_str(headers, "ocs-apirequest")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if has_ocs_header {
        return None;
    }
    Some(finish(
        builder(StatusCode::PRECONDITION_FAILED)
            .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
            .header("Content-Security-Policy", CSP_OCS)
            .header("Feature-Policy", FEATURE_POLICY)
            .header("X-User-Id", hv(user))
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8"),
        obj([("message", s("CSRF check failed"))]).to_json(),
    ))
}

pub fn ocs_response(
    status: StatusCode,
    meta: (&str, i64, &str),
    data: J,
    query: &str,
    headers: &HeaderMap,
    user: Option<&str>,
) -> Resp {
    let inner = obj([
        (
            "meta",
            obj([
                ("status", s(meta.0)),
                ("statuscode", J::Int(meta.1)),
                ("message", s(meta.2)),
            ]),
        ),
        ("data", data),
    ]);
    let b = ocs_builder(status, user);
    match format(query, headers) {
        OcsFormat::Json => finish(
            b.header(header::CONTENT_TYPE, "application/json; charset=utf-8"),
            obj([("ocs", inner)]).to_json(),
        ),
        OcsFormat::Xml => finish(
            b.header(header::CONTENT_TYPE, "application/xml; charset=utf-8"),
            inner.to_ocs_xml(),
        ),
    }
}

/// A wrong password: `Unauthorised` and a Basic challenge. No credentials at
/// all: the OCS controller's own refusal, `Current user is not logged in`,
/// with no challenge (as Nextcloud 32.0.1 answered the conformance test).
pub fn unauthorized(auth: Auth, query: &str, headers: &HeaderMap) -> Resp {
    let message = if auth == Auth::Missing {
        "Current user is not logged in"
    } else {
        "Unauthorised"
    };
    let mut resp = ocs_response(
        StatusCode::UNAUTHORIZED,
        ("failure", 997, message),
        J::Arr(vec![]),
        query,
        headers,
        None,
    );
    if auth == Auth::Missing {
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    resp
}

pub fn not_found(query: &str, headers: &HeaderMap, user: &str) -> Resp {
    let meta = (
        "failure",
        998,
        "Invalid query, please check the syntax. API specifications are here: http://www.freedesktop.org/wiki/Specifications/open-collaboration-services.\n",
    );
    ocs_response(
        StatusCode::NOT_FOUND,
        meta,
        J::Arr(vec![]),
        query,
        headers,
        Some(user),
    )
}

/// Capabilities are public; a trimmed set with the sections clients read.
pub fn capabilities(
    base_url: &str,
    query: &str,
    headers: &HeaderMap,
    auth: Auth,
    user: Option<&str>,
    activity: bool,
) -> Resp {
    let version = obj([
        ("major", J::Int(32)),
        ("minor", J::Int(0)),
        ("micro", J::Int(1)),
        ("string", s("32.0.1")),
        ("edition", s("")),
        ("extendedSupport", J::Bool(false)),
    ]);
    let core = obj([
        ("pollinterval", J::Int(60)),
        ("webdav-root", s("remote.php/webdav")),
        ("reference-api", J::Bool(true)),
        (
            "reference-regex",
            s(
                r"(\s|\n|^)(https?:\/\/)([-A-Z0-9+_.]+(?::[0-9]+)?(?:\/[-A-Z0-9+&@#%?=~_|!:,.;()]*)*)(\s|\n|$)",
            ),
        ),
        ("mod-rewrite-working", J::Bool(false)),
        (
            "user",
            obj([
                ("language", s("")),
                ("locale", s("")),
                ("timezone", s("UTC")),
            ]),
        ),
    ]);
    let files = obj([
        (
            "$comment",
            s(
                "\"blacklisted_files\" is deprecated as of Nextcloud 30, use \"forbidden_filenames\" instead",
            ),
        ),
        ("blacklisted_files", strs(&[".htaccess"])),
        ("forbidden_filenames", strs(&[".htaccess"])),
        ("forbidden_filename_basenames", J::Arr(vec![])),
        ("forbidden_filename_characters", strs(&["\\", "/"])),
        (
            "forbidden_filename_extensions",
            strs(&[".filepart", ".part"]),
        ),
        ("bigfilechunking", J::Bool(true)),
        (
            "chunked_upload",
            obj([
                ("max_size", J::Int(104_857_600)),
                ("max_parallel_count", J::Int(5)),
            ]),
        ),
        ("file_conversions", J::Arr(vec![])),
        ("windows_compatible_filenames", J::Bool(false)),
        (
            "directEditing",
            obj([
                (
                    "url",
                    s(&format!(
                        "{base_url}/ocs/v2.php/apps/files/api/v1/directEditing"
                    )),
                ),
                ("etag", s("5b2f367cfe076ab42b79601036409c2e")),
                ("supportsFileId", J::Bool(true)),
            ]),
        ),
        ("comments", J::Bool(true)),
        ("undelete", J::Bool(true)),
        ("delete_from_trash", J::Bool(true)),
        ("versioning", J::Bool(true)),
        ("version_labeling", J::Bool(true)),
        ("version_deletion", J::Bool(true)),
    ]);
    let mut caps = obj([
        ("core", core),
        (
            "bruteforce",
            obj([("delay", J::Int(0)), ("allow-listed", J::Bool(false))]),
        ),
        ("files", files),
        (
            "activity",
            obj([(
                "apiv2",
                strs(&["filters", "filters-api", "previews", "rich-strings"]),
            )]),
        ),
        (
            "dav",
            obj([
                ("chunking", s("1.0")),
                ("public_shares_chunking", J::Bool(false)),
                ("bulkupload", s("1.0")),
                ("absence-supported", J::Bool(true)),
                ("absence-replacement", J::Bool(true)),
            ]),
        ),
        (
            "theming",
            obj([
                ("name", s("Nextcloud")),
                ("productName", s("Nextcloud")),
                ("url", s("https://nextcloud.com")),
                ("slogan", s("a safe home for all your data")),
                ("color", s("#00679e")),
            ]),
        ),
    ]);
    if let J::Obj(fields) = &mut caps {
        if !activity {
            fields.retain(|(k, _)| k != "activity");
        }
        let pos = fields
            .iter()
            .position(|(k, _)| k == "theming")
            .unwrap_or(fields.len());
        fields.insert(pos, ("files_sharing".to_string(), files_sharing()));
    }
    let data = obj([("version", version), ("capabilities", caps)]);
    let user = if auth == Auth::Ok { user } else { None };
    let mut resp = ocs_response(
        StatusCode::OK,
        ("ok", 200, "OK"),
        data,
        query,
        headers,
        user,
    );
    resp.headers_mut()
        .insert(header::ETAG, hv("\"fd7967c8311964c68a7caefb9c92b378\""));
    resp
}

/// The `files_sharing` capabilities as captured.
fn files_sharing() -> J {
    let enabled = |on: bool| obj([("enabled", J::Bool(on))]);
    obj([
        ("api_enabled", J::Bool(true)),
        (
            "public",
            obj([
                ("enabled", J::Bool(true)),
                (
                    "password",
                    obj([
                        ("enforced", J::Bool(false)),
                        ("askForOptionalPassword", J::Bool(false)),
                    ]),
                ),
                ("expire_date", enabled(false)),
                ("multiple_links", J::Bool(true)),
                ("expire_date_internal", enabled(false)),
                ("expire_date_remote", enabled(false)),
                ("send_mail", J::Bool(false)),
                ("upload", J::Bool(true)),
                ("upload_files_drop", J::Bool(true)),
                ("custom_tokens", J::Bool(false)),
            ]),
        ),
        ("resharing", J::Bool(true)),
        (
            "user",
            obj([
                ("send_mail", J::Bool(false)),
                ("expire_date", enabled(true)),
            ]),
        ),
        ("group_sharing", J::Bool(true)),
        (
            "group",
            obj([("enabled", J::Bool(true)), ("expire_date", enabled(true))]),
        ),
        ("default_permissions", J::Int(31)),
        (
            "federation",
            obj([
                ("outgoing", J::Bool(true)),
                ("incoming", J::Bool(true)),
                ("expire_date", enabled(true)),
                ("expire_date_supported", enabled(true)),
            ]),
        ),
        (
            "sharee",
            obj([
                ("query_lookup_default", J::Bool(false)),
                ("always_show_unique", J::Bool(true)),
            ]),
        ),
        (
            "sharebymail",
            obj([
                ("enabled", J::Bool(true)),
                ("send_password_by_mail", J::Bool(true)),
                ("upload_files_drop", enabled(true)),
                (
                    "password",
                    obj([("enabled", J::Bool(true)), ("enforced", J::Bool(false))]),
                ),
                (
                    "expire_date",
                    obj([("enabled", J::Bool(true)), ("enforced", J::Bool(false))]),
                ),
            ]),
        ),
    ])
}

/// `cloud/user`: needs auth, then the `OCS-APIRequest` header (CSRF check).
pub fn user(opts: &UserSpec, used: u64, login_time: i64, query: &str, headers: &HeaderMap) -> Resp {
    if let Some(resp) = csrf_check(headers, &opts.user_id) {
        return resp;
    }
    let local = |k: &str| [(k.to_string(), s("")), (format!("{k}Scope"), s("v2-local"))];
    let mut fields: Vec<(String, J)> = vec![
        ("enabled".into(), J::Bool(true)),
        ("id".into(), s(&opts.user_id)),
        ("firstLoginTimestamp".into(), J::Int(login_time)),
        ("lastLoginTimestamp".into(), J::Int(login_time)),
        ("lastLogin".into(), J::Int(login_time * 1000)),
        ("backend".into(), s("Database")),
        ("subadmin".into(), J::Arr(vec![])),
        (
            "quota".into(),
            obj([
                ("free", J::Int(-3)),
                ("used", J::Int(used as i64)),
                ("total", J::Int(-3)),
                ("relative", J::Int(0)),
                ("quota", J::Int(-3)),
            ]),
        ),
        ("manager".into(), s("")),
        ("avatarScope".into(), s("v2-federated")),
        (
            "email".into(),
            opts.email.as_deref().map(s).unwrap_or(J::Null),
        ),
        ("emailScope".into(), s("v2-federated")),
        ("additional_mail".into(), J::Arr(vec![])),
        ("additional_mailScope".into(), J::Arr(vec![])),
        ("displayname".into(), s(&opts.display_name)),
        ("display-name".into(), s(&opts.display_name)),
        ("displaynameScope".into(), s("v2-federated")),
    ];
    for k in [
        "phone",
        "address",
        "website",
        "twitter",
        "bluesky",
        "fediverse",
        "organisation",
        "role",
        "headline",
        "biography",
    ] {
        fields.extend(local(k));
    }
    fields.extend([
        ("profile_enabled".into(), s("1")),
        ("profile_enabledScope".into(), s("v2-local")),
        ("pronouns".into(), s("")),
        ("pronounsScope".into(), s("v2-federated")),
        ("groups".into(), J::Arr(vec![])),
        ("language".into(), s("en")),
        ("locale".into(), s("")),
        ("timezone".into(), s("")),
        ("notify_email".into(), J::Null),
        (
            "backendCapabilities".into(),
            obj([
                ("setDisplayName", J::Bool(true)),
                ("setPassword", J::Bool(true)),
            ]),
        ),
    ]);
    ocs_response(
        StatusCode::OK,
        ("ok", 200, "OK"),
        J::Obj(fields),
        query,
        headers,
        Some(&opts.user_id),
    )
}
