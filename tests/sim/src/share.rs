//! Shares: the model (`oc_share` rows), the permission letters a share gives
//! (`DavUtil::getDavPermissions`), the activities sharing writes, and the
//! OCS Share API (`/ocs/v2.php/apps/files_sharing/api/v1/shares`).

use crate::activity::{Param, RowSpec};
use crate::content::{has_preview, mime_for};
use crate::error::SimError;
use crate::json::{J, obj, s};
use crate::sim::State;
use crate::time::date_midnight;
use crate::view::{Ctx, UserView};

/// `OCP\Constants::PERMISSION_*`.
pub const PERMISSION_READ: u32 = 1;
pub const PERMISSION_UPDATE: u32 = 2;
pub const PERMISSION_CREATE: u32 = 4;
pub const PERMISSION_DELETE: u32 = 8;
pub const PERMISSION_SHARE: u32 = 16;
pub const PERMISSION_ALL: u32 = 31;

/// Whom a node is shared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareWith {
    /// share_type 0; mounted in the user's home root.
    User(String),
    /// share_type 1; mounted for every member but the sharer.
    Group(String),
    /// share_type 3; `expires` is a unix time (shown as that day, midnight).
    Link { expires: Option<i64> },
    /// share_type 4 (share by mail).
    Email(String),
    /// share_type 6 (federated cloud id such as `bob@other.example`).
    Federated(String),
}

impl ShareWith {
    pub fn share_type(&self) -> i64 {
        match self {
            ShareWith::User(_) => 0,
            ShareWith::Group(_) => 1,
            ShareWith::Link { .. } => 3,
            ShareWith::Email(_) => 4,
            ShareWith::Federated(_) => 6,
        }
    }
}

pub struct Share {
    pub id: u64,
    /// `uid_owner`: who created the share.
    pub sharer: String,
    /// `uid_file_owner`: whose storage the node is in.
    pub file_owner: String,
    pub node: u64,
    pub with: ShareWith,
    pub permissions: u32,
    pub stime: i64,
    pub token: Option<String>,
    /// The mount point name per recipient (user shares: one; group: members).
    pub targets: Vec<(String, String)>,
    /// The default target (`file_target` shown to the sharer).
    pub default_target: String,
}

impl Share {
    pub fn target_for(&self, user: &str) -> Option<&str> {
        self.targets
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, t)| t.as_str())
    }
}

/// `DavUtil::getDavPermissions`: `bits` give R, G, D and NV; `write_bits`
/// give W (files) or CK (folders).
pub fn letters(shared: bool, bits: u32, write_bits: u32, is_file: bool) -> String {
    let mut p = String::with_capacity(9);
    if shared {
        p.push('S');
    }
    if bits & PERMISSION_SHARE != 0 {
        p.push('R');
    }
    if bits & PERMISSION_READ != 0 {
        p.push('G');
    }
    if bits & PERMISSION_DELETE != 0 {
        p.push('D');
    }
    if bits & PERMISSION_UPDATE != 0 {
        p.push_str("NV");
    }
    if is_file {
        if write_bits & PERMISSION_UPDATE != 0 {
            p.push('W');
        }
    } else if write_bits & PERMISSION_CREATE != 0 {
        p.push_str("CK");
    }
    p
}

/// 15 characters from Nextcloud's token alphabet, deterministic per share.
fn token(id: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut x = crate::content::splitmix64(id ^ 0x5ba7_e70c);
    (0..15)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x = crate::content::splitmix64(x);
            c
        })
        .collect()
}

fn dirname(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((d, _)) => d.to_string(),
    }
}

/// `files.view.index` `dir` of a share activity: the folder itself, or a file's folder.
fn share_link_dir(path: &str, is_folder: bool) -> String {
    if is_folder {
        path.to_string()
    } else {
        dirname(path)
    }
}

