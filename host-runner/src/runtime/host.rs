//! The state a running connector sees through its imports, and the import
//! implementations. Each is thin: policy lives in `http`, `store`, `progress`.

use super::bindings::nextcloud::connector::{content, http, log, records, storage, types};
use super::convert;
use crate::http::{HttpClient, ResponseBody};
use crate::progress::ProgressSink;
use crate::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A storage read failed; WIT gives `get`, `lookup` and `list-under` no error
/// channel, so the call traps with this and the run ends as a storage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageFault(pub String);

/// The connector computed too long without calling the host.
#[derive(Debug, thiserror::Error)]
#[error("the connector ran {ran_ms} ms without calling the host")]
pub struct GuestStalled {
    pub ran_ms: u128,
}

/// The connector tried to grow its memory past the limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "the connector tried to grow its memory to {desired} bytes, past the limit of {limit} bytes"
)]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// `StoreLimits` with a typed error for the memory cap.
pub struct GuestLimiter {
    inner: StoreLimits,
    memory_limit: usize,
}

impl GuestLimiter {
    pub fn new(memory_mib: u32) -> GuestLimiter {
        let memory_limit = (memory_mib as usize) << 20;
        GuestLimiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            memory_limit,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.memory_limit,
            }));
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Measures how long the connector computes between host calls.
pub struct GuestClock {
    pub slice: Duration,
    /// Host calls so far; every import bumps it.
    pub host_calls: u64,
    seen_calls: u64,
    window_start: Instant,
}

impl GuestClock {
    pub fn new(slice: Duration) -> GuestClock {
        GuestClock {
            slice,
            host_calls: 0,
            seen_calls: 0,
            window_start: Instant::now(),
        }
    }

    /// Starts a fresh window (at each call into the connector).
    pub fn restart(&mut self) {
        self.seen_calls = self.host_calls;
        self.window_start = Instant::now();
    }

    /// Called on each epoch deadline: restarts the window when the connector
    /// called the host since the last check; fails when it has not for
    /// longer than the slice.
    pub fn check(&mut self) -> Result<(), GuestStalled> {
        if self.host_calls != self.seen_calls {
            self.restart();
            return Ok(());
        }
        let ran = self.window_start.elapsed();
        if ran > self.slice {
            return Err(GuestStalled {
                ran_ms: ran.as_millis(),
            });
        }
        Ok(())
    }
}

pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: GuestLimiter,
    pub clock: GuestClock,
    pub http: Arc<HttpClient>,
    pub store: Store,
    pub progress: Arc<dyn ProgressSink>,
    pub batch_size: u32,
    pub sink: SinkStats,
}

/// How the connector used the sink and storage in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Accepted `records.on-changes` calls.
    pub calls: u64,
    /// The most changes in one of them.
    pub largest_call: u64,
    /// Successful `storage.commit` calls.
    pub commits: u64,
    /// The most changes one commit made durable.
    pub largest_commit: u64,
    /// Changes sent since the last commit.
    pub pending: u64,
}

