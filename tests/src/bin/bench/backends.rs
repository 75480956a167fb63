//! PostgreSQL against SQLite on the same generated tree (`--compare-backends`):
//! a full sync into a fresh store of each kind, then the whole change feed
//! read back, in this process through `Store::feed` and as an indexer would,
//! page by page with `host-runner changes --json`.
//!
//! The PostgreSQL server is another process: its CPU is read from `/proc`
//! (the postmaster, its live backends and those it has reaped), so the
//! database's share of the work shows next to the host's.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use host_runner::Store;
use nextcloud_sim::Server;
use tests::postgres::Postgres;
use tests::{Account, Backend, PASSWORD, PASSWORD_ENV};

use crate::process::{Cost, fail, run};
use crate::sync::{self, SyncRun};

/// One whole read of the feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedRead {
    /// Changes asked for per read.
    pub limit: u32,
    pub changes: u64,
    /// Reads (in process) or `host-runner changes` processes (CLI).
    pub calls: u64,
    pub seconds: f64,
    /// The reader's CPU: this thread, or the `changes` children.
    pub cpu_seconds: f64,
    /// The PostgreSQL server's CPU meanwhile.
    pub db_cpu_seconds: Option<f64>,
}

impl FeedRead {
    pub fn per_second(&self) -> f64 {
        self.changes as f64 / self.seconds
    }
}

/// One backend on one tree.
pub struct BackendRun {
    pub backend: &'static str,
    pub entries: usize,
    /// What the simulator lists, the root included.
    pub listed: usize,
    pub sync: SyncRun,
    /// The PostgreSQL server's CPU during the sync.
    pub db_cpu_seconds: Option<f64>,
    pub feed: FeedRead,
    pub feed_cli: FeedRead,
}

impl BackendRun {
    pub fn cpu_us_per_entry(&self) -> f64 {
        self.sync.cost.cpu_seconds * 1e6 / self.listed as f64
    }

    /// Host plus database server, per entry.
    pub fn total_cpu_us_per_entry(&self) -> f64 {
        (self.sync.cost.cpu_seconds + self.db_cpu_seconds.unwrap_or(0.0)) * 1e6 / self.listed as f64
    }

    pub fn wall_us_per_entry(&self) -> f64 {
        self.sync.cost.seconds * 1e6 / self.listed as f64
    }
}

/// A fresh store of `backend` for the account on `server`.
fn fresh(server: &Arc<Server>, backend: Backend) -> Account {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("connector.toml");
    std::fs::write(
        &config_path,
        format!(
            "base_url = \"{}\"\nusername = \"{}\"\napp_password_env = \"{PASSWORD_ENV}\"\n{}",
            server.base_url(),
            server.simulator().options().login,
            backend.settings(dir.path()),
        ),
    )
    .unwrap();
    let password = dir.path().join("db-password");
    if let Backend::Postgres(pg) = &backend {
        crate::workers::private_password(&password, pg.password());
    }
    Account {
        server: server.clone(),
        dir,
        config_path,
        component: tests::connector_wasm(),
        backend,
    }
}

/// Both backends on one generated tree of `entries`, SQLite first.
pub fn compare(
    entries: usize,
    pg: &Arc<Postgres>,
    host_runner_e2e: &Path,
    host_runner: &Path,
    feed_limit: u32,
) -> Vec<BackendRun> {
    let tree = sync::generated(entries);
    let listed = tree.sim().listing().len();
    let db = DbCpu::find(pg.port());
    if db.is_none() {
        note!("cannot find the PostgreSQL server in /proc: its CPU is not reported");
    }
    let backends = [
        ("sqlite", Backend::Sqlite),
        ("postgres", Backend::Postgres(pg.clone())),
    ];
    backends
        .into_iter()
        .map(|(name, backend)| {
            // The server's CPU counts only where it holds the store.
            let db = matches!(backend, Backend::Postgres(_))
                .then_some(db.as_ref())
                .flatten();
            let account = fresh(&tree.server, backend);
            let before = db.and_then(DbCpu::seconds);
            let run = sync::sync(&account, host_runner_e2e);
            let db_cpu = delta(before, db.and_then(DbCpu::seconds));
            note!(
                "{name}: full sync of {listed} entries: {:.2} s wall, {:.2} s host CPU{}",
                run.cost.seconds,
                run.cost.cpu_seconds,
                db_cpu.map_or(String::new(), |c| format!(", {c:.2} s PostgreSQL CPU"))
            );
            account.assert_mirrors_server();
            let feed = feed_in_process(&account, feed_limit, db);
            note!(
                "{name}: feed read in process: {} changes in {:.2} s",
                feed.changes,
                feed.seconds
            );
            let feed_cli = feed_cli(&account, host_runner, feed_limit, db);
            note!(
                "{name}: feed read by `host-runner changes`: {} changes in {:.2} s, {} processes",
                feed_cli.changes,
                feed_cli.seconds,
                feed_cli.calls
            );
            if feed.changes != feed_cli.changes {
                fail(&format!(
                    "{name}: the feed read in process has {} changes, the CLI printed {}",
                    feed.changes, feed_cli.changes
                ));
            }
            BackendRun {
                backend: name,
                entries,
                listed,
                sync: run,
                db_cpu_seconds: db_cpu,
                feed,
                feed_cli,
            }
        })
        .collect()
}

fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// User plus system CPU of the calling thread.
fn thread_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// The whole feed through `Store::feed().read`, `limit` per read; the
/// connection is part of the time.
fn feed_in_process(account: &Account, limit: u32, db: Option<&DbCpu>) -> FeedRead {
    let config = account.config();
    let db_before = db.and_then(DbCpu::seconds);
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let store = Store::connect_existing(&config)
        .unwrap_or_else(|e| fail(&format!("the store does not open: {e}")));
    let feed = store.feed();
    let (mut since, mut changes, mut calls) = (0, 0u64, 0u64);
    loop {
        let batch = feed
            .read(since, limit)
            .unwrap_or_else(|e| fail(&format!("feed read after {since}: {e}")));
        calls += 1;
        changes += batch.len() as u64;
        match batch.last() {
            Some(last) if batch.len() as u32 == limit => since = last.seq,
            _ => break,
        }
    }
    drop(store);
    FeedRead {
        limit,
        changes,
        calls,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: thread_cpu() - cpu_before,
        db_cpu_seconds: delta(db_before, db.and_then(DbCpu::seconds)),
    }
}

/// The whole feed as an indexer polling the CLI reads it: `host-runner
/// changes --json --since S --limit L`, one process per page, until a page
/// comes back short.
fn feed_cli(account: &Account, host_runner: &Path, limit: u32, db: Option<&DbCpu>) -> FeedRead {
    let out_path = account.dir.path().join("changes.jsonl");
    let err_path = account.dir.path().join("changes.stderr");
    let db_before = db.and_then(DbCpu::seconds);
    let started = Instant::now();
    let (mut since, mut changes, mut calls, mut cpu) = (0i64, 0u64, 0u64, 0.0);
    loop {
        let (status, cost): (_, Cost) = run(Command::new(host_runner)
            .args(["changes", "--json", "--since", &since.to_string()])
            .args(["--limit", &limit.to_string(), "--config"])
            .arg(&account.config_path)
            .env(PASSWORD_ENV, PASSWORD)
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap()));
        calls += 1;
        cpu += cost.cpu_seconds;
        if !status.success() {
            fail(&format!(
                "host-runner changes failed ({status}): {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            ));
        }
        let text = std::fs::read_to_string(&out_path).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        changes += lines.len() as u64;
        let Some(last) = lines.last() else { break };
        let last: serde_json::Value = serde_json::from_str(last)
            .unwrap_or_else(|e| fail(&format!("changes --json printed no object ({e})")));
        since = last["seq"]
            .as_i64()
            .unwrap_or_else(|| fail("changes --json printed a change without `seq`"));
        if lines.len() < limit as usize {
            break;
        }
    }
    FeedRead {
        limit,
        changes,
        calls,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu,
        db_cpu_seconds: delta(db_before, db.and_then(DbCpu::seconds)),
    }
}

/// The CPU of a PostgreSQL server, found by its port: the postmaster's own
/// and its reaped children's, plus that of its live children (backends,
/// background workers).
pub struct DbCpu {
    postmaster: u32,
}

impl DbCpu {
    /// The postmaster started with `-p PORT`.
    pub fn find(port: u16) -> Option<DbCpu> {
        let port = port.to_string();
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"postgres"))
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"-p" && w[1] == port.as_bytes())
            })
            .map(|postmaster| DbCpu { postmaster })
    }

    /// Seconds of CPU so far; `None` once the server is gone.
    pub fn seconds(&self) -> Option<f64> {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let own = stat(self.postmaster)?;
        let mut ticks = own.utime + own.stime + own.cutime + own.cstime;
        for pid in std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        {
            if let Some(s) = stat(pid)
                && s.ppid == self.postmaster
            {
                ticks += s.utime + s.stime;
            }
        }
        Some(ticks as f64 / tick)
    }
}

struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// The fields of `/proc/PID/stat` we need (after the command name, which
/// may hold spaces and parentheses).
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i)?.parse::<u64>().ok();
    Some(Stat {
        ppid: n(1)? as u32,
        utime: n(11)?,
        stime: n(12)?,
        cutime: n(13)?,
        cstime: n(14)?,
    })
}
