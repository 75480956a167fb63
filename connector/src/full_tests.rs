//! The full listing against an in-memory host: ordering, change detection,
//! deletion rules, the Depth 1 fallback, and crashes between batches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::Connector;
use crate::error::Error;
use crate::host::{Answer, Request};
use crate::model::{Config, Filters, RecordChange, SyncMode};
use crate::testing::{DavNode, MemoryHost, fixture, multistatus, response};

const BASE: &str = "http://127.0.0.1:8080";

fn connector(batch_size: u32) -> Connector {
    Connector::new(Config {
        base_url: BASE.into(),
        username: "alice".into(),
        batch_size,
        filters: Filters::default(),
        reconcile_interval: 86400,
        now: 1_800_000_000,
    })
    .unwrap()
}

/// A server whose listing is whatever `body` holds right now.
fn server(body: Rc<RefCell<Vec<u8>>>) -> MemoryHost {
    MemoryHost::new(serve(body))
}

/// How [`server`] answers.
fn serve(body: Rc<RefCell<Vec<u8>>>) -> impl FnMut(&Request) -> Answer<std::io::Cursor<Vec<u8>>> {
    move |req| {
        if req.url.ends_with("/ocs/v2.php/cloud/user?format=json") {
            assert!(
                req.headers
                    .iter()
                    .any(|(n, v)| n == "OCS-APIRequest" && v == "true")
            );
            return response(200, fixture("cloud-user.json"));
        }
        if req.url.contains("/apps/activity/") || req.url.contains("/apps/files_sharing/") {
            // No Activity app: later runs reconcile by the root's etag. No sharing app either.
            return response(404, "");
        }
        assert_eq!(req.method, "PROPFIND");
        let listing = body.borrow().clone();
        response(207, answer(&listing, &req.url, &depth_of(req)))
    }
}

/// What a server holding `listing` answers a PROPFIND on `url` at `depth`,
/// cut from the listing's raw text so malformed listings stay malformed.
fn answer(listing: &[u8], url: &str, depth: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(listing);
    let asked = url.strip_prefix(BASE).unwrap().trim_end_matches('/');
    let Some((head, rest)) = text.split_once("<d:response>") else {
        return listing.to_vec();
    };
    let mut out = head.to_string();
    for part in rest.split("<d:response>") {
        let href = part
            .split_once("<d:href>")
            .and_then(|(_, h)| h.split_once("</d:href>"))
            .map(|(h, _)| h.trim_end_matches('/'))
            .unwrap_or_default();
        let below = href.strip_prefix(asked).and_then(|r| r.strip_prefix('/'));
        let keep = href == asked
            || match depth {
                "0" => false,
                "1" => below.is_some_and(|r| !r.contains('/')),
                _ => below.is_some(),
            };
        if keep {
            out.push_str("<d:response>");
            out.push_str(part.trim_end().trim_end_matches("</d:multistatus>"));
        }
    }
    if !out.ends_with("</d:multistatus>") && text.trim_end().ends_with("</d:multistatus>") {
        out.push_str("</d:multistatus>");
    }
    out.into_bytes()
}

