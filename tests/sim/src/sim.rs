//! The shared simulator handle: users, the tree, shares, the activity log,
//! the options and the request log behind one mutex, so tests can mutate the
//! server's state while it serves it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::activity::{ActivityLog, FileAction};
use crate::audit::is_write;
use crate::content::Content;
use crate::error::SimError;
use crate::fault::{Canned, FaultCounts, Faults, Intercept};
use crate::proppatch::PropStore;
use crate::share::{PERMISSION_CREATE, PERMISSION_DELETE, PERMISSION_UPDATE, ShareWith};
use crate::tree::{Change, Op, SimEntry, Tree, segments};
use crate::view::{Ctx, UserView};

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

/// Another account on the server (the first one comes from [`SimOptions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub user_id: String,
    /// Login name for Basic auth.
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub app_password: String,
}

impl UserSpec {
    /// `id` as login, display name `id`, no e-mail, password `{id}-app-password`.
    pub fn new(id: &str) -> Self {
        UserSpec {
            user_id: id.to_string(),
            login: id.to_string(),
            display_name: id.to_string(),
            email: None,
            app_password: format!("{id}-app-password"),
        }
    }

    /// Bob as in the fixtures: "Bob Builder", bob@example.test.
    pub fn bob() -> Self {
        UserSpec {
            display_name: "Bob Builder".into(),
            email: Some("bob@example.test".into()),
            ..UserSpec::new("bob")
        }
    }
}

impl From<&SimOptions> for UserSpec {
    fn from(o: &SimOptions) -> Self {
        UserSpec {
            user_id: o.user_id.clone(),
            login: o.login.clone(),
            display_name: o.display_name.clone(),
            email: o.email.clone(),
            app_password: o.app_password.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// Raw path and query as received, subpath included.
    pub path: String,
    pub depth: Option<String>,
    /// 0 when the connection was closed without an answer (an injected reset).
    pub status: u16,
    pub authorized: bool,
}

pub struct UserRec {
    pub spec: UserSpec,
    /// The fileid of the user's home folder.
    pub root: u64,
}

pub(crate) struct State {
    pub opts: SimOptions,
    /// `users[0]` is the account of `opts`.
    pub users: Vec<UserRec>,
    /// Group id → members, in the order they joined.
    pub groups: BTreeMap<String, Vec<String>>,
    pub tree: Tree,
    pub shares: Vec<crate::share::Share>,
    pub next_share_id: u64,
    pub activity: ActivityLog,
    pub requests: Vec<RequestLog>,
    pub request_count: u64,
    /// Every attempted write (see [`Simulator::writes`]); not cleared by
    /// `reset_requests`, so nothing a test did before can hide one.
    pub writes: Vec<RequestLog>,
    /// Favorites and dead properties set by PROPPATCH.
    pub props: PropStore,
    /// App passwords handed out by rotation, for fresh deterministic ones.
    pub passwords_issued: u64,
    /// Injected faults and hostile answers.
    pub faults: crate::fault::FaultState,
    /// Folders (fileids) that are unavailable external storages.
    pub unavailable: std::collections::HashSet<u64>,
    /// Reported as the user's first and last login.
    pub started: i64,
}

impl State {
    pub fn user(&self, id: &str) -> Option<&UserRec> {
        self.users.iter().find(|u| u.spec.user_id == id)
    }

    pub fn user_idx(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.spec.user_id == id)
    }

    /// The user a `login:password` pair authenticates, if any. An empty
    /// app password is a deleted one and never matches.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<usize> {
        if password.is_empty() {
            return None;
        }
        self.users
            .iter()
            .position(|u| u.spec.login == login && u.spec.app_password == password)
    }

    fn locate(&self, user: usize, path: &str) -> Result<(u64, Ctx), SimError> {
        UserView::new(self, user)
            .resolve(path)
            .map_err(|_| SimError::NotFound(path.to_string()))
    }

