//! Incremental syncs against a fresh full sync: random operations on the
//! server (creates, overwrites, renames, moves, deletes, restores, bursts the
//! Activity app groups, another user's edits in a share, changes that write
//! no activity, expiry of the activity history) interleaved with syncs; after
//! each sync the records must be exactly what the server lists.
//!
//! `PROPTEST_CASES=5000 cargo test -p tests --test e2e --release incremental::`
//! is the long run.

use nextcloud_sim::{ShareWith, SimOptions, Simulator, UserSpec};
use proptest::prelude::*;
use tests::edits::{self, Edit, NAMES, edit, join, paths, pick};
use tests::files::SimFiles;
use tests::{Account, Backend, counts};

#[derive(Debug, Clone)]
enum Op {
    Edit(Edit),
    Restore {
        which: usize,
    },
    /// Enough creates in one folder for the server to group them.
    Burst {
        parent: usize,
        count: usize,
    },
    /// Bob edits inside the folder he shares with alice.
    BobWrites {
        name: usize,
    },
    /// Alice shares an item of hers with Bob or a group.
    Share {
        target: usize,
        group: bool,
        read_only: bool,
    },
    Unshare {
        which: usize,
    },
    /// The activity history before now expires.
    Expire,
    /// Hours pass: the server groups nothing across them.
    Later,
    Sync,
    /// A sync after the reconcile interval.
    Reconcile,
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0usize..64;
    let n = || 0usize..NAMES.len();
    prop_oneof![
        17 => edit().prop_map(Op::Edit),
        1 => i().prop_map(|which| Op::Restore { which }),
        1 => (i(), 5usize..12).prop_map(|(parent, count)| Op::Burst { parent, count }),
        1 => n().prop_map(|name| Op::BobWrites { name }),
        1 => (i(), any::<bool>(), any::<bool>())
            .prop_map(|(target, group, read_only)| Op::Share { target, group, read_only }),
        1 => i().prop_map(|which| Op::Unshare { which }),
        1 => Just(Op::Expire),
        1 => Just(Op::Later),
        3 => Just(Op::Sync),
        1 => Just(Op::Reconcile),
    ]
}

/// Alice's account with a few folders, and Bob's folder shared with her.
fn world() -> Account {
    world_in(Backend::Sqlite)
}

fn world_in(backend: Backend) -> Account {
    let account = Account::with_backend(SimOptions::default(), "", backend);
    let sim = account.sim();
    for dir in ["/Docs", "/Docs/old", "/Photos", "/Projects/x"] {
        sim.mkdir_all(dir).unwrap();
    }
    sim.put("/Docs/readme.txt", "hello").unwrap();
    sim.put("/Photos/p.jpg", "jpeg").unwrap();
    sim.add_user(UserSpec::new("bob")).unwrap();
    sim.as_user("bob").mkdir("/Team").unwrap();
    sim.as_user("bob").put("/Team/plan.txt", "plan").unwrap();
    sim.share("bob", "/Team", ShareWith::User("alice".into()), 31)
        .unwrap();
    sim.add_group_member("staff", "bob").unwrap();
    sim.share("alice", "/Docs", ShareWith::User("bob".into()), 1)
        .unwrap();
    account
}

struct Model {
    trashed: Vec<u64>,
    shares: Vec<u64>,
    /// The activity history expired: the next sync is a year later.
    year_passed: bool,
    /// A silent change no sync since could have seen.
    silent_pending: bool,
    tick: u64,
}

