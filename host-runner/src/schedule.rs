//! `host-runner run`: every account of a configuration file synced, one after
//! another, every `interval_minutes`, until SIGINT or SIGTERM.
//!
//! Accounts go one after another rather than at once: each keeps its own
//! rate limit, in-flight cap, lock and database either way, but one at a
//! time holds one connector instance (and its memory cap) in the process,
//! asks less of a server that several accounts may share, and makes a stop
//! mean one run to wind down.
//!
//! A stop ([`StopFlag`], set by the first SIGINT or SIGTERM) ends the sync in
//! flight after its current batch is committed (see [`crate::stop`]) and
//! ends the schedule; the next run of the account goes on from that commit.
//! An account whose credentials are rejected, or whose configuration cannot
//! work, is not synced again until the process restarts: retrying a rejected
//! password every interval would walk into Nextcloud's brute-force lockout.

use crate::commands::{RunOptions, SyncReport, run_sync_with_stop, sync_holding};
use crate::config::{Config, ConfigFile, Database};
use crate::database::PostgresTarget;
use crate::error::{Error, Result};
use crate::lease::{Lease, Take, holder_name};
use crate::progress::TerminalProgress;
use crate::stop::StopFlag;
use crate::store::postgres::{self, Conn};
use crate::timefmt::{now_unix, rfc3339_utc};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to run the schedule.
#[derive(Clone, Default)]
pub struct ScheduleOptions {
    pub run: RunOptions,
    pub stop: StopFlag,
    /// Stop after this many rounds; `None` runs until stopped.
    pub rounds: Option<u64>,
}

/// What happened, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// One account was synced.
    Synced {
        account: &'a Config,
        report: SyncReport,
    },
    /// One account's sync failed; `retired` when it is not tried again.
    Failed {
        account: &'a Config,
        error: Error,
        retired: bool,
    },
    /// A stop was asked for: during the sync of `account`, or between syncs.
    Stopped {
        account: Option<&'a Config>,
        detail: Option<String>,
    },
}

/// Whether an account's failure will not go away by itself.
fn retires(error: &Error) -> bool {
    matches!(
        error,
        Error::Unauthorized(_) | Error::Config(_) | Error::Component(_)
    )
}

/// What the schedule does after one account's sync.
enum Next {
    Go,
    /// A stop came during the sync: the schedule ends.
    Stop,
}

/// Which accounts are not tried again, and why the last one was retired.
struct Tally {
    retired: Vec<bool>,
    last_error: Option<(i32, String)>,
}

impl Tally {
    /// Whatever came of one sync, as an event; whether to go on.
    fn settle<'a>(
        &mut self,
        stop: &StopFlag,
        on_event: &mut impl FnMut(Event<'a>),
        i: usize,
        account: &'a Config,
        result: Result<SyncReport>,
    ) -> Next {
        match result {
            Ok(report) => {
                on_event(Event::Synced { account, report });
                Next::Go
            }
            Err(error) if stop.is_requested() && !matches!(error, Error::Unauthorized(_)) => {
                on_event(Event::Stopped {
                    account: Some(account),
                    detail: Some(error.to_string()),
                });
                Next::Stop
            }
            Err(error) => {
                let retire = retires(&error);
                self.retired[i] = retire;
                let code = error.exit_code();
                let message = error.to_string();
                on_event(Event::Failed {
                    account,
                    error,
                    retired: retire,
                });
                if retire {
                    self.last_error = Some((code, message));
                }
                Next::Go
            }
        }
    }
}

/// The accounts of one PostgreSQL database, taken in turn by lease.
struct Shared<'a> {
    target: &'a PostgresTarget,
    accounts: Vec<(usize, &'a Config)>,
    /// The connection that takes leases; opened again after a failure.
    conn: Option<Conn>,
}

