//! Writes over HTTP: WebDAV PUT/MKCOL/DELETE/MOVE/COPY/PROPPATCH, the OCS
//! share and app-password endpoints, and what tests read to prove a client
//! wrote nothing (`writes`, `state_fingerprint`).

mod common;

use common::*;
use nextcloud_sim::{ChangeKind, Server, SimOptions, Simulator, UserSpec};

fn server() -> Server {
    let sim = Simulator::new(SimOptions::default());
    sim.add_user(UserSpec::bob()).unwrap();
    sim.mkdir("/Documents").unwrap();
    sim.put("/Documents/a.txt", "alpha").unwrap();
    Server::start(sim).unwrap()
}

fn dav(server: &Server, method: &str, rel: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let auth = alice();
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    request(method, &dav_url(server, rel), &all, body)
}

/// Depth 0 PROPFIND of `rel` asking for `props` (inner XML of `<d:prop>`).
fn props_of(server: &Server, rel: &str, props: &str) -> DavResponse {
    let body = format!(
        r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:x"><d:prop>{props}</d:prop></d:propfind>"#
    );
    let reply = dav(server, "PROPFIND", rel, &[("Depth", "0")], body.as_bytes());
    assert_eq!(reply.status, 207, "{}", reply.body);
    parse_multistatus(&reply.body).remove(0)
}

