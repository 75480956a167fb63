//! The simulator's WebDAV answers against the captured real ones.

mod common;

use common::*;

fn fixture_responses(name: &str) -> Vec<DavResponse> {
    parse_multistatus(&fixture(name))
}

/// Everything before the first `<d:response>`: XML declaration, root element
/// and namespace prefixes.
fn preamble(xml: &str) -> &str {
    &xml[..xml.find("<d:response>").expect("has a response")]
}

#[test]
fn multistatus_preamble_and_tail_are_byte_identical() {
    let server = sample_server();
    let ours = propfind(&server, "", Some("1"));
    let theirs = fixture("propfind-depth-infinity.xml");
    assert_eq!(ours.status, 207);
    assert_eq!(preamble(&ours.body), preamble(&theirs));
    assert!(ours.body.ends_with("</d:response></d:multistatus>\n"));
    assert!(theirs.ends_with("</d:response></d:multistatus>\n"));
    assert_eq!(
        ours.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(
        ours.header("dav"),
        Some(
            "1, 3, extended-mkcol, access-control, calendarserver-principal-property-search, nc-paginate, nextcloud-checksum-update, nc-calendar-search, nc-enable-birthday-calendar"
        )
    );
    assert_eq!(ours.header("vary"), Some("Brief,Prefer"));
}

#[test]
fn folder_and_file_propstats_match_the_fixture() {
    let server = sample_server();
    let ours = parse_multistatus(&propfind(&server, "Documents/", Some("1")).body);
    let theirs = fixture_responses("propfind-depth-infinity.xml");

    let (our_folder, their_folder) = (
        find(&ours, "/Documents/Archive/"),
        find(&theirs, "/Documents/Archive/"),
    );
    assert_eq!(our_folder.shape(), their_folder.shape());
    assert_eq!(our_folder.propstats.len(), 2, "folders have a 404 propstat");

    let (our_file, their_file) = (
        find(&ours, "/Documents/notes.md"),
        find(&theirs, "/Documents/notes.md"),
    );
    assert_eq!(our_file.shape(), their_file.shape());
    assert_eq!(
        our_file.text("d:getcontenttype"),
        their_file.text("d:getcontenttype")
    );

    let (root_ours, root_theirs) = (
        parse_multistatus(&propfind(&server, "", Some("0")).body),
        theirs[0].clone(),
    );
    assert_eq!(root_ours.len(), 1);
    assert_eq!(root_ours[0].shape(), root_theirs.shape());
    assert_eq!(root_ours[0].href, "/remote.php/dav/files/alice/");
}

#[test]
fn checksum_file_matches_the_fixture() {
    let server = sample_server();
    let ours = parse_multistatus(&propfind(&server, "Documents/readme.txt", Some("0")).body);
    let theirs = fixture_responses("propfind-file-with-checksum.xml");
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].shape(), theirs[0].shape());
    assert_eq!(
        ours[0].propstats.len(),
        1,
        "no 404 propstat once a checksum is set"
    );
    let checksum = ours[0].text("oc:checksums");
    assert!(
        checksum.starts_with("SHA1:") && checksum.len() == 45,
        "{checksum}"
    );
}

