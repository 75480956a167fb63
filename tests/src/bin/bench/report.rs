//! The results, the targets of issue 8 they are held to, and their two
//! forms: markdown tables (one per section) and one JSON document.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::backends::BackendRun;
use crate::component::ComponentCost;
use crate::download::{Client, Download};
use crate::rclone::RcloneListing;
use crate::sync::{FullSync, IncrementalSync};
use crate::workers::WorkersRun;

pub const RCLONE_MISSING: &str = "rclone not found (apt-get install rclone)";
pub const RCLONE_SKIPPED: &str = "rclone skipped (--no-rclone)";

// The targets. Memory and sizes are in binary units (MiB), as everything
// else the benchmark prints.
const CPU_US_PER_ENTRY: f64 = 10.0;
const CPU_AT: usize = 100_000;
const PEAK_RSS_MIB: f64 = 150.0;
const RSS_AT: usize = 1_000_000;
const RSS_GROWTH: f64 = 1.3;
const RCLONE_WALL: f64 = 0.5;
const RCLONE_CPU: f64 = 1.0 / 3.0;
const NO_CHANGE_REQUESTS: f64 = 2.0;
/// "k changes, O(k) requests": requests beyond the no-change sync's, per
/// edited file, bounded by a constant that does not grow with the tree. An
/// edit costs its Depth 0 read and a Depth 0 refresh of each folder above
/// it, whose etags all changed (generated trees are at most 8 folders deep
/// below the root); edits under the same folders share those refreshes.
const REQUESTS_PER_CHANGE: f64 = 10.0;
const DOWNLOAD_RATIO: f64 = 0.8;
/// "Flat memory": what a download peaks at whatever the file's size.
const DOWNLOAD_RSS_MIB: f64 = 64.0;
const LOAD_INSTANTIATE_MS: f64 = 20.0;
const WASM_MIB: f64 = 1.0;

const MIB: f64 = (1 << 20) as f64;

/// Everything measured on one generated tree.
pub struct Tree {
    pub full: FullSync,
    pub rclone: Option<RcloneListing>,
    pub incremental: Vec<IncrementalSync>,
}

pub struct Results {
    pub component: ComponentCost,
    /// Why there is no rclone comparison, if there is none.
    pub rclone_note: Option<&'static str>,
    pub trees: Vec<Tree>,
    pub download: Option<Download>,
    /// SQLite against PostgreSQL (`--compare-backends`), per tree.
    pub backends: Vec<BackendRun>,
    /// Workers sharing accounts (`--workers-accounts`), per worker count.
    pub workers: Vec<WorkersRun>,
    /// CPU cores this machine offers the benchmark.
    pub cores: usize,
}

impl Tree {
    fn cpu_us_per_entry(&self) -> f64 {
        self.full.run.cost.cpu_seconds * 1e6 / self.full.listed as f64
    }

    fn wall_ratio(&self) -> Option<f64> {
        let r = self.rclone.as_ref()?;
        Some(self.full.run.cost.seconds / r.cost.seconds)
    }

    fn cpu_ratio(&self) -> Option<f64> {
        let r = self.rclone.as_ref()?;
        Some(self.full.run.cost.cpu_seconds / r.cost.cpu_seconds)
    }

    fn no_change_requests(&self) -> u64 {
        self.incremental
            .iter()
            .find(|s| s.changes == 0)
            .map_or(0, |s| s.run.requests)
    }

    /// Requests beyond the no-change sync's, per edited file.
    fn requests_per_change(&self, s: &IncrementalSync) -> Option<f64> {
        (s.changes > 0).then(|| {
            s.run.requests.saturating_sub(self.no_change_requests()) as f64 / s.changes as f64
        })
    }
}

impl Results {
    fn tree(&self, entries: usize) -> Option<&Tree> {
        self.trees.iter().find(|t| t.full.entries == entries)
    }

    fn rss_growth(&self, tree: &Tree) -> Option<f64> {
        let base = self.tree(CPU_AT)?;
        Some(tree.full.run.cost.peak_mib() / base.full.run.cost.peak_mib())
    }

    fn load_instantiate_ms(&self) -> f64 {
        self.component.load_ms + self.component.instantiate_ms
    }
}

/// One target: a limit and what was measured against it (`None`: not in
/// this run).
struct Target {
    key: &'static str,
    value: Option<f64>,
    limit: f64,
    at_least: bool,
}