fn ocs(server: &Server, method: &str, rel: &str, auth: &str, body: &str) -> Reply {
    request(
        method,
        &format!("{}/ocs/v2.php/{rel}", server.base_url()),
        &[
            ("Authorization", auth),
            ("OCS-APIRequest", "true"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn put_creates_then_overwrites() {
    let server = server();
    let sim = server.simulator();
    let created = dav(&server, "PUT", "Documents/new.txt", &[], b"hello");
    assert_eq!(created.status, 201, "{}", created.body);
    let id = sim.fileid("/Documents/new.txt").unwrap();
    assert_eq!(
        created.header("oc-fileid"),
        Some(format!("{id:08}ocsim00001").as_str())
    );
    let etag = created.header("etag").unwrap().to_string();
    let seen = props_of(&server, "Documents/new.txt", "<d:getetag/><oc:size/>");
    assert_eq!(seen.text("d:getetag"), etag);
    assert_eq!(seen.text("oc:size"), "5");

    let overwritten = dav(
        &server,
        "PUT",
        "Documents/new.txt",
        &[("X-OC-MTime", "1700000000")],
        b"hello again",
    );
    assert_eq!(overwritten.status, 204);
    assert_eq!(overwritten.header("x-oc-mtime"), Some("accepted"));
    assert_ne!(overwritten.header("etag").unwrap(), etag);
    assert_eq!(sim.fileid("/Documents/new.txt"), Some(id));
    assert_eq!(sim.read("/Documents/new.txt").unwrap(), b"hello again");
    assert_eq!(
        sim.entry("/Documents/new.txt").unwrap().modified,
        1700000000
    );
    let kinds: Vec<ChangeKind> = sim.changes().iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        [ChangeKind::Created, ChangeKind::Changed]
    );
}

#[test]
fn put_with_checksum_stores_it() {
    let server = server();
    let reply = dav(
        &server,
        "PUT",
        "c.txt",
        &[("OC-Checksum", "SHA1:abc")],
        b"x",
    );
    assert_eq!(reply.status, 201);
    let seen = props_of(&server, "c.txt", "<oc:checksums/>");
    assert_eq!(seen.prop("oc:checksums").unwrap().children, ["oc:checksum"]);
}

#[test]
fn put_refusals() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    assert_eq!(dav(&server, "PUT", "Nope/x.txt", &[], b"x").status, 409);
    assert_eq!(dav(&server, "PUT", "Documents", &[], b"x").status, 409);
    let guarded = dav(
        &server,
        "PUT",
        "Documents/a.txt",
        &[("If-None-Match", "*")],
        b"x",
    );
    assert_eq!(guarded.status, 412);
    let stale = dav(
        &server,
        "PUT",
        "Documents/a.txt",
        &[("If-Match", "\"not-the-etag\"")],
        b"x",
    );
    assert_eq!(stale.status, 412);
    assert_eq!(dav(&server, "PUT", "bad.part", &[], b"x").status, 400);
    let anonymous = request("PUT", &dav_url(&server, "anon.txt"), &[], b"x");
    assert_eq!(anonymous.status, 401);
    let wrong = request(
        "PUT",
        &dav_url(&server, "anon.txt"),
        &[("Authorization", &basic("alice", "wrong"))],
        b"x",
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(sim.state_fingerprint(), before);
    assert_eq!(sim.read("/Documents/a.txt").unwrap(), b"alpha");
    assert_eq!(sim.writes().len(), 7);
}

#[test]
fn mkcol_statuses() {
    let server = server();
    let made = dav(&server, "MKCOL", "Documents/sub", &[], b"");
    assert_eq!(made.status, 201);
    assert!(made.header("oc-fileid").is_some());
    assert!(props_of(&server, "Documents/sub/", "<d:resourcetype/>").is_collection());
    assert_eq!(dav(&server, "MKCOL", "Documents/sub", &[], b"").status, 405);
    assert_eq!(dav(&server, "MKCOL", "Missing/sub", &[], b"").status, 409);
    assert_eq!(
        dav(&server, "MKCOL", "Documents/body", &[], b"<x/>").status,
        415
    );
}

#[test]
fn delete_goes_to_the_trash() {
    let server = server();
    let sim = server.simulator();
    let id = sim.fileid("/Documents/a.txt").unwrap();
    assert_eq!(
        dav(&server, "DELETE", "Documents/a.txt", &[], b"").status,
        204
    );
    assert_eq!(propfind(&server, "Documents/a.txt", Some("0")).status, 404);
    assert_eq!(
        dav(&server, "DELETE", "Documents/a.txt", &[], b"").status,
        404
    );
    assert_eq!(dav(&server, "DELETE", "", &[], b"").status, 403);
    sim.restore(id).unwrap();
    assert_eq!(sim.read("/Documents/a.txt").unwrap(), b"alpha");
}

#[test]
fn move_keeps_the_fileid_and_honours_overwrite() {
    let server = server();
    let sim = server.simulator();
    let id = sim.fileid("/Documents/a.txt").unwrap();
    let absolute = dav_url(&server, "Documents/b%20c.txt");
    let moved = dav(
        &server,
        "MOVE",
        "Documents/a.txt",
        &[("Destination", &absolute)],
        b"",
    );
    assert_eq!(moved.status, 201, "{}", moved.body);
    assert_eq!(sim.fileid("/Documents/b c.txt"), Some(id));
    assert!(sim.fileid("/Documents/a.txt").is_none());

    sim.put("/other.txt", "other").unwrap();
    let path_only = "/remote.php/dav/files/alice/other.txt";
    let refused = dav(
        &server,
        "MOVE",
        "Documents/b%20c.txt",
        &[("Destination", path_only), ("Overwrite", "F")],
        b"",
    );
    assert_eq!(refused.status, 412);
    let replaced = dav(
        &server,
        "MOVE",
        "Documents/b%20c.txt",
        &[("Destination", path_only)],
        b"",
    );
    assert_eq!(replaced.status, 204);
    assert_eq!(sim.fileid("/other.txt"), Some(id));
    assert_eq!(sim.read("/other.txt").unwrap(), b"alpha");
}

#[test]
fn move_refusals() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    let to = |dest: &str| {
        dav(
            &server,
            "MOVE",
            "Documents",
            &[("Destination", &format!("/remote.php/dav/files/{dest}"))],
            b"",
        )
        .status
    };
    assert_eq!(to("bob/Documents"), 403);
    assert_eq!(to("alice/Documents/inside"), 403);
    assert_eq!(to("alice/Missing/Documents"), 409);
    assert_eq!(to("alice/Documents"), 403);
    assert_eq!(
        dav(
            &server,
            "MOVE",
            "Documents",
            &[("Destination", "/etc/passwd")],
            b""
        )
        .status,
        403
    );
    assert_eq!(dav(&server, "MOVE", "Documents", &[], b"").status, 400);
    assert_eq!(sim.state_fingerprint(), before);
}

#[test]
fn copy_makes_new_fileids() {
    let server = server();
    let sim = server.simulator();
    let copied = dav(
        &server,
        "COPY",
        "Documents",
        &[("Destination", &dav_url(&server, "Copy"))],
        b"",
    );
    assert_eq!(copied.status, 201);
    let new = sim.fileid("/Copy/a.txt").unwrap();
    assert_ne!(Some(new), sim.fileid("/Documents/a.txt"));
    assert_eq!(sim.read("/Copy/a.txt").unwrap(), b"alpha");
    let listed = parse_multistatus(&propfind(&server, "Copy/", Some("1")).body);
    assert_eq!(listed.len(), 2);
}

#[test]
fn proppatch_stores_favorites_and_dead_properties() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    let body = r#"<?xml version="1.0"?>
<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:x">
  <d:set><d:prop><oc:favorite>1</oc:favorite><x:note>a &lt;b&gt;</x:note></d:prop></d:set>
</d:propertyupdate>"#;
    let reply = dav(
        &server,
        "PROPPATCH",
        "Documents/a.txt",
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 207, "{}", reply.body);
    let answer = parse_multistatus(&reply.body).remove(0);
    assert_eq!(answer.href, "/remote.php/dav/files/alice/Documents/a.txt");
    assert_eq!(answer.propstats.len(), 1);
    assert!(answer.propstats[0].0.contains("200"));
    assert_ne!(sim.state_fingerprint(), before);

    let seen = props_of(
        &server,
        "Documents/a.txt",
        "<oc:favorite/><x:note/><x:other/>",
    );
    assert_eq!(seen.text("oc:favorite"), "1");
    assert_eq!(seen.text("x1:note"), "a <b>");
    assert!(seen.prop("x1:other").is_none());

    let remove = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:remove><d:prop><x:note/></d:prop></d:remove></d:propertyupdate>"#;
    assert_eq!(
        dav(
            &server,
            "PROPPATCH",
            "Documents/a.txt",
            &[],
            remove.as_bytes()
        )
        .status,
        207
    );
    assert!(
        props_of(&server, "Documents/a.txt", "<x:note/>")
            .prop("x1:note")
            .is_none()
    );
}

#[test]
fn proppatch_is_all_or_nothing() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    let body = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:set><d:prop><oc:favorite>1</oc:favorite><d:getetag>"x"</d:getetag></d:prop></d:set></d:propertyupdate>"#;
    let reply = dav(&server, "PROPPATCH", "Documents", &[], body.as_bytes());
    assert_eq!(reply.status, 207);
    let answer = parse_multistatus(&reply.body).remove(0);
    let statuses: Vec<&str> = answer.propstats.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 424 Failed Dependency", "HTTP/1.1 403 Forbidden"]
    );
    assert_eq!(sim.state_fingerprint(), before);
    assert_eq!(
        dav(&server, "PROPPATCH", "Nope", &[], body.as_bytes()).status,
        404
    );
    assert_eq!(
        dav(&server, "PROPPATCH", "Documents", &[], b"<x/>").status,
        400
    );
}

