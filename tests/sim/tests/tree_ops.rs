//! Etag, mtime and size propagation, fileid stability, trash and restore,
//! seen both through the API and over WebDAV.

mod common;

use std::collections::HashMap;

use common::*;
use nextcloud_sim::{ChangeKind, SimEntry, SimError, SimOptions, Simulator};

fn by_path(sim: &Simulator) -> HashMap<String, SimEntry> {
    sim.listing()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

fn etag(sim: &Simulator, path: &str) -> String {
    sim.entry(path)
        .unwrap_or_else(|| panic!("{path} exists"))
        .etag
}

fn nested() -> Simulator {
    let sim = Simulator::new(SimOptions::default());
    sim.mkdir_all("/a/b/c").unwrap();
    sim.mkdir_all("/x/y").unwrap();
    sim.put("/a/b/c/f.txt", "12345").unwrap();
    sim.put("/a/side.txt", "side").unwrap();
    sim
}

#[test]
fn put_changes_every_ancestor_and_nothing_else() {
    let sim = nested();
    let before = by_path(&sim);
    let id = sim.fileid("/a/b/c/f.txt").unwrap();
    sim.advance_clock(1);
    assert_eq!(
        sim.put("/a/b/c/f.txt", "1234567890").unwrap(),
        id,
        "overwrite keeps the fileid"
    );
    let after = by_path(&sim);
    for p in ["/", "/a", "/a/b", "/a/b/c", "/a/b/c/f.txt"] {
        assert_ne!(before[p].etag, after[p].etag, "{p} should change");
    }
    for p in ["/a/side.txt", "/x", "/x/y"] {
        assert_eq!(before[p].etag, after[p].etag, "{p} should not change");
    }
    // One propagation gives all ancestors the same new etag, as Nextcloud's uniqid() does.
    assert_eq!(after["/a"].etag, after["/a/b/c"].etag);
    assert_eq!(after["/a/b/c/f.txt"].size, 10);
    assert_eq!(after["/a/b/c"].size, 10);
    assert_eq!(after["/a"].size, 14);
    assert_eq!(after["/"].size, 14);
    assert!(after["/a/b"].modified >= before["/a/b"].modified);
}

/// Nextcloud 32 keeps a file's etag when it is overwritten within the
/// second of its last write, whatever its size; its folders change.
#[test]
fn an_overwrite_within_the_same_second_keeps_the_files_etag() {
    let sim = nested();
    sim.stop_clock();
    sim.advance_clock(1);
    sim.put("/a/b/c/f.txt", "first").unwrap();
    let before = by_path(&sim);
    sim.put("/a/b/c/f.txt", "a longer second").unwrap();
    let after = by_path(&sim);
    assert_eq!(before["/a/b/c/f.txt"].etag, after["/a/b/c/f.txt"].etag);
    assert_eq!(after["/a/b/c/f.txt"].size, 15);
    assert_ne!(before["/a/b/c"].etag, after["/a/b/c"].etag);
    // A write with an explicit time (X-OC-MTime) is not one of them.
    sim.put_with_mtime("/a/b/c/f.txt", "third", 1_700_000_000)
        .unwrap();
    assert_ne!(etag(&sim, "/a/b/c/f.txt"), after["/a/b/c/f.txt"].etag);
}

#[test]
fn etags_have_the_real_formats_and_never_repeat() {
    let sim = nested();
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        sim.advance_clock(1);
        sim.put("/a/b/c/f.txt", format!("v{i}")).unwrap();
        let file = etag(&sim, "/a/b/c/f.txt");
        let folder = etag(&sim, "/a/b");
        assert_eq!(file.len(), 32);
        assert_eq!(folder.len(), 13);
        assert!(
            file.bytes()
                .chain(folder.bytes())
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(seen.insert(file) && seen.insert(folder));
    }
}

#[test]
fn rename_and_move_keep_ids_and_touch_both_sides() {
    let sim = nested();
    let before = by_path(&sim);
    let folder_id = sim.fileid("/a/b").unwrap();
    let file_id = sim.fileid("/a/b/c/f.txt").unwrap();
    sim.rename("/a/b", "/x/y/moved b").unwrap();
    let after = by_path(&sim);
    assert!(!after.contains_key("/a/b"));
    assert_eq!(after["/x/y/moved b"].fileid, folder_id);
    assert_eq!(
        after["/x/y/moved b/c/f.txt"].fileid, file_id,
        "the subtree moves along"
    );
    // Cache::move keeps the moved node's etag; only old and new ancestors change.
    assert_eq!(after["/x/y/moved b"].etag, before["/a/b"].etag);
    assert_eq!(
        after["/x/y/moved b/c/f.txt"].etag,
        before["/a/b/c/f.txt"].etag
    );
    for (old, new) in [("/", "/"), ("/a", "/a"), ("/x", "/x"), ("/x/y", "/x/y")] {
        assert_ne!(before[old].etag, after[new].etag, "{new}");
    }
    assert_eq!(after["/a/side.txt"].etag, before["/a/side.txt"].etag);
    assert_eq!(after["/a"].size, 4);
    assert_eq!(after["/x/y"].size, 5);
    assert_eq!(after["/"].size, 9);

    sim.rename("/a/side.txt", "/a/renamed.txt").unwrap();
    let changes = sim.changes();
    let last = changes.last().unwrap();
    assert_eq!(last.kind, ChangeKind::Moved);
    assert_eq!(last.old_path.as_deref(), Some("/a/side.txt"));
    assert_eq!(last.new_path.as_deref(), Some("/a/renamed.txt"));
    assert!(!last.is_folder);
}

#[test]
fn refused_operations_report_why() {
    let sim = nested();
    assert_eq!(sim.mkdir("/a"), Err(SimError::Exists("/a".into())));
    assert!(matches!(
        sim.mkdir("/nope/sub"),
        Err(SimError::ParentMissing(_))
    ));
    assert!(matches!(
        sim.put("/no/such/parent.txt", "x"),
        Err(SimError::ParentMissing(_))
    ));
    assert!(matches!(
        sim.put("/a/tab\tname.txt", "x"),
        Err(SimError::InvalidName(_))
    ));
    assert!(matches!(sim.put("/a/b", "x"), Err(SimError::IsAFolder(_))));
    assert!(matches!(
        sim.rename("/a", "/a/b/c/inside"),
        Err(SimError::InvalidMove(_))
    ));
    assert!(matches!(
        sim.rename("/a/side.txt", "/x"),
        Err(SimError::Exists(_))
    ));
    assert!(matches!(sim.delete("/"), Err(SimError::Root)));
    assert!(matches!(sim.delete("/missing"), Err(SimError::NotFound(_))));
    assert!(matches!(
        sim.restore(123_456),
        Err(SimError::NotInTrash(123_456))
    ));
    assert_eq!(sim.mkdir_all("/a/b").unwrap(), sim.fileid("/a/b").unwrap());
    assert!(matches!(
        sim.mkdir_all("/a/side.txt/z"),
        Err(SimError::NotAFolder(_))
    ));
}

#[test]
fn delete_and_restore_keep_fileids_and_propagate() {
    let sim = nested();
    let ids: HashMap<String, u64> = sim
        .listing()
        .into_iter()
        .map(|e| (e.path, e.fileid))
        .collect();
    let before = by_path(&sim);
    sim.delete("/a/b").unwrap();
    let gone = by_path(&sim);
    assert!(!gone.contains_key("/a/b") && !gone.contains_key("/a/b/c/f.txt"));
    assert_ne!(gone["/a"].etag, before["/a"].etag);
    assert_ne!(gone["/"].etag, before["/"].etag);
    assert_eq!(gone["/a"].size, 4);
    assert_eq!(sim.fileid("/a/b/c"), None);

    sim.restore(ids["/a/b"]).unwrap();
    let back = by_path(&sim);
    for p in ["/a/b", "/a/b/c", "/a/b/c/f.txt"] {
        assert_eq!(back[p].fileid, ids[p], "{p}");
    }
    assert_ne!(back["/a"].etag, gone["/a"].etag);
    assert_eq!(back["/a"].size, 9);
    assert!(matches!(
        sim.restore(ids["/a/b"]),
        Err(SimError::NotInTrash(_))
    ));

    let kinds: Vec<ChangeKind> = sim.changes().iter().rev().take(2).map(|c| c.kind).collect();
    assert_eq!(kinds, vec![ChangeKind::Restored, ChangeKind::Deleted]);
}

#[test]
fn restore_falls_back_to_root_and_avoids_clashes() {
    let sim = nested();
    let id = sim.fileid("/a/b/c/f.txt").unwrap();
    sim.delete("/a/b/c/f.txt").unwrap();
    sim.delete("/a/b").unwrap();
    sim.restore(id).unwrap();
    assert_eq!(
        sim.fileid("/f.txt"),
        Some(id),
        "original folder is in the trash"
    );

    let side = sim.fileid("/a/side.txt").unwrap();
    sim.delete("/a/side.txt").unwrap();
    sim.put("/a/side.txt", "newcomer").unwrap();
    sim.restore(side).unwrap();
    assert_eq!(sim.fileid("/a/side (restored).txt"), Some(side));
}

#[test]
fn webdav_view_agrees_with_the_listing_after_changes() {
    let server = sample_server();
    let sim = server.simulator();
    let before = parse_multistatus(&propfind(&server, "", Some("infinity")).body);
    sim.put("/Deep/level 01/level 02/new.txt", "deep write")
        .unwrap();
    sim.rename("/Documents/notes.md", "/Projects/notes.md")
        .unwrap();
    sim.delete("/Music").unwrap();
    let after = parse_multistatus(&propfind(&server, "", Some("infinity")).body);
    let truth = sim.listing();
    assert_eq!(after.len(), truth.len());
    for (r, e) in after.iter().zip(&truth) {
        assert_eq!(
            r.text("oc:fileid").parse::<u64>().unwrap(),
            e.fileid,
            "{}",
            e.path
        );
        assert_eq!(r.text("d:getetag"), format!("\"{}\"", e.etag), "{}", e.path);
        assert_eq!(
            r.text("oc:size").parse::<u64>().unwrap(),
            e.size,
            "{}",
            e.path
        );
        assert_eq!(r.text("oc:permissions"), e.permissions);
        assert_eq!(r.is_collection(), e.is_folder);
    }
    let etag_of = |rs: &[DavResponse], suffix: &str| find(rs, suffix).text("d:getetag").to_string();
    for folder in [
        "/alice/",
        "/Deep/",
        "/Deep/level%2001/",
        "/Deep/level%2001/level%2002/",
        "/Documents/",
        "/Projects/",
    ] {
        assert_ne!(
            etag_of(&before, folder),
            etag_of(&after, folder),
            "{folder}"
        );
    }
    assert_eq!(etag_of(&before, "/Photos/"), etag_of(&after, "/Photos/"));
    assert_eq!(
        find(&before, "/Documents/notes.md").text("oc:fileid"),
        find(&after, "/Projects/notes.md").text("oc:fileid")
    );
}

#[test]
fn sample_tree_has_the_promised_cases() {
    let sim = Simulator::new(SimOptions::default());
    sim.populate_sample();
    let entries = sim.listing();
    assert!(
        (40..=60).contains(&entries.len()),
        "{} entries",
        entries.len()
    );
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "/Documents/readme.txt",
        "/Documents/Archive/2019/old.txt",
        "/Reports 2024/Q1 résumé.pdf",
        "/Reports 2024/Drafts/draft 1.txt",
        "/100% pure.txt",
        "/Spécial #1 & 100% done/日本語.txt",
        "/Spécial #1 & 100% done/emoji 🎉.txt",
        "/Projects/alpha/files",
    ] {
        assert!(paths.contains(&p), "{p}");
    }
    let deepest = entries
        .iter()
        .filter(|e| e.is_folder)
        .map(|e| e.path.matches('/').count())
        .max();
    assert!(deepest >= Some(12));
    assert!(
        entries
            .iter()
            .filter(|e| !e.is_folder && e.size >= 1_000_000)
            .count()
            >= 3
    );
    let old = entries
        .iter()
        .find(|e| e.path == "/Documents/Archive/2019/old.txt")
        .unwrap();
    assert_eq!(old.modified, 1_577_880_000);
}

