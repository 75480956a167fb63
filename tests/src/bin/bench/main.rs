//! One benchmark for the connector and its host (GitHub issue 8): full and
//! incremental syncs of generated trees, the same trees listed by rclone,
//! a large download against curl, and the component's own costs, each
//! against the issue's targets.
//!
//! ```sh
//! cargo guest && cargo build --release -p host-runner -p tests --bins
//! target/release/bench                     # 10k, 100k and 1M entries (minutes)
//! target/release/bench --json              # one JSON document on stdout
//! target/release/bench --entries 10000 --download-mib 256   # quick
//! # PostgreSQL: SQLite against PostgreSQL on the same tree (full sync and
//! # feed read), and 1 against 3 workers sharing 10 accounts by lease
//! target/release/bench --no-trees --download-mib 0 --entries 10000 \
//!     --compare-backends --workers-accounts 10 --workers-entries 1000
//! ```

use clap::Parser;

/// A progress line on stderr: stdout holds only the report. Defined before
/// the modules, so they all see it.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("bench: {}", format_args!($($arg)*))
    };
}

mod backends;
mod component;
mod download;
mod pgreport;
mod process;
mod rclone;
mod report;
mod sync;
mod workers;

use process::{BUILD, sibling};
use report::{Results, Tree};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmarks the sandboxed Nextcloud connector against the built-in simulator",
    long_about = "Benchmarks the sandboxed Nextcloud connector against the built-in simulator, \
        running on loopback in this process: for each generated tree a full sync, an \
        incremental sync with no change and after k edits (each checked against the \
        server), and `rclone lsjson -R` on the same tree; then a download through the \
        guest against curl on the same URL, and the component's size, load and \
        instantiate times. Prints markdown tables with the targets of issue 8, or JSON.",
    after_help = concat!(
        "Build everything it runs first:\n  ",
        "cargo guest && cargo build --release -p host-runner -p tests --bins",
        "\n\nA quick run:\n  target/release/bench --entries 10000 --download-mib 256"
    )
)]
struct Args {
    /// Sizes of the generated trees, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    entries: Vec<usize>,
    /// Numbers of files edited before each incremental sync, comma-separated
    /// (a number larger than the tree's file count is skipped).
    #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
    changes: Vec<usize>,
    /// Size of the downloaded file in MiB; 0 skips the download.
    #[arg(long, default_value_t = 1024)]
    download_mib: u64,
    /// Serve the download from memory instead of generating it as read, to
    /// find the clients' own ceiling.
    #[arg(long)]
    download_stored: bool,
    /// Download runs and load/instantiate repetitions; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Skip the rclone comparison.
    #[arg(long)]
    no_rclone: bool,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Skip the full, rclone and incremental measurements of each tree (the
    /// PostgreSQL measurements below still run).
    #[arg(long)]
    no_trees: bool,
    /// On each --entries tree, also a full sync into a fresh SQLite file and
    /// a fresh PostgreSQL database (a throwaway server), each followed by a
    /// read of the whole change feed, in process and by `host-runner
    /// changes --json` page by page.
    #[arg(long)]
    compare_backends: bool,
    /// Changes per feed read (per `host-runner changes --limit`).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    feed_limit: u32,
    /// Accounts (each its own simulator) shared by `host-runner run` workers
    /// on one PostgreSQL database; 0 skips the workers measurement.
    #[arg(long, default_value_t = 0)]
    workers_accounts: usize,
    /// Generated entries per account of the workers measurement.
    #[arg(long, default_value_t = 10_000)]
    workers_entries: usize,
    /// Numbers of worker processes to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    workers: Vec<usize>,
    /// Give up on a worker count after this many seconds.
    #[arg(long, default_value_t = 3600)]
    workers_timeout: u64,
}

fn main() {
    let args = Args::parse();
    let runs = args.runs as usize;
    let host_runner_e2e = sibling("host-runner-e2e");
    let host_runner = (args.download_mib > 0).then(|| sibling("host-runner"));
    let wants_postgres = args.compare_backends || args.workers_accounts > 0;
    let host_runner_cli = wants_postgres.then(|| sibling("host-runner"));
    if args.workers.contains(&0) {
        process::fail("--workers: each number of workers must be at least 1");
    }
    if !tests_wasm_exists() {
        process::fail(&format!(
            "the connector component is missing; build it with\n  {BUILD}"
        ));
    }

    // First, so the compiled-component cache is warm before any measured
    // sync: compile time belongs to the load row, not to CPU per entry.
    note!("component: load and instantiate, {runs} runs");
    let component = component::bench(runs);

    let (rclone, rclone_note) = if args.no_rclone {
        (None, Some(report::RCLONE_SKIPPED))
    } else {
        match rclone::Rclone::find() {
            Some(found) => (Some(found), None),
            None => {
                note!("{}", report::RCLONE_MISSING);
                (None, Some(report::RCLONE_MISSING))
            }
        }
    };

    let mut trees = Vec::new();
    for &entries in args.entries.iter().filter(|_| !args.no_trees) {
        note!("tree of {entries} entries");
        let account = sync::generated(entries);
        let full = sync::full(&account, &host_runner_e2e, entries);
        account.assert_mirrors_server();
        let listing = rclone.as_ref().map(|r| {
            note!("rclone lsjson -R");
            let listing = r.list(&account);
            note!(
                "rclone listed {} entries in {:.2} s",
                listing.listed,
                listing.cost.seconds
            );
            if let Some(m) = &listing.mismatch {
                note!("MISMATCH: rclone does not see the tree the simulator holds: {m}");
            }
            listing
        });
        let incremental = sync::incremental(&account, &host_runner_e2e, &args.changes);
        trees.push(Tree {
            full,
            rclone: listing,
            incremental,
        });
    }

    let download = host_runner.map(|exe| {
        note!("download of {} MiB, {runs} runs each", args.download_mib);
        download::bench(&exe, args.download_mib, runs, args.download_stored)
    });

    let postgres = wants_postgres.then(|| {
        note!("starting a throwaway PostgreSQL server");
        let pg = std::sync::Arc::new(
            tests::postgres::Postgres::start()
                .unwrap_or_else(|e| process::fail(&format!("no PostgreSQL: {e}"))),
        );
        process::stop_on_fail(pg.clone());
        pg
    });
    let mut backends = Vec::new();
    if let (true, Some(pg), Some(cli)) = (args.compare_backends, &postgres, &host_runner_cli) {
        for &entries in &args.entries {
            note!("SQLite against PostgreSQL on a tree of {entries} entries");
            backends.extend(backends::compare(
                entries,
                pg,
                &host_runner_e2e,
                cli,
                args.feed_limit,
            ));
        }
    }
    let mut worker_runs = Vec::new();
    if let (true, Some(pg), Some(cli)) = (args.workers_accounts > 0, &postgres, &host_runner_cli) {
        let fleet = workers::Fleet::generate(args.workers_accounts, args.workers_entries);
        let component = tests::connector_wasm();
        for &count in &args.workers {
            note!(
                "{count} worker(s) on {} accounts of {} entries",
                args.workers_accounts,
                args.workers_entries
            );
            worker_runs.push(fleet.run(
                pg,
                cli,
                &component,
                count,
                std::time::Duration::from_secs(args.workers_timeout),
            ));
        }
    }

    let results = Results {
        component,
        rclone_note,
        trees,
        download,
        backends,
        workers: worker_runs,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&results)).expect("JSON")
        );
    } else {
        print!("{}", report::tables(&results));
    }
    process::release_postgres();
    drop(postgres);
}

/// Whether `cargo guest` has built the connector ([`tests::connector_wasm`]
/// panics when it has not, with less to say about the rest of the build).
fn tests_wasm_exists() -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(tests::connector_wasm).is_ok();
    std::panic::set_hook(hook);
    found
}