#[test]
fn proppatch_lastmodified_touches() {
    let server = server();
    let body = r#"<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:lastmodified>1600000000</d:lastmodified></d:prop></d:set></d:propertyupdate>"#;
    let reply = dav(
        &server,
        "PROPPATCH",
        "Documents/a.txt",
        &[],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 207);
    let entry = server.simulator().entry("/Documents/a.txt").unwrap();
    assert_eq!(entry.modified, 1600000000);
}

#[test]
fn other_methods_are_refused_but_counted() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    for method in ["LOCK", "UNLOCK", "TRACE", "POST", "PATCH"] {
        let reply = dav(&server, method, "Documents/a.txt", &[], b"x");
        assert_eq!(reply.status, 501, "{method}");
    }
    // Another user's home cannot be written either.
    assert_eq!(
        request(
            "PUT",
            &format!("{}/remote.php/dav/files/bob/x.txt", server.base_url()),
            &[("Authorization", &alice())],
            b"x"
        )
        .status,
        404
    );
    assert_eq!(
        request(
            "DELETE",
            &format!("{}/remote.php/dav/files/bob/", server.base_url()),
            &[("Authorization", &alice())],
            b""
        )
        .status,
        403
    );
    assert_eq!(sim.state_fingerprint(), before);
    let writes = sim.writes();
    assert_eq!(writes.len(), 7);
    assert_eq!(
        writes[0],
        "LOCK /remote.php/dav/files/alice/Documents/a.txt 501"
    );
    assert_eq!(writes[6], "DELETE /remote.php/dav/files/bob/ 403");
}

#[test]
fn reads_are_not_writes_and_reset_keeps_writes() {
    let server = server();
    let sim = server.simulator();
    propfind(&server, "", Some("1"));
    get(&server, "Documents/a.txt", &[]);
    dav(&server, "OPTIONS", "", &[], b"");
    assert!(sim.writes().is_empty());
    dav(&server, "MKCOL", "x", &[], b"");
    sim.reset_requests();
    assert_eq!(sim.writes(), ["MKCOL /remote.php/dav/files/alice/x 201"]);
}