fn depth_of(req: &crate::host::Request) -> String {
    req.headers
        .iter()
        .find(|(n, _)| n == "Depth")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn node(
    path: &str,
    fileid: u64,
    folder: bool,
    etag: &'static str,
) -> (String, u64, bool, &'static str) {
    (path.to_string(), fileid, folder, etag)
}

fn body_of(nodes: &[(String, u64, bool, &'static str)]) -> Vec<u8> {
    let hrefs: Vec<String> = nodes
        .iter()
        .map(|(p, _, folder, _)| {
            let enc = crate::href::encode_path(p.trim_start_matches('/'));
            let slash = if *folder && !enc.is_empty() { "/" } else { "" };
            format!("/remote.php/dav/files/alice/{enc}{slash}")
        })
        .collect();
    let dav: Vec<DavNode> = nodes
        .iter()
        .zip(&hrefs)
        .map(|((_, id, folder, etag), href)| DavNode {
            href,
            fileid: *id,
            folder: *folder,
            etag,
            size: 3,
        })
        .collect();
    multistatus(&dav).into_bytes()
}

fn paths_by_id(host: &MemoryHost) -> HashMap<String, String> {
    host.committed
        .borrow()
        .sink
        .values()
        .map(|r| (r.external_id.clone(), r.path.clone()))
        .collect()
}

#[test]
fn syncs_the_fixture_tree_parents_first() {
    let host = server(Rc::new(RefCell::new(fixture(
        "propfind-depth-infinity.xml",
    ))));
    let summary = connector(7).run_sync(&host).unwrap();
    assert_eq!(summary.mode, SyncMode::Full);
    assert_eq!(summary.new, 53);
    let state = host.committed.borrow();
    assert_eq!(state.sink.len(), 53);
    assert_eq!(state.known.len(), 53);
    assert_eq!(state.users[0].id, "alice");
    assert_eq!(state.groups[0].name, "Nextcloud - alice");
    assert_eq!(state.groups[0].kind, "drive");
    let by_path: HashMap<&str, &crate::model::Record> =
        state.sink.values().map(|r| (r.path.as_str(), r)).collect();
    let pdf = by_path["/Reports 2024/Summary & Plan #1 (100%).txt"];
    assert_eq!(
        pdf.parent_external_id.as_deref(),
        Some(by_path["/Reports 2024"].external_id.as_str())
    );
    assert_eq!(by_path["/"].parent_external_id, None);
    assert_eq!(by_path["/"].etag, "6b0b03ebc2a70");
    assert!(by_path.contains_key("/Projects/beta/notes+plus.txt"));
    assert_eq!(by_path["/Documents"].mime_type, "httpd/unix-directory");
    // Batches never exceed the batch size, and every parent precedes its children.
    let batches = host.batches.borrow();
    assert!(batches.iter().all(|b| b.len() <= 7));
    let mut placed = std::collections::HashSet::new();
    for change in batches.iter().flatten() {
        let RecordChange::New(r) = change else {
            panic!("{change:?}")
        };
        if let Some(parent) = &r.parent_external_id {
            assert!(placed.contains(parent), "{} before its parent", r.path);
        }
        placed.insert(r.external_id.clone());
    }
}

#[test]
fn a_second_sync_emits_nothing() {
    let host = server(Rc::new(RefCell::new(fixture(
        "propfind-depth-infinity.xml",
    ))));
    connector(100).run_sync(&host).unwrap();
    let before = host.batches.borrow().len();
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(
        (
            summary.new,
            summary.content_updated,
            summary.metadata_updated,
            summary.deleted
        ),
        (0, 0, 0, 0)
    );
    // Without an Activity app the second run reconciles: the root's etag is
    // unchanged, so it asks for the share list and the root, nothing more.
    assert_eq!(summary.mode, SyncMode::Incremental);
    assert_eq!(host.requests.borrow().len(), 4 + 2);
    assert_eq!(host.batches.borrow().len(), before);
    assert_eq!(
        host.committed.borrow().users.len(),
        1,
        "the user is sent once"
    );
}

#[test]
fn children_listed_before_their_parent_wait_for_it() {
    let nodes = vec![
        node("/", 1, true, "r"),
        node("/a/b/c.txt", 4, false, "c"),
        node("/a/b", 3, true, "b"),
        node("/a", 2, true, "a"),
    ];
    let host = server(Rc::new(RefCell::new(body_of(&nodes))));
    connector(100).run_sync(&host).unwrap();
    let order: Vec<String> = host
        .changes()
        .iter()
        .map(|c| match c {
            RecordChange::New(r) => r.path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, ["/", "/a", "/a/b", "/a/b/c.txt"]);
}

#[test]
fn detects_renames_moves_content_changes_and_deletions() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/docs", 2, true, "d1"),
        node("/docs/a.txt", 3, false, "a1"),
        node("/docs/b.txt", 4, false, "b1"),
        node("/old", 5, true, "o1"),
        node("/old/deep", 6, true, "x1"),
        node("/old/deep/c.txt", 7, false, "c1"),
        node("/gone.txt", 8, false, "g1"),
    ])));
    let host = server(body.clone());
    connector(3).run_sync(&host).unwrap();
    *body.borrow_mut() = body_of(&[
        node("/", 1, true, "r2"),
        node("/docs", 2, true, "d2"),
        node("/docs/a.txt", 3, false, "a2"), // content changed
        node("/docs/renamed.txt", 4, false, "b1"), // renamed
        node("/new", 5, true, "o1"),         // folder renamed: children move with it
        node("/new/deep", 6, true, "x1"),
        node("/new/deep/c.txt", 7, false, "c1"),
        node("/docs/moved", 9, true, "m1"), // new
    ]);
    let summary = connector(3).run_sync(&host).unwrap();
    assert_eq!(summary.new, 1);
    assert_eq!(summary.content_updated, 1);
    // root, docs (etags), renamed file, the renamed folder and its two descendants
    assert_eq!(summary.metadata_updated, 6);
    assert_eq!(summary.deleted, 1);
    assert_eq!(summary.unchanged, 0);
    let paths = paths_by_id(&host);
    assert_eq!(paths["4"], "/docs/renamed.txt");
    assert_eq!(paths["7"], "/new/deep/c.txt");
    assert!(!paths.contains_key("8"));
    assert_eq!(host.committed.borrow().known.len(), 8);
}

