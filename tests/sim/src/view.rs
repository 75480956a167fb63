//! One user's namespace: their home folder plus the shares mounted at its
//! root, as the server's `View` sees it. Nodes reached through a mount keep
//! their fileids (one global file cache) but get the share's permissions
//! (`S`-prefixed letters) and the owner's `oc:owner-id`.

use std::ops::Bound;
use std::sync::Arc;

use crate::md5_hex;
use crate::props::NodeView;
use crate::share::{PERMISSION_ALL, PERMISSION_CREATE, PERMISSION_DELETE, Share, letters};
use crate::sim::{State, UserRec};
use crate::tree::{Node, SimEntry, Tree, segments};

/// How a node is reached in a user's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// In the user's own home.
    Own,
    /// The root of a received share (the mount point), by share id.
    MountRoot(u64),
    /// Below the root of a received share.
    InMount(u64),
}

impl Ctx {
    pub fn share(self) -> Option<u64> {
        match self {
            Ctx::Own => None,
            Ctx::MountRoot(s) | Ctx::InMount(s) => Some(s),
        }
    }

    /// The context of a child reached from a node in this context.
    pub fn child(self) -> Ctx {
        match self {
            Ctx::Own => Ctx::Own,
            Ctx::MountRoot(s) | Ctx::InMount(s) => Ctx::InMount(s),
        }
    }
}

/// Files never carry create or delete in `ocs:share-permissions`.
fn file_share_bits(bits: u32, node: &Node) -> u32 {
    if node.is_folder() {
        bits
    } else {
        bits & !(PERMISSION_CREATE | PERMISSION_DELETE)
    }
}

/// How a node comes up in an answer: a mount point's letters depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// As a child in a folder's listing (`View::getDirectoryContent`).
    Listed,
    /// As the node a request names (`View::getFileInfo`).
    Named,
    /// As a SEARCH result.
    Searched,
}

/// Where the listing of a folder stands: the folder's own children come
/// first, in byte order of their names (`ORDER BY name` in the file cache),
/// then, in the home root, the mount points of received shares, in byte
/// order too (`View::getDirectoryContent` appends them after the cache's
/// entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cursor {
    #[default]
    Start,
    /// After the own child of this name.
    Own(Arc<str>),
    /// After the mount point of this name.
    Mount(Arc<str>),
}

impl Cursor {
    /// The cursor after a child `next_child` returned.
    pub fn after(name: Arc<str>, ctx: Ctx) -> Cursor {
        match ctx {
            Ctx::MountRoot(_) => Cursor::Mount(name),
            _ => Cursor::Own(name),
        }
    }
}

pub struct MountInfo<'s> {
    pub share: &'s Share,
    pub name: &'s str,
    pub target: u64,
    pub owner: &'s UserRec,
    /// Letters of the mount point in its parent's listing:
    /// `getDirectoryContent` adds update and delete to the share's bits.
    pub root_letters: String,
    /// Letters of the mount point when a request names it: `getFileInfo`
    /// adds delete only.
    pub named_root_letters: String,
    /// Letters of the mount point as SEARCH reports it (the bare share bits).
    pub search_root_letters: String,
    pub file_letters: String,
    pub folder_letters: String,
}

pub struct UserView<'s> {
    pub st: &'s State,
    pub user: &'s UserRec,
    /// Sorted by name; only shares whose node is live.
    pub mounts: Vec<MountInfo<'s>>,
    /// `FileInfo::addSubEntry` for the home root when mounts exist.
    root_override: Option<(String, u64, i64)>,
}

impl<'s> UserView<'s> {
    pub fn new(st: &'s State, idx: usize) -> Self {
        let user = &st.users[idx];
        let tree = &st.tree;
        let mut mounts = Vec::new();
        for share in &st.shares {
            let Some(name) = share.target_for(&user.spec.user_id) else {
                continue;
            };
            let Some(node) = tree.node(share.node) else {
                continue;
            };
            if tree.home_of(share.node).is_none() {
                continue;
            }
            let Some(owner) = st.user(&share.file_owner) else {
                continue;
            };
            let bits = share.permissions;
            let is_file = !node.is_folder();
            mounts.push(MountInfo {
                share,
                name,
                target: share.node,
                owner,
                root_letters: letters(true, bits | 2 | 8, bits, is_file),
                named_root_letters: letters(true, bits | 8, bits, is_file),
                search_root_letters: letters(true, bits, bits, is_file),
                file_letters: letters(true, bits & !4, bits, true),
                folder_letters: letters(true, bits, bits, false),
            });
        }
        mounts.sort_by(|a, b| a.name.cmp(b.name));
        mounts.dedup_by(|b, a| a.name == b.name);
        let root_override = if mounts.is_empty() {
            None
        } else {
            let root = tree.node(user.root).expect("home exists");
            let mut size = root.size;
            let mut mtime = root.mtime;
            let mut combined = root.etag();
            for m in &mounts {
                let n = tree.node(m.target).expect("checked");
                size += n.size;
                mtime = mtime.max(n.mtime);
                combined.push_str("::");
                combined.push('/');
                combined.push_str(m.name);
                combined.push('/');
                combined.push_str(&n.etag());
                combined.push_str(&(m.share.permissions | 2 | 8).to_string());
            }
            Some((md5_hex(combined.as_bytes()), size, mtime))
        };
        UserView {
            st,
            user,
            mounts,
            root_override,
        }
    }