/// Syncs every account of `file` each interval, calling `on_event` as it
/// goes. Returns `Ok` when stopped (or after `options.rounds` passes), and
/// the last error once no account is left to sync.
///
/// An account in a SQLite file is synced by this process, a round every
/// interval. The accounts in a PostgreSQL database are shared with every
/// other `run` of the same accounts: each pass takes the lease of whichever
/// account is due and free ([`crate::lease`]), syncs it, and gives it back
/// due an interval later; a pass comes every half lease (or interval, if
/// shorter), so a dead worker's accounts are taken over soon after its
/// leases expire.
pub fn run_schedule<'a>(
    file: &'a ConfigFile,
    options: &ScheduleOptions,
    mut on_event: impl FnMut(Event<'a>),
) -> Result<()> {
    let stop = &options.stop;
    let interval = file.interval;
    let mut tally = Tally {
        retired: vec![false; file.accounts.len()],
        last_error: None,
    };
    let mut round = 0u64;
    let mut shared: Vec<Shared<'a>> = Vec::new();
    let mut local = Vec::new();
    for (i, account) in file.accounts.iter().enumerate() {
        match &account.database {
            Database::Sqlite(_) => local.push((i, account)),
            Database::Postgres(target) => match shared.iter_mut().find(|g| g.target == target) {
                Some(g) => g.accounts.push((i, account)),
                None => shared.push(Shared {
                    target,
                    accounts: vec![(i, account)],
                    conn: None,
                }),
            },
        }
    }
    let poll = file
        .accounts
        .iter()
        .map(|a| a.lease / 2)
        .min()
        .unwrap_or(interval)
        .min(interval);
    let holder = holder_name();
    let mut local_due = Instant::now();
    loop {
        let pass_started = Instant::now();
        if pass_started >= local_due && !local.is_empty() {
            for &(i, account) in &local {
                if tally.retired[i] {
                    continue;
                }
                if stop.is_requested() {
                    break;
                }
                let result = run_sync_with_stop(account, &options.run, stop);
                if let Next::Stop = tally.settle(stop, &mut on_event, i, account, result) {
                    return Ok(());
                }
            }
            // Each round starts an interval after the previous one started.
            local_due = pass_started + interval;
        }
        for group in &mut shared {
            while !stop.is_requested() {
                let keys: Vec<String> = group
                    .accounts
                    .iter()
                    .filter(|(i, _)| !tally.retired[*i])
                    .map(|(_, a)| a.account_key())
                    .collect();
                if keys.is_empty() {
                    break;
                }
                let lease = match take_due(group, &keys, &holder) {
                    Ok(Some(lease)) => lease,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("cannot take an account to sync: {e}");
                        group.conn = None;
                        break;
                    }
                };
                let &(i, account) = group
                    .accounts
                    .iter()
                    .find(|(_, a)| a.account_key() == lease.key())
                    .expect("the lease is for one of the keys asked for");
                let result = run_sync_leased(account, options, &lease);
                if let Err(e) = lease.release(Some(interval)) {
                    tracing::warn!("{}: giving the lease back: {e}", account.name);
                }
                if let Next::Stop = tally.settle(stop, &mut on_event, i, account, result) {
                    return Ok(());
                }
            }
        }
        if stop.is_requested() {
            on_event(Event::Stopped {
                account: None,
                detail: None,
            });
            return Ok(());
        }
        if tally.retired.iter().all(|r| *r) {
            let (code, message) = tally.last_error.unwrap_or((0, String::new()));
            return Err(error_with_code(
                code,
                format!("no account is left to sync; the last failure: {message}"),
            ));
        }
        round += 1;
        if options.rounds.is_some_and(|r| round >= r) {
            return Ok(());
        }
        let mut next = local_due;
        if !shared.is_empty() {
            next = if local.is_empty() {
                pass_started + poll
            } else {
                next.min(pass_started + poll)
            };
        }
        if local.is_empty() {
            tracing::debug!(
                "next look for due accounts in {:?}",
                next.saturating_duration_since(Instant::now())
            );
        } else {
            tracing::info!(
                "next sync at {}",
                rfc3339_utc(
                    now_unix() + next.saturating_duration_since(Instant::now()).as_secs() as i64
                )
            );
        }
        if stop.sleep(next.saturating_duration_since(Instant::now())) {
            on_event(Event::Stopped {
                account: None,
                detail: None,
            });
            return Ok(());
        }
    }
}