#[test]
fn deletes_children_before_their_folder() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/x", 2, true, "x"),
        node("/x/y", 3, true, "y"),
        node("/x/y/z.txt", 4, false, "z"),
    ])));
    let host = server(body.clone());
    connector(100).run_sync(&host).unwrap();
    *body.borrow_mut() = body_of(&[node("/", 1, true, "r2")]);
    connector(100).run_sync(&host).unwrap();
    let deleted: Vec<String> = host
        .changes()
        .into_iter()
        .filter_map(|c| match c {
            RecordChange::Deleted(id) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, ["4", "3", "2"]);
    assert_eq!(host.committed.borrow().sink.len(), 1);
}

#[test]
fn a_broken_listing_deletes_nothing() {
    let full = body_of(&[
        node("/", 1, true, "r1"),
        node("/a.txt", 2, false, "a"),
        node("/b.txt", 3, false, "b"),
    ]);
    let body = Rc::new(RefCell::new(full.clone()));
    let host = server(body.clone());
    connector(100).run_sync(&host).unwrap();
    // Cut after the root's response: a dropped streamed 207.
    let text = String::from_utf8(full).unwrap().replace("r1", "r2");
    let cut = text.find("</d:response>").unwrap() + "</d:response>".len() + 40;
    *body.borrow_mut() = text.as_bytes()[..cut].to_vec();
    let err = connector(100).run_sync(&host).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert_eq!(host.committed.borrow().sink.len(), 3);
}

#[test]
fn unreadable_entries_are_skipped_and_what_is_known_there_is_kept() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/a.txt", 2, false, "a"),
        node("/b.txt", 3, false, "b"),
    ])));
    let host = server(body.clone());
    connector(100).run_sync(&host).unwrap();
    let text = String::from_utf8(body.borrow().clone()).unwrap();
    *body.borrow_mut() = text
        .replace("<oc:fileid>2</oc:fileid>", "<oc:fileid>two</oc:fileid>")
        .replace("r1", "r2")
        .into_bytes();
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(summary.deleted, 0);
    assert!(
        host.warnings()
            .iter()
            .any(|w| w.contains("a.txt") && w.contains("not a number"))
    );
    assert!(paths_by_id(&host).contains_key("2"));
}

