//! One sync run: records reach the sink parents first, each change once,
//! batched with the state that covers it; only a complete listing of a
//! subtree may delete what it did not see there.
//!
//! A run has two phases, and the types keep them in order: a [`Run`] reads
//! and takes records (and may delete below a subtree it just listed whole);
//! [`Run::settle`] gives up on what could not be placed and turns it into a
//! [`Settled`] run, the only one that may declare everything verified and
//! the only way to [`Settled::finish`], which commits the last batch with
//! the sync points.

use std::collections::VecDeque;
use std::io::BufReader;

use crate::access::Access;
use crate::batch::Batcher;
use crate::body::read_body;
use crate::dav::{Dav, Infinity};
use crate::entry::{own_level, to_record, upload_time};
use crate::error::Error;
use crate::filter::Filter;
use crate::host::{Host, Level};
use crate::href::parent_of;
use crate::marks::Marks;
use crate::model::{Order, Record, SyncMode, SyncSummary};
use crate::permissions;
use crate::placement::Placer;
use crate::propfind::{DavEntry, MultistatusReader, ParseError};

/// Requests handed to the host at once; it caps concurrency itself.
pub const WAVE: usize = 8;
/// Known records read per page when looking for what vanished.
const PAGE: u32 = 1000;
/// Largest Depth 0 answer read (one entry is well under 4 KiB).
const DEPTH0_BODY: usize = 1024 * 1024;

/// What listing a subtree found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Complete,
    /// The folder itself is gone (404).
    Gone,
}

/// How a DAV entry becomes the record the sink gets.
pub struct Rules {
    pub filter: Filter,
    pub access: Access,
}

pub struct Run<'h, H: Host> {
    pub dav: Dav<'h, H>,
    rules: Rules,
    placer: Placer,
    marks: Marks,
    batcher: Batcher<'h, H>,
    /// False once something could not even be placed: the run must not
    /// claim to cover it (no deletions from listings, no cursor).
    pub complete: bool,
    /// True once an entry was skipped because a value of it could not be
    /// read: what is known at its path is kept, and the run commits no sync
    /// point (cursor, listing time) and verifies nothing, so the next run
    /// reads the entry again instead of going on past it.
    skipped: bool,
}

impl<'h, H: Host> Run<'h, H> {
    pub fn new(dav: Dav<'h, H>, rules: Rules, batch_size: u32, mode: SyncMode) -> Self {
        Run {
            batcher: Batcher::new(dav.host, batch_size, mode),
            dav,
            rules,
            placer: Placer::default(),
            marks: Marks::default(),
            complete: true,
            skipped: false,
        }
    }

