//! Workers sharing accounts (`--workers-accounts N --workers-entries E
//! --workers 1,3`): N simulated servers of E generated entries each, listed
//! as N `[[account]]` tables of one configuration on one PostgreSQL
//! database, first-synced by W `host-runner run --json` processes that share
//! them by lease. The time is from starting the workers to the last
//! account's first `synced` event; each worker count gets a fresh database,
//! so every account's sync is a full one.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nextcloud_sim::{Server, SimOptions, Simulator};
use tests::postgres::Postgres;
use tests::{PASSWORD, PASSWORD_ENV};

use crate::backends::DbCpu;
use crate::process::fail;

/// The simulated servers every worker count syncs.
pub struct Fleet {
    servers: Vec<Arc<Server>>,
    pub entries: usize,
    dir: tempfile::TempDir,
}

/// One worker count's first sync of every account.
pub struct WorkersRun {
    pub workers: usize,
    pub accounts: usize,
    pub entries_per_account: usize,
    /// Records created, summed over the accounts' `synced` events.
    pub synced_entries: u64,
    /// From starting the workers to the last account's first sync.
    pub seconds: f64,
    /// The workers' CPU, all of them, to their stop.
    pub worker_cpu_seconds: f64,
    /// The PostgreSQL server's CPU meanwhile.
    pub db_cpu_seconds: Option<f64>,
    /// The benchmark's own CPU meanwhile: the simulators answering.
    pub simulator_cpu_seconds: f64,
    /// Accounts each worker synced.
    pub per_worker: Vec<usize>,
    /// The mean of the accounts' own sync durations (as they reported them).
    pub mean_account_seconds: f64,
}

impl WorkersRun {
    pub fn entries_per_second(&self) -> f64 {
        self.synced_entries as f64 / self.seconds
    }
}

fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// The database password, readable by its owner only (host-runner warns
/// about a file others can read, once per connection).
pub fn private_password(path: &Path, password: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, password).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Fleet {
    /// `accounts` simulators of `entries` generated entries each.
    pub fn generate(accounts: usize, entries: usize) -> Fleet {
        let started = Instant::now();
        let servers = (0..accounts)
            .map(|i| {
                let sim = Simulator::new(SimOptions {
                    app_password: PASSWORD.into(),
                    ..SimOptions::default()
                });
                sim.generate(entries, 42 + i as u64);
                Arc::new(Server::start(sim).expect("simulator starts"))
            })
            .collect();
        note!(
            "generated {accounts} trees of {entries} entries in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Fleet {
            servers,
            entries,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A configuration of every account on a fresh database of `pg`.
    fn config(&self, pg: &Postgres, workers: usize) -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = pg.create_database(&format!("workers_{workers}_{n}"));
        private_password(&self.dir.path().join("db-password"), pg.password());
        // An interval far away: each account is synced once during the run.
        let mut text = String::from("interval_minutes = 1440\nlease_seconds = 60\n");
        for (i, server) in self.servers.iter().enumerate() {
            text.push_str(&format!(
                "\n[[account]]\nname = \"a{i}\"\nbase_url = \"{}\"\nusername = \"{}\"\n\
                 app_password_env = \"{PASSWORD_ENV}\"\ndatabase = \"{url}\"\n\
                 database_password_file = \"db-password\"\n",
                server.base_url(),
                server.simulator().options().login,
            ));
        }
        let path = self.dir.path().join(format!("workers-{workers}-{n}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `workers` `host-runner run` processes on every account, until each
    /// account has finished its first sync (or `timeout`).
    pub fn run(
        &self,
        pg: &Postgres,
        host_runner: &Path,
        component: &Path,
        workers: usize,
        timeout: Duration,
    ) -> WorkersRun {
        let config = self.config(pg, workers);
        let accounts = self.servers.len();
        let db = DbCpu::find(pg.port());
        let db_before = db.as_ref().and_then(DbCpu::seconds);
        let children_before = cpu(libc::RUSAGE_CHILDREN);
        let self_before = cpu(libc::RUSAGE_SELF);
        let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
        let started = Instant::now();
        let mut children: Vec<Child> = Vec::new();
        let mut readers = Vec::new();
        for k in 0..workers {
            let stderr = self.dir.path().join(format!("worker-{workers}-{k}.stderr"));
            let mut child = Command::new(host_runner)
                .arg("--component")
                .arg(component)
                .args(["run", "--json", "--config"])
                .arg(&config)
                .env(PASSWORD_ENV, PASSWORD)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(File::create(&stderr).unwrap())
                .spawn()
                .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", host_runner.display())));
            let out = child.stdout.take().expect("piped");
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((k, Some(line))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((k, None));
            }));
            children.push(child);
        }
        drop(tx);

        let mut synced = vec![false; accounts];
        let mut done = 0;
        let mut per_worker = vec![0; workers];
        let mut synced_entries = 0;
        let mut account_ms = 0u64;
        let mut last = started;
        let mut problem = None;
        while done < accounts {
            let left = timeout.saturating_sub(started.elapsed());
            let (k, line) = match rx.recv_timeout(left) {
                Ok(message) => message,
                Err(_) => {
                    problem = Some(format!(
                        "only {done} of {accounts} accounts synced within {} s",
                        timeout.as_secs()
                    ));
                    break;
                }
            };
            let Some(line) = line else {
                problem = Some(format!("worker {k} ended before every account was synced"));
                break;
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match event["event"].as_str() {
                Some("synced") => {
                    let name = event["account"].as_str().unwrap_or("");
                    let Some(i) = name.strip_prefix('a').and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    if i < accounts && !synced[i] {
                        synced[i] = true;
                        done += 1;
                        per_worker[k] += 1;
                        synced_entries += event["report"]["new"].as_u64().unwrap_or(0);
                        account_ms += event["report"]["duration_ms"].as_u64().unwrap_or(0);
                        last = Instant::now();
                    }
                }
                Some("failed") => {
                    problem = Some(format!("worker {k}: {line}"));
                    break;
                }
                _ => {}
            }
        }
        let seconds = (last - started).as_secs_f64();
        for child in &children {
            // SAFETY: kill has no memory effects; the pid is our own child's,
            // not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        for child in &mut children {
            let _ = child.wait();
        }
        for reader in readers {
            let _ = reader.join();
        }
        if let Some(problem) = problem {
            let mut tails = String::new();
            for k in 0..workers {
                let path = self.dir.path().join(format!("worker-{workers}-{k}.stderr"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                tails.push_str(&format!(
                    "\nworker {k} stderr (last lines, newest first):\n  {}",
                    tail.join("\n  ")
                ));
            }
            fail(&format!("{workers} workers: {problem}{tails}"));
        }
        let run = WorkersRun {
            workers,
            accounts,
            entries_per_account: self.entries,
            synced_entries,
            seconds,
            worker_cpu_seconds: cpu(libc::RUSAGE_CHILDREN) - children_before,
            db_cpu_seconds: db_before.and_then(|before| Some(db.as_ref()?.seconds()? - before)),
            simulator_cpu_seconds: cpu(libc::RUSAGE_SELF) - self_before,
            per_worker,
            mean_account_seconds: account_ms as f64 / 1e3 / accounts as f64,
        };
        note!(
            "{workers} worker(s): {accounts} accounts, {} entries in {:.2} s ({:.0} entries/s); accounts per worker {:?}",
            run.synced_entries,
            run.seconds,
            run.entries_per_second(),
            run.per_worker
        );
        run
    }
}
