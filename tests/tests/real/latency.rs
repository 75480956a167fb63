//! What a full sync costs next to the cheapest way to read the same tree: one
//! raw `PROPFIND Depth: infinity`, on the real server, in the same run. The
//! test asserts only that the syncs mirror the server (speed goals live in
//! the benchmarks, never in timed tests); the numbers are printed, and
//! written as JSON to the file `LATENCY_REPORT` names, if any:
//!
//! ```sh
//! LATENCY_REPORT=latency.json cargo test -p tests --test e2e real::latency -- --nocapture
//! ```
//!
//! Under `cargo test` the host is a debug build (the guest is the release
//! component either way); `LATENCY_CLI` names another `host-runner-e2e` to
//! time, such as a release build's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connector::propfind::PROPFIND_BODY;
use tests::nextcloud::{Dav, Listing, RealServer};
use tests::remote::{RemoteAccount, assert_mirrors};

/// A user of this test's own: `server()` clears alice's and bob's homes
/// before every test, so a tree of theirs would be rebuilt each time.
const USER: &str = "carol";
/// Timed runs of each measure; the median is reported.
const RUNS: usize = 3;

/// Root files; then each of 10 top folders holds 6 files and 4 folders,
/// each of those 12 files and 6 folders, each of those 9 files: 290 folders
/// and 2,710 files, 3,000 entries below the root.
const ROOT_FILES: usize = 10;
const TOP: [&str; 10] = [
    "Projekte",
    "Überblick 2024",
    "Fotos & Videos",
    "日本語 資料",
    "Archiv (alt)",
    "Rechnungen",
    "Équipe",
    "notes",
    "Budget Q1",
    "Ørsted data",
];
const MIDDLE: usize = 4;
const LEAVES: usize = 6;
const FILE_STEMS: [&str; 5] = ["report", "Änderung", "café menu", "plan 😀", "données"];

/// The tree, by path: `None` for a folder, the content for a file. Small,
/// varied sizes; the same every run, so a tree already there is reused.
fn tree() -> BTreeMap<String, Option<Vec<u8>>> {
    fn files(tree: &mut BTreeMap<String, Option<Vec<u8>>>, folder: &str, count: usize) {
        for i in 0..count {
            let path = format!("{folder}/{} {i}.txt", FILE_STEMS[i % FILE_STEMS.len()]);
            let content = format!("{path}\n").repeat(1 + i % 4).into_bytes();
            tree.insert(path, Some(content));
        }
    }
    let mut tree = BTreeMap::new();
    files(&mut tree, "", ROOT_FILES);
    for top in TOP {
        let top = format!("/{top}");
        tree.insert(top.clone(), None);
        files(&mut tree, &top, 6);
        for m in 0..MIDDLE {
            let middle = format!("{top}/Teil {m}");
            tree.insert(middle.clone(), None);
            files(&mut tree, &middle, 12);
            for l in 0..LEAVES {
                let leaf = format!("{middle}/dossier é {l}");
                tree.insert(leaf.clone(), None);
                files(&mut tree, &leaf, 9);
            }
        }
    }
    tree
}

/// What a listing says of the tree in `tree()`'s terms: folder, or a
/// file's size; the root left out.
fn shape(listing: &Listing) -> BTreeMap<&str, Option<u64>> {
    listing
        .values()
        .filter(|e| e.path != "/")
        .map(|e| (e.path.as_str(), (!e.is_folder).then_some(e.size)))
        .collect()
}

fn matches(listing: &Listing, tree: &BTreeMap<String, Option<Vec<u8>>>) -> bool {
    let want: BTreeMap<&str, Option<u64>> = tree
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_ref().map(|c| c.len() as u64)))
        .collect();
    shape(listing) == want
}

/// Writes the tree straight into the user's data directory and has
/// Nextcloud scan it: 3,000 PUTs over WebDAV would take minutes, this takes
/// seconds. Whatever was there before goes.
fn write_on_disk(
    server: &RealServer,
    tree: &BTreeMap<String, Option<Vec<u8>>>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let data = server.data_dir()?;
    // The PHP server must be able to write what we create (rename, delete):
    // it runs as the owner of the data directory, so that is who owns them.
    let owner = std::fs::metadata(&data)?;
    let chown = |path: &Path| -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if (meta.uid(), meta.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))?;
        }
        Ok(())
    };
    let home = data.join(USER);
    let files = home.join("files");
    if files.exists() {
        std::fs::remove_dir_all(&files)?;
    }
    std::fs::create_dir_all(&files)?;
    chown(&home)?;
    chown(&files)?;
    // In path order, a folder comes before what it holds.
    for (path, content) in tree {
        let on_disk = files.join(path.trim_start_matches('/'));
        match content {
            None => std::fs::create_dir(&on_disk)?,
            Some(bytes) => std::fs::write(&on_disk, bytes)?,
        }
        chown(&on_disk)?;
    }
    server.occ(&["files:scan", USER])?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One raw `PROPFIND Depth: infinity` of the whole home, with the
