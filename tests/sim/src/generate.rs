//! A large, deterministic, realistic-looking tree for scale tests and
//! benchmarks: folders of 5–50 children, ~10% folders, depth up to 8, names
//! of 5–40 characters (some with spaces and non-ASCII), sizes from bytes to MBs.

use std::collections::VecDeque;

use crate::content::{Content, splitmix64};
use crate::sim::Simulator;
use crate::tree::{Op, Tree};

const MAX_DEPTH: u32 = 8;
const YEAR_2015: i64 = 1_420_070_400;
const TEN_YEARS: u64 = 315_576_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "report",
    "notes",
    "budget",
    "invoice",
    "draft",
    "final",
    "meeting",
    "summary",
    "plan",
    "photo",
    "scan",
    "contract",
    "letter",
    "backup",
    "export",
    "minutes",
    "slides",
    "thesis",
    "recipe",
    "travel",
    "résumé",
    "café",
    "naïve",
    "Straße",
    "Ünïcødé",
    "日本語",
    "Ελληνικά",
    "Русский",
    "emoji 🎉",
    "año",
];
const FOLDER_WORDS: &[&str] = &[
    "Projects",
    "Archive",
    "Photos",
    "Clients",
    "Invoices",
    "Family",
    "Holidays",
    "Work",
    "School",
    "Music",
    "Scans",
    "Shared",
    "Old stuff",
    "Dokumente",
    "Téléchargements",
    "写真",
    "Backups",
    "Misc",
];
const EXTENSIONS: &[&str] = &[
    "txt", "md", "pdf", "jpg", "png", "docx", "xlsx", "odt", "ods", "csv", "mp3", "mp4", "zip",
    "py",
];

fn file_name(rng: &mut Rng) -> String {
    let ext = rng.pick(EXTENSIONS);
    let stem = match rng.below(5) {
        0 => format!("IMG_{:04}", rng.below(10_000)),
        1 => format!("{} {}", rng.pick(WORDS), 2000 + rng.below(26)),
        2 => format!(
            "{}_{}-{:02}",
            rng.pick(WORDS),
            2000 + rng.below(26),
            1 + rng.below(12)
        ),
        3 => format!("{} {} {}", rng.pick(WORDS), rng.pick(WORDS), rng.below(100)),
        _ => format!("{}-{}", rng.pick(WORDS), rng.below(1000)),
    };
    fit(stem, ext)
}

fn folder_name(rng: &mut Rng) -> String {
    let name = match rng.below(4) {
        0 => rng.pick(FOLDER_WORDS).to_string(),
        1 => format!("{} {}", rng.pick(FOLDER_WORDS), 2000 + rng.below(26)),
        2 => format!("{} {}", rng.pick(FOLDER_WORDS), rng.pick(WORDS)),
        _ => format!("{}-{}", rng.pick(WORDS), rng.below(100)),
    };
    fit(name, "")
}

/// Pads short names and cuts long ones (on a char boundary) to 5–40 chars.
fn fit(mut stem: String, ext: &str) -> String {
    let budget = 40 - if ext.is_empty() { 0 } else { ext.len() + 1 };
    if stem.chars().count() > budget {
        stem = stem
            .chars()
            .take(budget)
            .collect::<String>()
            .trim_end()
            .to_string();
    }
    while stem.chars().count() + ext.len() < 5 {
        stem.push('_');
    }
    if ext.is_empty() {
        stem
    } else {
        format!("{stem}.{ext}")
    }
}

/// A name not yet used in `folder`, numbering duplicates like a desktop would.
fn unique(tree: &Tree, folder: u64, name: String) -> String {
    let children = tree
        .node(folder)
        .and_then(|n| n.children())
        .expect("folder");
    if !children.contains_key(name.as_str()) {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    (2..)
        .map(|i| format!("{stem} ({i}){ext}"))
        .find(|c| !children.contains_key(c.as_str()))
        .expect("some number is free")
}

/// Sizes spread over orders of magnitude (8 B to 8 MB), mostly small.
fn file_size(rng: &mut Rng) -> u64 {
    let bits = rng.range(3, 22);
    (1 << bits) + rng.below(1 << bits)
}

impl Simulator {
    /// Adds `entries` nodes under the root, deterministically for a given
    /// `seed` (fileids, names, sizes, file mtimes and contents). Generated
    /// nodes write no change-log entries: they model files older than the
    /// activity history.
    pub fn generate(&self, entries: usize, seed: u64) {
        let mut st = self.lock();
        let tree = &mut st.tree;
        let recording = tree.record_changes;
        tree.record_changes = false;
        let mut rng = Rng(seed);
        let mut queue = VecDeque::from([(tree.root, 0u32)]);
        let mut folders = vec![(tree.root, 0u32)];
        let mut created = 0;
        while created < entries {
            // Breadth-first keeps the fan-out realistic; when every folder has
            // had its turn, top up random ones.
            let (folder, depth) = queue
                .pop_front()
                .unwrap_or_else(|| folders[rng.below(folders.len() as u64) as usize]);
            let fanout = (rng.range(5, 50) as usize).min(entries - created);
            for _ in 0..fanout {
                let make_folder = depth < MAX_DEPTH && rng.below(10) == 0;
                if make_folder {
                    let name = unique(tree, folder, folder_name(&mut rng));
                    let id = tree
                        .apply(Op::Mkdir {
                            parent: folder,
                            name: &name,
                        })
                        .expect("generated folder names are valid and unique");
                    queue.push_back((id, depth + 1));
                    folders.push((id, depth + 1));
                } else {
                    let name = unique(tree, folder, file_name(&mut rng));
                    let size = file_size(&mut rng);
                    let mtime = YEAR_2015 + rng.below(TEN_YEARS) as i64;
                    let content = Content::Synthetic {
                        seed: rng.next(),
                        size,
                    };
                    tree.apply(Op::Put {
                        parent: folder,
                        name: &name,
                        content,
                        mtime: Some(mtime),
                    })
                    .expect("generated file names are valid and unique");
                }
                created += 1;
            }
        }
        tree.record_changes = recording;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_limits() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            for name in [file_name(&mut rng), folder_name(&mut rng)] {
                let n = name.chars().count();
                assert!((5..=40).contains(&n), "{name:?} has {n} chars");
                crate::tree::validate_name(&name).unwrap();
            }
        }
    }
}
