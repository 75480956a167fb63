//! Depth handling, the refuse-infinity switch, subpaths and URL variants.

mod common;

use common::*;
use nextcloud_sim::SimOptions;

const FINITE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\"><d:propfind-finite-depth/></d:error>";

#[test]
fn depths_zero_one_two_and_infinity() {
    let server = sample_server();
    let total = server.simulator().listing().len();
    let count = |d: &str| parse_multistatus(&propfind(&server, "", Some(d)).body).len();
    assert_eq!(count("0"), 1);
    let one = count("1");
    let two = count("2");
    assert!(1 < one && one < two && two < total, "{one} {two} {total}");
    assert_eq!(count("infinity"), total);
    assert_eq!(count("bogus"), one, "Sabre falls back to 1");
}

#[test]
fn refuse_infinity_answers_403_and_can_be_toggled() {
    let server = start(SimOptions {
        refuse_depth_infinity: true,
        ..SimOptions::default()
    });
    server.simulator().populate_sample();
    let reply = propfind(&server, "", Some("infinity"));
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, FINITE);
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(propfind(&server, "", Some("1")).status, 207);

    server.simulator().set_refuse_depth_infinity(false);
    assert_eq!(propfind(&server, "", Some("infinity")).status, 207);
    server.simulator().set_refuse_depth_infinity(true);
    assert_eq!(
        propfind(&server, "Documents/", Some("infinity")).status,
        403
    );
}

#[test]
fn everything_lives_under_the_subpath() {
    let server = start(SimOptions {
        subpath: "/nextcloud/".into(),
        ..SimOptions::default()
    });
    server.simulator().populate_sample();
    let base = server.base_url();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/nextcloud"),
        "{base}"
    );

    let reply = propfind(&server, "Documents/", Some("1"));
    assert_eq!(reply.status, 207);
    let rs = parse_multistatus(&reply.body);
    assert_eq!(
        rs[0].href,
        "/nextcloud/remote.php/dav/files/alice/Documents/"
    );
    assert!(rs.iter().all(|r| {
        r.href
            .starts_with("/nextcloud/remote.php/dav/files/alice/Documents/")
    }));

    let status = request("GET", &format!("{base}/status.php"), &[], b"");
    assert_eq!(status.status, 200);
    let root = base.trim_end_matches("/nextcloud");
    assert_eq!(
        request("GET", &format!("{root}/status.php"), &[], b"").status,
        404
    );
    let outside = request(
        "PROPFIND",
        &format!("{root}/remote.php/dav/files/alice/"),
        &[("Authorization", &alice()), ("Depth", "0")],
        b"",
    );
    assert_eq!(outside.status, 404);
    assert_eq!(
        request("GET", &format!("{root}/nextcloudx/status.php"), &[], b"").status,
        404
    );
}

#[test]
fn legacy_webdav_endpoint_serves_the_same_tree() {
    let server = sample_server();
    let reply = request(
        "PROPFIND",
        &format!("{}/remote.php/webdav/", server.base_url()),
        &[("Authorization", &alice()), ("Depth", "1")],
        request_body().as_bytes(),
    );
    assert_eq!(reply.status, 207);
    let legacy = parse_multistatus(&reply.body);
    let modern = parse_multistatus(&propfind(&server, "", Some("1")).body);
    assert_eq!(legacy.len(), modern.len());
    assert_eq!(legacy[0].href, "/remote.php/webdav/");
    for (l, m) in legacy.iter().zip(&modern) {
        assert_eq!(
            l.href.trim_start_matches("/remote.php/webdav/"),
            m.href.trim_start_matches("/remote.php/dav/files/alice/")
        );
        assert_eq!(l.shape(), m.shape());
    }
}

#[test]
fn bad_percent_encoding_is_rejected_and_plus_stays_plus() {
    let server = sample_server();
    assert_eq!(propfind(&server, "Documents%2", Some("0")).status, 400);
    assert_eq!(propfind(&server, "%ff", Some("0")).status, 400);
    server.simulator().put("/a+b.txt", "plus").unwrap();
    let reply = propfind(&server, "a+b.txt", Some("0"));
    assert_eq!(reply.status, 207);
    assert_eq!(
        parse_multistatus(&reply.body)[0].href,
        "/remote.php/dav/files/alice/a%2bb.txt"
    );
    assert_eq!(propfind(&server, "a%20b.txt", Some("0")).status, 404);
}

#[test]
fn unsupported_methods_and_paths() {
    let server = sample_server();
    let auth = alice();
    let trace = request(
        "TRACE",
        &dav_url(&server, "Documents/"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(trace.status, 501);
    assert!(trace.body.contains("willing to handle this TRACE method"));
    let options = request(
        "OPTIONS",
        &dav_url(&server, ""),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(options.status, 200);
    assert!(options.header("allow").unwrap().contains("PROPFIND"));
    assert_eq!(
        request(
            "GET",
            &format!("{}/index.php/apps/files", server.base_url()),
            &[],
            b""
        )
        .status,
        404
    );
    let ocs = request(
        "GET",
        &format!("{}/ocs/v2.php/apps/nope?format=json", server.base_url()),
        &[("Authorization", &auth), ("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(ocs.status, 404);
    assert!(ocs.body.contains("\"statuscode\":998"));
}