    pub fn host(&self) -> &'h H {
        self.dav.host
    }

    pub fn mode(&self) -> SyncMode {
        self.batcher.mode()
    }

    pub fn log(&self, level: Level, message: &str) {
        self.dav.log(level, message);
    }

    /// See [`crate::keys::UNVERIFIED`].
    pub fn mark_unverified(&mut self, external_id: &str) {
        self.batcher.mark_unverified(external_id);
    }

    pub fn is_unverified(&self, external_id: &str) -> bool {
        self.batcher.unverified().contains(external_id)
    }

    pub fn any_unverified(&self) -> bool {
        !self.batcher.unverified().is_empty()
    }

    pub fn has_seen(&self, external_id: &str) -> bool {
        self.marks.has_seen(external_id)
    }

    /// Keeps deletion passes off records this run is about to take, and
    /// off everything known below a folder it is about to relist.
    pub fn reserve<'p>(&mut self, record: &Record, known_paths: impl Iterator<Item = &'p str>) {
        self.marks.reserve(&record.external_id);
        if record.is_folder {
            known_paths.for_each(|p| self.marks.reserve_path(p));
        }
    }

    /// The folder is being relisted now: its own deletion passes may act below it.
    pub fn release(&mut self, known_path: &str) {
        self.marks.release_path(known_path);
    }

    /// Lists `scope` and everything below it: one `Depth: infinity`
    /// PROPFIND, or folder by folder where the server refuses that.
    pub fn list(&mut self, scope: &str) -> Result<Listed, Error> {
        match self.dav.infinity(scope)? {
            Infinity::Listing(body) => {
                let reader = BufReader::with_capacity(64 * 1024, body);
                for entry in MultistatusReader::new(reader) {
                    self.take_entry(entry.map_err(parse_error)?, None)?;
                }
                Ok(Listed::Complete)
            }
            Infinity::Gone => Ok(Listed::Gone),
            Infinity::Refused => self.walk(scope),
        }
    }

    /// Breadth first, so every folder is placed before its children are listed.
    fn walk(&mut self, scope: &str) -> Result<Listed, Error> {
        let mut queue = VecDeque::from([scope.to_string()]);
        let mut first = true;
        while !queue.is_empty() {
            let wave: Vec<String> = queue.drain(..queue.len().min(WAVE)).collect();
            let bodies = self.dav.propfind_all(&wave, "1")?;
            for (folder, body) in wave.into_iter().zip(bodies) {
                let Some(body) = body else {
                    if first {
                        return Ok(Listed::Gone);
                    }
                    // Gone while we walked: what is known there stays until a listing sees it.
                    self.log(
                        Level::Warn,
                        &format!("{folder} vanished during the listing"),
                    );
                    self.marks.protect(folder);
                    continue;
                };
                // The scope's own entry is new to this run; a subfolder's was placed from its parent's listing.
                let own = if first { None } else { Some(folder.as_str()) };
                first = false;
                for entry in MultistatusReader::new(BufReader::new(body)) {
                    if let Some(sub) = self.take_entry(entry.map_err(parse_error)?, own)?
                        && sub != scope
                    {
                        queue.push_back(sub);
                    }
                }
            }
        }
        Ok(Listed::Complete)
    }

    /// The current record at each path (Depth 0), `None` where nothing is there.
    pub fn fetch(&mut self, paths: &[String]) -> Result<Vec<Option<Record>>, Error> {
        let mut out = Vec::with_capacity(paths.len());
        for wave in paths.chunks(WAVE) {
            let bodies = self.dav.propfind_all(wave, "0")?;
            for (path, body) in wave.iter().zip(bodies) {
                let Some(body) = body else {
                    out.push(None);
                    continue;
                };
                let body = read_body(body, DEPTH0_BODY)?;
                let mut record = None;
                for entry in MultistatusReader::new(&body[..]) {
                    match self.convert(entry.map_err(parse_error)?) {
                        Some(r) if r.path == *path => record = Some(r),
                        Some(r) => {
                            self.log(
                                Level::Warn,
                                &format!("asked for {path}, the server answered {}", r.path),
                            );
                        }
                        None => {}
                    }
                }
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The children of each folder (Depth 1), unplaced; `None` for a folder
    /// that is gone.
    pub fn fetch_children(
        &mut self,
        folders: &[String],
    ) -> Result<Vec<Option<Vec<Record>>>, Error> {
        let bodies = self.dav.propfind_all(folders, "1")?;
        let mut out = Vec::with_capacity(folders.len());
        for (folder, body) in folders.iter().zip(bodies) {
            let Some(body) = body else {
                out.push(None);
                continue;
            };
            let mut children = Vec::new();
            for entry in MultistatusReader::new(BufReader::new(body)) {
                if let Some(r) = self.convert(entry.map_err(parse_error)?)
                    && r.path != *folder
                {
                    children.push(r);
                }
            }
            out.push(Some(children));
        }
        Ok(out)
    }

    /// Takes one listed entry, unless it is `own`: the folder whose Depth 1
    /// listing this is, placed already. Returns a folder it newly placed.
    fn take_entry(&mut self, entry: DavEntry, own: Option<&str>) -> Result<Option<String>, Error> {
        let Some(record) = self.convert(entry) else {
            return Ok(None);
        };
        if own == Some(record.path.as_str()) {
            return Ok(None);
        }
        let sub = record.is_folder.then(|| record.path.clone());
        Ok(if self.take(record)? { sub } else { None })
    }

    /// The record for an entry, judged by the filter; `None`, logged, when
    /// it cannot be read (what is known at its path is then kept).
    fn convert(&mut self, entry: DavEntry) -> Option<Record> {
        let (level, uploaded) = (own_level(&entry), upload_time(&entry));
        match to_record(entry, self.dav.root) {
            Ok(mut record) => {
                self.rules.access.apply(self.dav.who, &mut record, level);
                let kept = self.rules.filter.keeps(&record, uploaded);
                self.marks.set_excluded(&record.external_id, !kept);
                Some(record)
            }
            Err(e) => {
                self.log(Level::Warn, &e.to_string());
                match e.path {
                    Some(path) => {
                        self.marks.protect(path);
                        self.skipped = true;
                    }
                    None => self.complete = false,
                }
                None
            }
        }
    }

    /// Takes a record as the server has it now; false when it was taken
    /// before this run or the filter leaves it out (then it is deleted if known).
    pub fn take(&mut self, record: Record) -> Result<bool, Error> {
        if self.marks.take_excluded(&record.external_id) {
            if let Some(known) = self
                .host()
                .lookup(std::slice::from_ref(&record.external_id))
                .pop()
                .flatten()
            {
                self.remove(known.external_id)?;
            }
            return Ok(false);
        }
        if !self.marks.see(&record.external_id) {
            self.log(
                Level::Warn,
                &format!(
                    "skipping {}: file id {} was already listed at another path",
                    record.path, record.external_id
                ),
            );
            self.marks.protect(record.path);
            return Ok(false);
        }
        let batcher = &mut self.batcher;
        self.placer.place(record, |r| batcher.upsert(r))?;
        Ok(true)
    }

    /// Sends known records again where the shares on them or above them
    /// changed: each root and everything known below it, with the
    /// permissions the current shares give.
    pub fn regrant(&mut self, roots: &[String]) -> Result<(), Error> {
        for known in self.host().lookup(roots).into_iter().flatten() {
            let mut after: Option<String> = None;
            self.retake(known.clone())?;
            loop {
                let page = self.host().list_under(
                    &known.path,
                    Order::ParentsFirst,
                    after.as_deref(),
                    PAGE,
                );
                let Some(last) = page.last() else { break };
                after = Some(last.path.clone());
                for record in page {
                    self.retake(record)?;
                }
            }
        }
        Ok(())
    }

    /// A known record with the permissions the current shares give; folders
    /// it sits in are known (it was committed under them).
    fn retake(&mut self, mut record: Record) -> Result<(), Error> {
        if self.marks.has_seen(&record.external_id) || self.marks.is_deleted(&record.external_id) {
            return Ok(());
        }
        // The user's own level was read with the record; shares change others'.
        let own = record
            .permissions
            .first()
            .map(|p| p.level)
            .unwrap_or_else(|| permissions::level_of(&record.permission_letters, None));
        self.rules.access.apply(self.dav.who, &mut record, own);
        if let Some(parent) = parent_of(&record.path)
            && let Some(id) = &record.parent_external_id
        {
            self.placer.know_folder(parent, id);
        }
        self.take(record).map(|_| ())
    }

    /// Deletes a record and everything known below it that this run has
    /// not taken (a descendant may have moved out before its folder went).
    pub fn delete(&mut self, known: &Record) -> Result<(), Error> {
        self.delete_unseen_under(&known.path)?;
        if !self.marks.keeps(&known.external_id, &known.path) {
            self.remove(known.external_id.clone())?;
        }
        Ok(())
    }

    /// Sends a deletion, once per run.
    fn remove(&mut self, external_id: String) -> Result<(), Error> {
        if self.marks.delete(&external_id) {
            self.batcher.delete(external_id)?;
        }
        Ok(())
    }

    /// Every known record below `path` this run did not take is gone,
    /// children first. Only for a subtree this run listed whole.
    pub fn delete_unseen_under(&mut self, path: &str) -> Result<(), Error> {
        let mut after: Option<String> = None;
        loop {
            let page =
                self.host()
                    .list_paths_under(path, Order::ChildrenFirst, after.as_deref(), PAGE);
            let Some((_, last)) = page.last() else { break };
            after = Some(last.clone());
            for (external_id, known_path) in page {
                if !self.marks.keeps(&external_id, &known_path) {
                    self.remove(external_id)?;
                }
            }
        }
        Ok(())
    }

    /// Gives up on records whose folder never came: they are protected and
    /// the run is incomplete. Past this point nothing more is taken.
    pub fn settle(mut self) -> Settled<'h, H> {
        for (parent, record) in self.placer.give_up().collect::<Vec<_>>() {
            self.log(
                Level::Warn,
                &format!(
                    "skipping {}: its folder {parent} was not listed",
                    record.path
                ),
            );
            self.marks.protect(record.path);
            self.complete = false;
        }
        Settled { run: self }
    }

    /// Settles and finishes: see [`Settled::finish`].
    pub fn finish(self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        self.settle().finish(sync_points)
    }
}

/// A run that took all it will take.
pub struct Settled<'h, H: Host> {
    run: Run<'h, H>,
}

