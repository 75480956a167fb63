//! Running a measured child process: its wall time, CPU time and peak
//! resident memory, each its own and not the benchmark's.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use tests::download::wait_with_peak_rss;

/// The build command that produces every binary the benchmark runs.
pub const BUILD: &str = "cargo guest && cargo build --release -p host-runner -p tests --bins";

/// What one child cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// The benchmark's own CPU meanwhile: mostly the simulator answering.
    pub server_cpu_seconds: f64,
    pub peak_kib: u64,
}

impl Cost {
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// User plus system time of `who`. For `RUSAGE_CHILDREN`, that of every
/// child reaped so far: the delta around one child is that child's alone
/// because the benchmark runs one at a time (the simulator's threads count
/// as the benchmark's own, `RUSAGE_SELF`).
fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Runs `command` to its end with stdin closed and stdout and stderr where
/// the caller set them.
pub fn run(command: &mut Command) -> (ExitStatus, Cost) {
    let cpu_before = cpu(libc::RUSAGE_CHILDREN);
    let server_before = cpu(libc::RUSAGE_SELF);
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {command:?}: {e}")));
    let (status, peak_kib) = wait_with_peak_rss(child);
    let cost = Cost {
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu(libc::RUSAGE_CHILDREN) - cpu_before,
        server_cpu_seconds: cpu(libc::RUSAGE_SELF) - server_before,
        peak_kib,
    };
    (status, cost)
}

/// A binary built beside this one.
pub fn sibling(name: &str) -> PathBuf {
    let path = std::env::current_exe()
        .expect("the path of this executable")
        .with_file_name(name);
    if !path.is_file() {
        fail(&format!(
            "{} is missing; build everything the benchmark runs with\n  {BUILD}",
            path.display()
        ));
    }
    path
}

/// The PostgreSQL server the benchmark started, if any: [`fail`] exits
/// without running destructors, so it stops the server itself.
static POSTGRES: std::sync::Mutex<Option<std::sync::Arc<tests::postgres::Postgres>>> =
    std::sync::Mutex::new(None);

/// Has [`fail`] stop `postgres` before the benchmark exits.
pub fn stop_on_fail(postgres: std::sync::Arc<tests::postgres::Postgres>) {
    *POSTGRES.lock().unwrap_or_else(|e| e.into_inner()) = Some(postgres);
}

/// Undoes [`stop_on_fail`], so the server stops when the last of its
/// owners drops it.
pub fn release_postgres() {
    POSTGRES.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Ends the benchmark with a message on stderr.
pub fn fail(message: &str) -> ! {
    eprintln!("bench: {message}");
    let postgres = POSTGRES.try_lock().ok().and_then(|mut p| p.take());
    if let Some(postgres) = postgres {
        // Its data directory stays behind: only its drop removes that.
        let _ = std::panic::catch_unwind(|| postgres.stop());
    }
    std::process::exit(1)
}

/// The median of `values` (the upper one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
