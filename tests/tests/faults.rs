//! A hostile or broken server: the real component in the real host against
//! the simulator's hostile answers and injected faults.
//!
//! Every hostile input is met twice: by the first (full) sync of an account,
//! and by an incremental sync of a synced one, where it replaces what the
//! server says about a new folder. Each time the sync fails with a clear error
//! (never a trap of the connector) or skips the bad entry and syncs the rest;
//! no record known before is deleted; a failed sync leaves the cursor where
//! it was; and once the server behaves, the next sync converges: the records
//! are what the server lists and what a fresh full sync gives.
//!
//! Then a property test: random changes and syncs under random faults, then
//! one clean sync, must converge the same way, with no duplicate and the
//! cursor never moved by a failed sync.
//! `PROPTEST_CASES=256 cargo test -p tests --test e2e --release faults::` is the
//! long run.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use host_runner::{Error, SinkRecord, Store, SyncReport};
use nextcloud_sim::{Canned, Faults, Intercept, SimOptions, Simulator};
use proptest::prelude::*;
use tests::Account;
use tests::edits::{self, Edit, edit};
use tests::files::SimFiles;

/// Retries stay short: one retry, at most a second of waiting.
const QUICK: &str = "[limits]\nmax_retries = 1\nmax_retry_seconds = 1\nhttp_timeout_seconds = 2";

const DAV: &str = "/remote.php/dav/files/alice/";
const MS_CLOSE: &str = "</d:multistatus>";

fn world(settings: &str) -> Account {
    let account = Account::with_settings(SimOptions::default(), settings);
    let sim = account.sim();
    for dir in ["/Docs/old", "/Photos", "/Projects/x", "/Spécial #1 & 100%"] {
        sim.mkdir_all(dir).unwrap();
    }
    sim.put("/Docs/readme.txt", "hello").unwrap();
    sim.put("/Docs/old/notes.md", "notes").unwrap();
    sim.put("/Photos/p.jpg", "jpeg").unwrap();
    sim.put("/Projects/x/main.rs", "fn main() {}").unwrap();
    sim.put("/Spécial #1 & 100%/what?.txt", "?").unwrap();
    account
}

fn cursor(account: &Account) -> Option<String> {
    let path = account.database();
    if !path.exists() {
        return None;
    }
    Store::open(&path)
        .unwrap()
        .sync_points()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
}

fn records(account: &Account) -> Vec<SinkRecord> {
    if account.database().exists() {
        account.records()
    } else {
        Vec::new()
    }
}

fn ids(records: &[SinkRecord]) -> BTreeSet<String> {
    records.iter().map(|r| r.external_id.clone()).collect()
}

/// Where a hostile answer is met.
#[derive(Clone, Copy, Debug)]
enum Context {
    /// The first sync of the account: the listing of everything.
    Full,
    /// An incremental sync that reads a new folder `/New` (Depth 0 reads of
    /// its items, the listing of its subtree).
    Incremental,
}

impl Context {
    /// Hrefs of what the sync reads there start with this.
    fn scope(self) -> &'static str {
        match self {
            Context::Full => DAV,
            Context::Incremental => "/remote.php/dav/files/alice/New/",
        }
    }
}

/// Prepares the account for `context`; returns it with the settings given.
fn prepared(context: Context, settings: &str) -> Account {
    let account = world(&format!("{QUICK}\n{settings}"));
    if let Context::Incremental = context {
        account.sync().expect("the first sync");
        let sim = account.sim();
        sim.mkdir("/New").unwrap();
        sim.put("/New/a.txt", "a").unwrap();
        sim.put("/New/b c.txt", "b").unwrap();
        sim.mkdir("/New/inner").unwrap();
        sim.put("/New/inner/d.txt", "d").unwrap();
    }
    account
}

