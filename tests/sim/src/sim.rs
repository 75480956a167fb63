//! The shared simulator handle: the tree, the options and the request log
//! behind one mutex, so tests can mutate the tree while the server serves it.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::content::Content;
use crate::error::SimError;
use crate::tree::{Change, Op, SimEntry, Tree};

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// DAV user id (the `{user}` in `/remote.php/dav/files/{user}/`).
    pub user_id: String,
    /// Login name for Basic auth; may differ from the user id (LDAP, e-mail logins).
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub app_password: String,
    /// "" or e.g. "/nextcloud": every URL lives under it.
    pub subpath: String,
    /// Answer Depth: infinity with 403 `propfind-finite-depth` (RFC 4918 §9.1),
    /// which Nextcloud itself never does.
    pub refuse_depth_infinity: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            user_id: "alice".into(),
            login: "alice".into(),
            display_name: "Alice Ångström".into(),
            email: Some("alice@example.test".into()),
            app_password: "demo-app-password".into(),
            subpath: String::new(),
            refuse_depth_infinity: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// Raw path and query as received, subpath included.
    pub path: String,
    pub depth: Option<String>,
    pub status: u16,
    pub authorized: bool,
}

pub(crate) struct State {
    pub opts: SimOptions,
    pub tree: Tree,
    pub requests: Vec<RequestLog>,
    pub request_count: u64,
    /// Reported as the user's first and last login.
    pub started: i64,
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl Simulator {
    pub fn new(mut opts: SimOptions) -> Self {
        opts.subpath = normalize_subpath(&opts.subpath);
        Simulator {
            inner: Arc::new(Mutex::new(State {
                opts,
                tree: Tree::new(),
                requests: Vec::new(),
                request_count: 0,
                started: crate::tree::now(),
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn options(&self) -> SimOptions {
        self.lock().opts.clone()
    }

    pub fn mkdir(&self, path: &str) -> Result<u64, SimError> {
        let mut st = self.lock();
        let (parent, name) = st.tree.resolve_parent(path)?;
        st.tree.apply(Op::Mkdir { parent, name })
    }

    pub fn mkdir_all(&self, path: &str) -> Result<u64, SimError> {
        let mut st = self.lock();
        let tree = &mut st.tree;
        let mut id = tree.root;
        for seg in crate::tree::segments(path) {
            let node = tree.node(id).expect("walked from root");
            id = match node.children() {
                None => return Err(SimError::NotAFolder(tree.path_of(id))),
                Some(children) => match children.get(seg) {
                    Some(&child) => child,
                    None => tree.apply(Op::Mkdir {
                        parent: id,
                        name: seg,
                    })?,
                },
            };
        }
        if !tree.node(id).expect("exists").is_folder() {
            return Err(SimError::NotAFolder(tree.path_of(id)));
        }
        Ok(id)
    }

    /// Create or overwrite; an overwrite keeps the fileid and gets a new etag.
    pub fn put(&self, path: &str, content: impl Into<Vec<u8>>) -> Result<u64, SimError> {
        let bytes: Vec<u8> = content.into();
        self.put_content(path, Content::Bytes(bytes.into()), None)
    }

    /// Like an upload with `X-OC-MTime`: the file gets `mtime`, its folders the upload time.
    pub fn put_with_mtime(
        &self,
        path: &str,
        content: impl Into<Vec<u8>>,
        mtime: i64,
    ) -> Result<u64, SimError> {
        let bytes: Vec<u8> = content.into();
        self.put_content(path, Content::Bytes(bytes.into()), Some(mtime))
    }

    /// Synthetic, deterministic content of `size` bytes, generated when served.
    pub fn put_sized(&self, path: &str, size: u64) -> Result<u64, SimError> {
        let mut st = self.lock();
        let (parent, name) = st.tree.resolve_parent(path)?;
        let seed = crate::content::splitmix64(st.tree.peek_stamp());
        st.tree.apply(Op::Put {
            parent,
            name,
            content: Content::Synthetic { seed, size },
            mtime: None,
        })
    }

    fn put_content(
        &self,
        path: &str,
        content: Content,
        mtime: Option<i64>,
    ) -> Result<u64, SimError> {
        let mut st = self.lock();
        let (parent, name) = st.tree.resolve_parent(path)?;
        st.tree.apply(Op::Put {
            parent,
            name,
            content,
            mtime,
        })
    }

    /// E.g. "SHA1:abc…", shown in `oc:checksums` and the `OC-Checksum` header.
    pub fn set_checksum(&self, path: &str, checksum: Option<&str>) -> Result<(), SimError> {
        let mut st = self.lock();
        let id = st
            .tree
            .resolve(path)
            .ok_or_else(|| SimError::NotFound(path.into()))?;
        st.tree.apply(Op::SetChecksum { id, checksum }).map(|_| ())
    }

    /// Like PROPPATCH `d:getlastmodified`: new mtime and etag, propagated.
    pub fn set_mtime(&self, path: &str, mtime: i64) -> Result<(), SimError> {
        let mut st = self.lock();
        let id = st
            .tree
            .resolve(path)
            .ok_or_else(|| SimError::NotFound(path.into()))?;
        st.tree.apply(Op::Touch { id, mtime }).map(|_| ())
    }

    /// Move and/or rename; keeps the fileid (a folder's whole subtree moves).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let id = st
            .tree
            .resolve(from)
            .ok_or_else(|| SimError::NotFound(from.into()))?;
        let (new_parent, new_name) = st.tree.resolve_parent(to)?;
        st.tree
            .apply(Op::Move {
                id,
                new_parent,
                new_name,
            })
            .map(|_| ())
    }

    /// To the trash; the fileids are kept for `restore`.
    pub fn delete(&self, path: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let id = st
            .tree
            .resolve(path)
            .ok_or_else(|| SimError::NotFound(path.into()))?;
        st.tree.apply(Op::Delete { id }).map(|_| ())
    }

    /// Back to its original path (the root if that folder is gone).
    pub fn restore(&self, fileid: u64) -> Result<(), SimError> {
        self.lock()
            .tree
            .apply(Op::Restore { id: fileid })
            .map(|_| ())
    }

    pub fn fileid(&self, path: &str) -> Option<u64> {
        self.lock().tree.resolve(path)
    }

    /// The current entry at `path`, if any.
    pub fn entry(&self, path: &str) -> Option<SimEntry> {
        let st = self.lock();
        let id = st.tree.resolve(path)?;
        Some(st.tree.entry(id, st.tree.path_of(id)))
    }

    /// The whole body of a file (synthetic content materialised).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, SimError> {
        let st = self.lock();
        let id = st
            .tree
            .resolve(path)
            .ok_or_else(|| SimError::NotFound(path.into()))?;
        match &st.tree.node(id).expect("resolved").kind {
            crate::tree::Kind::File { content, .. } => Ok(content.slice(0, content.size())),
            crate::tree::Kind::Folder { .. } => Err(SimError::IsAFolder(path.into())),
        }
    }

    pub fn set_refuse_depth_infinity(&self, on: bool) {
        self.lock().opts.refuse_depth_infinity = on;
    }

    pub fn set_app_password(&self, password: &str) {
        self.lock().opts.app_password = password.to_string();
    }

    /// Every node a Depth: infinity PROPFIND would list, root included, pre-order.
    pub fn listing(&self) -> Vec<SimEntry> {
        self.lock().tree.listing()
    }

    /// What the Activity app would have recorded, oldest first.
    pub fn changes(&self) -> Vec<Change> {
        self.lock().tree.changes().to_vec()
    }

    pub fn request_count(&self) -> u64 {
        self.lock().request_count
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.lock().requests.clone()
    }

    pub fn reset_requests(&self) {
        let mut st = self.lock();
        st.requests.clear();
        st.request_count = 0;
    }

    pub(crate) fn record(&self, entry: RequestLog) {
        let mut st = self.lock();
        st.request_count += 1;
        st.requests.push(entry);
    }
}

/// "/nextcloud/" and "nextcloud" both mean "/nextcloud"; "/" means none.
pub(crate) fn normalize_subpath(s: &str) -> String {
    let trimmed = s.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}
