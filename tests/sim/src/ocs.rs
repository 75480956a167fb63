//! `/status.php` and the OCS endpoints (`cloud/capabilities`, `cloud/user`),
//! shaped after the captured answers.

use axum::http::{HeaderMap, StatusCode, header};

use crate::http::{Auth, Resp, builder, finish, header_str, hv};
use crate::json::{J, obj, s, strs};
use crate::sim::SimOptions;

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
enum Format {
    Json,
    Xml,
}

/// OCS answers XML unless `format=json` or an `Accept: application/json`.
fn format(query: &str, headers: &HeaderMap) -> Format {
    for pair in query.split('&') {
        match pair {
            "format=json" => return Format::Json,
            "format=xml" => return Format::Xml,
            _ => {}
        }
    }
    if header_str(headers, "accept").is_some_and(|a| a.contains("application/json")) {
        Format::Json
    } else {
        Format::Xml
    }
}

fn ocs_response(
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
    match format(query, headers) {
        Format::Json => finish(
            b.header(header::CONTENT_TYPE, "application/json; charset=utf-8"),
            obj([("ocs", inner)]).to_json(),
        ),
        Format::Xml => finish(
            b.header(header::CONTENT_TYPE, "application/xml; charset=utf-8"),
            inner.to_ocs_xml(),
        ),
    }
}

pub fn unauthorized(query: &str, headers: &HeaderMap) -> Resp {
    let meta = ("failure", 997, "Unauthorised");
    ocs_response(
        StatusCode::UNAUTHORIZED,
        meta,
        J::Arr(vec![]),
        query,
        headers,
        None,
    )
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
    user: &str,
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
    let caps = obj([
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
    let data = obj([("version", version), ("capabilities", caps)]);
    let user = (auth == Auth::Ok).then_some(user);
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

/// `cloud/user`: needs auth, then the `OCS-APIRequest` header (CSRF check).
pub fn user(
    opts: &SimOptions,
    used: u64,
    login_time: i64,
    query: &str,
    headers: &HeaderMap,
) -> Resp {
    let has_ocs_header = header_str(headers, "ocs-apirequest")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !has_ocs_header {
        return finish(
            builder(StatusCode::PRECONDITION_FAILED)
                .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
                .header("Content-Security-Policy", CSP_OCS)
                .header("Feature-Policy", FEATURE_POLICY)
                .header("X-User-Id", hv(&opts.user_id))
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8"),
            obj([("message", s("CSRF check failed"))]).to_json(),
        );
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