impl State {
    /// The share types of shares `user` made on node `id` (`oc:share-types`).
    pub fn share_types(&self, user: &str, id: u64) -> Vec<u8> {
        if self.shares.is_empty() {
            return Vec::new();
        }
        let mut types: Vec<u8> = self
            .shares
            .iter()
            .filter(|s| s.node == id && s.sharer == user)
            .map(|s| s.with.share_type() as u8)
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// A mount point name not yet taken in the user's home root.
    pub fn unique_target(&self, user_idx: usize, name: &str, is_file: bool) -> String {
        let view = UserView::new(self, user_idx);
        let children = self
            .tree
            .node(view.root())
            .and_then(|n| n.children())
            .expect("home is a folder");
        let taken = |c: &str| children.contains_key(c) || view.mounts.iter().any(|m| m.name == c);
        if !taken(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if is_file && !s.is_empty() => (s, format!(".{e}")),
            _ => (name, String::new()),
        };
        (2..)
            .map(|i| format!("{stem} ({i}){ext}"))
            .find(|c| !taken(c))
            .expect("some number is free")
    }

    fn group_members(&self, gid: &str) -> Vec<String> {
        self.groups.get(gid).cloned().unwrap_or_default()
    }

    /// Creates a share as `actor` of the node at `path` in the actor's
    /// namespace. Sharing the same node with the same user or group again
    /// returns the existing share but publishes the activities again, as
    /// Nextcloud 32 does.
    pub fn create_share(
        &mut self,
        actor: usize,
        path: &str,
        with: ShareWith,
        permissions: u32,
    ) -> Result<u64, SimError> {
        let view = UserView::new(self, actor);
        let (id, ctx) = view
            .resolve(path)
            .map_err(|_| SimError::NotFound(path.to_string()))?;
        if id == view.root() {
            return Err(SimError::InvalidShare(
                "the home folder cannot be shared".into(),
            ));
        }
        let mut perms = permissions & PERMISSION_ALL;
        if let Some(m) = ctx.share().and_then(|s| view.mount(s)) {
            if m.share.permissions & PERMISSION_SHARE == 0 {
                return Err(SimError::PermissionDenied(format!(
                    "{path} may not be reshared"
                )));
            }
            perms &= m.share.permissions;
        }
        let node = self.tree.node(id).expect("resolved");
        let is_file = !node.is_folder();
        if is_file {
            perms &= !(PERMISSION_CREATE | PERMISSION_DELETE);
        }
        let name = node.name.to_string();
        let sharer = self.users[actor].spec.user_id.clone();
        let home = self.tree.home_of(id).expect("resolved nodes are live");
        let file_owner = self
            .users
            .iter()
            .find(|u| u.root == home)
            .map(|u| u.spec.user_id.clone())
            .expect("every home has a user");
        match &with {
            ShareWith::User(u) => {
                if self.user(u).is_none() {
                    return Err(SimError::UnknownUser(u.clone()));
                }
                if *u == sharer || *u == file_owner {
                    return Err(SimError::InvalidShare(format!(
                        "{u} cannot share with themselves"
                    )));
                }
            }
            ShareWith::Group(g) => {
                if !self.groups.contains_key(g) {
                    return Err(SimError::InvalidShare(format!("no group {g}")));
                }
            }
            ShareWith::Federated(addr) | ShareWith::Email(addr) => {
                if !addr.contains('@') {
                    return Err(SimError::InvalidShare(format!("{addr} is no address")));
                }
            }
            ShareWith::Link { .. } => {}
        }
        let existing = match &with {
            ShareWith::User(_) | ShareWith::Group(_) => self
                .shares
                .iter()
                .find(|s| s.node == id && s.with == with && s.sharer == sharer)
                .map(|s| s.id),
            _ => None,
        };
        let share_id = match existing {
            Some(sid) => sid,
            None => {
                let sid = self.next_share_id;
                self.next_share_id += 1;
                let recipients: Vec<String> = match &with {
                    ShareWith::User(u) => vec![u.clone()],
                    ShareWith::Group(g) => self
                        .group_members(g)
                        .into_iter()
                        .filter(|m| *m != sharer && *m != file_owner)
                        .collect(),
                    _ => Vec::new(),
                };
                let mut targets = Vec::new();
                for r in recipients {
                    let idx = self.user_idx(&r).expect("members are users");
                    let t = self.unique_target(idx, &name, is_file);
                    targets.push((r, t));
                }
                let token = match with {
                    ShareWith::User(_) | ShareWith::Group(_) => None,
                    _ => Some(token(sid)),
                };
                self.shares.push(Share {
                    id: sid,
                    sharer: sharer.clone(),
                    file_owner,
                    node: id,
                    with: with.clone(),
                    permissions: perms,
                    stime: self.tree.now(),
                    token,
                    targets,
                    default_target: format!("/{name}"),
                });
                sid
            }
        };
        self.share_activities(actor, share_id, true);
        Ok(share_id)
    }

    /// Deletes a share: its mounts vanish and the sharing activities are written.
    pub fn delete_share(&mut self, share_id: u64) -> Result<(), SimError> {
        let pos = self
            .shares
            .iter()
            .position(|s| s.id == share_id)
            .ok_or(SimError::UnknownShare(share_id))?;
        let actor = self
            .user_idx(&self.shares[pos].sharer)
            .expect("sharers are users");
        if self.tree.home_of(self.shares[pos].node).is_some() {
            self.share_activities(actor, share_id, false);
        }
        self.shares.remove(pos);
        Ok(())
    }

    /// `FilesHooks::share` / `unShare` (and sharebymail's activities).
    fn share_activities(&mut self, actor: usize, share_id: u64, sharing: bool) {
        let share = self
            .shares
            .iter()
            .find(|s| s.id == share_id)
            .expect("share exists");
        let id = share.node;
        let is_folder = self.tree.node(id).is_some_and(|n| n.is_folder());
        let actor_id = self.users[actor].spec.user_id.clone();
        let Some((sharer_path, _)) = UserView::new(self, actor).path_of(id) else {
            return;
        };
        let file = |path: &str| Param::File {
            id,
            path: path.to_string(),
        };
        let mut rows: Vec<RowSpec> = Vec::new();
        let own = |app: &'static str, subject: &'static str, params: Vec<(&'static str, Param)>| {
            RowSpec {
                affected: actor_id.clone(),
                actor: actor_id.clone(),
                app,
                kind: "shared",
                subject,
                params,
                object_id: id,
                object_name: sharer_path.clone(),
                link_dir: share_link_dir(&sharer_path, is_folder),
            }
        };
        let recipient_rows = |rows: &mut Vec<RowSpec>, subject: &'static str| {
            for (user, target) in &share.targets {
                let path = format!("/{target}");
                rows.push(RowSpec {
                    affected: user.clone(),
                    actor: actor_id.clone(),
                    app: "files_sharing",
                    kind: "shared",
                    subject,
                    params: vec![
                        ("file", file(&path)),
                        ("actor", Param::User(actor_id.clone())),
                    ],
                    object_id: id,
                    object_name: path.clone(),
                    link_dir: share_link_dir(&path, is_folder),
                });
            }
        };
        match &share.with {
            ShareWith::User(u) => {
                let subject = if sharing {
                    "shared_user_self"
                } else {
                    "unshared_user_self"
                };
                rows.push(own(
                    "files_sharing",
                    subject,
                    vec![
                        ("file", file(&sharer_path)),
                        ("user", Param::User(u.clone())),
                    ],
                ));
                recipient_rows(
                    &mut rows,
                    if sharing {
                        "shared_with_by"
                    } else {
                        "unshared_by"
                    },
                );
            }
            ShareWith::Group(g) => {
                let subject = if sharing {
                    "shared_group_self"
                } else {
                    "unshared_group_self"
                };
                rows.push(own(
                    "files_sharing",
                    subject,
                    vec![
                        ("file", file(&sharer_path)),
                        ("group", Param::Group(g.clone())),
                    ],
                ));
                recipient_rows(
                    &mut rows,
                    if sharing {
                        "shared_with_by"
                    } else {
                        "unshared_by"
                    },
                );
            }
            ShareWith::Link { .. } => {
                let subject = if sharing {
                    "shared_link_self"
                } else {
                    "unshared_link_self"
                };
                rows.push(own(
                    "files_sharing",
                    subject,
                    vec![("file", file(&sharer_path))],
                ));
            }
            ShareWith::Email(addr) => {
                let subject = if sharing {
                    "shared_with_email_self"
                } else {
                    "unshared_with_email_self"
                };
                rows.push(own(
                    "sharebymail",
                    subject,
                    vec![
                        ("file", file(&sharer_path)),
                        ("email", Param::Email(addr.clone())),
                    ],
                ));
            }
            // Federated shares are announced by the remote server.
            ShareWith::Federated(_) => {}
        }
        for row in rows {
            self.push_activity(row);
        }
    }

