//! The file tree and its one mutation path (`Tree::apply`), which mirrors
//! Nextcloud's cache updater: every change gives all ancestors one shared new
//! etag (`uniqid()` in `Propagator::propagateChange`), `mtime = max(mtime, t)`
//! and an adjusted recursive size. Moves, deletes and restores keep the moved
//! node's own etag and mtime, as `Cache::move` does.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::ops::Index;
use std::sync::Arc;

use crate::content::{Content, splitmix64};
use crate::error::SimError;

/// Folder etags look like PHP `uniqid()` (13 hex digits); starting near the
/// values in the fixtures keeps them realistic while a counter keeps them unique.
const FOLDER_ETAG_BASE: u64 = 0x0006_b0b0_3e00_0000;
const FIRST_FILEID: u64 = 100;

pub(crate) struct Node {
    pub name: Arc<str>,
    /// `None` for the root and for the top node of a trashed subtree.
    pub parent: Option<u64>,
    /// The mutation that last changed this node's etag.
    pub stamp: u64,
    pub mtime: i64,
    /// File size, or the sum of all file sizes below a folder (`oc:size`).
    pub size: u64,
    pub kind: Kind,
}

pub(crate) enum Kind {
    Folder {
        children: BTreeMap<Arc<str>, u64>,
    },
    File {
        content: Content,
        checksum: Option<Box<str>>,
        upload_time: i64,
    },
}

impl Node {
    pub fn is_folder(&self) -> bool {
        matches!(self.kind, Kind::Folder { .. })
    }

    pub fn children(&self) -> Option<&BTreeMap<Arc<str>, u64>> {
        match &self.kind {
            Kind::Folder { children } => Some(children),
            Kind::File { .. } => None,
        }
    }

    /// Unquoted etag: 32 hex digits for files (Local storage's md5), 13 for folders.
    pub fn etag(&self) -> String {
        if self.is_folder() {
            format!("{:013x}", FOLDER_ETAG_BASE + self.stamp)
        } else {
            format!(
                "{:016x}{:016x}",
                splitmix64(self.stamp),
                splitmix64(self.stamp ^ 0x5eed)
            )
        }
    }

    pub fn permissions(&self) -> &'static str {
        if self.is_folder() {
            "RGDNVCK"
        } else {
            "RGDNVW"
        }
    }
}

/// One entry of the truth: what a Depth: infinity PROPFIND would list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEntry {
    pub fileid: u64,
    /// Decoded, leading slash; the root is "/", folders have no trailing slash.
    pub path: String,
    pub is_folder: bool,
    /// Unquoted.
    pub etag: String,
    pub size: u64,
    pub modified: i64,
    pub permissions: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Changed,
    /// Rename and/or move; old and new path tell which.
    Moved,
    Deleted,
    Restored,
}

/// What the Activity app would record for a mutation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub fileid: u64,
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub is_folder: bool,
    pub time: i64,
}

struct TrashEntry {
    original_path: String,
    /// The home folder the node was deleted from.
    home: u64,
}

pub(crate) enum Op<'a> {
    Mkdir {
        parent: u64,
        name: &'a str,
    },
    Put {
        parent: u64,
        name: &'a str,
        content: Content,
        /// Like `X-OC-MTime`; `None` means the upload time.
        mtime: Option<i64>,
    },
    SetChecksum {
        id: u64,
        checksum: Option<&'a str>,
    },
    Touch {
        id: u64,
        mtime: i64,
    },
    Move {
        id: u64,
        new_parent: u64,
        new_name: &'a str,
    },
    Delete {
        id: u64,
    },
    Restore {
        id: u64,
    },
    /// A deep copy with new fileids; files and folders keep their mtime.
    Copy {
        id: u64,
        new_parent: u64,
        new_name: &'a str,
    },
}

/// Fileids are handed out densely and nodes are never dropped (the trash
/// keeps them), so a vector indexed by fileid beats a hash map by far on
/// memory for million-node trees.
pub(crate) struct Nodes {
    first: u64,
    v: Vec<Node>,
}

impl Nodes {
    pub fn get(&self, id: &u64) -> Option<&Node> {
        self.v.get(id.checked_sub(self.first)? as usize)
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Node> {
        self.v.get_mut(id.checked_sub(self.first)? as usize)
    }

    fn push(&mut self, id: u64, node: Node) {
        assert_eq!(id, self.first + self.v.len() as u64, "fileids are dense");
        self.v.push(node);
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }
}

impl Index<&u64> for Nodes {
    type Output = Node;