#[test]
fn falls_back_to_a_depth_1_walk_when_infinity_is_refused() {
    let responses: HashMap<String, Vec<u8>> = HashMap::from([
        (
            "/".to_string(),
            body_of(&[
                node("/", 1, true, "r"),
                node("/a", 2, true, "a"),
                node("/f.txt", 3, false, "f"),
            ]),
        ),
        (
            "/a".to_string(),
            body_of(&[
                node("/a", 2, true, "a"),
                node("/a/b", 4, true, "b"),
                node("/a/g.txt", 5, false, "g"),
            ]),
        ),
        (
            "/a/b".to_string(),
            body_of(&[
                node("/a/b", 4, true, "b"),
                node("/a/b/h.txt", 6, false, "h"),
            ]),
        ),
    ]);
    let root = crate::href::DavRoot::new(BASE, "alice").unwrap();
    let host = MemoryHost::new(move |req| {
        if req.url.ends_with("cloud/user?format=json") {
            return response(200, fixture("cloud-user.json"));
        }
        if req.url.contains("/apps/activity/") || req.url.contains("/apps/files_sharing/") {
            return response(404, "");
        }
        let depth = depth_of(req);
        if depth == "infinity" {
            return response(
                403,
                r#"<d:error xmlns:d="DAV:"><d:propfind-finite-depth/></d:error>"#,
            );
        }
        assert_eq!(depth, "1");
        let path = root.path_of(&req.url).unwrap();
        response(207, responses[&path].clone())
    });
    let summary = connector(2).run_sync(&host).unwrap();
    assert_eq!(summary.new, 6);
    // identity, activity, shares, the refused infinity, then one Depth 1 per folder
    assert_eq!(host.requests.borrow().len(), 4 + 3);
    let changes: Vec<String> = host
        .changes()
        .iter()
        .map(|c| match c {
            RecordChange::New(r) => r.path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        ["/", "/a", "/f.txt", "/a/b", "/a/g.txt", "/a/b/h.txt"]
    );
}

/// The reads before a listing need no answer from each other: they go to
/// the host in one batch, and the listing only after their answers.
#[test]
fn the_reads_before_a_listing_go_out_together() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/f.txt", 2, false, "f1"),
    ])));
    let host = server(body);
    connector(100).run_sync(&host).unwrap();
    let first = host.sent_together.borrow()[0].clone();
    let endpoints: Vec<&str> = first
        .iter()
        .map(|url| {
            let path = url.trim_start_matches(BASE);
            path.split('?').next().unwrap_or(path)
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            "/ocs/v2.php/cloud/user",
            "/ocs/v2.php/apps/activity/api/v2/activity/files",
            "/ocs/v2.php/apps/files_sharing/api/v1/shares",
        ]
    );
    let requests = host.requests.borrow();
    assert!(requests[..3].iter().all(|r| r.method == "GET"));
    assert_eq!(
        requests[3].method, "PROPFIND",
        "the listing comes after them"
    );
}

/// A refused `Depth: infinity` is a quirk learned once: kept with the
/// state, so later runs list new folders folder by folder without asking
/// again; a listing of the whole account asks anyway.
#[test]
fn a_refused_infinity_is_remembered_between_runs() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/a", 2, true, "a1"),
        node("/a/f.txt", 3, false, "f1"),
    ])));
    let mut listing = serve(body.clone());
    let host = MemoryHost::new(move |req| {
        if depth_of(req) == "infinity" {
            return response(
                403,
                r#"<d:error xmlns:d="DAV:"><d:propfind-finite-depth/></d:error>"#,
            );
        }
        listing(req)
    });
    let infinities = |host: &MemoryHost| {
        host.requests
            .borrow()
            .iter()
            .filter(|r| depth_of(r) == "infinity")
            .count()
    };
    connector(100).run_sync(&host).unwrap();
    assert_eq!(infinities(&host), 1, "the full listing asks once");
    let kept = host
        .committed
        .borrow()
        .points
        .get(crate::keys::SERVER)
        .cloned();
    assert_eq!(
        kept.as_deref(),
        Some(r#"{"depth_infinity":false,"activity":false}"#)
    );
    // A new folder with a file: the reconcile lists it whole, folder by folder.
    *body.borrow_mut() = body_of(&[
        node("/", 1, true, "r2"),
        node("/a", 2, true, "a1"),
        node("/a/f.txt", 3, false, "f1"),
        node("/n", 4, true, "n1"),
        node("/n/g.txt", 5, false, "g1"),
    ]);
    host.requests.borrow_mut().clear();
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(summary.new, 2);
    assert_eq!(infinities(&host), 0, "the refusal was remembered");
    assert_eq!(paths_by_id(&host)["5"], "/n/g.txt");
}

