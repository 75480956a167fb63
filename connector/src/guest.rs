//! The WIT shell: implements the core's `Host` over the imports and
//! forwards the exports to `Connector`. No logic lives here.

use std::cell::RefCell;
use std::io::Read;

use crate::Connector;
use crate::download::{StreamInfo, StreamOptions};
use crate::error::{Error, HttpError};
use crate::host::{Host, Level, Request, Response};
use crate::model;

wit_bindgen::generate!({
    world: "connector",
    path: "../wit",
});

/// What this connector asks the host to grant it: reads only. The host reads
/// the section before it compiles the component; `host-runner inspect` shows it.
const MANIFEST: &[u8] = br#"{"capabilities":["server.status","server.capabilities","user.read","activity.read","shares.read","files.read","files.search"]}"#;

#[unsafe(link_section = "nextcloud-connector:capabilities")]
#[used]
static CAPABILITIES: [u8; MANIFEST.len()] = {
    let mut bytes = [0u8; MANIFEST.len()];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = MANIFEST[i];
        i += 1;
    }
    bytes
};

use exports::nextcloud::connector::lifecycle as wit;
use nextcloud::connector::{content, http, log, records, storage, types};

thread_local! {
    static CONNECTOR: RefCell<Option<Connector>> = const { RefCell::new(None) };
}

fn with_connector<T>(f: impl FnOnce(&Connector) -> Result<T, Error>) -> Result<T, wit::Error> {
    CONNECTOR.with(|c| match c.borrow().as_ref() {
        Some(connector) => f(connector).map_err(Into::into),
        None => Err(wit::Error::Config("init was not called".into())),
    })
}

struct Component;

impl wit::Guest for Component {
    fn init(config: wit::Config) -> Result<(), wit::Error> {
        let connector = Connector::new(config.into())?;
        CONNECTOR.with(|c| *c.borrow_mut() = Some(connector));
        Ok(())
    }

    fn test_connection() -> Result<wit::ConnectionInfo, wit::Error> {
        with_connector(|c| c.test_connection(&WitHost)).map(|i| wit::ConnectionInfo {
            user_id: i.user_id,
            display_name: i.display_name,
            email: i.email,
            server_version: i.server_version,
            activity_available: i.activity_available,
        })
    }

    fn run_sync() -> Result<wit::SyncSummary, wit::Error> {
        with_connector(|c| c.run_sync(&WitHost)).map(|s| wit::SyncSummary {
            mode: match s.mode {
                model::SyncMode::Full => wit::SyncMode::Full,
                model::SyncMode::Incremental => wit::SyncMode::Incremental,
            },
            new: s.new,
            content_updated: s.content_updated,
            metadata_updated: s.metadata_updated,
            deleted: s.deleted,
            unchanged: s.unchanged,
        })
    }

    fn stream_record(
        record: types::Record,
        destination: &content::Destination,
        options: wit::StreamOptions,
    ) -> Result<wit::StreamInfo, wit::Error> {
        let options = StreamOptions {
            offset: options.offset,
            if_match: options.if_match,
        };
        let record = model::Record::from(record);
        with_connector(|c| {
            c.stream_record(
                &WitHost,
                &record,
                &options,
                &mut WitDestination(destination),
            )
        })
        .map(|i: StreamInfo| wit::StreamInfo {
            written: i.written,
            etag: i.etag,
            resumed: i.resumed,
            verified: i.verified,
            checksum: i.checksum,
        })
    }
}

/// The host's `destination` resource as the core sees it.
struct WitDestination<'a>(&'a content::Destination);

impl crate::download::Destination for WitDestination<'_> {
    fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.0.write(chunk)
    }

    fn restart(&mut self) -> Result<(), String> {
        self.0.restart()
    }
}

export!(Component);

struct WitHost;

/// A response body read through the host's `body` resource.
pub struct BodyReader(http::Body);

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(u32::MAX as usize) as u32;
        loop {
            match self.0.read(max) {
                Ok(None) => return Ok(0),
                Ok(Some(chunk)) if chunk.is_empty() => continue,
                Ok(Some(chunk)) => {
                    // The host never sends more than asked; refuse rather than lose bytes.
                    if chunk.len() > buf.len() {
                        return Err(std::io::Error::other(HttpError::TooLarge(
                            "the host sent a larger chunk than asked for".into(),
                        )));
                    }
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    return Ok(chunk.len());
                }
                Err(e) => return Err(std::io::Error::other(HttpError::from(e))),
            }
        }
    }
}