/// What a hostile sync must leave behind, whatever it did: it did not trap,
/// the records known before are there, a failure left the cursor alone, the
/// hostile answer was asked for; after the server behaves again, a clean sync
/// converges. Returns the hostile sync's result.
fn survive(account: &Account, hostile: impl FnOnce(&Simulator)) -> Result<SyncReport, Error> {
    let before = records(account);
    let cursor_before = cursor(account);
    let sim = account.sim();
    let served = sim.fault_counts().intercepted;
    hostile(sim);
    let result = account.sync();
    assert!(
        sim.fault_counts().intercepted > served,
        "the hostile answer was never asked for"
    );
    if let Err(e) = &result {
        assert!(
            !matches!(e, Error::Guest(_)),
            "the connector trapped instead of failing cleanly: {e}"
        );
        assert_eq!(
            cursor(account),
            cursor_before,
            "a failed sync moved the cursor ({e})"
        );
    }
    let after = records(account);
    let missing: Vec<&SinkRecord> = before
        .iter()
        .filter(|r| !ids(&after).contains(&r.external_id))
        .collect();
    assert!(
        missing.is_empty(),
        "records deleted: {missing:?} ({result:?})"
    );
    assert_eq!(
        ids(&after).len(),
        after.len(),
        "duplicate external ids after {result:?}"
    );
    sim.clear_intercepts();
    sim.clear_faults();
    account
        .sync()
        .unwrap_or_else(|e| panic!("the clean sync after {result:?} failed: {e}"));
    account.assert_converged();
    result
}

/// Asserts the sync failed, with a message containing one of `words`.
fn assert_fails(result: &Result<SyncReport, Error>, words: &[&str]) {
    match result {
        Ok(report) => panic!("the sync succeeded: {report:?}"),
        Err(e) => {
            let text = e.to_string().to_lowercase();
            assert!(
                words.iter().any(|w| text.contains(&w.to_lowercase())),
                "unclear error: {e}"
            );
        }
    }
}

/// Every PROPFIND below `scope` gets its real answer passed through `f`.
fn rewrite_listings(
    sim: &Simulator,
    scope: &str,
    f: impl Fn(String) -> String + Send + Sync + 'static,
) {
    sim.intercept(
        Intercept::rewrite("PROPFIND", scope, move |body| {
            f(String::from_utf8(body).expect("the simulator writes UTF-8")).into_bytes()
        })
        .always(),
    );
}

/// Adds `extra` responses at the end of a multistatus.
fn with_extra(body: String, extra: &str) -> String {
    body.replacen(MS_CLOSE, &format!("{extra}{MS_CLOSE}"), 1)
}

/// A file entry as Nextcloud writes one.
fn entry(href: &str, fileid: &str, size: &str, date: &str) -> String {
    format!(
        "<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>&quot;e{fileid}x&quot;</d:getetag>\
         <d:getlastmodified>{date}</d:getlastmodified><d:getcontentlength>{size}</d:getcontentlength>\
         <d:getcontenttype>text/plain</d:getcontenttype><d:resourcetype/><oc:fileid>{fileid}</oc:fileid>\
         <oc:permissions>RGDNVW</oc:permissions><oc:size>{size}</oc:size></d:prop>\
         <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )
}

const DATE: &str = "Sat, 28 Nov 2026 16:40:06 GMT";

/// Replaces the text of `<tag>…</tag>` in every response whose href ends
/// with `href_end`.
fn edit_prop(body: String, href_end: &str, tag: &str, value: &str) -> String {
    let mut out = String::new();
    let mut edited = false;
    for (i, part) in body.split("<d:response>").enumerate() {
        if i > 0 {
            out.push_str("<d:response>");
        }
        let hit = part
            .split_once("</d:href>")
            .is_some_and(|(href, _)| href.ends_with(href_end));
        match (hit, part.find(&format!("<{tag}>"))) {
            (true, Some(start)) => {
                let open = start + tag.len() + 2;
                let end = open + part[open..].find(&format!("</{tag}>")).unwrap();
                out.push_str(&part[..open]);
                out.push_str(value);
                out.push_str(&part[end..]);
                edited = true;
            }
            _ => out.push_str(part),
        }
    }
    assert!(edited || !body.contains(href_end), "no {tag} in {href_end}");
    out
}

/// The fileid of the first response whose href ends with `href_end`.
fn fileid_in(body: &str, href_end: &str) -> Option<String> {
    body.split("<d:response>").find_map(|part| {
        let (href, rest) = part.split_once("</d:href>")?;
        if !href.ends_with(href_end) {
            return None;
        }
        let start = rest.find("<oc:fileid>")? + "<oc:fileid>".len();
        let end = rest[start..].find("</oc:fileid>")?;
        Some(rest[start..start + end].to_string())
    })
}

/// The same hostile answer in both contexts.
fn both(run: impl Fn(Context)) {
    for context in [Context::Full, Context::Incremental] {
        eprintln!("--- {context:?}");
        run(context);
    }
}

// --- malformed, truncated and hostile XML ------------------------------------

#[test]
fn a_listing_cut_mid_element_is_an_error_never_a_short_listing() {
    both(|context| {
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            rewrite_listings(sim, context.scope(), |body| {
                // Cut inside the last response's properties, as a dropped stream ends.
                let at = body.rfind("<oc:fileid>").unwrap() + 5;
                body[..at].to_string()
            });
        });
        assert_fails(&result, &["truncated", "ended early"]);
    });
}

