//! A second user, shares and what they change in PROPFIND, SEARCH, the
//! Activity stream and the OCS Share API, compared with the captures.

mod common;

use std::collections::BTreeMap;

use common::*;
use nextcloud_sim::{
    PERMISSION_ALL, PERMISSION_READ, Server, ShareWith, SimError, SimOptions, Simulator, UserSpec,
};
use serde_json::Value;

/// Alice's part of the captured tree, bob as in the captures.
fn alice_and_bob() -> Server {
    let sim = Simulator::new(SimOptions::default());
    sim.add_user(UserSpec::bob()).unwrap();
    sim.mkdir("/Documents").unwrap();
    sim.mkdir("/Reports 2024").unwrap();
    sim.put(
        "/Reports 2024/Q2 résumé.pdf",
        "%PDF-1.4\n% fake pdf Q2\n%%EOF\n",
    )
    .unwrap();
    sim.mkdir("/Shared with Bob").unwrap();
    sim.put("/Shared with Bob/plan.txt", "the plan\n").unwrap();
    sim.put("/Shared with Bob/budget.ods", "fake ods\n")
        .unwrap();
    Server::start(sim).unwrap()
}

fn share_both(sim: &Simulator) -> (u64, u64) {
    let folder = sim
        .share(
            "alice",
            "/Shared with Bob",
            ShareWith::User("bob".into()),
            PERMISSION_ALL,
        )
        .unwrap();
    let file = sim
        .share(
            "alice",
            "/Reports 2024/Q2 résumé.pdf",
            ShareWith::User("bob".into()),
            PERMISSION_READ,
        )
        .unwrap();
    (folder, file)
}

fn propfind_as(server: &Server, user: &str, auth: &str, depth: &str) -> Reply {
    request(
        "PROPFIND",
        &format!("{}/remote.php/dav/files/{user}/", server.base_url()),
        &[
            ("Authorization", auth),
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Depth", depth),
        ],
        request_body().as_bytes(),
    )
}

fn entries_since(server: &Server, filter: &str, since: u64, auth: &str) -> Reply {
    activity_as(
        server,
        &format!("{filter}?format=json&sort=asc&since={since}&limit=50"),
        auth,
    )
}