    pub fn tree(&self) -> &'s Tree {
        &self.st.tree
    }

    pub fn root(&self) -> u64 {
        self.user.root
    }

    pub fn mount(&self, share: u64) -> Option<&MountInfo<'s>> {
        self.mounts.iter().find(|m| m.share.id == share)
    }

    fn mount_named(&self, name: &str) -> Option<&MountInfo<'s>> {
        self.mounts.iter().find(|m| m.name == name)
    }

    /// Whether a frame's context is still valid (its mount may be gone).
    pub fn ctx_alive(&self, ctx: Ctx) -> bool {
        ctx.share().is_none_or(|s| self.mount(s).is_some())
    }

    /// A node by decoded path, or the message of Sabre's NotFound.
    pub fn resolve(&self, path: &str) -> Result<(u64, Ctx), String> {
        let tree = self.tree();
        let mut id = self.root();
        let mut ctx = Ctx::Own;
        let mut walked = String::new();
        for seg in segments(path) {
            let node = tree.node(id).expect("walked from the root");
            let Some(children) = node.children() else {
                return Err(format!(
                    "Could not find node at path: {}",
                    path.trim_start_matches('/')
                ));
            };
            let mounted = (ctx == Ctx::Own && id == self.root())
                .then(|| self.mount_named(seg))
                .flatten();
            if let Some(m) = mounted {
                id = m.target;
                ctx = Ctx::MountRoot(m.share.id);
            } else {
                match children.get(seg) {
                    Some(&child) => {
                        id = child;
                        ctx = ctx.child();
                    }
                    None => {
                        let dir = if walked.is_empty() {
                            "/"
                        } else {
                            walked.as_str()
                        };
                        return Err(format!("File with name {dir}/{seg} could not be located"));
                    }
                }
            }
            walked.push('/');
            walked.push_str(seg);
        }
        Ok((id, ctx))
    }

    /// The next child of `folder` after `cursor`: its own children, then
    /// (in the home root) the mount points; see [`Cursor`].
    pub fn next_child(
        &self,
        folder: u64,
        ctx: Ctx,
        cursor: &Cursor,
    ) -> Option<(Arc<str>, u64, Ctx)> {
        let node = self.tree().node(folder)?;
        let children = node.children()?;
        let own = match cursor {
            Cursor::Start => children.iter().next(),
            Cursor::Own(a) => children
                .range::<str, _>((Bound::Excluded(&**a), Bound::Unbounded))
                .next(),
            Cursor::Mount(_) => None,
        };
        if let Some((name, &id)) = own {
            return Some((name.clone(), id, ctx.child()));
        }
        if ctx != Ctx::Own || folder != self.root() {
            return None;
        }
        let mount = match cursor {
            Cursor::Mount(a) => self.mounts.iter().find(|m| m.name > &**a),
            _ => self.mounts.first(),
        }?;
        Some((
            Arc::from(mount.name),
            mount.target,
            Ctx::MountRoot(mount.share.id),
        ))
    }

    /// How a node is presented: owner, letters, share types and the home
    /// root's mount-inclusive etag, size and mtime. A mount point's letters
    /// depend on how it is `seen`. A file's upload time is 0 in SEARCH
    /// results and at a mount point: neither reads it from the file cache's
    /// extended columns (`oc_filecache_extended`).
    pub fn node_view(&self, id: u64, node: &Node, ctx: Ctx, seen: Seen) -> NodeView<'_> {
        let upload_time_known = seen != Seen::Searched && !matches!(ctx, Ctx::MountRoot(_));
        let stored = self
            .st
            .props
            .get(&self.user.spec.user_id)
            .and_then(|m| m.get(&id));
        match ctx.share().and_then(|s| self.mount(s)) {
            None => {
                let (etag, size, mtime) = match (&self.root_override, id == self.root()) {
                    (Some((e, s, m)), true) => (Some(e.clone()), Some(*s), Some(*m)),
                    _ => (None, None, None),
                };
                NodeView {
                    share_permissions: file_share_bits(PERMISSION_ALL, node),
                    mount_root: false,
                    owner_id: &self.user.spec.user_id,
                    owner_name: &self.user.spec.display_name,
                    permissions: node.permissions(),
                    share_types: self.st.share_types(&self.user.spec.user_id, id),
                    name: None,
                    etag,
                    size,
                    mtime,
                    upload_time_known,
                    stored,
                }
            }
            Some(m) => {
                let permissions = match (ctx, seen, node.is_folder()) {
                    (Ctx::MountRoot(_), Seen::Listed, _) => m.root_letters.as_str(),
                    (Ctx::MountRoot(_), Seen::Named, _) => m.named_root_letters.as_str(),
                    (Ctx::MountRoot(_), Seen::Searched, _) => m.search_root_letters.as_str(),
                    (_, _, true) => m.folder_letters.as_str(),
                    (_, _, false) => m.file_letters.as_str(),
                };
                NodeView {
                    share_permissions: file_share_bits(m.share.permissions, node),
                    mount_root: matches!(ctx, Ctx::MountRoot(_)),
                    owner_id: &m.owner.spec.user_id,
                    owner_name: &m.owner.spec.display_name,
                    permissions,
                    share_types: self.st.share_types(&self.user.spec.user_id, id),
                    name: matches!(ctx, Ctx::MountRoot(_)).then_some(m.name),
                    etag: None,
                    size: None,
                    mtime: None,
                    upload_time_known,
                    stored,
                }
            }
        }
    }

    pub fn entry(&self, id: u64, ctx: Ctx, path: String) -> SimEntry {
        let node = self.tree().node(id).expect("entry of a known node");
        let v = self.node_view(id, node, ctx, Seen::Listed);
        SimEntry {
            fileid: id,
            path,
            is_folder: node.is_folder(),
            etag: v.etag.unwrap_or_else(|| node.etag()),
            size: v.size.unwrap_or(node.size),
            modified: v.mtime.unwrap_or(node.mtime),
            permissions: v.permissions.to_string(),
        }
    }

    /// Every node a Depth: infinity PROPFIND of the home would list, pre-order.
    pub fn listing(&self) -> Vec<SimEntry> {
        let mut out = Vec::with_capacity(self.tree().nodes.len());
        let mut stack = vec![(self.root(), "/".to_string(), Ctx::Own)];
        while let Some((id, path, ctx)) = stack.pop() {
            let mut kids = Vec::new();
            let mut cursor = Cursor::Start;
            if ctx == Ctx::Own && id == self.root() && !self.mounts.is_empty() {
                while let Some((name, child, cctx)) = self.next_child(id, ctx, &cursor) {
                    kids.push((child, join(&path, &name), cctx));
                    cursor = Cursor::after(name, cctx);
                }
            } else if let Some(children) = self.tree().node(id).and_then(|n| n.children()) {
                for (name, &child) in children {
                    kids.push((child, join(&path, name), ctx.child()));
                }
            }
            out.push(self.entry(id, ctx, path));
            stack.extend(kids.into_iter().rev());
        }
        out
    }

    /// The path of a live node in this namespace (leading slash), own or
    /// through the closest mount; `None` when the user cannot reach it.
    pub fn path_of(&self, id: u64) -> Option<(String, Ctx)> {
        let tree = self.tree();
        let top = tree.top_of(id);
        if top == self.root() {
            return Some((tree.path_of(id), Ctx::Own));
        }
        if !tree.is_home(top) {
            return None;
        }
        // Names from the node up to the closest mounted ancestor.
        let mut names: Vec<&str> = Vec::new();
        let mut cur = id;
        loop {
            if let Some(m) = self.mounts.iter().find(|m| m.target == cur) {
                let mut path = format!("/{}", m.name);
                for n in names.iter().rev() {
                    path.push('/');
                    path.push_str(n);
                }
                let ctx = if cur == id {
                    Ctx::MountRoot(m.share.id)
                } else {
                    Ctx::InMount(m.share.id)
                };
                return Some((path, ctx));
            }
            let node = tree.node(cur)?;
            names.push(&node.name);
            cur = node.parent?;
        }
    }
}

pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}