    /// The folder that would hold `path` and the last segment.
    fn locate_parent<'p>(
        &self,
        user: usize,
        path: &'p str,
    ) -> Result<(u64, Ctx, &'p str), SimError> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if name.is_empty() {
            return Err(SimError::Root);
        }
        let (parent, ctx) = self
            .locate(user, dir)
            .map_err(|_| SimError::ParentMissing(path.to_string()))?;
        if !self.tree.node(parent).is_some_and(|n| n.is_folder()) {
            return Err(SimError::NotAFolder(dir.to_string()));
        }
        Ok((parent, ctx, name))
    }

    /// The mount at the user's root named `name` when `parent` is that root.
    fn mount_at(&self, user: usize, parent: u64, ctx: Ctx, name: &str) -> Option<(u64, u64)> {
        if ctx != Ctx::Own || parent != self.users[user].root {
            return None;
        }
        UserView::new(self, user)
            .mounts
            .iter()
            .find(|m| m.name == name)
            .map(|m| (m.share.id, m.target))
    }

    /// Share permission bits in force for a node reached through `ctx`.
    fn require(&self, user: usize, ctx: Ctx, bit: u32, what: &str) -> Result<(), SimError> {
        let Some(sid) = ctx.share() else {
            return Ok(());
        };
        let view = UserView::new(self, user);
        let perms = view.mount(sid).map_or(0, |m| m.share.permissions);
        if perms & bit == 0 {
            return Err(SimError::PermissionDenied(what.to_string()));
        }
        Ok(())
    }

    fn record(&self) -> bool {
        self.activity.record
    }

    pub fn op_mkdir(&mut self, user: usize, path: &str) -> Result<u64, SimError> {
        let (parent, ctx, name) = self.locate_parent(user, path)?;
        if self.mount_at(user, parent, ctx, name).is_some() {
            return Err(SimError::Exists(path.to_string()));
        }
        self.require(user, ctx, PERMISSION_CREATE, path)?;
        let id = self.tree.apply(Op::Mkdir { parent, name })?;
        let access = self.access_list(id);
        self.file_activity(user, FileAction::Created, id, access);
        Ok(id)
    }

    pub fn op_mkdir_all(&mut self, user: usize, path: &str) -> Result<u64, SimError> {
        let mut done = String::new();
        let mut last = self.users[user].root;
        for seg in segments(path) {
            done.push('/');
            done.push_str(seg);
            last = match self.locate(user, &done) {
                Ok((id, _)) => {
                    if !self.tree.node(id).is_some_and(|n| n.is_folder()) {
                        return Err(SimError::NotAFolder(done));
                    }
                    id
                }
                Err(_) => self.op_mkdir(user, &done)?,
            };
        }
        Ok(last)
    }

    pub fn op_put(
        &mut self,
        user: usize,
        path: &str,
        content: Content,
        mtime: Option<i64>,
    ) -> Result<u64, SimError> {
        let (mut parent, ctx, name) = self.locate_parent(user, path)?;
        let mut name = name.to_string();
        let existing = if let Some((_, target)) = self.mount_at(user, parent, ctx, &name) {
            // Writing onto a mounted file overwrites the shared file.
            let node = self.tree.node(target).expect("mounted nodes are live");
            if node.is_folder() {
                return Err(SimError::IsAFolder(path.to_string()));
            }
            let (_, tctx) = self.locate(user, path)?;
            self.require(user, tctx, PERMISSION_UPDATE, path)?;
            parent = node.parent.expect("shared nodes are not roots");
            name = node.name.to_string();
            true
        } else {
            let existing = self
                .tree
                .node(parent)
                .and_then(|n| n.children())
                .is_some_and(|c| c.contains_key(name.as_str()));
            let bit = if existing {
                PERMISSION_UPDATE
            } else {
                PERMISSION_CREATE
            };
            self.require(user, ctx, bit, path)?;
            existing
        };
        let id = self.tree.apply(Op::Put {
            parent,
            name: &name,
            content,
            mtime,
        })?;
        let action = if existing {
            FileAction::Changed
        } else {
            FileAction::Created
        };
        let access = self.access_list(id);
        self.file_activity(user, action, id, access);
        Ok(id)
    }

    pub fn op_set_checksum(
        &mut self,
        user: usize,
        path: &str,
        checksum: Option<&str>,
    ) -> Result<(), SimError> {
        let (id, ctx) = self.locate(user, path)?;
        self.require(user, ctx, PERMISSION_UPDATE, path)?;
        self.tree
            .apply(Op::SetChecksum { id, checksum })
            .map(|_| ())
    }

    pub fn op_touch(&mut self, user: usize, path: &str, mtime: i64) -> Result<(), SimError> {
        let (id, ctx) = self.locate(user, path)?;
        self.require(user, ctx, PERMISSION_UPDATE, path)?;
        self.tree.apply(Op::Touch { id, mtime }).map(|_| ())
    }

    pub fn op_move(&mut self, user: usize, from: &str, to: &str) -> Result<(), SimError> {
        let (id, ctx) = self.locate(user, from)?;
        if matches!(ctx, Ctx::MountRoot(_)) {
            return Err(SimError::InvalidMove(format!(
                "{from} is the mount point of a received share"
            )));
        }
        if id == self.users[user].root {
            return Err(SimError::Root);
        }
        let (new_parent, pctx, new_name) = self.locate_parent(user, to)?;
        if self.mount_at(user, new_parent, pctx, new_name).is_some() {
            return Err(SimError::Exists(to.to_string()));
        }
        let node = self.tree.node(id).expect("located");
        let old_parent = node.parent.expect("not a root");
        let old_name = node.name.to_string();
        let renamed = old_parent == new_parent;
        if renamed {
            self.require(user, ctx, PERMISSION_UPDATE, from)?;
        } else {
            let (_, old_pctx) = UserView::new(self, user)
                .path_of(old_parent)
                .ok_or_else(|| SimError::NotFound(from.to_string()))?;
            self.require(user, old_pctx, PERMISSION_DELETE, from)?;
            self.require(user, pctx, PERMISSION_CREATE, to)?;
        }
        let before = self.dir_access(old_parent);
        self.tree.apply(Op::Move {
            id,
            new_parent,
            new_name,
        })?;
        let after = self.dir_access(new_parent);
        self.move_activity(
            user, id, &old_name, new_name, new_parent, renamed, before, after,
        );
        Ok(())
    }

    /// The access list of a folder, for composing child paths.
    fn dir_access(&self, folder: u64) -> Vec<(usize, String)> {
        self.access_list(folder)
    }

    pub fn op_copy(&mut self, user: usize, from: &str, to: &str) -> Result<u64, SimError> {
        let (id, ctx) = self.locate(user, from)?;
        self.require(user, ctx, crate::share::PERMISSION_READ, from)?;
        let (new_parent, pctx, new_name) = self.locate_parent(user, to)?;
        if self.mount_at(user, new_parent, pctx, new_name).is_some() {
            return Err(SimError::Exists(to.to_string()));
        }
        self.require(user, pctx, PERMISSION_CREATE, to)?;
        let copy = self.tree.apply(Op::Copy {
            id,
            new_parent,
            new_name,
        })?;
        let access = self.access_list(copy);
        self.file_activity(user, FileAction::Created, copy, access);
        Ok(copy)
    }

    pub fn op_delete(&mut self, user: usize, path: &str) -> Result<(), SimError> {
        let (id, ctx) = self.locate(user, path)?;
        if matches!(ctx, Ctx::MountRoot(_)) {
            return Err(SimError::InvalidMove(format!(
                "{path} is the mount point of a received share; unshare it instead"
            )));
        }
        if id == self.users[user].root {
            return Err(SimError::Root);
        }
        self.require(user, ctx, PERMISSION_DELETE, path)?;
        let access = self.access_list(id);
        self.tree.apply(Op::Delete { id })?;
        self.file_activity(user, FileAction::Deleted, id, access);
        Ok(())
    }

    pub fn op_restore(&mut self, user: usize, fileid: u64) -> Result<(), SimError> {
        let home = self
            .tree
            .trash_home(fileid)
            .ok_or(SimError::NotInTrash(fileid))?;
        let mine = home == self.users[user].root
            || UserView::new(self, user)
                .mounts
                .iter()
                .any(|m| self.tree.home_of(m.target) == Some(home));
        if !mine {
            return Err(SimError::NotInTrash(fileid));
        }
        self.tree.apply(Op::Restore { id: fileid })?;
        let access = self.access_list(fileid);
        self.file_activity(user, FileAction::Restored, fileid, access);
        Ok(())
    }

    pub fn entry_of(&self, user: usize, path: &str) -> Option<SimEntry> {
        let view = UserView::new(self, user);
        let (id, ctx) = view.resolve(path).ok()?;
        let p = view.path_of(id).map(|(p, _)| p)?;
        Some(view.entry(id, ctx, p))
    }

    pub fn read_file(&self, user: usize, path: &str) -> Result<Vec<u8>, SimError> {
        let (id, _) = self.locate(user, path)?;
        match &self.tree.node(id).expect("located").kind {
            crate::tree::Kind::File { content, .. } => Ok(content.slice(0, content.size())),
            crate::tree::Kind::Folder { .. } => Err(SimError::IsAFolder(path.into())),
        }
    }

    pub fn set_recording(&mut self, on: bool) {
        self.activity.record = on;
        self.tree.record_changes = on;
    }

    fn recording(&self) -> bool {
        self.record()
    }
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl Simulator {
    pub fn new(mut opts: SimOptions) -> Self {
        opts.subpath = normalize_subpath(&opts.subpath);
        let tree = Tree::new();
        let first = UserRec {
            spec: UserSpec::from(&opts),
            root: tree.root,
        };
        Simulator {
            inner: Arc::new(Mutex::new(State {
                opts,
                users: vec![first],
                groups: BTreeMap::new(),
                started: tree.now(),
                tree,
                shares: Vec::new(),
                next_share_id: 1,
                activity: ActivityLog::default(),
                requests: Vec::new(),
                request_count: 0,
                writes: Vec::new(),
                props: PropStore::new(),
                passwords_issued: 0,
                faults: Default::default(),
                unavailable: Default::default(),
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

    fn first(&self) -> SimUser {
        SimUser {
            sim: self.clone(),
            user: None,
        }
    }

    /// Acts as another user (added with [`Simulator::add_user`]): paths are in
    /// that user's namespace (received shares included), and activities name
    /// that user as the actor.
    pub fn as_user(&self, user_id: &str) -> SimUser {
        SimUser {
            sim: self.clone(),
            user: Some(user_id.to_string()),
        }
    }

    pub fn mkdir(&self, path: &str) -> Result<u64, SimError> {
        self.first().mkdir(path)
    }

    pub fn mkdir_all(&self, path: &str) -> Result<u64, SimError> {
        self.first().mkdir_all(path)
    }

    /// Create or overwrite; an overwrite keeps the fileid and gets a new etag.
    pub fn put(&self, path: &str, content: impl Into<Vec<u8>>) -> Result<u64, SimError> {
        self.first().put(path, content)
    }

    /// Like an upload with `X-OC-MTime`: the file gets `mtime`, its folders the upload time.
    pub fn put_with_mtime(
        &self,
        path: &str,
        content: impl Into<Vec<u8>>,
        mtime: i64,
    ) -> Result<u64, SimError> {
        self.first().put_with_mtime(path, content, mtime)
    }

    /// Synthetic, deterministic content of `size` bytes, generated when served.
    pub fn put_sized(&self, path: &str, size: u64) -> Result<u64, SimError> {
        self.first().put_sized(path, size)
    }

    /// E.g. "SHA1:abc…", shown in `oc:checksums` and the `OC-Checksum` header.
    pub fn set_checksum(&self, path: &str, checksum: Option<&str>) -> Result<(), SimError> {
        self.first().set_checksum(path, checksum)
    }

    /// Like PROPPATCH `d:getlastmodified`: new mtime and etag, propagated.
    pub fn set_mtime(&self, path: &str, mtime: i64) -> Result<(), SimError> {
        self.first().set_mtime(path, mtime)
    }

    /// Move and/or rename; keeps the fileid (a folder's whole subtree moves).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), SimError> {
        self.first().rename(from, to)
    }

    /// Like WebDAV COPY: new fileids, the mtimes kept; one `file_created`
    /// activity for the copy's top.
    pub fn copy(&self, from: &str, to: &str) -> Result<u64, SimError> {
        self.first().copy(from, to)
    }

    /// To the trash; the fileids are kept for `restore`.
    pub fn delete(&self, path: &str) -> Result<(), SimError> {
        self.first().delete(path)
    }

    /// Back to its original path (the root if that folder is gone).
    pub fn restore(&self, fileid: u64) -> Result<(), SimError> {
        self.first().restore(fileid)
    }

    pub fn fileid(&self, path: &str) -> Option<u64> {
        self.first().fileid(path)
    }

    /// The current entry at `path`, if any.
    pub fn entry(&self, path: &str) -> Option<SimEntry> {
        self.first().entry(path)
    }

    /// The whole body of a file (synthetic content materialised).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, SimError> {
        self.first().read(path)
    }

    pub fn set_refuse_depth_infinity(&self, on: bool) {
        self.lock().opts.refuse_depth_infinity = on;
    }

    pub fn set_app_password(&self, password: &str) {
        let mut st = self.lock();
        st.opts.app_password = password.to_string();
        st.users[0].spec.app_password = password.to_string();
    }

    /// Every node a Depth: infinity PROPFIND would list, root included,
    /// pre-order (received shares included).
    pub fn listing(&self) -> Vec<SimEntry> {
        self.first().listing()
    }

    /// The mutations of the first user's home, oldest first (what the
    /// Activity app would have recorded about them).
    pub fn changes(&self) -> Vec<Change> {
        let st = self.lock();
        st.tree.changes_in(st.users[0].root)
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
        if is_write(&entry.method, &entry.path) {
            st.writes.push(entry.clone());
        }
        st.requests.push(entry);
    }

    /// Every request that reached the server and could have written —
    /// any method but GET, HEAD, PROPFIND, SEARCH, REPORT and OPTIONS, plus
    /// `core/getapppassword` — whether it succeeded or not, as
    /// `"METHOD /raw/path?query STATUS"` (status 0: an injected reset).
    pub fn writes(&self) -> Vec<String> {
        self.lock()
            .writes
            .iter()
            .map(|w| format!("{} {} {}", w.method, w.path, w.status))
            .collect()
    }

    /// Changes whenever the tree (trash included), the shares, the
    /// favorites and dead properties, or any app password change; compare
    /// before and after to prove a client changed nothing.
    pub fn state_fingerprint(&self) -> u64 {
        self.lock().fingerprint()
    }

    // --- faults -----------------------------------------------------------------

    /// Injects faults into every request from now on (see [`Faults`]); the
    /// generator restarts from `faults.seed` and the counts from zero.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults.set(faults);
    }

    /// No more injected faults (intercepts stay; see [`Simulator::clear_intercepts`]).
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// The faults in force, if any.
    pub fn faults(&self) -> Option<Faults> {
        self.lock().faults.faults().cloned()
    }

    /// What was injected since the faults were last set.
    pub fn fault_counts(&self) -> FaultCounts {
        self.lock().faults.counts
    }

    /// Answers the requests it matches with a hostile answer (see
    /// [`Intercept`]); intercepts are tried in the order they were added.
    pub fn intercept(&self, intercept: Intercept) {
        self.lock().faults.push_intercept(intercept);
    }

    /// Answers the next `method` request below `path_prefix` with `canned`.
    pub fn override_next(&self, method: &str, path_prefix: &str, canned: Canned) {
        self.intercept(Intercept::respond(method, path_prefix, canned));
    }

    /// Serves the next `method` request below `path_prefix` with its real
    /// body passed through `f`.
    pub fn rewrite_next(
        &self,
        method: &str,
        path_prefix: &str,
        f: impl Fn(Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
    ) {
        self.intercept(Intercept::rewrite(method, path_prefix, f));
    }

    /// Intercepts not used up yet.
    pub fn intercepts_pending(&self) -> usize {
        self.lock().faults.intercepts_pending()
    }

    pub fn clear_intercepts(&self) {
        self.lock().faults.clear_intercepts();
    }

    /// Makes the folder at `path` (first user's namespace) an unavailable
    /// external storage, or available again: a PROPFIND or GET on it or below
    /// answers 503 (`StorageNotAvailableException`), and a listing of its
    /// parent shows it with only `resourcetype` readable, every other
    /// property in a 503 propstat, and nothing below it.
    /// [`Simulator::listing`] still shows what is below: the files are there,
    /// the server just cannot reach them.
    pub fn set_unavailable(&self, path: &str, unavailable: bool) -> Result<(), SimError> {
        let id = self
            .fileid(path)
            .ok_or_else(|| SimError::NotFound(path.to_string()))?;
        let mut st = self.lock();
        if st.tree.node(id).is_some_and(|n| !n.is_folder()) {
            return Err(SimError::NotAFolder(path.to_string()));
        }
        if unavailable {
            st.unavailable.insert(id);
        } else {
            st.unavailable.remove(&id);
        }
        Ok(())
    }

    // --- users and groups ---------------------------------------------------

    /// Adds an account with an empty home. Ids and logins must be unique.
    pub fn add_user(&self, user: UserSpec) -> Result<(), SimError> {
        let mut st = self.lock();
        if st
            .users
            .iter()
            .any(|u| u.spec.user_id == user.user_id || u.spec.login == user.login)
        {
            return Err(SimError::Exists(format!("user {}", user.user_id)));
        }
        if user.user_id.is_empty() || user.user_id.contains('/') {
            return Err(SimError::InvalidName(user.user_id));
        }
        let root = st.tree.add_home();
        st.users.push(UserRec { spec: user, root });
        Ok(())
    }

    /// The accounts, the first one (from [`SimOptions`]) first.
    pub fn users(&self) -> Vec<UserSpec> {
        self.lock().users.iter().map(|u| u.spec.clone()).collect()
    }

    /// Adds `user` to `group` (created on first use). Existing group shares
    /// get mounted for the new member.
    pub fn add_group_member(&self, group: &str, user: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let idx = st
            .user_idx(user)
            .ok_or_else(|| SimError::UnknownUser(user.to_string()))?;
        let members = st.groups.entry(group.to_string()).or_default();
        if members.iter().any(|m| m == user) {
            return Ok(());
        }
        members.push(user.to_string());
        let pending: Vec<(usize, String, bool)> = st
            .shares
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matches!(&s.with, ShareWith::Group(g) if g == group)
                    && s.sharer != user
                    && s.file_owner != user
                    && s.target_for(user).is_none()
            })
            .filter_map(|(i, s)| {
                let node = st.tree.node(s.node)?;
                Some((i, node.name.to_string(), !node.is_folder()))
            })
            .collect();
        for (i, name, is_file) in pending {
            let target = st.unique_target(idx, &name, is_file);
            st.shares[i].targets.push((user.to_string(), target));
        }
        Ok(())
    }

    // --- shares ---------------------------------------------------------------

    /// Shares the node at `path` (in `owner`'s namespace) and returns the
    /// share id. User and group shares appear in the recipients' home roots
    /// with `S` permissions and the same fileids. Sharing the same node with
    /// the same user again returns the existing id (and writes the sharing
    /// activities again, as Nextcloud 32 does).
    pub fn share(
        &self,
        owner: &str,
        path: &str,
        with: ShareWith,
        permissions: u32,
    ) -> Result<u64, SimError> {
        let mut st = self.lock();
        let idx = st
            .user_idx(owner)
            .ok_or_else(|| SimError::UnknownUser(owner.to_string()))?;
        st.create_share(idx, path, with, permissions)
    }

    /// Deletes a share; its mounts disappear from the recipients' trees.
    pub fn unshare(&self, share_id: u64) -> Result<(), SimError> {
        self.lock().delete_share(share_id)
    }

    // --- activity -----------------------------------------------------------

    /// Installs or removes the Activity app: while disabled its endpoints
    /// answer 404, the capabilities have no `activity` key and nothing is
    /// recorded.
    pub fn set_activity_enabled(&self, on: bool) {
        self.lock().activity.enabled = on;
    }

    pub fn activity_enabled(&self) -> bool {
        self.lock().activity.enabled
    }

    /// Off: changes still happen but write no activity (and no change-log
    /// entry), like changes made on external storage or found by a scan.
    pub fn set_record_activity(&self, on: bool) {
        self.lock().set_recording(on);
    }

    /// Runs `f` with activity recording off, then restores the setting.
    pub fn without_activity<R>(&self, f: impl FnOnce() -> R) -> R {
        let before = {
            let mut st = self.lock();
            let before = st.recording();
            st.set_recording(false);
            before
        };
        struct Restore<'a>(&'a Simulator, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.lock().set_recording(self.1);
            }
        }
        let _restore = Restore(self, before);
        f()
    }

    /// Deletes every activity row with an id below `id` (like the expiry
    /// job); returns how many went.
    pub fn expire_activities_before(&self, id: u64) -> usize {
        let mut st = self.lock();
        let before = st.activity.rows.len();
        st.activity.rows.retain(|r| r.id >= id);
        before - st.activity.rows.len()
    }

    /// Deletes the rows older than `age_secs` on the simulated clock.
    pub fn expire_activities_older_than(&self, age_secs: i64) -> usize {
        let mut st = self.lock();
        let limit = st.tree.now() - age_secs;
        let before = st.activity.rows.len();
        st.activity.rows.retain(|r| r.time >= limit);
        before - st.activity.rows.len()
    }

    /// The id of the newest activity row (any user), 0 when none was written.
    pub fn last_activity_id(&self) -> u64 {
        self.lock().activity.next_id - 1
    }

    /// Ids of the rows currently kept for `user`, oldest first.
    pub fn activity_ids(&self, user: &str) -> Vec<u64> {
        self.lock()
            .activity
            .rows
            .iter()
            .filter(|r| r.spec.affected == user)
            .map(|r| r.id)
            .collect()
    }

    /// Moves the simulated clock (mtimes, activity times) forward by `secs`.
    pub fn advance_clock(&self, secs: i64) {
        let tree = &mut self.lock().tree;
        tree.clock_offset += secs;
        if let Some(at) = tree.clock_stopped_at.as_mut() {
            *at += secs;
        }
    }

    /// Stops the clock at the current second, so that writes fall within
    /// one second for certain; `advance_clock` moves it on, `run_clock` lets
    /// it run again.
    pub fn stop_clock(&self) {
        let mut st = self.lock();
        let now = st.tree.now();
        st.tree.clock_stopped_at = Some(now);
    }

    /// Lets a stopped clock run again, from where it stopped.
    pub fn run_clock(&self) {
        let mut st = self.lock();
        if let Some(at) = st.tree.clock_stopped_at.take() {
            st.tree.clock_offset = at - crate::tree::now();
        }
    }

    /// The simulated clock, unix seconds.
    pub fn now(&self) -> i64 {
        self.lock().tree.now()
    }
}

