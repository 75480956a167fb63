//! The Nextcloud connector: a WebAssembly component that mirrors a user's
//! files and folders into the host's records sink.
//!
//! Everything here is plain Rust that builds and is tested natively; the
//! WIT bindings in `guest.rs` are a thin shell that implements [`host::Host`]
//! over the imports and forwards the exports to [`Connector`].

pub mod access;
pub mod activity;
pub mod batch;
pub mod checksum;
pub mod download;
pub mod entry;
pub mod error;
pub mod filter;
pub mod full;
pub mod host;
pub mod href;
pub mod incremental;
pub mod mime;
pub mod model;
pub mod ocs;
pub mod permissions;
pub mod propfind;
pub mod reconcile;
pub mod run;
pub mod search;

#[cfg(test)]
mod full_tests;
#[cfg(target_arch = "wasm32")]
mod guest;
#[cfg(test)]
mod testing;

use std::io::Read;

use access::{Access, Grant};
use entry::Identity;
use error::{Error, HttpError};
use filter::Filter;
use host::{Host, Level, Request};
use href::DavRoot;
use model::{Config, ConnectionInfo, RecordGroup, SyncMode, SyncSummary, User};
use run::Run;

/// Sync point keys, one name each in storage.
pub mod keys {
    /// The identity last sent to the sink (JSON), so incremental runs need no
    /// identity request and the sink hears of it only when it changes.
    pub const USER: &str = "user";
    /// Unix seconds of the last complete full listing; none means the next run is full.
    pub const LISTED_AT: &str = "listed_at";
    /// Unix seconds of the last full listing or etag reconcile.
    pub const RECONCILED_AT: &str = "reconciled_at";
    /// The activity id every committed record is current to; empty when the
    /// server has no Activity app.
    pub const CURSOR: &str = "cursor";
    /// The filter the records were selected by; another one needs a full listing.
    pub const FILTER: &str = "filter";
    /// The share grants (JSON) the records' permissions were computed from.
    pub const SHARES: &str = "shares";
    /// Folders (external ids, space-separated) whose etag was updated without
    /// reading what is below them; the next reconcile descends into them
    /// whatever their etag says, since a change the Activity app never
    /// reported may hide there.
    pub const UNVERIFIED: &str = "unverified";
    /// Where the items an incremental run set out to refresh were known
    /// when it began (JSON: file id → paths), committed before any of its
    /// records. The Activity stream names only an item's new path, so once a
    /// record at its new path is committed, the folders it left are found
    /// nowhere else: a run that stops before refreshing them leaves this for
    /// the next one. Cleared with the cursor.
    pub const PRIOR_PATHS: &str = "prior_paths";
}