fn same_activity(reply: &Reply, fixture_name: &str) {
    let ours: Vec<Value> = data(reply).iter().map(normalize_activity).collect();
    let theirs: Vec<Value> = fixture_json(fixture_name)["ocs"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(normalize_activity)
        .collect();
    assert_eq!(ours, theirs, "{fixture_name}: {}", reply.body);
}

#[test]
fn the_captured_sharing_session_replays() {
    let server = alice_and_bob();
    let sim = server.simulator().clone();
    let bob_sim = sim.as_user("bob");
    let before_share = sim.last_activity_id();
    let first = share_both(&sim);
    // The capture shared twice: the same shares, the activities published again.
    let between = *sim.activity_ids("alice").last().unwrap();
    assert_eq!(share_both(&sim), first);

    // Sharing writes files_sharing rows: in `all` and `files_sharing`, not `files`.
    let all = entries_since(&server, "", between, &alice());
    same_activity(&all, "activity-all-after-share.json");
    let files = entries_since(&server, "/files", before_share, &alice());
    assert_eq!(files.status, 304);
    let sharing = entries_since(&server, "/files_sharing", 0, &alice());
    same_activity(&sharing, "activity-files_sharing-filter.json");
    assert!(
        data(&sharing)
            .iter()
            .all(|e| e["app"] == "files_sharing" && e["type"] == "shared")
    );
    // Bob was told too, twice.
    let told = data(&entries_since(&server, "", 0, &bob()));
    let subjects: Vec<&str> = told
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    let once = [
        "@Alice Ångström shared Shared with Bob with you",
        "@Alice Ångström shared Q2 résumé.pdf with you",
    ];
    assert_eq!(subjects, [once, once].concat());

    // Bob works inside the share; alice sees it with `user: bob`.
    bob_sim
        .put("/Shared with Bob/from bob.txt", "hello alice\n")
        .unwrap();
    // The newest row is bob's own (owner first, then the others): alice
    // pages with her cursor; bob's would be refused.
    let newest = sim.last_activity_id();
    assert_eq!(
        entries_since(&server, "/files", newest, &alice()).status,
        403
    );
    let since = *sim.activity_ids("alice").last().unwrap();
    assert_eq!(since, newest - 1);
    bob_sim
        .put("/Shared with Bob/plan.txt", "the plan, v2\n")
        .unwrap();
    bob_sim
        .put("/Shared with Bob/from bob.txt", "hello again\n")
        .unwrap();
    let changed = entries_since(&server, "/files", since, &alice());
    same_activity(&changed, "activity-changed-by-other-user.json");
    assert_eq!(data(&changed)[0]["user"], "bob");
    // …and bob sees his own actions as "You".
    let his = data(&entries_since(&server, "/files", newest, &bob()));
    assert_eq!(his[0]["subject_rich"][0], "You changed {file2} and {file1}");
    assert_eq!(his[0]["object_name"], "/Shared with Bob/from bob.txt");

    // What bob's Depth: infinity PROPFIND shows at this point.
    let reply = propfind_as(&server, "bob", &bob(), "infinity");
    assert_eq!(reply.status, 207);
    let ours = parse_multistatus(&reply.body);
    let theirs = parse_multistatus(&fixture("propfind-bob-depth-infinity.xml"));
    assert_eq!(
        ours.iter().map(|r| r.href.as_str()).collect::<Vec<_>>(),
        theirs.iter().map(|r| r.href.as_str()).collect::<Vec<_>>()
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.shape(), t.shape(), "{}", o.href);
        for p in ["oc:permissions", "oc:owner-id", "oc:owner-display-name"] {
            assert_eq!(o.text(p), t.text(p), "{} {p}", o.href);
        }
    }
    // Same fileids as in alice's tree.
    for (bob_path, alice_path) in [
        ("/Shared with Bob", "/Shared with Bob"),
        ("/Shared with Bob/plan.txt", "/Shared with Bob/plan.txt"),
        ("/Q2 résumé.pdf", "/Reports 2024/Q2 résumé.pdf"),
    ] {
        assert_eq!(
            bob_sim.fileid(bob_path),
            sim.fileid(alice_path),
            "{bob_path}"
        );
    }

    // Bob creates and deletes; alice's stream again like the capture.
    let since = *sim.activity_ids("alice").last().unwrap();
    bob_sim
        .put("/Shared with Bob/bob second file.txt", "second\n")
        .unwrap();
    bob_sim.delete("/Shared with Bob/budget.ods").unwrap();
    let created_deleted = entries_since(&server, "/files", since, &alice());
    same_activity(
        &created_deleted,
        "activity-created-deleted-by-other-user.json",
    );
}

#[test]
fn owner_side_lists_the_share_types() {
    let server = alice_and_bob();
    share_both(server.simulator());
    let reply = propfind(&server, "", Some("1"));
    let ours = parse_multistatus(&reply.body);
    let theirs = parse_multistatus(&fixture("propfind-depth1-root-after-share.xml"));
    let find = |rs: &[DavResponse], href: &str| {
        rs.iter()
            .find(|r| r.href == href)
            .cloned()
            .unwrap_or_else(|| panic!("{href}"))
    };
    let shared = "/remote.php/dav/files/alice/Shared%20with%20Bob/";
    assert_eq!(find(&ours, shared).shape(), find(&theirs, shared).shape());
    assert_eq!(find(&ours, shared).text("oc:permissions"), "RGDNVCK");
    assert!(
        reply
            .body
            .contains("<oc:share-types><oc:share-type>0</oc:share-type></oc:share-types>")
    );
    let docs = "/remote.php/dav/files/alice/Documents/";
    assert_eq!(find(&ours, docs).shape(), find(&theirs, docs).shape());
    assert!(
        find(&ours, docs)
            .prop("oc:share-types")
            .unwrap()
            .children
            .is_empty()
    );
}

