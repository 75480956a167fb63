//! The connector against a real Nextcloud 32: full and incremental syncs,
//! a download, a wrong app password, and the recipient of a share.

use std::time::Instant;

use tests::edits;
use tests::remote::{assert_mirrors, without_versions};
use tests::scenario::{self, content};

use super::{account, server};

/// The full sync equals the server's raw `PROPFIND Depth: infinity` of an
/// awkward tree; then every step of the scripted scenario (moves into and
/// out of the root among them) is synced by the activity stream and
/// mirrors the server; a sync with no change costs at most two requests;
/// the history equals a fresh full sync.
#[test]
fn the_scripted_scenario_mirrors_the_real_server_step_by_step() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let started = Instant::now();
    let (alice, bob) = (server.dav(0), server.dav(1));
    let unchanged = scenario::run(
        &alice,
        &bob,
        &server.users[1].0,
        &alice,
        &account(&server, 0),
        &account(&server, 0),
    )
    .unwrap();
    eprintln!(
        "{} steps in {:.1} s; a sync with no change: {} requests, {} ms",
        scenario::STEPS.len(),
        started.elapsed().as_secs_f64(),
        unchanged.count("requests"),
        unchanged.count("duration_ms")
    );
    assert!(
        unchanged.count("requests") <= 2,
        "a sync with no change sent {} requests",
        unchanged.count("requests")
    );
}

#[test]
fn a_file_with_a_special_name_downloads_byte_equal() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let alice = server.dav(0);
    let path = "/Spécial #1 & 100% done/x=1;y=2 ?é+😀.bin";
    let bytes = content(42, 3 * 1024 * 1024 + 17);
    alice.mkdir("/Spécial #1 & 100% done").unwrap();
    alice.put(path, &bytes).unwrap();
    let account = account(&server, 0);
    account.sync();
    let out = account.dir.path().join("out.bin");
    let run = account.cli(&["download", "--path", path, "-o", out.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the download differs");
    assert_eq!(alice.read(path).unwrap(), bytes);
}

/// One failed login, counted by the server's own brute-force protection,
/// and a message that names the app password; the counter is reset after.
#[test]
fn a_wrong_app_password_costs_one_failed_login() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let attempts = || -> u64 {
        let out = server
            .occ(&["security:bruteforce:attempts", "127.0.0.1", "--output=json"])
            .expect("occ answers");
        let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        json["attempts"].as_u64().expect("a count")
    };
    server
        .occ(&["security:bruteforce:reset", "127.0.0.1"])
        .unwrap();
    assert_eq!(attempts(), 0);
    let wrong = account(&server, 0).with_password("not-the-app-password");
    let run = wrong.cli(&["sync"]);
    let failed = attempts();
    server
        .occ(&["security:bruteforce:reset", "127.0.0.1"])
        .unwrap();
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(failed, 1, "failed logins the server counted");
    let message = format!("{}{}", run.stdout, run.stderr).to_lowercase();
    assert!(message.contains("app password"), "{message}");
}

/// As the recipient, nothing shared in is the recipient's own: the owner is
/// the sharer, the level what the share grants.
#[test]
fn shared_in_items_are_never_owned_by_the_recipient() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let (alice, bob) = (server.dav(0), server.dav(1));
    let (alice_id, bob_id) = (&server.users[0].0, &server.users[1].0);
    alice.mkdir("/Team").unwrap();
    alice.put("/Team/plan.txt", b"plan").unwrap();
    alice.put("/read only.txt", b"look").unwrap();
    alice.share_with_user("/Team", bob_id, 31).unwrap();
    alice.share_with_user("/read only.txt", bob_id, 1).unwrap();
    bob.put("/mine.txt", b"bob's").unwrap();

    let account = account(&server, 1);
    account.sync();
    let records = account.records();
    assert_mirrors(&records, &bob.listing().unwrap());
    let level = |path: &str| {
        let r = records
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{path} not synced"));
        (r.permission.clone(), r.owner_id.clone())
    };
    let alice_owns = Some(alice_id.clone());
    assert_eq!(level("/Team"), (Some("write".into()), alice_owns.clone()));
    assert_eq!(
        level("/Team/plan.txt"),
        (Some("write".into()), alice_owns.clone())
    );
    assert_eq!(level("/read only.txt"), (Some("read".into()), alice_owns));
    assert_eq!(level("/mine.txt").0, Some("owner".into()));
}

/// The property tests' random edits (seeded: `REAL_SEED`), several a round,
/// and now and then a restore from the trash bin; after every round an
/// incremental sync by the activity stream mirrors the server, and at the
/// end the history equals a fresh full sync.
#[test]
fn random_edits_converge_round_after_round() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const ROUNDS: u64 = 12;
    const EDITS: u64 = 5;
    let Some((server, _lock)) = server() else {
        return;
    };
    let seed: u64 = std::env::var("REAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let alice = server.dav(0);
    scenario::build_tree(&alice, &server.users[1].0).unwrap();
    let account = account(&server, 0);
    account.sync();
    let mut trashed: Vec<u64> = Vec::new();
    for round in 0..ROUNDS {
        let mut done = Vec::new();
        for i in 0..EDITS {
            let edit = edits::edit().new_tree(&mut runner).unwrap().current();
            trashed.extend(edits::apply(&alice, &edit, round * EDITS + i, &[]).trashed);
            done.push(edit);
        }
        if round % 3 == 2
            && let Some(id) = trashed.pop()
        {
            // Its folder may be gone: Nextcloud then restores to the root.
            alice.restore(id).unwrap();
        }
        let run = account.sync();
        eprintln!(
            "round {round}: {} changes, {} requests: {done:?}",
            run.changes(),
            run.count("requests")
        );
        assert!(run.by_activity(), "round {round}:\n{}", run.stderr);
        assert_mirrors(&account.records(), &alice.listing().unwrap());
    }
    let fresh = super::account(&server, 0);
    fresh.sync();
    assert_eq!(
        without_versions(fresh.records()),
        without_versions(account.records()),
        "the incremental history differs from a fresh full sync"
    );
}

/// Restoring an older version of a file writes no activity on Nextcloud 32:
/// the stream stays silent while the content changes. The etag reconcile
/// (`reconcile_interval_minutes`) is what finds it.
#[test]
fn a_restored_version_is_found_by_the_etag_reconcile() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let alice = server.dav(0);
    alice.mkdir("/Docs").unwrap();
    alice.put("/Docs/plan.txt", b"first version").unwrap();
    let account = account(&server, 0);
    account.sync();
    alice.put("/Docs/plan.txt", b"the second version").unwrap();
    assert!(account.sync().by_activity());
    assert_mirrors(&account.records(), &alice.listing().unwrap());

    alice.restore_oldest_version("/Docs/plan.txt").unwrap();
    assert_eq!(alice.read("/Docs/plan.txt").unwrap(), b"first version");
    let silent = account.sync();
    assert!(silent.by_activity(), "{}", silent.stderr);
    assert_eq!(silent.changes(), 0, "the stream said nothing of it");

    let reconcile = account.with_settings("reconcile_interval_minutes = 0");
    let run = reconcile.sync();
    assert!(
        run.stderr.contains("reconciling by etags"),
        "{}",
        run.stderr
    );
    assert_eq!(run.count("content_updated"), 1, "{}", run.stdout);
    assert_mirrors(&reconcile.records(), &alice.listing().unwrap());
}
