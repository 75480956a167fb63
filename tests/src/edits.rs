//! Random edits to an account, shared by the property tests (on the
//! simulator) and the real-server suite. Each picks its target by index
//! among what exists when it runs, so every sequence is valid; the server refusing one (a name taken, a folder moved
//! into itself) is part of the game and changes nothing.

use proptest::prelude::*;

use crate::files::Files;

/// Names that need escaping in hrefs, XML or both.
pub const NAMES: &[&str] = &[
    "a.txt", "b c.pdf", "ü#1.md", "100%.txt", "x+y", "dir", "Q?", "it's",
];

#[derive(Debug, Clone)]
pub enum Edit {
    CreateFile {
        parent: usize,
        name: usize,
    },
    CreateFolder {
        parent: usize,
        name: usize,
    },
    Overwrite {
        target: usize,
    },
    Rename {
        target: usize,
        name: usize,
    },
    Move {
        target: usize,
        parent: usize,
    },
    MoveRename {
        target: usize,
        parent: usize,
        name: usize,
    },
    Delete {
        target: usize,
    },
    /// A change no activity reports (external storage, a server-side scan).
    Silent {
        target: usize,
    },
}

/// What an edit did that a test may keep track of.
#[derive(Debug, Default)]
pub struct Done {
    /// The file id a delete sent to the trash bin.
    pub trashed: Option<u64>,
    /// A silent change was made.
    pub silent: bool,
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let i = || 0usize..64;
    let n = || 0usize..NAMES.len();
    prop_oneof![
        4 => (i(), n()).prop_map(|(parent, name)| Edit::CreateFile { parent, name }),
        2 => (i(), n()).prop_map(|(parent, name)| Edit::CreateFolder { parent, name }),
        3 => i().prop_map(|target| Edit::Overwrite { target }),
        2 => (i(), n()).prop_map(|(target, name)| Edit::Rename { target, name }),
        2 => (i(), i()).prop_map(|(target, parent)| Edit::Move { target, parent }),
        1 => (i(), i(), n()).prop_map(|(target, parent, name)| Edit::MoveRename { target, parent, name }),
        2 => i().prop_map(|target| Edit::Delete { target }),
        1 => i().prop_map(|target| Edit::Silent { target }),
    ]
}

/// The account's paths, root first, with whether each is a folder;
/// `folders` keeps only folders.
pub fn paths(files: &dyn Files, folders: bool) -> Vec<(String, bool)> {
    files
        .paths()
        .expect("the server lists its files")
        .into_iter()
        .filter(|(_, is_folder)| !folders || *is_folder)
        .collect()
}

pub fn pick(list: &[(String, bool)], i: usize) -> Option<&(String, bool)> {
    (!list.is_empty()).then(|| &list[i % list.len()])
}

pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Applies `edit` as the account's user; `fixed` are paths it never moves,
/// renames or deletes (a share's mount point). `tick` makes content unique.
pub fn apply(files: &dyn Files, edit: &Edit, tick: u64, fixed: &[&str]) -> Done {
    let content = format!("content {tick}");
    let content = content.as_bytes();
    let movable: Vec<(String, bool)> = paths(files, false)
        .into_iter()
        .filter(|(p, _)| p != "/" && !fixed.contains(&p.as_str()))
        .collect();
    let plain: Vec<(String, bool)> = movable.iter().filter(|(_, f)| !f).cloned().collect();
    let folders = paths(files, true);
    let mut done = Done::default();
    match *edit {
        Edit::CreateFile { parent, name } => {
            if let Some((p, _)) = pick(&folders, parent) {
                let _ = files.put(&join(p, NAMES[name]), content);
            }
        }
        Edit::CreateFolder { parent, name } => {
            if let Some((p, _)) = pick(&folders, parent) {
                let _ = files.mkdir(&join(p, NAMES[name]));
            }
        }
        Edit::Overwrite { target } => {
            if let Some((p, _)) = pick(&plain, target) {
                let _ = files.put(p, content);
            }
        }
        Edit::Rename { target, name } => {
            if let Some((p, _)) = pick(&movable, target) {
                let _ = files.rename(p, &join(parent_of(p), NAMES[name]));
            }
        }
        Edit::Move { target, parent } => {
            if let (Some((p, _)), Some((dest, _))) =
                (pick(&movable, target), pick(&folders, parent))
            {
                let name = p.rsplit('/').next().unwrap_or_default();
                let _ = files.rename(p, &join(dest, name));
            }
        }
        Edit::MoveRename {
            target,
            parent,
            name,
        } => {
            if let (Some((p, _)), Some((dest, _))) =
                (pick(&movable, target), pick(&folders, parent))
            {
                let _ = files.rename(p, &join(dest, NAMES[name]));
            }
        }
        Edit::Delete { target } => {
            if let Some((p, _)) = pick(&movable, target) {
                let id = files.fileid(p).ok().flatten();
                if files.delete(p).is_ok() {
                    done.trashed = id;
                }
            }
        }
        Edit::Silent { target } => {
            if let Some((p, _)) = pick(&plain, target) {
                done.silent = files
                    .put_unreported(p, format!("silent {tick}").as_bytes())
                    .is_ok();
            }
        }
    }
    done
}
