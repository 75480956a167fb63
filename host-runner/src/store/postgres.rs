//! PostgreSQL: one database shared by many accounts and workers.
//!
//! Every table lives in the schema `nextcloud_connector` and every row
//! carries its account's id, so accounts (two configuration files, two
//! Nextcloud logins) never see each other's state. An account is one login
//! at one install ([`crate::config::Config::account_key`]).
//!
//! ```sql
//! schema_version(version INTEGER NOT NULL)                 -- one row; migrated forward, never reset
//! accounts(id BIGSERIAL PRIMARY KEY, key TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
//!          feed_head BIGINT NOT NULL,                      -- the newest seq of the account's feed
//!          lease_holder TEXT, lease_token BIGINT NOT NULL, lease_expires TIMESTAMPTZ,
//!          lease_locked BOOLEAN NOT NULL, next_due TIMESTAMPTZ)  -- see crate::lease
//! sync_points(account_id, key, value)                      -- PRIMARY KEY (account_id, key)
//! known_records(account_id, external_id, parent_external_id, path TEXT COLLATE "C", data TEXT)
//! records(account_id, external_id, ... as in SQLite ..., permissions_json JSONB, checksums_json JSONB)
//! users(account_id, id, display_name, email)
//! record_groups(account_id, external_id, name, kind, owner)
//! host_identities(account TEXT PRIMARY KEY, user_id TEXT NOT NULL)
//! changes(account_id, seq BIGINT, kind TEXT, external_id TEXT, data JSONB, committed_at BIGINT)
//!                                                          -- PRIMARY KEY (account_id, seq)
//! consumers(account_id, name, position BIGINT, updated_at BIGINT)
//! sync_runs(id BIGSERIAL, account_id, holder, token, started_at_ms, heartbeat_at_ms, finished_at_ms, outcome, error)
//! ```
//!
//! Paths are compared bytewise (`COLLATE "C"`), as SQLite does: the subtree
//! ranges of [`super::Page`] depend on it.
//!
//! The feed's numbers: a commit locks its account's row (`FOR UPDATE`),
//! numbers its changes from `feed_head` and stores the new head in the same
//! transaction. Commits of one account are serialised by that lock, and a
//! rolled-back commit leaves the head where it was, so the numbers are
//! gapless, strictly increasing in commit order and never reused. The same
//! lock fences a worker whose lease another took over: the commit checks
//! that its lease token is still the account's and unexpired, or fails with
//! [`Error::Busy`] before anything is written.

