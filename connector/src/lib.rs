//! The Nextcloud connector: a WebAssembly component that mirrors a user's
//! files and folders into the host's records sink.
//!
//! Everything here is plain Rust that builds and is tested natively; the
//! WIT bindings in `guest.rs` are a thin shell that implements [`host::Host`]
//! over the imports and forwards the exports to [`Connector`].

pub mod batch;
pub mod download;
pub mod entry;
pub mod error;
pub mod host;
pub mod href;
pub mod listing;
pub mod mime;
pub mod model;
pub mod ocs;
pub mod permissions;
pub mod propfind;

#[cfg(target_arch = "wasm32")]
mod guest;
#[cfg(test)]
mod listing_tests;
#[cfg(test)]
mod testing;

use std::io::Read;

use entry::Identity;
use error::{Error, HttpError};
use host::{Host, Request};
use href::DavRoot;
use model::{Config, ConnectionInfo, RecordGroup, SyncSummary, User};

/// Sync point keys, one name each in storage.
pub mod keys {
    /// The identity last sent to the sink, to send it again only when it changes.
    pub const USER: &str = "user";
    /// Unix seconds of the last complete listing.
    pub const LISTED_AT: &str = "listed_at";
    /// The DAV user id, so downloads need no identity request.
    pub const USER_ID: &str = "user_id";
}

/// Largest OCS answer read (a `cloud/user` answer is about 1 KiB).
const OCS_BODY_CAP: usize = 1024 * 1024;

pub struct Connector {
    config: Config,
}

impl Connector {
    pub fn new(config: Config) -> Result<Self, Error> {
        if config.username.trim().is_empty() {
            return Err(Error::Config("username is empty".into()));
        }
        if config.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        // Validates the base URL before any request is made.
        DavRoot::new(&config.base_url, &config.username).map_err(Error::Config)?;
        Ok(Connector { config })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn ocs_url(&self, path: &str) -> String {
        format!(
            "{}/ocs/v2.php/{path}",
            self.config.base_url.trim_end_matches('/')
        )
    }

    /// Who the credential belongs to. The user id may differ from the login
    /// name (LDAP, e-mail logins) and is what DAV paths use.
    pub fn identify<H: Host>(&self, host: &H) -> Result<Identity, Error> {
        let request = Request::new("GET", self.ocs_url("cloud/user?format=json"))
            .header("OCS-APIRequest", "true")
            .header("Accept", "application/json");
        let response = host.send(request)?;
        match response.status {
            200 => ocs::parse_user(&read_body(response.body, OCS_BODY_CAP)?),
            404 => Err(Error::Http(format!(
                "no Nextcloud answered at {} (HTTP 404 for the OCS user endpoint); check base_url",
                self.config.base_url
            ))),
            status => Err(Error::status("reading the user's identity", status)),
        }
    }

    /// One authenticated request first, so that a bad credential costs one
    /// failed login; the rest are anonymous-capable reads.
    pub fn test_connection<H: Host>(&self, host: &H) -> Result<ConnectionInfo, Error> {
        let who = self.identify(host)?;
        let base = self.config.base_url.trim_end_matches('/');
        let status = host.send(Request::new("GET", format!("{base}/status.php")))?;
        let server_version = if status.status == 200 {
            ocs::parse_status(&read_body(status.body, OCS_BODY_CAP)?)?.0
        } else {
            None
        };
        let caps = host.send(
            Request::new("GET", self.ocs_url("cloud/capabilities?format=json"))
                .header("OCS-APIRequest", "true")
                .header("Accept", "application/json"),
        )?;
        let activity_available =
            caps.status == 200 && ocs::activity_available(&read_body(caps.body, OCS_BODY_CAP)?)?;
        Ok(ConnectionInfo {
            user_id: who.user_id,
            display_name: who.display_name,
            email: who.email,
            server_version,
            activity_available,
        })
    }

    /// Full when there is no cursor, incremental otherwise.
    pub fn run_sync<H: Host>(&self, host: &H) -> Result<SyncSummary, Error> {
        let who = self.identify(host)?;
        let root = DavRoot::new(&self.config.base_url, &who.user_id).map_err(Error::Config)?;
        self.publish_identity(host, &who)?;
        listing::Listing::new(host, &root, &who, self.config.batch_size)
            .run(&[(keys::LISTED_AT, self.config.now.to_string())])
    }

    /// Stages the user and their drive when they differ from what was sent
    /// before; they are committed with the first batch.
    fn publish_identity<H: Host>(&self, host: &H, who: &Identity) -> Result<(), Error> {
        let fingerprint = format!(
            "{}\n{}\n{}",
            who.user_id,
            who.display_name,
            who.email.as_deref().unwrap_or("")
        );
        if host.get(keys::USER).as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        host.on_user(&User {
            id: who.user_id.clone(),
            display_name: who.display_name.clone(),
            email: who.email.clone(),
        })
        .map_err(Error::Storage)?;
        host.on_record_group(&RecordGroup {
            external_id: format!("nextcloud:{}", who.user_id),
            name: format!("Nextcloud - {}", self.config.username),
            owner: who.user_id.clone(),
        })
        .map_err(Error::Storage)?;
        host.set(keys::USER, &fingerprint);
        host.set(keys::USER_ID, &who.user_id);
        Ok(())
    }
}

impl Connector {
    /// Streams a file's content into `write`, a chunk at a time.
    pub fn stream_record<H: Host>(
        &self,
        host: &H,
        record: &model::Record,
        options: &download::StreamOptions,
        write: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<download::StreamInfo, Error> {
        let user_id = match host.get(keys::USER_ID) {
            Some(id) => id,
            None => self.identify(host)?.user_id,
        };
        let root = DavRoot::new(&self.config.base_url, &user_id).map_err(Error::Config)?;
        download::stream(host, &root, record, options, write)
    }
}

/// Reads a whole body that is expected to be small, refusing one past `cap`.
pub fn read_body<R: Read>(body: R, cap: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    body.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(io_error)?;
    if out.len() > cap {
        return Err(Error::Http(format!(
            "response body larger than {cap} bytes"
        )));
    }
    Ok(out)
}

/// Body read errors carry the host's [`HttpError`] when it has one.
pub fn io_error(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<HttpError>())
    {
        Some(http) => Error::from(http.clone()),
        None => Error::Http(format!("reading the response: {e}")),
    }
}
