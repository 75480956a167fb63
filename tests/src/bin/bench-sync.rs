//! Sync costs on a generated tree: a full sync run as a child process (wall
//! time, CPU per entry, peak RSS, requests), then incremental syncs after
//! no change and after k changes (requests, wall time).
//!
//! ```sh
//! cargo guest && cargo build --release -p host-runner -p tests --bins
//! target/release/bench-sync [ENTRIES] [K…]      # default 100000 entries, k = 1 100 10000
//! ```
//!
//! The simulator runs in this process; each sync is a `host-runner-e2e sync
//! --json` child, so its CPU and memory are its own.

use std::process::{Command, Stdio};
use std::time::Instant;

use nextcloud_sim::SimOptions;
use tests::download::wait_with_peak_rss;
use tests::{Account, PASSWORD, PASSWORD_ENV};

struct Sample {
    summary: serde_json::Value,
    seconds: f64,
    cpu_seconds: f64,
    peak_kib: u64,
}

fn cpu_of_children() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn sync(account: &Account) -> Sample {
    let exe = std::env::current_exe()
        .unwrap()
        .with_file_name("host-runner-e2e");
    let cpu_before = cpu_of_children();
    let started = Instant::now();
    let child = Command::new(&exe)
        .args(["sync", "--json", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let (status, peak_kib) = wait_with_peak_rss(child);
    let output = reader.join().unwrap();
    assert!(status.success(), "sync failed: {output}");
    Sample {
        summary: serde_json::from_str(output.trim()).expect("sync --json prints one object"),
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_of_children() - cpu_before,
        peak_kib,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entries: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let ks: Vec<usize> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![1, 100, 10_000]
    };
    let account = Account::new(SimOptions::default());
    account.sim().generate(entries, 42);
    let listed = account.sim().listing().len();

    let full = sync(&account);
    println!("| run | entries or k | requests | wall s | CPU µs/entry | peak RSS MiB |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| full | {listed} | {} | {:.2} | {:.1} | {:.1} |",
        full.summary["requests"],
        full.seconds,
        full.cpu_seconds * 1e6 / listed as f64,
        full.peak_kib as f64 / 1024.0
    );
    let quiet = sync(&account);
    println!(
        "| no change | 0 | {} | {:.3} | - | {:.1} |",
        quiet.summary["requests"],
        quiet.seconds,
        quiet.peak_kib as f64 / 1024.0
    );
    let files: Vec<String> = account
        .sim()
        .listing()
        .into_iter()
        .filter(|e| !e.is_folder)
        .map(|e| e.path)
        .collect();
    for (round, k) in ks.into_iter().enumerate() {
        for i in 0..k {
            let path = &files[(i * 7919 + round * 104_729) % files.len()];
            account
                .sim()
                .put(path, format!("edit {round} {i}"))
                .unwrap();
        }
        let s = sync(&account);
        println!(
            "| {k} edits | {k} | {} | {:.3} | - | {:.1} |",
            s.summary["requests"],
            s.seconds,
            s.peak_kib as f64 / 1024.0
        );
        account.assert_mirrors_server();
    }
}
