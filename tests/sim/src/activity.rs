//! The Activity app: rows written synchronously with every mutation (one per
//! affected user, like `FilesHooks`), and the v2 OCS API that reads them back
//! with `Data::get` (since/limit/sort, raw-row paging) and `GroupHelper` +
//! `EventMerger` (grouping at read time).

use std::collections::VecDeque;

use axum::http::{HeaderMap, StatusCode, header};

use crate::encode::{parse_query, query_encode, rawurlencode};
use crate::http::{Resp, finish, header_str, hv};
use crate::json::{J, obj, s};
use crate::md5_hex;
use crate::ocs::{self, OcsFormat};
use crate::sim::{Simulator, State};
use crate::time::atom;
use crate::view::UserView;

/// `EventMerger`: events more than this far apart are never merged.
const MERGE_WINDOW: i64 = 3 * 60 * 60;
/// `Data::get` caps `limit` here.
const MAX_LIMIT: i64 = 200;

/// A subject parameter as stored in `subjectparams`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// `[fileid => path]`, the path in the affected user's namespace.
    File {
        id: u64,
        path: String,
    },
    User(String),
    Group(String),
    Email(String),
}

/// What a hook hands to `Data::send`.
pub struct RowSpec {
    pub affected: String,
    pub actor: String,
    pub app: &'static str,
    pub kind: &'static str,
    pub subject: &'static str,
    /// In the order the provider builds its rich parameters.
    pub params: Vec<(&'static str, Param)>,
    pub object_id: u64,
    /// Leading slash, in the affected user's namespace.
    pub object_name: String,
    /// The `dir` of the `link` field.
    pub link_dir: String,
}

pub struct Row {
    pub id: u64,
    pub time: i64,
    pub spec: RowSpec,
}

pub struct ActivityLog {
    pub rows: VecDeque<Row>,
    pub next_id: u64,
    /// The app is installed and enabled.
    pub enabled: bool,
    /// Off for changes the app never hears of (external storage, scans).
    pub record: bool,
}

impl Default for ActivityLog {
    fn default() -> Self {
        ActivityLog {
            rows: VecDeque::new(),
            next_id: 1,
            enabled: true,
            record: true,
        }
    }
}

/// The kind of a file hook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Created,
    Changed,
    Deleted,
    Restored,
}

impl FileAction {
    fn subjects(self) -> (&'static str, &'static str, &'static str) {
        match self {
            FileAction::Created => ("created_self", "created_by", "file_created"),
            FileAction::Changed => ("changed_self", "changed_by", "file_changed"),
            FileAction::Deleted => ("deleted_self", "deleted_by", "file_deleted"),
            FileAction::Restored => ("restored_self", "restored_by", "file_restored"),
        }
    }
}

fn dirname(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((d, _)) => d.to_string(),
    }
}