#[test]
fn malformed_xml_is_an_error() {
    both(|context| {
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            rewrite_listings(sim, context.scope(), |body| {
                body.replacen("</d:propstat>", "</d:prop></d:propstat>", 1)
            });
        });
        assert_fails(&result, &["malformed", "xml"]);
    });
}

#[test]
fn a_doctype_or_an_entity_is_refused_and_never_expanded() {
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE d:multistatus [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>";
    both(|context| {
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            rewrite_listings(sim, context.scope(), move |body| {
                let body = body.replacen("<?xml version=\"1.0\"?>\n", laughs, 1);
                body.replacen("</d:href>", "&lol3;</d:href>", 1)
            });
        });
        assert_fails(&result, &["doctype"]);
        // An entity the document does not declare either.
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            rewrite_listings(sim, context.scope(), |body| {
                body.replacen("</d:href>", "&xxe;</d:href>", 1)
            });
        });
        assert_fails(&result, &["entity"]);
    });
}

#[test]
fn absurd_nesting_is_refused() {
    both(|context| {
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            rewrite_listings(sim, context.scope(), |body| {
                let deep = format!("{}{}", "<d:x>".repeat(10_000), "</d:x>".repeat(10_000));
                body.replacen("<d:response>", &format!("{deep}<d:response>"), 1)
            });
        });
        assert_fails(&result, &["deeper", "nest"]);
    });
}

#[test]
fn non_utf8_bytes_are_an_error() {
    both(|context| {
        let account = prepared(context, "");
        let result = survive(&account, |sim| {
            sim.intercept(
                Intercept::rewrite("PROPFIND", context.scope(), |body| {
                    let at = body.windows(9).position(|w| w == b"</d:href>").unwrap();
                    let mut out = body[..at].to_vec();
                    out.extend_from_slice(b"\xff\xfe\xc3(");
                    out.extend_from_slice(&body[at..]);
                    out
                })
                .always(),
            );
        });
        assert_fails(&result, &["utf-8", "utf8", "malformed", "decod"]);
    });
}

#[test]
fn a_listing_over_the_body_cap_is_an_error() {
    // The Depth 0 reads of an incremental sync are buffered: the host caps them.
    let account = prepared(Context::Incremental, "max_body_mib = 1");
    let result = survive(&account, |sim| {
        let big = format!(
            "<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\"><!-- {} --></d:multistatus>",
            "x".repeat(3 << 20)
        );
        sim.intercept(
            Intercept::respond(
                "PROPFIND",
                Context::Incremental.scope(),
                Canned::multistatus(big),
            )
            .depth("0")
            .always(),
        );
    });
    assert_fails(&result, &["too large", "max_body_mib", "larger than"]);
}