impl Host for WitHost {
    type Body = BodyReader;

    fn send(&self, request: Request) -> Result<Response<BodyReader>, HttpError> {
        http::send(&to_wit_request(request))
            .map(from_wit_response)
            .map_err(HttpError::from)
    }

    fn send_all(&self, requests: Vec<Request>) -> Vec<Result<Response<BodyReader>, HttpError>> {
        let requests: Vec<http::Request> = requests.into_iter().map(to_wit_request).collect();
        http::send_all(&requests)
            .into_iter()
            .map(|r| r.map(from_wit_response).map_err(HttpError::from))
            .collect()
    }

    fn get(&self, key: &str) -> Option<String> {
        storage::get(key)
    }

    fn set(&self, key: &str, value: &str) {
        storage::set(key, value)
    }

    fn lookup(&self, external_ids: &[String]) -> Vec<Option<model::Record>> {
        storage::lookup(external_ids)
            .into_iter()
            .map(|r| r.map(model::Record::from))
            .collect()
    }

    fn list_under(
        &self,
        path: &str,
        order: model::Order,
        after: Option<&str>,
        limit: u32,
    ) -> Vec<model::Record> {
        storage::list_under(path, wit_order(order), after, limit)
            .into_iter()
            .map(model::Record::from)
            .collect()
    }

    fn list_paths_under(
        &self,
        path: &str,
        order: model::Order,
        after: Option<&str>,
        limit: u32,
    ) -> Vec<(String, String)> {
        storage::list_paths_under(path, wit_order(order), after, limit)
            .into_iter()
            .map(|k| (k.external_id, k.path))
            .collect()
    }

    fn children(
        &self,
        parent_external_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Vec<model::Record> {
        storage::children(parent_external_id, after, limit)
            .into_iter()
            .map(model::Record::from)
            .collect()
    }

    fn put(&self, records: &[model::Record]) {
        let records: Vec<types::Record> = records.iter().cloned().map(Into::into).collect();
        storage::put(&records)
    }

    fn remove(&self, external_ids: &[String]) {
        storage::remove(external_ids)
    }

    fn commit(&self) -> Result<(), String> {
        storage::commit()
    }

    fn on_user(&self, user: &model::User) -> Result<(), String> {
        records::on_user(&types::User {
            id: user.id.clone(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
        })
    }

    fn on_record_group(&self, group: &model::RecordGroup) -> Result<(), String> {
        // The shared shape keeps the kind as the text the stores hold; the
        // WIT knows one kind, and a core that named another is a bug to
        // report, not a drive to invent.
        let kind = match group.kind.as_str() {
            model::RecordGroup::DRIVE => types::RecordGroupKind::Drive,
            other => return Err(format!("record group kind `{other}` is not in the WIT")),
        };
        records::on_record_group(&types::RecordGroup {
            external_id: group.external_id.clone(),
            name: group.name.clone(),
            kind,
            owner: group.owner.clone(),
        })
    }

    fn on_changes(&self, changes: &[model::RecordChange]) -> Result<(), String> {
        let changes: Vec<types::RecordChange> = changes
            .iter()
            .cloned()
            .map(|c| match c {
                model::RecordChange::New(r) => types::RecordChange::New(r.into()),
                model::RecordChange::ContentUpdated(r) => {
                    types::RecordChange::ContentUpdated(r.into())
                }
                model::RecordChange::MetadataUpdated(r) => {
                    types::RecordChange::MetadataUpdated(r.into())
                }
                model::RecordChange::Deleted(id) => types::RecordChange::Deleted(id),
            })
            .collect();
        records::on_changes(&changes)
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
        };
        log::log(level, message)
    }

    fn progress(&self, phase: &str, done: u64, total: Option<u64>) {
        log::progress(phase, done, total)
    }
}

fn to_wit_request(r: Request) -> http::Request {
    http::Request {
        method: r.method,
        url: r.url,
        headers: r
            .headers
            .into_iter()
            .map(|(name, value)| http::Header { name, value })
            .collect(),
        body: r.body,
    }
}

fn from_wit_response(r: http::Response) -> Response<BodyReader> {
    Response {
        status: r.status,
        headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: BodyReader(r.body),
    }
}

impl From<http::HttpError> for HttpError {
    fn from(e: http::HttpError) -> Self {
        match e {
            http::HttpError::Refused(m) => HttpError::Refused(m),
            http::HttpError::Unauthorized(m) => HttpError::Unauthorized(m),
            http::HttpError::Timeout(m) => HttpError::Timeout(m),
            http::HttpError::Connection(m) => HttpError::Connection(m),
            http::HttpError::TooLarge(m) => HttpError::TooLarge(m),
        }
    }
}

/// The case names the kind; the message is without the kind's prefix, which
/// the host adds when it shows the error (`storage: storage: …` otherwise).
impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(m) => wit::Error::Config(m),
            Error::Unauthorized(m) => wit::Error::Unauthorized(m),
            Error::Http(m) => wit::Error::Http(m),
            Error::Protocol(m) => wit::Error::Protocol(m),
            Error::Storage(m) => wit::Error::Storage(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::Content(m) => wit::Error::Content(m),
        }
    }
}

