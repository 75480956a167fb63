//! The state a running connector sees through its imports, and the import
//! implementations. Each is thin: policy lives in `http`, `store`, `progress`.

use super::bindings::nextcloud::connector::{content, http, log, records, storage, types};
use super::convert::{self, Budget, GuestChange, GuestRecord, GuestRequest, Lifter, Refusal};
use crate::config::Limits;
use crate::http::{BufferedLimitExceeded, HttpClient, OutgoingRequest, ResponseBody};
use crate::model;
use crate::progress::ProgressSink;
use crate::store::{Store, record_heap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Lift, Resource, ResourceTable, WasmList, WasmStr};
use wasmtime::{ResourceLimiter, StoreContextMut, StoreLimits, StoreLimitsBuilder};
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

/// The connector went past one of the run's `limits.*`: the call traps and
/// the run ends, its uncommitted writes dropped.
#[derive(Debug, thiserror::Error)]
#[error("{detail} (`limits.{setting}` is {limit})")]
pub struct SandboxLimit {
    /// The key below `[limits]`.
    pub setting: &'static str,
    /// Its value, with its unit.
    pub limit: String,
    pub detail: String,
}

impl From<BufferedLimitExceeded> for SandboxLimit {
    fn from(e: BufferedLimitExceeded) -> Self {
        SandboxLimit {
            setting: "max_buffered_mib",
            limit: format!("{} MiB", e.limit_mib),
            detail: e.to_string(),
        }
    }
}

/// The connector passed something no host state may hold, through an import
/// without an error channel (`storage.put`): the call traps.
#[derive(Debug, thiserror::Error)]
#[error("the host refused what the connector passed to `{call}`: {reason}")]
pub struct RefusedInput {
    pub call: &'static str,
    pub reason: String,
}

/// The most each field of a record may hold, in bytes or entries. Nextcloud
/// caps paths at 4000 bytes and names at 250; an entry past these is no file.
pub struct RecordCaps;

impl RecordCaps {
    /// External, parent and owner ids, principals, share ids, emails.
    pub const ID: usize = 1024;
    pub const PATH: usize = 4096;
    /// Name, etag, mime type, permission letters, one checksum.
    pub const TEXT: usize = 1024;
    pub const PERMISSIONS: usize = 4096;
    pub const CHECKSUMS: usize = 16;
}

/// Core instances, tables and memories a component may create. Its shape
/// fixes them when it is instantiated (nothing creates more at run time), so
/// they only refuse a component built to need absurd numbers; the connector
/// needs a handful of each.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 8;

/// How many ids a `lookup` reads from the store at a time, so that its
/// answer is counted against `limits.max_call_mib` as it grows.
const LOOKUP_STEP: usize = 64;

/// A page of committed records is read this many rows at a time and charged
/// to the call's budget as it grows: a connector that stored huge records
/// over many commits cannot make one `list-under` hold them all at once.
const PAGE_STEP: u32 = 64;

/// Up to `limit` rows after `after`, read `PAGE_STEP` at a time; `key` gives a
/// row's path (where the next step starts) and its size in the host's memory.
fn paged<T>(
    mut budget: Budget,
    mut after: Option<String>,
    limit: u32,
    mut fetch: impl FnMut(Option<&str>, u32) -> crate::Result<Vec<T>>,
    key: impl Fn(&T) -> (String, usize),
) -> wasmtime::Result<Vec<T>> {
    let mut out = Vec::new();
    while (out.len() as u32) < limit {
        let want = (limit - out.len() as u32).min(PAGE_STEP);
        let step = fetch(after.as_deref(), want).map_err(fault)?;
        let got = step.len() as u32;
        for row in step {
            let (path, bytes) = key(&row);
            budget.left = budget
                .left
                .checked_sub((bytes + size_of::<T>()) as u64)
                .ok_or_else(|| SandboxLimit {
                    setting: budget.setting,
                    limit: budget.limit.clone(),
                    detail: format!(
                        "the answer to the connector's `{}` (a page of up to {limit}) grew past what the host may hold for it",
                        budget.call
                    ),
                })?;
            after = Some(path);
            out.push(row);
        }
        if got < want {
            break;
        }
    }
    Ok(out)
}

