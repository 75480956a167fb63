//! What the CLI does, as functions the tests call in-process.

use crate::capability::Grants;
use crate::config::Config;
use crate::content::Destination;
use crate::error::{Error, Result};
use crate::http::{ClientOptions, HttpClient};
use crate::identity;
use crate::lock::AccountGuard;
use crate::progress::{NoProgress, ProgressSink};
use crate::runtime::bindings::exports::nextcloud::connector::lifecycle as life;
use crate::runtime::{LoadedComponent, Session, SessionParts};
use crate::stop::StopFlag;
use crate::store::{SinkRecord, Store};
use crate::timefmt::now_unix;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// How to run the connector.
#[derive(Clone)]
pub struct RunOptions {
    /// The component; `None` searches (see [`crate::runtime::locate_component`]).
    pub component: Option<PathBuf>,
    /// Where `log.progress` goes.
    pub progress: Arc<dyn ProgressSink>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            component: None,
            progress: Arc::new(NoProgress),
        }
    }
}

impl RunOptions {
    pub fn with_component(path: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            component: Some(path.into()),
            ..RunOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    Full,
    Incremental,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// What one sync did: the counts are the connector's, `requests` the host's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub mode: SyncMode,
    pub new: u64,
    pub content_updated: u64,
    pub metadata_updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub requests: u64,
    /// Response body bytes read (headers not counted).
    pub bytes_received: u64,
    pub duration_ms: u64,
    /// Of `requests`, the retries (after a 429, 502, 503, 504, 423 or a reset).
    pub retries: u64,
    /// `records.on-changes` calls, each at most `batch_size` changes.
    pub sink_calls: u64,
    /// The most changes one of them carried.
    pub largest_batch: u64,
    /// Storage commits, each at most `batch_size` changes.
    pub commits: u64,
}

impl SyncReport {
    /// Records that changed in any way.
    pub fn changes(&self) -> u64 {
        self.new + self.content_updated + self.metadata_updated + self.deleted
    }
}

/// What `test-connection` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    pub user_id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub server_version: Option<String>,
    pub activity_available: bool,
    pub requests: u64,
    pub duration_ms: u64,
}

/// What `stream_record` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamReport {
    /// Bytes the host received.
    pub written: u64,
    pub etag: Option<String>,
    pub resumed: bool,
    pub verified: Option<String>,
    /// The server's checksum for the whole content, when it has one the
    /// connector understands; set without `verified` after a resumed
    /// transfer, which the caller must check itself.
    pub checksum: Option<String>,
    pub requests: u64,
}

/// A started connector: secret read, component loaded, database open, `init` done.
struct Run {
    session: Session,
    http: Arc<HttpClient>,
    progress: Arc<dyn ProgressSink>,
    started: Instant,
}

impl Run {
    fn start(config: &Config, options: &RunOptions) -> Result<Run> {
        Run::start_with(config, options, ClientOptions::default(), None)
    }

    /// With `fence`, every commit requires the account's lease to still
    /// carry that token.
    fn start_with(
        config: &Config,
        options: &RunOptions,
        client: ClientOptions,
        fence: Option<i64>,
    ) -> Result<Run> {
        let started = Instant::now();
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let secret = config.secret()?;
        let component = LoadedComponent::load(options.component.as_deref())?;
        tracing::debug!("connector component: {}", component.path().display());
        let mut store = Store::connect(config)?;
        if let Some(token) = fence {
            store.fence(token);
        }
        let http = Arc::new(HttpClient::with_options(config, &secret, client));
        let user_id = identity::resolve(config, &http, &store)?;
        http.bind(Grants::new(
            component.declared(),
            config.grants.as_ref(),
            &url::Url::parse(&config.base_url)
                .map_err(|e| Error::Config(format!("`base_url`: {e}")))?,
            &user_id,
        ));
        let mut session = Session::new(
            &component,
            config,
            SessionParts {
                http: http.clone(),
                store,
                progress: options.progress.clone(),
            },
        )?;
        session.init(config, now_unix())?;
        Ok(Run {
            session,
            http,
            progress: options.progress.clone(),
            started,
        })
    }

    /// Ends the run: clears the progress display and drops writes the
    /// connector staged but did not commit.
    fn finish(&mut self) {
        self.progress.finish();
        let dropped = self.session.discard_uncommitted();
        if dropped > 0 {
            tracing::warn!(
                "the connector left {dropped} staged writes uncommitted; they were discarded"
            );
        }
    }

