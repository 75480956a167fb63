//! The change feed: every change the sink commits, in commit order, for an
//! indexer to consume.
//!
//! Each commit that changes the sink appends to `changes` in the same
//! transaction ([`append`], called by [`crate::store::Store::commit`]), so a
//! change is in the feed exactly when it is in the records. `seq` is
//! `INTEGER PRIMARY KEY AUTOINCREMENT`: commits are serialised by SQLite's
//! write lock and a rolled-back commit rolls its numbers back too, so the
//! numbers are gapless and strictly increasing in commit order, and never
//! reused after a trim.
//!
//! A named consumer's position moves only when it acknowledges
//! ([`Feed::ack`]): one that crashes before acknowledging reads the same
//! changes again (at least once, in order, nothing missing). Retention
//! ([`Feed::trim`]) removes only changes every registered consumer has
//! acknowledged.
//!
//! ```sql
//! changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, external_id TEXT NOT NULL,
//!         data TEXT NOT NULL, committed_at INTEGER NOT NULL)
//! consumers(name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL)
//! ```

use crate::error::{Error, Result};
use crate::model::{Permission, Record, RecordGroup, User};
use crate::timefmt::rfc3339_utc;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS changes (
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
);
";

/// What happened, as the feed names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    New,
    ContentUpdated,
    MetadataUpdated,
    Deleted,
    User,
    RecordGroup,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::ContentUpdated => "content-updated",
            Kind::MetadataUpdated => "metadata-updated",
            Kind::Deleted => "deleted",
            Kind::User => "user",
            Kind::RecordGroup => "record-group",
        }
    }
}

/// A record as the sink committed it (for `deleted`: as it was last).
#[derive(Debug, Serialize)]
pub struct Committed<'a> {
    pub external_id: &'a str,
    pub parent_external_id: Option<&'a str>,
    pub path: &'a str,
    pub name: &'a str,
    pub is_folder: bool,
    pub etag: &'a str,
    pub size: u64,
    pub mime_type: &'a str,
    /// RFC 3339, UTC.
    pub modified: String,
    pub created: Option<String>,
    pub permission_letters: &'a str,
    pub permissions: &'a [Permission],
    pub owner_id: Option<&'a str>,
    pub checksums: &'a [String],
    /// The sink's version of the record: 1 when first seen, +1 on each
    /// new or content change.
    pub version: i64,
}

impl<'a> Committed<'a> {
    pub fn of(r: &'a Record, version: i64) -> Committed<'a> {
        Committed {
            external_id: &r.external_id,
            parent_external_id: r.parent_external_id.as_deref(),
            path: &r.path,
            name: &r.name,
            is_folder: r.is_folder,
            etag: &r.etag,
            size: r.size,
            mime_type: &r.mime_type,
            modified: rfc3339_utc(r.modified),
            created: r.created.map(rfc3339_utc),
            permission_letters: &r.permission_letters,
            permissions: &r.permissions,
            owner_id: r.owner_id.as_deref(),
            checksums: &r.checksums,
            version,
        }
    }
}

fn encode<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Appends one change inside the commit's transaction.
pub fn append(
    tx: &rusqlite::Transaction<'_>,
    kind: Kind,
    external_id: &str,
    data: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO changes (kind, external_id, data, committed_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind.as_str(), external_id, data, now])?;
    Ok(())
}

pub fn record_data(r: &Record, version: i64) -> rusqlite::Result<String> {
    encode(&Committed::of(r, version))
}

pub fn user_data(u: &User) -> rusqlite::Result<String> {
    encode(u)
}

pub fn group_data(g: &RecordGroup) -> rusqlite::Result<String> {
    encode(g)
}

/// One change, as `host-runner changes --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub seq: i64,
    pub kind: String,
    pub external_id: String,
    /// RFC 3339, UTC: when the sink committed it.
    pub committed_at: String,
    /// The record, user or record group as committed.
    pub data: serde_json::Value,
}

/// Reading the feed of one database, and its consumers.
pub struct Feed<'c> {
    conn: &'c Connection,
}

impl<'c> Feed<'c> {
    pub fn new(conn: &'c Connection) -> Feed<'c> {
        Feed { conn }
    }

    /// Changes with `seq > since`, oldest first, at most `limit`.
    pub fn read(&self, since: i64, limit: u32) -> Result<Vec<Change>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, external_id, data, committed_at FROM changes
             WHERE seq > ?1 ORDER BY seq ASC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since, i64::from(limit)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (seq, kind, external_id, data, at) = row?;
            Ok(Change {
                seq,
                kind,
                external_id,
                committed_at: rfc3339_utc(at),
                data: serde_json::from_str(&data).map_err(|e| {
                    Error::Storage(format!("change {seq} is not readable JSON: {e}"))
                })?,
            })
        })
        .collect()
    }

    /// The newest sequence number ever committed (0 for none).
    pub fn head(&self) -> Result<i64> {
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

    /// Where `consumer` stands: the last sequence number it acknowledged;
    /// registered at 0 (the start of the feed) on first use.
    pub fn position(&self, consumer: &str, now: i64) -> Result<i64> {
        check_consumer_name(consumer)?;
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

    /// Moves `consumer` to `seq`: it has everything up to and including it.
    /// Never backwards, and never past what was committed.
    pub fn ack(&self, consumer: &str, seq: i64, now: i64) -> Result<i64> {
        let position = self.position(consumer, now)?;
        let head = self.head()?;
        if seq > head {
            return Err(Error::Config(format!(
                "cannot acknowledge change {seq}: the newest change is {head}"
            )));
        }
        if seq <= position {
            return Ok(position);
        }
        self.conn.execute(
            "UPDATE consumers SET position = ?2, updated_at = ?3 WHERE name = ?1",
            params![consumer, seq, now],
        )?;
        Ok(seq)
    }

    /// Removes the changes committed before `before` (unix seconds) that
    /// every registered consumer has acknowledged; how many went.
    pub fn trim(&self, before: i64) -> Result<u64> {
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
}

/// Consumer names are printed and passed on command lines: plain words.
fn check_consumer_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::Config(format!(
            "consumer name `{}` must be 1 to 128 letters, digits, `-`, `_` or `.`",
            name.escape_debug()
        )));
    }
    Ok(())
}