#[test]
fn a_share_from_bob_appears_in_alices_tree() {
    let sim = Simulator::new(SimOptions::default());
    sim.add_user(UserSpec::bob()).unwrap();
    sim.put("/mine.txt", "alice's\n").unwrap();
    let bob_sim = sim.as_user("bob");
    bob_sim.mkdir("/Shared with Alice").unwrap();
    bob_sim.mkdir("/Shared with Alice/sub").unwrap();
    bob_sim
        .put("/Shared with Alice/sub/notes.txt", "from bob\n")
        .unwrap();
    bob_sim.put("/private.txt", "bob only\n").unwrap();
    bob_sim.put("/readonly.txt", "look, don't touch\n").unwrap();
    assert_eq!(sim.fileid("/Shared with Alice"), None);
    let share = sim
        .share(
            "bob",
            "/Shared with Alice",
            ShareWith::User("alice".into()),
            PERMISSION_ALL,
        )
        .unwrap();
    sim.share(
        "bob",
        "/readonly.txt",
        ShareWith::User("alice".into()),
        PERMISSION_READ,
    )
    .unwrap();
    let before = sim.entry("/").unwrap();
    let listing: BTreeMap<String, nextcloud_sim::SimEntry> = sim
        .listing()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect();
    let dir = &listing["/Shared with Alice"];
    assert_eq!(dir.permissions, "SRGDNVCK");
    assert_eq!(Some(dir.fileid), bob_sim.fileid("/Shared with Alice"));
    assert_eq!(listing["/Shared with Alice/sub"].permissions, "SRGDNVCK");
    assert_eq!(
        listing["/Shared with Alice/sub/notes.txt"].permissions,
        "SRGDNVW"
    );
    assert_eq!(
        Some(listing["/Shared with Alice/sub/notes.txt"].fileid),
        bob_sim.fileid("/Shared with Alice/sub/notes.txt")
    );
    assert_eq!(listing["/readonly.txt"].permissions, "SGDNV");
    assert_eq!(listing["/mine.txt"].permissions, "RGDNVW");
    assert!(!listing.contains_key("/private.txt"));
    assert_eq!(
        before.size,
        listing["/mine.txt"].size + dir.size + listing["/readonly.txt"].size,
        "the root counts its mounts"
    );

    let server = Server::start(sim.clone()).unwrap();
    let reply = propfind(&server, "Shared%20with%20Alice/sub/", Some("1"));
    let rs = parse_multistatus(&reply.body);
    assert_eq!(rs.len(), 2);
    assert_eq!(
        rs[1].href,
        "/remote.php/dav/files/alice/Shared%20with%20Alice/sub/notes.txt"
    );
    assert_eq!(rs[1].text("oc:owner-id"), "bob");
    assert_eq!(rs[1].text("oc:owner-display-name"), "Bob Builder");
    let got = get(&server, "Shared%20with%20Alice/sub/notes.txt", &[]);
    assert_eq!((got.status, got.body.as_str()), (200, "from bob\n"));

    // Bob edits: new etags in both trees, and alice's activity names bob.
    let since = sim.last_activity_id();
    let bob_dir_before = bob_sim.entry("/Shared with Alice").unwrap();
    bob_sim
        .put("/Shared with Alice/sub/notes.txt", "edited by bob\n")
        .unwrap();
    let after = sim.entry("/").unwrap();
    assert_ne!(
        after.etag, before.etag,
        "alice's root etag follows the mount"
    );
    assert_ne!(
        sim.entry("/Shared with Alice/sub").unwrap().etag,
        listing["/Shared with Alice/sub"].etag
    );
    assert_ne!(
        bob_sim.entry("/Shared with Alice").unwrap().etag,
        bob_dir_before.etag
    );
    assert_eq!(
        sim.entry("/Shared with Alice").unwrap().etag,
        bob_sim.entry("/Shared with Alice").unwrap().etag
    );
    let changed = data(&entries_since(&server, "/files", since, &alice()));
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["user"], "bob");
    assert_eq!(changed[0]["subject_rich"][0], "{user} changed {file}");
    assert_eq!(
        changed[0]["subject"],
        "@Bob Builder changed Shared with Alice/sub/notes.txt"
    );
    assert_eq!(
        changed[0]["object_name"],
        "/Shared with Alice/sub/notes.txt"
    );
    assert_eq!(changed[0]["subject_rich"][1]["user"]["name"], "Bob Builder");

    // Bob's private files never show up in alice's stream or search.
    let alice_last = *sim.activity_ids("alice").last().unwrap();
    bob_sim.put("/private.txt", "still private\n").unwrap();
    assert_eq!(
        entries_since(&server, "/files", alice_last, &alice()).status,
        304
    );
    let bobs_row = sim.last_activity_id();
    assert_eq!(sim.activity_ids("bob").last(), Some(&bobs_row));
    assert_eq!(
        entries_since(&server, "/files", bobs_row, &alice()).status,
        403
    );

    // A read-only share refuses writes.
    assert!(matches!(
        sim.put("/readonly.txt", "no"),
        Err(SimError::PermissionDenied(_))
    ));
    let new = sim.put("/Shared with Alice/new.txt", "fine").unwrap();
    assert_eq!(
        sim.as_user("bob").fileid("/Shared with Alice/new.txt"),
        Some(new)
    );

    // Unsharing takes the folder out of alice's tree.
    sim.unshare(share).unwrap();
    assert_eq!(sim.fileid("/Shared with Alice"), None);
    assert!(
        !sim.listing()
            .iter()
            .any(|e| e.path.starts_with("/Shared with Alice"))
    );
    let gone = propfind(&server, "Shared%20with%20Alice/", Some("0"));
    assert_eq!(gone.status, 404);
    let root = parse_multistatus(&propfind(&server, "", Some("1")).body);
    assert!(
        !root
            .iter()
            .any(|r| r.href.contains("Shared%20with%20Alice"))
    );
    assert!(
        bob_sim.fileid("/Shared with Alice/sub/notes.txt").is_some(),
        "bob keeps it"
    );
    let removed = data(&entries_since(&server, "/files_sharing", 0, &alice()));
    assert_eq!(
        removed.last().unwrap()["subject_rich"][0],
        "{actor} removed you from {file}"
    );
    assert!(matches!(sim.unshare(share), Err(SimError::UnknownShare(_))));
}