/// connector's own property body, the answer read to its end: its time,
/// its size and how many entries it holds.
fn raw_propfind(dav: &Dav) -> (Duration, usize, usize) {
    let started = Instant::now();
    let reply = dav
        .send(
            "PROPFIND",
            &dav.url_of("/"),
            &[("Depth", "infinity"), ("Content-Type", "application/xml")],
            PROPFIND_BODY.as_bytes(),
        )
        .expect("the PROPFIND answers");
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 207, "{}", reply.text());
    // Counted, not parsed: enough to know the whole tree came.
    let responses = reply.text().matches("<d:response>").count();
    (elapsed, reply.body.len(), responses)
}

/// About 3,000 entries: a full sync into a fresh database, 3 times, against
/// 3 raw `PROPFIND Depth: infinity` of the same tree; every sync mirrors the
/// server.
#[test]
fn a_full_sync_of_3000_entries_next_to_one_raw_propfind() {
    let server = match RealServer::from_env() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    if server.occ.is_none() {
        eprintln!(
            "skipped: the tree is written on the server's disk, and NEXTCLOUD_TEST_OCC is not set"
        );
        return;
    }
    // No other test's load on the server while this one times it.
    let _lock = super::lock(&server);

    let started = Instant::now();
    let password = server.ensure_user(USER).expect("the user is there");
    let dav = Dav::new(&server.url, USER, &password);
    let tree = tree();
    // The listing is also the warm-up: the first PROPFIND after a start is
    // slow, and the server's caches fill.
    let mut listing = dav.listing().expect("the listing");
    let reused = matches(&listing, &tree);
    if !reused {
        write_on_disk(&server, &tree).expect("the tree is written and scanned");
        listing = dav.listing().expect("the listing");
        assert!(
            matches(&listing, &tree),
            "after the scan the server lists another tree"
        );
    }
    let setup = started.elapsed();
    let entries = listing.len() - 1;
    let folders = listing.values().filter(|e| e.is_folder).count() - 1;
    eprintln!(
        "tree of {entries} entries ({folders} folders) {} in {:.1} s",
        if reused {
            "reused"
        } else {
            "written and scanned"
        },
        setup.as_secs_f64()
    );
    // A warm-up with the connector's own body too, untimed.
    raw_propfind(&dav);
    let cli = std::env::var_os("LATENCY_CLI")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_host-runner-e2e").into());

    let mut raw = Vec::new();
    let mut raw_bytes = 0;
    let mut sync = Vec::new();
    let mut wall = Vec::new();
    let mut requests = Vec::new();
    let mut sync_bytes = Vec::new();
    // Interleaved, so that a drift in the server's speed (another process,
    // a cache) weighs on both measures alike.
    for run in 0..RUNS {
        let (elapsed, bytes, responses) = raw_propfind(&dav);
        assert_eq!(responses, listing.len(), "raw PROPFIND {run}: entries");
        raw.push(ms(elapsed));
        raw_bytes = bytes;

        let account = RemoteAccount::new(&cli, &server.url, USER, &password, "");
        let started = Instant::now();
        let report = account.sync();
        wall.push(ms(started.elapsed()));
        assert_eq!(report.mode(), "full", "sync {run}: a fresh database");
        sync.push(report.count("duration_ms") as f64);
        requests.push(report.count("requests"));
        sync_bytes.push(report.count("bytes_received"));
        assert_mirrors(&account.records(), &listing);
    }

    let (raw_ms, sync_ms, wall_ms) = (median(&raw), median(&sync), median(&wall));
    let ratio = sync_ms / raw_ms;
    let ratio_wall = wall_ms / raw_ms;
    eprintln!("host:                    {}", cli.display());
    eprintln!("entries:                 {entries} ({folders} folders)");
    eprintln!("raw PROPFIND median:     {raw_ms:.0} ms, {raw_bytes} bytes (runs {raw:.0?})");
    eprintln!("full sync median:        {sync_ms:.0} ms duration_ms (runs {sync:.0?})");
    eprintln!("full sync wall median:   {wall_ms:.0} ms, process included (runs {wall:.0?})");
    eprintln!("full sync requests:      {requests:?}, bytes received {sync_bytes:?}");
    eprintln!("ratio full/raw:          {ratio:.2} (wall {ratio_wall:.2})");

    if let Some(path) = std::env::var_os("LATENCY_REPORT").filter(|p| !p.is_empty()) {
        let report = serde_json::json!({
            "host": cli.display().to_string(),
            "entries": entries,
            "folders": folders,
            "tree_reused": reused,
            "setup_ms": ms(setup),
            "runs": RUNS,
            "raw_propfind_ms": { "median": raw_ms, "runs": raw },
            "raw_propfind_bytes": raw_bytes,
            "full_sync_duration_ms": { "median": sync_ms, "runs": sync },
            "full_sync_wall_ms": { "median": wall_ms, "runs": wall },
            "full_sync_requests": requests,
            "full_sync_bytes_received": sync_bytes,
            "ratio": ratio,
            "ratio_wall": ratio_wall,
        });
        std::fs::write(&path, format!("{report:#}\n"))
            .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
    }
}
