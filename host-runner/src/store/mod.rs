//! The connector's state, the records sink and the change feed, behind one
//! seam ([`Backend`]) with two implementations: one SQLite file per account
//! (the embedded default, [`sqlite`]) or a PostgreSQL database that many
//! accounts and workers share ([`postgres`]).
//!
//! Writes from the connector (`storage.set/put/remove`, `records.on-*`) are
//! staged in memory, in the order they were made, and applied by
//! [`Store::commit`] in one transaction of the backend: a batch of records
//! becomes durable together with the sync points that cover it and the
//! feed entries that describe it, or not at all. What a commit does with
//! each staged write ([`apply`]) is written once, over the small set of
//! writes each backend provides ([`Tx`]). Reads (`get`, `lookup`,
//! `list_under`) see committed state only.

pub mod postgres;
pub mod sqlite;

use crate::config::{Config, Database};
use crate::error::{Error, Result};
use crate::feed::{self, Change, Kind};
use crate::model::{Order, Permission, Principal, Record, RecordChange, RecordGroup, User};
use crate::stop::StopFlag;
use serde::Serialize;
use std::path::Path;

pub use sqlite::SCHEMA_VERSION;

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

/// A row of the sink's `records` table: the record as the connector sent
/// it, and what the sink adds. Reads as a [`Record`] (`r.path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    pub record: Record,
    /// The level of the first permission entry (the syncing user's).
    pub permission: Option<String>,
    /// 1 when first seen; +1 on each new or content-updated change.
    pub version: i64,
    pub updated_at: i64,
}

impl std::ops::Deref for SinkRecord {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.record
    }
}

impl std::ops::DerefMut for SinkRecord {
    fn deref_mut(&mut self) -> &mut Record {
        &mut self.record
    }
}

/// The columns of `records`, in the order each backend's row reader takes them.
const SINK_COLUMNS: &str = "external_id, parent_external_id, path, name, is_folder, etag, size, \
    mime_type, modified, created, permission_letters, permission, permissions_json, owner_id, \
    checksums_json, version, updated_at";

/// A sink row whose JSON columns are still text, completed.
fn sink_record(mut rec: SinkRecord, permissions: &str, checksums: &str) -> Result<SinkRecord> {
    let bad = |what: &str, id: &str, e: serde_json::Error| {
        Error::Storage(format!("record {id}: bad {what}: {e}"))
    };
    rec.permissions = serde_json::from_str(permissions)
        .map_err(|e| bad("permissions_json", &rec.external_id, e))?;
    rec.checksums =
        serde_json::from_str(checksums).map_err(|e| bad("checksums_json", &rec.external_id, e))?;
    Ok(rec)
}

/// What a backend writes for a record beside the record itself: computed
/// once, here, so both backends store the same thing.
pub struct SinkColumns<'a> {
    pub size: i64,
    /// The level of the first permission entry (the syncing user's).
    pub permission: Option<&'a str>,
    pub permissions_json: String,
    pub checksums_json: String,
    /// 1 when the change is new or content-updated: the version goes up.
    pub bump: i64,
    pub now: i64,
}

/// How much the sink holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub records: u64,
    pub folders: u64,
    pub files: u64,
    pub known_records: u64,
    pub sync_points: u64,
    pub users: u64,
    pub record_groups: u64,
}

/// The syncs of an account kept for `status`, the latest first.
pub const KEPT_SYNC_RUNS: u32 = 100;

/// One sync of an account as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRun {
    /// `host:pid` of the process that ran it.
    pub holder: String,
    /// The lease it held (PostgreSQL only).
    pub token: Option<i64>,
    /// Unix milliseconds, like the other times here.
    pub started_at_ms: i64,
    /// The last heartbeat of its lease (PostgreSQL only).
    pub heartbeat_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// `ok`, or the error's kind; `None` while it runs, or when its process died.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// An account's lease and place in the shared schedule (PostgreSQL), by the