impl HostState {
    fn called(&mut self) {
        self.clock.host_calls += 1;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn fault(e: crate::Error) -> wasmtime::Error {
    wasmtime::Error::new(StorageFault(e.to_string()))
}

impl types::Host for HostState {}

impl http::HostBody for HostState {
    fn read(
        &mut self,
        body: Resource<ResponseBody>,
        max: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, http::HttpError>> {
        self.called();
        let body = self.table.get_mut(&body)?;
        Ok(body.read_chunk(max).map_err(convert::http_error_to_wit))
    }

    fn drop(&mut self, body: Resource<ResponseBody>) -> wasmtime::Result<()> {
        self.called();
        self.table.delete(body)?;
        Ok(())
    }
}

impl HostState {
    fn respond(
        &mut self,
        result: Result<crate::http::IncomingResponse, crate::http::HttpError>,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        match result {
            Ok(r) => {
                let body = self.table.push(r.body)?;
                Ok(Ok(http::Response {
                    status: r.status,
                    headers: convert::headers_to_wit(r.headers),
                    body,
                }))
            }
            Err(e) => Ok(Err(convert::http_error_to_wit(e))),
        }
    }
}

impl http::Host for HostState {
    fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        self.called();
        let result = self.http.send(convert::request_from_wit(request));
        self.respond(result)
    }

    fn send_all(
        &mut self,
        requests: Vec<http::Request>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::HttpError>>> {
        self.called();
        let requests = requests
            .into_iter()
            .map(convert::request_from_wit)
            .collect();
        let results = self.http.send_all(requests);
        results.into_iter().map(|r| self.respond(r)).collect()
    }
}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.called();
        self.store.get(&key).map_err(fault)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.called();
        self.store.set(key, value);
        Ok(())
    }

    fn lookup(
        &mut self,
        external_ids: Vec<String>,
    ) -> wasmtime::Result<Vec<Option<types::Record>>> {
        self.called();
        let found = self.store.lookup(&external_ids).map_err(fault)?;
        Ok(found
            .into_iter()
            .map(|r| r.map(convert::record_to_wit))
            .collect())
    }

    fn list_under(
        &mut self,
        path: String,
        order: storage::Order,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<types::Record>> {
        self.called();
        let found = self
            .store
            .list_under(
                &path,
                convert::order_from_wit(order),
                after.as_deref(),
                limit,
            )
            .map_err(fault)?;
        Ok(found.into_iter().map(convert::record_to_wit).collect())
    }

    fn list_paths_under(
        &mut self,
        path: String,
        order: storage::Order,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<storage::KnownPath>> {
        self.called();
        let found = self
            .store
            .list_paths_under(
                &path,
                convert::order_from_wit(order),
                after.as_deref(),
                limit,
            )
            .map_err(fault)?;
        Ok(found
            .into_iter()
            .map(|(external_id, path)| storage::KnownPath { external_id, path })
            .collect())
    }

    fn children(
        &mut self,
        parent_external_id: String,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<types::Record>> {
        self.called();
        let found = self
            .store
            .children(&parent_external_id, after.as_deref(), limit)
            .map_err(fault)?;
        Ok(found.into_iter().map(convert::record_to_wit).collect())
    }

    fn put(&mut self, records: Vec<types::Record>) -> wasmtime::Result<()> {
        self.called();
        self.store
            .put(records.into_iter().map(convert::record_from_wit).collect());
        Ok(())
    }

    fn remove(&mut self, external_ids: Vec<String>) -> wasmtime::Result<()> {
        self.called();
        self.store.remove(external_ids);
        Ok(())
    }

    fn commit(&mut self) -> wasmtime::Result<Result<(), String>> {
        self.called();
        let staged = self.store.staged_len();
        let result = self.store.commit().map_err(|e| e.to_string());
        match &result {
            Ok(()) => {
                tracing::debug!("committed {staged} staged writes");
                let sink = &mut self.sink;
                sink.commits += 1;
                sink.largest_commit = sink.largest_commit.max(sink.pending);
                sink.pending = 0;
                // When stopping, this was the batch in flight: no more answers.
                self.http.committed();
            }
            Err(e) => tracing::error!("commit of {staged} staged writes failed: {e}"),
        }
        Ok(result)
    }
}

impl records::Host for HostState {
    fn on_user(&mut self, user: types::User) -> wasmtime::Result<Result<(), String>> {
        self.called();
        if user.id.is_empty() {
            return Ok(Err("a user needs an id".into()));
        }
        self.store.on_user(convert::user_from_wit(user));
        Ok(Ok(()))
    }

    fn on_record_group(
        &mut self,
        group: types::RecordGroup,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called();
        if group.external_id.is_empty() {
            return Ok(Err("a record group needs an external id".into()));
        }
        self.store.on_record_group(convert::group_from_wit(group));
        Ok(Ok(()))
    }

    fn on_changes(
        &mut self,
        changes: Vec<types::RecordChange>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called();
        if changes.len() > self.batch_size as usize {
            return Ok(Err(format!(
                "a batch of {} changes is larger than the configured batch size {}",
                changes.len(),
                self.batch_size
            )));
        }
        // The batch size bounds every commit too.
        let pending = self.sink.pending + changes.len() as u64;
        if pending > u64::from(self.batch_size) {
            return Ok(Err(format!(
                "{} changes since the last commit would be more than the configured batch size {}; commit first",
                pending, self.batch_size
            )));
        }
        for change in &changes {
            if let Err(e) = check_change(change) {
                return Ok(Err(e));
            }
        }
        let sink = &mut self.sink;
        sink.calls += 1;
        sink.largest_call = sink.largest_call.max(changes.len() as u64);
        sink.pending = pending;
        self.store
            .on_changes(changes.into_iter().map(convert::change_from_wit).collect());
        Ok(Ok(()))
    }
}

/// What the sink requires of each change.
fn check_change(change: &types::RecordChange) -> Result<(), String> {
    let record = match change {
        types::RecordChange::Deleted(id) => {
            return if id.is_empty() {
                Err("a deleted change needs an external id".into())
            } else {
                Ok(())
            };
        }
        types::RecordChange::New(r)
        | types::RecordChange::ContentUpdated(r)
        | types::RecordChange::MetadataUpdated(r) => r,
    };
    if record.external_id.is_empty() {
        return Err(format!(
            "the record at `{}` has no external id",
            record.path
        ));
    }
    if !is_account_path(&record.path) {
        return Err(format!(
            "the path `{}` of record {} is not a path inside the account \
             (it must start with `/` and have no empty, `.` or `..` segment)",
            record.path, record.external_id
        ));
    }
    Ok(())
}

/// `/`, or `/`-separated segments none of which is empty, `.`, `..` or holds a NUL.
fn is_account_path(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\0'))
        })
}

impl content::HostDestination for HostState {
    fn write(
        &mut self,
        destination: Resource<crate::content::Destination>,
        chunk: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called();
        let destination = self.table.get_mut(&destination)?;
        Ok(destination.write_chunk(&chunk))
    }

    fn restart(
        &mut self,
        destination: Resource<crate::content::Destination>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called();
        let destination = self.table.get_mut(&destination)?;
        Ok(destination.restart())
    }

    fn drop(&mut self, destination: Resource<crate::content::Destination>) -> wasmtime::Result<()> {
        self.called();
        self.table.delete(destination)?;
        Ok(())
    }
}

impl content::Host for HostState {}

/// Strips control characters (terminal escapes) and caps the length of a
/// line the connector wants logged.
fn clean(message: &str) -> String {
    let mut s: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    if s.len() > 8192 {
        let mut cut = 8192;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.called();
        let message = clean(&message);
        match level {
            log::Level::Trace => tracing::trace!(target: "connector", "{message}"),
            log::Level::Debug => tracing::debug!(target: "connector", "{message}"),
            log::Level::Info => tracing::info!(target: "connector", "{message}"),
            log::Level::Warn => tracing::warn!(target: "connector", "{message}"),
            log::Level::Error => tracing::error!(target: "connector", "{message}"),
        }
        Ok(())
    }

    fn progress(&mut self, phase: String, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
        self.called();
        self.progress.progress(&clean(&phase), done, total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_paths() {
        for ok in ["/", "/a", "/a b/c#d", "/..a/b..", "/日本"] {
            assert!(is_account_path(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "//",
            "/a/",
            "/a//b",
            "/../etc/passwd",
            "/a/./b",
            "/a/..",
            "/a\0b",
        ] {
            assert!(!is_account_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn clock_fails_only_without_host_calls() {
        let mut clock = GuestClock::new(Duration::from_millis(0));
        clock.restart();
        clock.host_calls += 1;
        assert!(clock.check().is_ok(), "a host call restarts the window");
        // No host call since: the (zero) slice is over as soon as time moves.
        let start = Instant::now();
        while start.elapsed() == Duration::ZERO {}
        let err = clock.check().unwrap_err();
        assert!(err.to_string().contains("without calling the host"));
    }

    #[test]
    fn memory_limit_is_a_typed_error() {
        let mut l = GuestLimiter::new(16);
        assert!(l.memory_growing(0, 16 << 20, None).unwrap());
        let err = l
            .memory_growing(16 << 20, (16 << 20) + 65536, None)
            .unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitExceeded>().is_some());
    }

    #[test]
    fn changes_are_checked() {
        let rec = |id: &str, path: &str| types::Record {
            external_id: id.into(),
            parent_external_id: None,
            path: path.into(),
            name: String::new(),
            is_folder: true,
            etag: String::new(),
            size: 0,
            mime_type: String::new(),
            modified: 0,
            created: None,
            permission_letters: String::new(),
            permissions: vec![],
            owner_id: None,
            checksums: vec![],
        };
        assert!(check_change(&types::RecordChange::New(rec("1", "/"))).is_ok());
        assert!(check_change(&types::RecordChange::New(rec("", "/a"))).is_err());
        assert!(check_change(&types::RecordChange::MetadataUpdated(rec("1", "a"))).is_err());
        assert!(check_change(&types::RecordChange::Deleted(String::new())).is_err());
    }

    #[test]
    fn log_lines_are_cleaned() {
        assert_eq!(clean("a\nb\x1b[2Jc\u{7}"), "a b[2Jc");
        assert!(clean(&"é".repeat(10_000)).len() <= 8192 + '…'.len_utf8());
    }
}