/// `StoreLimits` with typed errors for the memory and table caps.
pub struct GuestLimiter {
    inner: StoreLimits,
    memory_limit: usize,
    table_limit: usize,
}

impl GuestLimiter {
    pub fn new(limits: &Limits) -> GuestLimiter {
        let memory_limit = (limits.memory_mib as usize) << 20;
        let table_limit = limits.max_table_elements as usize;
        GuestLimiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .table_elements(table_limit)
                .instances(MAX_INSTANCES)
                .tables(MAX_TABLES)
                .memories(MAX_MEMORIES)
                .trap_on_grow_failure(true)
                .build(),
            memory_limit,
            table_limit,
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
        if desired > self.table_limit {
            return Err(wasmtime::Error::new(SandboxLimit {
                setting: "max_table_elements",
                limit: self.table_limit.to_string(),
                detail: format!("the connector tried to grow a table to {desired} entries"),
            }));
        }
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

/// When the whole run must end (`limits.max_run_minutes`).
pub struct RunDeadline {
    at: Instant,
    limit: Duration,
}

impl RunDeadline {
    pub fn after(limit: Duration) -> RunDeadline {
        RunDeadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub fn check(&self) -> Result<(), SandboxLimit> {
        if Instant::now() < self.at {
            return Ok(());
        }
        let minutes = self.limit.as_secs_f64() / 60.0;
        Err(SandboxLimit {
            setting: "max_run_minutes",
            limit: format!("{minutes}"),
            detail: format!("the run took longer than {:.1} s", self.limit.as_secs_f64()),
        })
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
    pub run: RunDeadline,
    pub limits: Limits,
    pub http: Arc<HttpClient>,
    pub store: Store,
    pub progress: Arc<dyn ProgressSink>,
    pub batch_size: u32,
    pub sink: SinkStats,
    /// `body` handles the connector holds.
    pub open_bodies: u32,
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
    /// Every import starts here: the call counts as the connector's sign of
    /// life, and no call goes on past the run's deadline.
    fn called(&mut self) -> wasmtime::Result<()> {
        self.clock.host_calls += 1;
        self.run.check()?;
        Ok(())
    }

    fn mib(mib: u32) -> (u64, String) {
        (u64::from(mib) << 20, format!("{mib} MiB"))
    }

    /// What one `send`, `send-all` or `lookup` may lift and answer.
    fn call_budget(&self, call: &'static str) -> Budget {
        let (left, limit) = Self::mib(self.limits.max_call_mib);
        Budget {
            left,
            setting: "max_call_mib",
            limit,
            call,
        }
    }

    /// What a staging call may still lift: the staging budget's rest.
    fn staged_budget(&self, call: &'static str) -> Budget {
        let (max, limit) = Self::mib(self.limits.max_staged_mib);
        Budget {
            left: max.saturating_sub(self.store.staged_bytes()),
            setting: "max_staged_mib",
            limit,
            call,
        }
    }

    /// Whether `more` writes may be staged on top of those staged now, and
    /// whether those fit the staging budget.
    fn check_staged(&self, more: usize) -> Result<(), SandboxLimit> {
        let writes = self.store.staged_len().saturating_add(more);
        if writes > self.limits.max_staged_writes as usize {
            return Err(SandboxLimit {
                setting: "max_staged_writes",
                limit: self.limits.max_staged_writes.to_string(),
                detail: format!("the connector staged {writes} writes without a commit"),
            });
        }
        let (max, limit) = Self::mib(self.limits.max_staged_mib);
        if self.store.staged_bytes() > max {
            return Err(SandboxLimit {
                setting: "max_staged_mib",
                limit,
                detail: format!(
                    "the writes the connector staged without a commit hold {} MiB",
                    self.store.staged_bytes() >> 20
                ),
            });
        }
        Ok(())
    }

    /// Whether the connector may hold `more` bodies on top of its open ones.
    fn check_bodies(&self, more: usize) -> Result<(), SandboxLimit> {
        let open = (self.open_bodies as usize).saturating_add(more);
        if open > self.limits.max_open_bodies as usize {
            return Err(SandboxLimit {
                setting: "max_open_bodies",
                limit: self.limits.max_open_bodies.to_string(),
                detail: format!(
                    "the connector would hold {open} answer bodies open; it must drop those it is done with"
                ),
            });
        }
        Ok(())
    }

    fn respond(
        &mut self,
        result: Result<crate::http::IncomingResponse, crate::http::HttpError>,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        match result {
            Ok(r) => {
                self.check_bodies(1)?;
                let body = self.table.push(r.body)?;
                self.open_bodies += 1;
                Ok(Ok(http::Response {
                    status: r.status,
                    headers: convert::headers_to_wit(r.headers),
                    body,
                }))
            }
            Err(e) => Ok(Err(convert::http_error_to_wit(e))),
        }
    }

    fn send_one(
        &mut self,
        request: OutgoingRequest,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        // Refused before it is sent: the answer would have nowhere to go.
        self.check_bodies(1)?;
        let result = self.http.send(request);
        self.respond(result)
    }

    fn send_many(
        &mut self,
        requests: Vec<OutgoingRequest>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::HttpError>>> {
        let results = self.http.send_all(requests).map_err(SandboxLimit::from)?;
        results.into_iter().map(|r| self.respond(r)).collect()
    }

    /// The known records of `ids`, read a step at a time so that a long list
    /// of (the same) ids cannot make an answer past `limits.max_call_mib`.
    fn lookup_records(
        &mut self,
        ids: &[String],
        mut budget: Budget,
    ) -> wasmtime::Result<Vec<Option<types::Record>>> {
        let mut out = Vec::with_capacity(ids.len());
        for step in ids.chunks(LOOKUP_STEP) {
            for found in self.store.lookup(step).map_err(fault)? {
                let bytes = found.as_ref().map_or(0, record_heap) + size_of::<types::Record>();
                budget.left = budget.left.checked_sub(bytes as u64).ok_or_else(|| SandboxLimit {
                    setting: budget.setting,
                    limit: budget.limit.clone(),
                    detail: format!(
                        "the answer to the connector's `{}` of {} ids grew past what the host may hold for it",
                        budget.call,
                        ids.len()
                    ),
                })?;
                out.push(found.map(convert::record_to_wit));
            }
        }
        Ok(out)
    }

    fn put_records(&mut self, records: Vec<model::Record>) -> wasmtime::Result<()> {
        for record in &records {
            check_record(record).map_err(|reason| RefusedInput {
                call: "storage.put",
                reason,
            })?;
        }
        self.store.put(records);
        self.check_staged(0)?;
        Ok(())
    }

    fn remove_ids(&mut self, ids: Vec<String>) -> wasmtime::Result<()> {
        self.store.remove(ids);
        self.check_staged(0)?;
        Ok(())
    }

    /// Whether `count` more changes fit the batch size; the reason they do not.
    fn changes_fit(&self, count: usize) -> Result<u64, String> {
        if count > self.batch_size as usize {
            return Err(format!(
                "a batch of {count} changes is larger than the configured batch size {}",
                self.batch_size
            ));
        }
        // The batch size bounds every commit too.
        let pending = self.sink.pending + count as u64;
        if pending > u64::from(self.batch_size) {
            return Err(format!(
                "{pending} changes since the last commit would be more than the configured batch size {}; commit first",
                self.batch_size
            ));
        }
        Ok(pending)
    }

    fn stage_changes(
        &mut self,
        changes: Vec<model::RecordChange>,
    ) -> wasmtime::Result<Result<(), String>> {
        let pending = match self.changes_fit(changes.len()) {
            Ok(pending) => pending,
            Err(e) => return Ok(Err(e)),
        };
        for change in &changes {
            if let Err(e) = check_change(change) {
                return Ok(Err(e));
            }
        }
        let sink = &mut self.sink;
        sink.calls += 1;
        sink.largest_call = sink.largest_call.max(changes.len() as u64);
        sink.pending = pending;
        self.store.on_changes(changes);
        self.check_staged(0)?;
        Ok(Ok(()))
    }
}

/// The imports that take lists, lifting their arguments under a budget (see
/// [`convert`]); `session::bound_list_imports` links them over the generated ones.
pub mod bounded {
    use super::*;

    /// Lifts under `budget`; a refusal of the shape is `invalid`'s to turn
    /// into an answer (or a trap).
    fn lift<T, U>(
        store: &mut StoreContextMut<'_, HostState>,
        budget: Budget,
        f: impl FnOnce(&mut Lifter<'_, '_, HostState>) -> Result<T, Refusal>,
        invalid: impl FnOnce(String) -> wasmtime::Result<U>,
    ) -> wasmtime::Result<Result<T, U>> {
        match f(&mut Lifter::new(store, budget)) {
            Ok(value) => Ok(Ok(value)),
            Err(Refusal::Invalid(reason)) => invalid(reason).map(Err),
            Err(Refusal::Trap(e)) => Err(e),
        }
    }

    fn refused(call: &'static str) -> impl FnOnce(String) -> wasmtime::Result<()> {
        move |reason| Err(wasmtime::Error::new(RefusedInput { call, reason }))
    }

    /// Every element of `list`, lifted under `budget`; an element the host
    /// will not take traps the call.
    fn lift_all<E: Lift, U>(
        store: &mut StoreContextMut<'_, HostState>,
        list: &WasmList<E>,
        what: &'static str,
        budget: Budget,
        call: &'static str,
        each: impl FnMut(&mut Lifter<'_, '_, HostState>, E) -> Result<U, Refusal>,
    ) -> wasmtime::Result<Vec<U>> {
        let lifted = lift(
            store,
            budget,
            |l| l.list(list, usize::MAX, || what.into(), each),
            refused(call),
        )?;
        Ok(lifted.expect("a refused element traps"))
    }

    fn ids(
        store: &mut StoreContextMut<'_, HostState>,
        ids: &WasmList<WasmStr>,
        budget: Budget,
        call: &'static str,
    ) -> wasmtime::Result<Vec<String>> {
        lift_all(store, ids, "the id list", budget, call, |l, id| l.text(id))
    }

    pub fn put(
        mut store: StoreContextMut<'_, HostState>,
        records: WasmList<GuestRecord>,
    ) -> wasmtime::Result<()> {
        const CALL: &str = "storage.put";
        let state = store.data_mut();
        state.called()?;
        state.check_staged(records.len())?;
        let budget = state.staged_budget(CALL);
        let records = lift_all(
            &mut store,
            &records,
            "the record list",
            budget,
            CALL,
            |l, r| l.record(r),
        )?;
        store.data_mut().put_records(records)
    }

    pub fn remove(
        mut store: StoreContextMut<'_, HostState>,
        external_ids: WasmList<WasmStr>,
    ) -> wasmtime::Result<()> {
        const CALL: &str = "storage.remove";
        let state = store.data_mut();
        state.called()?;
        state.check_staged(external_ids.len())?;
        let budget = state.staged_budget(CALL);
        let ids = ids(&mut store, &external_ids, budget, CALL)?;
        store.data_mut().remove_ids(ids)
    }

    pub fn lookup(
        mut store: StoreContextMut<'_, HostState>,
        external_ids: WasmList<WasmStr>,
    ) -> wasmtime::Result<Vec<Option<types::Record>>> {
        const CALL: &str = "storage.lookup";
        store.data_mut().called()?;
        let budget = store.data().call_budget(CALL);
        let lifted = ids(&mut store, &external_ids, budget, CALL)?;
        // The ids and the answer share one budget.
        let budget = store.data().call_budget(CALL);
        store.data_mut().lookup_records(&lifted, budget)
    }

    pub fn on_changes(
        mut store: StoreContextMut<'_, HostState>,
        changes: WasmList<GuestChange>,
    ) -> wasmtime::Result<Result<(), String>> {
        const CALL: &str = "records.on-changes";
        let state = store.data_mut();
        state.called()?;
        // Too many is the connector's error to handle: say so before lifting any.
        if let Err(e) = state.changes_fit(changes.len()) {
            return Ok(Err(e));
        }
        state.check_staged(changes.len())?;
        let budget = state.staged_budget(CALL);
        let lifted = lift(
            &mut store,
            budget,
            |l| {
                l.list(
                    &changes,
                    usize::MAX,
                    || "the change list".into(),
                    |l, c| l.change(c),
                )
            },
            Ok,
        )?;
        match lifted {
            Ok(changes) => store.data_mut().stage_changes(changes),
            Err(reason) => Ok(Err(reason)),
        }
    }

    pub fn send(
        mut store: StoreContextMut<'_, HostState>,
        request: GuestRequest,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        const CALL: &str = "http.send";
        store.data_mut().called()?;
        let budget = store.data().call_budget(CALL);
        let lifted = lift(&mut store, budget, |l| l.request(request), refused(CALL))?;
        match lifted {
            Ok(request) => store.data_mut().send_one(request),
            Err(()) => unreachable!("a request is only ever refused by its budget"),
        }
    }

    pub fn send_all(
        mut store: StoreContextMut<'_, HostState>,
        requests: WasmList<GuestRequest>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::HttpError>>> {
        const CALL: &str = "http.send-all";
        let state = store.data_mut();
        state.called()?;
        // Each answer is a body to hold: refused before anything is sent.
        state.check_bodies(requests.len())?;
        let budget = state.call_budget(CALL);
        let requests = lift_all(
            &mut store,
            &requests,
            "the request list",
            budget,
            CALL,
            |l, r| l.request(r),
        )?;
        store.data_mut().send_many(requests)
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
    wasmtime::Error::new(StorageFault(e.detail().to_string()))
}

impl types::Host for HostState {}

impl http::HostBody for HostState {
    fn read(
        &mut self,
        body: Resource<ResponseBody>,
        max: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, http::HttpError>> {
        self.called()?;
        let body = self.table.get_mut(&body)?;
        Ok(body.read_chunk(max).map_err(convert::http_error_to_wit))
    }

    fn drop(&mut self, body: Resource<ResponseBody>) -> wasmtime::Result<()> {
        self.called()?;
        self.table.delete(body)?;
        self.open_bodies -= 1;
        Ok(())
    }
}

// The generated imports below that take lists are linked over by
// [`bounded`]; these eager versions hold the same rules for any other caller.
impl http::Host for HostState {
    fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        self.called()?;
        self.send_one(convert::request_from_wit(request))
    }

    fn send_all(
        &mut self,
        requests: Vec<http::Request>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::HttpError>>> {
        self.called()?;
        self.check_bodies(requests.len())?;
        let requests = requests
            .into_iter()
            .map(convert::request_from_wit)
            .collect();
        self.send_many(requests)
    }
}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.called()?;
        self.store.get(&key).map_err(fault)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.called()?;
        self.check_staged(1)?;
        self.store.set(key, value);
        self.check_staged(0)?;
        Ok(())
    }

    fn lookup(
        &mut self,
        external_ids: Vec<String>,
    ) -> wasmtime::Result<Vec<Option<types::Record>>> {
        self.called()?;
        let budget = self.call_budget("storage.lookup");
        self.lookup_records(&external_ids, budget)
    }

    fn list_under(
        &mut self,
        path: String,
        order: storage::Order,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<types::Record>> {
        self.called()?;
        let order = convert::order_from_wit(order);
        let store = &self.store;
        let found = paged(
            self.call_budget("storage.list-under"),
            after,
            limit,
            |after, n| store.list_under(&path, order, after, n),
            |r| (r.path.clone(), record_heap(r)),
        )?;
        Ok(found.into_iter().map(convert::record_to_wit).collect())
    }

    fn list_paths_under(
        &mut self,
        path: String,
        order: storage::Order,
        after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Vec<storage::KnownPath>> {
        self.called()?;
        let order = convert::order_from_wit(order);
        let store = &self.store;
        let found = paged(
            self.call_budget("storage.list-paths-under"),
            after,
            limit,
            |after, n| store.list_paths_under(&path, order, after, n),
            |(id, path)| (path.clone(), id.len() + path.len()),
        )?;
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
        self.called()?;
        let store = &self.store;
        let found = paged(
            self.call_budget("storage.children"),
            after,
            limit,
            |after, n| store.children(&parent_external_id, after, n),
            |r| (r.path.clone(), record_heap(r)),
        )?;
        Ok(found.into_iter().map(convert::record_to_wit).collect())
    }

    fn put(&mut self, records: Vec<types::Record>) -> wasmtime::Result<()> {
        self.called()?;
        self.check_staged(records.len())?;
        self.put_records(records.into_iter().map(convert::record_from_wit).collect())
    }

    fn remove(&mut self, external_ids: Vec<String>) -> wasmtime::Result<()> {
        self.called()?;
        self.check_staged(external_ids.len())?;
        self.remove_ids(external_ids)
    }

    fn commit(&mut self) -> wasmtime::Result<Result<(), String>> {
        self.called()?;
        let staged = self.store.staged_len();
        let result = self.store.commit().map_err(|e| e.detail().to_string());
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
        self.called()?;
        if user.id.is_empty() {
            return Ok(Err("a user needs an id".into()));
        }
        self.check_staged(1)?;
        self.store.on_user(convert::user_from_wit(user));
        self.check_staged(0)?;
        Ok(Ok(()))
    }

    fn on_record_group(
        &mut self,
        group: types::RecordGroup,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called()?;
        if group.external_id.is_empty() {
            return Ok(Err("a record group needs an external id".into()));
        }
        self.check_staged(1)?;
        self.store.on_record_group(convert::group_from_wit(group));
        self.check_staged(0)?;
        Ok(Ok(()))
    }

    fn on_changes(
        &mut self,
        changes: Vec<types::RecordChange>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called()?;
        if let Err(e) = self.changes_fit(changes.len()) {
            return Ok(Err(e));
        }
        self.check_staged(changes.len())?;
        self.stage_changes(changes.into_iter().map(convert::change_from_wit).collect())
    }
}

/// What the sink requires of each change.
fn check_change(change: &model::RecordChange) -> Result<(), String> {
    match change {
        model::RecordChange::Deleted(id) if id.is_empty() => {
            Err("a deleted change needs an external id".into())
        }
        model::RecordChange::Deleted(_) => Ok(()),
        model::RecordChange::New(r)
        | model::RecordChange::ContentUpdated(r)
        | model::RecordChange::MetadataUpdated(r) => check_record(r),
    }
}

/// What the host requires of every record it keeps, as a known record
/// (`storage.put`) or in the sink (`records.on-changes`): an id, a path
/// inside the account, and fields within [`RecordCaps`] (the bounded imports
/// refuse those before lifting them; this holds the rule for any caller).
fn check_record(record: &model::Record) -> Result<(), String> {
    if record.external_id.is_empty() {
        return Err(format!(
            "the record at `{}` has no external id",
            record.path
        ));
    }
    let id = &record.external_id;
    let long = |field: &str, len: usize, cap: usize| {
        (len > cap).then(|| {
            format!(
                "the {field} of record `{id}` is {len} long, more than the {cap} the host keeps"
            )
        })
    };
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let longest_principal = record
        .permissions
        .iter()
        .map(|p| match &p.principal {
            model::Principal::User { id, email } => id.len().max(opt(email)),
            model::Principal::Group { id } | model::Principal::Federated { id } => id.len(),
            model::Principal::AnyoneWithLink { share_id, .. } => share_id.len(),
        })
        .max()
        .unwrap_or(0);
    let longest_checksum = record.checksums.iter().map(String::len).max().unwrap_or(0);
    let lengths = [
        ("external id", id.len(), RecordCaps::ID),
        ("parent id", opt(&record.parent_external_id), RecordCaps::ID),
        ("owner id", opt(&record.owner_id), RecordCaps::ID),
        ("longest principal", longest_principal, RecordCaps::ID),
        (
            "permission letters",
            record.permission_letters.len(),
            RecordCaps::TEXT,
        ),
        ("longest checksum", longest_checksum, RecordCaps::TEXT),
        ("path", record.path.len(), RecordCaps::PATH),
        ("name", record.name.len(), RecordCaps::TEXT),
        ("etag", record.etag.len(), RecordCaps::TEXT),
        ("mime type", record.mime_type.len(), RecordCaps::TEXT),
        (
            "permission list",
            record.permissions.len(),
            RecordCaps::PERMISSIONS,
        ),
        (
            "checksum list",
            record.checksums.len(),
            RecordCaps::CHECKSUMS,
        ),
    ];
    if let Some(e) = lengths
        .into_iter()
        .find_map(|(f, len, cap)| long(f, len, cap))
    {
        return Err(e);
    }
    if !model::is_account_path(&record.path) {
        return Err(format!(
            "the path `{}` of record {} is not a path inside the account \
             (it must start with `/` and have no empty, `.` or `..` segment)",
            record.path, record.external_id
        ));
    }
    Ok(())
}

impl content::HostDestination for HostState {
    fn write(
        &mut self,
        destination: Resource<crate::content::Destination>,
        chunk: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called()?;
        let destination = self.table.get_mut(&destination)?;
        Ok(destination.write_chunk(&chunk))
    }

    fn restart(
        &mut self,
        destination: Resource<crate::content::Destination>,
    ) -> wasmtime::Result<Result<(), String>> {
        self.called()?;
        let destination = self.table.get_mut(&destination)?;
        Ok(destination.restart())
    }

    fn drop(&mut self, destination: Resource<crate::content::Destination>) -> wasmtime::Result<()> {
        self.called()?;
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
        self.called()?;
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
        self.called()?;
        self.progress.progress(&clean(&phase), done, total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: u64) -> Budget {
        Budget {
            left: bytes,
            setting: "max_call_mib",
            limit: "1 MiB".into(),
            call: "storage.list-under",
        }
    }

    #[test]
    fn pages_are_read_in_steps_each_after_the_last() {
        let rows: Vec<String> = (0..200).map(|i| format!("/p{i:03}")).collect();
        let mut calls = Vec::new();
        let page = paged(
            budget(u64::MAX),
            Some("/p009".into()),
            150,
            |after, n| {
                calls.push((after.map(String::from), n));
                let from = rows
                    .iter()
                    .position(|r| Some(r.as_str()) > after)
                    .unwrap_or(rows.len());
                Ok(rows[from..].iter().take(n as usize).cloned().collect())
            },
            |r: &String| (r.clone(), r.len()),
        )
        .unwrap();
        assert_eq!(page, rows[10..160]);
        assert_eq!(
            calls,
            [
                (Some("/p009".into()), PAGE_STEP),
                (Some("/p073".into()), PAGE_STEP),
                (Some("/p137".into()), 150 - 2 * PAGE_STEP),
            ]
        );
        // The end of the rows ends the page early.
        let short = paged(
            budget(u64::MAX),
            Some("/p180".into()),
            1000,
            |after, n| {
                let from = rows
                    .iter()
                    .position(|r| Some(r.as_str()) > after)
                    .unwrap_or(rows.len());
                Ok(rows[from..].iter().take(n as usize).cloned().collect())
            },
            |r: &String| (r.clone(), r.len()),
        )
        .unwrap();
        assert_eq!(short.len(), 19);
    }

    #[test]
    fn a_page_past_the_budget_traps_naming_the_setting() {
        let huge = "x".repeat(1 << 20);
        let mut fetched = 0;
        let err = paged(
            budget(4 << 20),
            None,
            1000,
            |_, n| {
                fetched += n as usize;
                Ok(vec![huge.clone(); n as usize])
            },
            |r: &String| (r.clone(), r.len()),
        )
        .unwrap_err();
        let limit = err.downcast_ref::<SandboxLimit>().expect("a sandbox limit");
        assert_eq!(limit.setting, "max_call_mib");
        assert_eq!(
            fetched, PAGE_STEP as usize,
            "it stopped within the first step"
        );
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
    fn memory_and_table_limits_are_typed_errors() {
        let mut l = GuestLimiter::new(&Limits {
            memory_mib: 16,
            max_table_elements: 1000,
            ..Limits::default()
        });
        assert!(l.memory_growing(0, 16 << 20, None).unwrap());
        let err = l
            .memory_growing(16 << 20, (16 << 20) + 65536, None)
            .unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert!(l.table_growing(0, 1000, None).unwrap());
        let err = l.table_growing(1000, 1001, None).unwrap_err();
        let limit = err.downcast_ref::<SandboxLimit>().unwrap();
        assert_eq!(limit.setting, "max_table_elements");
        assert_eq!(l.instances(), MAX_INSTANCES);
    }

    #[test]
    fn the_run_deadline_names_its_setting() {
        assert!(RunDeadline::after(Duration::from_secs(60)).check().is_ok());
        let err = RunDeadline::after(Duration::ZERO).check().unwrap_err();
        assert!(
            err.to_string().contains("`limits.max_run_minutes` is 0"),
            "{err}"
        );
    }

    #[test]
    fn changes_are_checked() {
        let rec = |id: &str, path: &str| model::Record {
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
        use model::RecordChange::*;
        assert!(check_change(&New(rec("1", "/"))).is_ok());
        assert!(check_change(&New(rec("", "/a"))).is_err());
        assert!(check_change(&MetadataUpdated(rec("1", "a"))).is_err());
        assert!(check_change(&Deleted(String::new())).is_err());

        let long = |f: fn(&mut model::Record)| {
            let mut r = rec("1", "/a");
            f(&mut r);
            check_record(&r).unwrap_err()
        };
        assert!(long(|r| r.path = format!("/{}", "p".repeat(4096))).contains("path"));
        assert!(long(|r| r.name = "n".repeat(1025)).contains("name"));
        assert!(long(|r| r.etag = "e".repeat(1025)).contains("etag"));
        assert!(long(|r| r.checksums = vec!["SHA1:0".into(); 17]).contains("checksum list"));
        assert!(
            long(|r| r.permissions = vec![
                model::Permission {
                    principal: model::Principal::Group { id: "g".into() },
                    level: model::PermissionLevel::Read,
                };
                4097
            ])
            .contains("permission list")
        );
    }

    #[test]
    fn log_lines_are_cleaned() {
        assert_eq!(clean("a\nb\x1b[2Jc\u{7}"), "a b[2Jc");
        assert!(clean(&"é".repeat(10_000)).len() <= 8192 + '…'.len_utf8());
    }
}
