//! WebDAV SEARCH on /remote.php/dav/, compared with the captures.

mod common;

use std::collections::BTreeSet;

use common::*;
use nextcloud_sim::{Server, SimOptions, Simulator};

const SELECT: &str = "<d:getetag/><d:getlastmodified/><d:getcontentlength/><d:getcontenttype/><d:resourcetype/><oc:fileid/><oc:permissions/><oc:size/><oc:owner-id/><oc:checksums/>";

fn body(scope: &str, where_: &str, tail: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
  <d:basicsearch>
    <d:select><d:prop>{SELECT}</d:prop></d:select>
    <d:from><d:scope><d:href>{scope}</d:href><d:depth>infinity</d:depth></d:scope></d:from>
    <d:where>{where_}</d:where>
    {tail}
  </d:basicsearch>
</d:searchrequest>"#
    )
}

const BY_MTIME: &str =
    "<d:orderby><d:order><d:prop><d:getlastmodified/></d:prop><d:ascending/></d:order></d:orderby>";

fn modified_after(literal: &str) -> String {
    format!("<d:gt><d:prop><d:getlastmodified/></d:prop><d:literal>{literal}</d:literal></d:gt>")
}

fn fileid_eq(id: u64) -> String {
    format!("<d:eq><d:prop><oc:fileid/></d:prop><d:literal>{id}</d:literal></d:eq>")
}

fn search_as(server: &Server, url_rel: &str, auth: &str, body: &str) -> Reply {
    request(
        "SEARCH",
        &format!("{}{url_rel}", server.base_url()),
        &[
            ("Authorization", auth),
            ("Content-Type", "text/xml; charset=utf-8"),
        ],
        body.as_bytes(),
    )
}

fn search(server: &Server, body: &str) -> Vec<DavResponse> {
    let reply = search_as(server, "/remote.php/dav/", &alice(), body);
    assert_eq!(reply.status, 207, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=\"utf-8\"")
    );
    parse_multistatus(&reply.body)
}

fn hrefs(responses: &[DavResponse]) -> Vec<String> {
    responses.iter().map(|r| r.href.clone()).collect()
}

fn path_href(path: &str, folder: bool) -> String {
    let mut h = String::from("/remote.php/dav/files/alice");
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        h.push('/');
        for &b in seg.as_bytes() {
            if b.is_ascii_alphanumeric() || b"_-.~():@".contains(&b) {
                h.push(b as char);
            } else {
                h.push_str(&format!("%{b:02x}"));
            }
        }
    }
    if folder {
        h.push('/');
    }
    h
}

#[test]
fn finds_items_by_fileid_alone_and_fifty_at_a_time() {
    let server = sample_server();
    let sim = server.simulator();
    sim.rename("/Documents/notes.md", "/Projects/moved notes.md")
        .unwrap();
    let moved = sim.fileid("/Projects/moved notes.md").unwrap();

    let one = search(&server, &body("/files/alice", &fileid_eq(moved), ""));
    assert_eq!(hrefs(&one), [path_href("/Projects/moved notes.md", false)]);
    assert_eq!(one[0].text("oc:fileid"), moved.to_string());

    let listing = sim.listing();
    let wanted: Vec<_> = listing.iter().skip(1).take(49).collect();
    let mut ors: String = wanted.iter().map(|e| fileid_eq(e.fileid)).collect();
    ors.push_str(&fileid_eq(999_999));
    let found = search(
        &server,
        &body("/files/alice", &format!("<d:or>{ors}</d:or>"), ""),
    );
    let got: BTreeSet<String> = hrefs(&found).into_iter().collect();
    let expected: BTreeSet<String> = wanted
        .iter()
        .map(|e| path_href(&e.path, e.is_folder))
        .collect();
    assert_eq!(got, expected, "49 found, the unknown id ignored");
    for r in &found {
        let e = listing
            .iter()
            .find(|e| e.fileid.to_string() == r.text("oc:fileid"))
            .unwrap();
        assert_eq!(r.text("d:getetag"), format!("\"{}\"", e.etag));
        assert_eq!(r.text("oc:permissions"), e.permissions);
    }
}

