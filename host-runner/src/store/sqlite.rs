//! The embedded default: one SQLite file per account.
//!
//! Schema (`PRAGMA user_version`, migrated forward by [`MIGRATIONS`]):
//!
//! ```sql
//! sync_points(key TEXT PRIMARY KEY, value TEXT NOT NULL)
//! known_records(external_id TEXT PRIMARY KEY, parent_external_id TEXT, path TEXT NOT NULL, data TEXT NOT NULL)  -- data: the record as JSON
//!   INDEX known_records_path(path), INDEX known_records_parent(parent_external_id, path)
//! records(external_id TEXT PRIMARY KEY, parent_external_id TEXT, path TEXT NOT NULL, name TEXT NOT NULL,
//!         is_folder INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL, mime_type TEXT NOT NULL,
//!         modified INTEGER NOT NULL, created INTEGER, permission_letters TEXT NOT NULL, permission TEXT,
//!         permissions_json TEXT NOT NULL, owner_id TEXT, checksums_json TEXT NOT NULL,
//!         version INTEGER NOT NULL, updated_at INTEGER NOT NULL)
//!   INDEX records_path(path)
//! users(id TEXT PRIMARY KEY, display_name TEXT NOT NULL, email TEXT)
//! record_groups(external_id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, owner TEXT NOT NULL)
//! host_identities(account TEXT PRIMARY KEY, user_id TEXT NOT NULL)  -- the host's own; no import reaches it
//! changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, external_id TEXT NOT NULL,
//!         data TEXT NOT NULL, committed_at INTEGER NOT NULL)                       -- since version 2
//! consumers(name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL)
//! sync_runs(id INTEGER PRIMARY KEY, holder TEXT NOT NULL, started_at_ms INTEGER NOT NULL,
//!           finished_at_ms INTEGER, outcome TEXT, error TEXT)                          -- since version 3
//! ```
//!
//! The feed's `seq` is `AUTOINCREMENT`: commits are serialised by SQLite's
//! write lock and a rolled-back commit rolls its numbers back too, so the
//! numbers are gapless, strictly increasing in commit order, and never
//! reused after a trim.

use super::{Backend, Page, SinkColumns, SinkRecord, StoreCounts, SyncRun, Tx, sink_record};
use crate::error::{Error, Result};
use crate::feed::{Change, Kind};
use crate::model::{Record, RecordGroup, User};
use crate::stop::StopFlag;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::Duration;

/// Each entry takes the schema from its index to the next version; a file
/// is only ever moved forward, in one transaction.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: state and sink.
    "CREATE TABLE IF NOT EXISTS sync_points (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS known_records (
        external_id TEXT PRIMARY KEY NOT NULL,
        parent_external_id TEXT,
        path TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS known_records_path ON known_records(path);
    CREATE INDEX IF NOT EXISTS known_records_parent ON known_records(parent_external_id, path);
    CREATE TABLE IF NOT EXISTS records (
        external_id TEXT PRIMARY KEY NOT NULL,
        parent_external_id TEXT,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        is_folder INTEGER NOT NULL,
        etag TEXT NOT NULL,
        size INTEGER NOT NULL,
        mime_type TEXT NOT NULL,
        modified INTEGER NOT NULL,
        created INTEGER,
        permission_letters TEXT NOT NULL,
        permission TEXT,
        permissions_json TEXT NOT NULL,
        owner_id TEXT,
        checksums_json TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS records_path ON records(path);
    CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY NOT NULL,
        display_name TEXT NOT NULL,
        email TEXT
    );
    CREATE TABLE IF NOT EXISTS record_groups (
        external_id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS host_identities (
        account TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL
    );",
    // 1 -> 2: the change feed. (Version 1 files written before the feed
    // existed get it empty: the feed starts at the first commit after.)
    "CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        external_id TEXT NOT NULL,
        data TEXT NOT NULL,
        committed_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS consumers (
        name TEXT PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 2 -> 3: what `status` reports.
    "CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        holder TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER,
        outcome TEXT,
        error TEXT
    );",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How often `changes --follow` looks at SQLite's change counter for the
/// file (`PRAGMA data_version`, read from the WAL index in shared memory):
/// the feed is read again only after another connection committed.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub struct Sqlite {
    conn: Connection,
    /// The last `PRAGMA data_version` `wait_for_commit` saw.
    seen_version: std::cell::Cell<Option<i64>>,
}