impl From<wit::Config> for model::Config {
    fn from(c: wit::Config) -> Self {
        model::Config {
            base_url: c.base_url,
            username: c.username,
            batch_size: c.batch_size,
            filters: model::Filters {
                include_extensions: c.filters.include_extensions,
                exclude_extensions: c.filters.exclude_extensions,
                modified_after: c.filters.modified_after,
                modified_before: c.filters.modified_before,
                created_after: c.filters.created_after,
                created_before: c.filters.created_before,
            },
            reconcile_interval: c.reconcile_interval,
            now: c.now,
        }
    }
}

impl From<types::Record> for model::Record {
    fn from(r: types::Record) -> Self {
        model::Record {
            external_id: r.external_id,
            parent_external_id: r.parent_external_id,
            path: r.path,
            name: r.name,
            is_folder: r.is_folder,
            etag: r.etag,
            size: r.size,
            mime_type: r.mime_type,
            modified: r.modified,
            created: r.created,
            permission_letters: r.permission_letters,
            permissions: r.permissions.into_iter().map(Into::into).collect(),
            owner_id: r.owner_id,
            checksums: r.checksums,
        }
    }
}

impl From<model::Record> for types::Record {
    fn from(r: model::Record) -> Self {
        types::Record {
            external_id: r.external_id,
            parent_external_id: r.parent_external_id,
            path: r.path,
            name: r.name,
            is_folder: r.is_folder,
            etag: r.etag,
            size: r.size,
            mime_type: r.mime_type,
            modified: r.modified,
            created: r.created,
            permission_letters: r.permission_letters,
            permissions: r.permissions.into_iter().map(Into::into).collect(),
            owner_id: r.owner_id,
            checksums: r.checksums,
        }
    }
}

impl From<types::Permission> for model::Permission {
    fn from(p: types::Permission) -> Self {
        model::Permission {
            principal: match p.principal {
                types::Principal::User(u) => model::Principal::User {
                    id: u.id,
                    email: u.email,
                },
                types::Principal::Group(id) => model::Principal::Group { id },
                types::Principal::AnyoneWithLink(l) => model::Principal::AnyoneWithLink {
                    share_id: l.share_id,
                    expires: l.expires,
                },
                types::Principal::Federated(id) => model::Principal::Federated { id },
            },
            level: match p.level {
                types::PermissionLevel::Owner => model::PermissionLevel::Owner,
                types::PermissionLevel::Write => model::PermissionLevel::Write,
                types::PermissionLevel::Read => model::PermissionLevel::Read,
            },
        }
    }
}

impl From<model::Permission> for types::Permission {
    fn from(p: model::Permission) -> Self {
        types::Permission {
            principal: match p.principal {
                model::Principal::User { id, email } => {
                    types::Principal::User(types::UserPrincipal { id, email })
                }
                model::Principal::Group { id } => types::Principal::Group(id),
                model::Principal::AnyoneWithLink { share_id, expires } => {
                    types::Principal::AnyoneWithLink(types::LinkPrincipal { share_id, expires })
                }
                model::Principal::Federated { id } => types::Principal::Federated(id),
            },
            level: match p.level {
                model::PermissionLevel::Owner => types::PermissionLevel::Owner,
                model::PermissionLevel::Write => types::PermissionLevel::Write,
                model::PermissionLevel::Read => types::PermissionLevel::Read,
            },
        }
    }
}

fn wit_order(order: model::Order) -> storage::Order {
    match order {
        model::Order::ParentsFirst => storage::Order::ParentsFirst,
        model::Order::ChildrenFirst => storage::Order::ChildrenFirst,
    }
}