/// `FilesHooks` names a moved or renamed item by its folder's path, `/`
/// and its name, as plain strings: the root's path is `/`, so an item moved
/// or renamed into the root is `//name` (recorded from Nextcloud 32.0.1 in
/// `activity-move-and-rename-at-root.json`).
fn child_path(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

impl State {
    /// `Data::send`, when the app is there to hear the hook.
    pub fn push_activity(&mut self, spec: RowSpec) {
        if !self.activity.enabled || !self.activity.record {
            return;
        }
        let id = self.activity.next_id;
        self.activity.next_id += 1;
        let time = self.tree.now();
        self.activity.rows.push_back(Row { id, time, spec });
    }

    /// Everyone who can reach `id`, owner first, with its path for them.
    pub fn access_list(&self, id: u64) -> Vec<(usize, String)> {
        let Some(home) = self.tree.home_of(id) else {
            return Vec::new();
        };
        let Some(owner) = self.users.iter().position(|u| u.root == home) else {
            return Vec::new();
        };
        let mut out = vec![(owner, self.tree.path_of(id))];
        let mut seen = vec![owner];
        for share in &self.shares {
            if !self.tree.is_ancestor_or_self(share.node, id) {
                continue;
            }
            for (user, _) in &share.targets {
                let Some(idx) = self.user_idx(user) else {
                    continue;
                };
                if seen.contains(&idx) {
                    continue;
                }
                seen.push(idx);
                if let Some((path, _)) = UserView::new(self, idx).path_of(id) {
                    out.push((idx, path));
                }
            }
        }
        out
    }

    fn file_row(
        &self,
        user: usize,
        actor: usize,
        subjects: (&'static str, &'static str),
        kind: &'static str,
        id: u64,
        path: &str,
    ) -> RowSpec {
        let actor_id = self.users[actor].spec.user_id.clone();
        let mut params = vec![(
            "file",
            Param::File {
                id,
                path: path.to_string(),
            },
        )];
        let subject = if user == actor {
            subjects.0
        } else {
            params.push(("user", Param::User(actor_id.clone())));
            subjects.1
        };
        RowSpec {
            affected: self.users[user].spec.user_id.clone(),
            actor: actor_id,
            app: "files",
            kind,
            subject,
            params,
            object_id: id,
            object_name: path.to_string(),
            link_dir: dirname(path),
        }
    }

    /// `addNotificationsForFileAction` for an access list taken at the right
    /// moment (after a create/change/restore, before a delete).
    pub fn file_activity(
        &mut self,
        actor: usize,
        action: FileAction,
        id: u64,
        access: Vec<(usize, String)>,
    ) {
        let (me, by, kind) = action.subjects();
        for (user, path) in access {
            let row = self.file_row(user, actor, (me, by), kind, id, &path);
            self.push_activity(row);
        }
    }

    /// `fileMovePost`: a rename for everyone who can see the folder, or for a
    /// move: deletes for those who lose sight of it, creates for those who
    /// gain it, moves for the rest. Access lists are of the parent folders.
    #[allow(clippy::too_many_arguments)]
    pub fn move_activity(
        &mut self,
        actor: usize,
        id: u64,
        old_name: &str,
        new_name: &str,
        new_parent: u64,
        renamed: bool,
        before: Vec<(usize, String)>,
        after: Vec<(usize, String)>,
    ) {
        let actor_id = self.users[actor].spec.user_id.clone();
        let file = |path: String| Param::File { id, path };
        if renamed {
            for (user, dir) in after {
                let new_path = child_path(&dir, new_name);
                let mut params = vec![("newfile", file(new_path.clone()))];
                let subject = if user == actor {
                    "renamed_self"
                } else {
                    params.push(("user", Param::User(actor_id.clone())));
                    "renamed_by"
                };
                params.push(("oldfile", file(child_path(&dir, old_name))));
                let row = RowSpec {
                    affected: self.users[user].spec.user_id.clone(),
                    actor: actor_id.clone(),
                    app: "files",
                    kind: "file_changed",
                    subject,
                    params,
                    object_id: id,
                    object_name: new_path.clone(),
                    link_dir: dirname(&new_path),
                };
                self.push_activity(row);
            }
            return;
        }
        let in_after = |u: usize| after.iter().any(|(a, _)| *a == u);
        let in_before = |u: usize| before.iter().any(|(b, _)| *b == u);
        let mut rows = Vec::new();
        for (user, dir) in before.iter().filter(|(u, _)| !in_after(*u)) {
            rows.push(self.file_row(
                *user,
                actor,
                ("deleted_self", "deleted_by"),
                "file_deleted",
                id,
                &child_path(dir, old_name),
            ));
        }
        for (user, dir) in after.iter().filter(|(u, _)| !in_before(*u)) {
            rows.push(self.file_row(
                *user,
                actor,
                ("created_self", "created_by"),
                "file_changed",
                id,
                &child_path(dir, new_name),
            ));
        }
        for (user, dir) in after.iter().filter(|(u, _)| in_before(*u)) {
            let old_dir = &before.iter().find(|(b, _)| b == user).expect("in both").1;
            let new_path = child_path(dir, new_name);
            let newfile = if old_name == new_name {
                // The destination folder, path with a trailing slash.
                Param::File {
                    id: new_parent,
                    path: format!("{dir}/"),
                }
            } else {
                file(new_path.clone())
            };
            let mut params = vec![("newfile", newfile)];
            let subject = if *user == actor {
                "moved_self"
            } else {
                params.push(("user", Param::User(actor_id.clone())));
                "moved_by"
            };
            params.push(("oldfile", file(child_path(old_dir, old_name))));
            rows.push(RowSpec {
                affected: self.users[*user].spec.user_id.clone(),
                actor: actor_id.clone(),
                app: "files",
                kind: "file_changed",
                subject,
                params,
                object_id: id,
                object_name: new_path.clone(),
                link_dir: dirname(&new_path),
            });
        }
        for row in rows {
            self.push_activity(row);
        }
    }
}

// ---------------------------------------------------------------------------
// Reading: providers, EventMerger, GroupHelper.

/// A parsed event, as a provider leaves it.
#[derive(Clone)]
struct Event {
    row_id: u64,
    app: &'static str,
    kind: &'static str,
    author: String,
    subject_key: &'static str,
    time: i64,
    template: String,
    params: Vec<(String, J)>,
    parsed: String,
    object_id: u64,
    object_name: String,
    /// `getObjectsFromChildren`: children's objects first.
    objects: Vec<(u64, String)>,
    merged: bool,
    link: String,
    icon: String,
}

fn template(subject: &str) -> (&'static str, &'static str) {
    // (rich template, icon path below the base URL)
    match subject {
        "created_self" => ("You created {file}", "/apps/files/img/add-color.svg"),
        "created_by" => ("{user} created {file}", "/apps/files/img/add-color.svg"),
        "changed_self" => ("You changed {file}", "/apps/files/img/change.svg"),
        "changed_by" => ("{user} changed {file}", "/apps/files/img/change.svg"),
        "deleted_self" => ("You deleted {file}", "/apps/files/img/delete-color.svg"),
        "deleted_by" => ("{user} deleted {file}", "/apps/files/img/delete-color.svg"),
        "restored_self" => ("You restored {file}", "/core/img/actions/history.svg"),
        "restored_by" => ("{user} restored {file}", "/core/img/actions/history.svg"),
        "renamed_self" => (
            "You renamed {oldfile} to {newfile}",
            "/apps/files/img/change.svg",
        ),
        "renamed_by" => (
            "{user} renamed {oldfile} to {newfile}",
            "/apps/files/img/change.svg",
        ),
        "moved_self" => (
            "You moved {oldfile} to {newfile}",
            "/apps/files/img/change.svg",
        ),
        "moved_by" => (
            "{user} moved {oldfile} to {newfile}",
            "/apps/files/img/change.svg",
        ),
        "shared_user_self" => (
            "You shared {file} with {user}",
            "/core/img/actions/share.svg",
        ),
        "unshared_user_self" => (
            "You removed {user} from {file}",
            "/core/img/actions/share.svg",
        ),
        "shared_with_by" => (
            "{actor} shared {file} with you",
            "/core/img/actions/share.svg",
        ),
        "unshared_by" => (
            "{actor} removed you from {file}",
            "/core/img/actions/share.svg",
        ),
        "shared_group_self" => (
            "You shared {file} with group {group}",
            "/core/img/actions/share.svg",
        ),
        "unshared_group_self" => (
            "You removed group {group} from {file}",
            "/core/img/actions/share.svg",
        ),
        "shared_link_self" => (
            "You shared {file} as public link",
            "/core/img/actions/share.svg",
        ),
        "unshared_link_self" => (
            "You removed public link for {file}",
            "/core/img/actions/share.svg",
        ),
        "shared_with_email_self" => (
            "You shared {file} with {email} by mail",
            "/core/img/actions/share.svg",
        ),
        "unshared_with_email_self" => (
            "You unshared {file} from {email} by mail",
            "/core/img/actions/share.svg",
        ),
        _ => ("{file}", "/core/img/actions/info.svg"),
    }
}

/// PHP's `basename` of an already trimmed path.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

struct Ctx<'a> {
    st: &'a State,
    base: &'a str,
}

