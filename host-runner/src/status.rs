//! `host-runner status`: every account of a configuration file, its last
//! sync, how it ended, how far behind it is, and who holds it now.

use crate::config::{Config, ConfigFile, Database};
use crate::error::Result;
use crate::render::printable;
use crate::store::{KEPT_SYNC_RUNS, LeaseState, Store, StoreCounts, SyncRun};
use crate::timefmt::{now_unix_ms, rfc3339_utc};
use serde::Serialize;
use std::fmt::Write;

/// One account, as `status --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountStatus {
    pub account: String,
    /// `login@base_url`: what keeps it apart in a shared database.
    pub key: String,
    pub database: String,
    /// The latest sync, whether it finished or not.
    pub last_sync: Option<SyncRun>,
    /// The latest sync that ended well.
    pub last_success: Option<SyncRun>,
    /// Seconds since the start of the latest sync that ended well: the
    /// records reflect the server as it was then, at the latest.
    pub lag_seconds: Option<f64>,
    /// Who syncs it now (`host:pid`), when someone does.
    pub holder: Option<String>,
    /// PostgreSQL only: the lease and the shared schedule.
    pub lease: Option<LeaseState>,
    pub feed_head: i64,
    pub counts: StoreCounts,
    /// Why the account's state could not be read, if it could not.
    pub error: Option<String>,
}

/// The status of every account of `file`; one that cannot be read carries
/// its error instead of failing the rest.
pub fn status(file: &ConfigFile) -> Vec<AccountStatus> {
    file.accounts.iter().map(account_status).collect()
}

fn account_status(config: &Config) -> AccountStatus {
    let mut status = AccountStatus {
        account: config.name.clone(),
        key: config.account_key(),
        database: config.database.to_string(),
        last_sync: None,
        last_success: None,
        lag_seconds: None,
        holder: None,
        lease: None,
        feed_head: 0,
        counts: StoreCounts::default(),
        error: None,
    };
    if let Err(e) = fill(config, &mut status) {
        status.error = Some(e.to_string());
    }
    status
}

fn fill(config: &Config, status: &mut AccountStatus) -> Result<()> {
    if let Database::Sqlite(path) = &config.database
        && !path.exists()
    {
        // Never synced: nothing to report, and no file to create.
        return Ok(());
    }
    let store = Store::connect_existing(config)?;
    let runs = store.sync_runs(KEPT_SYNC_RUNS)?;
    status.last_sync = runs.first().cloned();
    status.last_success = runs
        .iter()
        .find(|r| r.outcome.as_deref() == Some("ok"))
        .cloned();
    status.lag_seconds = status
        .last_success
        .as_ref()
        .map(|r| (now_unix_ms() - r.started_at_ms).max(0) as f64 / 1000.0);
    status.lease = store.lease_state()?;
    status.holder = match &status.lease {
        Some(lease) => lease.holder.clone(),
        // A SQLite account: the latest sync, while it has not finished (or
        // its process died, which the next sync's start makes plain).
        None => status
            .last_sync
            .as_ref()
            .filter(|r| r.finished_at_ms.is_none())
            .map(|r| r.holder.clone()),
    };
    status.feed_head = store.feed().head()?;
    status.counts = store.counts()?;
    Ok(())
}

/// The statuses as text, one block per account.
pub fn render(statuses: &[AccountStatus]) -> String {
    let mut out = String::new();
    let when = |ms: i64| rfc3339_utc(ms / 1000);
    for s in statuses {
        let _ = writeln!(out, "{} ({})", printable(&s.account), s.database);
        if let Some(e) = &s.error {
            let _ = writeln!(out, "  error: {}", printable(e));
            continue;
        }
        match &s.last_sync {
            None => {
                let _ = writeln!(out, "  never synced");
            }
            Some(r) => {
                let outcome = match (&r.outcome, r.finished_at_ms) {
                    (Some(o), _) => o.clone(),
                    (None, _) => "running, or its process died".into(),
                };
                let _ = writeln!(
                    out,
                    "  last sync: {} by {}: {}",
                    when(r.started_at_ms),
                    printable(&r.holder),
                    outcome
                );
                if let Some(e) = &r.error {
                    let _ = writeln!(out, "    {}", printable(e));
                }
            }
        }
        if let Some(lag) = s.lag_seconds {
            let _ = writeln!(out, "  lag: {lag:.0} s since the last good sync began");
        }
        if let Some(h) = &s.holder {
            let _ = writeln!(out, "  held by: {}", printable(h));
        }
        let _ = writeln!(
            out,
            "  {} records ({} folders, {} files), feed at {}",
            s.counts.records, s.counts.folders, s.counts.files, s.feed_head
        );
    }
    out
}
