//! Authentication failures, status.php and the OCS endpoints.

mod common;

use common::*;
use nextcloud_sim::SimOptions;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn dav_401_matches_the_fixtures_byte_for_byte() {
    let server = sample_server();
    let url = dav_url(&server, "");
    let wrong = basic("alice", "nope");
    let reply = request(
        "PROPFIND",
        &url,
        &[("Authorization", &wrong), ("Depth", "0")],
        b"",
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, fixture("unauthorized-401.xml"));
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"Nextcloud\", charset=\"UTF-8\"")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );

    let reply = request("PROPFIND", &url, &[("Depth", "0")], b"");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, fixture("unauthorized-401-no-credentials.xml"));

    let reply = request(
        "GET",
        &dav_url(&server, "Documents/readme.txt"),
        &[("Authorization", &wrong)],
        b"",
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, fixture("unauthorized-401.xml"));
}

#[test]
fn ocs_401_and_412_match_the_fixtures() {
    let server = sample_server();
    let url = format!("{}/ocs/v2.php/cloud/user?format=json", server.base_url());
    let wrong = basic("alice", "nope");
    let reply = request(
        "GET",
        &url,
        &[("Authorization", &wrong), ("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(reply.status, 401);
    assert_eq!(
        json(&reply.body),
        json(&fixture("unauthorized-401-ocs.json"))
    );
    assert!(!reply.body.contains('\n'), "compact like PHP's json_encode");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"Authorisation Required\"")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let reply = request("GET", &url, &[("Authorization", &alice())], b"");
    assert_eq!(reply.status, 412);
    assert_eq!(reply.body, r#"{"message":"CSRF check failed"}"#);
    assert_eq!(
        json(&reply.body),
        json(&fixture("ocs-missing-apirequest-header.json"))
    );
}

#[test]
fn cloud_user_has_the_fixture_shape() {
    let server = sample_server();
    let url = format!("{}/ocs/v2.php/cloud/user?format=json", server.base_url());
    let reply = request(
        "GET",
        &url,
        &[
            ("Authorization", &alice()),
            ("OCS-APIRequest", "true"),
            ("Accept", "application/json"),
        ],
        b"",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-user-id"), Some("alice"));
    // Non-ASCII as \u escapes, like PHP.
    assert!(
        reply
            .body
            .contains(r#""displayname":"Alice \u00c5ngstr\u00f6m""#),
        "{}",
        reply.body
    );
    let ours = json(&reply.body);
    let theirs = json(&fixture("cloud-user.json"));
    let keys = |v: &Value| {
        v["ocs"]["data"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&ours), keys(&theirs));
    assert_eq!(ours["ocs"]["meta"], theirs["ocs"]["meta"]);
    for k in [
        "id",
        "displayname",
        "display-name",
        "email",
        "backend",
        "enabled",
    ] {
        assert_eq!(ours["ocs"]["data"][k], theirs["ocs"]["data"][k], "{k}");
    }
    let used = ours["ocs"]["data"]["quota"]["used"].as_u64().unwrap();
    assert_eq!(used, server.simulator().listing()[0].size);

    // Without format=json or Accept, OCS speaks XML.
    let xml = request(
        "GET",
        &url.replace("?format=json", ""),
        &[("Authorization", &alice()), ("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(
        xml.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert!(
        xml.body
            .starts_with("<?xml version=\"1.0\"?>\n<ocs>\n <meta>\n  <status>ok</status>")
    );
    assert!(xml.body.contains("  <id>alice</id>\n"));
}

#[test]
fn login_can_differ_from_user_id_and_email_can_be_null() {
    let server = start(SimOptions {
        user_id: "u-4711".into(),
        login: "alice@example.test".into(),
        email: None,
        ..SimOptions::default()
    });
    let auth = basic("alice@example.test", PASSWORD);
    let url = format!("{}/ocs/v2.php/cloud/user?format=json", server.base_url());
    let reply = request(
        "GET",
        &url,
        &[("Authorization", &auth), ("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(reply.status, 200);
    let v = json(&reply.body);
    assert_eq!(v["ocs"]["data"]["id"], "u-4711");
    assert!(v["ocs"]["data"]["email"].is_null());
    assert!(reply.body.contains(r#""email":null"#));

    let dav = format!("{}/remote.php/dav/files/u-4711/", server.base_url());
    let reply = request(
        "PROPFIND",
        &dav,
        &[("Authorization", &auth), ("Depth", "0")],
        request_body().as_bytes(),
    );
    assert_eq!(reply.status, 207);
    let r = parse_multistatus(&reply.body);
    assert_eq!(r[0].href, "/remote.php/dav/files/u-4711/");
    assert_eq!(r[0].text("oc:owner-id"), "u-4711");

    let by_user_id = basic("u-4711", PASSWORD);
    let reply = request(
        "PROPFIND",
        &dav,
        &[("Authorization", &by_user_id), ("Depth", "0")],
        b"",
    );
    assert_eq!(reply.status, 401, "only the login name authenticates");
}

#[test]
fn status_and_capabilities() {
    let server = sample_server();
    let reply = request(
        "GET",
        &format!("{}/status.php", server.base_url()),
        &[],
        b"",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(json(&reply.body), json(&fixture("status.json")));

    let caps = request(
        "GET",
        &format!(
            "{}/ocs/v2.php/cloud/capabilities?format=json",
            server.base_url()
        ),
        &[("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(caps.status, 200, "capabilities need no login");
    let v = json(&caps.body);
    assert_eq!(v["ocs"]["data"]["version"]["string"], "32.0.1");
    let c = &v["ocs"]["data"]["capabilities"];
    for k in ["core", "dav", "files", "bruteforce"] {
        assert!(c[k].is_object(), "{k}");
    }
    assert_eq!(c["activity"]["apiv2"][0], "filters");
    assert_eq!(c["core"]["webdav-root"], "remote.php/webdav");
    assert!(
        caps.body.contains(r#""webdav-root":"remote.php\/webdav""#),
        "slashes escaped like PHP"
    );
}

#[test]
fn every_request_is_logged_with_its_outcome() {
    let server = sample_server();
    let sim = server.simulator();
    sim.reset_requests();
    let wrong = basic("alice", "nope");
    request(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &wrong), ("Depth", "infinity")],
        b"",
    );
    propfind(&server, "Documents/", Some("1"));
    request(
        "GET",
        &format!("{}/status.php?x=1", server.base_url()),
        &[],
        b"",
    );
    assert_eq!(sim.request_count(), 3);
    let log = sim.requests();
    assert_eq!(log[0].method, "PROPFIND");
    assert_eq!(log[0].status, 401);
    assert!(!log[0].authorized);
    assert_eq!(log[0].depth.as_deref(), Some("infinity"));
    assert_eq!(log[1].path, "/remote.php/dav/files/alice/Documents/");
    assert_eq!((log[1].status, log[1].authorized), (207, true));
    assert_eq!(log[2].path, "/status.php?x=1");
    assert_eq!(log[2].depth, None);
    sim.reset_requests();
    assert_eq!(sim.request_count(), 0);
    assert!(sim.requests().is_empty());
}

#[test]
fn changing_the_app_password_revokes_the_old_one() {
    let server = sample_server();
    assert_eq!(propfind(&server, "", Some("0")).status, 207);
    server.simulator().set_app_password("rotated");
    assert_eq!(propfind(&server, "", Some("0")).status, 401);
    let auth = basic("alice", "rotated");
    let reply = request(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &auth), ("Depth", "0")],
        b"",
    );
    assert_eq!(reply.status, 207);
}

/// Without credentials, OCS refuses with its own message and no Basic
/// challenge, as Nextcloud 32.0.1 answered the conformance test.
#[test]
fn ocs_without_credentials_is_not_logged_in() {
    let server = sample_server();
    let url = format!("{}/ocs/v2.php/cloud/user?format=json", server.base_url());
    let reply = request("GET", &url, &[("OCS-APIRequest", "true")], b"");
    assert_eq!(reply.status, 401);
    assert_eq!(
        json(&reply.body),
        json(
            r#"{"ocs":{"meta":{"status":"failure","statuscode":997,"message":"Current user is not logged in"},"data":[]}}"#
        )
    );
    assert_eq!(reply.header("www-authenticate"), None);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}
