//! The host as the core sees it. `guest.rs` implements this over the WIT
//! imports; native tests implement it in memory.

use crate::error::{Error, HttpError};
use crate::model::{Order, Record, RecordChange, RecordGroup, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, url: String) -> Self {
        Request {
            method: method.to_string(),
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

pub struct Response<B> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: B,
}

impl<B> Response<B> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request's answer, or why there is none.
pub type Answer<B> = Result<Response<B>, HttpError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

pub trait Host {
    /// A response body; read errors carry an [`HttpError`] inside the `io::Error`.
    type Body: std::io::Read;

    fn send(&self, request: Request) -> Result<Response<Self::Body>, HttpError>;
    fn send_all(&self, requests: Vec<Request>) -> Vec<Answer<Self::Body>>;

    fn get(&self, key: &str) -> Option<String>;
    fn set(&self, key: &str, value: &str);
    fn lookup(&self, external_ids: &[String]) -> Vec<Option<Record>>;
    fn list_under(&self, path: &str, order: Order, after: Option<&str>, limit: u32) -> Vec<Record>;
    /// `(external id, path)` of what [`Host::list_under`] gives.
    fn list_paths_under(
        &self,
        path: &str,
        order: Order,
        after: Option<&str>,
        limit: u32,
    ) -> Vec<(String, String)> {
        self.list_under(path, order, after, limit)
            .into_iter()
            .map(|r| (r.external_id, r.path))
            .collect()
    }
    fn children(&self, parent_external_id: &str, after: Option<&str>, limit: u32) -> Vec<Record>;
    fn put(&self, records: &[Record]);
    fn remove(&self, external_ids: &[String]);
    fn commit(&self) -> Result<(), String>;

    fn on_user(&self, user: &User) -> Result<(), String>;
    fn on_record_group(&self, group: &RecordGroup) -> Result<(), String>;
    fn on_changes(&self, changes: &[RecordChange]) -> Result<(), String>;

    fn log(&self, level: Level, message: &str);
    fn progress(&self, phase: &str, done: u64, total: Option<u64>);
}

/// Every answer of [`Host::send_all`], one per request in the order asked:
/// a host that lost or invented an answer would pair each later answer with
/// the wrong request.
pub fn send_each<H: Host>(host: &H, requests: Vec<Request>) -> Result<Vec<Answer<H::Body>>, Error> {
    let asked = requests.len();
    let answers = host.send_all(requests);
    if answers.len() != asked {
        return Err(Error::Http(format!(
            "the host answered {} of {asked} requests",
            answers.len()
        )));
    }
    Ok(answers)
}