/// Applies an operation; the server refusing it (a name taken, a folder
/// moved into itself) is part of the game and changes nothing.
fn apply(sim: &Simulator, model: &mut Model, op: &Op) {
    model.tick += 1;
    let content = format!("content {}", model.tick);
    let files = SimFiles::of(sim);
    let movable: Vec<(String, bool)> = paths(&files, false)
        .into_iter()
        .filter(|(p, _)| p != "/" && p != "/Team")
        .collect();
    let folders = paths(&files, true);
    match *op {
        Op::Edit(ref edit) => {
            let done = edits::apply(&files, edit, model.tick, &["/Team"]);
            model.trashed.extend(done.trashed);
            model.silent_pending |= done.silent;
        }
        Op::Restore { which } => {
            if !model.trashed.is_empty() {
                let id = model.trashed.remove(which % model.trashed.len());
                let _ = sim.restore(id);
            }
        }
        Op::Burst { parent, count } => {
            if let Some((p, _)) = pick(&folders, parent) {
                for i in 0..count {
                    let _ = sim.put(&join(p, &format!("burst {} {i}.txt", model.tick)), "b");
                }
            }
        }
        Op::BobWrites { name } => {
            let bob = sim.as_user("bob");
            let _ = bob.put(&join("/Team", NAMES[name]), content);
        }
        Op::Share {
            target,
            group,
            read_only,
        } => {
            let own: Vec<_> = movable
                .iter()
                .filter(|(p, _)| !p.starts_with("/Team/"))
                .cloned()
                .collect();
            if let Some((p, _)) = pick(&own, target) {
                let with = if group {
                    ShareWith::Group("staff".into())
                } else {
                    ShareWith::User("bob".into())
                };
                if let Ok(id) = sim.share("alice", p, with, if read_only { 1 } else { 31 }) {
                    model.shares.push(id);
                }
            }
        }
        Op::Unshare { which } => {
            if !model.shares.is_empty() {
                let id = model.shares.remove(which % model.shares.len());
                let _ = sim.unshare(id);
            }
        }
        Op::Expire => {
            // History expires oldest first, a year after it was written: a
            // connector that has not synced since is also past its reconcile
            // interval, so the next sync reconciles. (With rows left newer
            // than the cursor the server says the cursor expired; that path
            // has its own test. With none left, nothing could say so.)
            if let Some(newest) = sim.activity_ids("alice").last() {
                sim.expire_activities_before(*newest);
            }
            model.year_passed = true;
        }
        Op::Later => sim.advance_clock(4 * 3600),
        Op::Sync | Op::Reconcile => {}
    }
}

fn check(
    account: &Account,
    reconcile_account: &Account,
    model: &mut Model,
    op: &Op,
) -> Result<(), TestCaseError> {
    let reconciles = match op {
        Op::Sync => std::mem::take(&mut model.year_passed),
        Op::Reconcile => true,
        _ => return Ok(()),
    };
    let report = if reconciles {
        reconcile_account.sync()
    } else {
        account.sync()
    };
    let report = report.map_err(|e| TestCaseError::fail(format!("sync failed: {e}")))?;
    if reconciles {
        model.silent_pending = false;
        model.year_passed = false;
    }
    if !model.silent_pending {
        account.assert_mirrors_server();
        let again = account
            .sync()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            counts(&again),
            (0, 0, 0, 0),
            "a repeated sync changed something after {:?}",
            report
        );
    }
    Ok(())
}

/// Any sequence of server changes, each followed by a sync now and then,
/// ends in the records a fresh full sync gives.
fn differential(ops: &[Op], backend: &Backend) -> Result<(), TestCaseError> {
    let account = world_in(backend.clone());
    account.sync().unwrap();
    account.assert_mirrors_server();
    // The same database and server, with a reconcile due at every sync.
    let reconcile = account.twin("reconcile_interval_minutes = 0");
    let mut model = Model {
        trashed: Vec::new(),
        shares: Vec::new(),
        year_passed: false,
        silent_pending: false,
        tick: 0,
    };
    for op in ops {
        apply(account.sim(), &mut model, op);
        check(&account, &reconcile, &mut model, op)?;
    }
    reconcile.sync().unwrap();
    account.assert_mirrors_server();
    let fresh = account.twin_fresh();
    fresh.sync().unwrap();
    prop_assert_eq!(
        fresh.records_without_versions(),
        account.records_without_versions()
    );
    Ok(())
}

fn cases(variable: &str, default: u32) -> u32 {
    std::env::var(variable)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases("PROPTEST_CASES", 128),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_syncs_equal_a_fresh_full_sync(ops in proptest::collection::vec(op(), 4..28)) {
        differential(&ops, &Backend::Sqlite)?;
    }
}