/// The lease of a due account of `group`, if one is free.
fn take_due(group: &mut Shared<'_>, keys: &[String], holder: &str) -> Result<Option<Lease>> {
    if group.conn.is_none() {
        let mut conn = postgres::connect_only(group.target)?;
        let what = postgres::describe(group.target);
        for (_, account) in &group.accounts {
            postgres::ensure_account(&mut conn, &what, &account.account_key(), &account.name)?;
        }
        group.conn = Some(conn);
    }
    let conn = group.conn.as_mut().expect("connected above");
    let lease = group.accounts[0].1.lease;
    Lease::take(conn, group.target, keys, holder, lease, Take::Due)
}

/// One sync under `lease`: its commits are fenced by the lease's token.
fn run_sync_leased(
    account: &Config,
    options: &ScheduleOptions,
    lease: &Lease,
) -> Result<SyncReport> {
    sync_holding(account, &options.run, &options.stop, Some(lease.token()))
}

/// An error of the kind that exits with `code`.
fn error_with_code(code: i32, message: String) -> Error {
    use crate::error::exit_code as c;
    match code {
        c::UNAUTHORIZED => Error::Unauthorized(message),
        c::COMPONENT => Error::Component(message),
        c::SERVER => Error::Server(message),
        c::STORAGE => Error::Storage(message),
        c::GUEST => Error::Guest(message),
        c::BUSY => Error::Busy(message),
        _ => Error::Config(message),
    }
}

/// One line of text for a completed sync.
pub fn sync_line(account: &Config, report: &SyncReport, at: i64) -> String {
    let retries = if report.retries > 0 {
        format!(" ({} retries)", report.retries)
    } else {
        String::new()
    };
    format!(
        "{} {}: {} sync, {} new, {} content updated, {} metadata updated, {} deleted, {} unchanged, {} requests{retries}, {:.2} s",
        rfc3339_utc(at),
        account.name,
        report.mode.as_str(),
        report.new,
        report.content_updated,
        report.metadata_updated,
        report.deleted,
        report.unchanged,
        report.requests,
        report.duration_ms as f64 / 1000.0
    )
}

/// One JSON line for an event.
pub fn event_json(event: &Event<'_>, at: i64) -> serde_json::Value {
    let time = rfc3339_utc(at);
    match event {
        Event::Synced { account, report } => serde_json::json!({
            "event": "synced",
            "time": time,
            "account": account.name,
            "report": report,
        }),
        Event::Failed {
            account,
            error,
            retired,
        } => serde_json::json!({
            "event": "failed",
            "time": time,
            "account": account.name,
            "error": {
                "kind": error.kind(),
                "message": error.to_string(),
                "exit_code": error.exit_code(),
            },
            "retired": retired,
        }),
        Event::Stopped { account, detail } => serde_json::json!({
            "event": "stopped",
            "time": time,
            "account": account.map(|a| a.name.as_str()),
            "detail": detail,
        }),
    }
}