/// database's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseState {
    /// `host:pid` of the worker that holds it, if one does.
    pub holder: Option<String>,
    /// Raised by one at every take.
    pub token: i64,
    /// Milliseconds until the lease expires (negative: expired).
    pub expires_in_ms: Option<i64>,
    /// Milliseconds until the account is due again (negative: overdue).
    pub due_in_ms: Option<i64>,
}

/// A page of known records strictly below a path, in path order.
pub struct Page<'a> {
    pub path: &'a str,
    pub order: Order,
    /// Strictly after this path in `order`.
    pub after: Option<&'a str>,
    pub limit: u32,
}

impl Page<'_> {
    /// The open range of paths the page is taken from.
    fn range(&self) -> (String, String) {
        let base = self.path.trim_end_matches('/');
        // Everything strictly below `base` starts with `base/`; `0` is the
        // byte after `/`, so `(base/, base0)` is exactly that subtree (both
        // backends compare paths bytewise).
        let mut low = format!("{base}/");
        let mut high = format!("{base}0");
        // `after` narrows the range itself: as a separate `OR` condition the
        // index range stayed whole and every page skipped all the rows of
        // the pages before it, quadratic in the subtree.
        match self.order {
            Order::ParentsFirst => {
                if let Some(after) = self.after.filter(|a| **a > *low) {
                    low = after.to_string();
                }
            }
            Order::ChildrenFirst => {
                if let Some(after) = self.after.filter(|a| **a < *high) {
                    high = after.to_string();
                }
            }
        }
        (low, high)
    }

    fn direction(&self) -> &'static str {
        match self.order {
            Order::ParentsFirst => "ASC",
            Order::ChildrenFirst => "DESC",
        }
    }
}

