//! One sync run: records reach the sink parents first, each change once,
//! batched with the state that covers it; only a complete listing of a
//! subtree may delete what it did not see there.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::BufReader;

use crate::access::Access;
use crate::batch::Batcher;
use crate::entry::{Identity, own_level, to_record, upload_time};
use crate::error::Error;
use crate::filter::Filter;
use crate::host::{Host, Level, Request};
use crate::href::{DavRoot, parent_of};
use crate::model::{Order, Record, SyncMode, SyncSummary};
use crate::permissions;
use crate::propfind::{
    DavEntry, MultistatusReader, PROPFIND_BODY, ParseError, is_finite_depth_error,
};
use crate::read_body;

/// Requests handed to the host at once; it caps concurrency itself.
pub const WAVE: usize = 8;
/// Known records read per page when looking for what vanished.
const PAGE: u32 = 1000;
/// Enough to read a refusal's body.
const SMALL_BODY: usize = 64 * 1024;
/// Largest Depth 0 answer read (one entry is well under 4 KiB).
const DEPTH0_BODY: usize = 1024 * 1024;

pub fn propfind(url: String, depth: &str) -> Request {
    Request::new("PROPFIND", url)
        .header("Depth", depth)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(PROPFIND_BODY.as_bytes().to_vec())
}

/// What listing a subtree found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Complete,
    /// The folder itself is gone (404).
    Gone,
}