/// The CLI's `run`: loads the file, stops on SIGINT or SIGTERM, prints a
/// line per event (JSON lines with `json`) on stdout, and ends `Ok` after a
/// stop.
pub fn run_command(config: &Path, component: Option<PathBuf>, json: bool) -> Result<()> {
    let file = ConfigFile::load(config)?;
    let stop = StopFlag::new();
    stop.set_on_signals()
        .map_err(|e| Error::Config(format!("cannot listen for SIGINT and SIGTERM: {e}")))?;
    let options = ScheduleOptions {
        run: RunOptions {
            component,
            progress: TerminalProgress::for_stderr(),
        },
        stop,
        rounds: None,
    };
    tracing::info!(
        "syncing {} account{} every {:.1} minutes; stop with Ctrl-C or SIGTERM",
        file.accounts.len(),
        if file.accounts.len() == 1 { "" } else { "s" },
        file.interval.as_secs_f64() / 60.0
    );
    run_schedule(&file, &options, |event| {
        let at = now_unix();
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", event_json(&event, at));
        }
        match &event {
            Event::Synced { account, report } => {
                if !json {
                    let _ = writeln!(out, "{}", sync_line(account, report, at));
                }
            }
            Event::Failed {
                account,
                error,
                retired,
            } => {
                let then = if *retired {
                    "; it is not synced again until host-runner restarts"
                } else {
                    "; trying again at the next interval"
                };
                eprintln!("error: {}: {error}{then}", account.name);
            }
            Event::Stopped { account, detail } => match (account, detail) {
                (Some(a), Some(d)) => eprintln!(
                    "stopped during the sync of {}: everything up to its last commit is kept and the next run goes on from there ({d})",
                    a.name
                ),
                _ => eprintln!("stopped"),
            },
        }
        let _ = out.flush();
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::SyncMode;

    fn report() -> SyncReport {
        SyncReport {
            mode: SyncMode::Full,
            new: 3,
            content_updated: 0,
            metadata_updated: 1,
            deleted: 2,
            unchanged: 4,
            requests: 9,
            bytes_received: 4096,
            duration_ms: 1250,
            retries: 2,
            sink_calls: 1,
            largest_batch: 6,
            commits: 2,
        }
    }

    fn account() -> Config {
        Config::from_toml_str(
            "name = \"work\"\nbase_url = \"https://h\"\nusername = \"a\"\ndatabase = \"d\"\n",
            Path::new("/tmp"),
        )
        .unwrap()
    }

    #[test]
    fn a_line_per_sync_in_text_and_json() {
        let a = account();
        let line = sync_line(&a, &report(), 0);
        assert_eq!(
            line,
            "1970-01-01T00:00:00Z work: full sync, 3 new, 0 content updated, 1 metadata updated, 2 deleted, 4 unchanged, 9 requests (2 retries), 1.25 s"
        );
        let v = event_json(
            &Event::Synced {
                account: &a,
                report: report(),
            },
            0,
        );
        assert_eq!(v["event"], "synced");
        assert_eq!(v["account"], "work");
        assert_eq!(v["report"]["requests"], 9);
        let v = event_json(
            &Event::Failed {
                account: &a,
                error: Error::Unauthorized("no".into()),
                retired: true,
            },
            0,
        );
        assert_eq!(v["error"]["exit_code"], 3);
        assert_eq!(v["error"]["kind"], "unauthorized");
        assert_eq!(v["retired"], true);
        let v = event_json(
            &Event::Stopped {
                account: None,
                detail: None,
            },
            0,
        );
        assert_eq!(v["event"], "stopped");
        assert!(v["account"].is_null());
    }

    #[test]
    fn only_lasting_failures_retire_an_account() {
        assert!(retires(&Error::Unauthorized(String::new())));
        assert!(retires(&Error::Config(String::new())));
        assert!(!retires(&Error::Server(String::new())));
        assert!(!retires(&Error::Busy(String::new())));
        assert!(!retires(&Error::Storage(String::new())));
    }

    #[test]
    fn a_stop_before_the_first_sync_syncs_nothing() {
        let file = ConfigFile::from_toml_str(
            "base_url = \"https://h\"\nusername = \"a\"\ndatabase = \"d\"\n",
            Path::new("/nonexistent"),
        )
        .unwrap();
        let options = ScheduleOptions::default();
        options.stop.request();
        let mut events = Vec::new();
        run_schedule(&file, &options, |e| events.push(format!("{e:?}"))).unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].starts_with("Stopped"), "{events:?}");
    }

    #[test]
    fn an_account_that_cannot_work_is_retired_and_then_the_schedule_ends() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nc.toml"),
            "base_url = \"https://h\"\nusername = \"a\"\ndatabase = \"d.sqlite\"\napp_password_env = \"HOST_RUNNER_TEST_UNSET_VARIABLE\"\n",
        )
        .unwrap();
        let file = ConfigFile::load(&dir.path().join("nc.toml")).unwrap();
        let mut failed = 0;
        let err = run_schedule(&file, &ScheduleOptions::default(), |e| {
            if let Event::Failed { retired, .. } = e {
                assert!(retired);
                failed += 1;
            }
        })
        .unwrap_err();
        assert_eq!(failed, 1);
        assert_eq!(err.exit_code(), crate::error::exit_code::CONFIG);
        assert!(err.to_string().contains("no account is left"), "{err}");
    }
}