/// Share API JSON with the server-specific numbers blanked out.
fn normalize_share(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for k in [
            "id",
            "stime",
            "item_mtime",
            "item_source",
            "file_source",
            "file_parent",
            "item_size",
        ] {
            if m.contains_key(k) {
                m.insert(k.into(), Value::from(0));
            }
        }
    }
    v
}

fn same_shares(reply: &Reply, fixture_name: &str) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ours = parse_json(&reply.body);
    let theirs = fixture_json(fixture_name);
    let list = |v: &Value| -> Vec<Value> {
        match &v["ocs"]["data"] {
            Value::Array(a) => a.iter().map(normalize_share).collect(),
            other => vec![normalize_share(other)],
        }
    };
    assert_eq!(ours["ocs"]["meta"], theirs["ocs"]["meta"]);
    assert_eq!(list(&ours), list(&theirs), "{fixture_name}");
    // The keys come in the captured order.
    let raw = fixture(fixture_name);
    let first = match &theirs["ocs"]["data"] {
        Value::Array(a) => a.first().cloned(),
        other => Some(other.clone()),
    };
    if let Some(Value::Object(m)) = first {
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(key_order(&reply.body, &keys), key_order(&raw, &keys));
    }
}

#[test]
fn share_api_answers_like_the_captures() {
    let server = alice_and_bob();
    let sim = server.simulator();
    // Created through the API, like the capture.
    let created = request(
        "POST",
        &format!(
            "{}/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json",
            server.base_url()
        ),
        &[
            ("Authorization", &alice()),
            ("OCS-APIRequest", "true"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"path=%2FShared+with+Bob&shareType=0&shareWith=bob&permissions=31",
    );
    same_shares(&created, "share-create.json");
    sim.share(
        "alice",
        "/Reports 2024/Q2 résumé.pdf",
        ShareWith::User("bob".into()),
        PERMISSION_READ,
    )
    .unwrap();
    let shares = "apps/files_sharing/api/v1/shares";
    same_shares(
        &ocs_get(&server, &format!("{shares}?format=json"), &alice()),
        "shares.json",
    );
    same_shares(
        &ocs_get(
            &server,
            &format!("{shares}?format=json&shared_with_me=true"),
            &bob(),
        ),
        "shares-shared-with-me.json",
    );
    same_shares(
        &ocs_get(
            &server,
            &format!("{shares}?format=json&path=/Shared%20with%20Bob&reshares=true"),
            &alice(),
        ),
        "shares-for-path.json",
    );
    let empty = ocs_get(
        &server,
        &format!("{shares}?format=json&shared_with_me=true"),
        &alice(),
    );
    assert_eq!(
        parse_json(&empty.body),
        fixture_json("shares-shared-with-me-alice-empty.json")
    );
    let missing = ocs_get(&server, &format!("{shares}/999999?format=json"), &alice());
    assert_eq!(missing.status, 404);
    assert_eq!(
        parse_json(&missing.body),
        fixture_json("share-notfound-404.json")
    );
    let one = ocs_get(&server, &format!("{shares}/1?format=json"), &bob());
    assert_eq!(data(&one)[0]["path"], "/Shared with Bob");

    // The values that matter, not just the shape.
    let v = data(&ocs_get(
        &server,
        &format!("{shares}?format=json"),
        &alice(),
    ));
    assert_eq!(v[0]["file_source"], sim.fileid("/Shared with Bob").unwrap());
    assert_eq!(v[1]["item_permissions"], 27);
    let v = data(&ocs_get(
        &server,
        &format!("{shares}?format=json&shared_with_me=true"),
        &bob(),
    ));
    assert_eq!(v[1]["item_permissions"], 9);
    assert_eq!(v[1]["storage_id"], "shared::/Q2 résumé.pdf");

    // The same POST again: the same share, the activities once more.
    let rows = sim.last_activity_id();
    let again = request(
        "POST",
        &format!(
            "{}/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json",
            server.base_url()
        ),
        &[
            ("Authorization", &alice()),
            ("OCS-APIRequest", "true"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"path=%2FShared+with+Bob&shareType=0&shareWith=bob&permissions=31",
    );
    assert_eq!(parse_json(&again.body)["ocs"]["data"]["id"], "1");
    assert_eq!(sim.last_activity_id(), rows + 2);

    let no_csrf = request(
        "GET",
        &format!("{}/ocs/v2.php/{shares}?format=json", server.base_url()),
        &[("Authorization", &alice())],
        b"",
    );
    assert_eq!(no_csrf.status, 412);

    // DELETE unshares.
    let deleted = request(
        "DELETE",
        &format!("{}/ocs/v2.php/{shares}/1?format=json", server.base_url()),
        &[("Authorization", &alice()), ("OCS-APIRequest", "true")],
        b"",
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(sim.as_user("bob").fileid("/Shared with Bob"), None);
}

#[test]
fn other_share_kinds() {
    let server = alice_and_bob();
    let sim = server.simulator();
    sim.add_user(UserSpec::new("carol")).unwrap();
    sim.add_group_member("team", "bob").unwrap();
    sim.add_group_member("team", "alice").unwrap();
    let group = sim
        .share("alice", "/Documents", ShareWith::Group("team".into()), 31)
        .unwrap();
    let link = sim
        .share(
            "alice",
            "/Shared with Bob/plan.txt",
            ShareWith::Link {
                expires: Some(1_800_000_000),
            },
            1,
        )
        .unwrap();
    sim.share(
        "alice",
        "/Shared with Bob/budget.ods",
        ShareWith::Email("someone@example.org".into()),
        1,
    )
    .unwrap();
    sim.share(
        "alice",
        "/Reports 2024",
        ShareWith::Federated("dave@other.example".into()),
        1,
    )
    .unwrap();
    assert_eq!(
        sim.share("alice", "/Documents", ShareWith::User("nobody".into()), 31),
        Err(SimError::UnknownUser("nobody".into()))
    );
    // Group members get the mount, the sharer does not; late members too.
    assert!(sim.as_user("bob").fileid("/Documents").is_some());
    assert!(sim.as_user("carol").fileid("/Documents").is_none());
    sim.add_group_member("team", "carol").unwrap();
    assert_eq!(
        sim.as_user("carol").fileid("/Documents"),
        sim.fileid("/Documents")
    );

    let v = data(&ocs_get(
        &server,
        "apps/files_sharing/api/v1/shares?format=json",
        &alice(),
    ));
    let by_type: BTreeMap<i64, &Value> = v
        .iter()
        .map(|s| (s["share_type"].as_i64().unwrap(), s))
        .collect();
    assert_eq!(by_type.len(), 4);
    assert_eq!(by_type[&1]["share_with"], "team");
    let l = by_type[&3];
    assert_eq!(l["id"], link.to_string());
    assert_eq!(l["expiration"], "2027-01-15 00:00:00");
    assert_eq!(l["share_with_displayname"], "(Shared link)");
    let token = l["token"].as_str().unwrap();
    assert_eq!(token.len(), 15);
    assert_eq!(
        l["url"],
        format!("{}/index.php/s/{token}", server.base_url())
    );
    assert_eq!(by_type[&4]["share_with"], "someone@example.org");
    assert!(by_type[&4]["token"].is_string());
    assert_eq!(by_type[&6]["share_with"], "dave@other.example");

    let subjects: Vec<(String, String)> = data(&entries_since(&server, "", 0, &alice()))
        .iter()
        .filter(|e| e["type"] == "shared")
        .map(|e| {
            (
                e["app"].as_str().unwrap().to_string(),
                e["subject_rich"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subjects,
        [
            (
                "files_sharing".into(),
                "You shared {file} with group {group}".into()
            ),
            (
                "files_sharing".into(),
                "You shared {file} as public link".into()
            ),
            (
                "sharebymail".into(),
                "You shared {file} with {email} by mail".into()
            ),
        ]
    );
    let reply = propfind(&server, "", Some("1"));
    assert!(
        reply
            .body
            .contains("<d:href>/remote.php/dav/files/alice/Reports%202024/</d:href>")
    );
    assert!(reply.body.contains("<oc:share-type>6</oc:share-type>"));
    sim.unshare(group).unwrap();
    assert!(sim.as_user("bob").fileid("/Documents").is_none());
}

#[test]
fn search_as_the_recipient_includes_shares() {
    let server = alice_and_bob();
    let sim = server.simulator();
    share_both(sim);
    sim.as_user("bob")
        .put("/Shared with Bob/from bob.txt", "hello\n")
        .unwrap();
    // The captured order: by modification time, the folder (now) last.
    for (path, mtime) in [
        ("/Reports 2024/Q2 résumé.pdf", 1_700_000_000),
        ("/Shared with Bob/budget.ods", 1_700_000_100),
        ("/Shared with Bob/from bob.txt", 1_700_000_200),
        ("/Shared with Bob/plan.txt", 1_700_000_300),
    ] {
        sim.set_mtime(path, mtime).unwrap();
    }
    let body = fixture_request_body("search-modified-since.request.txt")
        .replace("/files/alice", "/files/bob")
        .replace("2023-01-01T00:00:00+00:00", "2000-01-01T00:00:00+00:00");
    let reply = request(
        "SEARCH",
        &format!("{}/remote.php/dav/", server.base_url()),
        &[("Authorization", &bob())],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 207);
    let ours = parse_multistatus(&reply.body);
    let theirs = parse_multistatus(&fixture("search-bob-includes-shares.xml"));
    let summary = |rs: &[DavResponse]| -> Vec<(String, String, String)> {
        rs.iter()
            .map(|r| {
                (
                    r.href.clone(),
                    r.text("oc:permissions").to_string(),
                    r.text("oc:owner-id").to_string(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&ours), summary(&theirs));
    assert_eq!(
        ours[0].text("oc:fileid"),
        sim.fileid("/Reports 2024/Q2 résumé.pdf")
            .unwrap()
            .to_string()
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.shape(), t.shape(), "{}", o.href);
    }
}

#[test]
fn each_user_has_their_own_identity() {
    let server = alice_and_bob();
    let reply = ocs_get(&server, "cloud/user?format=json", &bob());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-user-id"), Some("bob"));
    let mut ours = parse_json(&reply.body);
    let mut theirs = fixture_json("cloud-user-bob.json");
    for v in [&mut ours, &mut theirs] {
        let d = v["ocs"]["data"].as_object_mut().unwrap();
        for k in ["firstLoginTimestamp", "lastLoginTimestamp", "lastLogin"] {
            d.insert(k.into(), Value::from(0));
        }
    }
    assert_eq!(ours, theirs);
    // Bob's home is his own; alice's is foreign to him.
    let own = propfind_as(&server, "bob", &bob(), "1");
    assert_eq!(parse_multistatus(&own.body).len(), 1, "an empty home");
    let foreign = propfind_as(&server, "alice", &bob(), "1");
    assert_eq!(foreign.status, 207);
    assert_eq!(parse_multistatus(&foreign.body)[0].shape().len(), 15);
    let wrong = propfind_as(&server, "bob", &basic("bob", "demo-app-password"), "0");
    assert_eq!(wrong.status, 401);
    assert_eq!(
        server.simulator().add_user(UserSpec::bob()),
        Err(SimError::Exists("user bob".into()))
    );
}

#[test]
fn moves_across_the_share_boundary_are_creates_and_deletes_for_the_recipient() {
    let server = alice_and_bob();
    let sim = server.simulator();
    share_both(sim);
    sim.put("/loose.txt", "x").unwrap();
    let bob_since = *sim.activity_ids("bob").last().unwrap();
    let alice_since = *sim.activity_ids("alice").last().unwrap();
    sim.rename("/loose.txt", "/Shared with Bob/loose.txt")
        .unwrap();
    sim.rename("/Shared with Bob/loose.txt", "/Shared with Bob/renamed.txt")
        .unwrap();
    sim.rename("/Shared with Bob/renamed.txt", "/Documents/renamed.txt")
        .unwrap();
    let theirs = data(&entries_since(&server, "/files", bob_since, &bob()));
    let summary: Vec<(String, String, String)> = theirs
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["subject_rich"][0].as_str().unwrap().to_string(),
                e["object_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "file_changed".to_string(),
                "{user} created {file}".to_string(),
                "/Shared with Bob/loose.txt".to_string()
            ),
            (
                "file_changed".to_string(),
                "{user} renamed {oldfile} to {newfile}".to_string(),
                "/Shared with Bob/renamed.txt".to_string()
            ),
            (
                "file_deleted".to_string(),
                "{user} deleted {file}".to_string(),
                "/Shared with Bob/renamed.txt".to_string()
            ),
        ]
    );
    let mine = data(&entries_since(&server, "/files", alice_since, &alice()));
    let templates: Vec<&str> = mine
        .iter()
        .map(|e| e["subject_rich"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        [
            "You moved {oldfile} to {newfile}",
            "You renamed {oldfile} to {newfile}",
            "You moved {oldfile} to {newfile}"
        ]
    );
    // Bob cannot move things out of the share into his own storage.
    sim.put("/Shared with Bob/stays.txt", "x").unwrap();
    assert!(matches!(
        sim.as_user("bob")
            .rename("/Shared with Bob/stays.txt", "/stays.txt"),
        Err(SimError::InvalidMove(_))
    ));
}

/// Nextcloud lists a folder's own children first (the file cache's
/// `ORDER BY name`) and appends the mount points of received shares after
/// them (`View::getDirectoryContent`), each part in byte order; recorded
/// from Nextcloud 32.0.1 by the real-server conformance test.
#[test]
fn the_recipients_own_items_come_before_the_mount_points() {
    let server = alice_and_bob();
    let sim = server.simulator();
    share_both(sim);
    let bob_files = sim.as_user("bob");
    bob_files.put("/zzz last by name.txt", "bob's").unwrap();
    bob_files.mkdir("/Aaa first by name").unwrap();
    bob_files.put("/Aaa first by name/in.txt", "in").unwrap();
    let hrefs = |depth: &str| -> Vec<String> {
        parse_multistatus(&propfind_as(&server, "bob", &bob(), depth).body)
            .into_iter()
            .map(|r| r.href)
            .collect()
    };
    let base = "/remote.php/dav/files/bob/";
    let expected =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| format!("{base}{n}")).collect() };
    assert_eq!(
        hrefs("1"),
        expected(&[
            "",
            "Aaa%20first%20by%20name/",
            "zzz%20last%20by%20name.txt",
            "Q2%20r%c3%a9sum%c3%a9.pdf",
            "Shared%20with%20Bob/",
        ])
    );
    assert_eq!(
        hrefs("infinity"),
        expected(&[
            "",
            "Aaa%20first%20by%20name/",
            "Aaa%20first%20by%20name/in.txt",
            "zzz%20last%20by%20name.txt",
            "Q2%20r%c3%a9sum%c3%a9.pdf",
            "Shared%20with%20Bob/",
            "Shared%20with%20Bob/budget.ods",
            "Shared%20with%20Bob/plan.txt",
        ])
    );
    let listed: Vec<String> = bob_files.listing().into_iter().map(|e| e.path).collect();
    assert_eq!(
        listed,
        [
            "/",
            "/Aaa first by name",
            "/Aaa first by name/in.txt",
            "/zzz last by name.txt",
            "/Q2 résumé.pdf",
            "/Shared with Bob",
            "/Shared with Bob/budget.ods",
            "/Shared with Bob/plan.txt",
        ]
    );
}

/// A mount point named by the request (`View::getFileInfo`) gets delete
/// added to the share's bits; listed in its parent
/// (`View::getDirectoryContent`) it gets update and delete: a read-only
/// share is `SGD` in the first case and `SGDNV` in the second, recorded
/// from Nextcloud 32.0.1 by the real-server conformance test.
#[test]
fn a_mount_point_has_other_letters_when_named_than_when_listed() {
    let server = alice_and_bob();
    let sim = server.simulator();
    share_both(sim);
    sim.share(
        "alice",
        "/Documents",
        ShareWith::User("bob".into()),
        PERMISSION_READ,
    )
    .unwrap();
    let letters = |path: &str, depth: &str| -> Vec<(String, String)> {
        let reply = request(
            "PROPFIND",
            &format!("{}/remote.php/dav/files/bob/{path}", server.base_url()),
            &[
                ("Authorization", &bob()),
                ("Content-Type", "application/xml; charset=utf-8"),
                ("Depth", depth),
            ],
            request_body().as_bytes(),
        );
        assert_eq!(reply.status, 207, "{path}: {}", reply.body);
        parse_multistatus(&reply.body)
            .into_iter()
            .map(|r| {
                let letters = r.text("oc:permissions").to_string();
                (r.href, letters)
            })
            .collect()
    };
    let href = |rel: &str| format!("/remote.php/dav/files/bob/{rel}");
    assert_eq!(
        letters("", "1")[1..],
        [
            (href("Documents/"), "SGDNV".to_string()),
            (href("Q2%20r%c3%a9sum%c3%a9.pdf"), "SGDNV".to_string()),
            (href("Shared%20with%20Bob/"), "SRGDNVCK".to_string()),
        ]
    );
    assert_eq!(
        letters("Documents/", "0"),
        [(href("Documents/"), "SGD".to_string())]
    );
    assert_eq!(
        letters("Q2%20r%c3%a9sum%c3%a9.pdf", "0"),
        [(href("Q2%20r%c3%a9sum%c3%a9.pdf"), "SGD".to_string())]
    );
    assert_eq!(
        letters("Shared%20with%20Bob/", "0"),
        [(href("Shared%20with%20Bob/"), "SRGDNVCK".to_string())]
    );
}

/// A file mount point has no upload time (`0`: the share's cache entry
/// lacks the extended columns); a file below a shared folder has its own.
/// Recorded from Nextcloud 32.0.1 by the real-server conformance test.
#[test]
fn a_file_mount_point_has_no_upload_time() {
    let server = alice_and_bob();
    let sim = server.simulator();
    share_both(sim);
    let reply = propfind_as(&server, "bob", &bob(), "infinity");
    let uploads: Vec<(String, String)> = parse_multistatus(&reply.body)
        .into_iter()
        .filter(|r| !r.is_collection())
        .map(|r| {
            let t = r.text("nc:upload_time").to_string();
            (r.href, t)
        })
        .collect();
    let href = |rel: &str| format!("/remote.php/dav/files/bob/{rel}");
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    assert_eq!(uploads[0], (href("Q2%20r%c3%a9sum%c3%a9.pdf"), "0".into()));
    for (href, t) in &uploads[1..] {
        assert!(
            t.parse::<i64>().unwrap() > 1_000_000_000,
            "{href} inside the shared folder: {t}"
        );
    }
}