#[test]
fn values_have_the_real_formats() {
    let server = sample_server();
    let ours = parse_multistatus(&propfind(&server, "Reports%202024/", Some("1")).body);
    let theirs = fixture_responses("propfind-depth0-file.xml");
    let file = find(&ours, "/Q1%20r%c3%a9sum%c3%a9.pdf");
    assert_eq!(file.shape(), theirs[0].shape());
    // Same upload, same X-OC-MTime as the fixture file.
    assert_eq!(
        file.text("d:getlastmodified"),
        theirs[0].text("d:getlastmodified")
    );
    assert_eq!(
        file.text("d:getcontentlength"),
        theirs[0].text("d:getcontentlength")
    );
    assert_eq!(file.text("d:getcontenttype"), "application/pdf");

    let etag = file.text("d:getetag");
    assert!(
        etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    assert!(
        etag[1..33]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let folder = &ours[0];
    let fetag = folder.text("d:getetag");
    assert!(
        fetag.len() == 15 && fetag[1..14].bytes().all(|b| b.is_ascii_hexdigit()),
        "{fetag}"
    );
    assert_eq!(folder.text("oc:permissions"), "RGDNVCK");
    assert_eq!(file.text("oc:permissions"), "RGDNVW");
    assert_eq!(file.text("nc:creation_time"), "0");
    assert_eq!(file.text("nc:share-attributes"), "[]");
    assert_eq!(file.text("oc:owner-display-name"), "Alice Ångström");
    let fileid: u64 = file.text("oc:fileid").parse().unwrap();
    assert_eq!(
        server.simulator().fileid("/Reports 2024/Q1 résumé.pdf"),
        Some(fileid)
    );
    let upload: i64 = file.text("nc:upload_time").parse().unwrap();
    assert!(upload > 1_700_000_000);
    // httpdate parses what we print, and it is GMT.
    assert!(httpdate::parse_http_date(file.text("d:getlastmodified")).is_ok());
    assert!(folder.text("d:getlastmodified").ends_with(" GMT"));
}

#[test]
fn hrefs_use_sabre_encoding_with_lowercase_hex() {
    let server = sample_server();
    let reply = propfind(
        &server,
        "Sp%C3%A9cial%20%231%20%26%20100%25%20done/",
        Some("1"),
    );
    assert_eq!(
        reply.status, 207,
        "uppercase hex in the request is accepted"
    );
    let ours = parse_multistatus(&reply.body);
    let theirs = fixture_responses("propfind-depth1-special-chars.xml");
    assert_eq!(ours[0].href, theirs[0].href);
    let base = "/remote.php/dav/files/alice/Sp%c3%a9cial%20%231%20%26%20100%25%20done/";
    let hrefs: Vec<&str> = ours.iter().map(|r| r.href.as_str()).collect();
    for name in [
        "a%2bb.txt",
        "what%3f.txt",
        "it%27s.txt",
        "x%3by%3dz.txt",
        "%e6%97%a5%e6%9c%ac%e8%aa%9e.txt",
        "emoji%20%f0%9f%8e%89.txt",
        "tilde~and@at:colon.txt",
    ] {
        assert!(
            hrefs.contains(&format!("{base}{name}").as_str()),
            "{name} missing in {hrefs:?}"
        );
    }
    let reports = parse_multistatus(&propfind(&server, "Reports%202024/", Some("1")).body);
    assert!(
        reports
            .iter()
            .any(|r| r.href == "/remote.php/dav/files/alice/Reports%202024/Summary%20%26%20Plan%20%231%20(100%25).txt")
    );
    let all = propfind(&server, "", Some("infinity")).body;
    for r in parse_multistatus(&all) {
        let mut rest = r.href.as_str();
        while let Some(i) = rest.find('%') {
            let hex = &rest[i + 1..i + 3];
            assert!(
                !hex.bytes().any(|b| b.is_ascii_uppercase()),
                "uppercase hex in {}",
                r.href
            );
            rest = &rest[i + 3..];
        }
        assert_eq!(r.href.ends_with('/'), r.is_collection(), "{}", r.href);
    }
}

#[test]
fn children_come_in_byte_order_after_their_parent() {
    let server = sample_server();
    let sim = server.simulator();
    sim.mkdir("/Zeta").unwrap();
    sim.put("/alpha.txt", "lowercase sorts after uppercase")
        .unwrap();
    sim.put("/Émile.txt", "non-ASCII sorts last").unwrap();
    let ours = parse_multistatus(&propfind(&server, "", Some("1")).body);
    let names: Vec<String> = ours[1..]
        .iter()
        .map(|r| {
            r.href
                .trim_start_matches("/remote.php/dav/files/alice/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let decoded: Vec<Vec<u8>> = names.iter().map(|n| decode(n)).collect();
    let mut sorted = decoded.clone();
    sorted.sort();
    assert_eq!(decoded, sorted);
    assert_eq!(names.last().map(String::as_str), Some("%c3%89mile.txt"));
    let zeta = names.iter().position(|n| n == "Zeta").unwrap();
    let alpha = names.iter().position(|n| n == "alpha.txt").unwrap();
    assert!(zeta < alpha, "byte order puts Z before a");

    // The fixture's own order is byte order of the decoded names too.
    let theirs = fixture_responses("propfind-no-depth-header.xml");
    let decoded: Vec<Vec<u8>> = theirs[1..].iter().map(|r| decode(&r.href)).collect();
    let mut sorted = decoded.clone();
    sorted.sort();
    assert_eq!(decoded, sorted);
}

fn decode(href: &str) -> Vec<u8> {
    let b = href.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&href[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn empty_body_is_allprop_like_the_fixture() {
    let server = sample_server();
    let reply = request(
        "PROPFIND",
        &dav_url(&server, "Documents/"),
        &[("Authorization", &alice()), ("Depth", "1")],
        b"",
    );
    let ours = parse_multistatus(&reply.body);
    let theirs = fixture_responses("propfind-allprop-empty-body.xml");
    assert_eq!(
        find(&ours, "/Documents/").shape(),
        find(&theirs, "/Documents/").shape()
    );
    assert_eq!(
        find(&ours, "/notes.md").shape(),
        find(&theirs, "/notes.md").shape()
    );
    assert_eq!(
        find(&ours, "/Documents/").text("d:quota-available-bytes"),
        "-3"
    );
}

#[test]
fn missing_depth_means_one() {
    let server = sample_server();
    let without = parse_multistatus(&propfind(&server, "", None).body);
    let with_one = parse_multistatus(&propfind(&server, "", Some("1")).body);
    let hrefs = |r: &[DavResponse]| r.iter().map(|x| x.href.clone()).collect::<Vec<_>>();
    assert_eq!(hrefs(&without), hrefs(&with_one));
    let top_level = server
        .simulator()
        .listing()
        .iter()
        .filter(|e| e.path.matches('/').count() == 1 && e.path != "/")
        .count();
    assert_eq!(without.len(), top_level + 1);
}

#[test]
fn unknown_props_go_to_the_404_propstat() {
    let server = sample_server();
    let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:example"><d:prop><oc:fileid/><x:colour/><oc:tags/><d:displayname/></d:prop></d:propfind>"#;
    let reply = request(
        "PROPFIND",
        &dav_url(&server, "Documents/notes.md"),
        &[("Authorization", &alice()), ("Depth", "0")],
        body.as_bytes(),
    );
    let ours = parse_multistatus(&reply.body);
    let shape: Vec<(String, String)> = ours[0]
        .shape()
        .into_iter()
        .map(|(s, n, _)| (s, n))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("HTTP/1.1 200 OK".to_string(), "oc:fileid".to_string()),
            ("HTTP/1.1 200 OK".to_string(), "d:displayname".to_string()),
            (
                "HTTP/1.1 404 Not Found".to_string(),
                "x1:colour".to_string()
            ),
            ("HTTP/1.1 404 Not Found".to_string(), "oc:tags".to_string()),
        ]
    );
    assert_eq!(ours[0].text("d:displayname"), "notes.md");
    assert!(
        reply
            .body
            .contains(r#"<x1:colour xmlns:x1="urn:example"/>"#)
    );

    let minimal = request(
        "PROPFIND",
        &dav_url(&server, "Documents/notes.md"),
        &[
            ("Authorization", &alice()),
            ("Depth", "0"),
            ("Prefer", "return=minimal"),
        ],
        body.as_bytes(),
    );
    assert!(!minimal.body.contains("404 Not Found"));
    assert!(minimal.body.contains("<oc:fileid>"));
}

#[test]
fn malformed_body_is_a_400() {
    let server = sample_server();
    let reply = request(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &alice()), ("Depth", "0")],
        b"<d:propfind xmlns:d=\"DAV:\"><d:prop>",
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .body
            .contains("<s:exception>Sabre\\DAV\\Exception\\BadRequest</s:exception>")
    );
}

#[test]
fn not_found_bodies_are_byte_identical() {
    let server = sample_server();
    let reply = propfind(&server, "does%20not%20exist/nope.txt", Some("0"));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, fixture("notfound-404.xml"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );

    let reply = get(&server, "does%20not%20exist.txt", &[]);
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, fixture("notfound-404-get.xml"));

    let nested = propfind(&server, "Documents/nope.txt", Some("0"));
    assert!(
        nested
            .body
            .contains("File with name /Documents/nope.txt could not be located")
    );
}

#[test]
fn other_users_home_shows_only_resourcetype() {
    let server = sample_server();
    let reply = request(
        "PROPFIND",
        &format!("{}/remote.php/dav/files/bob/", server.base_url()),
        &[("Authorization", &alice()), ("Depth", "1")],
        request_body().as_bytes(),
    );
    assert_eq!(reply.status, 207);
    assert_eq!(
        reply.body,
        fixture("propfind-other-users-home-as-alice.xml")
    );
    let file = get_url(
        &server,
        "/remote.php/dav/files/bob/Shared%20with%20Bob/plan.txt",
    );
    assert_eq!(file.status, 404);
    assert!(
        file.body
            .contains("<s:message>File not found: Shared with Bob in 'bob'</s:message>")
    );
}

fn get_url(server: &nextcloud_sim::Server, path: &str) -> Reply {
    request(
        "GET",
        &format!("{}{path}", server.base_url()),
        &[("Authorization", &alice())],
        b"",
    )
}