/// The tree operations acting as one user (see [`Simulator::as_user`]).
#[derive(Clone)]
pub struct SimUser {
    sim: Simulator,
    /// `None` is the first user.
    user: Option<String>,
}

impl SimUser {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut State, usize) -> Result<R, SimError>,
    ) -> Result<R, SimError> {
        let mut st = self.sim.lock();
        let idx = match &self.user {
            None => 0,
            Some(u) => st
                .user_idx(u)
                .ok_or_else(|| SimError::UnknownUser(u.clone()))?,
        };
        f(&mut st, idx)
    }

    /// The user id acted as.
    pub fn id(&self) -> String {
        match &self.user {
            Some(u) => u.clone(),
            None => self.sim.lock().users[0].spec.user_id.clone(),
        }
    }

    pub fn mkdir(&self, path: &str) -> Result<u64, SimError> {
        self.with(|st, u| st.op_mkdir(u, path))
    }

    pub fn mkdir_all(&self, path: &str) -> Result<u64, SimError> {
        self.with(|st, u| st.op_mkdir_all(u, path))
    }

    pub fn put(&self, path: &str, content: impl Into<Vec<u8>>) -> Result<u64, SimError> {
        let bytes: Vec<u8> = content.into();
        self.with(|st, u| st.op_put(u, path, Content::Bytes(bytes.into()), None))
    }

    pub fn put_with_mtime(
        &self,
        path: &str,
        content: impl Into<Vec<u8>>,
        mtime: i64,
    ) -> Result<u64, SimError> {
        let bytes: Vec<u8> = content.into();
        self.with(|st, u| st.op_put(u, path, Content::Bytes(bytes.into()), Some(mtime)))
    }

    pub fn put_sized(&self, path: &str, size: u64) -> Result<u64, SimError> {
        self.with(|st, u| {
            let seed = crate::content::splitmix64(st.tree.peek_stamp());
            st.op_put(u, path, Content::Synthetic { seed, size }, None)
        })
    }

    pub fn set_checksum(&self, path: &str, checksum: Option<&str>) -> Result<(), SimError> {
        self.with(|st, u| st.op_set_checksum(u, path, checksum))
    }

    pub fn set_mtime(&self, path: &str, mtime: i64) -> Result<(), SimError> {
        self.with(|st, u| st.op_touch(u, path, mtime))
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(), SimError> {
        self.with(|st, u| st.op_move(u, from, to))
    }

    pub fn copy(&self, from: &str, to: &str) -> Result<u64, SimError> {
        self.with(|st, u| st.op_copy(u, from, to))
    }

    pub fn delete(&self, path: &str) -> Result<(), SimError> {
        self.with(|st, u| st.op_delete(u, path))
    }

    pub fn restore(&self, fileid: u64) -> Result<(), SimError> {
        self.with(|st, u| st.op_restore(u, fileid))
    }

    pub fn fileid(&self, path: &str) -> Option<u64> {
        self.with(|st, u| Ok(st.locate(u, path).ok().map(|(id, _)| id)))
            .ok()
            .flatten()
    }

    pub fn entry(&self, path: &str) -> Option<SimEntry> {
        self.with(|st, u| Ok(st.entry_of(u, path))).ok().flatten()
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>, SimError> {
        self.with(|st, u| st.read_file(u, path))
    }

    /// What a Depth: infinity PROPFIND of this user's home would list.
    pub fn listing(&self) -> Vec<SimEntry> {
        self.with(|st, u| Ok(UserView::new(st, u).listing()))
            .unwrap_or_default()
    }

    /// The mutations of this user's own home, oldest first.
    pub fn changes(&self) -> Vec<Change> {
        self.with(|st, u| Ok(st.tree.changes_in(st.users[u].root)))
            .unwrap_or_default()
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
