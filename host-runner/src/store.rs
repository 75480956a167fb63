//! One SQLite file holds the connector's state and the records sink.
//!
//! Writes from the connector (`storage.set/put/remove`, `records.on-*`) are
//! staged in memory, in the order they were made, and applied by
//! [`Store::commit`] in one transaction: a batch of records becomes durable
//! together with the sync points that cover it, or not at all. Reads
//! (`get`, `lookup`, `list_under`) see committed state only.
//!
//! Schema (`PRAGMA user_version = 1`):
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
//! ```
//!
//! and the change feed's tables ([`crate::feed`]), written in the same
//! transaction as the records.

use crate::error::{Error, Result};
use crate::feed::{self, Kind};
use crate::model::{Order, Permission, Principal, Record, RecordChange, RecordGroup, User};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sync_points (
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
);
";

/// A staged write, kept in the order the connector made it.
#[derive(Debug, Clone, PartialEq)]
enum Staged {
    SyncPoint(String, String),
    Put(Record),
    Remove(String),
    User(User),
    Group(RecordGroup),
    Change(RecordChange),
}

impl Staged {
    /// Its heap bytes plus its own size: what the staging budget counts.
    fn footprint(&self) -> u64 {
        let strings: usize = match self {
            Staged::SyncPoint(key, value) => key.len() + value.len(),
            Staged::Put(record) => record_heap(record),
            Staged::Remove(id) | Staged::Change(RecordChange::Deleted(id)) => id.len(),
            Staged::User(u) => u.id.len() + u.display_name.len() + opt_len(&u.email),
            Staged::Group(g) => g.external_id.len() + g.name.len() + g.kind.len() + g.owner.len(),
            Staged::Change(
                RecordChange::New(r)
                | RecordChange::ContentUpdated(r)
                | RecordChange::MetadataUpdated(r),
            ) => record_heap(r),
        };
        (size_of::<Staged>() + strings) as u64
    }
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

/// The heap bytes of a record: its strings and the elements of its lists.
pub fn record_heap(r: &Record) -> usize {
    let permissions: usize = r
        .permissions
        .iter()
        .map(|p| {
            size_of::<Permission>()
                + match &p.principal {
                    Principal::User { id, email } => id.len() + opt_len(email),
                    Principal::Group { id } | Principal::Federated { id } => id.len(),
                    Principal::AnyoneWithLink { share_id, .. } => share_id.len(),
                }
        })
        .sum();
    let checksums: usize = r
        .checksums
        .iter()
        .map(|c| size_of::<String>() + c.len())
        .sum();
    r.external_id.len()
        + opt_len(&r.parent_external_id)
        + r.path.len()
        + r.name.len()
        + r.etag.len()
        + r.mime_type.len()
        + r.permission_letters.len()
        + opt_len(&r.owner_id)
        + permissions
        + checksums
}

/// A row of the sink's `records` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    pub external_id: String,
    pub parent_external_id: Option<String>,
    pub path: String,
    pub name: String,
    pub is_folder: bool,
    pub etag: String,
    pub size: u64,
    pub mime_type: String,
    pub modified: i64,
    pub created: Option<i64>,
    pub permission_letters: String,
    /// The level of the first permission entry (the syncing user's).
    pub permission: Option<String>,
    pub permissions: Vec<Permission>,
    pub owner_id: Option<String>,
    pub checksums: Vec<String>,
    /// 1 when first seen; +1 on each new or content-updated change.
    pub version: i64,
    pub updated_at: i64,
}

/// How much the file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub records: u64,
    pub folders: u64,
    pub files: u64,
    pub known_records: u64,
    pub sync_points: u64,
    pub users: u64,
    pub record_groups: u64,
}

pub struct Store {
    conn: Connection,
    staged: Vec<Staged>,
    /// What `staged` holds in memory, by [`Staged::footprint`].
    staged_bytes: u64,
    #[cfg(test)]
    fail_commit_after: Option<usize>,
}

fn storage_err(what: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |e| Error::Storage(format!("{what}: {e}"))
}