#[test]
fn an_activity_page_over_the_cap_is_an_error() {
    let account = prepared(Context::Incremental, "");
    let result = survive(&account, |sim| {
        let filler = "x".repeat(9 << 20);
        let body = format!(
            "{{\"ocs\":{{\"meta\":{{\"status\":\"ok\"}},\"data\":[{{\"activity_id\":999999,\"type\":\"file_created\",\"subject\":\"{filler}\",\"objects\":{{}}}}]}}}}"
        );
        sim.intercept(
            Intercept::respond("GET", "/ocs/v2.php/apps/activity/", Canned::json(body))
                .query_contains("sort=asc"),
        );
    });
    assert_fails(&result, &["larger than", "too large"]);
}

// --- entries that cannot be read: skipped, the rest synced --------------------

/// An entry the sync must skip, and what else it must do.
fn skipped_entry(context: Context, bad: impl Fn(String) -> String + Send + Sync + 'static) {
    let account = prepared(context, "");
    let result = survive(&account, |sim| rewrite_listings(sim, context.scope(), bad));
    if let Ok(report) = &result {
        assert!(report.new > 0, "nothing else was synced: {report:?}");
    }
}

#[test]
fn hrefs_outside_the_users_root_are_skipped() {
    for outside in [
        "/remote.php/dav/files/alice/../bob/secret.txt",
        "/remote.php/dav/files/alice/New/..%2F..%2Fbob/x.txt",
        "/remote.php/dav/files/bob/secret.txt",
        "/remote.php/dav/files/alice%2F..%2Fbob/x.txt",
        "http://evil.example/remote.php/dav/files/alice/New/evil.txt",
        "/remote.php/dav/files/",
    ] {
        both(|context| {
            eprintln!("{outside}");
            skipped_entry(context, move |body| {
                with_extra(body, &entry(outside, "777001", "5", DATE))
            });
        });
    }
    // Nothing outside ever became a record (the clean sync converged, too).
}

#[test]
fn a_duplicate_fileid_is_taken_once() {
    both(|context| {
        let target = match context {
            Context::Full => "Docs/readme.txt",
            Context::Incremental => "New/a.txt",
        };
        skipped_entry(context, move |body| {
            let Some(id) = fileid_in(&body, target) else {
                return body;
            };
            let dup = format!("{}dup-of-{id}.txt", context.scope());
            with_extra(body, &entry(&dup, &id, "5", DATE))
        });
    });
}

#[test]
fn negative_or_non_numeric_sizes_are_skipped() {
    for size in ["-5", "12abc", "", "1e3", "99999999999999999999999"] {
        both(|context| {
            let target = match context {
                Context::Full => "Docs/readme.txt",
                Context::Incremental => "New/a.txt",
            };
            skipped_entry(context, move |body| {
                edit_prop(body, target, "oc:size", size)
            });
        });
    }
}

#[test]
fn unparseable_dates_and_fileids_are_skipped() {
    for (tag, value) in [
        ("d:getlastmodified", "yesterday"),
        ("d:getlastmodified", ""),
        ("oc:fileid", "-3"),
        ("oc:fileid", "abc"),
    ] {
        both(|context| {
            let target = match context {
                Context::Full => "Docs/readme.txt",
                Context::Incremental => "New/a.txt",
            };
            skipped_entry(context, move |body| edit_prop(body, target, tag, value));
        });
    }
}

// --- the activity stream -------------------------------------------------------

#[test]
fn activity_json_of_the_wrong_shape_is_an_error() {
    for body in [
        "[]",
        "{\"ocs\":{\"data\":{}}}",
        "{\"ocs\":{\"data\":[{\"activity_id\":\"x\"}]}}",
        "{\"ocs\":{\"data\":[{\"activity_id\":9999,\"type\":\"file_created\",\"objects\":{\"abc\":\"/x\"}}]}}",
        "{\"ocs\":{\"data\":[{\"activity_id\":9999,\"type\":\"file_created\",\"objects\":{\"5\":7}}]}}",
        "<html>maintenance</html>",
    ] {
        let account = prepared(Context::Incremental, "");
        let result = survive(&account, |sim| {
            sim.intercept(
                Intercept::respond("GET", "/ocs/v2.php/apps/activity/", Canned::json(body))
                    .query_contains("sort=asc"),
            );
        });
        assert_fails(&result, &["activity", "json"]);
    }
}