use super::{Backend, LeaseState, Page, SinkColumns, SinkRecord, StoreCounts, SyncRun, Tx};
use crate::database::PostgresTarget;
use crate::error::{Error, Result};
use crate::feed::{Change, Kind};
use crate::model::{Record, RecordGroup, User};
use crate::stop::StopFlag;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Statement};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Each entry takes the schema from its index to the next version.
const MIGRATIONS: &[&str] = &["
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    feed_head BIGINT NOT NULL DEFAULT 0,
    lease_holder TEXT,
    lease_token BIGINT NOT NULL DEFAULT 0,
    lease_expires TIMESTAMPTZ,
    lease_locked BOOLEAN NOT NULL DEFAULT false,
    next_due TIMESTAMPTZ
);
CREATE TABLE sync_points (
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
);
-- The tables written once per record carry no foreign key: a check per row
-- against `accounts`, whose rows every commit updates, cost more than the
-- write (and the planner turned it into a scan of every version of every
-- account row). Only this module writes account ids.
CREATE TABLE known_records (
    account_id BIGINT NOT NULL,
    external_id TEXT NOT NULL,
    parent_external_id TEXT,
    path TEXT COLLATE \"C\" NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, external_id)
);
CREATE INDEX known_records_path ON known_records(account_id, path);
CREATE INDEX known_records_parent ON known_records(account_id, parent_external_id, path);
CREATE TABLE records (
    account_id BIGINT NOT NULL,
    external_id TEXT NOT NULL,
    parent_external_id TEXT,
    path TEXT COLLATE \"C\" NOT NULL,
    name TEXT NOT NULL,
    is_folder BOOLEAN NOT NULL,
    etag TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime_type TEXT NOT NULL,
    modified BIGINT NOT NULL,
    created BIGINT,
    permission_letters TEXT NOT NULL,
    permission TEXT,
    permissions_json JSONB NOT NULL,
    owner_id TEXT,
    checksums_json JSONB NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, external_id)
);
CREATE INDEX records_path ON records(account_id, path);
CREATE TABLE users (
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE record_groups (
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (account_id, external_id)
);
CREATE TABLE host_identities (
    account TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE changes (
    account_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    data JSONB NOT NULL,
    committed_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE TABLE consumers (
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    position BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    holder TEXT NOT NULL,
    token BIGINT,
    started_at_ms BIGINT NOT NULL,
    heartbeat_at_ms BIGINT,
    finished_at_ms BIGINT,
    outcome TEXT,
    error TEXT
);
CREATE INDEX sync_runs_account ON sync_runs(account_id, id);
"];

pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Every worker and command takes this transaction-scoped advisory lock
/// before it looks at the schema, so two starting at once do not both
/// migrate.
const MIGRATION_LOCK: i64 = 0x6e63_636f_6e6e_6563; // "ncconnec"

/// The channel commits notify with their account's id, for `changes --follow`.
pub const FEED_CHANNEL: &str = "nextcloud_connector_feed";

/// How `changes --follow` waits between looks at the stop flag.
const FOLLOW_TICK: Duration = Duration::from_millis(200);

/// A connection with its prepared statements.
pub struct Conn {
    pub client: Client,
    statements: Statements,
}

/// A connection's prepared statements, by their SQL: each is parsed and
/// planned by the server once, inside a transaction or not.
#[derive(Default)]
struct Statements(HashMap<String, Statement>);

impl Statements {
    fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.0.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// What messages call the database: its URL, never its password.
pub fn describe(target: &PostgresTarget) -> String {
    format!("PostgreSQL database `{}`", target.url)
}

/// Wraps a driver error with the database it came from, the server's reason
/// and what to do.
pub fn db_error(what: &str, e: &postgres::Error) -> Error {
    // The driver's own text for an error the server sent is just "db
    // error"; the reason is the server's message.
    let reason = match e.as_db_error() {
        Some(db) => {
            let mut reason = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                reason.push_str(&format!(" ({detail})"));
            }
            reason
        }
        None => {
            let mut reason = e.to_string();
            if let Some(source) = std::error::Error::source(e) {
                let source = source.to_string();
                if !reason.contains(&source) {
                    reason.push_str(&format!(": {source}"));
                }
            }
            reason
        }
    };
    let hint = if e.as_db_error().is_some_and(|d| d.code().code() == "28P01") {
        "; check the role and the password in the variable named by `database_password_env` (default PGPASSWORD) or in `database_password_file`"
    } else if e.is_closed() || e.as_db_error().is_none() {
        "; check that PostgreSQL runs and is reachable; nothing of an unfinished batch was committed, and the next run goes on from the last commit"
    } else {
        ""
    };
    Error::Storage(format!("{what}: {reason}{hint}"))
}

/// Connects and migrates the schema forward.
pub fn connect_only(target: &PostgresTarget) -> Result<Conn> {
    let mut conn = open(target)?;
    migrate(&mut conn.client, &describe(target))?;
    Ok(conn)
}

/// Connects to a database this process already migrated (a lease's
/// heartbeat): no look at the schema.
pub fn open(target: &PostgresTarget) -> Result<Conn> {
    let what = describe(target);
    let mut client = target
        .client_config()?
        .connect(NoTls)
        .map_err(|e| db_error(&what, &e))?;
    use_schema(&mut client, &what)?;
    Ok(Conn {
        client,
        statements: Statements::default(),
    })
}

/// Every later statement of the connection names the schema's tables
/// without a prefix.
fn use_schema(client: &mut Client, what: &str) -> Result<()> {
    client
        .batch_execute("SET search_path TO nextcloud_connector")
        .map_err(|e| db_error(what, &e))
}

/// Makes sure the account has its row; its id.
pub fn ensure_account(conn: &mut Conn, what: &str, key: &str, name: &str) -> Result<i64> {
    Ok(conn
        .client
        .query_one(
            // Every connection asks; only a new account or a new name
            // writes (a row version per connection bloated the hot table).
            "WITH written AS (
                INSERT INTO accounts (key, name) VALUES ($1, $2)
                ON CONFLICT (key) DO UPDATE SET name = excluded.name
                WHERE accounts.name IS DISTINCT FROM excluded.name
                RETURNING id)
             SELECT id FROM written UNION ALL SELECT id FROM accounts WHERE key = $1 LIMIT 1",
            &[&key, &name],
        )
        .map_err(|e| db_error(what, &e))?
        .get(0))
}

/// Connects, migrates the schema forward and makes sure the account has its
/// row; the connection and the account's id.
pub fn connect(target: &PostgresTarget, key: &str, name: &str) -> Result<(Conn, i64)> {
    let mut conn = connect_only(target)?;
    let account = ensure_account(&mut conn, &describe(target), key, name)?;
    Ok((conn, account))
}

fn migrate(client: &mut Client, what: &str) -> Result<()> {
    let err = |e: postgres::Error| db_error(what, &e);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS nextcloud_connector;
         SET LOCAL search_path TO nextcloud_connector;
         CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
    )
    .map_err(err)?;
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(err)?
        .map(|r| r.get(0));
    let version = version.unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "{what} was written by a newer host-runner (schema {version}; this one knows {SCHEMA_VERSION}); upgrade host-runner"
        )));
    }
    for migration in &MIGRATIONS[version as usize..] {
        tx.batch_execute(migration).map_err(err)?;
    }
    if version < SCHEMA_VERSION {
        tx.execute("DELETE FROM schema_version", &[]).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

/// One account's part of a PostgreSQL database.
pub struct Postgres {
    conn: Mutex<Conn>,
    account: i64,
    what: String,
    /// The lease token commits must still hold (set while a sync runs).
    fence: Option<i64>,
    listening: std::sync::atomic::AtomicBool,
}

impl Postgres {
    pub fn connect(target: &PostgresTarget, key: &str, name: &str) -> Result<Postgres> {
        let (conn, account) = connect(target, key, name)?;
        Ok(Postgres {
            conn: Mutex::new(conn),
            account,
            what: describe(target),
            fence: None,
            listening: false.into(),
        })
    }

    /// Runs `f` on the connection; errors name the database.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| db_error(&self.what, &e))
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        self.with(|c| {
            let s = c.statements.get(&mut c.client, sql)?;
            c.client.query(&s, params)
        })
    }

    /// `columns` of the known records of `page`.
    fn page(&self, page: &Page<'_>, columns: &str) -> Result<Vec<postgres::Row>> {
        let (low, high) = page.range();
        let sql = format!(
            "SELECT {columns} FROM known_records WHERE account_id = $1 AND path > $2 AND path < $3
             ORDER BY path {} LIMIT $4",
            page.direction()
        );
        let limit = i64::from(page.limit);
        self.query(&sql, &[&self.account, &low, &high, &limit])
    }

    fn records(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Record>> {
        self.query(sql, params)?
            .iter()
            .map(|r| super::decode_record(r.get(0)))
            .collect()
    }
}

fn sink_row(r: &postgres::Row) -> Result<SinkRecord> {
    super::sink_record(
        SinkRecord {
            record: Record {
                external_id: r.get(0),
                parent_external_id: r.get(1),
                path: r.get(2),
                name: r.get(3),
                is_folder: r.get(4),
                etag: r.get(5),
                size: r.get::<_, i64>(6).max(0) as u64,
                mime_type: r.get(7),
                modified: r.get(8),
                created: r.get(9),
                permission_letters: r.get(10),
                permissions: Vec::new(),
                owner_id: r.get(13),
                checksums: Vec::new(),
            },
            permission: r.get(11),
            version: r.get(15),
            updated_at: r.get(16),
        },
        r.get(12),
        r.get(14),
    )
}

impl Backend for Postgres {
    fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .query(
                "SELECT value FROM sync_points WHERE account_id = $1 AND key = $2",
                &[&self.account, &key],
            )?
            .first()
            .map(|r| r.get(0)))
    }

    fn host_identity(&self, account: &str) -> Result<Option<String>> {
        Ok(self
            .query(
                "SELECT user_id FROM host_identities WHERE account = $1",
                &[&account],
            )?
            .first()
            .map(|r| r.get(0)))
    }

    fn set_host_identity(&self, account: &str, user_id: &str) -> Result<()> {
        self.query(
            "INSERT INTO host_identities (account, user_id) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE SET user_id = excluded.user_id",
            &[&account, &user_id],
        )
        .map(drop)
    }

    fn lookup(&self, external_ids: &[String]) -> Result<Vec<Option<Record>>> {
        // One round trip for the whole list.
        let rows = self.query(
            "SELECT external_id, data FROM known_records
             WHERE account_id = $1 AND external_id = ANY($2)",
            &[&self.account, &external_ids],
        )?;
        let mut found: HashMap<String, String> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        external_ids
            .iter()
            .map(|id| {
                found
                    .remove(id)
                    .map(|d| super::decode_record(&d))
                    .transpose()
            })
            .collect()
    }

    fn lookup_path(&self, path: &str) -> Result<Option<Record>> {
        Ok(self
            .records(
                "SELECT data FROM known_records WHERE account_id = $1 AND path = $2 LIMIT 1",
                &[&self.account, &path],
            )?
            .pop())
    }

    fn list_under(&self, page: &Page<'_>) -> Result<Vec<Record>> {
        self.page(page, "data")?
            .iter()
            .map(|r| super::decode_record(r.get(0)))
            .collect()
    }

    fn list_paths_under(&self, page: &Page<'_>) -> Result<Vec<(String, String)>> {
        Ok(self
            .page(page, "external_id, path")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn children(&self, parent: &str, after: &str, limit: u32) -> Result<Vec<Record>> {
        self.records(
            "SELECT data FROM known_records
             WHERE account_id = $1 AND parent_external_id = $2 AND path > $3
             ORDER BY path ASC LIMIT $4",
            &[&self.account, &parent, &after, &i64::from(limit)],
        )
    }

    fn commit(&mut self, apply: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let what = self.what.clone();
        let err = |e: postgres::Error| db_error(&what, &e);
        let account = self.account;
        let fence = self.fence;
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let Conn { client, statements } = &mut *guard;
        let mut tx = client.transaction().map_err(err)?;
        let row = tx
            .query_one(
                "SELECT feed_head, lease_token, lease_holder IS NOT NULL AND lease_expires > now()
                 FROM accounts WHERE id = $1 FOR UPDATE",
                &[&account],
            )
            .map_err(err)?;
        let head: i64 = row.get(0);
        if let Some(token) = fence {
            let (current, live): (i64, bool) = (row.get(1), row.get(2));
            if current != token || !live {
                return Err(Error::Busy(format!(
                    "this worker's lease on the account ended (another worker may have taken it over); the batch was not committed and the account's next sync goes on from the last commit ({what})"
                )));
            }
        }
        let mut writes = PgTx {
            tx: &mut tx,
            statements,
            what: &what,
            account,
            head,
            known: KnownRows::default(),
            changes: ChangeRows::default(),
        };
        apply(&mut writes)?;
        writes.flush_known()?;
        writes.flush_changes()?;
        let new_head = writes.head;
        if new_head != head {
            tx.execute(
                "UPDATE accounts SET feed_head = $2 WHERE id = $1",
                &[&account, &new_head],
            )
            .map_err(err)?;
            // Delivered only if the transaction commits.
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&FEED_CHANNEL, &account.to_string()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn live_records(&self) -> Result<Vec<SinkRecord>> {
        self.query(
            "SELECT external_id, parent_external_id, path, name, is_folder, etag, size,
                mime_type, modified, created, permission_letters, permission, permissions_json::text,
                owner_id, checksums_json::text, version, updated_at
             FROM records WHERE account_id = $1 ORDER BY path ASC, external_id ASC",
            &[&self.account],
        )?
            .iter()
            .map(sink_row)
            .collect()
    }

    fn sync_points(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .query(
                "SELECT key, value FROM sync_points WHERE account_id = $1 ORDER BY key",
                &[&self.account],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn users(&self) -> Result<Vec<User>> {
        Ok(self
            .query(
                "SELECT id, display_name, email FROM users WHERE account_id = $1 ORDER BY id",
                &[&self.account],
            )?
            .iter()
            .map(|r| User {
                id: r.get(0),
                display_name: r.get(1),
                email: r.get(2),
            })
            .collect())
    }

    fn record_groups(&self) -> Result<Vec<RecordGroup>> {
        Ok(self
            .query(
                "SELECT external_id, name, kind, owner FROM record_groups
                 WHERE account_id = $1 ORDER BY external_id",
                &[&self.account],
            )?
            .iter()
            .map(|r| RecordGroup {
                external_id: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                owner: r.get(3),
            })
            .collect())
    }

    fn counts(&self) -> Result<StoreCounts> {
        let rows = self.query(
            "SELECT
                (SELECT COUNT(*) FROM records WHERE account_id = $1),
                (SELECT COUNT(*) FROM records WHERE account_id = $1 AND is_folder),
                (SELECT COUNT(*) FROM known_records WHERE account_id = $1),
                (SELECT COUNT(*) FROM sync_points WHERE account_id = $1),
                (SELECT COUNT(*) FROM users WHERE account_id = $1),
                (SELECT COUNT(*) FROM record_groups WHERE account_id = $1)",
            &[&self.account],
        )?;
        let r = &rows[0];
        let n = |i: usize| r.get::<_, i64>(i) as u64;
        Ok(StoreCounts {
            records: n(0),
            folders: n(1),
            files: n(0) - n(1),
            known_records: n(2),
            sync_points: n(3),
            users: n(4),
            record_groups: n(5),
        })
    }

    fn feed_read(&self, since: i64, limit: u32) -> Result<Vec<Change>> {
        self.query(
            "SELECT seq, kind, external_id, data::text, committed_at FROM changes
             WHERE account_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3",
            &[&self.account, &since, &i64::from(limit)],
        )?
        .into_iter()
        .map(|r| Change::decode(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
    }

    fn feed_head(&self) -> Result<i64> {
        Ok(self
            .query(
                "SELECT feed_head FROM accounts WHERE id = $1",
                &[&self.account],
            )?
            .first()
            .map_or(0, |r| r.get(0)))
    }

    fn consumer_position(&self, consumer: &str, now: i64) -> Result<i64> {
        self.query(
            "INSERT INTO consumers (account_id, name, position, updated_at) VALUES ($1, $2, 0, $3)
             ON CONFLICT (account_id, name) DO NOTHING",
            &[&self.account, &consumer, &now],
        )?;
        Ok(self
            .query(
                "SELECT position FROM consumers WHERE account_id = $1 AND name = $2",
                &[&self.account, &consumer],
            )?
            .first()
            .map_or(0, |r| r.get(0)))
    }

    fn consumer_move(&self, consumer: &str, seq: i64, now: i64) -> Result<()> {
        self.query(
            "UPDATE consumers SET position = $3, updated_at = $4
             WHERE account_id = $1 AND name = $2 AND position < $3",
            &[&self.account, &consumer, &seq, &now],
        )
        .map(drop)
    }

    fn feed_trim(&self, before: i64) -> Result<u64> {
        self.with(|c| {
            c.client.execute(
                "DELETE FROM changes WHERE account_id = $1 AND committed_at < $2
                 AND seq <= COALESCE((SELECT MIN(position) FROM consumers WHERE account_id = $1), 9223372036854775807)",
                &[&self.account, &before],
            )
        })
    }

    fn wait_for_commit(&self, stop: &StopFlag) -> Result<bool> {
        use std::sync::atomic::Ordering;
        let me = self.account.to_string();
        self.with(|c| {
            if !self.listening.swap(true, Ordering::SeqCst) {
                c.client.batch_execute(&format!("LISTEN {FEED_CHANNEL}"))?;
                // A commit between the caller's last read and LISTEN would
                // not be announced: read once more.
                return Ok(true);
            }
            loop {
                let mut notes = c.client.notifications();
                let mut waiting = notes.timeout_iter(FOLLOW_TICK);
                while let Some(note) = waiting.next()? {
                    if note.payload() == me {
                        return Ok(true);
                    }
                }
                drop(waiting);
                if stop.is_requested() {
                    return Ok(false);
                }
            }
        })
    }

    fn run_started(&self, holder: &str, now: i64) -> Result<i64> {
        Ok(self.query(
            "INSERT INTO sync_runs (account_id, holder, token, started_at_ms, heartbeat_at_ms)
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
            &[&self.account, &holder, &self.fence, &now],
        )?[0]
            .get(0))
    }

    fn run_finished(
        &self,
        run: i64,
        outcome: &str,
        error: Option<&str>,
        now: i64,
        keep: u32,
    ) -> Result<()> {
        self.query(
            "UPDATE sync_runs SET finished_at_ms = $2, outcome = $3, error = $4 WHERE id = $1",
            &[&run, &now, &outcome, &error],
        )?;
        // The accounts' runs interleave: the cut is the account's own.
        self.query(
            "DELETE FROM sync_runs WHERE account_id = $1 AND id <= (
                SELECT id FROM sync_runs WHERE account_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
            &[&self.account, &i64::from(keep)],
        )
        .map(drop)
    }

    fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>> {
        Ok(self
            .query(
                "SELECT holder, token, started_at_ms, heartbeat_at_ms, finished_at_ms, outcome, error
                 FROM sync_runs WHERE account_id = $1 ORDER BY id DESC LIMIT $2",
                &[&self.account, &i64::from(limit)],
            )?
            .iter()
            .map(|r| SyncRun {
                holder: r.get(0),
                token: r.get(1),
                started_at_ms: r.get(2),
                heartbeat_at_ms: r.get(3),
                finished_at_ms: r.get(4),
                outcome: r.get(5),
                error: r.get(6),
            })
            .collect())
    }

    fn fence(&mut self, token: i64) {
        self.fence = Some(token);
    }

    fn lease_state(&self) -> Result<Option<LeaseState>> {
        Ok(self
            .query(
                "SELECT lease_holder, lease_token,
                        (extract(epoch FROM lease_expires - now()) * 1000)::bigint,
                        (extract(epoch FROM next_due - now()) * 1000)::bigint
                   FROM accounts WHERE id = $1",
                &[&self.account],
            )?
            .first()
            .map(|r| LeaseState {
                holder: r.get(0),
                token: r.get(1),
                expires_in_ms: r.get(2),
                due_in_ms: r.get(3),
            }))
    }
}

/// The writes of one commit, inside the account's transaction.
struct PgTx<'a, 't> {
    tx: &'a mut postgres::Transaction<'t>,
    statements: &'a mut Statements,
    /// The database, for messages.
    what: &'a str,
    account: i64,
    /// The last sequence number given out.
    head: i64,
    /// Known records and feed entries wait here and go in one statement
    /// each (a round trip apiece cost more than the writes): nothing a
    /// commit reads is in those tables, and a known record staged twice
    /// sends the first first.
    known: KnownRows,
    changes: ChangeRows,
}

#[derive(Default)]
struct KnownRows {
    ids: Vec<String>,
    parents: Vec<Option<String>>,
    paths: Vec<String>,
    data: Vec<String>,
    /// `ids`, to see a second write of one.
    seen: std::collections::HashSet<String>,
}

#[derive(Default)]
struct ChangeRows {
    seqs: Vec<i64>,
    kinds: Vec<&'static str>,
    ids: Vec<String>,
    data: Vec<String>,
    at: Vec<i64>,
}

impl PgTx<'_, '_> {
    fn flush_known(&mut self) -> Result<()> {
        if self.known.ids.is_empty() {
            return Ok(());
        }
        let k = std::mem::take(&mut self.known);
        let a = self.account;
        self.run(
            "INSERT INTO known_records (account_id, external_id, parent_external_id, path, data)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (account_id, external_id) DO UPDATE SET
                parent_external_id = excluded.parent_external_id, path = excluded.path, data = excluded.data",
            &[&a, &k.ids, &k.parents, &k.paths, &k.data],
        )
        .map(drop)
    }

    fn flush_changes(&mut self) -> Result<()> {
        if self.changes.seqs.is_empty() {
            return Ok(());
        }
        let c = std::mem::take(&mut self.changes);
        let a = self.account;
        self.run(
            "INSERT INTO changes (account_id, seq, kind, external_id, data, committed_at)
             SELECT $1, seq, kind, external_id, data::jsonb, committed_at
               FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                 AS u(seq, kind, external_id, data, committed_at)",
            &[&a, &c.seqs, &c.kinds, &c.ids, &c.data, &c.at],
        )
        .map(drop)
    }

    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.prepare(sql)?;
        let what = self.what;
        self.tx.execute(&s, params).map_err(|e| db_error(what, &e))
    }

    fn rows(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let s = self.prepare(sql)?;
        let what = self.what;
        self.tx.query(&s, params).map_err(|e| db_error(what, &e))
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let what = self.what;
        self.statements
            .get(self.tx, sql)
            .map_err(|e| db_error(what, &e))
    }
}

impl Tx for PgTx<'_, '_> {
    fn set_sync_point(&mut self, key: &str, value: &str) -> Result<()> {
        let a = self.account;
        self.run(
            "INSERT INTO sync_points (account_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
            &[&a, &key, &value],
        )
        .map(drop)
    }

    fn put_known(&mut self, record: &Record, data: &str) -> Result<()> {
        // One statement cannot write a row twice.
        if self.known.seen.contains(&record.external_id) {
            self.flush_known()?;
        }
        let k = &mut self.known;
        k.seen.insert(record.external_id.clone());
        k.ids.push(record.external_id.clone());
        k.parents.push(record.parent_external_id.clone());
        k.paths.push(record.path.clone());
        k.data.push(data.to_string());
        Ok(())
    }

    fn remove_known(&mut self, external_id: &str) -> Result<()> {
        self.flush_known()?;
        let a = self.account;
        self.run(
            "DELETE FROM known_records WHERE account_id = $1 AND external_id = $2",
            &[&a, &external_id],
        )
        .map(drop)
    }

    fn upsert_user(&mut self, user: &User) -> Result<bool> {
        let a = self.account;
        Ok(self.run(
            "INSERT INTO users (account_id, id, display_name, email) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, id) DO UPDATE SET display_name = excluded.display_name, email = excluded.email
             WHERE users.display_name IS DISTINCT FROM excluded.display_name
                OR users.email IS DISTINCT FROM excluded.email",
            &[&a, &user.id, &user.display_name, &user.email],
        )? > 0)
    }

    fn upsert_group(&mut self, group: &RecordGroup) -> Result<bool> {
        let a = self.account;
        Ok(self.run(
            "INSERT INTO record_groups (account_id, external_id, name, kind, owner) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, external_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, owner = excluded.owner
             WHERE record_groups.name IS DISTINCT FROM excluded.name
                OR record_groups.kind IS DISTINCT FROM excluded.kind
                OR record_groups.owner IS DISTINCT FROM excluded.owner",
            &[&a, &group.external_id, &group.name, &group.kind, &group.owner],
        )? > 0)
    }

    fn delete_record(&mut self, external_id: &str) -> Result<Option<SinkRecord>> {
        let a = self.account;
        const SQL: &str = "DELETE FROM records WHERE account_id = $1 AND external_id = $2 RETURNING \
            external_id, parent_external_id, path, name, is_folder, etag, size, \
            mime_type, modified, created, permission_letters, permission, permissions_json::text, \
            owner_id, checksums_json::text, version, updated_at";
        self.rows(SQL, &[&a, &external_id])?
            .first()
            .map(sink_row)
            .transpose()
    }

    fn upsert_record(&mut self, r: &Record, c: &SinkColumns<'_>) -> Result<i64> {
        let a = self.account;
        let rows = self.rows(
            "INSERT INTO records (account_id, external_id, parent_external_id, path, name, is_folder, etag, size,
                mime_type, modified, created, permission_letters, permission, permissions_json, owner_id,
                checksums_json, version, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15,
                $16::text::jsonb, 1, $17)
             ON CONFLICT (account_id, external_id) DO UPDATE SET
                parent_external_id = excluded.parent_external_id, path = excluded.path,
                name = excluded.name, is_folder = excluded.is_folder, etag = excluded.etag,
                size = excluded.size, mime_type = excluded.mime_type, modified = excluded.modified,
                created = excluded.created, permission_letters = excluded.permission_letters,
                permission = excluded.permission, permissions_json = excluded.permissions_json,
                owner_id = excluded.owner_id, checksums_json = excluded.checksums_json,
                version = records.version + $18, updated_at = excluded.updated_at
             RETURNING version",
            &[
                &a,
                &r.external_id,
                &r.parent_external_id,
                &r.path,
                &r.name,
                &r.is_folder,
                &r.etag,
                &c.size,
                &r.mime_type,
                &r.modified,
                &r.created,
                &r.permission_letters,
                &c.permission,
                &c.permissions_json,
                &r.owner_id,
                &c.checksums_json,
                &c.now,
                &c.bump,
            ],
        )?;
        Ok(rows[0].get(0))
    }

    fn append_change(&mut self, kind: Kind, external_id: &str, data: &str, now: i64) -> Result<()> {
        self.head += 1;
        let c = &mut self.changes;
        c.seqs.push(self.head);
        c.kinds.push(kind.as_str());
        c.ids.push(external_id.to_string());
        c.data.push(data.to_string());
        c.at.push(now);
        Ok(())
    }
}
