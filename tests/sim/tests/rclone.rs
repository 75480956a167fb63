//! rclone's WebDAV backend (vendor `nextcloud`) as a client: the requests it
//! sends for `rclone lsjson -R`, answered as Nextcloud 32 answers them.

mod common;

use std::collections::{BTreeSet, VecDeque};

use common::*;

/// The body rclone 1.60 sends with every listing PROPFIND (`Depth: 1`), byte
/// for byte: its odd spacing must parse like any other body.
const RCLONE_BODY: &str = "<?xml version=\"1.0\"?>\n<d:propfind  xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\n <d:prop>\n  <d:displayname />\n  <d:getlastmodified />\n  <d:getcontentlength />\n  <d:resourcetype />\n  <d:getcontenttype />\n  <oc:checksums />\n </d:prop>\n</d:propfind>\n";

/// The properties of `RCLONE_BODY` that the captured Depth: infinity answer
/// also asked for, so their 200/404 split can be checked against it.
/// `oc:checksums` is left out: whether a file has one depends on how it was
/// uploaded (the sample's readme.txt has one, the capture's did not yet).
const CAPTURED: [&str; 4] = [
    "d:getlastmodified",
    "d:getcontentlength",
    "d:resourcetype",
    "d:getcontenttype",
];

fn rclone_propfind(server: &nextcloud_sim::Server, href: &str) -> Vec<DavResponse> {
    let auth = alice();
    let url = format!("{}{href}", server.base_url());
    let reply = request(
        "PROPFIND",
        &url,
        &[("Authorization", &auth), ("Depth", "1")],
        RCLONE_BODY.as_bytes(),
    );
    assert_eq!(reply.status, 207, "{href}");
    parse_multistatus(&reply.body)
}

fn status_of<'a>(r: &'a DavResponse, prop: &str) -> Option<&'a str> {
    r.propstats
        .iter()
        .find(|(_, props)| props.iter().any(|p| p.name == prop))
        .map(|(st, _)| st.as_str())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 href")
}

/// rclone walks the tree one Depth 1 PROPFIND per folder; the union of those
/// listings must be the Depth: infinity listing, and each entry must carry
/// rclone's properties in the propstat real Nextcloud puts them in.
#[test]
fn rclone_depth1_walk_lists_the_tree_as_nextcloud_does() {
    let server = sample_server();
    let root = "/remote.php/dav/files/alice/";
    let captured = parse_multistatus(&fixture("propfind-depth-infinity.xml"));

    let mut walked = BTreeSet::new();
    let mut queue = VecDeque::from([root.to_string()]);
    let mut requests = 0;
    let mut compared = 0;
    while let Some(dir) = queue.pop_front() {
        requests += 1;
        let responses = rclone_propfind(&server, &dir);
        assert_eq!(responses[0].href, dir, "the folder itself comes first");
        for r in &responses {
            let name = if r.href == root {
                // FilesPlugin answers `$node->getName()`: the home is "files".
                "files".to_string()
            } else {
                let trimmed = r.href.trim_end_matches('/');
                percent_decode(&trimmed[trimmed.rfind('/').unwrap() + 1..])
            };
            assert_eq!(r.text("d:displayname"), name, "{}", r.href);
            if r.is_collection() {
                let st = status_of(r, "oc:checksums");
                assert_eq!(st, Some("HTTP/1.1 404 Not Found"), "{}", r.href);
            }
            if let Some(theirs) = captured.iter().find(|c| c.href == r.href) {
                compared += 1;
                for prop in CAPTURED {
                    assert_eq!(
                        status_of(r, prop),
                        status_of(theirs, prop),
                        "{prop} of {}",
                        r.href
                    );
                }
            }
        }
        for r in &responses[1..] {
            if r.is_collection() {
                queue.push_back(r.href.clone());
            }
            assert!(walked.insert(r.href.clone()), "{} listed twice", r.href);
        }
    }

    let infinity = parse_multistatus(&propfind(&server, "", Some("infinity")).body);
    let all: BTreeSet<_> = infinity[1..].iter().map(|r| r.href.clone()).collect();
    assert_eq!(walked, all);
    let folders = infinity.iter().filter(|r| r.is_collection()).count();
    assert_eq!(requests, folders, "one request per folder, root included");
    assert!(
        compared >= 20,
        "only {compared} entries shared with the capture"
    );
}
