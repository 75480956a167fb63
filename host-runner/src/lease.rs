//! Leases: at most one worker syncs an account of a PostgreSQL database at a
//! time, and a dead worker's accounts pass to the others.
//!
//! The account's row in `accounts` carries the lease: `lease_holder`
//! (`host:pid`), `lease_token` (raised by one at every take) and
//! `lease_expires`, all compared with the database's clock (`now()`), so the
//! workers' own clocks never matter. A worker takes a lease with one
//! `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`: a free or
//! expired lease on an account that is due; workers racing for the same row
//! skip it rather than wait. While it syncs, a heartbeat thread (its own
//! connection) pushes `lease_expires` forward every third of the lease's
//! length; a worker that is killed stops beating and its lease expires.
//!
//! Expiry alone cannot stop a worker that was merely stalled (a paused VM,
//! a partition) from committing after another took over, so every commit
//! is fenced: it locks the account's row and checks that the token is still
//! its own and unexpired ([`crate::store::postgres`]). A worker that lost its
//! lease therefore commits nothing, and the one that took over goes on from
//! the last commit, which the sync's own rules make safe to repeat.
//!
//! Releasing clears the holder and sets `next_due`, when the account is
//! next synced by whichever worker comes first.

use crate::database::PostgresTarget;
use crate::error::{Error, Result};
use crate::store::postgres::{self, Conn, db_error, describe};
use crate::timefmt::now_unix_ms;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `host:pid`: who holds a lease, as `status` shows it.
pub fn holder_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // when it fits, and the length is capped below.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) } == 0;
    let host = if ok {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-host".into()
    };
    format!("{host}:{}", std::process::id())
}

/// What a worker may take: the account's lease when free or expired, and,
/// for `Due`, only once its `next_due` has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// `host-runner sync`: now, whatever the schedule says.
    Now,
    /// `host-runner run`: when the schedule says so.
    Due,
}

/// A lease this process holds; released on drop (without moving `next_due`).
pub struct Lease {
    token: i64,
    key: String,
    beat: Option<(mpsc::Sender<Option<Duration>>, JoinHandle<Result<()>>)>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

const TAKE: &str = "
UPDATE accounts SET lease_holder = $2, lease_token = lease_token + 1,
       lease_expires = now() + make_interval(secs => $3)
 WHERE id = (SELECT id FROM accounts
              WHERE key = ANY($1)
                AND (lease_holder IS NULL OR lease_expires < now())
                AND ($4 OR next_due IS NULL OR next_due <= now())
              ORDER BY next_due ASC NULLS FIRST, id ASC
              LIMIT 1
              FOR UPDATE SKIP LOCKED)
RETURNING id, key, lease_token";

impl Lease {
    /// Takes the lease of the most overdue of `keys` that is free (or
    /// expired) and, with [`Take::Due`], due; `None` when there is none.
    /// The accounts must have their rows ([`postgres::ensure_account`]);
    /// `conn` takes the lease, and the heartbeat gets a connection of its own.
    pub fn take(
        conn: &mut Conn,
        target: &PostgresTarget,
        keys: &[String],
        holder: &str,
        ttl: Duration,
        take: Take,
    ) -> Result<Option<Lease>> {
        let what = describe(target);
        let now = take == Take::Now;
        let row = conn
            .client
            .query_opt(TAKE, &[&keys, &holder, &ttl.as_secs_f64(), &now])
            .map_err(|e| db_error(&what, &e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (account, key, token): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
        let conn = postgres::connect_only(target)?;
        let (tx, rx) = mpsc::channel();
        let target = target.clone();
        let handle = std::thread::Builder::new()
            .name(format!("lease {key}"))
            .spawn(move || {
                let beat = Beat {
                    target,
                    what,
                    account,
                    token,
                    ttl,
                };
                beat.run(conn, rx)
            })
            .map_err(|e| Error::Storage(format!("cannot start the lease heartbeat: {e}")))?;
        Ok(Some(Lease {
            token,
            key,
            beat: Some((tx, handle)),
        }))
    }

    /// The account key the lease is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fencing token every commit under this lease must still match.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Gives the lease up; the account is next due `next_due_in` from now
    /// (by the database's clock), or as it was.
    pub fn release(mut self, next_due_in: Option<Duration>) -> Result<()> {
        self.stop(next_due_in)
    }

    fn stop(&mut self, next_due_in: Option<Duration>) -> Result<()> {
        let Some((tx, handle)) = self.beat.take() else {
            return Ok(());
        };
        let _ = tx.send(next_due_in);
        handle
            .join()
            .unwrap_or_else(|_| Err(Error::Storage("the lease heartbeat panicked".into())))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.stop(None) {
            tracing::warn!("releasing the lease of {}: {e}", self.key);
        }
    }
}

/// The heartbeat of one lease, on its own connection.
struct Beat {
    target: PostgresTarget,
    what: String,
    account: i64,
    token: i64,
    ttl: Duration,
}

impl Beat {
    /// Keeps the lease alive until told to release it. A lease found lost
    /// is logged; the fenced commits refuse to write under it anyway.
    fn run(&self, conn: Conn, release: mpsc::Receiver<Option<Duration>>) -> Result<()> {
        let (account, token) = (&self.account, &self.token);
        let mut conn = Some(conn);
        let mut lost = false;
        loop {
            match release.recv_timeout(self.ttl / 3) {
                Ok(next_due_in) => {
                    let next = next_due_in.map(|d| d.as_secs_f64());
                    let mut conn = self.reconnect(conn)?;
                    return conn
                        .client
                        .execute(
                            "UPDATE accounts SET lease_holder = NULL, lease_expires = NULL,
                                next_due = COALESCE(now() + make_interval(secs => $3), next_due)
                              WHERE id = $1 AND lease_token = $2",
                            &[account, token, &next],
                        )
                        .map(drop)
                        .map_err(|e| db_error(&self.what, &e));
                }
                // The worker is gone without a word (it panicked): let the
                // lease expire.
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) if lost => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let mut c = match self.reconnect(conn.take()) {
                        Ok(c) => c,
                        // The database is away: the next beat tries again,
                        // and the fenced commit says what happened.
                        Err(e) => {
                            tracing::warn!("lease heartbeat: {e}");
                            continue;
                        }
                    };
                    match c.client.execute(
                        "UPDATE accounts SET lease_expires = now() + make_interval(secs => $3)
                          WHERE id = $1 AND lease_token = $2 AND lease_expires > now()",
                        &[account, token, &self.ttl.as_secs_f64()],
                    ) {
                        Ok(0) => {
                            lost = true;
                            tracing::error!(
                                "the lease on an account of {} expired before its heartbeat; another worker may sync it now, and this one's commits will be refused",
                                self.what
                            );
                        }
                        Ok(_) => {
                            let _ = c.client.execute(
                                "UPDATE sync_runs SET heartbeat_at_ms = $3
                                  WHERE account_id = $1 AND token = $2",
                                &[account, token, &now_unix_ms()],
                            );
                        }
                        Err(e) => {
                            tracing::warn!("lease heartbeat: {}", db_error(&self.what, &e));
                            continue;
                        }
                    }
                    conn = Some(c);
                }
            }
        }
    }

    /// The connection, or a new one when it was lost.
    fn reconnect(&self, conn: Option<Conn>) -> Result<Conn> {
        match conn {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => postgres::connect_only(&self.target),
        }
    }
}