    fn index(&self, id: &u64) -> &Node {
        self.get(id).expect("fileid exists")
    }
}

pub(crate) struct Tree {
    pub nodes: Nodes,
    /// The first user's home folder.
    pub root: u64,
    /// Every user's home folder (parentless, like trashed subtrees, but live).
    homes: Vec<u64>,
    next_id: u64,
    next_stamp: u64,
    trash: BTreeMap<u64, TrashEntry>,
    /// Each change with the home folder it happened in.
    changes: Vec<(u64, Change)>,
    /// Off while generating a large pre-existing tree: such files predate the
    /// activity history (like files older than the activity retention).
    pub record_changes: bool,
    /// Added to the wall clock, so tests can let hours pass.
    pub clock_offset: i64,
    /// A stopped clock: every change happens at this second.
    pub clock_stopped_at: Option<i64>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Nextcloud's filename validator for the default configuration.
pub(crate) fn validate_name(name: &str) -> Result<(), SimError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 250
        || name.contains(['/', '\\'])
        || name.chars().any(|c| c.is_control())
        || name.eq_ignore_ascii_case(".htaccess")
        || name.ends_with(".part")
        || name.ends_with(".filepart");
    if bad {
        Err(SimError::InvalidName(name.to_string()))
    } else {
        Ok(())
    }
}

fn join(parent_path: &str, name: &str) -> String {
    if parent_path == "/" {
        format!("/{name}")
    } else {
        format!("{parent_path}/{name}")
    }
}

impl Tree {
    pub fn new() -> Self {
        let root = FIRST_FILEID;
        let mut nodes = Nodes {
            first: root,
            v: Vec::new(),
        };
        nodes.push(
            root,
            Node {
                name: Arc::from(""),
                parent: None,
                stamp: 0,
                mtime: now(),
                size: 0,
                kind: Kind::Folder {
                    children: BTreeMap::new(),
                },
            },
        );
        Tree {
            nodes,
            root,
            homes: vec![root],
            next_id: root + 1,
            next_stamp: 1,
            trash: BTreeMap::new(),
            changes: Vec::new(),
            record_changes: true,
            clock_offset: 0,
            clock_stopped_at: None,
        }
    }

    /// The simulated clock: the wall clock plus the test-controlled offset,
    /// unless it is stopped.
    pub fn now(&self) -> i64 {
        self.clock_stopped_at
            .unwrap_or_else(|| now() + self.clock_offset)
    }

    /// A new, empty home folder for another user.
    pub fn add_home(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let stamp = self.bump();
        self.nodes.push(
            id,
            Node {
                name: Arc::from(""),
                parent: None,
                stamp,
                mtime: self.now(),
                size: 0,
                kind: Kind::Folder {
                    children: BTreeMap::new(),
                },
            },
        );
        self.homes.push(id);
        id
    }

    pub fn is_home(&self, id: u64) -> bool {
        self.homes.contains(&id)
    }

    /// The topmost ancestor (or the node itself): a home, or a trashed subtree's top.
    pub fn top_of(&self, id: u64) -> u64 {
        let mut cur = id;
        while let Some(p) = self.nodes.get(&cur).and_then(|n| n.parent) {
            cur = p;
        }
        cur
    }

    /// The home folder a live node is in; `None` for trashed or unknown nodes.
    pub fn home_of(&self, id: u64) -> Option<u64> {
        self.nodes.get(&id)?;
        let top = self.top_of(id);
        self.is_home(top).then_some(top)
    }

