//! Sync costs on a generated tree: a full sync, then incremental syncs after
//! no change and after k changes.
//!
//! The simulator runs in the benchmark's process; each sync is a
//! `host-runner-e2e sync --json` child, so its CPU and memory are its own.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use nextcloud_sim::SimOptions;
use tests::{Account, PASSWORD, PASSWORD_ENV};

use crate::process::{Cost, fail, run};

/// One sync as the child reported it and as it cost.
pub struct SyncRun {
    pub cost: Cost,
    pub requests: u64,
    pub bytes_received: u64,
    /// Storage commits (0 when the summary does not say).
    pub commits: u64,
}

/// A full sync of a generated tree.
pub struct FullSync {
    pub entries: usize,
    /// What the simulator lists, the root included: what the sync must mirror.
    pub listed: usize,
    pub run: SyncRun,
}

/// An incremental sync after `changes` files were edited (0: no change).
pub struct IncrementalSync {
    pub changes: usize,
    pub run: SyncRun,
}

/// A simulator holding `entries` generated entries below the root, and an
/// account on it with no database yet.
pub fn generated(entries: usize) -> Account {
    let account = Account::new(SimOptions::default());
    let started = Instant::now();
    account.sim().generate(entries, 42);
    note!(
        "generated {entries} entries in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    account
}

pub fn sync(account: &Account, host_runner_e2e: &Path) -> SyncRun {
    let out_path = account.dir.path().join("sync.json");
    let err_path = account.dir.path().join("sync.stderr");
    let out = File::create(&out_path).unwrap();
    let err = File::create(&err_path).unwrap();
    let (status, cost) = run(Command::new(host_runner_e2e)
        .args(["sync", "--json", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .stdout(out)
        .stderr(err));
    let output = std::fs::read_to_string(&out_path).unwrap();
    if !status.success() {
        fail(&format!(
            "sync failed ({status}): {output}{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        ));
    }
    let summary: serde_json::Value = serde_json::from_str(output.trim())
        .unwrap_or_else(|e| fail(&format!("sync --json printed no object ({e}): {output}")));
    let count = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| fail(&format!("sync --json has no `{key}`: {output}")))
    };
    SyncRun {
        cost,
        requests: count("requests"),
        bytes_received: count("bytes_received"),
        commits: summary["commits"].as_u64().unwrap_or(0),
    }
}

pub fn full(account: &Account, host_runner_e2e: &Path, entries: usize) -> FullSync {
    let listed = account.sim().listing().len();
    let run = sync(account, host_runner_e2e);
    note!(
        "full sync of {listed} entries: {:.2} s, {} requests",
        run.cost.seconds,
        run.requests
    );
    FullSync {
        entries,
        listed,
        run,
    }
}

/// `count` distinct indices below `n`, spread over it, different per round.
fn spread(n: usize, count: usize, round: usize) -> impl Iterator<Item = usize> {
    // A prime stride that does not divide `n` visits every index once
    // before repeating; two such primes cannot both divide any n below 62M.
    let stride = if n.is_multiple_of(7919) { 7927 } else { 7919 };
    let start = round * 104_729;
    (0..count).map(move |i| (start + i * stride) % n)
}

/// A sync with nothing changed, then one after each k edits (rounds whose
/// k exceeds the number of files are skipped); after each, the records must
/// mirror the server.
pub fn incremental(
    account: &Account,
    host_runner_e2e: &Path,
    changes: &[usize],
) -> Vec<IncrementalSync> {
    let mut out = Vec::new();
    let quiet = sync(account, host_runner_e2e);
    note!("no-change sync: {} requests", quiet.requests);
    out.push(IncrementalSync {
        changes: 0,
        run: quiet,
    });
    let files: Vec<String> = account
        .sim()
        .listing()
        .into_iter()
        .filter(|e| !e.is_folder)
        .map(|e| e.path)
        .collect();
    for (round, &k) in changes.iter().enumerate() {
        if k > files.len() {
            note!("skipping {k} changes: the tree has {} files", files.len());
            continue;
        }
        for (i, at) in spread(files.len(), k, round).enumerate() {
            account
                .sim()
                .put(&files[at], format!("edit {round} {i}"))
                .unwrap();
        }
        let run = sync(account, host_runner_e2e);
        note!(
            "{k}-change sync: {} requests, {:.2} s",
            run.requests,
            run.cost.seconds
        );
        account.assert_mirrors_server();
        out.push(IncrementalSync { changes: k, run });
    }
    out
}

#[cfg(test)]
mod checks {
    use super::spread;

    #[test]
    fn spread_indices_are_distinct() {
        for n in [1, 2, 7919, 7919 * 3, 10_000, 90_001] {
            let k = n.min(10_000);
            let mut seen: Vec<usize> = spread(n, k, 3).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), k, "n = {n}");
        }
    }
}