#[test]
fn activity_ids_that_go_backwards_are_an_error() {
    let account = prepared(Context::Incremental, "");
    let cursor: u64 = cursor(&account).unwrap().parse().unwrap();
    assert!(cursor > 1);
    let result = survive(&account, |sim| {
        let body = format!(
            "{{\"ocs\":{{\"meta\":{{\"status\":\"ok\"}},\"data\":[\
             {{\"activity_id\":{},\"type\":\"file_created\",\"objects\":{{}}}},\
             {{\"activity_id\":{},\"type\":\"file_created\",\"objects\":{{}}}}]}}}}",
            cursor + 5,
            cursor + 2
        );
        sim.intercept(
            Intercept::respond("GET", "/ocs/v2.php/apps/activity/", Canned::json(body))
                .query_contains("sort=asc"),
        );
    });
    assert_fails(&result, &["backwards"]);
    // Behind the cursor from the start is going backwards too.
    let account = prepared(Context::Incremental, "");
    let cursor: u64 = self::cursor(&account).unwrap().parse().unwrap();
    let result = survive(&account, |sim| {
        let body = format!(
            "{{\"ocs\":{{\"meta\":{{\"status\":\"ok\"}},\"data\":[{{\"activity_id\":{},\"type\":\"file_created\",\"objects\":{{}}}}]}}}}",
            cursor - 1
        );
        sim.intercept(
            Intercept::respond("GET", "/ocs/v2.php/apps/activity/", Canned::json(body))
                .query_contains("sort=asc"),
        );
    });
    assert_fails(&result, &["backwards"]);
}