impl<H: Host> Settled<'_, H> {
    /// Whether every entry was read and placed: only then may a listing
    /// delete what it did not see, or the run claim its sync points.
    pub fn complete(&self) -> bool {
        self.run.complete && !self.run.skipped
    }

    pub fn log(&self, level: Level, message: &str) {
        self.run.log(level, message);
    }

    /// Every known record below `path` this run did not take is gone.
    pub fn delete_unseen_under(&mut self, path: &str) -> Result<(), Error> {
        self.run.delete_unseen_under(path)
    }

    /// The run read everything below every folder: nothing is unverified.
    pub fn all_verified(&mut self) {
        if self.complete() {
            self.run.batcher.all_verified();
        }
    }

    /// Commits the last batch with `sync_points` if the run covered all it
    /// set out to; otherwise commits the records alone.
    pub fn finish(self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        let complete = self.complete();
        let Settled { run } = self;
        run.dav.keep_what_was_learned();
        let sync_points: &[(&str, String)] = if complete {
            sync_points
        } else {
            run.log(
                Level::Warn,
                "some entries could not be placed; this run's changes are committed but its cursor is not",
            );
            &[]
        };
        run.batcher.finish(sync_points)
    }
}

pub fn parse_error(e: ParseError) -> Error {
    match e {
        ParseError::Body(m) => Error::Http(format!("reading the listing: {m}")),
        other => Error::Protocol(other.to_string()),
    }
}