/// The writes a commit is made of, inside one transaction of a backend.
pub trait Tx {
    fn set_sync_point(&mut self, key: &str, value: &str) -> Result<()>;
    /// `data`: the record as JSON, what `lookup` gives back.
    fn put_known(&mut self, record: &Record, data: &str) -> Result<()>;
    fn remove_known(&mut self, external_id: &str) -> Result<()>;
    /// Whether it changed anything.
    fn upsert_user(&mut self, user: &User) -> Result<bool>;
    /// Whether it changed anything.
    fn upsert_group(&mut self, group: &RecordGroup) -> Result<bool>;
    /// The row it deleted, if there was one.
    fn delete_record(&mut self, external_id: &str) -> Result<Option<SinkRecord>>;
    /// The record's version after the write.
    fn upsert_record(&mut self, record: &Record, columns: &SinkColumns<'_>) -> Result<i64>;
    /// The next sequence number of the account's feed.
    fn append_change(&mut self, kind: Kind, external_id: &str, data: &str, now: i64) -> Result<()>;
}

/// Where one account's state, sink and feed are kept.
pub trait Backend: Send {
    fn get(&self, key: &str) -> Result<Option<String>>;
    fn host_identity(&self, account: &str) -> Result<Option<String>>;
    fn set_host_identity(&self, account: &str, user_id: &str) -> Result<()>;
    fn lookup(&self, external_ids: &[String]) -> Result<Vec<Option<Record>>>;
    fn lookup_path(&self, path: &str) -> Result<Option<Record>>;
    fn list_under(&self, page: &Page<'_>) -> Result<Vec<Record>>;
    /// `(external id, path)` of what `list_under` gives, no record decoded.
    fn list_paths_under(&self, page: &Page<'_>) -> Result<Vec<(String, String)>>;
    /// Known records whose parent is `parent`, by path, strictly after `after`.
    fn children(&self, parent: &str, after: &str, limit: u32) -> Result<Vec<Record>>;
    /// Runs `apply` in one transaction, committed when it returns `Ok`.
    fn commit(&mut self, apply: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    fn live_records(&self) -> Result<Vec<SinkRecord>>;
    fn sync_points(&self) -> Result<Vec<(String, String)>>;
    fn users(&self) -> Result<Vec<User>>;
    fn record_groups(&self) -> Result<Vec<RecordGroup>>;
    fn counts(&self) -> Result<StoreCounts>;
    fn feed_read(&self, since: i64, limit: u32) -> Result<Vec<Change>>;
    /// The newest sequence number ever committed (0 for none).
    fn feed_head(&self) -> Result<i64>;
    /// Registers `consumer` at 0 on first use; its acknowledged position.
    fn consumer_position(&self, consumer: &str, now: i64) -> Result<i64>;
    /// Moves `consumer` forward to `seq` (never backwards).
    fn consumer_move(&self, consumer: &str, seq: i64, now: i64) -> Result<()>;
    /// Removes the changes committed before `before` that every consumer
    /// has acknowledged; how many went.
    fn feed_trim(&self, before: i64) -> Result<u64>;
    /// Blocks until another connection commits to this account (`true`) or
    /// `stop` is set (`false`), without reading the feed in a busy loop.
    fn wait_for_commit(&self, stop: &StopFlag) -> Result<bool>;
    /// Notes that a sync began; its id for [`Backend::run_finished`].
    fn run_started(&self, holder: &str, now: i64) -> Result<i64>;
    /// Notes how sync `run` ended, and keeps the latest `keep` runs.
    fn run_finished(
        &self,
        run: i64,
        outcome: &str,
        error: Option<&str>,
        now: i64,
        keep: u32,
    ) -> Result<()>;
    /// The latest syncs, newest first.
    fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>>;
    /// Makes every later commit require that the account's lease still has
    /// this token ([`crate::lease`]); a SQLite file has no leases (its lock
    /// file keeps a second sync out).
    fn fence(&mut self, _token: i64) {}
    /// The account's lease, where the backend has leases.
    fn lease_state(&self) -> Result<Option<LeaseState>> {
        Ok(None)
    }
}

pub struct Store {
    backend: Box<dyn Backend>,
    staged: Vec<Staged>,
    /// What `staged` holds in memory, by [`Staged::footprint`].
    staged_bytes: u64,
    #[cfg(test)]
    fail_commit_after: Option<usize>,
}

impl Store {
    fn with(backend: impl Backend + 'static) -> Store {
        Store {
            backend: Box::new(backend),
            staged: Vec::new(),
            staged_bytes: 0,
            #[cfg(test)]
            fail_commit_after: None,
        }
    }

    /// Opens (creating if needed) the account's database: its SQLite file,
    /// or its part of a PostgreSQL database.
    pub fn connect(config: &Config) -> Result<Store> {
        match &config.database {
            Database::Sqlite(path) => Store::open(path),
            Database::Postgres(target) => Ok(Store::with(postgres::Postgres::connect(
                target,
                &config.account_key(),
                &config.name,
            )?)),
        }
    }

    /// Like [`Store::connect`], for the commands that only read what a sync
    /// wrote (`records`, `download`, `changes`, `status`): a mistyped SQLite
    /// path is an error, not a new empty file.
    pub fn connect_existing(config: &Config) -> Result<Store> {
        if let Database::Sqlite(path) = &config.database
            && !path.exists()
        {
            return Err(Error::Config(format!(
                "the database `{}` does not exist yet; run `host-runner sync` first",
                path.display()
            )));
        }
        Store::connect(config)
    }

    /// Opens (creating if needed) a SQLite file, in WAL mode with
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
        let conn =
            rusqlite::Connection::open(path).map_err(|e| Error::Storage(format!("{what}: {e}")))?;
        Ok(Store::with(sqlite::Sqlite::init(conn, &what)?))
    }

    /// A private SQLite database that lives as long as the value (for tests
    /// and benchmarks).
    pub fn open_in_memory() -> Result<Store> {
        let conn = rusqlite::Connection::open_in_memory()
            .map_err(|e| Error::Storage(format!("in-memory database: {e}")))?;
        Ok(Store::with(sqlite::Sqlite::init(
            conn,
            "in-memory database",
        )?))
    }

    // ----- reads of committed state -------------------------------------

    /// A sync point as last committed.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        self.backend.get(key)
    }

    /// The user id the host resolved for `account` (a login at a base URL).
    /// Only the host writes it: the connector's imports cannot.
    pub fn host_identity(&self, account: &str) -> Result<Option<String>> {
        self.backend.host_identity(account)
    }

    /// Records the user id the host resolved, at once and outside any batch.
    pub fn set_host_identity(&self, account: &str, user_id: &str) -> Result<()> {
        self.backend.set_host_identity(account, user_id)
    }

    /// The known record of each id, as last committed.
    pub fn lookup(&self, external_ids: &[String]) -> Result<Vec<Option<Record>>> {
        self.backend.lookup(external_ids)
    }

    /// The known record at a decoded path (`/Documents/a b.txt`), as last committed.
    pub fn lookup_path(&self, path: &str) -> Result<Option<Record>> {
        self.backend.lookup_path(path)
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
        self.backend.list_under(&Page {
            path,
            order,
            after,
            limit,
        })
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
        self.backend.list_paths_under(&Page {
            path,
            order,
            after,
            limit,
        })
    }

    /// Committed known records whose parent is `parent`, by path, after `after`.
    pub fn children(&self, parent: &str, after: Option<&str>, limit: u32) -> Result<Vec<Record>> {
        // Every path sorts after "" (see `list_under` on keeping the range whole).
        self.backend.children(parent, after.unwrap_or(""), limit)
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
        let staged = &self.staged;
        self.backend.commit(&mut |tx| {
            for (i, op) in staged.iter().enumerate() {
                if fail_after == Some(i) {
                    return Err(Error::Storage("injected failure".into()));
                }
                apply(tx, op, now)?;
            }
            Ok(())
        })?;
        self.staged.clear();
        self.staged_bytes = 0;
        Ok(())
    }

    // ----- reads for the CLI and tests -----------------------------------

    /// The change feed of this account.
    pub fn feed(&self) -> feed::Feed<'_> {
        feed::Feed::new(self.backend.as_ref())
    }