impl Ctx<'_> {
    fn display_name(&self, uid: &str) -> String {
        self.st
            .user(uid)
            .map_or_else(|| uid.to_string(), |u| u.spec.display_name.clone())
    }

    fn rich(&self, p: &Param) -> J {
        match p {
            Param::File { id, path } => {
                let path = path.trim_matches('/');
                obj([
                    ("type", s("file")),
                    ("id", s(&id.to_string())),
                    ("name", s(basename(path))),
                    ("path", s(path)),
                    ("link", s(&format!("{}/index.php/f/{id}", self.base))),
                ])
            }
            Param::User(uid) => obj([
                ("type", s("user")),
                ("id", s(uid)),
                ("name", s(&self.display_name(uid))),
            ]),
            Param::Group(g) => obj([("type", s("user-group")), ("id", s(g)), ("name", s(g))]),
            Param::Email(a) => obj([("type", s("email")), ("id", s(a)), ("name", s(a))]),
        }
    }

    /// `urlGenerator->linkToRouteAbsolute('files.view.index', ['dir' => …])`.
    fn link(&self, dir: &str) -> String {
        let mut q = rawurlencode(dir);
        for (enc, dec) in [
            ("%2F", "/"),
            ("%3F", "?"),
            ("%40", "@"),
            ("%3A", ":"),
            ("%21", "!"),
            ("%3B", ";"),
            ("%2C", ","),
            ("%2A", "*"),
        ] {
            q = q.replace(enc, dec);
        }
        format!("{}/index.php/apps/files/?dir={q}", self.base)
    }

    fn parse(&self, row: &Row) -> Event {
        let spec = &row.spec;
        let (tpl, icon) = template(spec.subject);
        let params: Vec<(String, J)> = spec
            .params
            .iter()
            .map(|(k, p)| (k.to_string(), self.rich(p)))
            .collect();
        Event {
            row_id: row.id,
            app: spec.app,
            kind: spec.kind,
            author: spec.actor.clone(),
            subject_key: spec.subject,
            time: row.time,
            parsed: rich_to_parsed(tpl, &params),
            template: tpl.to_string(),
            params,
            object_id: spec.object_id,
            object_name: spec.object_name.clone(),
            objects: vec![(spec.object_id, spec.object_name.clone())],
            merged: false,
            link: self.link(&spec.link_dir),
            icon: format!("{}{icon}", self.base),
        }
    }
}