    fn duration_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// One sync: full when the database has no cursor yet, incremental otherwise.
pub fn run_sync(config: &Config, options: &RunOptions) -> Result<SyncReport> {
    run_sync_with_stop(config, options, &StopFlag::new())
}

/// One sync that ends early, with its last batch committed, once `stop` is
/// set (see [`crate::stop`]); it then fails with the error the connector
/// made of the refused request. Holds the account ([`AccountGuard`]: its
/// lock file or lease) throughout, and fails with [`Error::Busy`] at once
/// when another sync holds it.
pub fn run_sync_with_stop(
    config: &Config,
    options: &RunOptions,
    stop: &StopFlag,
) -> Result<SyncReport> {
    let guard = AccountGuard::acquire(config)?;
    let result = sync_holding(config, options, stop, guard.token());
    // A sync by hand leaves the schedule `run` shares in PostgreSQL as it
    // was. The sync's own error says more than a failed release (with the
    // database gone, the lease expires by itself).
    let released = guard.release(None);
    match (result, released) {
        (Ok(report), Err(e)) => {
            tracing::warn!("the sync finished, but giving its lease back failed: {e}");
            Ok(report)
        }
        (result, _) => result,
    }
}

/// One sync while this process holds the account ([`AccountGuard`]),
/// noted in the account's `sync_runs` for `status`.
pub fn sync_holding(
    config: &Config,
    options: &RunOptions,
    stop: &StopFlag,
    fence: Option<i64>,
) -> Result<SyncReport> {
    let client = ClientOptions {
        stop: stop.clone(),
        ..ClientOptions::default()
    };
    let mut run = Run::start_with(config, options, client, fence)?;
    let holder = crate::lease::holder_name();
    let run_id = run.session.store().run_started(&holder)?;
    let result = run.session.run_sync();
    run.finish();
    let (outcome, error) = match &result {
        Ok(_) => ("ok", None),
        Err(e) => (e.kind(), Some(e.to_string())),
    };
    // Best effort: the sync's own outcome matters more than its note.
    if let Err(e) = run
        .session
        .store()
        .run_finished(run_id, outcome, error.as_deref())
    {
        tracing::warn!("cannot note how the sync ended: {e}");
    }
    let s = result?;
    trim_feed(config, &run.session)?;
    let sink = run.session.sink_stats();
    Ok(SyncReport {
        mode: match s.mode {
            life::SyncMode::Full => SyncMode::Full,
            life::SyncMode::Incremental => SyncMode::Incremental,
        },
        new: s.new,
        content_updated: s.content_updated,
        metadata_updated: s.metadata_updated,
        deleted: s.deleted,
        unchanged: s.unchanged,
        requests: run.http.requests_sent(),
        bytes_received: run.http.bytes_received(),
        duration_ms: run.duration_ms(),
        retries: run.http.retries(),
        sink_calls: sink.calls,
        largest_batch: sink.largest_call,
        commits: sink.commits,
    })
}

/// Trims the change feed by `feed_retention_days`: only what every consumer
/// acknowledged.
fn trim_feed(config: &Config, session: &Session) -> Result<()> {
    if config.feed_retention_days == 0 {
        return Ok(());
    }
    let before = now_unix().saturating_sub(config.feed_retention_days as i64 * 86_400);
    let trimmed = session.trim_feed(before)?;
    if trimmed > 0 {
        tracing::debug!("trimmed {trimmed} changes from the feed");
    }
    Ok(())
}

/// Checks that the server answers and accepts the credentials.
pub fn test_connection(config: &Config, options: &RunOptions) -> Result<ConnectionReport> {
    let mut run = Run::start(config, options)?;
    let result = run.session.test_connection();
    run.finish();
    let info = result?;
    Ok(ConnectionReport {
        user_id: info.user_id,
        display_name: info.display_name,
        email: info.email,
        server_version: info.server_version,
        activity_available: info.activity_available,
        requests: run.http.requests_sent(),
        duration_ms: run.duration_ms(),
    })
}

/// The live records of the sink, ordered by path. Does not create the
/// database.
pub fn list_records(config: &Config) -> Result<Vec<SinkRecord>> {
    Store::connect_existing(config)?.live_records()
}

/// Streams the content of a known record (by external id) into `writer`.
pub fn stream_record(
    config: &Config,
    options: &RunOptions,
    external_id: &str,
    writer: impl Write + Send + 'static,
    offset: u64,
    if_match: Option<String>,
) -> Result<StreamReport> {
    let record = Store::connect(config)?
        .lookup(&[external_id.to_string()])?
        .pop()
        .flatten()
        .ok_or_else(|| {
            Error::Server(format!(
                "no known record has the external id `{external_id}`; run a sync first"
            ))
        })?;
    stream_into(
        config,
        options,
        record,
        Destination::new(writer).holding(offset),
        offset,
        if_match,
    )
    .map(|(report, _)| report)
}

/// Streams `record`'s content into `destination` (a file may hold the first
/// `offset` bytes already); returns what the connector reported and what the
/// destination received. `host-runner download` builds on this.
pub fn stream_into(
    config: &Config,
    options: &RunOptions,
    record: crate::model::Record,
    destination: Destination,
    offset: u64,
    if_match: Option<String>,
) -> Result<(StreamReport, crate::content::Delivered)> {
    let mut run = Run::start(config, options)?;
    let result = run.session.stream_record(
        record,
        destination,
        life::StreamOptions { offset, if_match },
    );
    run.finish();
    let (info, delivered) = result?;
    Ok((
        StreamReport {
            written: delivered.written,
            etag: info.etag,
            resumed: info.resumed,
            verified: info.verified,
            checksum: info.checksum,
            requests: run.http.requests_sent(),
        },
        delivered,
    ))
}