#[test]
fn modified_since_accepts_atom_and_unix_and_reads_anything_else_as_zero() {
    let server = sample_server();
    let old = "/remote.php/dav/files/alice/Documents/Archive/2019/old.txt";
    let q1 = "/remote.php/dav/files/alice/Reports%202024/Q1%20r%c3%a9sum%c3%a9.pdf";
    let run = |literal: &str| {
        let found = search(
            &server,
            &body("/files/alice", &modified_after(literal), BY_MTIME),
        );
        // Ascending modification time.
        let times: Vec<i64> = found
            .iter()
            .map(|r| {
                httpdate::parse_http_date(r.text("d:getlastmodified"))
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
            })
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{literal}: {times:?}"
        );
        hrefs(&found)
    };
    let atom = run("2023-01-01T00:00:00+00:00");
    assert!(atom.contains(&q1.to_string()));
    assert!(!atom.contains(&old.to_string()));
    assert!(
        !atom.contains(&"/remote.php/dav/files/alice/".to_string()),
        "the scope itself is no result"
    );
    assert_eq!(run("2023-01-01T00:00:00Z"), atom);
    assert_eq!(run("1672531200"), atom);
    let rfc1123 = run("Sun, 01 Jan 2023 00:00:00 GMT");
    assert!(rfc1123.contains(&old.to_string()), "read as 0: everything");
    assert_eq!(rfc1123.len(), server.simulator().listing().len() - 1);
    let later = run("2024-06-01T00:00:00+00:00");
    assert!(!later.contains(&q1.to_string()));
}

#[test]
fn files_only_with_nresults_like_the_capture() {
    let server = sample_server();
    let reply = search_as(
        &server,
        "/remote.php/dav/",
        &alice(),
        &fixture_request_body("search-modified-since-files-only-limit5.request.txt"),
    );
    assert_eq!(reply.status, 207);
    let ours = parse_multistatus(&reply.body);
    let theirs = parse_multistatus(&fixture("search-modified-since-files-only-limit5.xml"));
    assert_eq!(ours.len(), 5);
    assert_eq!(theirs.len(), 5);
    assert!(ours.iter().all(|r| !r.is_collection()));
    assert_eq!(ours[0].shape(), theirs[0].shape(), "same props, same split");
    assert_eq!(ours[0].text("oc:owner-id"), "alice");
    assert!(
        reply
            .body
            .starts_with("<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\"")
    );
    assert!(reply.body.ends_with("</d:multistatus>\n"));
}

#[test]
fn without_nresults_at_most_a_hundred() {
    let sim = Simulator::new(SimOptions::default());
    sim.generate(300, 5);
    let server = Server::start(sim).unwrap();
    let all = search(&server, &body("/files/alice", "", ""));
    assert_eq!(all.len(), 100);
    let many = search(
        &server,
        &body(
            "/files/alice",
            "",
            "<d:limit><d:nresults>250</d:nresults></d:limit>",
        ),
    );
    assert_eq!(many.len(), 250);
    let ids = |r: &[DavResponse]| -> Vec<u64> {
        r.iter()
            .map(|x| x.text("oc:fileid").parse().unwrap())
            .collect()
    };
    let paged = search(
        &server,
        &body(
            "/files/alice",
            "",
            "<d:limit><d:nresults>10</d:nresults><nc:firstresult>5</nc:firstresult></d:limit>",
        ),
    );
    assert_eq!(ids(&paged), ids(&many)[5..15]);
}