    /// Every record in the sink, ordered by path.
    pub fn live_records(&self) -> Result<Vec<SinkRecord>> {
        self.backend.live_records()
    }

    /// All committed sync points, by key.
    pub fn sync_points(&self) -> Result<Vec<(String, String)>> {
        self.backend.sync_points()
    }

    pub fn users(&self) -> Result<Vec<User>> {
        self.backend.users()
    }

    pub fn record_groups(&self) -> Result<Vec<RecordGroup>> {
        self.backend.record_groups()
    }

    pub fn counts(&self) -> Result<StoreCounts> {
        self.backend.counts()
    }

    /// Notes that a sync by `holder` began; its id for [`Store::run_finished`].
    pub fn run_started(&self, holder: &str) -> Result<i64> {
        self.backend
            .run_started(holder, crate::timefmt::now_unix_ms())
    }

    /// Notes how a sync ended: `ok`, or the kind of its error.
    pub fn run_finished(&self, run: i64, outcome: &str, error: Option<&str>) -> Result<()> {
        let now = crate::timefmt::now_unix_ms();
        self.backend
            .run_finished(run, outcome, error, now, KEPT_SYNC_RUNS)
    }

    /// The latest syncs of the account, newest first.
    pub fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>> {
        self.backend.sync_runs(limit)
    }

    /// Commits from now on require the account's lease to still carry
    /// `token`: a worker whose lease was taken over cannot commit.
    pub fn fence(&mut self, token: i64) {
        self.backend.fence(token);
    }