/// `RichTextFormatter::richToParsed`.
fn rich_to_parsed(template: &str, params: &[(String, J)]) -> String {
    let mut out = template.to_string();
    for (k, v) in params {
        let field = |f: &str| match v {
            J::Obj(fields) => fields
                .iter()
                .find(|(n, _)| n == f)
                .and_then(|(_, x)| match x {
                    J::Str(s) => Some(s.clone()),
                    _ => None,
                }),
            _ => None,
        };
        let rep = match field("type").as_deref() {
            Some("user") => format!("@{}", field("name").unwrap_or_default()),
            Some("file") => field("path").or_else(|| field("name")).unwrap_or_default(),
            _ => field("name").unwrap_or_default(),
        };
        out = out.replace(&format!("{{{k}}}"), &rep);
    }
    out
}

/// `EventMerger::generateParsedSubject`.
fn merged_parsed(template: &str, params: &[(String, J)]) -> String {
    let mut out = template.to_string();
    for (k, v) in params {
        let field = |f: &str| match v {
            J::Obj(fields) => fields
                .iter()
                .find(|(n, _)| n == f)
                .and_then(|(_, x)| match x {
                    J::Str(s) => Some(s.clone()),
                    _ => None,
                }),
            _ => None,
        };
        let rep = if field("type").as_deref() == Some("file") {
            field("path")
                .unwrap_or_default()
                .trim_matches('/')
                .to_string()
        } else {
            field("name").or_else(|| field("id")).unwrap_or_default()
        };
        out = out.replace(&format!("{{{k}}}"), &rep);
    }
    out
}