impl Store {
    /// Opens (creating if needed) the SQLite file, in WAL mode with
    /// `synchronous=FULL` so that a commit is durable.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Storage(format!(
                    "cannot create the directory of database `{}`: {e}",
                    path.display()
                ))
            })?;
        }
        let what = format!("database `{}`", path.display());
        // Created here first, private to this user: the records name every
        // file and who it is shared with. SQLite gives its `-wal` and `-shm`
        // files the mode of the database file.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::Storage(format!("cannot create {what}: {e}")))?;
        let conn = Connection::open(path).map_err(storage_err(&what))?;
        Store::init(conn, &what)
    }

    /// Opens a database a sync already created, for the commands that only
    /// read what it holds (`records`, `download`, `changes`): a mistyped
    /// path is an error, not a new empty file.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "the database `{}` does not exist yet; run `host-runner sync` first",
                path.display()
            )));
        }
        Store::open(path)
    }

    /// A private database that lives as long as the value (for tests and
    /// dry runs).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().map_err(storage_err("in-memory database"))?;
        Store::init(conn, "in-memory database")
    }

    fn init(conn: Connection, what: &str) -> Result<Store> {
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
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            feed::SCHEMA
        ))
        .map_err(storage_err(what))?;
        Ok(Store {
            conn,
            staged: Vec::new(),
            staged_bytes: 0,
            #[cfg(test)]
            fail_commit_after: None,
        })
    }

    // ----- reads of committed state -------------------------------------

    /// A sync point as last committed.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM sync_points WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()
            .map_err(Error::from)
    }

    /// The known record of each id, as last committed.
    /// The user id the host resolved for `account` (a login at a base URL).
    /// Only the host writes it: the connector's imports cannot.
    pub fn host_identity(&self, account: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT user_id FROM host_identities WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the user id the host resolved, at once and outside any batch.
    pub fn set_host_identity(&self, account: &str, user_id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO host_identities (account, user_id) VALUES (?1, ?2)
             ON CONFLICT(account) DO UPDATE SET user_id = excluded.user_id",
            params![account, user_id],
        )?;
        Ok(())
    }

    pub fn lookup(&self, external_ids: &[String]) -> Result<Vec<Option<Record>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM known_records WHERE external_id = ?1")?;
        external_ids
            .iter()
            .map(|id| {
                let data: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
                data.map(|d| decode_record(&d)).transpose()
            })
            .collect()
    }

    /// The known record at a decoded path (`/Documents/a b.txt`), as last committed.
    pub fn lookup_path(&self, path: &str) -> Result<Option<Record>> {
        let data: Option<String> = self
            .conn
            .prepare_cached("SELECT data FROM known_records WHERE path = ?1 LIMIT 1")?
            .query_row([path], |r| r.get(0))
            .optional()?;
        data.map(|d| decode_record(&d)).transpose()
    }

    /// Known records strictly below `path` (`/`: all but the root), in path
    /// order (`ParentsFirst` ascending, `ChildrenFirst` descending), strictly
    /// after `after` in that order, at most `limit`.
    pub fn list_under(
        &self,
        path: &str,
        order: Order,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.page_under("data", path, order, after, limit, |r| r.get::<_, String>(0))?
            .iter()
            .map(|d| decode_record(d))
            .collect()
    }

    /// `(external id, path)` of what [`Store::list_under`] gives, without
    /// decoding a record.
    pub fn list_paths_under(
        &self,
        path: &str,
        order: Order,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, String)>> {
        self.page_under("external_id, path", path, order, after, limit, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    fn page_under<T>(
        &self,
        columns: &str,
        path: &str,
        order: Order,
        after: Option<&str>,
        limit: u32,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let base = path.trim_end_matches('/');
        // Everything strictly below `base` starts with `base/`; `0` is the
        // byte after `/`, so `[base/, base0)` is exactly that subtree.
        let mut low = format!("{base}/");
        let mut high = format!("{base}0");
        // `after` narrows the range itself: as a separate `OR` condition the
        // index range stayed whole and every page skipped all the rows of
        // the pages before it, quadratic in the subtree.
        let direction = match order {
            Order::ParentsFirst => {
                if let Some(after) = after.filter(|a| **a > *low) {
                    low = after.to_string();
                }
                "ASC"
            }
            Order::ChildrenFirst => {
                if let Some(after) = after.filter(|a| **a < *high) {
                    high = after.to_string();
                }
                "DESC"
            }
        };
        let sql = format!(
            "SELECT {columns} FROM known_records WHERE path > ?1 AND path < ?2 ORDER BY path {direction} LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![low, high, i64::from(limit)], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
    }

    /// Committed known records whose parent is `parent`, by path, after `after`.
    pub fn children(&self, parent: &str, after: Option<&str>, limit: u32) -> Result<Vec<Record>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM known_records WHERE parent_external_id = ?1 AND path > ?2
             ORDER BY path ASC LIMIT ?3",
        )?;
        // Every path sorts after "" (see `list_under` on keeping the range whole).
        let after = after.unwrap_or("");
        let rows = stmt.query_map(params![parent, after, i64::from(limit)], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|d| decode_record(&d?)).collect()
    }

    // ----- staged writes --------------------------------------------------

    fn stage(&mut self, ops: impl IntoIterator<Item = Staged>) {
        for op in ops {
            self.staged_bytes += op.footprint();
            self.staged.push(op);
        }
    }

    pub fn set(&mut self, key: String, value: String) {
        self.stage([Staged::SyncPoint(key, value)]);
    }

    pub fn put(&mut self, records: Vec<Record>) {
        self.stage(records.into_iter().map(Staged::Put));
    }

    pub fn remove(&mut self, external_ids: Vec<String>) {
        self.stage(external_ids.into_iter().map(Staged::Remove));
    }

    pub fn on_user(&mut self, user: User) {
        self.stage([Staged::User(user)]);
    }

    pub fn on_record_group(&mut self, group: RecordGroup) {
        self.stage([Staged::Group(group)]);
    }

    pub fn on_changes(&mut self, changes: Vec<RecordChange>) {
        self.stage(changes.into_iter().map(Staged::Change));
    }

    /// How many writes wait for `commit`.
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// What the writes waiting for `commit` hold in memory, roughly: their
    /// strings and lists and the fixed size of each value.
    pub fn staged_bytes(&self) -> u64 {
        self.staged_bytes
    }

    /// Forgets every staged write; returns how many there were.
    pub fn discard_staged(&mut self) -> usize {
        self.staged_bytes = 0;
        std::mem::take(&mut self.staged).len()
    }

    /// Applies every staged write in one transaction. On failure nothing is
    /// applied and the writes stay staged.
    pub fn commit(&mut self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let now = crate::timefmt::now_unix();
        #[cfg(test)]
        let fail_after = self.fail_commit_after;
        #[cfg(not(test))]
        let fail_after: Option<usize> = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_err("cannot start a transaction"))?;
        for (i, op) in self.staged.iter().enumerate() {
            if fail_after == Some(i) {
                return Err(Error::Storage("injected failure".into()));
            }
            apply(&tx, op, now).map_err(storage_err("commit failed"))?;
        }
        tx.commit().map_err(storage_err("commit failed"))?;
        self.staged.clear();
        self.staged_bytes = 0;
        Ok(())
    }

    // ----- reads for the CLI and tests -----------------------------------

    /// SQLite's counter of commits made by other connections to this file:
    /// it changes when one commits.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The change feed of this database.
    pub fn feed(&self) -> feed::Feed<'_> {
        feed::Feed::new(&self.conn)
    }

    /// Every record in the sink, ordered by path.
    pub fn live_records(&self) -> Result<Vec<SinkRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SINK_COLUMNS} FROM records ORDER BY path ASC, external_id ASC"
        ))?;
        let rows = stmt.query_map([], sink_row)?;
        rows.map(|row| Ok(row?.into_sink()?)).collect()
    }

    /// All committed sync points, by key.
    pub fn sync_points(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM sync_points ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    pub fn users(&self) -> Result<Vec<User>> {
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

    pub fn record_groups(&self) -> Result<Vec<RecordGroup>> {
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

    pub fn counts(&self) -> Result<StoreCounts> {
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

    #[cfg(test)]
    fn fail_commit_after(&mut self, n: usize) {
        self.fail_commit_after = Some(n);
    }
}

fn decode_record(data: &str) -> Result<Record> {
    serde_json::from_str(data)
        .map_err(|e| Error::Storage(format!("a known record is not readable JSON: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The columns of `records`, in the order [`sink_row`] reads them.
const SINK_COLUMNS: &str = "external_id, parent_external_id, path, name, is_folder, etag, size, \
    mime_type, modified, created, permission_letters, permission, permissions_json, owner_id, \
    checksums_json, version, updated_at";

/// A `records` row, its JSON columns still text.
struct SinkRow {
    record: SinkRecord,
    permissions: String,
    checksums: String,
}

fn sink_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SinkRow> {
    Ok(SinkRow {
        record: SinkRecord {
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
            permission: r.get(11)?,
            permissions: Vec::new(),
            owner_id: r.get(13)?,
            checksums: Vec::new(),
            version: r.get(15)?,
            updated_at: r.get(16)?,
        },
        permissions: r.get(12)?,
        checksums: r.get(14)?,
    })
}

impl SinkRow {
    fn into_sink(self) -> rusqlite::Result<SinkRecord> {
        let bad = |what: &str, id: &str, e: serde_json::Error| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("record {id}: bad {what}: {e}").into(),
            )
        };
        let mut rec = self.record;
        rec.permissions = serde_json::from_str(&self.permissions)
            .map_err(|e| bad("permissions_json", &rec.external_id, e))?;
        rec.checksums = serde_json::from_str(&self.checksums)
            .map_err(|e| bad("checksums_json", &rec.external_id, e))?;
        Ok(rec)
    }

    /// The record as the connector sent it, and its version.
    fn into_record(self) -> rusqlite::Result<(Record, i64)> {
        let r = self.into_sink()?;
        Ok((
            Record {
                external_id: r.external_id,
                parent_external_id: r.parent_external_id,
                path: r.path,
                name: r.name,
                is_folder: r.is_folder,
                etag: r.etag,
                size: r.size,
                mime_type: r.mime_type,
                modified: r.modified,
                created: r.created,
                permission_letters: r.permission_letters,
                permissions: r.permissions,
                owner_id: r.owner_id,
                checksums: r.checksums,
            },
            r.version,
        ))
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, op: &Staged, now: i64) -> rusqlite::Result<()> {
    match op {
        Staged::SyncPoint(key, value) => {
            tx.prepare_cached(
                "INSERT INTO sync_points (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        }
        Staged::Put(record) => {
            tx.prepare_cached(
                "INSERT INTO known_records (external_id, parent_external_id, path, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(external_id) DO UPDATE SET parent_external_id = excluded.parent_external_id,
                     path = excluded.path, data = excluded.data",
            )?
            .execute(params![
                record.external_id,
                record.parent_external_id,
                record.path,
                encode(record)?
            ])?;
        }
        Staged::Remove(id) => {
            tx.prepare_cached("DELETE FROM known_records WHERE external_id = ?1")?
                .execute([id])?;
        }
        // Users and groups are sent on every full sync: only a change is one.
        Staged::User(user) => {
            let changed = tx
                .prepare_cached(
                    "INSERT INTO users (id, display_name, email) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, email = excluded.email
                     WHERE display_name IS NOT excluded.display_name OR email IS NOT excluded.email",
                )?
                .execute(params![user.id, user.display_name, user.email])?;
            if changed > 0 {
                feed::append(tx, Kind::User, &user.id, &feed::user_data(user)?, now)?;
            }
        }
        Staged::Group(group) => {
            let changed = tx
                .prepare_cached(
                    "INSERT INTO record_groups (external_id, name, kind, owner) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(external_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, owner = excluded.owner
                     WHERE name IS NOT excluded.name OR kind IS NOT excluded.kind OR owner IS NOT excluded.owner",
                )?
                .execute(params![group.external_id, group.name, group.kind, group.owner])?;
            if changed > 0 {
                let data = feed::group_data(group)?;
                feed::append(tx, Kind::RecordGroup, &group.external_id, &data, now)?;
            }
        }
        Staged::Change(RecordChange::Deleted(id)) => {
            let gone = tx
                .prepare_cached(&format!(
                    "DELETE FROM records WHERE external_id = ?1 RETURNING {SINK_COLUMNS}"
                ))?
                .query_row([id], sink_row)
                .optional()?;
            if let Some(row) = gone {
                let (record, version) = row.into_record()?;
                let data = feed::record_data(&record, version)?;
                feed::append(tx, Kind::Deleted, id, &data, now)?;
            }
        }
        Staged::Change(RecordChange::New(r)) => {
            upsert_record(tx, r, Kind::New, now)?;
        }
        Staged::Change(RecordChange::ContentUpdated(r)) => {
            upsert_record(tx, r, Kind::ContentUpdated, now)?;
        }
        Staged::Change(RecordChange::MetadataUpdated(r)) => {
            upsert_record(tx, r, Kind::MetadataUpdated, now)?;
        }
    }
    Ok(())
}

/// Writes a record and its change to the feed.
fn upsert_record(
    tx: &rusqlite::Transaction<'_>,
    r: &Record,
    kind: Kind,
    now: i64,
) -> rusqlite::Result<()> {
    let bump = i64::from(kind != Kind::MetadataUpdated);
    let permission = r.permissions.first().map(|p| p.level.as_str());
    tx.prepare_cached(
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
    .query_row(params![
        r.external_id,
        r.parent_external_id,
        r.path,
        r.name,
        r.is_folder,
        r.etag,
        i64::try_from(r.size).unwrap_or(i64::MAX),
        r.mime_type,
        r.modified,
        r.created,
        r.permission_letters,
        permission,
        encode(&r.permissions)?,
        r.owner_id,
        encode(&r.checksums)?,
        now,
        bump,
    ], |row| row.get::<_, i64>(0))
    .and_then(|version| {
        let data = feed::record_data(r, version)?;
        feed::append(tx, kind, &r.external_id, &data, now)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PermissionLevel, Principal};

    fn rec(id: &str, path: &str) -> Record {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        Record {
            external_id: id.into(),
            parent_external_id: (path != "/").then(|| "root".to_string()),
            path: path.into(),
            name,
            is_folder: !path.contains('.'),
            etag: format!("etag-{id}"),
            size: 42,
            mime_type: "application/octet-stream".into(),
            modified: 1_700_000_000,
            created: None,
            permission_letters: "RGDNVW".into(),
            permissions: vec![Permission {
                principal: Principal::User {
                    id: "alice".into(),
                    email: None,
                },
                level: PermissionLevel::Owner,
            }],
            owner_id: Some("alice".into()),
            checksums: vec!["SHA1:ab".into()],
        }
    }

    fn paths(records: &[Record]) -> Vec<&str> {
        records.iter().map(|r| r.path.as_str()).collect()
    }

    fn tree() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let all = [
            ("root", "/"),
            ("a", "/A"),
            ("a1", "/A/x.txt"),
            ("a2", "/A/y"),
            ("a3", "/A/y/z.md"),
            ("ab", "/AB"),
            ("ab1", "/AB/q.txt"),
            ("asp", "/A B.txt"),
            ("b", "/B"),
        ];
        s.put(all.iter().map(|(id, p)| rec(id, p)).collect());
        s.commit().unwrap();
        s
    }

    #[test]
    fn staged_writes_are_invisible_until_commit() {
        let mut s = Store::open_in_memory().unwrap();
        s.set("cursor".into(), "7".into());
        s.put(vec![rec("1", "/f.txt")]);
        s.on_changes(vec![RecordChange::New(rec("1", "/f.txt"))]);
        assert_eq!(s.get("cursor").unwrap(), None);
        assert_eq!(s.lookup(&["1".into()]).unwrap(), vec![None]);
        assert!(
            s.list_under("/", Order::ParentsFirst, None, 10)
                .unwrap()
                .is_empty()
        );
        assert!(s.live_records().unwrap().is_empty());
        assert_eq!(s.staged_len(), 3);
        let one = size_of::<Staged>() as u64;
        let record = record_heap(&rec("1", "/f.txt")) as u64;
        assert_eq!(
            s.staged_bytes(),
            3 * one + "cursor7".len() as u64 + 2 * record
        );

        s.commit().unwrap();
        assert_eq!(s.staged_len(), 0);
        assert_eq!(s.staged_bytes(), 0);
        assert_eq!(s.get("cursor").unwrap().as_deref(), Some("7"));
        assert_eq!(
            s.lookup(&["1".into(), "2".into()]).unwrap(),
            vec![Some(rec("1", "/f.txt")), None]
        );
        assert_eq!(s.live_records().unwrap().len(), 1);
    }

    #[test]
    fn dropping_without_commit_leaves_nothing_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.sqlite");
        {
            let mut s = Store::open(&path).unwrap();
            s.set("cursor".into(), "1".into());
            s.on_changes(vec![RecordChange::New(rec("1", "/f.txt"))]);
            s.commit().unwrap();
            s.set("cursor".into(), "2".into());
            s.put(vec![rec("2", "/g.txt")]);
            s.on_changes(vec![RecordChange::New(rec("2", "/g.txt"))]);
            // dropped here, as if the process died before `commit`
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.get("cursor").unwrap().as_deref(), Some("1"));
        assert_eq!(s.lookup(&["2".into()]).unwrap(), vec![None]);
        let live = s.live_records().unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].external_id, "1");
    }

    /// `(seq, kind, external_id)` of the whole feed.
    fn feed_of(s: &Store) -> Vec<(i64, String, String)> {
        s.feed()
            .read(0, 1000)
            .unwrap()
            .into_iter()
            .map(|c| (c.seq, c.kind, c.external_id))
            .collect()
    }

    #[test]
    fn every_committed_change_is_in_the_feed_in_order_without_gaps() {
        let mut s = Store::open_in_memory().unwrap();
        let alice = User {
            id: "alice".into(),
            display_name: "Alice".into(),
            email: None,
        };
        s.on_user(alice.clone());
        s.on_changes(vec![
            RecordChange::New(rec("1", "/a.txt")),
            RecordChange::New(rec("2", "/b.txt")),
        ]);
        s.commit().unwrap();
        // A failed commit leaves no number behind.
        s.on_changes(vec![RecordChange::ContentUpdated(rec("1", "/a.txt"))]);
        s.fail_commit_after(0);
        assert!(s.commit().is_err());
        s.fail_commit_after = None;
        s.commit().unwrap();
        // The same user again is no change; a deleted record carries what it was.
        s.on_user(alice);
        s.on_changes(vec![
            RecordChange::MetadataUpdated(rec("2", "/b2.txt")),
            RecordChange::Deleted("1".into()),
            RecordChange::Deleted("never-seen".into()),
        ]);
        s.commit().unwrap();
        let k = |seq: i64, kind: &str, id: &str| (seq, kind.to_string(), id.to_string());
        assert_eq!(
            feed_of(&s),
            [
                k(1, "user", "alice"),
                k(2, "new", "1"),
                k(3, "new", "2"),
                k(4, "content-updated", "1"),
                k(5, "metadata-updated", "2"),
                k(6, "deleted", "1"),
            ]
        );
        let all = s.feed().read(0, 10).unwrap();
        assert_eq!(all[3].data["version"], 2, "{:?}", all[3].data);
        assert_eq!(all[4].data["path"], "/b2.txt");
        assert_eq!(all[4].data["version"], 1);
        assert_eq!(all[5].data["path"], "/a.txt");
        assert_eq!(all[5].data["version"], 2);
        assert!(all[5].data["permissions"].is_array());
        assert_eq!(s.feed().head().unwrap(), 6);
        assert_eq!(s.feed().read(4, 1).unwrap()[0].seq, 5);
    }

    #[test]
    fn consumers_move_only_when_they_acknowledge_and_trims_spare_them() {
        let mut s = Store::open_in_memory().unwrap();
        for i in 0..5 {
            s.on_changes(vec![RecordChange::New(rec(
                &i.to_string(),
                &format!("/{i}.txt"),
            ))]);
            s.commit().unwrap();
        }
        let feed = s.feed();
        assert_eq!(feed.position("indexer", 0).unwrap(), 0);
        assert_eq!(feed.position("slow", 0).unwrap(), 0);
        assert_eq!(feed.ack("indexer", 3, 0).unwrap(), 3);
        // Never backwards, never past the head.
        assert_eq!(feed.ack("indexer", 2, 0).unwrap(), 3);
        assert!(feed.ack("indexer", 6, 0).is_err());
        assert!(feed.position("bad name", 0).is_err());
        // `slow` has read nothing: nothing is trimmed, however old.
        assert_eq!(feed.trim(i64::MAX).unwrap(), 0);
        feed.ack("slow", 2, 0).unwrap();
        assert_eq!(feed.trim(i64::MAX).unwrap(), 2);
        assert_eq!(feed.read(0, 10).unwrap()[0].seq, 3);
        // Numbers are never reused after a trim.
        feed.ack("slow", 5, 0).unwrap();
        feed.ack("indexer", 5, 0).unwrap();
        assert_eq!(feed.trim(i64::MAX).unwrap(), 3);
        s.on_changes(vec![RecordChange::Deleted("0".into())]);
        s.commit().unwrap();
        assert_eq!(feed_of(&s), [(6, "deleted".to_string(), "0".to_string())]);
    }

    #[test]
    fn commit_applies_records_and_sync_points_together() {
        let mut s = Store::open_in_memory().unwrap();
        s.set("cursor".into(), "10".into());
        s.on_user(User {
            id: "alice".into(),
            display_name: "Alice".into(),
            email: Some("a@example.com".into()),
        });
        s.on_record_group(RecordGroup {
            external_id: "drive".into(),
            name: "Alice's files".into(),
            kind: "drive".into(),
            owner: "alice".into(),
        });
        s.put(vec![rec("1", "/f.txt")]);
        s.on_changes(vec![RecordChange::New(rec("1", "/f.txt"))]);
        // A failure half-way through applies nothing and keeps the batch staged.
        s.fail_commit_after(3);
        assert!(s.commit().is_err());
        assert_eq!(s.get("cursor").unwrap(), None);
        assert_eq!(s.counts().unwrap(), StoreCounts::default());
        assert_eq!(s.staged_len(), 5);

        s.fail_commit_after = None;
        s.commit().unwrap();
        let c = s.counts().unwrap();
        assert_eq!(
            (
                c.records,
                c.files,
                c.known_records,
                c.sync_points,
                c.users,
                c.record_groups
            ),
            (1, 1, 1, 1, 1, 1)
        );
        assert_eq!(s.users().unwrap()[0].display_name, "Alice");
        assert_eq!(s.record_groups().unwrap()[0].kind, "drive");
        assert_eq!(
            s.sync_points().unwrap(),
            vec![("cursor".into(), "10".into())]
        );
    }

    #[test]
    fn changes_upsert_bump_versions_and_delete() {
        let mut s = Store::open_in_memory().unwrap();
        s.on_changes(vec![
            RecordChange::New(rec("1", "/f.txt")),
            RecordChange::New(rec("2", "/g.txt")),
        ]);
        s.commit().unwrap();
        let mut moved = rec("1", "/renamed.txt");
        moved.etag = "etag-1b".into();
        s.on_changes(vec![RecordChange::MetadataUpdated(moved)]);
        s.commit().unwrap();
        let live = s.live_records().unwrap();
        let one = live.iter().find(|r| r.external_id == "1").unwrap();
        assert_eq!((one.path.as_str(), one.version), ("/renamed.txt", 1));

        let mut edited = rec("1", "/renamed.txt");
        edited.size = 99;
        s.on_changes(vec![
            RecordChange::ContentUpdated(edited),
            RecordChange::Deleted("2".into()),
        ]);
        s.commit().unwrap();
        let live = s.live_records().unwrap();
        assert_eq!(live.len(), 1);
        let one = &live[0];
        assert_eq!((one.size, one.version), (99, 2));
        assert_eq!(one.permission.as_deref(), Some("owner"));
        assert_eq!(one.checksums, vec!["SHA1:ab"]);
        assert_eq!(one.permissions.len(), 1);
    }

    #[test]
    fn staged_order_is_kept_between_put_and_remove() {
        let mut s = Store::open_in_memory().unwrap();
        s.put(vec![rec("1", "/a.txt"), rec("2", "/b.txt")]);
        s.remove(vec!["1".into()]);
        s.remove(vec!["2".into()]);
        s.put(vec![rec("2", "/b2.txt")]);
        s.commit().unwrap();
        assert_eq!(
            s.lookup(&["1".into(), "2".into()]).unwrap(),
            vec![None, Some(rec("2", "/b2.txt"))]
        );
    }

    #[test]
    fn children_are_one_level_by_parent_and_paged() {
        let mut s = Store::open_in_memory().unwrap();
        let child = |id: &str, path: &str, parent: &str| Record {
            parent_external_id: Some(parent.to_string()),
            ..rec(id, path)
        };
        s.put(vec![
            rec("root", "/"),
            child("a", "/A", "root"),
            child("b", "/B", "root"),
            child("c", "/C.txt", "root"),
            child("ax", "/A/x.txt", "a"),
        ]);
        s.commit().unwrap();
        let first = s.children("root", None, 2).unwrap();
        assert_eq!(paths(&first), ["/A", "/B"]);
        let rest = s.children("root", Some("/B"), 10).unwrap();
        assert_eq!(paths(&rest), ["/C.txt"]);
        assert_eq!(paths(&s.children("a", None, 10).unwrap()), ["/A/x.txt"]);
        assert!(s.children("c", None, 10).unwrap().is_empty());
        // A move changes the parent the index answers for.
        s.put(vec![child("ax", "/B/x.txt", "b")]);
        s.commit().unwrap();
        assert!(s.children("a", None, 10).unwrap().is_empty());
        assert_eq!(paths(&s.children("b", None, 10).unwrap()), ["/B/x.txt"]);
    }

    #[test]
    fn list_under_root_is_everything_but_the_root() {
        let s = tree();
        let all = s.list_under("/", Order::ParentsFirst, None, 100).unwrap();
        assert_eq!(
            paths(&all),
            [
                "/A",
                "/A B.txt",
                "/A/x.txt",
                "/A/y",
                "/A/y/z.md",
                "/AB",
                "/AB/q.txt",
                "/B"
            ]
        );
        let rev = s.list_under("/", Order::ChildrenFirst, None, 100).unwrap();
        let mut expected = paths(&all);
        expected.reverse();
        assert_eq!(paths(&rev), expected);
    }

    #[test]
    fn list_under_a_folder_excludes_siblings_sharing_a_prefix() {
        let s = tree();
        for p in ["/A", "/A/"] {
            let under = s.list_under(p, Order::ParentsFirst, None, 100).unwrap();
            assert_eq!(paths(&under), ["/A/x.txt", "/A/y", "/A/y/z.md"], "{p}");
        }
        let under = s.list_under("/A", Order::ChildrenFirst, None, 100).unwrap();
        assert_eq!(paths(&under), ["/A/y/z.md", "/A/y", "/A/x.txt"]);
        assert!(
            s.list_under("/A/x.txt", Order::ParentsFirst, None, 100)
                .unwrap()
                .is_empty()
        );
        assert!(
            s.list_under("/nope", Order::ParentsFirst, None, 100)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn list_under_pages_with_after_in_both_orders() {
        let s = tree();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s
                .list_under("/", Order::ParentsFirst, after.as_deref(), 3)
                .unwrap();
            assert!(page.len() <= 3);
            if page.is_empty() {
                break;
            }
            after = Some(page.last().unwrap().path.clone());
            seen.extend(page.into_iter().map(|r| r.path));
        }
        assert_eq!(seen.len(), 8);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));

        let page = s
            .list_under("/A", Order::ChildrenFirst, Some("/A/y"), 10)
            .unwrap();
        assert_eq!(paths(&page), ["/A/x.txt"]);
        let page = s
            .list_under("/A", Order::ParentsFirst, Some("/A/x.txt"), 10)
            .unwrap();
        assert_eq!(paths(&page), ["/A/y", "/A/y/z.md"]);
        assert!(
            s.list_under("/", Order::ParentsFirst, None, 0)
                .unwrap()
                .is_empty()
        );
        // An `after` outside the subtree does not widen it.
        let page = s
            .list_under("/A", Order::ChildrenFirst, Some("/B"), 10)
            .unwrap();
        assert_eq!(paths(&page), ["/A/y/z.md", "/A/y", "/A/x.txt"]);
    }

    #[test]
    fn paths_under_are_the_ids_and_paths_of_the_records_under() {
        let s = tree();
        for order in [Order::ParentsFirst, Order::ChildrenFirst] {
            for (path, after) in [("/", None), ("/A", None), ("/A", Some("/A/y"))] {
                let records = s.list_under(path, order, after, 100).unwrap();
                let light = s.list_paths_under(path, order, after, 100).unwrap();
                let expected: Vec<(String, String)> = records
                    .into_iter()
                    .map(|r| (r.external_id, r.path))
                    .collect();
                assert_eq!(light, expected, "{path} after {after:?}");
            }
        }
    }

    #[test]
    fn refuses_a_newer_schema_and_non_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA user_version = 99;").unwrap();
        }
        let msg = Store::open(&path).err().unwrap().to_string();
        assert!(msg.contains("newer host-runner"), "{msg}");

        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&junk).err().unwrap();
        assert_eq!(err.exit_code(), crate::error::exit_code::STORAGE);
        assert!(err.to_string().contains("junk.sqlite"), "{err}");
    }

    #[test]
    fn reopening_keeps_the_schema_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let mut s = Store::open(&path).unwrap();
            s.set("k".into(), "v".into());
            s.commit().unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.get("k").unwrap().as_deref(), Some("v"));
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }
}
