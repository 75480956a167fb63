//! One instance of the connector in its own sandboxed store, and the calls
//! into it, with traps turned into errors a user can act on.

use super::bindings::exports::nextcloud::connector::lifecycle as life;
use super::bindings::{Connector, ConnectorPre};
use super::engine::TICK;
use super::host::{
    GuestClock, GuestLimiter, GuestStalled, HostState, MemoryLimitExceeded, RefusedInput,
    RunDeadline, SandboxLimit, SinkStats, StorageFault, bounded,
};
use super::output::{GuestOutput, panic_message};
use super::{component, convert, engine};
use crate::capability::Declared;
use crate::config::Config;
use crate::content::{Delivered, Destination};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::progress::ProgressSink;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

/// A compiled connector, checked and linked, ready to instantiate many times.
#[derive(Clone)]
pub struct LoadedComponent {
    path: PathBuf,
    declared: Declared,
    pre: ConnectorPre<HostState>,
}

impl LoadedComponent {
    /// Finds (see [`super::locate_component`]), compiles (cached) and links the
    /// connector, refusing one built for another WIT version.
    pub fn load(explicit: Option<&Path>) -> Result<LoadedComponent> {
        let path = component::locate_component(explicit)?;
        LoadedComponent::from_file(&path)
    }

    pub fn from_file(path: &Path) -> Result<LoadedComponent> {
        let wasm = component::read_component(path)?;
        // What it asks for is read before anything of it is compiled or run.
        let declared = component::declared_in(path, &wasm)?;
        let engine = engine::engine()?;
        let component = component::load_component(&engine, path, &wasm)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Component(format!("cannot link WASI: {e:#}")))?;
        cap_guest_sleeps(&mut linker)
            .map_err(|e| Error::Component(format!("cannot link the clock: {e:#}")))?;
        Connector::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Component(format!("cannot link the host interfaces: {e:#}")))?;
        bound_list_imports(&mut linker)
            .map_err(|e| Error::Component(format!("cannot link the host interfaces: {e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ConnectorPre::new)
            .map_err(|e| {
                Error::Component(format!(
                    "`{}` needs something this host does not provide: {e:#}",
                    path.display()
                ))
            })?;
        Ok(LoadedComponent {
            path: path.to_path_buf(),
            declared,
            pre,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The capabilities the component declared (or the read-only default).
    pub fn declared(&self) -> &Declared {
        &self.declared
    }
}

/// Replaces WASI's timer subscriptions with ones that wait at most the guest
/// time slice: a host call that blocks is out of reach of epoch interruption,
/// so without this a connector could sleep forever. A connector that sleeps
/// longer than the slice is then stopped as one that ran too long without
/// calling the host.
fn cap_guest_sleeps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: wasmtime::StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
            let cap = store.data().clock.slice.as_nanos() as u64;
            Ok((store
                .data_mut()
                .clocks()
                .subscribe_duration(nanos.min(cap))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: wasmtime::StoreContextMut<'_, HostState>, (when,): (u64,)| {
            let cap = store.data().clock.slice.as_nanos() as u64;
            let mut clocks = store.data_mut().clocks();
            let latest = clocks.now()?.saturating_add(cap);
            Ok((clocks.subscribe_instant(when.min(latest))?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Replaces the generated imports that take lists with [`bounded`] ones:
/// the generated ones lift a whole list, however large, before they run
/// (see [`super::convert`]).
fn bound_list_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut storage = linker.instance("nextcloud:connector/storage@0.1.0")?;
    storage.func_wrap("put", |store, (records,)| bounded::put(store, records))?;
    storage.func_wrap("remove", |store, (ids,)| bounded::remove(store, ids))?;
    storage.func_wrap("lookup", |store, (ids,)| {
        Ok((bounded::lookup(store, ids)?,))
    })?;
    let mut records = linker.instance("nextcloud:connector/records@0.1.0")?;
    records.func_wrap("on-changes", |store, (changes,)| {
        Ok((bounded::on_changes(store, changes)?,))
    })?;
    let mut http = linker.instance("nextcloud:connector/http@0.1.0")?;
    http.func_wrap("send", |store, (request,)| {
        Ok((bounded::send(store, request)?,))
    })?;
    http.func_wrap("send-all", |store, (requests,)| {
        Ok((bounded::send_all(store, requests)?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic clock interface as `wasmtime_wasi::p2::add_to_linker_sync`
/// defines it (components importing older 0.2 versions link to it too).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// What a session gets from the run that starts it.
pub struct SessionParts {
    pub http: Arc<HttpClient>,
    pub store: Store,
    pub progress: Arc<dyn ProgressSink>,
}

/// One connector instance with its store. After a trap the instance is
/// unusable; start a new session.
pub struct Session {
    store: wasmtime::Store<HostState>,
    connector: Connector,
    stderr: GuestOutput,
}

impl Session {
    pub fn new(
        component: &LoadedComponent,
        config: &Config,
        parts: SessionParts,
    ) -> Result<Session> {
        let engine = component.pre.engine().clone();
        let stdout = GuestOutput::new("stdout");
        let stderr = GuestOutput::new("stderr");
        // No environment, arguments, directories or network: the connector's
        // only way out is the host's own interfaces.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let slice = Duration::from_millis(config.limits.guest_time_slice_ms);
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: GuestLimiter::new(&config.limits),
            clock: GuestClock::new(slice),
            run: RunDeadline::after(config.limits.max_run),
            limits: config.limits.clone(),
            http: parts.http,
            store: parts.store,
            progress: parts.progress,
            batch_size: config.batch_size,
            sink: SinkStats::default(),
            open_bodies: 0,
        };
        let mut store = wasmtime::Store::new(&engine, state);
        store.limiter(|s| &mut s.limiter);
        // Check a few times per slice, at least every 100 ms.
        let check_ticks = (slice.as_millis() / TICK.as_millis() / 4).clamp(1, 10) as u64;
        store.set_epoch_deadline(check_ticks);
        store.epoch_deadline_callback(move |mut ctx| {
            ctx.data().run.check()?;
            ctx.data_mut().clock.check().map_err(wasmtime::Error::new)?;
            Ok(UpdateDeadline::Continue(check_ticks))
        });
        let connector = component
            .pre
            .instantiate(&mut store)
            .map_err(|e| Error::Component(format!("cannot instantiate the connector: {e:#}")))?;
        Ok(Session {
            store,
            connector,
            stderr,
        })
    }

    fn call<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&life::Guest, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.stderr.clear_recent();
        self.store.data_mut().clock.restart();
        let result = f(
            self.connector.nextcloud_connector_lifecycle(),
            &mut self.store,
        );
        result.map_err(|e| self.trap_error(what, e))
    }

    fn trap_error(&self, what: &str, e: wasmtime::Error) -> Error {
        let slice_ms = self.store.data().clock.slice.as_millis();
        if let Some(s) = e.downcast_ref::<GuestStalled>() {
            return Error::Guest(format!(
                "{what}: the connector ran {} ms without calling the host (`limits.guest_time_slice_ms` is {slice_ms}); it is probably stuck in a loop",
                s.ran_ms
            ));
        }
        if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
            return Error::Guest(format!(
                "{what}: the connector tried to grow its memory to {} MiB, past `limits.memory_mib` = {} MiB",
                m.desired.div_ceil(1 << 20),
                m.limit >> 20
            ));
        }
        if let Some(limit) = e.downcast_ref::<SandboxLimit>() {
            return Error::Guest(format!("{what}: {limit}"));
        }
        if let Some(refused) = e.downcast_ref::<RefusedInput>() {
            return Error::Guest(format!("{what}: {refused}"));
        }
        if let Some(StorageFault(m)) = e.downcast_ref::<StorageFault>() {
            return Error::Storage(m.clone());
        }
        let stderr = self.stderr.recent();
        if let Some(panic) = panic_message(&stderr) {
            return Error::Guest(format!("{what}: the connector {panic}"));
        }
        let mut message = match e.downcast_ref::<Trap>() {
            Some(Trap::UnreachableCodeReached) => format!(
                "{what}: the connector aborted (wasm `unreachable` executed) without printing why"
            ),
            Some(trap) => format!("{what}: the connector trapped: {trap}"),
            None => format!("{what}: {e:#}"),
        };
        if !stderr.is_empty() {
            message.push_str("; its last output: ");
            message.push_str(&stderr.join(" / "));
        }
        Error::Guest(message)
    }

    /// Hands the connector its configuration (never the secret).
    pub fn init(&mut self, config: &Config, now: i64) -> Result<()> {
        let guest_config = convert::guest_config(config, now);
        let r = self.call("init", |g, s| g.call_init(s, &guest_config))?;
        r.map_err(|e| self.guest_error(e))
    }

    pub fn test_connection(&mut self) -> Result<life::ConnectionInfo> {
        let r = self.call("test-connection", |g, s| g.call_test_connection(s))?;
        r.map_err(|e| self.guest_error(e))
    }

    pub fn run_sync(&mut self) -> Result<life::SyncSummary> {
        let r = self.call("run-sync", |g, s| g.call_run_sync(s))?;
        r.map_err(|e| self.guest_error(e))
    }

    /// Streams a record's content into `destination`; returns what the
    /// connector reported and what the destination received.
    pub fn stream_record(
        &mut self,
        record: crate::model::Record,
        destination: Destination,
        options: life::StreamOptions,
    ) -> Result<(life::StreamInfo, Delivered)> {
        let record = convert::record_to_wit(record);
        let handle = self
            .store
            .data_mut()
            .table
            .push(destination)
            .map_err(|e| Error::Guest(format!("cannot hand over the destination: {e}")))?;
        let borrowed = wasmtime::component::Resource::<Destination>::new_borrow(handle.rep());
        let r = self.call("stream-record", |g, s| {
            g.call_stream_record(s, &record, borrowed, &options)
        });
        let destination = self
            .store
            .data_mut()
            .table
            .delete(handle)
            .map_err(|e| Error::Guest(format!("the destination was lost: {e}")))?;
        let info = r?.map_err(|e| self.guest_error(e))?;
        let delivered = destination
            .finish()
            .map_err(|e| Error::Storage(format!("finishing the content failed: {e}")))?;
        Ok((info, delivered))
    }

    /// The guest's own error, made a host error. After a 401 every failure
    /// counts as unauthorized, whatever the connector made of it.
    fn guest_error(&self, e: life::Error) -> Error {
        let rejected = self.store.data().http.credentials_rejected();
        let mapped = match e {
            life::Error::Config(m) => Error::Config(m),
            life::Error::Unauthorized(m) => Error::Unauthorized(m),
            life::Error::Http(m) => Error::Server(m),
            life::Error::Protocol(m) => {
                Error::Server(format!("unreadable answer from Nextcloud: {m}"))
            }
            life::Error::Storage(m) => Error::Storage(m),
            life::Error::NotFound(m) => Error::Server(format!("not found: {m}")),
            life::Error::Content(m) => Error::Server(format!("content: {m}")),
        };
        match mapped {
            Error::Unauthorized(_) => mapped,
            other if rejected => Error::Unauthorized(format!(
                "{other} ({})",
                self.store.data().http.rejected_message()
            )),
            other => other,
        }
    }

    /// The writes the connector staged but never committed; they are dropped.
    pub fn discard_uncommitted(&mut self) -> usize {
        self.store.data_mut().store.discard_staged()
    }

    /// Removes from the change feed what every consumer acknowledged and was
    /// committed before `before` (unix seconds); how many went.
    pub fn trim_feed(&self, before: i64) -> Result<u64> {
        self.store.data().store.feed().trim(before)
    }

    /// The account's store, for the host's own notes.
    pub fn store(&self) -> &Store {
        &self.store.data().store
    }

    /// How the connector used the sink and storage so far.
    pub fn sink_stats(&self) -> SinkStats {
        self.store.data().sink
    }

    /// Host calls the connector made so far.
    pub fn host_calls(&self) -> u64 {
        self.store.data().clock.host_calls
    }

    /// Gives the store back (for inspection after a run).
    pub fn into_store(self) -> Store {
        self.store.into_data().store
    }
}