/// The same property with PostgreSQL holding the state: one server for all
/// cases, a fresh database for each account. Fewer cases by default (each
/// costs database round trips); `POSTGRES_PROPTEST_CASES` sets them.
#[test]
fn incremental_syncs_into_postgres_equal_a_fresh_full_sync() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases("POSTGRES_PROPTEST_CASES", 12),
        max_shrink_iters: 50,
        // The shrunk case is printed; the proptest! tests keep regressions.
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 4..28), |ops| {
            differential(&ops, &backend)
        })
        .unwrap();
}

#[test]
fn an_unchanged_account_costs_two_requests() {
    let account = world();
    account.sync().unwrap();
    account.sim().reset_requests();
    let report = account.sync().unwrap();
    assert_eq!(counts(&report), (0, 0, 0, 0));
    assert_eq!(report.mode, host_runner::SyncMode::Incremental);
    assert!(
        account.sim().request_count() <= 2,
        "{:?}",
        account.sim().requests()
    );
}

#[test]
fn grouped_activities_lose_nothing() {
    let account = world();
    account.sync().unwrap();
    for i in 0..23 {
        account
            .sim()
            .put(&format!("/Docs/bulk {i}.txt"), "x")
            .unwrap();
    }
    let report = account.sync().unwrap();
    assert_eq!(report.new, 23);
    account.assert_mirrors_server();
}

/// Nextcloud keeps a file's etag when it is overwritten within the second
/// of its last write (found on the real server): the new size still says
/// the content changed, so the indexer hears `content_updated`.
#[test]
fn an_overwrite_within_the_same_second_is_new_content() {
    let account = world();
    let sim = account.sim();
    sim.stop_clock();
    sim.put("/Docs/fast.txt", "first").unwrap();
    account.sync().unwrap();
    let etag = sim.entry("/Docs/fast.txt").unwrap().etag;
    sim.put("/Docs/fast.txt", "a longer second version")
        .unwrap();
    assert_eq!(sim.entry("/Docs/fast.txt").unwrap().etag, etag);
    let report = account.sync().unwrap();
    assert_eq!(report.mode, host_runner::SyncMode::Incremental);
    assert_eq!(report.content_updated, 1, "{report:?}");
    account.assert_mirrors_server();
}

#[test]
fn a_new_folder_and_its_files_land_under_it_not_at_the_root() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.mkdir("/New stuff").unwrap();
    sim.put("/New stuff/new file.txt", "n").unwrap();
    sim.mkdir("/New stuff/inner").unwrap();
    sim.put("/New stuff/inner/deep.txt", "d").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn a_deleted_folder_takes_its_descendants_and_a_restore_brings_them_back() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    let id = sim.fileid("/Docs").unwrap();
    sim.delete("/Docs").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    assert!(
        account
            .records()
            .iter()
            .all(|r| !r.path.starts_with("/Docs"))
    );
    sim.restore(id).unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    assert!(account.records().iter().any(|r| r.path == "/Docs/old"));
}

#[test]
fn an_expired_cursor_leads_to_a_reconcile_that_loses_nothing() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.put("/Docs/during gap.txt", "g").unwrap();
    sim.rename("/Photos", "/Pictures").unwrap();
    let newest = *sim.activity_ids("alice").last().unwrap();
    sim.expire_activities_before(newest);
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn without_the_activity_app_every_sync_reconciles() {
    let account = world();
    account.sim().set_activity_enabled(false);
    account.sync().unwrap();
    account.sim().put("/Docs/x.txt", "x").unwrap();
    account.sim().rename("/Docs/old", "/Projects/old").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    account.sim().reset_requests();
    let report = account.sync().unwrap();
    assert_eq!(counts(&report), (0, 0, 0, 0));
    assert!(
        account.sim().request_count() <= 2,
        "{:?}",
        account.sim().requests()
    );
}

