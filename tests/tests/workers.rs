//! Several `host-runner run` workers sharing one PostgreSQL database: three
//! worker processes sync thirty accounts of one simulated server under
//! leases, while the accounts' files change and workers are SIGKILLed at
//! random moments and replaced. In the end every account mirrors its server,
//! no account was ever synced by two workers at once (by `sync_runs`), and
//! each account's change feed is gapless, without a duplicate, and replays
//! into exactly its records.
//!
//! "At once" is judged from `sync_runs`: per account, each run has a higher
//! lease token than the one before and began after it finished or, when its
//! worker was killed mid-sync, after the SIGKILL was sent (a dead worker's
//! accounts pass on as soon as PostgreSQL drops its connection, see
//! `host_runner::lease`). At least one kill must cut a sync short, so the
//! takeover is exercised; more mid-sync kills follow until one does.
//!
//! Half the kills pick a worker in the middle of a sync, the others any
//! worker after a number of requests. The moments come from a seeded
//! generator (`WORKERS_SEED` picks another sequence); every wait is a
//! bounded poll of something observable.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_runner::config::Database;
use host_runner::database::PostgresTarget;
use host_runner::store::postgres::{Conn, connect_only};
use host_runner::{Config, ConfigFile};
use nextcloud_sim::{Server, SimOptions, Simulator, UserSpec};
use tests::edits::{self, Edit};
use tests::files::SimFiles;
use tests::rng::Rng;
use tests::{PASSWORD, PASSWORD_ENV, remote};

const ACCOUNTS: usize = 30;
const WORKERS: usize = 3;
const ROUNDS: usize = 5;
/// Users whose files change in each half of a round.
const EDITED_PER_HALF: u64 = 8;
const LEASE_SECONDS: u64 = 3;
/// 1.2 s.
const INTERVAL_MINUTES: &str = "0.02";