#[test]
fn wrong_endpoint_and_encoded_scope_match_the_captures() {
    let server = sample_server();
    let req = body(
        "/files/alice",
        &modified_after("2023-01-01T00:00:00+00:00"),
        BY_MTIME,
    );
    let wrong = search_as(&server, "/remote.php/dav/files/alice/", &alice(), &req);
    assert_eq!(wrong.status, 501);
    assert_eq!(wrong.body, fixture("search-wrong-endpoint.xml"));

    let encoded = search_as(
        &server,
        "/remote.php/dav/",
        &alice(),
        &fixture_request_body("search-subfolder-scope-encoded-href-404.request.txt"),
    );
    assert_eq!(encoded.status, 404);
    assert_eq!(
        encoded.body,
        fixture("search-subfolder-scope-encoded-href-404.xml")
    );

    let decoded = search(
        &server,
        &body(
            "/files/alice/Reports 2024",
            &modified_after("2000-01-01T00:00:00Z"),
            BY_MTIME,
        ),
    );
    assert!(!decoded.is_empty());
    assert!(decoded.iter().all(|r| {
        r.href
            .starts_with("/remote.php/dav/files/alice/Reports%202024/")
            && r.href != "/remote.php/dav/files/alice/Reports%202024/"
    }));
    let unauthorized = search_as(&server, "/remote.php/dav/", &basic("alice", "nope"), &req);
    assert_eq!(unauthorized.status, 401);
}

#[test]
fn operators_ordering_and_refusals() {
    let server = sample_server();
    let pdfs = search(
        &server,
        &body(
            "/files/alice",
            "<d:and><d:like><d:prop><d:getcontenttype/></d:prop><d:literal>application/%</d:literal></d:like>\
             <d:like><d:prop><d:displayname/></d:prop><d:literal>%.PDF</d:literal></d:like></d:and>",
            "<d:orderby><d:order><d:prop><d:displayname/></d:prop><d:descending/></d:order></d:orderby>",
        ),
    );
    let names: Vec<&str> = pdfs
        .iter()
        .map(|r| r.href.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Q2%20r%c3%a9sum%c3%a9.pdf", "Q1%20r%c3%a9sum%c3%a9.pdf"]
    );

    let big = search(
        &server,
        &body(
            "/files/alice",
            "<d:and><d:gte><d:prop><oc:size/></d:prop><d:literal>3000000</d:literal></d:gte><d:not><d:is-collection/></d:not></d:and>",
            "",
        ),
    );
    assert_eq!(big.len(), 2, "the mp3 and the mp4");

    let too_many: String = (0..101).map(fileid_eq).collect();
    let reply = search_as(
        &server,
        "/remote.php/dav/",
        &alice(),
        &body("/files/alice", &format!("<d:or>{too_many}</d:or>"), ""),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .body
            .contains("maximum operator limit of 100 exceeded")
    );

    let reply = search_as(
        &server,
        "/remote.php/dav/",
        &alice(),
        &body(
            "/files/alice",
            "<d:eq><d:prop><oc:owner-id/></d:prop><d:literal>bob</d:literal></d:eq>",
            "",
        ),
    );
    assert_eq!(reply.status, 400);
}

/// SEARCH results carry no upload time (`0`; the search does not read the
/// file cache's extended columns), where a PROPFIND of the same file has
/// it; recorded from Nextcloud 32.0.1 by the real-server conformance test.
#[test]
fn search_results_have_no_upload_time() {
    let server = sample_server();
    let sim = server.simulator();
    let id = sim.put("/Documents/uploaded.txt", "new").unwrap();
    let select = "<d:prop><oc:fileid/><nc:upload_time/></d:prop>";
    let propfind_body = format!(
        r#"<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">{select}</d:propfind>"#
    );
    let reply = request(
        "PROPFIND",
        &dav_url(&server, "Documents/uploaded.txt"),
        &[("Authorization", &alice()), ("Depth", "0")],
        propfind_body.as_bytes(),
    );
    let listed = parse_multistatus(&reply.body);
    let upload: i64 = listed[0].text("nc:upload_time").parse().unwrap();
    assert!(upload > 1_000_000_000, "PROPFIND: {upload}");

    let search_body = body("/files/alice", &fileid_eq(id), "")
        .replace(&format!("<d:prop>{SELECT}</d:prop>"), select);
    let found = search(&server, &search_body);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].text("oc:fileid"), id.to_string());
    assert_eq!(found[0].text("nc:upload_time"), "0");
}