/// `^{merge}(\d+)?$`
fn is_merge_key(key: &str, merge: &str) -> bool {
    key.strip_prefix(merge)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

/// `EventMerger::mergeEvents`: `None` when the two cannot be combined.
fn merge(merge_param: &str, event: &Event, prev: &Event) -> Option<Event> {
    if event.app != prev.app
        || event.subject_key != prev.subject_key
        || (event.time - prev.time).abs() > MERGE_WINDOW
    {
        return None;
    }
    let mut params: Vec<(String, J)> = Vec::new();
    let mut combined = 0;
    let set = |params: &mut Vec<(String, J)>, k: String, v: J| match params
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(slot) => slot.1 = v,
        None => params.push((k, v)),
    };
    for (own, other) in [(&event.params, &prev.params), (&prev.params, &event.params)] {
        for (k, v) in own {
            if is_merge_key(k, merge_param) {
                let exists = params
                    .iter()
                    .any(|(n, p)| is_merge_key(n, merge_param) && p == v);
                if !exists {
                    combined += 1;
                    set(&mut params, format!("{merge_param}{combined}"), v.clone());
                }
                continue;
            }
            if other.iter().find(|(n, _)| n == k).map(|(_, p)| p) != Some(v) {
                return None;
            }
            set(&mut params, k.clone(), v.clone());
        }
    }
    let p = |i: usize| format!("{{{merge_param}{i}}}");
    let replacement = match combined {
        1 => p(1),
        2 => format!("{} and {}", p(2), p(1)),
        3 => format!("{}, {} and {}", p(3), p(2), p(1)),
        4 => format!("{}, {}, {} and {}", p(4), p(3), p(2), p(1)),
        5 => format!("{}, {}, {}, {} and {}", p(5), p(4), p(3), p(2), p(1)),
        _ => return None,
    };
    let template = event
        .template
        .replace(&format!("{{{merge_param}}}"), &replacement);
    let mut merged = event.clone();
    merged.parsed = merged_parsed(&template, &params);
    merged.template = template;
    merged.params = params;
    merged.time = event.time.max(prev.time);
    merged.merged = true;
    let mut objects = prev.objects.clone();
    match objects.iter_mut().find(|(id, _)| *id == event.object_id) {
        Some(slot) => slot.1 = event.object_name.clone(),
        None => objects.push((event.object_id, event.object_name.clone())),
    }
    merged.objects = objects;
    Some(merged)
}

/// The files provider merges on `file` (`oldfile` for moves), then on `user`;
/// the sharing providers never merge.
fn provider_merge(event: &Event, prev: &Event) -> Option<Event> {
    if event.app != "files" {
        return None;
    }
    let first = if event.subject_key.starts_with("moved_") {
        "oldfile"
    } else {
        "file"
    };
    merge(first, event, prev).or_else(|| merge("user", event, prev))
}

fn event_json(e: &Event, previews: Option<J>) -> J {
    let mut out = obj([
        ("activity_id", J::Int(e.row_id as i64)),
        ("app", s(e.app)),
        ("type", s(e.kind)),
        ("user", s(&e.author)),
        ("subject", s(&e.parsed)),
        (
            "subject_rich",
            J::Arr(vec![s(&e.template), J::Obj(e.params.clone())]),
        ),
        ("message", s("")),
        ("message_rich", J::Arr(vec![s(""), J::Arr(vec![])])),
        ("object_type", s("files")),
        ("object_id", J::Int(e.object_id as i64)),
        ("object_name", s(&e.object_name)),
        (
            "objects",
            J::Obj(
                e.objects
                    .iter()
                    .map(|(id, p)| (id.to_string(), s(p)))
                    .collect(),
            ),
        ),
        ("link", s(&e.link)),
        ("icon", s(&e.icon)),
        ("datetime", s(&atom(e.time))),
    ]);
    if let Some(p) = previews {
        out.set("previews", p);
    }
    out
}

