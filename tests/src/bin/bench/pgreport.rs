//! The PostgreSQL sections of the report: SQLite against PostgreSQL on the
//! same trees, and workers sharing accounts.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::backends::{BackendRun, FeedRead};
use crate::report::{Results, num, opt, round, size, table};
use crate::workers::WorkersRun;

pub fn tables(out: &mut String, r: &Results) {
    if !r.backends.is_empty() {
        backends_table(out, r);
    }
    if !r.workers.is_empty() {
        workers_table(out, r);
    }
}

/// `postgres / sqlite` of one quantity on the same tree.
fn ratio(pg: &BackendRun, sqlite: &BackendRun, f: impl Fn(&BackendRun) -> f64) -> String {
    num(f(pg) / f(sqlite))
}

fn feed_cell(f: &FeedRead) -> String {
    num(f.per_second())
}

fn backends_table(out: &mut String, r: &Results) {
    let limit = r.backends.first().map_or(0, |b| b.feed.limit);
    let _ = writeln!(
        out,
        "### Full sync and feed read: SQLite against PostgreSQL (same tree, same run)\n\n\
         Full sync: `host-runner sync` as a child into a fresh store. PostgreSQL CPU: the \
         server's processes (from /proc) during the sync; SQLite does that work inside \
         host-runner. Feed: every change read back after the full sync, in process \
         (`Store::feed().read`, pages of up to {limit}) and by `host-runner changes --json \
         --since S --limit {limit}`, one process per page.\n"
    );
    let mut rows = Vec::new();
    for b in &r.backends {
        rows.push(vec![
            size(b.entries),
            b.backend.to_string(),
            num(b.sync.cost.seconds),
            num(b.wall_us_per_entry()),
            num(b.sync.cost.cpu_seconds),
            num(b.cpu_us_per_entry()),
            opt(b.db_cpu_seconds),
            num(b.total_cpu_us_per_entry()),
            num(b.sync.cost.server_cpu_seconds),
            b.sync.commits.to_string(),
            num(b.sync.cost.peak_mib()),
            b.feed.changes.to_string(),
            feed_cell(&b.feed),
            format!("{} ({} proc.)", feed_cell(&b.feed_cli), b.feed_cli.calls),
            opt(b.feed_cli.db_cpu_seconds),
        ]);
    }
    // A ratio row per tree where both backends ran.
    for sqlite in r.backends.iter().filter(|b| b.backend == "sqlite") {
        let Some(pg) = r
            .backends
            .iter()
            .find(|b| b.backend == "postgres" && b.entries == sqlite.entries)
        else {
            continue;
        };
        rows.push(vec![
            size(sqlite.entries),
            "postgres / sqlite".into(),
            ratio(pg, sqlite, |b| b.sync.cost.seconds),
            ratio(pg, sqlite, |b| b.wall_us_per_entry()),
            ratio(pg, sqlite, |b| b.sync.cost.cpu_seconds),
            ratio(pg, sqlite, |b| b.cpu_us_per_entry()),
            String::new(),
            ratio(pg, sqlite, |b| b.total_cpu_us_per_entry()),
            ratio(pg, sqlite, |b| b.sync.cost.server_cpu_seconds),
            String::new(),
            ratio(pg, sqlite, |b| b.sync.cost.peak_mib()),
            String::new(),
            ratio(pg, sqlite, |b| b.feed.per_second()),
            ratio(pg, sqlite, |b| b.feed_cli.per_second()),
            String::new(),
        ]);
    }
    table(
        out,
        [
            "entries",
            "backend",
            "sync wall (s)",
            "wall/entry (µs)",
            "host CPU (s)",
            "host CPU/entry (µs)",
            "PostgreSQL CPU (s)",
            "host+DB CPU/entry (µs)",
            "simulator CPU (s)",
            "commits",
            "peak RSS (MiB)",
            "feed changes",
            "feed in process (changes/s)",
            "feed via CLI (changes/s)",
            "PostgreSQL CPU, CLI feed (s)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    );
}

fn workers_table(out: &mut String, r: &Results) {
    let first = &r.workers[0];
    let max_workers = r.workers.iter().map(|w| w.workers).max().unwrap_or(1);
    let _ = writeln!(
        out,
        "### Workers sharing {} accounts × {} entries on one PostgreSQL database\n\n\
         `host-runner run --json` processes on one configuration of {} `[[account]]` tables, \
         sharing them by lease; the time runs from starting the workers (component load \
         included) to the last account's first (full) sync. Each worker count starts on a \
         fresh database.\n",
        first.accounts,
        size(first.entries_per_account),
        first.accounts,
    );
    if r.cores < max_workers.max(2) * 2 {
        let _ = writeln!(
            out,
            "**This machine has {} CPU core{} (nproc).** The workers, the PostgreSQL \
             server and the simulators (threads of the benchmark's own process) all share \
             {}, so the scaling below is bounded by the machine, not only by the workers: \
             compare the CPU columns with {} core-seconds per second of wall time.\n",
            r.cores,
            if r.cores == 1 { "" } else { "s" },
            if r.cores == 1 { "it" } else { "them" },
            r.cores,
        );
    }
    let base = r
        .workers
        .iter()
        .find(|w| w.workers == 1)
        .unwrap_or(first)
        .entries_per_second();
    let busy = |w: &WorkersRun| {
        (w.worker_cpu_seconds + w.db_cpu_seconds.unwrap_or(0.0) + w.simulator_cpu_seconds)
            / w.seconds
    };
    if let Some(one) = r.workers.iter().find(|w| w.workers == 1)
        && busy(one) < 0.9 * r.cores as f64
        && r.workers
            .iter()
            .any(|w| w.entries_per_second() / base > r.cores as f64)
    {
        let cpu: Vec<String> = r
            .workers
            .iter()
            .map(|w| {
                let total = w.worker_cpu_seconds
                    + w.db_cpu_seconds.unwrap_or(0.0)
                    + w.simulator_cpu_seconds;
                format!("{} s with {}", num(total), w.workers)
            })
            .collect();
        let _ = writeln!(
            out,
            "Scaling above the number of cores: one worker keeps only {} of {} cores \
             busy, waiting on round trips (several PostgreSQL statements per record), and \
             more workers fill those waits. The same work cost, in CPU of workers, \
             PostgreSQL and simulators: {}.\n",
            num(busy(one)),
            r.cores,
            cpu.join(", "),
        );
    }
    let rows = r
        .workers
        .iter()
        .map(|w| {
            let total_cpu =
                w.worker_cpu_seconds + w.db_cpu_seconds.unwrap_or(0.0) + w.simulator_cpu_seconds;
            vec![
                w.workers.to_string(),
                w.synced_entries.to_string(),
                num(w.seconds),
                num(w.entries_per_second()),
                num(w.entries_per_second() / base),
                num(w.worker_cpu_seconds),
                opt(w.db_cpu_seconds),
                num(w.simulator_cpu_seconds),
                num(total_cpu / w.seconds),
                num(w.mean_account_seconds),
                format!("{:?}", w.per_worker),
            ]
        })
        .collect();
    table(
        out,
        [
            "workers",
            "entries synced",
            "wall (s)",
            "entries/s",
            "scaling vs 1 worker",
            "workers CPU (s)",
            "PostgreSQL CPU (s)",
            "simulator CPU (s)",
            "cores busy (CPU s / wall s)",
            "mean account sync (s)",
            "accounts per worker",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    );
}

fn feed_json(f: &FeedRead) -> Value {
    json!({
        "limit": f.limit,
        "changes": f.changes,
        "calls": f.calls,
        "seconds": round(f.seconds),
        "changes_per_s": round(f.per_second()),
        "cpu_s": round(f.cpu_seconds),
        "postgres_cpu_s": f.db_cpu_seconds.map(round),
    })
}

pub fn backends_json(r: &Results) -> Value {
    r.backends
        .iter()
        .map(|b| {
            json!({
                "entries": b.entries,
                "listed": b.listed,
                "backend": b.backend,
                "wall_s": round(b.sync.cost.seconds),
                "wall_us_per_entry": round(b.wall_us_per_entry()),
                "cpu_s": round(b.sync.cost.cpu_seconds),
                "cpu_us_per_entry": round(b.cpu_us_per_entry()),
                "postgres_cpu_s": b.db_cpu_seconds.map(round),
                "host_and_db_cpu_us_per_entry": round(b.total_cpu_us_per_entry()),
                "simulator_cpu_s": round(b.sync.cost.server_cpu_seconds),
                "peak_rss_mib": round(b.sync.cost.peak_mib()),
                "requests": b.sync.requests,
                "commits": b.sync.commits,
                "feed_in_process": feed_json(&b.feed),
                "feed_cli": feed_json(&b.feed_cli),
            })
        })
        .collect()
}

pub fn workers_json(r: &Results) -> Value {
    let base = r
        .workers
        .iter()
        .find(|w| w.workers == 1)
        .or(r.workers.first())
        .map(WorkersRun::entries_per_second);
    let runs: Vec<Value> = r
        .workers
        .iter()
        .map(|w| {
            json!({
                "workers": w.workers,
                "accounts": w.accounts,
                "entries_per_account": w.entries_per_account,
                "synced_entries": w.synced_entries,
                "wall_s": round(w.seconds),
                "entries_per_s": round(w.entries_per_second()),
                "scaling_vs_1": base.map(|b| round(w.entries_per_second() / b)),
                "workers_cpu_s": round(w.worker_cpu_seconds),
                "postgres_cpu_s": w.db_cpu_seconds.map(round),
                "simulator_cpu_s": round(w.simulator_cpu_seconds),
                "mean_account_sync_s": round(w.mean_account_seconds),
                "accounts_per_worker": w.per_worker,
            })
        })
        .collect();
    json!({ "cores": r.cores, "runs": runs })
}
