//! An in-memory host for the core's native tests: storage and sink with
//! the same staging rules as the real host, and scripted HTTP answers.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use crate::error::HttpError;
use crate::host::{Host, Level, Request, Response};
use crate::model::{Order, Record, RecordChange, RecordGroup, User};
use record_model::is_account_path;

/// Answers a live Nextcloud 32.0.1 gave, kept in the repository.
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/nextcloud-32"
);

/// A recorded answer's body.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

type Responder = Box<dyn FnMut(&Request) -> Result<Response<Cursor<Vec<u8>>>, HttpError>>;

#[derive(Default, Clone)]
pub struct State {
    pub points: HashMap<String, String>,
    pub known: BTreeMap<String, Record>,
    pub sink: BTreeMap<String, Record>,
    pub users: Vec<User>,
    pub groups: Vec<RecordGroup>,
}

pub struct MemoryHost {
    responder: RefCell<Responder>,
    pub requests: RefCell<Vec<Request>>,
    pub committed: RefCell<State>,
    staged: RefCell<Option<State>>,
    /// Every `on-changes` call that was committed, in order.
    pub batches: RefCell<Vec<Vec<RecordChange>>>,
    /// The URLs of each `send-all` call, in order.
    pub sent_together: RefCell<Vec<Vec<String>>>,
    staged_batches: RefCell<Vec<Vec<RecordChange>>>,
    /// Commits left before `commit` fails, to model a crash.
    pub commits_left: RefCell<Option<usize>>,
    pub logs: RefCell<Vec<(Level, String)>>,
}

pub fn response(
    status: u16,
    body: impl Into<Vec<u8>>,
) -> Result<Response<Cursor<Vec<u8>>>, HttpError> {
    Ok(Response {
        status,
        headers: Vec::new(),
        body: Cursor::new(body.into()),
    })
}

impl MemoryHost {
    pub fn new(
        responder: impl FnMut(&Request) -> Result<Response<Cursor<Vec<u8>>>, HttpError> + 'static,
    ) -> Self {
        MemoryHost {
            responder: RefCell::new(Box::new(responder)),
            requests: RefCell::default(),
            committed: RefCell::default(),
            staged: RefCell::default(),
            batches: RefCell::default(),
            sent_together: RefCell::default(),
            staged_batches: RefCell::default(),
            commits_left: RefCell::default(),
            logs: RefCell::default(),
        }
    }

