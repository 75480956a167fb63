//! The Activity app's v2 API over real HTTP, compared with the captures.

mod common;

use std::collections::BTreeSet;

use common::*;
use nextcloud_sim::{Server, SimOptions, Simulator};
use serde_json::Value;

const EMPTY_ETAG: &str = "d751713988987e9331980363e24189ce";

fn header_names(headers: &[(String, String)]) -> BTreeSet<String> {
    headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k.starts_with("x-activity") || k == "link" || k == "etag")
        .collect()
}

fn reply_header_names(r: &Reply) -> BTreeSet<String> {
    header_names(&r.headers)
}

/// Creates, in the captured order, the 52 nodes of `activity-page1/2.json`
/// (a name without a dot is a folder).
fn fixture_tree(sim: &Simulator) {
    for page in ["activity-page1.json", "activity-page2.json"] {
        for entry in fixture_json(page)["ocs"]["data"].as_array().unwrap() {
            let params = entry["subject_rich"][1].as_object().unwrap();
            let mut files: Vec<(u32, String)> = params
                .iter()
                .filter_map(|(k, v)| {
                    let n = k.strip_prefix("file")?.parse().ok()?;
                    Some((n, v["path"].as_str()?.to_string()))
                })
                .collect();
            files.sort_by_key(|f| std::cmp::Reverse(f.0));
            for (_, path) in files {
                let name = path.rsplit('/').next().unwrap();
                let full = format!("/{path}");
                if name.contains('.') {
                    sim.put(&full, format!("content of {path}\n")).unwrap();
                } else {
                    sim.mkdir(&full).unwrap();
                }
            }
        }
    }
}

fn fixture_server() -> Server {
    let sim = Simulator::new(SimOptions::default());
    fixture_tree(&sim);
    Server::start(sim).unwrap()
}

fn normalized(entries: &[Value]) -> Vec<Value> {
    entries.iter().map(normalize_activity).collect()
}

