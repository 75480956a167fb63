//! The change feed: every change the sink commits, in commit order, for an
//! indexer to consume.
//!
//! Each commit that changes the sink appends to the account's feed in the
//! same transaction (see [`crate::store`]), so a change is in the feed
//! exactly when it is in the records. Sequence numbers are per account,
//! gapless and strictly increasing in commit order, and never reused after a
//! trim: each backend says how it keeps that promise
//! ([`crate::store::sqlite`], [`crate::store::postgres`]).
//!
//! A named consumer's position moves only when it acknowledges
//! ([`Feed::ack`]): one that crashes before acknowledging reads the same
//! changes again (at least once, in order, nothing missing). Retention
//! ([`Feed::trim`]) removes only changes every registered consumer has
//! acknowledged.

use crate::error::{Error, Result};
use crate::model::{Permission, Record};
use crate::stop::StopFlag;
use crate::store::Backend;
use crate::timefmt::rfc3339_utc;
use serde::Serialize;

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

impl Change {
    /// A change as a backend stored it: `data` is JSON text, `committed_at`
    /// unix seconds.
    pub fn decode(
        seq: i64,
        kind: String,
        external_id: String,
        data: &str,
        committed_at: i64,
    ) -> Result<Change> {
        Ok(Change {
            seq,
            kind,
            external_id,
            committed_at: rfc3339_utc(committed_at),
            data: serde_json::from_str(data)
                .map_err(|e| Error::Storage(format!("change {seq} is not readable JSON: {e}")))?,
        })
    }
}

/// Reading one account's feed, and its consumers.
pub struct Feed<'b> {
    backend: &'b dyn Backend,
}

impl<'b> Feed<'b> {
    pub fn new(backend: &'b dyn Backend) -> Feed<'b> {
        Feed { backend }
    }

    /// Changes with `seq > since`, oldest first, at most `limit`.
    pub fn read(&self, since: i64, limit: u32) -> Result<Vec<Change>> {
        self.backend.feed_read(since, limit)
    }

    /// The newest sequence number ever committed (0 for none).
    pub fn head(&self) -> Result<i64> {
        self.backend.feed_head()
    }

    /// Where `consumer` stands: the last sequence number it acknowledged;
    /// registered at 0 (the start of the feed) on first use.
    pub fn position(&self, consumer: &str, now: i64) -> Result<i64> {
        check_consumer_name(consumer)?;
        self.backend.consumer_position(consumer, now)
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
        self.backend.consumer_move(consumer, seq, now)?;
        Ok(seq)
    }

    /// Removes the changes committed before `before` (unix seconds) that
    /// every registered consumer has acknowledged; how many went.
    pub fn trim(&self, before: i64) -> Result<u64> {
        self.backend.feed_trim(before)
    }

    /// Waits for another process's commit (`true`) or for `stop` (`false`).
    pub fn wait(&self, stop: &StopFlag) -> Result<bool> {
        self.backend.wait_for_commit(stop)
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