impl Target {
    fn at_most(key: &'static str, value: Option<f64>, limit: f64) -> Target {
        Target {
            key,
            value,
            limit,
            at_least: false,
        }
    }

    fn met(&self) -> Option<bool> {
        self.value.map(|v| self.holds(v))
    }

    fn holds(&self, v: f64) -> bool {
        if self.at_least {
            v >= self.limit
        } else {
            v <= self.limit
        }
    }

    fn goal(&self) -> String {
        format!(
            "{} {}",
            if self.at_least { "≥" } else { "≤" },
            num(self.limit)
        )
    }
}

fn worst(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.fold(None, |w, v| Some(w.map_or(v, |w: f64| w.max(v))))
}

/// Every target of the issue, in the order of the tables. A target over
/// several trees or rounds holds its worst value.
fn targets(r: &Results) -> Vec<Target> {
    let trees = || r.trees.iter();
    vec![
        Target::at_most(
            "wasm_mib",
            Some(r.component.wasm_bytes as f64 / MIB),
            WASM_MIB,
        ),
        Target::at_most(
            "load_instantiate_ms",
            Some(r.load_instantiate_ms()),
            LOAD_INSTANTIATE_MS,
        ),
        Target::at_most(
            "cpu_us_per_entry_100k",
            r.tree(CPU_AT).map(Tree::cpu_us_per_entry),
            CPU_US_PER_ENTRY,
        ),
        Target::at_most(
            "peak_rss_mib_1m",
            r.tree(RSS_AT).map(|t| t.full.run.cost.peak_mib()),
            PEAK_RSS_MIB,
        ),
        Target::at_most(
            "rss_ratio_1m_100k",
            r.tree(RSS_AT).and_then(|t| r.rss_growth(t)),
            RSS_GROWTH,
        ),
        Target::at_most(
            "wall_ratio_to_rclone",
            worst(trees().filter_map(Tree::wall_ratio)),
            RCLONE_WALL,
        ),
        Target::at_most(
            "cpu_ratio_to_rclone",
            worst(trees().filter_map(Tree::cpu_ratio)),
            RCLONE_CPU,
        ),
        Target::at_most(
            "no_change_requests",
            worst(trees().map(|t| t.no_change_requests() as f64)),
            NO_CHANGE_REQUESTS,
        ),
        Target::at_most(
            "requests_per_change",
            worst(trees().flat_map(|t| {
                t.incremental
                    .iter()
                    .filter_map(|s| t.requests_per_change(s))
            })),
            REQUESTS_PER_CHANGE,
        ),
        Target {
            key: "download_throughput_ratio",
            value: r.download.as_ref().map(Download::throughput_ratio),
            limit: DOWNLOAD_RATIO,
            at_least: true,
        },
        Target::at_most(
            "download_peak_rss_mib",
            r.download.as_ref().map(|d| d.ours.peak_mib),
            DOWNLOAD_RSS_MIB,
        ),
    ]
}

fn target<'a>(all: &'a [Target], key: &str) -> &'a Target {
    all.iter().find(|t| t.key == key).expect("a known target")
}

/// Three significant digits, without exponent.
pub(crate) fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 4) as usize;
    format!("{x:.decimals$}")
}

pub(crate) fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn met(m: Option<bool>) -> String {
    match m {
        Some(true) => "yes",
        Some(false) => "no",
        None => "n/a",
    }
    .into()
}