fn storage_err(what: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::Storage(format!("{what}: {e}"))
}

impl Sqlite {
    pub fn init(conn: Connection, what: &str) -> Result<Sqlite> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(storage_err(what))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(storage_err(what))?;
        if version > SCHEMA_VERSION {
            return Err(Error::Storage(format!(
                "{what} was written by a newer host-runner (schema {version}; this one knows {SCHEMA_VERSION}); upgrade host-runner or use another file"
            )));
        }
        // `journal_mode` answers with a row; read it rather than execute.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(storage_err(what))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(storage_err(what))?;
        // The files of the feed's first release carry version 1 with the
        // feed's tables: `IF NOT EXISTS` makes migration 2 a no-op there.
        let pending = MIGRATIONS[version.max(0) as usize..].join("\n");
        if !pending.is_empty() {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {pending} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(storage_err(what))?;
        }
        Ok(Sqlite {
            conn,
            seen_version: std::cell::Cell::new(None),
        })
    }

    #[cfg(test)]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// `columns` of the known records of `page`, a row at a time.
    fn page<T>(
        &self,
        page: &Page<'_>,
        columns: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let (low, high) = page.range();
        let sql = format!(
            "SELECT {columns} FROM known_records WHERE path > ?1 AND path < ?2 ORDER BY path {} LIMIT ?3",
            page.direction()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![low, high, i64::from(page.limit)], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn records(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Record>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        rows.map(|d| super::decode_record(&d?)).collect()
    }
}

impl Backend for Sqlite {
    fn get(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM sync_points WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()
            .map_err(Error::from)
    }

    fn host_identity(&self, account: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT user_id FROM host_identities WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_host_identity(&self, account: &str, user_id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO host_identities (account, user_id) VALUES (?1, ?2)
             ON CONFLICT(account) DO UPDATE SET user_id = excluded.user_id",
            params![account, user_id],
        )?;
        Ok(())
    }

    fn lookup(&self, external_ids: &[String]) -> Result<Vec<Option<Record>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM known_records WHERE external_id = ?1")?;
        external_ids
            .iter()
            .map(|id| {
                let data: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
                data.map(|d| super::decode_record(&d)).transpose()
            })
            .collect()
    }

    fn lookup_path(&self, path: &str) -> Result<Option<Record>> {
        Ok(self
            .records(
                "SELECT data FROM known_records WHERE path = ?1 LIMIT 1",
                [path],
            )?
            .pop())
    }

    fn list_under(&self, page: &Page<'_>) -> Result<Vec<Record>> {
        self.page(page, "data", |r| r.get::<_, String>(0))?
            .iter()
            .map(|d| super::decode_record(d))
            .collect()
    }

    fn list_paths_under(&self, page: &Page<'_>) -> Result<Vec<(String, String)>> {
        self.page(page, "external_id, path", |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn children(&self, parent: &str, after: &str, limit: u32) -> Result<Vec<Record>> {
        self.records(
            "SELECT data FROM known_records WHERE parent_external_id = ?1 AND path > ?2
             ORDER BY path ASC LIMIT ?3",
            params![parent, after, i64::from(limit)],
        )
    }

    fn commit(&mut self, apply: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_err("cannot start a transaction"))?;
        apply(&mut SqliteTx(&tx))?;
        tx.commit().map_err(storage_err("commit failed"))
    }

    fn live_records(&self) -> Result<Vec<SinkRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM records ORDER BY path ASC, external_id ASC",
            super::SINK_COLUMNS
        ))?;
        let rows = stmt.query_map([], sink_row)?;
        rows.map(|row| row?).collect()
    }

    fn sync_points(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM sync_points ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    fn users(&self) -> Result<Vec<User>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, display_name, email FROM users ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(User {
                id: r.get(0)?,
                display_name: r.get(1)?,
                email: r.get(2)?,
            })
        })?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    fn record_groups(&self) -> Result<Vec<RecordGroup>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT external_id, name, kind, owner FROM record_groups ORDER BY external_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RecordGroup {
                external_id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                owner: r.get(3)?,
            })
        })?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    fn counts(&self) -> Result<StoreCounts> {
        let count = |sql: &str| -> Result<u64> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(StoreCounts {
            records: count("SELECT COUNT(*) FROM records")?,
            folders: count("SELECT COUNT(*) FROM records WHERE is_folder")?,
            files: count("SELECT COUNT(*) FROM records WHERE NOT is_folder")?,
            known_records: count("SELECT COUNT(*) FROM known_records")?,
            sync_points: count("SELECT COUNT(*) FROM sync_points")?,
            users: count("SELECT COUNT(*) FROM users")?,
            record_groups: count("SELECT COUNT(*) FROM record_groups")?,
        })
    }

    fn feed_read(&self, since: i64, limit: u32) -> Result<Vec<Change>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, external_id, data, committed_at FROM changes
             WHERE seq > ?1 ORDER BY seq ASC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since, i64::from(limit)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.map(|row| {
            let (seq, kind, external_id, data, at): (i64, String, String, String, i64) = row?;
            Change::decode(seq, kind, external_id, &data, at)
        })
        .collect()
    }

    fn feed_head(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    fn consumer_position(&self, consumer: &str, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO consumers (name, position, updated_at) VALUES (?1, 0, ?2)
             ON CONFLICT(name) DO NOTHING",
            params![consumer, now],
        )?;
        Ok(self.conn.query_row(
            "SELECT position FROM consumers WHERE name = ?1",
            [consumer],
            |r| r.get(0),
        )?)
    }

    fn consumer_move(&self, consumer: &str, seq: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE consumers SET position = ?2, updated_at = ?3 WHERE name = ?1 AND position < ?2",
            params![consumer, seq, now],
        )?;
        Ok(())
    }

    fn feed_trim(&self, before: i64) -> Result<u64> {
        let slowest: Option<i64> =
            self.conn
                .query_row("SELECT MIN(position) FROM consumers", [], |r| r.get(0))?;
        let upto = slowest.unwrap_or(i64::MAX);
        let n = self.conn.execute(
            "DELETE FROM changes WHERE seq <= ?1 AND committed_at < ?2",
            params![upto, before],
        )?;
        Ok(n as u64)
    }

    fn wait_for_commit(&self, stop: &StopFlag) -> Result<bool> {
        let mut seen = match self.seen_version.get() {
            Some(v) => v,
            None => self.data_version()?,
        };
        loop {
            if stop.sleep(FOLLOW_POLL) {
                self.seen_version.set(Some(seen));
                return Ok(false);
            }
            let version = self.data_version()?;
            if version != seen {
                seen = version;
                self.seen_version.set(Some(seen));
                return Ok(true);
            }
        }
    }

    fn run_started(&self, holder: &str, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO sync_runs (holder, started_at_ms) VALUES (?1, ?2)",
            params![holder, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn run_finished(
        &self,
        run: i64,
        outcome: &str,
        error: Option<&str>,
        now: i64,
        keep: u32,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE sync_runs SET finished_at_ms = ?2, outcome = ?3, error = ?4 WHERE id = ?1",
            params![run, now, outcome, error],
        )?;
        // One account a file: its run ids are consecutive.
        self.conn.execute(
            "DELETE FROM sync_runs WHERE id <= ?1 - ?2",
            params![run, i64::from(keep)],
        )?;
        Ok(())
    }

    fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT holder, started_at_ms, finished_at_ms, outcome, error FROM sync_runs
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::from(limit)], |r| {
            Ok(SyncRun {
                holder: r.get(0)?,
                token: None,
                started_at_ms: r.get(1)?,
                heartbeat_at_ms: None,
                finished_at_ms: r.get(2)?,
                outcome: r.get(3)?,
                error: r.get(4)?,
            })
        })?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }
}