#[test]
fn changes_made_during_a_full_listing_are_replayed() {
    let account = world();
    account.sim().generate(20_000, 7);
    let sim = account.sim().clone();
    std::thread::scope(|s| {
        let sync = s.spawn(|| account.sync().unwrap());
        // Change things once the listing has been asked for; whether the
        // listing still shows them or not, nothing may be lost.
        while !sync.is_finished()
            && !sim
                .requests()
                .iter()
                .any(|r| r.depth.as_deref() == Some("infinity"))
        {
            std::thread::yield_now();
        }
        sim.put("/Docs/during the listing.txt", "d").unwrap();
        sim.rename("/Photos", "/Pictures during").unwrap();
        sync.join().unwrap();
    });
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn a_silent_change_under_a_folder_an_activity_refreshed_is_found_by_the_reconcile() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.without_activity(|| sim.put("/Docs/readme.txt", "silent"))
        .unwrap();
    sim.rename("/Photos/p.jpg", "/a.txt").unwrap();
    let incremental = account.sync().unwrap();
    assert_eq!(
        incremental.metadata_updated, 3,
        "the file, its old folder and the root: {incremental:?}"
    );
    let reconcile = account.twin("reconcile_interval_minutes = 0");
    let report = reconcile.sync().unwrap();
    assert!(report.content_updated >= 1, "{report:?}");
    account.assert_mirrors_server();
}

// Cases the property test found, kept as named regressions.

#[test]
fn a_folder_moved_out_of_a_renamed_folder_keeps_its_children() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.rename("/Projects", "/Docs/old/a.txt").unwrap();
    sim.mkdir("/Docs/old/a.txt/a.txt").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    sim.rename("/Docs/old/a.txt", "/Docs/a.txt").unwrap();
    sim.rename("/Docs/old", "/Docs/100%.txt").unwrap();
    sim.mkdir("/Docs/100%.txt/a.txt").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn folders_an_item_passed_through_are_refreshed() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.rename("/Docs/old", "/Projects/x/old").unwrap();
    sim.delete("/Projects/x/old").unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn a_folder_moved_into_a_new_folder_leaves_nothing_behind() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.mkdir("/Projects/new").unwrap();
    sim.rename("/Docs/old", "/Projects/x/old").unwrap();
    sim.delete("/Projects/x/old").unwrap();
    sim.rename("/Docs", "/Projects/new/Docs").unwrap();
    account
        .twin("reconcile_interval_minutes = 0")
        .sync()
        .unwrap();
    account.assert_mirrors_server();
}

#[test]
fn a_deleted_shared_folder_goes_when_the_cursor_expired() {
    let account = world();
    account.sync().unwrap();
    let sim = account.sim();
    sim.delete("/Docs").unwrap();
    sim.put("/Photos/later.jpg", "l").unwrap();
    let newest = *sim.activity_ids("alice").last().unwrap();
    sim.expire_activities_before(newest);
    account.sync().unwrap();
    account.assert_mirrors_server();
}

#[test]
fn past_a_thousand_changes_one_listing_replaces_the_lookups() {
    let account = Account::new(SimOptions::default());
    account.sim().generate(3000, 7);
    account.sync().unwrap();
    let sim = account.sim();
    let listing = sim.listing();
    let files: Vec<&str> = listing
        .iter()
        .filter(|e| !e.is_folder)
        .map(|e| e.path.as_str())
        .collect();
    let folders: Vec<&str> = listing
        .iter()
        .filter(|e| e.is_folder && e.path != "/" && e.path.matches('/').count() == 1)
        .map(|e| e.path.as_str())
        .collect();
    let edits = connector::incremental::RELIST_ABOVE + 1;
    for path in files.iter().take(edits) {
        sim.put(path, "edited").unwrap();
    }
    sim.delete(folders[0]).unwrap();
    sim.rename(folders[1], "/renamed in bulk").unwrap();
    sim.reset_requests();
    let report = account.sync().unwrap();
    assert_eq!(report.mode, host_runner::SyncMode::Incremental);
    // Activity pages of 200, the share list, and one listing.
    let pages = (edits + 2).div_ceil(200) as u64;
    assert!(
        report.requests <= pages + 4,
        "{} requests: {:?}",
        report.requests,
        sim.requests()
    );
    account.assert_mirrors_server();
}