    /// `ShareAPIController::formatShare` as seen by `viewer`.
    pub fn format_share(&self, share: &Share, viewer: usize, base_url: &str) -> Option<J> {
        let viewer_id = self.users[viewer].spec.user_id.as_str();
        let view = UserView::new(self, viewer);
        let node = self.tree.node(share.node)?;
        let (path, ctx) = view.path_of(share.node)?;
        let sharer = self.user(&share.sharer);
        let owner = self.user(&share.file_owner)?;
        let owner_idx = self.user_idx(&share.file_owner)?;
        let is_own = share.file_owner == viewer_id;
        let perms = share.permissions;
        let can_edit = perms != 0 && (is_own || share.sharer == viewer_id);
        let is_recipient_user = matches!(&share.with, ShareWith::User(u) if u == viewer_id);
        let can_delete = perms != 0 && (is_recipient_user || can_edit);
        let can_delete_from_self = matches!(&share.with, ShareWith::Group(_))
            && !can_edit
            && share.target_for(viewer_id).is_some();
        let item_permissions = if is_own {
            if node.is_folder() { 31 } else { 27 }
        } else {
            let mut p = perms;
            if can_delete || can_delete_from_self {
                p |= PERMISSION_DELETE;
            }
            if can_edit {
                p |= PERMISSION_UPDATE;
            }
            p
        };
        let mount_root = matches!(ctx, Ctx::MountRoot(_));
        let file_target = share
            .target_for(viewer_id)
            .map(|t| format!("/{t}"))
            .or_else(|| share.targets.first().map(|(_, t)| format!("/{t}")))
            .unwrap_or_else(|| share.default_target.clone());
        let storage_id = if mount_root {
            format!("shared::{file_target}")
        } else {
            format!("home::{}", owner.spec.user_id)
        };
        let mimetype = if node.is_folder() {
            "httpd/unix-directory"
        } else {
            mime_for(&node.name)
        };
        let mut out = obj([
            ("id", s(&share.id.to_string())),
            ("share_type", J::Int(share.with.share_type())),
            ("uid_owner", s(&share.sharer)),
            (
                "displayname_owner",
                s(sharer.map_or(share.sharer.as_str(), |u| u.spec.display_name.as_str())),
            ),
            ("permissions", J::Int(perms as i64)),
            ("can_edit", J::Bool(can_edit)),
            ("can_delete", J::Bool(can_delete)),
            ("stime", J::Int(share.stime)),
            ("parent", J::Null),
            ("expiration", J::Null),
            ("token", J::Null),
            ("uid_file_owner", s(&share.file_owner)),
            ("note", s("")),
            ("label", s("")),
            ("displayname_file_owner", s(&owner.spec.display_name)),
            ("path", s(&path)),
            (
                "item_type",
                s(if node.is_folder() { "folder" } else { "file" }),
            ),
            ("item_permissions", J::Int(item_permissions as i64)),
            ("is-mount-root", J::Bool(mount_root)),
            ("mount-type", s(if mount_root { "shared" } else { "" })),
            ("mimetype", s(mimetype)),
            (
                "has_preview",
                J::Bool(!node.is_folder() && has_preview(mimetype)),
            ),
            ("storage_id", s(&storage_id)),
            ("storage", J::Int(owner_idx as i64 + 6)),
            ("item_source", J::Int(share.node as i64)),
            ("file_source", J::Int(share.node as i64)),
            (
                "file_parent",
                J::Int(node.parent.unwrap_or(share.node) as i64),
            ),
            ("file_target", s(&file_target)),
            ("item_size", J::Int(node.size as i64)),
            ("item_mtime", J::Int(node.mtime)),
        ]);
        match &share.with {
            ShareWith::User(u) => {
                let rec = self.user(u);
                out.set("share_with", s(u));
                out.set(
                    "share_with_displayname",
                    s(rec.map_or(u.as_str(), |r| r.spec.display_name.as_str())),
                );
                let unique = rec
                    .and_then(|r| r.spec.email.clone())
                    .unwrap_or_else(|| u.clone());
                out.set("share_with_displayname_unique", s(&unique));
            }
            ShareWith::Group(g) => {
                out.set("share_with", s(g));
                out.set("share_with_displayname", s(g));
            }
            ShareWith::Link { expires } => {
                if let Some(t) = expires {
                    out.set("expiration", s(&date_midnight(*t)));
                }
                out.set("share_with", J::Null);
                out.set("share_with_displayname", s("(Shared link)"));
                out.set("password", J::Null);
                out.set("send_password_by_talk", J::Bool(false));
                let token = share.token.clone().unwrap_or_default();
                out.set("token", s(&token));
                out.set("url", s(&format!("{base_url}/index.php/s/{token}")));
            }
            ShareWith::Federated(addr) => {
                out.set("share_with", s(addr));
                out.set("share_with_displayname", s(addr));
                out.set("token", s(share.token.as_deref().unwrap_or("")));
            }
            ShareWith::Email(addr) => {
                out.set("share_with", s(addr));
                out.set("password", J::Null);
                out.set("password_expiration_time", J::Null);
                out.set("send_password_by_talk", J::Bool(false));
                out.set("share_with_displayname", s(addr));
                out.set("token", s(share.token.as_deref().unwrap_or("")));
            }
        }
        out.set("mail_send", J::Int(0));
        out.set("hide_download", J::Int(0));
        out.set("attributes", J::Null);
        Some(out)
    }