fn sink_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SinkRecord>> {
    Ok(sink_record(
        SinkRecord {
            record: Record {
                external_id: r.get(0)?,
                parent_external_id: r.get(1)?,
                path: r.get(2)?,
                name: r.get(3)?,
                is_folder: r.get(4)?,
                etag: r.get(5)?,
                size: r.get::<_, i64>(6)?.max(0) as u64,
                mime_type: r.get(7)?,
                modified: r.get(8)?,
                created: r.get(9)?,
                permission_letters: r.get(10)?,
                permissions: Vec::new(),
                owner_id: r.get(13)?,
                checksums: Vec::new(),
            },
            permission: r.get(11)?,
            version: r.get(15)?,
            updated_at: r.get(16)?,
        },
        &r.get::<_, String>(12)?,
        &r.get::<_, String>(14)?,
    ))
}

/// The writes of one commit, inside SQLite's transaction.
struct SqliteTx<'t, 'c>(&'t rusqlite::Transaction<'c>);

impl Tx for SqliteTx<'_, '_> {
    fn set_sync_point(&mut self, key: &str, value: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO sync_points (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    fn put_known(&mut self, record: &Record, data: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO known_records (external_id, parent_external_id, path, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(external_id) DO UPDATE SET parent_external_id = excluded.parent_external_id,
                     path = excluded.path, data = excluded.data",
            )?
            .execute(params![
                record.external_id,
                record.parent_external_id,
                record.path,
                data
            ])?;
        Ok(())
    }

    fn remove_known(&mut self, external_id: &str) -> Result<()> {
        self.0
            .prepare_cached("DELETE FROM known_records WHERE external_id = ?1")?
            .execute([external_id])?;
        Ok(())
    }

    fn upsert_user(&mut self, user: &User) -> Result<bool> {
        let changed = self
            .0
            .prepare_cached(
                "INSERT INTO users (id, display_name, email) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, email = excluded.email
                 WHERE display_name IS NOT excluded.display_name OR email IS NOT excluded.email",
            )?
            .execute(params![user.id, user.display_name, user.email])?;
        Ok(changed > 0)
    }

    fn upsert_group(&mut self, group: &RecordGroup) -> Result<bool> {
        let changed = self
            .0
            .prepare_cached(
                "INSERT INTO record_groups (external_id, name, kind, owner) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(external_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, owner = excluded.owner
                 WHERE name IS NOT excluded.name OR kind IS NOT excluded.kind OR owner IS NOT excluded.owner",
            )?
            .execute(params![group.external_id, group.name, group.kind, group.owner])?;
        Ok(changed > 0)
    }

    fn delete_record(&mut self, external_id: &str) -> Result<Option<SinkRecord>> {
        self.0
            .prepare_cached(&format!(
                "DELETE FROM records WHERE external_id = ?1 RETURNING {}",
                super::SINK_COLUMNS
            ))?
            .query_row([external_id], sink_row)
            .optional()?
            .transpose()
    }

    fn upsert_record(&mut self, r: &Record, c: &SinkColumns<'_>) -> Result<i64> {
        Ok(self
            .0
            .prepare_cached(
                "INSERT INTO records (external_id, parent_external_id, path, name, is_folder, etag, size,
                    mime_type, modified, created, permission_letters, permission, permissions_json, owner_id,
                    checksums_json, version, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1, ?16)
                 ON CONFLICT(external_id) DO UPDATE SET
                    parent_external_id = excluded.parent_external_id, path = excluded.path,
                    name = excluded.name, is_folder = excluded.is_folder, etag = excluded.etag,
                    size = excluded.size, mime_type = excluded.mime_type, modified = excluded.modified,
                    created = excluded.created, permission_letters = excluded.permission_letters,
                    permission = excluded.permission, permissions_json = excluded.permissions_json,
                    owner_id = excluded.owner_id, checksums_json = excluded.checksums_json,
                    version = records.version + ?17, updated_at = excluded.updated_at
                 RETURNING version",
            )?
            .query_row(
                params![
                    r.external_id,
                    r.parent_external_id,
                    r.path,
                    r.name,
                    r.is_folder,
                    r.etag,
                    c.size,
                    r.mime_type,
                    r.modified,
                    r.created,
                    r.permission_letters,
                    c.permission,
                    c.permissions_json,
                    r.owner_id,
                    c.checksums_json,
                    c.now,
                    c.bump,
                ],
                |row| row.get::<_, i64>(0),
            )?)
    }

    fn append_change(&mut self, kind: Kind, external_id: &str, data: &str, now: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO changes (kind, external_id, data, committed_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![kind.as_str(), external_id, data, now])?;
        Ok(())
    }
}