    /// Whether `ancestor` is `id` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: u64, id: u64) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.nodes.get(&c).and_then(|n| n.parent);
        }
        false
    }

    /// A live node by decoded path below `start` (a folder id).
    pub fn resolve_from(&self, start: u64, path: &str) -> Option<u64> {
        let mut id = start;
        for seg in segments(path) {
            id = *self.nodes.get(&id)?.children()?.get(seg)?;
        }
        Some(id)
    }

    /// The trashed node's home, if `id` is the top of a trashed subtree.
    pub fn trash_home(&self, id: u64) -> Option<u64> {
        self.trash.get(&id).map(|t| t.home)
    }

    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// Decoded path of a live node ("/" for the root).
    pub fn path_of(&self, id: u64) -> String {
        let mut names = Vec::new();
        let mut cur = id;
        while let Some(node) = self.nodes.get(&cur) {
            match node.parent {
                Some(p) => {
                    names.push(node.name.clone());
                    cur = p;
                }
                None => break,
            }
        }
        if names.is_empty() {
            return "/".to_string();
        }
        let mut out = String::new();
        for name in names.iter().rev() {
            out.push('/');
            out.push_str(name);
        }
        out
    }

    /// The changes in one home folder, oldest first.
    pub fn changes_in(&self, home: u64) -> Vec<Change> {
        self.changes
            .iter()
            .filter(|(h, _)| *h == home)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Feeds every node (live or trashed), the trash and the counters into
    /// `h`, for [`State::fingerprint`](crate::sim::State).
    pub fn hash_state(&self, h: &mut impl Hasher) {
        (self.next_id, self.next_stamp, &self.homes).hash(h);
        for n in &self.nodes.v {
            (&n.name, n.parent, n.stamp, n.mtime, n.size).hash(h);
            match &n.kind {
                Kind::Folder { children } => children.hash(h),
                Kind::File {
                    content,
                    checksum,
                    upload_time,
                } => {
                    (checksum, upload_time).hash(h);
                    match content {
                        Content::Bytes(b) => b.hash(h),
                        Content::Synthetic { seed, size } => (seed, size).hash(h),
                    }
                }
            }
        }
        for (id, t) in &self.trash {
            (id, &t.original_path, t.home).hash(h);
        }
    }

    /// The stamp the next mutation will get; a cheap source of fresh seeds.
    pub fn peek_stamp(&self) -> u64 {
        self.next_stamp
    }

    fn bump(&mut self) -> u64 {
        let s = self.next_stamp;
        self.next_stamp += 1;
        s
    }

    /// `Propagator::propagateChange`: `from` and every ancestor get the same
    /// new etag, `mtime = max(mtime, time)` and the size difference.
    fn propagate(&mut self, from: u64, stamp: u64, time: i64, delta: i64) {
        let mut cur = Some(from);
        while let Some(id) = cur {
            let node = self.nodes.get_mut(&id).expect("ancestor exists");
            node.stamp = stamp;
            node.mtime = node.mtime.max(time);
            node.size = node.size.saturating_add_signed(delta);
            cur = node.parent;
        }
    }

    /// Called after the change, so the new path is the node's current one.
    fn log(&mut self, home: u64, kind: ChangeKind, id: u64, old: Option<String>, t: i64) {
        if self.record_changes {
            let is_folder = self.nodes[&id].is_folder();
            let new = (kind != ChangeKind::Deleted).then(|| self.path_of(id));
            self.changes.push((
                home,
                Change {
                    kind,
                    fileid: id,
                    old_path: old,
                    new_path: new,
                    is_folder,
                    time: t,
                },
            ));
        }
    }

    fn folder_children_mut(&mut self, id: u64) -> Result<&mut BTreeMap<Arc<str>, u64>, SimError> {
        match self.nodes.get(&id) {
            None => return Err(SimError::NotFound(format!("fileid {id}"))),
            Some(n) if !n.is_folder() => return Err(SimError::NotAFolder(self.path_of(id))),
            Some(_) => {}
        }
        match &mut self.nodes.get_mut(&id).expect("checked").kind {
            Kind::Folder { children } => Ok(children),
            Kind::File { .. } => unreachable!("checked above"),
        }
    }

    fn child_path(&self, parent: u64, name: &str) -> String {
        join(&self.path_of(parent), name)
    }

    fn live(&self, id: u64) -> Result<&Node, SimError> {
        let node = self
            .nodes
            .get(&id)
            .ok_or_else(|| SimError::NotFound(format!("fileid {id}")))?;
        if node.parent.is_none() && !self.is_home(id) {
            return Err(SimError::NotFound(format!("fileid {id} (in trash)")));
        }
        Ok(node)
    }

    fn insert_child(
        &mut self,
        parent: u64,
        name: &str,
        kind: Kind,
        size: u64,
        stamp: u64,
        mtime: i64,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let name: Arc<str> = Arc::from(name);
        self.nodes.push(
            id,
            Node {
                name: name.clone(),
                parent: Some(parent),
                stamp,
                mtime,
                size,
                kind,
            },
        );
        if let Some(Kind::Folder { children }) = self.nodes.get_mut(&parent).map(|n| &mut n.kind) {
            children.insert(name, id);
        }
        id
    }

    /// Every mutation goes through here so propagation and the change log
    /// cannot be forgotten. Returns the fileid of the node acted on (for a
    /// copy, the new node).
    pub fn apply(&mut self, op: Op) -> Result<u64, SimError> {
        let t = self.now();
        match op {
            Op::Mkdir { parent, name } => {
                validate_name(name)?;
                if self.folder_children_mut(parent)?.contains_key(name) {
                    return Err(SimError::Exists(self.child_path(parent, name)));
                }
                let home = self.live_home(parent)?;
                let stamp = self.bump();
                let kind = Kind::Folder {
                    children: BTreeMap::new(),
                };
                let id = self.insert_child(parent, name, kind, 0, stamp, t);
                self.propagate(parent, stamp, t, 0);
                self.log(home, ChangeKind::Created, id, None, t);
                Ok(id)
            }
            Op::Put {
                parent,
                name,
                content,
                mtime,
            } => {
                validate_name(name)?;
                let existing = self.folder_children_mut(parent)?.get(name).copied();
                let home = self.live_home(parent)?;
                let stamp = self.bump();
                let size = content.size();
                let touched = mtime.is_some();
                let mtime = mtime.unwrap_or(t);
                let kind = Kind::File {
                    content,
                    checksum: None,
                    upload_time: t,
                };
                if let Some(id) = existing {
                    let node = self.nodes.get_mut(&id).expect("child exists");
                    if node.is_folder() {
                        return Err(SimError::IsAFolder(self.child_path(parent, name)));
                    }
                    // An upload without OC-Checksum drops the old checksum, as File::put does.
                    let delta = size as i64 - node.size as i64;
                    // Overwritten within the second of its last write, the
                    // file keeps its etag, whatever its size: the scanner
                    // reuses the cached etag while the storage mtime is
                    // unchanged (seen on Nextcloud 32). Its folders still
                    // get a new one.
                    let same_second = !touched && node.mtime == t;
                    node.kind = kind;
                    node.size = size;
                    if !same_second {
                        node.stamp = stamp;
                    }
                    node.mtime = mtime;
                    self.propagate(parent, stamp, t, delta);
                    self.log(home, ChangeKind::Changed, id, None, t);
                    Ok(id)
                } else {
                    let id = self.insert_child(parent, name, kind, size, stamp, mtime);
                    self.propagate(parent, stamp, t, size as i64);
                    self.log(home, ChangeKind::Created, id, None, t);
                    Ok(id)
                }
            }
            Op::SetChecksum { id, checksum } => {
                let parent = self.live(id)?.parent;
                let path = self.path_of(id);
                let stamp = self.bump();
                let node = self.nodes.get_mut(&id).expect("live");
                match &mut node.kind {
                    Kind::File { checksum: c, .. } => *c = checksum.map(Box::from),
                    Kind::Folder { .. } => return Err(SimError::IsAFolder(path)),
                }
                // The server only learns a checksum with an upload, which
                // always comes with a new etag.
                node.stamp = stamp;
                if let Some(p) = parent {
                    self.propagate(p, stamp, t, 0);
                }
                Ok(id)
            }
            Op::Touch { id, mtime } => {
                let parent = self.live(id)?.parent;
                let stamp = self.bump();
                let node = self.nodes.get_mut(&id).expect("live");
                node.mtime = mtime;
                node.stamp = stamp;
                // `View::touch` propagates the touched time, not the wall clock.
                if let Some(p) = parent {
                    self.propagate(p, stamp, mtime, 0);
                }
                Ok(id)
            }
            Op::Move {
                id,
                new_parent,
                new_name,
            } => {
                if self.is_home(id) {
                    return Err(SimError::Root);
                }
                validate_name(new_name)?;
                let old_parent = self.live(id)?.parent.expect("live non-root has a parent");
                let old_path = self.path_of(id);
                let new_path = join(&self.path_of(new_parent), new_name);
                self.live(new_parent)?;
                let home = self.live_home(old_parent)?;
                if self.home_of(new_parent) != Some(home) {
                    return Err(SimError::InvalidMove(format!(
                        "{old_path} to another user's storage ({new_path})"
                    )));
                }
                let mut cur = Some(new_parent);
                while let Some(c) = cur {
                    if c == id {
                        return Err(SimError::InvalidMove(format!(
                            "{old_path} into itself ({new_path})"
                        )));
                    }
                    cur = self.nodes[&c].parent;
                }
                if self.folder_children_mut(new_parent)?.contains_key(new_name) {
                    return Err(SimError::Exists(new_path));
                }
                let (old_name, size) = {
                    let n = &self.nodes[&id];
                    (n.name.clone(), n.size as i64)
                };
                let stamp = self.bump();
                self.folder_children_mut(old_parent)?.remove(&old_name);
                self.propagate(old_parent, stamp, t, -size);
                let name: Arc<str> = Arc::from(new_name);
                self.folder_children_mut(new_parent)?
                    .insert(name.clone(), id);
                let node = self.nodes.get_mut(&id).expect("live");
                node.name = name;
                node.parent = Some(new_parent);
                self.propagate(new_parent, stamp, t, size);
                self.log(home, ChangeKind::Moved, id, Some(old_path), t);
                Ok(id)
            }
            Op::Delete { id } => {
                if self.is_home(id) {
                    return Err(SimError::Root);
                }
                let parent = self.live(id)?.parent.expect("live non-root has a parent");
                let home = self.live_home(parent)?;
                let path = self.path_of(id);
                let (name, size) = {
                    let n = &self.nodes[&id];
                    (n.name.clone(), n.size as i64)
                };
                let stamp = self.bump();
                self.folder_children_mut(parent)?.remove(&name);
                self.nodes.get_mut(&id).expect("live").parent = None;
                self.propagate(parent, stamp, t, -size);
                self.trash.insert(
                    id,
                    TrashEntry {
                        original_path: path.clone(),
                        home,
                    },
                );
                self.log(home, ChangeKind::Deleted, id, Some(path), t);
                Ok(id)
            }
            Op::Restore { id } => {
                let entry = self.trash.remove(&id).ok_or(SimError::NotInTrash(id))?;
                let home = entry.home;
                let (dir, name) = entry.original_path.rsplit_once('/').unwrap_or(("", ""));
                // Trashbin::restore falls back to the root when the original
                // folder is gone, and picks "name (restored).ext" on a clash.
                let parent = self
                    .resolve_from(home, dir)
                    .filter(|p| self.nodes[p].is_folder())
                    .unwrap_or(home);
                let name = self.unique_restore_name(parent, name);
                let size = self.nodes[&id].size as i64;
                let stamp = self.bump();
                let arc: Arc<str> = Arc::from(name.as_str());
                self.folder_children_mut(parent)?.insert(arc.clone(), id);
                let node = self.nodes.get_mut(&id).expect("trashed node kept");
                node.name = arc;
                node.parent = Some(parent);
                self.propagate(parent, stamp, t, size);
                self.log(home, ChangeKind::Restored, id, None, t);
                Ok(id)
            }
            Op::Copy {
                id,
                new_parent,
                new_name,
            } => {
                validate_name(new_name)?;
                self.live(id)?;
                self.live(new_parent)?;
                let home = self.live_home(new_parent)?;
                let new_path = join(&self.path_of(new_parent), new_name);
                if self.is_ancestor_or_self(id, new_parent) {
                    return Err(SimError::InvalidMove(format!(
                        "{} into itself ({new_path})",
                        self.path_of(id)
                    )));
                }
                if self.folder_children_mut(new_parent)?.contains_key(new_name) {
                    return Err(SimError::Exists(new_path));
                }
                let stamp = self.bump();
                let size = self.nodes[&id].size as i64;
                let copy = self.copy_subtree(id, new_parent, new_name, stamp);
                self.propagate(new_parent, stamp, t, size);
                self.log(home, ChangeKind::Created, copy, None, t);
                Ok(copy)
            }
        }
    }

    /// The home of a live folder, or why there is none.
    fn live_home(&self, id: u64) -> Result<u64, SimError> {
        self.live(id)?;
        self.home_of(id)
            .ok_or_else(|| SimError::NotFound(format!("fileid {id} (in trash)")))
    }

    /// Copies `id` (and everything below it) into `parent` as `name`.
    fn copy_subtree(&mut self, id: u64, parent: u64, name: &str, stamp: u64) -> u64 {
        let (kind, size, mtime, children) = {
            let n = &self.nodes[&id];
            match &n.kind {
                Kind::File {
                    content,
                    checksum,
                    upload_time,
                } => (
                    Kind::File {
                        content: content.clone(),
                        checksum: checksum.clone(),
                        upload_time: *upload_time,
                    },
                    n.size,
                    n.mtime,
                    Vec::new(),
                ),
                Kind::Folder { children } => (
                    Kind::Folder {
                        children: BTreeMap::new(),
                    },
                    n.size,
                    n.mtime,
                    children
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .collect::<Vec<_>>(),
                ),
            }
        };
        let new = self.insert_child(parent, name, kind, size, stamp, mtime);
        for (child_name, child) in children {
            self.copy_subtree(child, new, &child_name, stamp);
        }
        new
    }

    fn unique_restore_name(&self, parent: u64, name: &str) -> String {
        let children = self.nodes[&parent].children().expect("folder");
        if !children.contains_key(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
            _ => (name, String::new()),
        };
        let mut i = 1;
        loop {
            let candidate = if i == 1 {
                format!("{stem} (restored){ext}")
            } else {
                format!("{stem} (restored {i}){ext}")
            };
            if !children.contains_key(candidate.as_str()) {
                return candidate;
            }
            i += 1;
        }
    }
}
