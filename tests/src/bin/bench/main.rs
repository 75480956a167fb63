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
//! ```

use clap::Parser;

/// A progress line on stderr: stdout holds only the report. Defined before
/// the modules, so they all see it.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("bench: {}", format_args!($($arg)*))
    };
}

mod component;
mod download;
mod process;
mod rclone;
mod report;
mod sync;

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
}

fn main() {
    let args = Args::parse();
    let runs = args.runs as usize;
    let host_runner_e2e = sibling("host-runner-e2e");
    let host_runner = (args.download_mib > 0).then(|| sibling("host-runner"));
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
    for &entries in &args.entries {
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

    let results = Results {
        component,
        rclone_note,
        trees,
        download,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&results)).expect("JSON")
        );
    } else {
        print!("{}", report::tables(&results));
    }
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