    fn stage<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut staged = self.staged.borrow_mut();
        let state = staged.get_or_insert_with(|| self.committed.borrow().clone());
        f(state)
    }

    /// Drops what was staged, as a crashed run would.
    pub fn abandon(&self) {
        self.staged.borrow_mut().take();
        self.staged_batches.borrow_mut().clear();
    }

    pub fn changes(&self) -> Vec<RecordChange> {
        self.batches.borrow().iter().flatten().cloned().collect()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.logs
            .borrow()
            .iter()
            .filter(|(l, _)| *l == Level::Warn)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Host for MemoryHost {
    type Body = Cursor<Vec<u8>>;

    fn send(&self, request: Request) -> Result<Response<Self::Body>, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        (self.responder.borrow_mut())(&request)
    }

    fn send_all(&self, requests: Vec<Request>) -> Vec<Result<Response<Self::Body>, HttpError>> {
        self.sent_together
            .borrow_mut()
            .push(requests.iter().map(|r| r.url.clone()).collect());
        requests.into_iter().map(|r| self.send(r)).collect()
    }

    fn get(&self, key: &str) -> Option<String> {
        self.committed.borrow().points.get(key).cloned()
    }

    fn set(&self, key: &str, value: &str) {
        self.stage(|s| s.points.insert(key.to_string(), value.to_string()));
    }

    fn lookup(&self, external_ids: &[String]) -> Vec<Option<Record>> {
        let state = self.committed.borrow();
        external_ids
            .iter()
            .map(|id| state.known.get(id).cloned())
            .collect()
    }

    fn list_under(&self, path: &str, order: Order, after: Option<&str>, limit: u32) -> Vec<Record> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let mut under: Vec<Record> = self
            .committed
            .borrow()
            .known
            .values()
            .filter(|r| r.path.starts_with(&prefix) && r.path != "/")
            .cloned()
            .collect();
        under.sort_by(|a, b| a.path.cmp(&b.path));
        if order == Order::ChildrenFirst {
            under.reverse();
        }
        under
            .into_iter()
            .filter(|r| match (after, order) {
                (None, _) => true,
                (Some(a), Order::ParentsFirst) => r.path.as_str() > a,
                (Some(a), Order::ChildrenFirst) => r.path.as_str() < a,
            })
            .take(limit as usize)
            .collect()
    }

    fn children(&self, parent_external_id: &str, after: Option<&str>, limit: u32) -> Vec<Record> {
        let mut children: Vec<Record> = self
            .committed
            .borrow()
            .known
            .values()
            .filter(|r| r.parent_external_id.as_deref() == Some(parent_external_id))
            .filter(|r| after.is_none_or(|a| r.path.as_str() > a))
            .cloned()
            .collect();
        children.sort_by(|a, b| a.path.cmp(&b.path));
        children.truncate(limit as usize);
        children
    }

    fn put(&self, records: &[Record]) {
        // The real host traps the call.
        for r in records {
            assert!(
                is_account_path(&r.path),
                "storage.put: the host refuses record {} at `{}`, not a path inside the account",
                r.external_id,
                r.path
            );
        }
        self.stage(|s| {
            for r in records {
                s.known.insert(r.external_id.clone(), r.clone());
            }
        });
    }

    fn remove(&self, external_ids: &[String]) {
        self.stage(|s| {
            for id in external_ids {
                s.known.remove(id);
            }
        });
    }

    fn commit(&self) -> Result<(), String> {
        if let Some(left) = self.commits_left.borrow_mut().as_mut() {
            if *left == 0 {
                return Err("injected commit failure".into());
            }
            *left -= 1;
        }
        if let Some(state) = self.staged.borrow_mut().take() {
            *self.committed.borrow_mut() = state;
        }
        self.batches
            .borrow_mut()
            .extend(self.staged_batches.borrow_mut().drain(..));
        Ok(())
    }

    fn on_user(&self, user: &User) -> Result<(), String> {
        self.stage(|s| s.users.push(user.clone()));
        Ok(())
    }

    fn on_record_group(&self, group: &RecordGroup) -> Result<(), String> {
        self.stage(|s| s.groups.push(group.clone()));
        Ok(())
    }

    fn on_changes(&self, changes: &[RecordChange]) -> Result<(), String> {
        // The real host answers with an error and keeps none of the batch.
        for c in changes {
            if let RecordChange::New(r)
            | RecordChange::ContentUpdated(r)
            | RecordChange::MetadataUpdated(r) = c
                && !is_account_path(&r.path)
            {
                return Err(format!(
                    "the path `{}` of record {} is not a path inside the account",
                    r.path, r.external_id
                ));
            }
        }
        self.stage(|s| {
            for c in changes {
                match c {
                    RecordChange::New(r)
                    | RecordChange::ContentUpdated(r)
                    | RecordChange::MetadataUpdated(r) => {
                        s.sink.insert(r.external_id.clone(), r.clone());
                    }
                    RecordChange::Deleted(id) => {
                        s.sink.remove(id);
                    }
                }
            }
        });
        self.staged_batches.borrow_mut().push(changes.to_vec());
        Ok(())
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn progress(&self, _phase: &str, _done: u64, _total: Option<u64>) {}
}

/// One `<d:response>` the way Nextcloud 32 writes it.
pub struct DavNode<'a> {
    pub href: &'a str,
    pub fileid: u64,
    pub folder: bool,
    pub etag: &'a str,
    pub size: u64,
}

pub fn multistatus(nodes: &[DavNode]) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">"#,
    );
    for n in nodes {
        let (kind, letters, extra, missing) = if n.folder {
            (
                "<d:collection/>",
                "RGDNVCK",
                String::new(),
                "<d:getcontentlength/><d:getcontenttype/><oc:checksums/>",
            )
        } else {
            (
                "",
                "RGDNVW",
                format!(
                    "<d:getcontentlength>{}</d:getcontentlength><d:getcontenttype>text/plain</d:getcontenttype>",
                    n.size
                ),
                "<oc:checksums/>",
            )
        };
        out.push_str(&format!(
            "<d:response><d:href>{}</d:href><d:propstat><d:prop><d:getetag>&quot;{}&quot;</d:getetag>\
             <d:getlastmodified>Sat, 28 Nov 2026 16:40:11 GMT</d:getlastmodified>{extra}<d:resourcetype>{kind}</d:resourcetype>\
             <oc:fileid>{}</oc:fileid><oc:permissions>{letters}</oc:permissions><oc:size>{}</oc:size>\
             <nc:creation_time>0</nc:creation_time><oc:owner-id>alice</oc:owner-id></d:prop>\
             <d:status>HTTP/1.1 200 OK</d:status></d:propstat><d:propstat><d:prop>{missing}</d:prop>\
             <d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>",
            n.href, n.etag, n.fileid, n.size
        ));
    }
    out.push_str("</d:multistatus>");
    out
}
