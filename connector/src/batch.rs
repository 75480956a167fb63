//! Classifies records against what the connector knows and sends the changes
//! in batches, each committed together with the state that covers it.

use std::collections::BTreeSet;

use crate::error::Error;
use crate::host::Host;
use crate::keys;
use crate::model::{Record, RecordChange, SyncMode, SyncSummary};

/// What a listed record means against the known one; `None` when unchanged.
pub fn classify(record: Record, known: Option<&Record>) -> Option<RecordChange> {
    match known {
        None => Some(RecordChange::New(record)),
        Some(k) if *k == record => None,
        Some(k) if !record.is_folder && content_changed(k, &record) => {
            Some(RecordChange::ContentUpdated(record))
        }
        Some(_) => Some(RecordChange::MetadataUpdated(record)),
    }
}

/// A file's etag alone does not say its content changed: Nextcloud keeps
/// the etag of a file overwritten within the second of its last write (its
/// scanner reuses the cached etag while the storage mtime is unchanged),
/// even when the size differs. Any of these differing means new content.
fn content_changed(known: &Record, record: &Record) -> bool {
    known.etag != record.etag
        || known.size != record.size
        || known.modified != record.modified
        || known.checksums != record.checksums
}

enum Item {
    Upsert(Box<Record>),
    Delete(String),
}

pub struct Batcher<'h, H: Host> {
    host: &'h H,
    size: usize,
    items: Vec<Item>,
    summary: SyncSummary,
    processed: u64,
    /// Folders whose etag was taken without their subtree being verified;
    /// written with every commit, so no commit can hide a change below them.
    unverified: BTreeSet<String>,
    unverified_changed: bool,
}

impl<'h, H: Host> Batcher<'h, H> {
    pub fn new(host: &'h H, size: u32, mode: SyncMode) -> Self {
        let size = size.max(1) as usize;
        Batcher {
            host,
            size,
            items: Vec::with_capacity(size),
            summary: SyncSummary::new(mode),
            processed: 0,
            unverified: host
                .get(keys::UNVERIFIED)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            unverified_changed: false,
        }
    }

    pub fn unverified(&self) -> &BTreeSet<String> {
        &self.unverified
    }

    /// A folder whose new etag is sent before everything below it was read.
    pub fn mark_unverified(&mut self, external_id: &str) {
        self.unverified_changed |= self.unverified.insert(external_id.to_string());
    }

    /// Everything below every folder was read: nothing is unverified.
    pub fn all_verified(&mut self) {
        self.unverified_changed |= !self.unverified.is_empty();
        self.unverified.clear();
    }

    pub fn mode(&self) -> SyncMode {
        self.summary.mode
    }

    /// A record as the server has it now; emitted only if it differs from the known one.
    pub fn upsert(&mut self, record: Record) -> Result<(), Error> {
        self.push(Item::Upsert(Box::new(record)))
    }

    pub fn delete(&mut self, external_id: String) -> Result<(), Error> {
        self.push(Item::Delete(external_id))
    }

