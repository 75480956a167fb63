//! The process's one wasmtime `Engine`, with epoch interruption driven by a
//! ticker thread.

use crate::error::{Error, Result};
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(10);

static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();

/// The shared engine; the first call starts the epoch ticker.
pub fn engine() -> Result<Engine> {
    ENGINE
        .get_or_init(|| {
            let mut config = wasmtime::Config::new();
            config.epoch_interruption(true);
            // Profiling: names the guest's compiled functions for `perf report`
            // (/tmp/perf-<pid>.map); costs nothing when unset.
            if std::env::var_os("HOST_RUNNER_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let ticker = engine.weak();
            std::thread::Builder::new()
                .name("epoch-ticker".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(TICK);
                    }
                })
                .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
            Ok(engine)
        })
        .clone()
        .map_err(|e| Error::Component(format!("cannot create the WebAssembly engine: {e}")))
}