pub struct Run<'h, H: Host> {
    host: &'h H,
    pub root: &'h DavRoot,
    who: &'h Identity,
    batcher: Batcher<'h, H>,
    /// The path cache: decoded folder path → external id, for every folder placed.
    folders: HashMap<String, String>,
    /// External ids taken this run (file ids are numbers: 8 bytes each).
    seen: HashSet<u64>,
    /// Records whose parent folder has not been placed yet, by parent path.
    orphans: HashMap<String, Vec<Record>>,
    /// External ids this run will take later: never deleted meanwhile.
    reserved: HashSet<u64>,
    /// Known paths of folders this run will relist from where they are now:
    /// what is below them moved with them and is not deleted from there.
    reserved_paths: Vec<String>,
    filter: Filter,
    access: Access,
    /// Files the filter leaves out: deleted if known.
    excluded: HashSet<u64>,
    /// External ids deleted this run, so each deletion is sent once.
    deleted: HashSet<u64>,
    /// Paths of entries that could not be read; what is known there is kept.
    protected: Vec<String>,
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
    pub fn new(
        host: &'h H,
        root: &'h DavRoot,
        who: &'h Identity,
        filter: Filter,
        access: Access,
        batch_size: u32,
        mode: SyncMode,
    ) -> Self {
        Run {
            filter,
            access,
            excluded: HashSet::new(),
            deleted: HashSet::new(),
            host,
            root,
            who,
            batcher: Batcher::new(host, batch_size, mode),
            folders: HashMap::new(),
            seen: HashSet::new(),
            orphans: HashMap::new(),
            reserved: HashSet::new(),
            reserved_paths: Vec::new(),
            protected: Vec::new(),
            complete: true,
            skipped: false,
        }
    }

    pub fn host(&self) -> &'h H {
        self.host
    }

    pub fn identity(&self) -> &'h Identity {
        self.who
    }

    pub fn mode(&self) -> SyncMode {
        self.batcher.mode()
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

    /// The run read everything: call only before finishing a complete listing or reconcile.
    pub fn all_verified(&mut self) {
        if self.complete && !self.skipped {
            self.batcher.all_verified();
        }
    }

    pub fn has_seen(&self, external_id: &str) -> bool {
        self.seen.contains(&file_id(external_id))
    }

    /// Keeps deletion passes off records this run is about to take, and
    /// off everything known below a folder it is about to relist.
    pub fn reserve<'p>(&mut self, record: &Record, known_paths: impl Iterator<Item = &'p str>) {
        self.reserved.insert(file_id(&record.external_id));
        if record.is_folder {
            self.reserved_paths.extend(known_paths.map(str::to_string));
        }
    }

    /// The folder is being relisted now: its own deletion passes may act below it.
    pub fn release(&mut self, known_path: &str) {
        self.reserved_paths.retain(|p| p != known_path);
    }

    fn keeps(&self, external_id: &str, path: &str) -> bool {
        let id = file_id(external_id);
        self.seen.contains(&id)
            || self.reserved.contains(&id)
            || self.is_protected(path)
            || self.reserved_paths.iter().any(|p| is_under(path, p))
    }

    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }

    /// Lists `scope` and everything below it: one `Depth: infinity`
    /// PROPFIND, or folder by folder when the server refuses infinity.
    pub fn list(&mut self, scope: &str) -> Result<Listed, Error> {
        let response = self
            .host
            .send(propfind(self.root.url_of(scope), "infinity"))?;
        match response.status {
            207 => {
                let reader = BufReader::with_capacity(64 * 1024, response.body);
                for entry in MultistatusReader::new(reader) {
                    self.take_entry(&entry.map_err(parse_error)?, None)?;
                }
                Ok(Listed::Complete)
            }
            404 => Ok(Listed::Gone),
            403 | 412 | 501 => {
                let body = read_body(response.body, SMALL_BODY)?;
                if response.status == 403 && !is_finite_depth_error(&body) {
                    return Err(Error::status(&format!("listing {scope}"), 403));
                }
                self.log(
                    Level::Info,
                    &format!(
                        "the server refuses Depth: infinity ({}); listing {scope} folder by folder",
                        response.status
                    ),
                );
                self.walk(scope)
            }
            status => Err(Error::status(&format!("listing {scope}"), status)),
        }
    }

    /// Breadth first, so every folder is placed before its children are listed.
    fn walk(&mut self, scope: &str) -> Result<Listed, Error> {
        let mut queue = VecDeque::from([scope.to_string()]);
        let mut first = true;
        while !queue.is_empty() {
            let wave: Vec<String> = queue.drain(..queue.len().min(WAVE)).collect();
            let bodies = self.propfind_all(&wave, "1")?;
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
                    self.protected.push(folder);
                    continue;
                };
                // The scope's own entry is new to this run; a subfolder's was placed from its parent's listing.
                let own = if first { None } else { Some(folder.as_str()) };
                first = false;
                for entry in MultistatusReader::new(BufReader::new(body)) {
                    if let Some(sub) = self.take_entry(&entry.map_err(parse_error)?, own)?
                        && sub != scope
                    {
                        queue.push_back(sub);
                    }
                }
            }
        }
        Ok(Listed::Complete)
    }

    /// PROPFINDs every path at `depth` at once; the body of each 207, `None`
    /// for a 404, an error for anything else.
    fn propfind_all(&self, paths: &[String], depth: &str) -> Result<Vec<Option<H::Body>>, Error> {
        let requests = paths
            .iter()
            .map(|p| propfind(self.root.url_of(p), depth))
            .collect();
        let responses = self.host.send_all(requests);
        if responses.len() != paths.len() {
            return Err(Error::Http(
                "the host answered a different number of requests".into(),
            ));
        }
        paths
            .iter()
            .zip(responses)
            .map(|(path, response)| {
                let response = response?;
                match response.status {
                    207 => Ok(Some(response.body)),
                    404 => Ok(None),
                    status => Err(Error::status(&format!("reading {path}"), status)),
                }
            })
            .collect()
    }

    /// The current record at each path (Depth 0), `None` where nothing is there.
    pub fn fetch(&mut self, paths: &[String]) -> Result<Vec<Option<Record>>, Error> {
        let mut out = Vec::with_capacity(paths.len());
        for wave in paths.chunks(WAVE) {
            let bodies = self.propfind_all(wave, "0")?;
            for (path, body) in wave.iter().zip(bodies) {
                let Some(body) = body else {
                    out.push(None);
                    continue;
                };
                let body = read_body(body, DEPTH0_BODY)?;
                let mut record = None;
                for entry in MultistatusReader::new(&body[..]) {
                    match self.convert(&entry.map_err(parse_error)?) {
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
        let bodies = self.propfind_all(folders, "1")?;
        let mut out = Vec::with_capacity(folders.len());
        for (folder, body) in folders.iter().zip(bodies) {
            let Some(body) = body else {
                out.push(None);
                continue;
            };
            let mut children = Vec::new();
            for entry in MultistatusReader::new(BufReader::new(body)) {
                if let Some(r) = self.convert(&entry.map_err(parse_error)?)
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
    fn take_entry(&mut self, entry: &DavEntry, own: Option<&str>) -> Result<Option<String>, Error> {
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
    pub fn convert(&mut self, entry: &DavEntry) -> Option<Record> {
        match to_record(entry, self.root) {
            Ok(mut record) => {
                self.access.apply(self.who, &mut record, own_level(entry));
                // The newest reading of an item decides.
                let id = file_id(&record.external_id);
                if self.filter.keeps(&record, upload_time(entry)) {
                    self.excluded.remove(&id);
                } else {
                    self.excluded.insert(id);
                }
                Some(record)
            }
            Err(e) => {
                self.log(Level::Warn, &e.to_string());
                match e.path {
                    Some(path) => {
                        self.protected.push(path);
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
        let id = file_id(&record.external_id);
        if self.excluded.contains(&id) {
            self.reserved.remove(&id);
            if let Some(known) = self
                .host
                .lookup(std::slice::from_ref(&record.external_id))
                .pop()
                .flatten()
            {
                self.remove(known.external_id)?;
            }
            return Ok(false);
        }
        if !self.seen.insert(id) {
            self.log(
                Level::Warn,
                &format!(
                    "skipping {}: file id {} was already listed at another path",
                    record.path, record.external_id
                ),
            );
            self.protected.push(record.path);
            return Ok(false);
        }
        self.place(record)?;
        Ok(true)
    }

    /// Sends known records again where the shares on them or above them
    /// changed: each root and everything known below it, with the
    /// permissions the current shares give.
    pub fn regrant(&mut self, roots: &[String]) -> Result<(), Error> {
        for known in self.host.lookup(roots).into_iter().flatten() {
            let mut after: Option<String> = None;
            self.retake(known.clone())?;
            loop {
                let page =
                    self.host
                        .list_under(&known.path, Order::ParentsFirst, after.as_deref(), PAGE);
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
        let id = file_id(&record.external_id);
        if self.seen.contains(&id) || self.deleted.contains(&id) {
            return Ok(());
        }
        // The user's own level was read with the record; shares change others'.
        let own = record
            .permissions
            .first()
            .map(|p| p.level)
            .unwrap_or_else(|| permissions::level_of(&record.permission_letters, None));
        self.access.apply(self.who, &mut record, own);
        if let Some(parent) = parent_of(&record.path)
            && let Some(id) = record.parent_external_id.clone()
        {
            self.folders.entry(parent.to_string()).or_insert(id);
        }
        self.take(record).map(|_| ())
    }

    /// Sends a record once its parent is placed, then any records that were waiting for it.
    fn place(&mut self, record: Record) -> Result<(), Error> {
        let mut ready = vec![record];
        while let Some(mut record) = ready.pop() {
            if let Some(parent) = parent_of(&record.path) {
                match self.folders.get(parent) {
                    Some(id) => record.parent_external_id = Some(id.clone()),
                    None => {
                        self.orphans
                            .entry(parent.to_string())
                            .or_default()
                            .push(record);
                        continue;
                    }
                }
            }
            if record.is_folder {
                self.folders
                    .insert(record.path.clone(), record.external_id.clone());
                if let Some(waiting) = self.orphans.remove(&record.path) {
                    // Reversed so that `pop` keeps the server's order.
                    ready.extend(waiting.into_iter().rev());
                }
            }
            self.batcher.upsert(record)?;
        }
        Ok(())
    }

    /// Deletes a record and everything known below it that this run has
    /// not taken (a descendant may have moved out before its folder went).
    pub fn delete(&mut self, known: &Record) -> Result<(), Error> {
        self.delete_unseen_under(&known.path)?;
        if !self.keeps(&known.external_id, &known.path) {
            self.remove(known.external_id.clone())?;
        }
        Ok(())
    }

    /// Sends a deletion, once per run.
    fn remove(&mut self, external_id: String) -> Result<(), Error> {
        if self.deleted.insert(file_id(&external_id)) {
            self.batcher.delete(external_id)?;
        }
        Ok(())
    }

    /// Every known record below `path` this run did not take is gone, children first.
    pub fn delete_unseen_under(&mut self, path: &str) -> Result<(), Error> {
        let mut after: Option<String> = None;
        loop {
            let page =
                self.host
                    .list_paths_under(path, Order::ChildrenFirst, after.as_deref(), PAGE);
            let Some((_, last)) = page.last() else { break };
            after = Some(last.clone());
            for (external_id, known_path) in page {
                if !self.keeps(&external_id, &known_path) {
                    self.remove(external_id)?;
                }
            }
        }
        Ok(())
    }

    fn is_protected(&self, path: &str) -> bool {
        self.protected
            .iter()
            .any(|p| path == p || is_under(path, p))
    }

    /// Gives up on records whose folder never came: they are protected and
    /// the run is incomplete. Call before deleting what was not seen.
    pub fn settle(&mut self) {
        for (parent, records) in std::mem::take(&mut self.orphans) {
            for record in records {
                self.log(
                    Level::Warn,
                    &format!(
                        "skipping {}: its folder {parent} was not listed",
                        record.path
                    ),
                );
                self.protected.push(record.path);
                self.complete = false;
            }
        }
    }

    /// Commits the last batch with `sync_points` if the run covered all it
    /// set out to; otherwise commits the records alone.
    pub fn finish(mut self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        self.settle();
        let sync_points: &[(&str, String)] = if self.complete && !self.skipped {
            sync_points
        } else {
            self.log(
                Level::Warn,
                "some entries could not be placed; this run's changes are committed but its cursor is not",
            );
            &[]
        };
        self.batcher.finish(sync_points)
    }
}

/// Whether `path` lies strictly below the folder `folder`.
fn is_under(path: &str, folder: &str) -> bool {
    folder == "/" && path != "/"
        || path.len() > folder.len()
            && path.starts_with(folder)
            && path.as_bytes()[folder.len()] == b'/'
}

/// `to_record` only accepts numeric file ids; anything else never matches.
fn file_id(external_id: &str) -> u64 {
    external_id.parse().unwrap_or(u64::MAX)
}

pub fn parse_error(e: ParseError) -> Error {
    match e {
        ParseError::Body(m) => Error::Http(format!("reading the listing: {m}")),
        other => Error::Protocol(other.to_string()),
    }
}