fn seed() -> u64 {
    std::env::var("WORKERS_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x3_f0c4_11ed)
}

fn user(i: usize) -> String {
    format!("u{i:02}")
}

/// A few folders and files, a little different for each user.
fn populate(sim: &Simulator, i: usize) {
    let u = sim.as_user(&user(i));
    u.mkdir_all("/Documents/Reports").unwrap();
    u.mkdir("/Photos").unwrap();
    u.put("/readme.md", format!("hello {i}")).unwrap();
    u.put("/Documents/notes.txt", format!("notes of {i}"))
        .unwrap();
    u.put(
        &format!("/Documents/Reports/q{}.pdf", i % 4),
        vec![b'r'; 100 + i],
    )
    .unwrap();
    u.put(&format!("/Photos/p{i}.jpg"), vec![b'p'; 1000 + i])
        .unwrap();
    if i.is_multiple_of(3) {
        u.mkdir_all("/Archive/2024").unwrap();
        u.put("/Archive/2024/old.txt", "old").unwrap();
    }
}

/// A random edit the Activity app reports (no silent ones: those wait for
/// the daily reconcile).
fn random_edit(rng: &mut Rng) -> Edit {
    let mut i = || rng.index(64);
    let (a, b) = (i(), i());
    let n = a % edits::NAMES.len();
    match b % 14 {
        0..=3 => Edit::CreateFile {
            parent: a,
            name: b % edits::NAMES.len(),
        },
        4 | 5 => Edit::CreateFolder {
            parent: a,
            name: b % edits::NAMES.len(),
        },
        6..=8 => Edit::Overwrite { target: a },
        9 => Edit::Rename { target: b, name: n },
        10 | 11 => Edit::Move {
            target: a,
            parent: b,
        },
        12 => Edit::MoveRename {
            target: b,
            parent: a,
            name: n,
        },
        _ => Edit::Delete { target: a },
    }
}

/// Edits the files of `users` random users; how many edits were made.
fn edit_some(sim: &Simulator, rng: &mut Rng, users: u64, tick: &mut u64) -> usize {
    let mut made = 0;
    for _ in 0..users {
        let files = SimFiles {
            sim: sim.clone(),
            user: user(rng.index(ACCOUNTS)),
        };
        for _ in 0..1 + rng.below(4) {
            *tick += 1;
            edits::apply(&files, &random_edit(rng), *tick, &[]);
            made += 1;
        }
    }
    made
}

/// One worker process: `host-runner run --json` on the shared file.
struct Worker {
    n: usize,
    child: Child,
    dir: PathBuf,
    killed: bool,
    /// When SIGKILL was sent (ms since the epoch): the worker was alive
    /// until then and dead soon after.
    killed_at_ms: Option<i64>,
    exited: bool,
}

impl Worker {
    fn start(n: usize, config: &Path, dir: &Path) -> Worker {
        let out = File::create(dir.join(format!("worker-{n}.stdout"))).unwrap();
        let err = File::create(dir.join(format!("worker-{n}.stderr"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
            .args(["run", "--json", "--config"])
            .arg(config)
            .arg("--component")
            .arg(tests::connector_wasm())
            .env(PASSWORD_ENV, PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("host-runner starts");
        Worker {
            n,
            child,
            dir: dir.to_path_buf(),
            killed: false,
            killed_at_ms: None,
            exited: false,
        }
    }

    fn output(&self) -> (String, String) {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.join(format!("worker-{}.{ext}", self.n)))
                .unwrap_or_default()
        };
        (read("stdout"), read("stderr"))
    }

    /// Panics if the worker ended by itself.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.exited = true;
            let (out, err) = self.output();
            panic!(
                "worker {} exited by itself ({status}):\n{out}\n{err}",
                self.n
            );
        }
    }

    fn sigkill(&mut self) {
        self.assert_running();
        self.killed_at_ms = Some(host_runner::timefmt::now_unix_ms());
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        self.killed = true;
        self.exited = true;
    }

    /// SIGTERM, and the exit it must make (code 0) within `limit`.
    fn stop(&mut self, limit: Duration) {
        self.assert_running();
        // SAFETY: kill(2) on the pid of a child not waited for yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill failed");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "worker {} did not stop within {limit:?} of SIGTERM",
                self.n
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.exited = true;
        let (out, err) = self.output();
        assert_eq!(status.code(), Some(0), "worker {}:\n{out}\n{err}", self.n);
    }

    /// The worker's JSON event lines; a killed worker may have left half a
    /// line at the end.
    fn events(&self) -> Vec<serde_json::Value> {
        let (out, _) = self.output();
        let lines: Vec<&str> = out.lines().collect();
        let mut events = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(v) => events.push(v),
                Err(e) if self.killed && i + 1 == lines.len() => {
                    eprintln!("worker {}: a torn last line ({e}): {line}", self.n)
                }
                Err(e) => panic!("worker {}: not JSON ({e}): {line}", self.n),
            }
        }
        events
    }
}

/// Every worker ever started; the live ones are SIGKILLed if the test fails.
struct Workers {
    all: Vec<Worker>,
    config: PathBuf,
    dir: PathBuf,
}

impl Workers {
    fn start(&mut self) -> usize {
        let n = self.all.len();
        self.all.push(Worker::start(n, &self.config, &self.dir));
        n
    }

    fn live(&self) -> Vec<usize> {
        (0..self.all.len())
            .filter(|&i| !self.all[i].exited)
            .collect()
    }

