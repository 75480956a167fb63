//! Leases: at most one worker syncs an account of a PostgreSQL database at a
//! time, and a dead worker's accounts pass to the others.
//!
//! The account's row in `accounts` carries the lease: `lease_holder`
//! (`host:pid`), `lease_token` (raised by one at every take) and
//! `lease_expires`, compared with the database's clock (`now()`), so the
//! workers' own clocks never matter. While it syncs, a heartbeat thread (its
//! own connection) pushes `lease_expires` forward every third of the lease.
//!
//! The heartbeat's connection also holds a session advisory lock on the
//! account (`pg_try_advisory_lock`), which PostgreSQL drops the moment the
//! connection ends: a worker that is killed gives its accounts up at once,
//! not a lease later. A worker takes an account that is due when its lease
//! is free, or expired, or its holder's advisory lock is gone; one
//! conditional `UPDATE` of the row decides, so two workers racing for it
//! cannot both win. (A lease taken on expiry alone, from a worker that
//! stalls while still connected, carries no lock, `lease_locked = false`,
//! and passes on only when it expires.)
//!
//! Expiry cannot stop a stalled worker (a paused VM, a partition) from
//! committing after another took over, so every commit is fenced: it locks
//! the account's row and checks that the token is still its own and
//! unexpired ([`crate::store::postgres`]). A worker that lost its lease
//! commits nothing, and the one that took over goes on from the last
//! commit, which the sync's own rules make safe to repeat.
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
    beat: Option<Heartbeat>,
}

/// The heartbeat thread, and how to tell it to release the lease (due again
/// after the duration, if one is given).
type Heartbeat = (mpsc::Sender<Option<Duration>>, JoinHandle<Result<()>>);

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

/// The accounts among `$1` that are due (or, with `$2`, any), most overdue
/// first.
const CANDIDATES: &str = "
SELECT id FROM accounts
 WHERE key = ANY($1) AND ($2 OR next_due IS NULL OR next_due <= now())
 ORDER BY next_due ASC NULLS FIRST, id ASC";

/// Takes account `$1` if its lease is free, expired, or (`$4`: this worker
/// just got the account's advisory lock) held by a worker whose lock is gone.
const TAKE: &str = "
UPDATE accounts SET lease_holder = $2, lease_token = lease_token + 1,
       lease_expires = now() + make_interval(secs => $3), lease_locked = $4
 WHERE id = $1
   AND (lease_holder IS NULL OR lease_expires < now() OR ($4 AND lease_locked))
   AND ($5 OR next_due IS NULL OR next_due <= now())
RETURNING key, lease_token";

/// How long `host-runner sync` waits for an account's advisory lock before
/// it says another worker holds the account.
const NOW_WAIT: Duration = Duration::from_secs(3);

/// The first half of every account's advisory lock key ("nc").
const LOCK_SPACE: i32 = 0x6e63;

/// The second half of an account's advisory lock key.
fn lock_id(account: i64) -> i32 {
    i32::try_from(account).unwrap_or(i32::MAX)
}

/// Takes the account's advisory lock for `client`'s session; whether it got
/// it. With `wait`, waits for it up to [`NOW_WAIT`].
fn lock_account(
    client: &mut ::postgres::Client,
    account: i64,
    wait: bool,
) -> std::result::Result<bool, ::postgres::Error> {
    let key = (LOCK_SPACE, lock_id(account));
    if !wait {
        return Ok(client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&key.0, &key.1])?
            .get(0));
    }
    client.batch_execute(&format!("SET lock_timeout = '{}ms'", NOW_WAIT.as_millis()))?;
    let got = client.execute("SELECT pg_advisory_lock($1, $2)", &[&key.0, &key.1]);
    client.batch_execute("RESET lock_timeout")?;
    match got {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(&::postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Lease {
    /// Takes the lease of the most overdue of `keys` that is free (or
    /// expired) and, with [`Take::Due`], due; `None` when there is none.
    /// The accounts must have their rows ([`postgres::ensure_account`]);
    /// `conn` finds them, and the heartbeat's own connection takes one.
    pub fn take(
        conn: &mut Conn,
        target: &PostgresTarget,
        keys: &[String],
        holder: &str,
        ttl: Duration,
        take: Take,
    ) -> Result<Option<Lease>> {
        let what = describe(target);
        let err = |e: ::postgres::Error| db_error(&what, &e);
        let any = take == Take::Now;
        let candidates: Vec<i64> = conn
            .client
            .query(CANDIDATES, &[&keys, &any])
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut beat_conn = postgres::open(target)?;
        let client = &mut beat_conn.client;
        let mut taken = None;
        for account in candidates {
            // A sync by hand may come right after its predecessor was
            // killed, before the server noticed that connection end: it
            // waits for the lock itself, a few seconds at most.
            let locked = lock_account(client, account, any).map_err(err)?;
            let row = client
                .query_opt(
                    TAKE,
                    &[&account, &holder, &ttl.as_secs_f64(), &locked, &any],
                )
                .map_err(err)?;
            if let Some(row) = row {
                taken = Some((account, row.get::<_, String>(0), row.get::<_, i64>(1)));
                break;
            }
            if locked {
                client
                    .execute(
                        "SELECT pg_advisory_unlock($1, $2)",
                        &[&LOCK_SPACE, &lock_id(account)],
                    )
                    .map_err(err)?;
            }
        }
        let Some((account, key, token)) = taken else {
            return Ok(None);
        };
        let conn = beat_conn;
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
                                lease_locked = false,
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

    /// The connection, or a new one when it was lost. The account's
    /// advisory lock went with the old connection: a new one takes it
    /// again, or, when another worker has it by now, the lease is lost.
    fn reconnect(&self, conn: Option<Conn>) -> Result<Conn> {
        if let Some(c) = conn.filter(|c| !c.client.is_closed()) {
            return Ok(c);
        }
        let mut c = postgres::open(&self.target)?;
        let locked = lock_account(&mut c.client, self.account, false)
            .map_err(|e| db_error(&self.what, &e))?;
        if !locked {
            // Make the lease expire now: the commits under it are refused.
            c.client
                .execute(
                    "UPDATE accounts SET lease_expires = now() WHERE id = $1 AND lease_token = $2",
                    &[&self.account, &self.token],
                )
                .map_err(|e| db_error(&self.what, &e))?;
        }
        Ok(c)
    }
}