    /// The account's lease (PostgreSQL only).
    pub fn lease_state(&self) -> Result<Option<LeaseState>> {
        self.backend.lease_state()
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

fn encode<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::Storage(format!("cannot encode a value as JSON: {e}")))
}

/// What a commit does with one staged write, on any backend.
fn apply(tx: &mut dyn Tx, op: &Staged, now: i64) -> Result<()> {
    match op {
        Staged::SyncPoint(key, value) => tx.set_sync_point(key, value),
        Staged::Put(record) => tx.put_known(record, &encode(record)?),
        Staged::Remove(id) => tx.remove_known(id),
        // Users and groups are sent on every full sync: only a change is one.
        Staged::User(user) => {
            if tx.upsert_user(user)? {
                tx.append_change(Kind::User, &user.id, &encode(user)?, now)?;
            }
            Ok(())
        }
        Staged::Group(group) => {
            if tx.upsert_group(group)? {
                tx.append_change(Kind::RecordGroup, &group.external_id, &encode(group)?, now)?;
            }
            Ok(())
        }
        Staged::Change(RecordChange::Deleted(id)) => {
            if let Some(gone) = tx.delete_record(id)? {
                let data = encode(&feed::Committed::of(&gone.record, gone.version))?;
                tx.append_change(Kind::Deleted, id, &data, now)?;
            }
            Ok(())
        }
        Staged::Change(RecordChange::New(r)) => upsert_record(tx, r, Kind::New, now),
        Staged::Change(RecordChange::ContentUpdated(r)) => {
            upsert_record(tx, r, Kind::ContentUpdated, now)
        }
        Staged::Change(RecordChange::MetadataUpdated(r)) => {
            upsert_record(tx, r, Kind::MetadataUpdated, now)
        }
    }
}

/// Writes a record to the sink and its change to the feed.
fn upsert_record(tx: &mut dyn Tx, r: &Record, kind: Kind, now: i64) -> Result<()> {
    let columns = SinkColumns {
        size: i64::try_from(r.size).unwrap_or(i64::MAX),
        permission: r.permissions.first().map(|p| p.level.as_str()),
        permissions_json: encode(&r.permissions)?,
        checksums_json: encode(&r.checksums)?,
        bump: i64::from(kind != Kind::MetadataUpdated),
        now,
    };
    let version = tx.upsert_record(r, &columns)?;
    let data = encode(&feed::Committed::of(r, version))?;
    tx.append_change(kind, &r.external_id, &data, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PermissionLevel, Principal};
    use rusqlite::Connection;

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
        drop(s);
        let b = sqlite::Sqlite::init(Connection::open(&path).unwrap(), "db").unwrap();
        let mode: String = b
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = b
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn only_the_latest_syncs_are_kept() {
        let s = Store::open_in_memory().unwrap();
        for i in 0..KEPT_SYNC_RUNS + 5 {
            let run = s.run_started(&format!("h:{i}")).unwrap();
            s.run_finished(run, "ok", None).unwrap();
        }
        let kept = s.sync_runs(u32::MAX).unwrap();
        assert_eq!(kept.len() as u32, KEPT_SYNC_RUNS);
        assert_eq!(kept[0].holder, format!("h:{}", KEPT_SYNC_RUNS + 4));
    }

    #[test]
    fn an_older_schema_is_migrated_forward_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            // What the first release wrote: version 1, no feed, no runs.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "{} INSERT INTO sync_points VALUES ('cursor', '9'); PRAGMA user_version = 1;",
                sqlite::MIGRATIONS[0]
            ))
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.get("cursor").unwrap().as_deref(), Some("9"));
        s.on_changes(vec![RecordChange::New(rec("1", "/a.txt"))]);
        s.commit().unwrap();
        assert_eq!(feed_of(&s), [(1, "new".to_string(), "1".to_string())]);
        let run = s.run_started("host:1").unwrap();
        s.run_finished(run, "ok", None).unwrap();
        assert_eq!(s.sync_runs(5).unwrap()[0].outcome.as_deref(), Some("ok"));
        drop(s);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