fn previews_json(e: &Event, st: &State, base: &str) -> J {
    J::Arr(
        e.objects
            .iter()
            .filter(|(id, p)| *id != 0 && !p.is_empty())
            .map(|(id, path)| {
                let is_dir = st.tree.node(*id).is_some_and(|n| n.is_folder());
                let name = basename(path.trim_end_matches('/'));
                let mime = if is_dir {
                    "dir"
                } else {
                    crate::content::mime_for(name)
                };
                let icon = match mime {
                    "dir" => "folder",
                    m if m.starts_with("image/") => "image",
                    m if m.starts_with("text/") => "text",
                    m if m.starts_with("audio/") => "audio",
                    m if m.starts_with("video/") => "video",
                    "application/pdf" => "application-pdf",
                    _ => "file",
                };
                obj([
                    ("link", s(&format!("{base}/index.php/f/{id}"))),
                    (
                        "source",
                        s(&format!("{base}/core/img/filetypes/{icon}.svg")),
                    ),
                    ("mimeType", s(mime)),
                    ("isMimeTypeIcon", J::Bool(true)),
                    ("fileId", J::Int(*id as i64)),
                    ("view", s("files")),
                    ("filename", s(name)),
                ])
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// The HTTP side.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    SelfOnly,
    By,
    Files,
    FilesSharing,
    Object,
}

impl Filter {
    fn parse(name: &str) -> Option<Filter> {
        Some(match name {
            "all" => Filter::All,
            "self" => Filter::SelfOnly,
            "by" => Filter::By,
            "files" => Filter::Files,
            "files_sharing" => Filter::FilesSharing,
            "filter" => Filter::Object,
            _ => return None,
        })
    }

    fn keeps(self, row: &RowSpec, user: &str, object: Option<(&str, u64)>) -> bool {
        match self {
            Filter::All => true,
            Filter::SelfOnly => row.actor == user,
            Filter::By => row.actor != user,
            Filter::Files => {
                row.app == "files"
                    && matches!(
                        row.kind,
                        "file_created" | "file_changed" | "file_deleted" | "file_restored"
                    )
            }
            Filter::FilesSharing => row.app == "files_sharing",
            Filter::Object => object.is_none_or(|(t, id)| t == "files" && row.object_id == id),
        }
    }
}

/// PHP's `(int)` of a query string value.
fn php_int(v: Option<&str>, default: i64) -> i64 {
    let Some(v) = v else {
        return default;
    };
    let t = v.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let n: i64 = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, b| {
            acc.saturating_mul(10).saturating_add((b - b'0') as i64)
        });
    if neg { -n } else { n }
}

fn filters_json(base: &str) -> J {
    let f = |id: &str, name: &str, icon: &str, prio: i64| {
        obj([
            ("id", s(id)),
            ("name", s(name)),
            ("icon", s(&format!("{base}{icon}"))),
            ("priority", J::Int(prio)),
        ])
    };
    J::Arr(vec![
        f(
            "all",
            "All activities",
            "/apps/activity/img/activity-dark.svg",
            0,
        ),
        f("self", "By you", "/apps/activity/img/user-dark.svg", 1),
        f("by", "By others", "/apps/activity/img/users-dark.svg", 2),
        f(
            "files",
            "File changes",
            "/apps/files/img/files-dark.svg",
            10,
        ),
        f(
            "files_sharing",
            "File shares",
            "/core/img/actions/share.svg",
            30,
        ),
    ])
}

/// `rest` is what follows `/apps/activity/api/v2/activity` (`""`, `/files`, …).
pub fn handle(
    sim: &Simulator,
    me: usize,
    script_path: &str,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    base_url: &str,
) -> Resp {
    let st = sim.lock();
    let user = st.users[me].spec.user_id.clone();
    if let Some(resp) = ocs::csrf_check(headers, &user) {
        return resp;
    }
    let filter_name = match rest {
        "" => "all",
        r => match r.strip_prefix('/') {
            Some(f) if !f.is_empty() && !f.contains('/') => f,
            _ => return ocs::not_found(query, headers, &user),
        },
    };
    if filter_name == "filters" {
        return ocs::ocs_ok(filters_json(base_url), query, headers, &user);
    }
    let Some(filter) = Filter::parse(filter_name) else {
        return ocs::ocs_failure(StatusCode::NOT_FOUND, "", query, headers, &user);
    };
    let params = parse_query(query);
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let since = php_int(get("since"), 0);
    let requested_limit = php_int(get("limit"), 50);
    let sort_asc = get("sort") == Some("asc");
    let previews = get("previews").is_some_and(|v| !v.is_empty() && v != "0");
    let object_type = get("object_type").unwrap_or("").to_string();
    let object_id = php_int(get("object_id"), 0);
    let object = (!object_type.is_empty() && object_id != 0)
        .then_some((object_type.as_str(), object_id as u64));

    let key = |r: &Row| (r.time, r.id);
    let mut first_known: Option<u64> = None;
    let mut offset: Option<(i64, u64)> = None;
    if since != 0 {
        match st.activity.rows.iter().find(|r| r.id as i64 == since) {
            Some(r) if r.spec.affected != user => {
                return ocs::ocs_failure(StatusCode::FORBIDDEN, "", query, headers, &user);
            }
            Some(r) => offset = Some(key(r)),
            None => {}
        }
    }
    if offset.is_none() {
        let mine = st.activity.rows.iter().filter(|r| r.spec.affected == user);
        first_known = if sort_asc {
            mine.min_by_key(|r| key(r))
        } else {
            mine.max_by_key(|r| key(r))
        }
        .map(|r| r.id);
    }
    let mut rows: Vec<&Row> = st
        .activity
        .rows
        .iter()
        .filter(|r| r.spec.affected == user && filter.keeps(&r.spec, &user, object))
        .filter(|r| match offset {
            None => true,
            Some((t, id)) if sort_asc => r.time >= t && r.id > id,
            Some((t, id)) => r.time <= t && r.id < id,
        })
        .collect();
    rows.sort_by_key(|r| key(r));
    if !sort_asc {
        rows.reverse();
    }
    let limit = requested_limit.clamp(0, MAX_LIMIT) as usize;
    let has_more = rows.len() > limit;
    rows.truncate(limit);

    let ctx = Ctx {
        st: &st,
        base: base_url,
    };
    let mut events: Vec<Event> = Vec::new();
    for row in &rows {
        let event = ctx.parse(row);
        match events.last().and_then(|prev| provider_merge(&event, prev)) {
            Some(merged) => {
                events.pop();
                events.push(merged);
            }
            None => events.push(event),
        }
    }
    let last_given = rows.last().map(|r| r.id);

    let mut extra: Vec<(&'static str, String)> = Vec::new();
    if let Some(f) = first_known {
        extra.push(("X-Activity-First-Known", f.to_string()));
    }
    if let Some(l) = last_given {
        extra.push(("X-Activity-Last-Given", l.to_string()));
        if has_more {
            let mut q = vec![
                ("since", l.to_string()),
                ("limit", requested_limit.to_string()),
                ("sort", if sort_asc { "asc" } else { "desc" }.to_string()),
            ];
            if let Some((t, id)) = object {
                q.push(("object_type", t.to_string()));
                q.push(("object_id", id.to_string()));
            }
            if let Some(f) = get("format") {
                q.push(("format", f.to_string()));
            }
            let qs = q
                .iter()
                .map(|(k, v)| format!("{k}={}", query_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            extra.push((
                "Link",
                format!("<{base_url}{script_path}/apps/activity/api/v2/activity{rest}?{qs}>; rel=\"next\""),
            ));
        }
    }
    let ids: Vec<String> = events.iter().map(|e| e.row_id.to_string()).collect();
    let etag = md5_hex(format!("[{}]", ids.join(",")).as_bytes());
    extra.push(("ETag", etag.clone()));

    let format = ocs::format(query, headers);
    if events.is_empty() || header_str(headers, "if-none-match") == Some(etag.as_str()) {
        let mut b = ocs::ocs_builder(StatusCode::NOT_MODIFIED, Some(&user));
        for (k, v) in &extra {
            b = b.header(*k, hv(v));
        }
        let ct = match format {
            OcsFormat::Json => "application/json; charset=utf-8",
            OcsFormat::Xml => "application/xml; charset=utf-8",
        };
        return finish(
            b.header(header::CONTENT_TYPE, ct),
            axum::body::Body::empty(),
        );
    }
    let data = J::Arr(
        events
            .iter()
            .map(|e| event_json(e, previews.then(|| previews_json(e, &st, base_url))))
            .collect(),
    );
    let mut resp = ocs::ocs_ok(data, query, headers, &user);
    let h = resp.headers_mut();
    // Keep the captured order: X-User-Id, the activity headers, then Content-Type.
    let ct = h.remove(header::CONTENT_TYPE);
    for (k, v) in &extra {
        h.append(*k, hv(v));
    }
    if let Some(ct) = ct {
        h.insert(header::CONTENT_TYPE, ct);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_int_casts_like_php() {
        assert_eq!(php_int(Some("12abc"), 0), 12);
        assert_eq!(php_int(Some("abc"), 7), 0);
        assert_eq!(php_int(Some("-5"), 0), -5);
        assert_eq!(php_int(None, 50), 50);
    }

    #[test]
    fn merge_keys() {
        assert!(is_merge_key("file", "file"));
        assert!(is_merge_key("file12", "file"));
        assert!(!is_merge_key("newfile", "file"));
        assert!(!is_merge_key("files", "file"));
    }
}