    fn push(&mut self, item: Item) -> Result<(), Error> {
        self.items.push(item);
        if self.items.len() >= self.size {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is pending and commits it; nothing is committed when nothing changed.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.stage()? {
            self.host.commit().map_err(Error::Storage)?;
        }
        Ok(())
    }

    /// Flushes the last batch and commits the sync points with it, so state
    /// never claims more than the records committed.
    pub fn finish(mut self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        self.stage()?;
        for (key, value) in sync_points {
            self.host.set(key, value);
        }
        self.host.commit().map_err(Error::Storage)?;
        Ok(self.summary)
    }

    /// Sends the pending changes to the sink and storage, uncommitted.
    /// Returns whether anything was staged.
    fn stage(&mut self) -> Result<bool, Error> {
        let marked = std::mem::take(&mut self.unverified_changed);
        if marked {
            let ids: Vec<&str> = self.unverified.iter().map(String::as_str).collect();
            self.host.set(keys::UNVERIFIED, &ids.join(" "));
        }
        if self.items.is_empty() {
            return Ok(marked);
        }
        let items = std::mem::take(&mut self.items);
        let ids: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Upsert(r) => Some(r.external_id.clone()),
                Item::Delete(_) => None,
            })
            .collect();
        let known = if ids.is_empty() {
            Vec::new()
        } else {
            self.host.lookup(&ids)
        };
        if known.len() != ids.len() {
            return Err(Error::Storage(format!(
                "lookup of {} records answered {}",
                ids.len(),
                known.len()
            )));
        }
        let mut known = known.into_iter();
        let mut changes = Vec::new();
        let mut removed_here: BTreeSet<String> = BTreeSet::new();
        for item in items {
            self.processed += 1;
            let change = match item {
                Item::Upsert(record) => {
                    let was = known
                        .next()
                        .flatten()
                        .filter(|_| !removed_here.contains(&record.external_id));
                    match classify(*record, was.as_ref()) {
                        Some(change) => change,
                        None => {
                            self.summary.unchanged += 1;
                            continue;
                        }
                    }
                }
                Item::Delete(id) => {
                    removed_here.insert(id.clone());
                    RecordChange::Deleted(id)
                }
            };
            self.summary.count(&change);
            changes.push(change);
        }
        self.host.progress("records", self.processed, None);
        if changes.is_empty() {
            return Ok(false);
        }
        self.host.on_changes(&changes).map_err(Error::Storage)?;
        // The same records become known, in the order of the changes: runs
        // of puts and removals (moved, not copied: a listing sends each once).
        let mut puts: Vec<Record> = Vec::new();
        let mut removals: Vec<String> = Vec::new();
        for change in changes {
            match change {
                RecordChange::Deleted(id) => {
                    if !puts.is_empty() {
                        self.host.put(&std::mem::take(&mut puts));
                    }
                    removals.push(id);
                }
                RecordChange::New(r)
                | RecordChange::ContentUpdated(r)
                | RecordChange::MetadataUpdated(r) => {
                    if !removals.is_empty() {
                        self.host.remove(&std::mem::take(&mut removals));
                    }
                    puts.push(r);
                }
            }
        }
        if !puts.is_empty() {
            self.host.put(&puts);
        }
        if !removals.is_empty() {
            self.host.remove(&removals);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(etag: &str, size: u64, modified: i64) -> Record {
        Record {
            external_id: "7".into(),
            parent_external_id: Some("1".into()),
            path: "/a.txt".into(),
            name: "a.txt".into(),
            is_folder: false,
            etag: etag.into(),
            size,
            mime_type: "text/plain".into(),
            modified,
            created: None,
            permission_letters: "RGDNVW".into(),
            permissions: Vec::new(),
            owner_id: Some("alice".into()),
            checksums: Vec::new(),
        }
    }

    fn kind(change: Option<RecordChange>) -> &'static str {
        match change {
            None => "unchanged",
            Some(RecordChange::New(_)) => "new",
            Some(RecordChange::ContentUpdated(_)) => "content",
            Some(RecordChange::MetadataUpdated(_)) => "metadata",
            Some(RecordChange::Deleted(_)) => "deleted",
        }
    }

    #[test]
    fn new_content_shows_in_the_etag_the_size_the_time_or_a_checksum() {
        let known = file("e1", 4, 100);
        let same = |f: fn(&mut Record)| {
            let mut r = known.clone();
            f(&mut r);
            kind(classify(r, Some(&known)))
        };
        assert_eq!(same(|_| {}), "unchanged");
        assert_eq!(same(|r| r.etag = "e2".into()), "content");
        // Overwritten within the same second: same etag, other size.
        assert_eq!(same(|r| r.size = 8), "content");
        assert_eq!(same(|r| r.modified = 101), "content");
        assert_eq!(same(|r| r.checksums = vec!["SHA1:ab".into()]), "content");
        assert_eq!(same(|r| r.path = "/b.txt".into()), "metadata");
        assert_eq!(same(|r| r.permission_letters = "SG".into()), "metadata");
        assert_eq!(kind(classify(known.clone(), None)), "new");
    }
}
