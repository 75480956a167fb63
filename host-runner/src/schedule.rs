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

use crate::commands::{RunOptions, SyncReport, run_sync_with_stop};
use crate::config::{Config, ConfigFile};
use crate::error::{Error, Result};
use crate::progress::TerminalProgress;
use crate::stop::StopFlag;
use crate::timefmt::{now_unix, rfc3339_utc};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// Syncs every account of `file` each interval, calling `on_event` as it
/// goes. Returns `Ok` when stopped (or after `options.rounds`), and the last
/// error once no account is left to sync.
pub fn run_schedule<'a>(
    file: &'a ConfigFile,
    options: &ScheduleOptions,
    mut on_event: impl FnMut(Event<'a>),
) -> Result<()> {
    let stop = &options.stop;
    let interval = Duration::from_secs(file.interval_minutes.saturating_mul(60));
    let mut retired = vec![false; file.accounts.len()];
    let mut last_error = None;
    let mut round = 0u64;
    loop {
        let round_started = Instant::now();
        for (i, account) in file.accounts.iter().enumerate() {
            if retired[i] {
                continue;
            }
            if stop.is_requested() {
                on_event(Event::Stopped {
                    account: None,
                    detail: None,
                });
                return Ok(());
            }
            match run_sync_with_stop(account, &options.run, stop) {
                Ok(report) => on_event(Event::Synced { account, report }),
                Err(error) if stop.is_requested() && !matches!(error, Error::Unauthorized(_)) => {
                    on_event(Event::Stopped {
                        account: Some(account),
                        detail: Some(error.to_string()),
                    });
                    return Ok(());
                }
                Err(error) => {
                    let retire = retires(&error);
                    retired[i] = retire;
                    let code = error.exit_code();
                    let message = error.to_string();
                    on_event(Event::Failed {
                        account,
                        error,
                        retired: retire,
                    });
                    if retire {
                        last_error = Some((code, message));
                    }
                }
            }
        }
        if retired.iter().all(|r| *r) {
            let (code, message) = last_error.unwrap_or((0, String::new()));
            return Err(error_with_code(
                code,
                format!("no account is left to sync; the last failure: {message}"),
            ));
        }
        round += 1;
        if options.rounds.is_some_and(|r| round >= r) {
            return Ok(());
        }
        // Each round starts an interval after the previous one started.
        let next = round_started + interval;
        tracing::info!(
            "next sync at {}",
            rfc3339_utc(
                now_unix() + next.saturating_duration_since(Instant::now()).as_secs() as i64
            )
        );
        if stop.sleep(next.saturating_duration_since(Instant::now())) {
            on_event(Event::Stopped {
                account: None,
                detail: None,
            });
            return Ok(());
        }
    }
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
        "syncing {} account{} every {} minutes; stop with Ctrl-C or SIGTERM",
        file.accounts.len(),
        if file.accounts.len() == 1 { "" } else { "s" },
        file.interval_minutes
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
