//! The connector's entry points: a configuration checked, a connection
//! tested, a sync run (full, incremental or reconcile, chosen from what the
//! last runs committed), a file streamed.

use crate::access::{self, Access, Grant};
use crate::body::read_body;
use crate::dav::Dav;
use crate::download;
use crate::entry::Identity;
use crate::error::Error;
use crate::filter::Filter;
use crate::full;
use crate::host::{Host, Level, Request};
use crate::href::DavRoot;
use crate::incremental;
use crate::keys;
use crate::model::{self, Config, ConnectionInfo, RecordGroup, SyncMode, SyncSummary, User};
use crate::ocs;
use crate::reconcile;
use crate::run::{Rules, Run};
use crate::server::Server;
use crate::start::{self, OCS_BODY_CAP, send_together};

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

    fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Who the credential belongs to.
    pub fn identify<H: Host>(&self, host: &H) -> Result<Identity, Error> {
        let response = host.send(start::identity_request(self.base_url()))?;
        start::identity::<H>(self.base_url(), response)
    }

    /// One authenticated request first, so that a bad credential costs one
    /// failed login; then the server's version and apps, together.
    pub fn test_connection<H: Host>(&self, host: &H) -> Result<ConnectionInfo, Error> {
        let who = self.identify(host)?;
        let base = self.base_url().trim_end_matches('/');
        let [status, caps] = send_together(
            host,
            [
                Request::new("GET", format!("{base}/status.php")),
                ocs::get(base, ocs::CAPABILITIES, ""),
            ],
        )?;
        let server_version = if status.status == 200 {
            ocs::parse_status(&read_body(status.body, OCS_BODY_CAP)?)?.0
        } else {
            None
        };
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
        let mut server = Server::load(host);
        let stored = host
            .get(keys::USER)
            .and_then(|json| serde_json::from_str::<Identity>(&json).ok());
        let listed = host.get(keys::LISTED_AT).is_some();
        let same_filter =
            host.get(keys::FILTER).as_deref() == Some(self.filter().fingerprint().as_str());
        let Some(who) = stored.filter(|_| listed && same_filter) else {
            return self.full_sync(host, server);
        };
        let root = self.dav_root(&who)?;
        let reconciled_at = host
            .get(keys::RECONCILED_AT)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        let due =
            self.config.now.saturating_sub(reconciled_at) >= self.config.reconcile_interval as i64;
        let cursor = host
            .get(keys::CURSOR)
            .and_then(|c| c.parse::<u64>().ok())
            .filter(|_| server.activity);
        let base = self.base_url();
        let incremental_run = |grants: &[Grant], server| {
            self.run(host, &root, &who, grants, server, SyncMode::Incremental)
        };
        // The newest activity id is read before the walk, so what changes
        // during it is replayed next time. Without an Activity app it is
        // asked again only when a reconcile is due, so that an unchanged
        // account still costs two requests.
        let (shares, newest) = match cursor {
            Some(cursor) if !due => {
                let [shares, page] = send_together(
                    host,
                    [
                        start::shares_request(base),
                        incremental::page_request(base, cursor),
                    ],
                )?;
                let shares = Shares::read(host, shares)?;
                let run = incremental_run(&shares.grants, server);
                let outcome = incremental::incremental(
                    run,
                    base,
                    cursor,
                    page,
                    &shares.regrant,
                    shares.point()?,
                )?;
                match outcome {
                    incremental::Outcome::Synced(summary) => return Ok(summary),
                    incremental::Outcome::Gap(why) => {
                        host.log(Level::Info, &format!("reconciling by etags: {why}"));
                    }
                }
                let newest = host.send(start::newest_activity_request(base))?;
                (shares, Some(newest))
            }
            _ => {
                host.log(
                    Level::Info,
                    if cursor.is_some() {
                        "reconciling by etags: the reconcile interval has passed"
                    } else {
                        "reconciling by etags: the server has no Activity app"
                    },
                );
                if server.activity || due {
                    let [shares, newest] = send_together(
                        host,
                        [
                            start::shares_request(base),
                            start::newest_activity_request(base),
                        ],
                    )?;
                    (Shares::read(host, shares)?, Some(newest))
                } else {
                    (
                        Shares::read(host, host.send(start::shares_request(base))?)?,
                        None,
                    )
                }
            }
        };
        let cursor = match newest {
            Some(response) => {
                let newest = start::newest_activity(host, response)?;
                server.activity = newest.is_some();
                newest
            }
            None => None,
        };
        let run = incremental_run(&shares.grants, server);
        let mut points = self.sync_points(cursor, false);
        points.push(shares.point()?);
        reconcile::reconcile(run, &shares.regrant, &points)
    }

    fn full_sync<H: Host>(&self, host: &H, mut server: Server) -> Result<SyncSummary, Error> {
        let base = self.base_url();
        let [user, activity, shares] = send_together(
            host,
            [
                start::identity_request(base),
                start::newest_activity_request(base),
                start::shares_request(base),
            ],
        )?;
        let who = start::identity::<H>(base, user)?;
        let cursor = start::newest_activity(host, activity)?;
        server.activity = cursor.is_some();
        let shares = start::shares(host, shares)?;
        let root = self.dav_root(&who)?;
        self.publish_identity(host, &who)?;
        let run = self.run(host, &root, &who, &shares, server, SyncMode::Full);
        let mut points = self.sync_points(cursor, true);
        points.push((keys::SHARES, shares_json(&shares)?));
        full::full(run, &points)
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
        server: Server,
        mode: SyncMode,
    ) -> Run<'h, H> {
        let rules = Rules {
            filter: self.filter(),
            access: Access::new(shares),
        };
        Run::new(
            Dav::new(host, root, who, server),
            rules,
            self.config.batch_size,
            mode,
        )
    }

    fn dav_root(&self, who: &Identity) -> Result<DavRoot, Error> {
        DavRoot::new(self.base_url(), &who.user_id).map_err(Error::Config)
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
        let root = DavRoot::new(self.base_url(), &user_id).map_err(Error::Config)?;
        download::stream(host, &root, record, options, destination)
    }
}

/// The share list of an incremental run, against the one its records'
/// permissions were computed from.
struct Shares {
    grants: Vec<Grant>,
    /// Roots whose shares changed: their records are sent again.
    regrant: Vec<String>,
}

impl Shares {
    fn read<H: Host>(host: &H, response: crate::host::Response<H::Body>) -> Result<Shares, Error> {
        let grants = start::shares(host, response)?;
        let stored: Vec<Grant> = host
            .get(keys::SHARES)
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let regrant = access::changed_roots(&stored, &grants);
        Ok(Shares { grants, regrant })
    }

    fn point(&self) -> Result<(&'static str, String), Error> {
        Ok((keys::SHARES, shares_json(&self.grants)?))
    }
}

fn shares_json(grants: &[Grant]) -> Result<String, Error> {
    serde_json::to_string(grants).map_err(|e| Error::Storage(e.to_string()))
}
