//! A full listing of the account: every entry becomes a record, parents
//! reach the sink before their children, and only a complete listing may
//! delete what it did not see.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::BufReader;

use crate::batch::Batcher;
use crate::entry::{Identity, to_record};
use crate::error::Error;
use crate::host::{Host, Level, Request};
use crate::href::{DavRoot, parent_of};
use crate::model::{Order, Record, SyncMode, SyncSummary};
use crate::propfind::{
    DavEntry, MultistatusReader, PROPFIND_BODY, ParseError, is_finite_depth_error,
};
use crate::read_body;

/// Folders asked for at once in a Depth 1 walk; the host caps concurrency itself.
const WALK_WAVE: usize = 8;
/// Known records read per page in the deletion pass.
const PAGE: u32 = 1000;
/// Enough to read a refusal's body.
const SMALL_BODY: usize = 64 * 1024;

pub fn propfind(url: String, depth: &str) -> Request {
    Request::new("PROPFIND", url)
        .header("Depth", depth)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(PROPFIND_BODY.as_bytes().to_vec())
}

pub struct Listing<'h, H: Host> {
    host: &'h H,
    root: &'h DavRoot,
    who: &'h Identity,
    batcher: Batcher<'h, H>,
    /// The path cache: decoded folder path → external id.
    folders: HashMap<String, String>,
    /// External ids listed so far (file ids are numbers: 8 bytes each at a million entries).
    seen: HashSet<u64>,
    /// Records whose parent folder has not been listed yet, by parent path.
    orphans: HashMap<String, Vec<Record>>,
    /// Paths of entries that could not be read; what is known there is kept.
    protected: Vec<String>,
    /// False once an entry could not even be placed: nothing may be deleted.
    complete: bool,
}

impl<'h, H: Host> Listing<'h, H> {
    pub fn new(host: &'h H, root: &'h DavRoot, who: &'h Identity, batch_size: u32) -> Self {
        Listing {
            host,
            root,
            who,
            batcher: Batcher::new(host, batch_size, SyncMode::Full),
            folders: HashMap::new(),
            seen: HashSet::new(),
            orphans: HashMap::new(),
            protected: Vec::new(),
            complete: true,
        }
    }

    /// Lists everything with one `Depth: infinity` PROPFIND, or folder by
    /// folder when the server refuses infinity.
    pub fn run(mut self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        let response = self
            .host
            .send(propfind(self.root.url_of("/"), "infinity"))?;
        match response.status {
            207 => {
                let reader = BufReader::with_capacity(64 * 1024, response.body);
                for entry in MultistatusReader::new(reader) {
                    let entry = entry.map_err(parse_error)?;
                    self.take(&entry, None)?;
                }
            }
            403 | 412 | 501 => {
                let body = read_body(response.body, SMALL_BODY)?;
                if response.status == 403 && !is_finite_depth_error(&body) {
                    return Err(Error::status("listing the user's files", 403));
                }
                self.host.log(
                    Level::Info,
                    &format!(
                        "the server refuses Depth: infinity ({}); listing folder by folder",
                        response.status
                    ),
                );
                self.walk()?;
            }
            status => return Err(Error::status("listing the user's files", status)),
        }
        self.finish(sync_points)
    }

    /// Breadth first, so every folder is placed before its children are listed.
    fn walk(&mut self) -> Result<(), Error> {
        let mut queue = VecDeque::from([String::from("/")]);
        while !queue.is_empty() {
            let wave: Vec<String> = queue.drain(..queue.len().min(WALK_WAVE)).collect();
            let requests = wave
                .iter()
                .map(|path| propfind(self.root.url_of(path), "1"))
                .collect();
            let responses = self.host.send_all(requests);
            if responses.len() != wave.len() {
                return Err(Error::Http(
                    "the host answered a different number of requests".into(),
                ));
            }
            for (folder, response) in wave.into_iter().zip(responses) {
                let response = response?;
                match response.status {
                    207 => {}
                    404 => {
                        // Gone while we walked: what is known there stays until a listing sees it.
                        self.host.log(
                            Level::Warn,
                            &format!("{folder} vanished during the listing"),
                        );
                        self.protected.push(folder);
                        continue;
                    }
                    status => return Err(Error::status(&format!("listing {folder}"), status)),
                }
                let reader = BufReader::new(response.body);
                for entry in MultistatusReader::new(reader) {
                    let entry = entry.map_err(parse_error)?;
                    if let Some(sub) = self.take(&entry, Some(&folder))? {
                        queue.push_back(sub);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes one listed entry. In a walk, `listed` is the folder whose
    /// listing this is: its own entry was placed already, and a new
    /// subfolder is returned to be listed next.
    fn take(&mut self, entry: &DavEntry, listed: Option<&str>) -> Result<Option<String>, Error> {
        let record = match to_record(entry, self.root, self.who) {
            Ok(r) => r,
            Err(e) => {
                self.host.log(Level::Warn, &e.to_string());
                match e.path {
                    Some(path) => self.protected.push(path),
                    None => self.complete = false,
                }
                return Ok(None);
            }
        };
        if listed.is_some_and(|l| l == record.path && l != "/") {
            return Ok(None);
        }
        if !self.seen.insert(file_id(&record.external_id)) {
            self.host.log(
                Level::Warn,
                &format!(
                    "skipping {}: file id {} was already listed at another path",
                    record.path, record.external_id
                ),
            );
            self.protected.push(record.path);
            return Ok(None);
        }
        let sub = (listed.is_some() && record.is_folder && record.path != "/")
            .then(|| record.path.clone());
        self.place(record)?;
        Ok(sub)
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

    fn finish(mut self, sync_points: &[(&str, String)]) -> Result<SyncSummary, Error> {
        for (parent, records) in std::mem::take(&mut self.orphans) {
            for record in records {
                self.host.log(
                    Level::Warn,
                    &format!(
                        "skipping {}: its folder {parent} was not listed",
                        record.path
                    ),
                );
                self.protected.push(record.path);
            }
        }
        if self.complete {
            self.delete_unseen()?;
        } else {
            self.host.log(
                Level::Warn,
                "the listing had entries that could not be placed; nothing is deleted this run",
            );
        }
        let sync_points: &[(&str, String)] = if self.complete { sync_points } else { &[] };
        self.batcher.finish(sync_points)
    }

    /// Every known record the listing did not see is gone, children first.
    fn delete_unseen(&mut self) -> Result<(), Error> {
        let mut after: Option<String> = None;
        loop {
            let page = self
                .host
                .list_under("/", Order::ChildrenFirst, after.as_deref(), PAGE);
            let Some(last) = page.last() else { break };
            after = Some(last.path.clone());
            for known in page {
                if !self.seen.contains(&file_id(&known.external_id))
                    && !self.is_protected(&known.path)
                {
                    self.batcher.delete(known.external_id)?;
                }
            }
        }
        Ok(())
    }

    fn is_protected(&self, path: &str) -> bool {
        self.protected.iter().any(|p| {
            path == p
                || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'/'))
        })
    }
}

/// `to_record` only accepts numeric file ids; anything else never matches.
fn file_id(external_id: &str) -> u64 {
    external_id.parse().unwrap_or(u64::MAX)
}

fn parse_error(e: ParseError) -> Error {
    match e {
        ParseError::Body(m) => Error::Http(format!("reading the listing: {m}")),
        other => Error::Protocol(other.to_string()),
    }
}