fn fixture_data(name: &str) -> Vec<Value> {
    fixture_json(name)["ocs"]["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn files_since(server: &Server, since: u64) -> Reply {
    activity(
        server,
        &format!("/files?format=json&sort=asc&since={since}&limit=50"),
    )
}

#[test]
fn first_pages_match_the_captures_exactly() {
    let server = fixture_server();
    let page1 = files_since(&server, 0);
    let ours = data(&page1);
    let theirs = fixture_data("activity-page1.json");
    assert_eq!(ours.len(), 10, "50 rows grouped by five");
    assert_eq!(normalized(&ours), normalized(&theirs));
    // Templates keep the captured placeholder order, raw.
    assert!(
        page1
            .body
            .contains(r#""You created {file5}, {file4}, {file3}, {file2} and {file1}""#)
    );
    assert_eq!(
        reply_header_names(&page1),
        header_names(&fixture_headers("activity-page1.headers.txt"))
    );
    let last: u64 = page1
        .header("x-activity-last-given")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ours[9]["activity_id"], last, "a group's id is its last row");
    assert_eq!(page1.header("x-activity-first-known"), Some("1"));
    let link = page1.header("link").unwrap();
    assert_eq!(
        link,
        format!(
            "<{}/ocs/v2.php/apps/activity/api/v2/activity/files?since={last}&limit=50&sort=asc&format=json>; rel=\"next\"",
            server.base_url()
        )
    );
    let etag = page1.header("etag").unwrap();
    assert_eq!(etag.len(), 32);
    assert!(etag.bytes().all(|b| b.is_ascii_hexdigit()), "unquoted md5");

    let page2 = files_since(&server, last);
    assert_eq!(
        normalized(&data(&page2)),
        normalized(&fixture_data("activity-page2.json"))
    );
    assert!(page2.body.contains(r#""You created {file2} and {file1}""#));
    assert!(page2.header("link").is_none(), "no more rows");
    assert!(
        page2.header("x-activity-first-known").is_none(),
        "since known"
    );
    let end: u64 = page2
        .header("x-activity-last-given")
        .unwrap()
        .parse()
        .unwrap();

    let none = files_since(&server, end);
    assert_eq!(none.status, 304);
    assert_eq!(none.body, "");
    assert_eq!(none.header("etag"), Some(EMPTY_ETAG));
    assert_eq!(
        reply_header_names(&none),
        header_names(&fixture_headers("activity-notmodified.headers.txt"))
    );
    assert_eq!(
        none.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    // The same page again with its ETag: 304, the paging headers kept.
    let again = request(
        "GET",
        &format!(
            "{}/ocs/v2.php/apps/activity/api/v2/activity/files?format=json&sort=asc&since=0&limit=50",
            server.base_url()
        ),
        &[
            ("Authorization", &alice()),
            ("OCS-APIRequest", "true"),
            ("If-None-Match", etag),
        ],
        b"",
    );
    assert_eq!(again.status, 304);
    assert_eq!(again.body, "");
    assert_eq!(
        again.header("x-activity-last-given"),
        Some(last.to_string().as_str())
    );
}

/// One operation, then the page since the previous cursor compared with the capture.
fn step(
    server: &Server,
    since: &mut u64,
    fixture: &str,
    op: impl FnOnce(&Simulator),
) -> Vec<Value> {
    op(server.simulator());
    let reply = files_since(server, *since);
    let ours = data(&reply);
    assert_eq!(
        normalized(&ours),
        normalized(&fixture_data(fixture)),
        "{fixture}: {}",
        reply.body
    );
    assert_eq!(
        reply_header_names(&reply),
        header_names(&fixture_headers("activity-change.headers.txt")),
        "{fixture}"
    );
    *since = reply
        .header("x-activity-last-given")
        .unwrap()
        .parse()
        .unwrap();
    ours
}

/// Nextcloud joins the destination folder's path and the name with `/`;
/// the root's path is `/`, so what lands in the root is named `//name`.
#[test]
fn moves_and_renames_into_the_root_match_their_capture() {
    let server = fixture_server();
    let sim = server.simulator().clone();
    sim.mkdir("/root-move-src").unwrap();
    sim.put("/root-move-src/moved to root.txt", "m").unwrap();
    sim.put("/renamed at root before.txt", "r").unwrap();
    let since = sim.last_activity_id();
    sim.rename("/root-move-src/moved to root.txt", "/moved to root.txt")
        .unwrap();
    sim.rename("/renamed at root before.txt", "/renamed at root after.txt")
        .unwrap();
    sim.rename("/root-move-src", "/root-move-src renamed")
        .unwrap();
    let reply = files_since(&server, since);
    let ours = data(&reply);
    assert_eq!(
        normalized(&ours),
        normalized(&fixture_data("activity-move-and-rename-at-root.json")),
        "{}",
        reply.body
    );
    assert_eq!(
        ours[0]["objects"][sim.fileid("/moved to root.txt").unwrap().to_string()],
        "//moved to root.txt"
    );
    assert_eq!(
        ours[0]["subject_rich"][1]["newfile"]["id"],
        sim.fileid("/").unwrap().to_string()
    );
}

/// OCS XML with ids, times and the host blanked out.
fn normalize_xml(xml: &str, base: &str) -> String {
    xml.replace(base, "BASE")
        .replace("http://127.0.0.1:8080", "BASE")
        .lines()
        .map(|l| {
            let t = l.trim_start();
            for tag in ["activity_id", "id", "object_id", "datetime"] {
                if t.starts_with(&format!("<{tag}>")) {
                    return format!("{}<{tag}>X</{tag}>", &l[..l.len() - t.len()]);
                }
            }
            match l.find("/index.php/f/") {
                Some(i) => format!("{}/index.php/f/N</link>", &l[..i]),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn xml_page_matches_the_capture() {
    let server = fixture_server();
    let reply = activity(&server, "/files?sort=asc&since=0&limit=2");
    assert_eq!(reply.status, 200);
    assert_eq!(
        normalize_xml(&reply.body, &server.base_url()),
        normalize_xml(
            &fixture("activity-page1-xml-limit2.xml"),
            "http://127.0.0.1:8080"
        )
    );
}

#[test]
fn every_kind_of_change_matches_its_capture() {
    let server = fixture_server();
    let sim = server.simulator().clone();
    let mut since = sim.last_activity_id();
    let id = |p: &str| sim.fileid(p).unwrap();

    step(&server, &mut since, "activity-change.json", |s| {
        s.put("/Documents/readme.txt", "changed\n").unwrap();
    });
    let e = step(&server, &mut since, "activity-rename.json", |s| {
        s.rename("/Documents/notes.md", "/Documents/notes renamed.md")
            .unwrap();
    });
    let notes = id("/Documents/notes renamed.md");
    assert_eq!(e[0]["subject_rich"][1]["oldfile"]["id"], notes.to_string());
    assert_eq!(e[0]["subject_rich"][1]["newfile"]["id"], notes.to_string());

    let e = step(&server, &mut since, "activity-move.json", |s| {
        s.rename("/top-level.txt", "/Documents/top-level.txt")
            .unwrap();
    });
    // A move without rename names the destination folder as newfile.
    let p = &e[0]["subject_rich"][1];
    assert_eq!(p["newfile"]["id"], id("/Documents").to_string());
    assert_eq!(p["newfile"]["path"], "Documents");
    assert_eq!(
        p["oldfile"]["id"],
        id("/Documents/top-level.txt").to_string()
    );
    assert_eq!(e[0]["object_id"], id("/Documents/top-level.txt"));

    let e = step(&server, &mut since, "activity-move-and-rename.json", |s| {
        s.rename("/100% pure.txt", "/Documents/Archive/100% pure (moved).txt")
            .unwrap();
    });
    let moved = id("/Documents/Archive/100% pure (moved).txt");
    assert_eq!(e[0]["subject_rich"][1]["newfile"]["id"], moved.to_string());

    step(&server, &mut since, "activity-rename-folder.json", |s| {
        s.rename("/Projects/beta", "/Projects/beta renamed")
            .unwrap();
    });
    let e = step(&server, &mut since, "activity-move-folder.json", |s| {
        s.rename("/Reports 2024/Drafts", "/Documents/Drafts")
            .unwrap();
    });
    assert_eq!(e.len(), 1, "a folder move is one activity, children none");
    assert_eq!(
        e[0]["subject_rich"][1]["newfile"]["id"],
        id("/Documents").to_string()
    );
    step(&server, &mut since, "activity-copy.json", |s| {
        s.copy("/Photos/2024/IMG_0001.jpg", "/Photos/IMG_0001 copy.jpg")
            .unwrap();
    });
    let ab = id("/a#b.txt");
    let alpha = id("/Projects/alpha");
    step(&server, &mut since, "activity-delete.json", |s| {
        s.delete("/a#b.txt").unwrap();
    });
    step(&server, &mut since, "activity-delete-folder.json", |s| {
        s.delete("/Projects/alpha").unwrap();
    });
    step(&server, &mut since, "activity-restore.json", |s| {
        s.restore(ab).unwrap();
    });
    let e = step(&server, &mut since, "activity-restore-folder.json", |s| {
        s.restore(alpha).unwrap();
    });
    assert_eq!(e[0]["object_id"], alpha, "fileids survive the trash");
    step(
        &server,
        &mut since,
        "activity-create-after-sync.json",
        |s| {
            s.mkdir("/New stuff").unwrap();
            s.put("/New stuff/new file.txt", "hello").unwrap();
        },
    );
}

#[test]
fn five_creates_group_into_one_entry_and_a_sixth_starts_another() {
    let sim = Simulator::new(SimOptions::default());
    let ids: Vec<u64> = (1..=6)
        .map(|i| sim.put(&format!("/f{i}.txt"), "x").unwrap())
        .collect();
    let server = Server::start(sim).unwrap();
    let reply = activity(&server, "/files?format=json&sort=asc&since=0");
    let entries = data(&reply);
    assert_eq!(entries.len(), 2);
    let first = &entries[0];
    assert_eq!(
        first["subject_rich"][0],
        "You created {file5}, {file4}, {file3}, {file2} and {file1}"
    );
    let objects: BTreeSet<u64> = first["objects"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    assert_eq!(objects, ids[..5].iter().copied().collect());
    assert_eq!(first["activity_id"], 5, "the last row of the group");
    assert_eq!(first["object_id"], ids[4]);
    assert_eq!(first["subject_rich"][1]["file1"]["id"], ids[4].to_string());
    assert_eq!(first["subject_rich"][1]["file5"]["id"], ids[0].to_string());
    assert_eq!(
        first["subject"],
        "You created f1.txt, f2.txt, f3.txt, f4.txt and f5.txt"
    );
    assert_eq!(entries[1]["subject_rich"][0], "You created {file}");
    assert_eq!(entries[1]["subject"], "You created f6.txt");

    // Newest first: rows 6..2 group, and the group's id, object and file1
    // are its last processed (oldest) row.
    let desc = data(&activity(&server, "/files?format=json&sort=desc&since=0"));
    assert_eq!(desc.len(), 2);
    assert_eq!(desc[0]["activity_id"], 2);
    assert_eq!(desc[0]["object_id"], ids[1]);
    assert_eq!(
        desc[0]["subject_rich"][1]["file1"]["id"],
        ids[1].to_string()
    );
    assert_eq!(
        desc[0]["subject_rich"][1]["file5"]["id"],
        ids[5].to_string()
    );
    assert_eq!(desc[1]["activity_id"], 1);
}

#[test]
fn grouping_needs_the_same_subject_and_three_hours() {
    let sim = Simulator::new(SimOptions::default());
    sim.put("/a.txt", "x").unwrap();
    sim.put("/b.txt", "x").unwrap();
    sim.advance_clock(3 * 3600 + 1);
    sim.put("/c.txt", "x").unwrap();
    sim.put("/c.txt", "changed").unwrap();
    sim.put("/c.txt", "changed again").unwrap();
    let server = Server::start(sim).unwrap();
    let entries = data(&activity(&server, "/files?format=json&sort=asc"));
    let templates: Vec<&str> = entries
        .iter()
        .map(|e| e["subject_rich"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        [
            "You created {file2} and {file1}",
            "You created {file}",
            // The same file twice merges into one parameter.
            "You changed {file1}",
        ]
    );
    assert_eq!(entries[2]["objects"].as_object().unwrap().len(), 1);
}

#[test]
fn limit_counts_raw_rows_and_paging_covers_every_row_once() {
    let sim = Simulator::new(SimOptions::default());
    sim.mkdir("/dir").unwrap();
    let mut expected = BTreeSet::from([sim.fileid("/dir").unwrap()]);
    for i in 0..23 {
        expected.insert(sim.put(&format!("/dir/file {i:02}.txt"), "x").unwrap());
        if i % 7 == 3 {
            sim.put(&format!("/dir/file {i:02}.txt"), "changed")
                .unwrap();
        }
    }
    let total_rows = sim.last_activity_id();
    let server = Server::start(sim).unwrap();
    let mut since = 0u64;
    let mut seen_rows = 0;
    let mut created = Vec::new();
    let mut pages = 0;
    loop {
        let reply = activity(
            &server,
            &format!("/files?format=json&sort=asc&since={since}&limit=4"),
        );
        pages += 1;
        let entries = data(&reply);
        let last: u64 = reply
            .header("x-activity-last-given")
            .unwrap()
            .parse()
            .unwrap();
        assert!(last > since);
        // Each page holds at most 4 raw rows, whatever the grouping.
        let rows = last - since;
        assert!(rows <= 4, "{rows} rows on one page");
        seen_rows += rows;
        for e in &entries {
            if e["type"] == "file_created" {
                for k in e["objects"].as_object().unwrap().keys() {
                    created.push(k.parse::<u64>().unwrap());
                }
            }
        }
        since = last;
        match reply.header("link") {
            Some(link) => {
                assert!(link.contains(&format!("since={last}&limit=4&sort=asc&format=json")));
            }
            None => break,
        }
    }
    assert_eq!(seen_rows, total_rows);
    assert_eq!(pages as u64, total_rows.div_ceil(4));
    let unique: BTreeSet<u64> = created.iter().copied().collect();
    assert_eq!(unique.len(), created.len(), "no row twice");
    assert_eq!(unique, expected);
    let after = activity(
        &server,
        &format!("/files?format=json&sort=asc&since={since}"),
    );
    assert_eq!(after.status, 304);
}

#[test]
fn limit_is_capped_at_200_rows() {
    let sim = Simulator::new(SimOptions::default());
    for i in 0..250 {
        sim.put(&format!("/f{i:03}.txt"), "x").unwrap();
    }
    let server = Server::start(sim).unwrap();
    let reply = activity(&server, "/files?format=json&sort=asc&limit=1000");
    assert_eq!(data(&reply).len(), 40, "200 rows in groups of five");
    assert_eq!(reply.header("x-activity-last-given"), Some("200"));
    assert!(
        reply
            .header("link")
            .unwrap()
            .contains("since=200&limit=1000")
    );
}

#[test]
fn expiry_restarts_from_the_oldest_kept_row() {
    let sim = Simulator::new(SimOptions::default());
    for i in 0..10 {
        sim.put(&format!("/f{i}.txt"), "x").unwrap();
    }
    let server = Server::start(sim).unwrap();
    let reply = activity(&server, "/files?format=json&sort=asc&since=3");
    assert!(reply.header("x-activity-first-known").is_none());
    assert_eq!(
        data(&reply)[0]["subject_rich"][1]["file5"]["name"],
        "f3.txt"
    );

    assert_eq!(server.simulator().expire_activities_before(6), 5);
    let reply = activity(&server, "/files?format=json&sort=asc&since=3");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-activity-first-known"), Some("6"));
    let entries = data(&reply);
    assert_eq!(entries[0]["subject_rich"][1]["file5"]["name"], "f5.txt");
    assert_eq!(reply.header("x-activity-last-given"), Some("10"));
    // By age: everything is older than "now + 1 hour" ago… is not; nothing goes.
    assert_eq!(server.simulator().expire_activities_older_than(3600), 0);
    server.simulator().advance_clock(7200);
    assert_eq!(server.simulator().expire_activities_older_than(3600), 5);
    let reply = activity(&server, "/files?format=json&sort=asc&since=3");
    assert_eq!(reply.status, 304, "nothing left");
}

#[test]
fn desc_and_first_known_follow_the_capture() {
    let server = fixture_server();
    let sim = server.simulator();
    let newest = sim.last_activity_id();
    let reply = activity(&server, "/files?format=json&sort=desc&since=0&limit=5");
    assert_eq!(
        reply_header_names(&reply),
        header_names(&fixture_headers("activity-files-desc-limit5.headers.txt"))
    );
    assert_eq!(
        reply.header("x-activity-first-known"),
        Some(newest.to_string().as_str()),
        "desc: the newest row"
    );
    assert_eq!(
        reply.header("x-activity-last-given"),
        Some((newest - 4).to_string().as_str())
    );
    assert!(
        reply
            .header("link")
            .unwrap()
            .contains("&sort=desc&format=json")
    );
    let entries = data(&reply);
    // The five newest rows are creates: one group, named by its oldest row.
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["activity_id"], newest - 4);
}

#[test]
fn errors_match_the_captures() {
    let sim = Simulator::new(SimOptions::default());
    sim.add_user(nextcloud_sim::UserSpec::bob()).unwrap();
    sim.put("/mine.txt", "x").unwrap();
    sim.as_user("bob").put("/his.txt", "x").unwrap();
    let server = Server::start(sim).unwrap();

    let foreign = activity(&server, "/files?format=json&sort=asc&since=2&limit=5");
    assert_eq!(foreign.status, 403);
    assert_eq!(
        parse_json(&foreign.body),
        fixture_json("activity-since-foreign-id.json")
    );
    let unknown = activity(&server, "/nosuchfilter?format=json");
    assert_eq!(unknown.status, 404);
    assert_eq!(
        parse_json(&unknown.body),
        fixture_json("activity-unknown-filter.json")
    );
    let slash = activity(&server, "/?format=json&sort=desc&since=0&limit=5");
    assert_eq!(slash.status, 404);
    assert_eq!(
        parse_json(&slash.body),
        fixture_json("activity-trailing-slash-404.json")
    );
    let no_csrf = request(
        "GET",
        &format!(
            "{}/ocs/v2.php/apps/activity/api/v2/activity/files?format=json",
            server.base_url()
        ),
        &[("Authorization", &alice())],
        b"",
    );
    assert_eq!(no_csrf.status, 412);
    assert_eq!(no_csrf.body, r#"{"message":"CSRF check failed"}"#);
    let anonymous = request(
        "GET",
        &format!(
            "{}/ocs/v2.php/apps/activity/api/v2/activity/files?format=json",
            server.base_url()
        ),
        &[("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(anonymous.status, 401);
    // An unknown since is no error: the whole stream, with First-Known.
    let unknown_since = activity(&server, "/files?format=json&sort=asc&since=999");
    assert_eq!(unknown_since.header("x-activity-first-known"), Some("1"));
    assert_eq!(data(&unknown_since).len(), 1);
}

#[test]
fn a_disabled_app_is_absent() {
    let sim = Simulator::new(SimOptions::default());
    sim.put("/before.txt", "x").unwrap();
    sim.set_activity_enabled(false);
    sim.put("/while disabled.txt", "x").unwrap();
    let server = Server::start(sim).unwrap();
    let reply = activity(&server, "/files?format=json");
    assert_eq!(reply.status, 404);
    assert_eq!(parse_json(&reply.body)["ocs"]["meta"]["statuscode"], 998);
    assert_eq!(activity(&server, "?format=json").status, 404);
    let caps = ocs_get(&server, "cloud/capabilities?format=json", &alice());
    let v = parse_json(&caps.body);
    assert!(v["ocs"]["data"]["capabilities"].get("activity").is_none());
    assert!(v["ocs"]["data"]["capabilities"]["files"].is_object());

    server.simulator().set_activity_enabled(true);
    let caps = ocs_get(&server, "cloud/capabilities?format=json", &alice());
    assert!(parse_json(&caps.body)["ocs"]["data"]["capabilities"]["activity"].is_object());
    let entries = data(&activity(&server, "/files?format=json"));
    assert_eq!(entries.len(), 1, "nothing was recorded while disabled");
    assert_eq!(entries[0]["object_name"], "/before.txt");
}

#[test]
fn changes_without_activity_leave_no_rows() {
    let sim = Simulator::new(SimOptions::default());
    sim.put("/seen.txt", "x").unwrap();
    let unseen = sim.without_activity(|| sim.put("/external.txt", "x").unwrap());
    assert!(sim.fileid("/external.txt") == Some(unseen));
    sim.set_record_activity(false);
    sim.put("/scanned.txt", "x").unwrap();
    sim.set_record_activity(true);
    sim.put("/seen too.txt", "x").unwrap();
    assert_eq!(sim.last_activity_id(), 2);
    let server = Server::start(sim).unwrap();
    let entries = data(&activity(&server, "/files?format=json&sort=asc"));
    let names: Vec<&str> = entries[0]["objects"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, ["/seen.txt", "/seen too.txt"]);
}

#[test]
fn folder_delete_and_restore_are_one_row_each() {
    let sim = Simulator::new(SimOptions::default());
    sim.mkdir_all("/a/b/c").unwrap();
    sim.put("/a/b/c/f.txt", "x").unwrap();
    let a = sim.fileid("/a").unwrap();
    let before = sim.last_activity_id();
    sim.rename("/a", "/z").unwrap();
    sim.delete("/z").unwrap();
    sim.restore(a).unwrap();
    assert_eq!(sim.last_activity_id(), before + 3);
    let server = Server::start(sim).unwrap();
    let entries = data(&activity(
        &server,
        &format!("/files?format=json&sort=asc&since={before}"),
    ));
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            // A rename names the parent's path, `/` and the name: at the root, `//z`.
            ("file_changed", "//z"),
            ("file_deleted", "/z"),
            ("file_restored", "/z")
        ]
    );
}

#[test]
fn xml_format_and_filters_list() {
    let sim = Simulator::new(SimOptions::default());
    sim.put("/a.txt", "x").unwrap();
    sim.put("/b.txt", "x").unwrap();
    let server = Server::start(sim).unwrap();
    let reply = activity(&server, "/files?sort=asc&since=0&limit=1");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert!(
        reply
            .body
            .starts_with("<?xml version=\"1.0\"?>\n<ocs>\n <meta>")
    );
    assert!(
        reply
            .body
            .contains("   <subject_rich>\n    <element>You created {file}</element>")
    );
    assert!(
        reply
            .header("link")
            .unwrap()
            .ends_with("activity/files?since=1&limit=1&sort=asc>; rel=\"next\""),
        "no format parameter, none in the link"
    );
    let filters = data(&activity(&server, "/filters?format=json"));
    let ids: Vec<&str> = filters.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"files") && ids.contains(&"files_sharing") && ids.contains(&"all"));
}