/// A tree size as people say it: 10k, 1M.
pub(crate) fn size(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// A markdown table with its columns padded to line up in a terminal.
pub(crate) fn table(out: &mut String, header: Vec<String>, rows: Vec<Vec<String>>) {
    let width = |i: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(3)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |out: &mut String, cells: &[String]| {
        out.push('|');
        for (cell, w) in cells.iter().zip(&widths) {
            let pad = w - cell.chars().count();
            let _ = write!(out, " {cell}{} |", " ".repeat(pad));
        }
        out.push('\n');
    };
    line(out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule);
    for row in &rows {
        line(out, row);
    }
    out.push('\n');
}

fn strings<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

pub fn tables(r: &Results) -> String {
    let all = targets(r);
    let mut out = String::new();
    let c = &r.component;

    out.push_str("### Component\n\n");
    let wasm = target(&all, "wasm_mib");
    let load = target(&all, "load_instantiate_ms");
    table(
        &mut out,
        strings(["component", "value", "target", "met"]),
        vec![
            vec![
                format!(".wasm size (MiB; {} bytes)", c.wasm_bytes),
                opt(wasm.value),
                wasm.goal(),
                met(wasm.met()),
            ],
            strings([
                "engine creation, once per process (ms)",
                &num(c.engine_ms),
                "",
                "",
            ]),
            strings([
                "first load: compile or cache read (ms)",
                &num(c.first_load_ms),
                "",
                "",
            ]),
            strings([
                &format!("cached load (ms, median of {})", c.runs),
                &num(c.load_ms),
                "",
                "",
            ]),
            strings([
                &format!("instantiate + init (ms, median of {})", c.runs),
                &num(c.instantiate_ms),
                "",
                "",
            ]),
            vec![
                "cached load + instantiate (ms)".into(),
                opt(load.value),
                load.goal(),
                met(load.met()),
            ],
        ],
    );

    if !r.trees.is_empty() {
        full_sync_table(&mut out, r, &all);
        rclone_table(&mut out, r, &all);
        incremental_table(&mut out, r);
    }
    download_table(&mut out, r, &all);
    crate::pgreport::tables(&mut out, r);

    let measured: Vec<&Target> = all.iter().filter(|t| t.value.is_some()).collect();
    let _ = writeln!(
        out,
        "Targets met: {} of {} measured ({} not measured in this run).",
        measured.iter().filter(|t| t.met() == Some(true)).count(),
        measured.len(),
        all.len() - measured.len()
    );
    out
}

fn header(first: &str, r: &Results) -> Vec<String> {
    let mut h = vec![first.to_string()];
    h.extend(r.trees.iter().map(|t| size(t.full.entries)));
    h.extend(strings(["target", "met"]));
    h
}

/// A row with one cell per tree and a target's goal and verdict.
fn row(
    label: &str,
    r: &Results,
    cell: impl Fn(&Tree) -> String,
    goal: String,
    verdict: String,
) -> Vec<String> {
    let mut row = vec![label.to_string()];
    row.extend(r.trees.iter().map(cell));
    row.push(goal);
    row.push(verdict);
    row
}

fn full_sync_table(out: &mut String, r: &Results, all: &[Target]) {
    out.push_str("### Full sync (host-runner sync as a child process)\n\n");
    let cpu = target(all, "cpu_us_per_entry_100k");
    let rss = target(all, "peak_rss_mib_1m");
    let growth = target(all, "rss_ratio_1m_100k");
    let cost = |t: &Tree| t.full.run.cost;
    let none = String::new;
    table(
        out,
        header("full sync", r),
        vec![
            row(
                "entries listed (root included)",
                r,
                |t| t.full.listed.to_string(),
                none(),
                none(),
            ),
            row("wall (s)", r, |t| num(cost(t).seconds), none(), none()),
            row(
                "host-runner CPU (s)",
                r,
                |t| num(cost(t).cpu_seconds),
                none(),
                none(),
            ),
            row(
                "simulator CPU meanwhile (s)",
                r,
                |t| num(cost(t).server_cpu_seconds),
                none(),
                none(),
            ),
            row(
                "CPU per entry (µs)",
                r,
                |t| num(t.cpu_us_per_entry()),
                format!("{} at {}", cpu.goal(), size(CPU_AT)),
                met(cpu.met()),
            ),
            row(
                "peak RSS (MiB)",
                r,
                |t| num(cost(t).peak_mib()),
                format!("{} at {}", rss.goal(), size(RSS_AT)),
                met(rss.met()),
            ),
            row(
                &format!("peak RSS / peak RSS at {}", size(CPU_AT)),
                r,
                |t| opt(r.rss_growth(t)),
                format!("{} at {}", growth.goal(), size(RSS_AT)),
                met(growth.met()),
            ),
            row(
                "requests",
                r,
                |t| t.full.run.requests.to_string(),
                none(),
                none(),
            ),
            row(
                "received (MiB)",
                r,
                |t| num(t.full.run.bytes_received as f64 / MIB),
                none(),
                none(),
            ),
        ],
    );
}

fn rclone_table(out: &mut String, r: &Results, all: &[Target]) {
    out.push_str("### Full listing against `rclone lsjson -R` (same simulator, same run)\n\n");
    if let Some(note) = r.rclone_note {
        let _ = writeln!(out, "{note}\n");
    }
    let wall = target(all, "wall_ratio_to_rclone");
    let cpu = target(all, "cpu_ratio_to_rclone");
    let with = |f: fn(&RcloneListing) -> String| {
        move |t: &Tree| t.rclone.as_ref().map(f).unwrap_or_default()
    };
    let none = String::new;
    table(
        out,
        header("listing", r),
        vec![
            row(
                "rclone entries (expected)",
                r,
                with(|l| {
                    let mark = if l.mismatch.is_some() {
                        " MISMATCH"
                    } else {
                        ""
                    };
                    format!("{} ({}){mark}", l.listed, l.expected)
                }),
                none(),
                none(),
            ),
            row(
                "rclone requests",
                r,
                with(|l| l.requests.to_string()),
                none(),
                none(),
            ),
            row(
                "rclone wall (s)",
                r,
                with(|l| num(l.cost.seconds)),
                none(),
                none(),
            ),
            row(
                "rclone CPU (s)",
                r,
                with(|l| num(l.cost.cpu_seconds)),
                none(),
                none(),
            ),
            row(
                "simulator CPU meanwhile (s)",
                r,
                with(|l| num(l.cost.server_cpu_seconds)),
                none(),
                none(),
            ),
            row(
                "rclone peak RSS (MiB)",
                r,
                with(|l| num(l.cost.peak_mib())),
                none(),
                none(),
            ),
            row(
                "wall: full sync / rclone",
                r,
                |t| opt(t.wall_ratio()),
                wall.goal(),
                met(wall.met()),
            ),
            row(
                "CPU: full sync / rclone",
                r,
                |t| opt(t.cpu_ratio()),
                cpu.goal(),
                met(cpu.met()),
            ),
        ],
    );
    for t in &r.trees {
        if let Some(m) = t.rclone.as_ref().and_then(|l| l.mismatch.as_ref()) {
            let _ = writeln!(out, "**MISMATCH at {}:** {m}\n", size(t.full.entries));
        }
    }
}

/// The limit one incremental sync is held to, and whether it holds.
fn incremental_goal(t: &Tree, s: &IncrementalSync) -> (String, Option<bool>) {
    match t.requests_per_change(s) {
        None => (
            format!("≤ {} requests", num(NO_CHANGE_REQUESTS)),
            Some(s.run.requests as f64 <= NO_CHANGE_REQUESTS),
        ),
        Some(per) => (
            format!("≤ {} per change", num(REQUESTS_PER_CHANGE)),
            Some(per <= REQUESTS_PER_CHANGE),
        ),
    }
}

fn incremental_table(out: &mut String, r: &Results) {
    // Wall time includes the host's pacing at the default
    // `requests_per_second`, which bounds large rounds.
    out.push_str(
        "### Incremental sync (records checked against the server after each round; \
         default pacing of 50 requests/s)\n\n",
    );
    let mut rows = Vec::new();
    for t in &r.trees {
        for s in &t.incremental {
            let (goal, verdict) = incremental_goal(t, s);
            rows.push(vec![
                size(t.full.entries),
                if s.changes == 0 {
                    "none".into()
                } else {
                    s.changes.to_string()
                },
                s.run.requests.to_string(),
                opt(t.requests_per_change(s)),
                num(s.run.cost.seconds),
                num(s.run.bytes_received as f64 / 1024.0),
                goal,
                met(verdict),
            ]);
        }
    }
    table(
        out,
        strings([
            "entries",
            "changes",
            "requests",
            "requests per change",
            "wall (s)",
            "received (KiB)",
            "target",
            "met",
        ]),
        rows,
    );
}

fn download_table(out: &mut String, r: &Results, all: &[Target]) {
    let Some(d) = &r.download else {
        out.push_str("### Download\n\nskipped (--download-mib 0)\n\n");
        return;
    };
    let _ = writeln!(
        out,
        "### Download of {} MiB ({}), median of {} runs\n",
        d.size_mib,
        if d.stored {
            "stored in memory"
        } else {
            "generated as read"
        },
        d.runs
    );
    let ratio = target(all, "download_throughput_ratio");
    let rss = target(all, "download_peak_rss_mib");
    let both = |label: &str, f: fn(&Client) -> f64| {
        strings([label, &num(f(&d.curl)), &num(f(&d.ours)), "", ""])
    };
    table(
        out,
        strings(["download", "curl", "host-runner", "target", "met"]),
        vec![
            both("median (s)", |c| c.median_seconds),
            both("best (s)", |c| c.best_seconds),
            both("throughput (MiB/s)", |c| c.mib_per_second),
            vec![
                "throughput: host-runner / curl".into(),
                String::new(),
                opt(ratio.value),
                ratio.goal(),
                met(ratio.met()),
            ],
            vec![
                "peak RSS (MiB)".into(),
                num(d.curl.peak_mib),
                num(d.ours.peak_mib),
                format!("{} (flat)", rss.goal()),
                met(rss.met()),
            ],
        ],
    );
}

/// Rounded for reading; JSON keeps no more digits than were measured.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn client_json(c: &Client) -> Value {
    json!({
        "median_s": round(c.median_seconds),
        "best_s": round(c.best_seconds),
        "mib_per_s": round(c.mib_per_second),
        "peak_rss_mib": round(c.peak_mib),
    })
}