    fn assert_running(&mut self) {
        for i in self.live() {
            self.all[i].assert_running();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.all {
            if !w.exited {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

/// What a record is compared by: path, etag, folder or not, size.
type Entry = (String, String, bool, u64);

/// The server's entries of each user, by file id.
fn server_state(sim: &Simulator) -> BTreeMap<String, BTreeMap<String, Entry>> {
    (0..ACCOUNTS)
        .map(|i| {
            let entries = sim
                .as_user(&user(i))
                .listing()
                .into_iter()
                .map(|e| (e.fileid.to_string(), (e.path, e.etag, e.is_folder, e.size)))
                .collect();
            (user(i), entries)
        })
        .collect()
}

/// The records of each account (by name), by external id, in one query.
fn stored_state(conn: &mut Conn) -> BTreeMap<String, BTreeMap<String, Entry>> {
    let rows = conn
        .client
        .query(
            "SELECT a.name, r.external_id, r.path, r.etag, r.is_folder, r.size
               FROM records r JOIN accounts a ON a.id = r.account_id",
            &[],
        )
        .expect("records query");
    let mut out: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
    for row in rows {
        let (name, id, path, etag): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let (is_folder, size): (bool, i64) = (row.get(4), row.get(5));
        out.entry(name)
            .or_default()
            .insert(id, (path, etag, is_folder, size as u64));
    }
    out
}

/// The accounts whose records differ from the server.
fn unconverged(sim: &Simulator, conn: &mut Conn) -> Vec<String> {
    let server = server_state(sim);
    let stored = stored_state(conn);
    server
        .iter()
        .filter(|(name, entries)| stored.get(*name) != Some(entries))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Waits `d`, the workers checked alive all along.
fn pause(workers: &mut Workers, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        workers.assert_running();
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(2)),
        );
    }
}

/// The pids of the workers in the middle of a sync: its run noted and not
/// finished, under the lease the account has now.
fn running_holders(conn: &mut Conn) -> Vec<u32> {
    conn.client
        .query(
            "SELECT s.holder FROM sync_runs s JOIN accounts a
                 ON a.id = s.account_id AND a.lease_token = s.token AND a.lease_holder = s.holder
              WHERE s.finished_at_ms IS NULL",
            &[],
        )
        .expect("sync_runs query")
        .iter()
        .map(|r| {
            let holder: String = r.get(0);
            holder.rsplit(':').next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Whether `worker` holds an account's lease by the `accounts` table.
fn leases_of(conn: &mut Conn, worker: &Worker) -> bool {
    let holder_pid = worker.child.id().to_string();
    let row = conn
        .client
        .query_one(
            "SELECT COUNT(*) FROM accounts WHERE lease_holder LIKE '%:' || $1",
            &[&holder_pid],
        )
        .expect("accounts query");
    let n: i64 = row.get(0);
    n > 0
}

/// The runs of killed workers that never finished.
fn unfinished_kills(conn: &mut Conn, workers: &Workers) -> usize {
    let killed: BTreeSet<String> = workers
        .all
        .iter()
        .filter(|w| w.killed)
        .map(|w| w.child.id().to_string())
        .collect();
    conn.client
        .query(
            "SELECT holder FROM sync_runs WHERE finished_at_ms IS NULL",
            &[],
        )
        .expect("sync_runs query")
        .iter()
        .filter(|r| {
            let holder: String = r.get(0);
            killed.contains(holder.rsplit(':').next().unwrap())
        })
        .count()
}

/// The highest `sync_runs.id` so far.
fn last_run_id(conn: &mut Conn) -> i64 {
    let row = conn
        .client
        .query_one("SELECT COALESCE(MAX(id), 0) FROM sync_runs", &[])
        .expect("sync_runs query");
    row.get(0)
}

/// How many accounts have a run that ended well with an id above `mark`.
fn synced_since(conn: &mut Conn, mark: i64) -> usize {
    let row = conn
        .client
        .query_one(
            "SELECT COUNT(DISTINCT account_id) FROM sync_runs WHERE id > $1 AND outcome = 'ok'",
            &[&mark],
        )
        .expect("sync_runs query");
    let n: i64 = row.get(0);
    n as usize
}

/// Polls `check` every 20 ms, with the workers checked alive each time,
/// until it is `Ok`; panics with `what` and the last `Err` after `limit`.
fn poll(
    workers: &mut Workers,
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) -> Duration {
    let started = Instant::now();
    while let Err(detail) = check() {
        workers.assert_running();
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}: {detail}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// `Ok` when `n` of `of`.
fn all(n: usize, of: usize) -> Result<(), String> {
    if n == of {
        Ok(())
    } else {
        Err(format!("{n} of {of}"))
    }
}

/// One row of `sync_runs`.
#[derive(Debug)]
struct Run {
    id: i64,
    holder: String,
    token: Option<i64>,
    started: i64,
    heartbeat: Option<i64>,
    finished: Option<i64>,
    outcome: Option<String>,
}

fn runs_by_account(conn: &mut Conn) -> BTreeMap<String, Vec<Run>> {
    let rows = conn
        .client
        .query(
            "SELECT a.name, s.id, s.holder, s.token, s.started_at_ms, s.heartbeat_at_ms,
                    s.finished_at_ms, s.outcome
               FROM sync_runs s JOIN accounts a ON a.id = s.account_id
              ORDER BY a.name, s.started_at_ms, s.id",
            &[],
        )
        .expect("sync_runs query");
    let mut out: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for row in rows {
        let name: String = row.get(0);
        out.entry(name).or_default().push(Run {
            id: row.get(1),
            holder: row.get(2),
            token: row.get(3),
            started: row.get(4),
            heartbeat: row.get(5),
            finished: row.get(6),
            outcome: row.get(7),
        });
    }
    out
}

/// A record as the feed's JSON has it: path, etag, folder, size, parent,
/// version.
type Replayed = (String, String, bool, u64, Option<String>, i64);

/// Checks account `id`'s feed: `seq` is exactly 1..=feed_head, each record
/// change applies to the state the ones before it left (a `new` of an id
/// not there, an update or a delete of one that is), and replaying it from
/// empty gives exactly the `records` table. The number of changes.
fn check_feed(conn: &mut Conn, name: &str, id: i64) -> usize {
    let head: i64 = conn
        .client
        .query_one("SELECT feed_head FROM accounts WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    let changes = conn
        .client
        .query(
            "SELECT seq, kind, external_id, data::text FROM changes
              WHERE account_id = $1 ORDER BY seq",
            &[&id],
        )
        .unwrap();
    let seqs: Vec<i64> = changes.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i64> = (1..=head).collect();
    if seqs != expected {
        let have: BTreeSet<i64> = seqs.iter().copied().collect();
        let missing: Vec<i64> = expected
            .iter()
            .filter(|s| !have.contains(s))
            .copied()
            .collect();
        panic!(
            "{name}: the feed is not 1..={head}: {} changes, missing {missing:?}, first seqs {:?}",
            seqs.len(),
            &seqs[..seqs.len().min(20)]
        );
    }
    let mut state: BTreeMap<String, Replayed> = BTreeMap::new();
    for row in &changes {
        let (seq, kind, external_id, data): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        let record = || -> Replayed {
            assert_eq!(
                data["external_id"],
                external_id.as_str(),
                "{name} seq {seq}"
            );
            (
                data["path"].as_str().unwrap().to_string(),
                data["etag"].as_str().unwrap().to_string(),
                data["is_folder"].as_bool().unwrap(),
                data["size"].as_u64().unwrap(),
                data["parent_external_id"].as_str().map(str::to_string),
                data["version"].as_i64().unwrap(),
            )
        };
        match kind.as_str() {
            "new" => {
                let before = state.insert(external_id.clone(), record());
                assert!(
                    before.is_none(),
                    "{name} seq {seq}: `new` for {external_id}, already in the feed's state as {before:?}"
                );
            }
            "content-updated" | "metadata-updated" => {
                let before = state.insert(external_id.clone(), record());
                assert!(
                    before.is_some(),
                    "{name} seq {seq}: `{kind}` for {external_id}, which the feed never made"
                );
            }
            "deleted" => {
                assert!(
                    state.remove(&external_id).is_some(),
                    "{name} seq {seq}: `deleted` for {external_id}, which the feed never made"
                );
            }
            "user" | "record-group" => {}
            other => panic!("{name} seq {seq}: unknown kind {other}"),
        }
    }
    let rows = conn
        .client
        .query(
            "SELECT external_id, path, etag, is_folder, size, parent_external_id, version
               FROM records WHERE account_id = $1",
            &[&id],
        )
        .unwrap();
    let records: BTreeMap<String, Replayed> = rows
        .iter()
        .map(|r| {
            let size: i64 = r.get(4);
            (
                r.get(0),
                (
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    size as u64,
                    r.get(5),
                    r.get(6),
                ),
            )
        })
        .collect();
    if state != records {
        let only_feed: Vec<_> = state
            .iter()
            .filter(|(k, v)| records.get(*k) != Some(v))
            .collect();
        let only_records: Vec<_> = records
            .iter()
            .filter(|(k, v)| state.get(*k) != Some(v))
            .collect();
        panic!(
            "{name}: replaying the feed does not give the records:\nfrom the feed {only_feed:?}\nin the records {only_records:?}"
        );
    }
    changes.len()
}

/// The account's records against a Depth: infinity listing of its user, by
/// the harness's own comparison (ids, paths, kinds, etags, sizes, parents).
fn assert_mirrors(sim: &Simulator, config: &Config) {
    let listing = tests::listing_of(sim.as_user(&config.username).listing());
    let records = host_runner::list_records(config).expect("records list");
    remote::assert_mirrors(&records, &listing);
}

/// SIGKILLs a worker at a random moment and starts another in its place:
/// with `mid_sync`, one in the middle of a sync (its run noted, its lease
/// held), a few milliseconds on; else any worker, some requests into the
/// workers' syncing and a little more. When that was and whether the worker
/// still held a lease right after.
fn kill_one(
    workers: &mut Workers,
    conn: &mut Conn,
    sim: &Simulator,
    rng: &mut Rng,
    mid_sync: bool,
) -> (String, bool) {
    let live: BTreeMap<u32, usize> = workers
        .live()
        .into_iter()
        .map(|i| (workers.all[i].child.id(), i))
        .collect();
    let (victim, moment) = if mid_sync {
        let mut syncing = Vec::new();
        poll(
            workers,
            "a worker to be in the middle of a sync",
            Duration::from_secs(30),
            || {
                syncing = running_holders(conn)
                    .into_iter()
                    .filter_map(|pid| live.get(&pid).copied())
                    .collect();
                if syncing.is_empty() {
                    Err("none is".into())
                } else {
                    Ok(())
                }
            },
        );
        let delay = rng.below(10);
        let victim = syncing[rng.index(syncing.len())];
        pause(workers, Duration::from_millis(delay));
        (victim, format!("mid-sync +{delay} ms"))
    } else {
        let base = sim.request_count();
        let requests = 1 + rng.below(120);
        let delay = rng.below(800);
        poll(
            workers,
            "the workers to make requests",
            Duration::from_secs(30),
            || {
                let made = sim.request_count() - base;
                if made >= requests {
                    Ok(())
                } else {
                    Err(format!("{made} of {requests}"))
                }
            },
        );
        pause(workers, Duration::from_millis(delay));
        let indices: Vec<usize> = live.values().copied().collect();
        let victim = indices[rng.index(indices.len())];
        (victim, format!("{requests} requests +{delay} ms"))
    };
    workers.all[victim].sigkill();
    // Right after the kill, before another worker can have noticed.
    let holding = leases_of(conn, &workers.all[victim]);
    workers.start();
    let moment = format!(
        "{moment}{}",
        if holding { " (holding a lease)" } else { "" }
    );
    (moment, holding)
}

#[test]
fn three_workers_killed_at_random_share_thirty_accounts_and_lose_nothing() {
    let Some(pg) = tests::postgres::start_or_skip() else {
        return;
    };
    let began = Instant::now();
    let mut rng = Rng(seed());
    let mut tick = 0u64;

    let sim = Simulator::new(SimOptions {
        user_id: user(0),
        login: user(0),
        display_name: user(0),
        email: None,
        app_password: PASSWORD.into(),
        ..SimOptions::default()
    });
    for i in 1..ACCOUNTS {
        sim.add_user(UserSpec {
            app_password: PASSWORD.into(),
            ..UserSpec::new(&user(i))
        })
        .unwrap();
    }
    for i in 0..ACCOUNTS {
        populate(&sim, i);
    }
    let server = Server::start(sim.clone()).expect("simulator starts");
    let entries: usize = server_state(&sim).values().map(|e| e.len()).sum();

    let dir = tempfile::tempdir().unwrap();
    let url = pg.create_database("workers");
    std::fs::write(dir.path().join("db-password"), pg.password()).unwrap();
    let mut config =
        format!("interval_minutes = {INTERVAL_MINUTES}\nlease_seconds = {LEASE_SECONDS}\n");
    for i in 0..ACCOUNTS {
        config.push_str(&format!(
            "\n[[account]]\nname = \"{u}\"\nbase_url = \"{}\"\nusername = \"{u}\"\napp_password_env = \"{PASSWORD_ENV}\"\ndatabase = \"{url}\"\ndatabase_password_file = \"db-password\"\n",
            server.base_url(),
            u = user(i),
        ));
    }
    let config_path = dir.path().join("workers.toml");
    std::fs::write(&config_path, config).unwrap();
    let file = ConfigFile::load(&config_path).expect("the config loads");
    assert_eq!(file.accounts.len(), ACCOUNTS);
    let target: PostgresTarget = match &file.accounts[0].database {
        Database::Postgres(t) => t.clone(),
        other => panic!("PostgreSQL expected, not {other}"),
    };
    let mut conn = connect_only(&target).expect("the test connects to PostgreSQL");

    let mut workers = Workers {
        all: Vec::new(),
        config: config_path.clone(),
        dir: dir.path().to_path_buf(),
    };
    for _ in 0..WORKERS {
        workers.start();
    }

    // The first full syncs, shared by the workers.
    let first = poll(
        &mut workers,
        "the first full sync of every account",
        Duration::from_secs(60),
        || all(synced_since(&mut conn, 0), ACCOUNTS),
    );
    eprintln!(
        "{ACCOUNTS} accounts, {entries} entries: every account synced once {first:?} after the workers started"
    );

    let mut kills: Vec<String> = Vec::new();
    let mut held = 0;
    let mut edited = 0;
    for round in 0..ROUNDS {
        let round_started = Instant::now();
        edited += edit_some(&sim, &mut rng, EDITED_PER_HALF, &mut tick);
        for _ in 0..1 + rng.below(2) {
            let mid_sync = rng.below(2) == 0;
            let (moment, holding) = kill_one(&mut workers, &mut conn, &sim, &mut rng, mid_sync);
            held += holding as usize;
            kills.push(moment);
            edited += edit_some(&sim, &mut rng, EDITED_PER_HALF / 2, &mut tick);
        }
        edited += edit_some(&sim, &mut rng, EDITED_PER_HALF, &mut tick);
        // Half the accounts synced again since the edits.
        let mark = last_run_id(&mut conn);
        let took = poll(
            &mut workers,
            "half the accounts to be synced after the round's edits",
            Duration::from_secs(60),
            || {
                all(
                    synced_since(&mut conn, mark).min(ACCOUNTS / 2),
                    ACCOUNTS / 2,
                )
            },
        );
        eprintln!(
            "round {round}: {} kills so far, half the accounts synced again {took:?} after the edits (round {:?})",
            kills.len(),
            round_started.elapsed()
        );
    }

    // Until a kill has left a run unfinished (the takeover of a sync cut
    // short), more mid-sync kills.
    let mut extra = 0;
    while unfinished_kills(&mut conn, &workers) == 0 {
        assert!(
            extra < 10,
            "{extra} more mid-sync kills, and none cut a sync short"
        );
        let (moment, holding) = kill_one(&mut workers, &mut conn, &sim, &mut rng, true);
        held += holding as usize;
        kills.push(moment);
        extra += 1;
    }

    // The last edits are in: every account converges.
    let converged_in = poll(
        &mut workers,
        "every account to mirror its server",
        Duration::from_secs(120),
        || {
            let left = unconverged(&sim, &mut conn);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("unconverged: {left:?}"))
            }
        },
    );
    eprintln!("every account mirrors its server {converged_in:?} after the last edits");
    for i in workers.live() {
        workers.all[i].stop(Duration::from_secs(30));
    }
    for config in &file.accounts {
        assert_mirrors(&sim, config);
    }

    // The workers' own account of what they did.
    let (mut synced, mut failed) = (0usize, Vec::new());
    for w in &workers.all {
        for event in w.events() {
            match event["event"].as_str() {
                Some("synced") => synced += 1,
                Some("failed") => failed.push((w.n, event)),
                _ => {}
            }
        }
    }
    for (n, event) in &failed {
        eprintln!("worker {n}: {event}");
    }
    assert!(
        failed.iter().all(|(_, e)| e["retired"] != true),
        "an account was retired: {failed:?}"
    );

    // Each account's feed: gapless, no duplicate, replays into its records.
    let ids: BTreeMap<String, i64> = conn
        .client
        .query("SELECT name, id FROM accounts", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(ids.len(), ACCOUNTS, "{ids:?}");
    let mut feed = 0;
    for (name, id) in &ids {
        feed += check_feed(&mut conn, name, *id);
    }

    // No two syncs of an account overlapped.
    let runs = runs_by_account(&mut conn);
    assert_eq!(runs.len(), ACCOUNTS);
    // The killed workers by pid, and when each was sent its SIGKILL.
    let killed: BTreeMap<u32, i64> = workers
        .all
        .iter()
        .filter_map(|w| Some((w.child.id(), w.killed_at_ms?)))
        .collect();
    let pid = |holder: &str| -> u32 { holder.rsplit(':').next().unwrap().parse().unwrap() };
    let (mut total, mut unfinished, mut takeover_gaps) = (0, 0, Vec::new());
    let mut holders_per_account: BTreeMap<usize, usize> = BTreeMap::new();
    for (name, runs) in &runs {
        total += runs.len();
        for pair in runs.windows(2) {
            let (prev, cur) = (&pair[0], &pair[1]);
            let (Some(a), Some(b)) = (prev.token, cur.token) else {
                panic!("{name}: a run without a lease token: {prev:?} {cur:?}");
            };
            assert!(
                b > a,
                "{name}: the token did not rise: {prev:?} then {cur:?}"
            );
            match prev.finished {
                Some(end) => assert!(
                    cur.started >= end,
                    "{name}: run {} started {} ms before run {} finished:\n{prev:?}\n{cur:?}",
                    cur.id,
                    end - cur.started,
                    prev.id
                ),
                None => {
                    let alive = prev.heartbeat.unwrap_or(prev.started);
                    assert!(
                        cur.started >= alive,
                        "{name}: run {} started {} ms before the last heartbeat of run {}:\n{prev:?}\n{cur:?}",
                        cur.id,
                        alive - cur.started,
                        prev.id
                    );
                    // Its worker was killed (checked below): the next run
                    // began after the SIGKILL, not just after the last
                    // heartbeat.
                    let kill = killed.get(&pid(&prev.holder)).copied().unwrap_or(i64::MAX);
                    assert!(
                        cur.started >= kill,
                        "{name}: run {} started {} ms before the worker of run {} was killed:\n{prev:?}\n{cur:?}",
                        cur.id,
                        kill - cur.started,
                        prev.id
                    );
                    takeover_gaps.push((cur.started - kill, cur.started - alive));
                }
            }
        }
        for run in runs {
            if run.finished.is_none() {
                unfinished += 1;
                assert!(
                    killed.contains_key(&pid(&run.holder)),
                    "{name}: run {} of {} never finished, and its worker was not killed: {run:?}",
                    run.id,
                    run.holder
                );
            } else {
                assert!(run.outcome.is_some(), "{name}: {run:?}");
            }
        }
        let holders: BTreeSet<&str> = runs.iter().map(|r| r.holder.as_str()).collect();
        *holders_per_account.entry(holders.len()).or_default() += 1;
    }
    // Every take raises the token; the takes with no run noted are those
    // killed (or stopped) between the take and the start of the sync.
    let tokens: i64 = conn
        .client
        .query_one("SELECT SUM(lease_token)::bigint FROM accounts", &[])
        .unwrap()
        .get(0);
    let takes_without_run = tokens - total as i64;
    assert!(
        unfinished >= 1,
        "no kill landed while a worker held a lease: the takeover was not exercised"
    );
    takeover_gaps.sort();
    let mut per_worker: Vec<usize> = vec![0; workers.all.len()];
    for run in runs.values().flatten() {
        if let Some(w) = workers
            .all
            .iter()
            .position(|w| w.child.id() == pid(&run.holder))
        {
            per_worker[w] += 1;
        }
    }
    eprintln!(
        "summary: {} workers in all, {} SIGKILLed at {kills:?}; runs per worker {per_worker:?}",
        workers.all.len(),
        kills.len(),
    );
    eprintln!(
        "summary: {total} sync runs ({synced} synced events, {} failed), {held} kills left a lease behind, \
         {unfinished} runs left unfinished by a kill (the next run began (ms after the kill, \
         ms after the last heartbeat) {takeover_gaps:?}), {takes_without_run} leases taken with no run noted; {edited} edits, {feed} feed changes; \
         accounts by number of distinct holders: {holders_per_account:?}; {:?} in all",
        failed.len(),
        began.elapsed()
    );
    drop(server);
}