/// Largest OCS answer read (a `cloud/user` answer is about 1 KiB).
const OCS_BODY_CAP: usize = 1024 * 1024;
/// Largest share list read: about 1 KiB a share.
const SHARES_BODY_CAP: usize = 64 * 1024 * 1024;

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

    /// Full when nothing was listed yet (or the filter changed); otherwise
    /// incremental by the activity cursor, or by an etag reconcile when the
    /// stream cannot say (no Activity app, an expired cursor) or the
    /// reconcile interval passed.
    pub fn run_sync<H: Host>(&self, host: &H) -> Result<SyncSummary, Error> {
        let stored = host
            .get(keys::USER)
            .and_then(|json| serde_json::from_str::<Identity>(&json).ok());
        let listed = host.get(keys::LISTED_AT).is_some();
        let same_filter =
            host.get(keys::FILTER).as_deref() == Some(self.filter().fingerprint().as_str());
        let Some(who) = stored.filter(|_| listed && same_filter) else {
            return self.full_sync(host);
        };
        let root = self.dav_root(&who)?;
        let reconciled_at = host
            .get(keys::RECONCILED_AT)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        let due =
            self.config.now.saturating_sub(reconciled_at) >= self.config.reconcile_interval as i64;
        let shares = self.shares(host)?;
        let stored: Vec<Grant> = host
            .get(keys::SHARES)
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let regrant = access::changed_roots(&stored, &shares);
        let shares_point = (keys::SHARES, shares_json(&shares)?);
        let cursor = host.get(keys::CURSOR).and_then(|c| c.parse::<u64>().ok());
        match cursor {
            Some(cursor) if !due => {
                let run = self.run(host, &root, &who, &shares, SyncMode::Incremental);
                let outcome = incremental::incremental(
                    run,
                    &self.config.base_url,
                    cursor,
                    &regrant,
                    shares_point.clone(),
                )?;
                match outcome {
                    incremental::Outcome::Synced(summary) => return Ok(summary),
                    incremental::Outcome::Gap(why) => {
                        host.log(Level::Info, &format!("reconciling by etags: {why}"));
                    }
                }
            }
            Some(_) => host.log(
                Level::Info,
                "reconciling by etags: the reconcile interval has passed",
            ),
            None => host.log(
                Level::Info,
                "reconciling by etags: the server has no Activity app",
            ),
        }
        // Read before the walk: what changes during it is replayed next time.
        // Without an Activity app, ask again only when a reconcile is due, so
        // that an unchanged account still costs two requests.
        let cursor = match cursor {
            None if !due => None,
            _ => self.newest_activity(host)?,
        };
        let run = self.run(host, &root, &who, &shares, SyncMode::Incremental);
        let mut points = self.sync_points(cursor, false);
        points.push(shares_point);
        reconcile::reconcile(run, &regrant, &points)
    }

    fn filter(&self) -> Filter {
        Filter::new(&self.config.filters)
    }

    fn run<'h, H: Host>(
        &self,
        host: &'h H,
        root: &'h DavRoot,
        who: &'h Identity,
        shares: &[Grant],
        mode: SyncMode,
    ) -> Run<'h, H> {
        Run::new(
            host,
            root,
            who,
            self.filter(),
            Access::new(shares),
            self.config.batch_size,
            mode,
        )
    }

    fn dav_root(&self, who: &Identity) -> Result<DavRoot, Error> {
        DavRoot::new(&self.config.base_url, &who.user_id).map_err(Error::Config)
    }

    fn full_sync<H: Host>(&self, host: &H) -> Result<SyncSummary, Error> {
        let who = self.identify(host)?;
        let root = self.dav_root(&who)?;
        self.publish_identity(host, &who)?;
        // Read before listing: what changes during the listing is replayed next time.
        let cursor = self.newest_activity(host)?;
        let shares = self.shares(host)?;
        let run = self.run(host, &root, &who, &shares, SyncMode::Full);
        let mut points = self.sync_points(cursor, true);
        points.push((keys::SHARES, shares_json(&shares)?));
        full::full(run, &points)
    }

    /// What the user shared, and with whom. A server without the sharing
    /// app has no shares.
    fn shares<H: Host>(&self, host: &H) -> Result<Vec<Grant>, Error> {
        let response = host.send(
            Request::new(
                "GET",
                self.ocs_url("apps/files_sharing/api/v1/shares?format=json&reshares=true"),
            )
            .header("OCS-APIRequest", "true")
            .header("Accept", "application/json"),
        )?;
        match response.status {
            200 => {
                let (grants, skipped) =
                    access::parse_shares(&read_body(response.body, SHARES_BODY_CAP)?)?;
                for s in skipped {
                    host.log(
                        Level::Info,
                        &format!("not modelled, left out of permissions: {s}"),
                    );
                }
                Ok(grants)
            }
            404 => {
                host.log(
                    Level::Info,
                    "no sharing app on the server: no shares to map",
                );
                Ok(Vec::new())
            }
            status => Err(Error::status("reading the share list", status)),
        }
    }

    fn sync_points(&self, cursor: Option<u64>, listed: bool) -> Vec<(&'static str, String)> {
        let now = self.config.now.to_string();
        let mut points = vec![
            (keys::RECONCILED_AT, now.clone()),
            (
                keys::CURSOR,
                cursor.map(|c| c.to_string()).unwrap_or_default(),
            ),
            // A listing or reconcile reads every folder it could have left stale.
            (keys::PRIOR_PATHS, String::new()),
        ];
        if listed {
            points.push((keys::LISTED_AT, now));
            points.push((keys::FILTER, self.filter().fingerprint()));
        }
        points
    }

    /// The newest activity id, or none when the server has no Activity app.
    fn newest_activity<H: Host>(&self, host: &H) -> Result<Option<u64>, Error> {
        let url = incremental::activity_url(&self.config.base_url, "sort=desc&limit=1");
        let response = host.send(
            Request::new("GET", url)
                .header("OCS-APIRequest", "true")
                .header("Accept", "application/json"),
        )?;
        match response.status {
            200 => {
                let body = read_body(response.body, OCS_BODY_CAP)?;
                let page =
                    activity::parse_page(&body).map_err(|e| Error::Protocol(e.to_string()))?;
                Ok(Some(page.first().map(|a| a.id).unwrap_or(0)))
            }
            204 | 304 => Ok(Some(0)),
            status => {
                host.log(
                    Level::Info,
                    &format!("no Activity app (HTTP {status}); changes will be found by etags"),
                );
                Ok(None)
            }
        }
    }

    /// Stages the user and their drive when they differ from what was sent
    /// before; they are committed with the first batch.
    fn publish_identity<H: Host>(&self, host: &H, who: &Identity) -> Result<(), Error> {
        let json = serde_json::to_string(who).map_err(|e| Error::Storage(e.to_string()))?;
        if host.get(keys::USER).as_deref() == Some(json.as_str()) {
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
            kind: RecordGroup::DRIVE.into(),
            owner: who.user_id.clone(),
        })
        .map_err(Error::Storage)?;
        host.set(keys::USER, &json);
        Ok(())
    }
}

impl Connector {
    /// Streams a file's content into `destination`, a chunk at a time.
    pub fn stream_record<H: Host>(
        &self,
        host: &H,
        record: &model::Record,
        options: &download::StreamOptions,
        destination: &mut impl download::Destination,
    ) -> Result<download::StreamInfo, Error> {
        let stored = host
            .get(keys::USER)
            .and_then(|json| serde_json::from_str::<Identity>(&json).ok());
        let user_id = match stored {
            Some(who) => who.user_id,
            None => self.identify(host)?.user_id,
        };
        let root = DavRoot::new(&self.config.base_url, &user_id).map_err(Error::Config)?;
        download::stream(host, &root, record, options, destination)
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

fn shares_json(grants: &[Grant]) -> Result<String, Error> {
    serde_json::to_string(grants).map_err(|e| Error::Storage(e.to_string()))
}

/// Escapes text for an XML element.
pub fn xml_escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
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