    /// Whether `viewer` may see the share (sharer, file owner or recipient).
    pub fn share_visible(&self, share: &Share, viewer: usize) -> bool {
        let v = self.users[viewer].spec.user_id.as_str();
        share.sharer == v || share.file_owner == v || share.target_for(v).is_some()
    }
}

pub mod api {
    //! The OCS Share API.

    use axum::http::{HeaderMap, Method, StatusCode};

    use super::*;
    use crate::encode::parse_query;
    use crate::http::Resp;
    use crate::ocs::{ocs_failure, ocs_ok};
    use crate::sim::Simulator;

    fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn truthy(v: Option<&str>) -> bool {
        matches!(v, Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    }

    /// `rest` is the path below `/apps/files_sharing/api/v1/shares`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle(
        sim: &Simulator,
        me: usize,
        method: &Method,
        rest: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
        base_url: &str,
    ) -> Resp {
        let user = sim.lock().users[me].spec.user_id.clone();
        let fail = |status: StatusCode, msg: &str| ocs_failure(status, msg, query, headers, &user);
        match (method.as_str(), rest) {
            ("GET", "") => {
                let params = parse_query(query);
                let st = sim.lock();
                let shared_with_me = truthy(param(&params, "shared_with_me"));
                let reshares = truthy(param(&params, "reshares"));
                let subfiles = truthy(param(&params, "subfiles"));
                let node_filter = match param(&params, "path") {
                    None | Some("") => None,
                    Some(p) => match UserView::new(&st, me).resolve(p) {
                        Ok((id, _)) => Some(id),
                        Err(_) => {
                            return fail(
                                StatusCode::NOT_FOUND,
                                "Wrong path, file/folder does not exist",
                            );
                        }
                    },
                };
                let mut data = Vec::new();
                for share in &st.shares {
                    if st.tree.home_of(share.node).is_none() {
                        continue;
                    }
                    let wanted = if shared_with_me {
                        share.target_for(&user).is_some()
                    } else {
                        share.sharer == user || (reshares && share.file_owner == user)
                    };
                    let on_path = match node_filter {
                        None => true,
                        Some(n) if subfiles => {
                            st.tree.node(share.node).and_then(|x| x.parent) == Some(n)
                        }
                        Some(n) => share.node == n,
                    };
                    if wanted
                        && on_path
                        && let Some(j) = st.format_share(share, me, base_url)
                    {
                        data.push(j);
                    }
                }
                ocs_ok(J::Arr(data), query, headers, &user)
            }
            ("POST", "") => {
                let mut params = parse_query(query);
                params.extend(parse_query(&String::from_utf8_lossy(body)));
                let path = param(&params, "path").unwrap_or("").to_string();
                if path.is_empty() {
                    return fail(
                        StatusCode::NOT_FOUND,
                        "Please specify a file or folder path",
                    );
                }
                let share_with = param(&params, "shareWith").unwrap_or("").to_string();
                let expires = param(&params, "expireDate")
                    .and_then(|d| crate::time::parse_atom(&format!("{}T00:00:00Z", d.get(..10)?)));
                let with = match param(&params, "shareType").unwrap_or("") {
                    "0" => ShareWith::User(share_with),
                    "1" => ShareWith::Group(share_with),
                    "3" => ShareWith::Link { expires },
                    "4" => ShareWith::Email(share_with),
                    "6" => ShareWith::Federated(share_with),
                    _ => return fail(StatusCode::BAD_REQUEST, "Unknown share type"),
                };
                let default_perms = match with {
                    ShareWith::User(_) | ShareWith::Group(_) => PERMISSION_ALL,
                    _ => PERMISSION_READ,
                };
                let perms = param(&params, "permissions")
                    .and_then(|p| p.parse::<u32>().ok())
                    .unwrap_or(default_perms);
                let mut st = sim.lock();
                match st.create_share(me, &path, with, perms) {
                    Ok(id) => {
                        let share = st.shares.iter().find(|s| s.id == id).expect("created");
                        match st.format_share(share, me, base_url) {
                            Some(j) => ocs_ok(j, query, headers, &user),
                            None => fail(
                                StatusCode::NOT_FOUND,
                                "Wrong path, file/folder does not exist",
                            ),
                        }
                    }
                    Err(SimError::NotFound(_)) => fail(
                        StatusCode::NOT_FOUND,
                        "Wrong path, file/folder does not exist",
                    ),
                    Err(SimError::UnknownUser(_)) => fail(
                        StatusCode::NOT_FOUND,
                        "Please specify a valid account to share with",
                    ),
                    Err(SimError::PermissionDenied(m)) => fail(StatusCode::FORBIDDEN, &m),
                    Err(e) => fail(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (m, id) if id.starts_with('/') && (m == "GET" || m == "DELETE") => {
                let sid = id[1..].parse::<u64>().ok();
                let mut st = sim.lock();
                let found = sid.and_then(|sid| {
                    st.shares
                        .iter()
                        .find(|s| s.id == sid && st.share_visible(s, me))
                        .map(|s| s.id)
                });
                let Some(sid) = found else {
                    return fail(
                        StatusCode::NOT_FOUND,
                        "Wrong share ID, share does not exist",
                    );
                };
                if m == "GET" {
                    let share = st.shares.iter().find(|s| s.id == sid).expect("found");
                    let data = st
                        .format_share(share, me, base_url)
                        .map(|j| vec![j])
                        .unwrap_or_default();
                    ocs_ok(J::Arr(data), query, headers, &user)
                } else {
                    let _ = st.delete_share(sid);
                    ocs_ok(J::Arr(vec![]), query, headers, &user)
                }
            }
            _ => crate::ocs::not_found(query, headers, &user),
        }
    }
}