#[test]
fn activity_paths_outside_the_users_root_are_never_requested() {
    for path in [
        "/../../bob/secret.txt",
        "/Docs/../../../bob/secret.txt",
        "/..",
        "/Docs//readme.txt",
        "/./Docs",
    ] {
        let account = prepared(Context::Incremental, "");
        let readme = account.sim().fileid("/Docs/readme.txt").unwrap();
        account.sim().reset_requests();
        let result = survive(&account, |sim| {
            let body = format!(
                "{{\"ocs\":{{\"meta\":{{\"status\":\"ok\"}},\"data\":[{{\"activity_id\":{},\"type\":\"file_changed\",\"objects\":{{\"{readme}\":\"{path}\"}}}}]}}}}",
                sim.last_activity_id() + 1
            );
            sim.intercept(
                Intercept::respond("GET", "/ocs/v2.php/apps/activity/", Canned::json(body))
                    .query_contains("sort=asc"),
            );
        });
        let outside: Vec<String> = account
            .sim()
            .requests()
            .into_iter()
            // Every DAV request but SEARCH (at the DAV root) is below alice's files.
            .filter(|r| r.method != "SEARCH" && !r.path.starts_with(DAV))
            .filter(|r| {
                r.path.starts_with("/remote.php/") || r.path == "/" || r.path.starts_with("/bob")
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            outside.is_empty(),
            "{path}: requests outside alice's files: {outside:?}"
        );
        if let Err(e) = &result {
            assert!(e.to_string().contains("segment"), "unclear error: {e}");
        }
    }
}

// --- redirects -----------------------------------------------------------------

/// A listener that counts connections and keeps what they send.
struct Elsewhere {
    url: String,
    connections: Arc<AtomicUsize>,
    received: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Elsewhere {
    fn start(scheme: &str) -> Elsewhere {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                c.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 4096];
                if let Ok(n) = (&stream).read(&mut buf) {
                    r.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Elsewhere {
            url,
            connections,
            received,
        }
    }
}

#[test]
fn a_redirect_to_another_origin_is_never_followed_with_the_credential() {
    let other = Elsewhere::start("http");
    let tls = Elsewhere::start("https");
    // (status, method, path prefix, where to, must the sync fail)
    let cases = [
        (301, "PROPFIND", DAV, format!("{}{DAV}", other.url), true),
        (302, "PROPFIND", DAV, format!("{}{DAV}", tls.url), true),
        (
            307,
            "GET",
            "/ocs/v2.php/cloud/user",
            format!("{}/ocs/v2.php/cloud/user", other.url),
            true,
        ),
        // Without an answer from the Activity app a sync may go on by etags.
        (
            308,
            "GET",
            "/ocs/v2.php/apps/activity/",
            format!("{}/steal", tls.url),
            false,
        ),
    ];
    for (status, method, prefix, location, fails) in cases {
        for context in [Context::Full, Context::Incremental] {
            if matches!(context, Context::Incremental) && prefix.contains("cloud/user") {
                // An incremental sync does not ask who the user is.
                continue;
            }
            eprintln!("{status} {method} {prefix} in {context:?}");
            let account = prepared(context, "");
            let location = location.clone();
            let result = survive(&account, move |sim| {
                sim.intercept(
                    Intercept::respond(method, prefix, Canned::redirect(status, &location))
                        .always(),
                );
            });
            if fails {
                assert_fails(&result, &[&status.to_string(), "redirect"]);
            }
        }
    }
    // Give a connection that might have been made time to be counted.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(other.connections.load(Ordering::SeqCst), 0);
    assert_eq!(tls.connections.load(Ordering::SeqCst), 0);
    assert!(other.received.lock().unwrap().is_empty());
}

// --- unavailable external storage ----------------------------------------------

#[test]
fn an_unavailable_storage_is_unknown_never_deleted() {
    let account = world(QUICK);
    let sim = account.sim();
    sim.mkdir_all("/External/deep").unwrap();
    sim.put("/External/report.pdf", "pdf").unwrap();
    sim.put("/External/deep/data.csv", "1,2").unwrap();
    account.sync().unwrap();
    let below: Vec<String> = account
        .records()
        .iter()
        .filter(|r| r.path.starts_with("/External"))
        .map(|r| r.external_id.clone())
        .collect();
    assert_eq!(below.len(), 4);
    sim.set_unavailable("/External", true).unwrap();

    let survives = |account: &Account, what: &str| {
        let result = account.sync();
        if let Err(e) = &result {
            assert!(!matches!(e, Error::Guest(_)), "{what}: {e}");
        }
        let now = ids(&account.records());
        for id in &below {
            assert!(
                now.contains(id),
                "{what}: record {id} under the storage was deleted ({result:?})"
            );
        }
        result
    };
    // An incremental sync that lists the root's changes.
    sim.put("/Docs/new.txt", "n").unwrap();
    survives(&account, "incremental").unwrap();
    // An etag reconcile, which lists the root (the storage is in it).
    let reconcile = account.twin(&format!("reconcile_interval_minutes = 0\n{QUICK}"));
    sim.without_activity(|| sim.put("/Photos/silent.jpg", "s"))
        .unwrap();
    survives(&reconcile, "reconcile").unwrap();
    // A full listing (another filter needs one).
    let full = account.twin(&format!(
        "{QUICK}\n[filters]\nexclude_extensions = [\"never\"]"
    ));
    survives(&full, "full listing").unwrap();
    // An activity inside the storage: its item cannot be read.
    sim.set_unavailable("/External", false).unwrap();
    sim.put("/External/deep/more.csv", "3,4").unwrap();
    sim.set_unavailable("/External", true).unwrap();
    // Its Depth 0 read answers 503: the sync may fail (and the next one
    // reads the same activities again), but says why.
    if let Err(e) = survives(&account, "activity inside the storage") {
        assert!(e.to_string().contains("503"), "{e}");
    }

    sim.set_unavailable("/External", false).unwrap();
    account.sync().unwrap();
    reconcile.sync().unwrap();
    account.assert_converged();
}

// --- faults ---------------------------------------------------------------------

/// Each kind of fault alone, at a rate that fails some requests: syncs fail
/// or succeed, never trap, never delete what is there, never move the cursor
/// when they fail; the clean sync after converges.
#[test]
fn each_fault_alone_loses_nothing() {
    const ROUNDS: u64 = 5;
    let kinds: Vec<(&str, Faults)> = vec![
        (
            "500s",
            Faults {
                error_rate: 0.15,
                ..Faults::default()
            },
        ),
        (
            "429 bursts",
            Faults {
                throttle_rate: 0.1,
                throttle_burst: 3,
                ..Faults::default()
            },
        ),
        (
            "maintenance",
            Faults {
                maintenance_rate: 0.2,
                retry_after: Some(1),
                ..Faults::default()
            },
        ),
        (
            "resets",
            Faults {
                reset_rate: 0.3,
                ..Faults::default()
            },
        ),
        (
            "truncated 207s",
            Faults {
                truncate_rate: 0.3,
                ..Faults::default()
            },
        ),
        (
            "aborted 207s",
            Faults {
                abort_rate: 0.3,
                ..Faults::default()
            },
        ),
        (
            "slow answers",
            Faults {
                slow_rate: 0.25,
                slow_ms: 1500,
                ..Faults::default()
            },
        ),
    ];
    for (i, (what, faults)) in kinds.into_iter().enumerate() {
        let account = world(
            QUICK
                .replace("http_timeout_seconds = 2", "http_timeout_seconds = 1")
                .as_str(),
        );
        account.sim().generate(300, i as u64);
        let mut failed = 0;
        let mut injected = 0;
        for round in 0..ROUNDS {
            let sim = account.sim();
            sim.put(&format!("/Docs/round {round}.txt"), "r").unwrap();
            if round == 2 {
                sim.rename("/Photos", &format!("/Photos {round}")).unwrap();
            }
            let before = ids(&records(&account));
            let cursor_before = cursor(&account);
            sim.set_faults(Faults {
                seed: round * 31 + i as u64,
                ..faults.clone()
            });
            let result = account.sync();
            injected += sim.fault_counts().total();
            sim.clear_faults();
            if let Err(e) = &result {
                failed += 1;
                assert!(!matches!(e, Error::Guest(_)), "{what}: {e}");
                assert_eq!(cursor(&account), cursor_before, "{what}: {e}");
            }
            let after = ids(&records(&account));
            assert!(
                before.is_subset(&after),
                "{what}: records deleted ({result:?})"
            );
        }
        eprintln!("{what}: {failed} of {ROUNDS} syncs failed, {injected} faults injected");
        assert!(injected > 0, "{what}: no fault was injected");
        account
            .sync()
            .unwrap_or_else(|e| panic!("{what}: clean sync: {e}"));
        account.assert_converged();
    }
}

#[derive(Debug, Clone)]
enum Op {
    Edit(Edit),
    /// A sync under these faults.
    Sync(FaultSpec),
    /// A sync under these faults, with an etag reconcile due.
    Reconcile(FaultSpec),
}

#[derive(Debug, Clone)]
struct FaultSpec {
    seed: u64,
    error: f64,
    throttle: f64,
    maintenance: f64,
    reset: f64,
    truncate: f64,
    abort: f64,
    slow: f64,
}

impl FaultSpec {
    fn faults(&self) -> Faults {
        Faults {
            seed: self.seed,
            error_rate: self.error,
            throttle_rate: self.throttle,
            throttle_burst: 2,
            maintenance_rate: self.maintenance,
            retry_after: Some(1),
            reset_rate: self.reset,
            truncate_rate: self.truncate,
            abort_rate: self.abort,
            slow_rate: self.slow,
            slow_ms: 1200,
            path_prefix: None,
        }
    }
}

fn fault_spec() -> impl Strategy<Value = FaultSpec> {
    let rate = |max: f64| prop_oneof![2 => Just(0.0), 1 => 0.0..max];
    (
        any::<u64>(),
        rate(0.2),
        rate(0.1),
        rate(0.2),
        rate(0.2),
        rate(0.4),
        rate(0.4),
        rate(0.05),
    )
        .prop_map(
            |(seed, error, throttle, maintenance, reset, truncate, abort, slow)| FaultSpec {
                seed,
                error,
                throttle,
                maintenance,
                reset,
                truncate,
                abort,
                slow,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => edit().prop_map(Op::Edit),
        4 => fault_spec().prop_map(Op::Sync),
        1 => fault_spec().prop_map(Op::Reconcile),
    ]
}

/// The stored cursor and the records committed with it.
fn committed(account: &Account) -> (Option<String>, Vec<SinkRecord>) {
    (cursor(account), records(account))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_syncs_under_random_faults_converge(ops in proptest::collection::vec(op(), 3..14)) {
        let account = world("[limits]\nmax_retries = 1\nmax_retry_seconds = 1\nhttp_timeout_seconds = 1");
        let reconcile = account.twin(
            "reconcile_interval_minutes = 0\n[limits]\nmax_retries = 1\nmax_retry_seconds = 1\nhttp_timeout_seconds = 1",
        );
        let sim = account.sim();
        for (tick, op) in ops.iter().enumerate() {
            let (which, spec) = match op {
                Op::Edit(edit) => {
                    edits::apply(&SimFiles::of(sim), edit, tick as u64, &[]);
                    continue;
                }
                Op::Sync(spec) => (&account, spec),
                Op::Reconcile(spec) => (&reconcile, spec),
            };
            let (cursor_before, records_before) = committed(&account);
            sim.set_faults(spec.faults());
            let result = which.sync();
            sim.clear_faults();
            let (cursor_after, records_after) = committed(&account);
            prop_assert_eq!(ids(&records_after).len(), records_after.len(), "duplicate ids");
            if let Err(e) = result {
                prop_assert!(!matches!(e, Error::Guest(_)), "the connector trapped: {}", e);
                prop_assert_eq!(&cursor_after, &cursor_before, "a failed sync moved the cursor: {}", e);
                // What the failed sync did not reach is still there.
                let live: BTreeSet<String> =
                    sim.listing().iter().map(|e| e.fileid.to_string()).collect();
                let gone: Vec<&SinkRecord> = records_before
                    .iter()
                    .filter(|r| !ids(&records_after).contains(&r.external_id))
                    .filter(|r| live.contains(&r.external_id))
                    .collect();
                prop_assert!(gone.is_empty(), "a failed sync deleted live records: {:?}", gone);
            }
        }
        // The server behaves again: one sync, and a reconcile for the silent changes.
        account.sync().map_err(|e| TestCaseError::fail(format!("the clean sync: {e}")))?;
        reconcile.sync().map_err(|e| TestCaseError::fail(format!("the clean reconcile: {e}")))?;
        account.assert_mirrors_server();
        let fresh = account.twin_fresh();
        fresh.sync().unwrap();
        prop_assert_eq!(fresh.records_without_versions(), account.records_without_versions());
    }
}

/// Found by `random_syncs_under_random_faults_converge` (its persisted
/// case): failed syncs left a new folder unknown; then a known folder moved
/// into it and a child of the moved folder was deleted. The incremental sync
/// lists the new folder (which takes the moved one), so it never cleans the
/// moved folder's old path, and the deleted child's record stays there,
/// kept by the old path's reservation.
#[test]
fn a_child_deleted_after_its_folder_moved_into_a_new_folder_is_deleted() {
    let account = world("");
    let sim = account.sim();
    sim.mkdir("/Spécial #1 & 100%/x+y").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    sim.mkdir("/Docs/a.txt").unwrap();
    sim.rename("/Spécial #1 & 100%", "/Docs/a.txt/Spécial #1 & 100%")
        .unwrap();
    sim.delete("/Docs/a.txt/Spécial #1 & 100%/x+y").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
}