#[test]
fn generate_is_deterministic_and_realistic() {
    let shape = |seed| {
        let sim = Simulator::new(SimOptions::default());
        sim.generate(3_000, seed);
        sim.listing()
            .into_iter()
            .map(|e| (e.fileid, e.path, e.is_folder, e.size))
            .collect::<Vec<_>>()
    };
    let a = shape(7);
    assert_eq!(a, shape(7));
    assert_ne!(a, shape(8));
    assert_eq!(a.len(), 3_001, "entries plus the root");
    let folders = a.iter().filter(|e| e.2).count();
    assert!((150..=600).contains(&folders), "{folders} folders");
    let depth = a.iter().map(|e| e.1.matches('/').count()).max().unwrap();
    assert!((3..=9).contains(&depth), "depth {depth}");
    assert!(a.iter().any(|e| e.1.contains(' ')));
    assert!(a.iter().any(|e| !e.1.is_ascii()));
    assert!(
        a.iter()
            .all(|e| e.1 == "/"
                || (5..=40).contains(&e.1.rsplit('/').next().unwrap().chars().count()))
    );
    let sizes: Vec<u64> = a.iter().filter(|e| !e.2).map(|e| e.3).collect();
    assert!(sizes.iter().any(|&s| s < 100) && sizes.iter().any(|&s| s > 1_000_000));
    let sim = Simulator::new(SimOptions::default());
    sim.generate(500, 1);
    assert!(
        sim.changes().is_empty(),
        "generated files predate the activity log"
    );
}