pub fn json(r: &Results) -> Value {
    let c = &r.component;
    let full: Vec<Value> = r
        .trees
        .iter()
        .map(|t| {
            let cost = t.full.run.cost;
            json!({
                "entries": t.full.entries,
                "listed": t.full.listed,
                "wall_s": round(cost.seconds),
                "cpu_s": round(cost.cpu_seconds),
                "simulator_cpu_s": round(cost.server_cpu_seconds),
                "cpu_us_per_entry": round(t.cpu_us_per_entry()),
                "peak_rss_mib": round(cost.peak_mib()),
                "peak_rss_ratio_to_100k": r.rss_growth(t).map(round),
                "requests": t.full.run.requests,
                "bytes_received": t.full.run.bytes_received,
            })
        })
        .collect();
    let rclone: Vec<Value> = r
        .trees
        .iter()
        .map(|t| {
            let l = t.rclone.as_ref();
            json!({
                "entries": t.full.entries,
                "rclone_listed": l.map(|l| l.listed),
                "rclone_expected": l.map(|l| l.expected),
                "rclone_mismatch": l.and_then(|l| l.mismatch.clone()),
                "rclone_requests": l.map(|l| l.requests),
                "rclone_wall_s": l.map(|l| round(l.cost.seconds)),
                "rclone_cpu_s": l.map(|l| round(l.cost.cpu_seconds)),
                "simulator_cpu_s": l.map(|l| round(l.cost.server_cpu_seconds)),
                "rclone_peak_rss_mib": l.map(|l| round(l.cost.peak_mib())),
                "wall_ratio": t.wall_ratio().map(round),
                "cpu_ratio": t.cpu_ratio().map(round),
            })
        })
        .collect();
    let incremental: Vec<Value> = r
        .trees
        .iter()
        .flat_map(|t| {
            t.incremental.iter().map(move |s| {
                let (_, verdict) = incremental_goal(t, s);
                json!({
                    "entries": t.full.entries,
                    "changes": s.changes,
                    "requests": s.run.requests,
                    "requests_per_change": t.requests_per_change(s).map(round),
                    "wall_s": round(s.run.cost.seconds),
                    "bytes_received": s.run.bytes_received,
                    "met": verdict,
                })
            })
        })
        .collect();
    let download = r.download.as_ref().map(|d| {
        json!({
            "size_mib": d.size_mib,
            "stored": d.stored,
            "runs": d.runs,
            "curl": client_json(&d.curl),
            "host_runner": client_json(&d.ours),
            "throughput_ratio": round(d.throughput_ratio()),
        })
    });
    let targets: Vec<Value> = targets(r)
        .iter()
        .map(|t| {
            json!({
                "key": t.key,
                "value": t.value.map(round),
                "limit": round(t.limit),
                "comparison": if t.at_least { ">=" } else { "<=" },
                "met": t.met(),
            })
        })
        .collect();
    json!({
        "component": {
            "wasm_bytes": c.wasm_bytes,
            "engine_ms": round(c.engine_ms),
            "first_load_ms": round(c.first_load_ms),
            "load_ms": round(c.load_ms),
            "instantiate_ms": round(c.instantiate_ms),
            "load_instantiate_ms": round(r.load_instantiate_ms()),
            "runs": c.runs,
        },
        "full_sync": full,
        "rclone_note": r.rclone_note,
        "listing_vs_rclone": rclone,
        "incremental": incremental,
        "download": download,
        "backends": crate::pgreport::backends_json(r),
        "workers": crate::pgreport::workers_json(r),
        "targets": targets,
    })
}
