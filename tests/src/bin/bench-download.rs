//! Throughput and peak memory of `host-runner download` (the content through
//! the sandboxed connector) against `curl` on the same file of the simulator.
//!
//! ```sh
//! cargo guest && cargo build --release -p host-runner -p tests --bins
//! target/release/bench-download [SIZE_MIB] [RUNS] [stored]   # default 1024 MiB, 3 runs
//! ```
//!
//! The simulator runs in this process and by default generates the content
//! as it is read, so both clients pay the same for it (it is the bottleneck
//! near 400 MiB/s); `stored` serves bytes held in memory instead, to find
//! the clients' own ceiling. Each run writes to a file in a temporary
//! directory, and each output is compared with the served bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nextcloud_sim::SimOptions;
use tests::download::{dav_path, same_bytes, served, wait_with_peak_rss};
use tests::{Account, PASSWORD, PASSWORD_ENV};

const PATH: &str = "/bench/Q1 résumé #1 & 100% (final)?.bin";

struct Sample {
    seconds: f64,
    peak_kib: u64,
}

fn measure(mut command: Command, out: &Path, account: &Account, size: u64) -> Sample {
    let _ = std::fs::remove_file(out);
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let (status, peak_kib) = wait_with_peak_rss(child);
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "{command:?} failed: {status}");
    let (_, body) = served(account, PATH);
    assert_eq!(
        same_bytes(File::open(out).unwrap(), body),
        Ok(size),
        "{command:?} wrote something else"
    );
    Sample { seconds, peak_kib }
}

fn report(name: &str, samples: &[Sample], size: u64) {
    let mut secs: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let mib = size as f64 / (1 << 20) as f64;
    let peak = samples.iter().map(|s| s.peak_kib).max().unwrap_or(0);
    println!(
        "{name:<28} median {median:>6.2} s  {:>7.0} MiB/s  (best {:>6.2} s)  peak RSS {:>6.1} MiB",
        mib / median,
        secs[0],
        peak as f64 / 1024.0
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let stored = args.next().is_some_and(|a| a == "stored");
    let size = size_mib << 20;
    let host_runner: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("host-runner");
    assert!(
        host_runner.exists(),
        "{} is missing: cargo build --release -p host-runner",
        host_runner.display()
    );

    let account = Account::new(SimOptions::default());
    account.sim().mkdir("/bench").unwrap();
    account.sim().put_sized(PATH, size).unwrap();
    if stored {
        let bytes = account.sim().read(PATH).unwrap();
        account.sim().put(PATH, bytes).unwrap();
    }
    let sync = Command::new(&host_runner)
        .args(["sync", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    assert!(sync.status.success(), "{sync:?}");
    let url = format!("{}{}", account.server.base_url(), {
        let p = dav_path(&account, PATH);
        p[account.sim().options().subpath.len()..].to_string()
    });
    let login = account.sim().options().login;
    let out = account.dir.path().join("out.bin");

    println!(
        "{size_mib} MiB ({}) from the simulator on loopback, {runs} runs each:",
        if stored {
            "stored in memory"
        } else {
            "generated as read"
        }
    );
    let mut curl = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..runs {
        let mut c = Command::new("curl");
        c.args(["--silent", "--show-error", "--fail", "--user"])
            .arg(format!("{login}:{PASSWORD}"))
            .arg("--output")
            .arg(&out)
            .arg(&url);
        curl.push(measure(c, &out, &account, size));

        let mut h = Command::new(&host_runner);
        h.args(["download", "--path", PATH, "--output"])
            .arg(&out)
            .arg("--config")
            .arg(&account.config_path)
            .arg("--component")
            .arg(&account.component)
            .env(PASSWORD_ENV, PASSWORD);
        ours.push(measure(h, &out, &account, size));
    }
    report("curl", &curl, size);
    report("host-runner download", &ours, size);
}
