//! The component's own costs: the `.wasm` size, loading it from the
//! compiled-code cache, and making an instance ready to sync.

use std::sync::Arc;
use std::time::Instant;

use host_runner::http::HttpClient;
use host_runner::progress::NoProgress;
use host_runner::runtime::{LoadedComponent, Session, SessionParts, engine};
use host_runner::store::Store;
use nextcloud_sim::SimOptions;
use tests::Account;

use crate::process::{fail, median};

pub struct ComponentCost {
    pub wasm_bytes: u64,
    /// The process's one wasmtime engine, created once before any load.
    pub engine_ms: f64,
    /// The first load: a compile when the cache was cold, else a cache read.
    pub first_load_ms: f64,
    pub load_ms: f64,
    pub instantiate_ms: f64,
    pub runs: usize,
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Also leaves the compiled component in the on-disk cache, so the syncs
/// measured afterwards (children sharing that cache) never pay a compile.
pub fn bench(runs: usize) -> ComponentCost {
    let wasm = tests::connector_wasm();
    let wasm_bytes = std::fs::metadata(&wasm)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", wasm.display())))
        .len();

    let started = Instant::now();
    engine::engine().unwrap_or_else(|e| fail(&e.to_string()));
    let engine_ms = ms(started);

    let started = Instant::now();
    let component = LoadedComponent::from_file(&wasm).unwrap_or_else(|e| fail(&e.to_string()));
    let first_load_ms = ms(started);

    let loads: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            LoadedComponent::from_file(&wasm).unwrap_or_else(|e| fail(&e.to_string()));
            ms(started)
        })
        .collect();

    // Instantiation as a sync starts it (`commands::Run::start_with`): a
    // store, an HTTP client and the instance, then `init` with the config.
    // The SQLite file and the HTTP client are built outside the timer: they
    // are the host's, not the component's.
    let account = Account::new(SimOptions::default());
    let config = account.config();
    let secret = config.secret().unwrap_or_else(|e| fail(&e.to_string()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let instantiations: Vec<f64> = (0..runs)
        .map(|_| {
            let parts = SessionParts {
                http: Arc::new(HttpClient::new(&config, &secret)),
                store: Store::open_in_memory().unwrap_or_else(|e| fail(&e.to_string())),
                progress: Arc::new(NoProgress),
            };
            let started = Instant::now();
            let mut session =
                Session::new(&component, &config, parts).unwrap_or_else(|e| fail(&e.to_string()));
            session
                .init(&config, now)
                .unwrap_or_else(|e| fail(&e.to_string()));
            ms(started)
        })
        .collect();

    ComponentCost {
        wasm_bytes,
        engine_ms,
        first_load_ms,
        load_ms: median(&loads),
        instantiate_ms: median(&instantiations),
        runs,
    }
}