#[test]
fn a_plain_403_is_an_error_not_a_fallback() {
    let host = MemoryHost::new(|req| {
        if req.url.ends_with("cloud/user?format=json") {
            return response(200, fixture("cloud-user.json"));
        }
        response(403, "<d:error/>")
    });
    let err = connector(100).run_sync(&host).unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[test]
fn a_crash_between_batches_loses_nothing() {
    let nodes: Vec<(String, u64, bool, &'static str)> = std::iter::once(node("/", 1, true, "r"))
        .chain((0..20).map(|i| node(&format!("/f{i:02}.txt"), 10 + i, false, "e")))
        .collect();
    let host = server(Rc::new(RefCell::new(body_of(&nodes))));
    *host.commits_left.borrow_mut() = Some(2);
    assert!(matches!(
        connector(5).run_sync(&host),
        Err(Error::Storage(_))
    ));
    host.abandon();
    assert_eq!(host.committed.borrow().sink.len(), 10);
    let listed = |host: &MemoryHost| {
        host.committed
            .borrow()
            .points
            .contains_key(crate::keys::LISTED_AT)
    };
    assert!(!listed(&host));
    *host.commits_left.borrow_mut() = None;
    let summary = connector(5).run_sync(&host).unwrap();
    assert_eq!((summary.new, summary.unchanged), (11, 10));
    assert_eq!(host.committed.borrow().sink.len(), 21);
    assert!(listed(&host));
}

#[test]
fn duplicate_file_ids_keep_the_first() {
    let host = server(Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r"),
        node("/a.txt", 2, false, "a"),
        node("/b.txt", 2, false, "b"),
    ]))));
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(summary.new, 2);
    assert_eq!(paths_by_id(&host)["2"], "/a.txt");
    assert!(host.warnings().iter().any(|w| w.contains("already listed")));
}

#[test]
fn hostile_hrefs_are_skipped() {
    let text = String::from_utf8(body_of(&[
        node("/", 1, true, "r"),
        node("/a.txt", 2, false, "a"),
    ]))
    .unwrap();
    let hostile = text.replace(
        "/remote.php/dav/files/alice/a.txt",
        "/remote.php/dav/files/alice/../bob/a.txt",
    );
    let host = server(Rc::new(RefCell::new(hostile.into_bytes())));
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(summary.new, 1);
    assert!(host.warnings().iter().any(|w| w.contains("..")));
}

#[test]
fn a_reconcile_descends_only_into_folders_whose_etag_changed() {
    let body = Rc::new(RefCell::new(body_of(&[
        node("/", 1, true, "r1"),
        node("/quiet", 2, true, "q1"),
        node("/quiet/deep", 3, true, "qd1"),
        node("/quiet/deep/x.txt", 4, false, "x1"),
        node("/busy", 5, true, "b1"),
        node("/busy/y.txt", 6, false, "y1"),
    ])));
    let host = server(body.clone());
    connector(100).run_sync(&host).unwrap();
    *body.borrow_mut() = body_of(&[
        node("/", 1, true, "r2"),
        node("/quiet", 2, true, "q1"),
        node("/quiet/deep", 3, true, "qd1"),
        node("/quiet/deep/x.txt", 4, false, "x1"),
        node("/busy", 5, true, "b2"),
        node("/busy/y.txt", 6, false, "y2"),
        node("/busy/z.txt", 7, false, "z1"),
    ]);
    host.requests.borrow_mut().clear();
    let summary = connector(100).run_sync(&host).unwrap();
    assert_eq!(
        (
            summary.new,
            summary.content_updated,
            summary.metadata_updated
        ),
        (1, 1, 2)
    );
    let listed: Vec<(String, String)> = host
        .requests
        .borrow()
        .iter()
        .filter(|r| r.method == "PROPFIND")
        .map(|r| (r.url.trim_start_matches(BASE).to_string(), depth_of(r)))
        .collect();
    assert_eq!(
        listed,
        [
            ("/remote.php/dav/files/alice/".to_string(), "0".to_string()),
            ("/remote.php/dav/files/alice/".to_string(), "1".to_string()),
            (
                "/remote.php/dav/files/alice/busy".to_string(),
                "1".to_string()
            ),
        ]
    );
    assert_eq!(paths_by_id(&host)["7"], "/busy/z.txt");
}
