//! Full syncs of the real component, in the real host, against the simulator.

use nextcloud_sim::SimOptions;
use tests::{Account, counts};

#[test]
fn mirrors_a_tree_with_every_awkward_name() {
    let account = Account::sample();
    let report = account.sync().unwrap();
    assert_eq!(report.mode, host_runner::SyncMode::Full);
    let listed = account.sim().listing().len() as u64;
    assert_eq!(report.new, listed);
    account.assert_mirrors_server();
    let paths: Vec<String> = account
        .records()
        .into_iter()
        .map(|r| r.record.path)
        .collect();
    for name in [
        "/Spécial #1 & 100% done/a+b.txt",
        "/Spécial #1 & 100% done/what?.txt",
        "/Spécial #1 & 100% done/it's.txt",
        "/Spécial #1 & 100% done/x;y=z.txt",
        "/Spécial #1 & 100% done/日本語.txt",
        "/100% pure.txt",
        "/a#b.txt",
    ] {
        assert!(
            paths.iter().any(|p| p == name),
            "{name} missing from {paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.matches('/').count() >= 12),
        "deep nesting missing"
    );
}

#[test]
fn a_second_sync_changes_nothing() {
    let account = Account::sample();
    let full = account.sync().unwrap();
    let before = account.records();
    let report = account.sync().unwrap();
    assert_eq!(counts(&report), (0, 0, 0, 0));
    // The listing is most of what a full sync reads; an unchanged account
    // costs two short answers (shares, an empty activity page).
    let listing = account.sim().listing().len() as u64;
    assert!(full.bytes_received > listing * 200, "{full:?}");
    assert!(report.bytes_received < 4096, "{report:?}");
    assert!(
        report.requests <= 2,
        "{} requests for an unchanged account",
        report.requests
    );
    assert_eq!(account.records(), before);
}

#[test]
fn renames_moves_edits_and_deletes_between_syncs() {
    let account = Account::sample();
    account.sync().unwrap();
    let sim = account.sim();
    let notes = sim.fileid("/Documents/notes.md").unwrap();
    let drafts = sim.fileid("/Reports 2024/Drafts").unwrap();
    let draft = sim.fileid("/Reports 2024/Drafts/draft 1.txt").unwrap();
    let gone = sim.fileid("/a#b.txt").unwrap();
    sim.rename("/Documents/notes.md", "/Documents/notes renamed.md")
        .unwrap();
    sim.rename("/Reports 2024/Drafts", "/Documents/Drafts")
        .unwrap();
    sim.put("/Documents/readme.txt", "new content").unwrap();
    sim.delete("/a#b.txt").unwrap();
    sim.delete("/Projects/alpha").unwrap();
    sim.mkdir("/New stuff").unwrap();
    sim.put("/New stuff/new file.txt", "hello").unwrap();

    let report = account.sync().unwrap();
    account.assert_mirrors_server();
    assert!(
        report.new >= 2 && report.content_updated >= 1 && report.deleted >= 1,
        "{report:?}"
    );
    let records = account.records();
    let path_of = |id: u64| {
        records
            .iter()
            .find(|r| r.external_id == id.to_string())
            .map(|r| r.path.clone())
    };
    assert_eq!(
        path_of(notes).as_deref(),
        Some("/Documents/notes renamed.md")
    );
    assert_eq!(path_of(drafts).as_deref(), Some("/Documents/Drafts"));
    assert_eq!(
        path_of(draft).as_deref(),
        Some("/Documents/Drafts/draft 1.txt")
    );
    assert_eq!(path_of(gone), None);
    assert!(
        records
            .iter()
            .all(|r| !r.path.starts_with("/Projects/alpha"))
    );

    let again = account.sync().unwrap();
    assert_eq!(counts(&again), (0, 0, 0, 0));
}

#[test]
fn the_user_id_may_differ_from_the_login_and_a_subpath_is_respected() {
    let account = Account::new(SimOptions {
        user_id: "7f1e-uuid".into(),
        login: "alice@example.test".into(),
        subpath: "/nextcloud".into(),
        ..SimOptions::default()
    });
    account.sim().populate_sample();
    account.sync().unwrap();
    account.assert_mirrors_server();
    let paths: Vec<_> = account
        .sim()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/nextcloud/remote.php/dav/files/7f1e-uuid/")),
        "{paths:?}"
    );
}

#[test]
fn falls_back_to_depth_1_when_infinity_is_refused() {
    let account = Account::new(SimOptions {
        refuse_depth_infinity: true,
        ..SimOptions::default()
    });
    account.sim().populate_sample();
    let report = account.sync().unwrap();
    assert_eq!(report.new, account.sim().listing().len() as u64);
    account.assert_mirrors_server();
    let depths: Vec<Option<String>> = account
        .sim()
        .requests()
        .into_iter()
        .map(|r| r.depth)
        .collect();
    assert!(
        depths.iter().filter(|d| d.as_deref() == Some("1")).count() > 5,
        "{depths:?}"
    );
}

#[test]
fn batches_never_exceed_the_batch_size() {
    let account = Account::with_settings(SimOptions::default(), "batch_size = 7");
    account.sim().populate_sample();
    let report = account.sync().unwrap();
    assert!(report.new > 7);
    account.assert_mirrors_server();
}