#[test]
fn legacy_webdav_writes_too() {
    let server = server();
    let url = format!("{}/remote.php/webdav/legacy.txt", server.base_url());
    let reply = request("PUT", &url, &[("Authorization", &alice())], b"x");
    assert_eq!(reply.status, 201);
    assert!(server.simulator().fileid("/legacy.txt").is_some());
}

#[test]
fn rotate_invalidates_the_old_app_password() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    let no_header = request(
        "POST",
        &format!(
            "{}/ocs/v2.php/core/apppassword/rotate?format=json",
            server.base_url()
        ),
        &[("Authorization", &alice())],
        b"",
    );
    assert_eq!(no_header.status, 412);
    let reply = ocs(
        &server,
        "POST",
        "core/apppassword/rotate?format=json",
        &alice(),
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = parse_json(&reply.body);
    assert_eq!(v["ocs"]["meta"]["statuscode"], 200);
    let new = v["ocs"]["data"]["apppassword"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(new.len(), 72);
    assert!(new.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(sim.state_fingerprint(), before);

    assert_eq!(propfind(&server, "", Some("0")).status, 401);
    let with_new = request(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &basic("alice", &new)), ("Depth", "0")],
        b"",
    );
    assert_eq!(with_new.status, 207);
    assert_eq!(sim.options().app_password, new);

    // A second rotation gives yet another password.
    let again = ocs(
        &server,
        "POST",
        "core/apppassword/rotate?format=json",
        &basic("alice", &new),
        "",
    );
    let newer = parse_json(&again.body)["ocs"]["data"]["apppassword"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(newer, new);
    assert_eq!(sim.writes().len(), 3);
}

#[test]
fn deleting_the_app_password_locks_it_out() {
    let server = server();
    let sim = server.simulator();
    let reply = ocs(
        &server,
        "DELETE",
        "core/apppassword?format=json",
        &alice(),
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(propfind(&server, "", Some("0")).status, 401);
    assert_eq!(
        request(
            "PROPFIND",
            &dav_url(&server, ""),
            &[("Authorization", &basic("alice", "")), ("Depth", "0")],
            b"",
        )
        .status,
        401
    );
    // Bob is untouched.
    assert_eq!(
        ocs_get(&server, "cloud/user?format=json", &bob()).status,
        200
    );
    assert_eq!(
        sim.writes(),
        ["DELETE /ocs/v2.php/core/apppassword?format=json 200"]
    );
}

#[test]
fn getapppassword_is_refused_and_counted() {
    let server = server();
    let reply = ocs_get(&server, "core/getapppassword?format=json", &alice());
    assert_eq!(reply.status, 403);
    assert_eq!(
        server.simulator().writes(),
        ["GET /ocs/v2.php/core/getapppassword?format=json 403"]
    );
}

#[test]
fn shares_over_ocs_change_the_fingerprint() {
    let server = server();
    let sim = server.simulator();
    let before = sim.state_fingerprint();
    let link = ocs(
        &server,
        "POST",
        "apps/files_sharing/api/v1/shares?format=json",
        &alice(),
        "path=%2FDocuments%2Fa.txt&shareType=3",
    );
    assert_eq!(link.status, 200, "{}", link.body);
    let v = parse_json(&link.body)["ocs"]["data"].clone();
    assert_eq!(v["share_type"], 3);
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.len(), 15);
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/index.php/s/{token}"))
    );
    let with_link = sim.state_fingerprint();
    assert_ne!(with_link, before);

    let user = ocs(
        &server,
        "POST",
        "apps/files_sharing/api/v1/shares?format=json",
        &alice(),
        "path=%2FDocuments&shareType=0&shareWith=bob",
    );
    assert_eq!(user.status, 200, "{}", user.body);
    let id = parse_json(&user.body)["ocs"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = propfind_bob(&server);
    assert!(listed.contains("/remote.php/dav/files/bob/Documents/"));
    let deleted = ocs(
        &server,
        "DELETE",
        &format!("apps/files_sharing/api/v1/shares/{id}?format=json"),
        &alice(),
        "",
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(sim.state_fingerprint(), with_link);
    assert!(!propfind_bob(&server).contains("/remote.php/dav/files/bob/Documents/"));
    assert_eq!(sim.writes().len(), 3);
}

fn propfind_bob(server: &Server) -> String {
    request(
        "PROPFIND",
        &format!("{}/remote.php/dav/files/bob/", server.base_url()),
        &[("Authorization", &bob()), ("Depth", "1")],
        b"",
    )
    .body
}
