//! Throughput and peak memory of `host-runner download` (the content through
//! the sandboxed connector) against `curl` on the same file of the simulator.
//!
//! The simulator runs in the benchmark's process and by default generates
//! the content as it is read, so both clients pay the same for it (it is the
//! bottleneck near 400 MiB/s); `--download-stored` serves bytes held in
//! memory instead, to find the clients' own ceiling. Each run writes to a
//! file in a temporary directory, and each output is compared with the
//! served bytes.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use nextcloud_sim::SimOptions;
use tests::download::{dav_path, same_bytes, served};
use tests::{Account, PASSWORD, PASSWORD_ENV};

use crate::process::{Cost, fail, median, run};

const PATH: &str = "/bench/Q1 résumé #1 & 100% (final)?.bin";

/// One client's runs.
pub struct Client {
    pub median_seconds: f64,
    pub best_seconds: f64,
    pub mib_per_second: f64,
    /// The highest of its runs.
    pub peak_mib: f64,
}

pub struct Download {
    pub size_mib: u64,
    pub stored: bool,
    pub runs: usize,
    pub curl: Client,
    pub ours: Client,
}

impl Download {
    /// Ours over curl's.
    pub fn throughput_ratio(&self) -> f64 {
        self.ours.mib_per_second / self.curl.mib_per_second
    }
}

fn measure(command: &mut Command, out: &Path, account: &Account, size: u64) -> Cost {
    let _ = std::fs::remove_file(out);
    let (status, cost) = run(command.stdout(Stdio::null()).stderr(Stdio::inherit()));
    if !status.success() {
        fail(&format!("{command:?} failed: {status}"));
    }
    let (_, body) = served(account, PATH);
    if let Err(e) = same_bytes(File::open(out).unwrap(), body).and_then(|n| {
        (n == size)
            .then_some(())
            .ok_or_else(|| format!("{n} bytes instead of {size}"))
    }) {
        fail(&format!("{command:?} wrote something else: {e}"));
    }
    cost
}

fn summarize(samples: &[Cost], size_mib: u64) -> Client {
    let secs: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
    let median_seconds = median(&secs);
    Client {
        median_seconds,
        best_seconds: secs.iter().copied().fold(f64::INFINITY, f64::min),
        mib_per_second: size_mib as f64 / median_seconds,
        peak_mib: samples.iter().map(Cost::peak_mib).fold(0.0, f64::max),
    }
}

pub fn bench(host_runner: &Path, size_mib: u64, runs: usize, stored: bool) -> Download {
    let size = size_mib << 20;
    let account = Account::new(SimOptions::default());
    account.sim().mkdir("/bench").unwrap();
    account.sim().put_sized(PATH, size).unwrap();
    if stored {
        let bytes = account.sim().read(PATH).unwrap();
        account.sim().put(PATH, bytes).unwrap();
    }
    let sync = Command::new(host_runner)
        .args(["sync", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    if !sync.status.success() {
        fail(&format!("sync before the download failed: {sync:?}"));
    }
    let url = format!("{}{}", account.server.base_url(), {
        let p = dav_path(&account, PATH);
        p[account.sim().options().subpath.len()..].to_string()
    });
    let login = account.sim().options().login;
    let out = account.dir.path().join("out.bin");

    let mut curl = Vec::new();
    let mut ours = Vec::new();
    for i in 0..runs {
        note!("download run {} of {runs}", i + 1);
        curl.push(measure(
            Command::new("curl")
                .args(["--silent", "--show-error", "--fail", "--user"])
                .arg(format!("{login}:{PASSWORD}"))
                .arg("--output")
                .arg(&out)
                .arg(&url),
            &out,
            &account,
            size,
        ));
        ours.push(measure(
            Command::new(host_runner)
                .args(["download", "--path", PATH, "--output"])
                .arg(&out)
                .arg("--config")
                .arg(&account.config_path)
                .arg("--component")
                .arg(&account.component)
                .env(PASSWORD_ENV, PASSWORD),
            &out,
            &account,
            size,
        ));
    }
    Download {
        size_mib,
        stored,
        runs,
        curl: summarize(&curl, size_mib),
        ours: summarize(&ours, size_mib),
    }
}
