//! A long scripted sequence of real operations, run against the real
//! Nextcloud and the simulator alike: an awkward tree, then creates,
//! overwrites, renames and moves within folders, into and out of the root,
//! folder renames and moves with their contents, deletes, restores from the
//! trash bin, bursts the server groups, copies, and another user's edits
//! inside a share. After every step an incremental sync must find the
//! changes by the activity stream alone and leave the records equal to the
//! server's own listing.

use std::cell::RefCell;
use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};

use crate::files::Files;
use crate::nextcloud::Dav;
use crate::remote::{RemoteAccount, assert_mirrors, without_versions};

/// The folder alice shares with bob (all permissions).
pub const SHARED: &str = "/Shared with Bob";

/// Content of a given length that differs by `seed`.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names that need escaping in hrefs, XML or JSON, or are not ASCII.
pub const TREE: &[&str] = &[
    "/Reports 2024/Q1 résumé.pdf",
    "/Reports 2024/Drafts/draft #1.md",
    "/Spécial #1 & 100% done/x=1;y=2.txt",
    "/Spécial #1 & 100% done/a+b c.txt",
    "/Projects/alpha/notes.txt",
    "/Projects/beta/it's quoted.txt",
    "/Projects/beta/deep/er/file.txt",
    "/emoji 😀/[brackets] {braces}.md",
    "/中文/文件.txt",
    "/what?.txt",
    "/a#b.txt",
    "/100% pure.txt",
    "/Shared with Bob/plan.txt",
];

/// Builds [`TREE`] and shares [`SHARED`] with `bob`.
pub fn build_tree(alice: &dyn Files, bob: &str) -> Result<()> {
    let mut made: Vec<String> = Vec::new();
    for (i, path) in TREE.iter().enumerate() {
        let mut folder = String::new();
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
        for segment in parent.split('/').filter(|s| !s.is_empty()) {
            folder.push('/');
            folder.push_str(segment);
            if !made.contains(&folder) {
                alice.mkdir(&folder)?;
                made.push(folder.clone());
            }
        }
        alice.put(path, &content(i as u64, 100 + 997 * i))?;
    }
    alice.share_with_user(SHARED, bob, 31)?;
    Ok(())
}

/// What the steps share: the two users and the ids they remember.
pub struct Ctx<'a> {
    pub alice: &'a dyn Files,
    pub bob: &'a dyn Files,
    ids: RefCell<BTreeMap<&'static str, u64>>,
}

impl Ctx<'_> {
    /// Deletes `path` and remembers its id under `key`, for a restore.
    fn trash(&self, key: &'static str, path: &str) -> Result<()> {
        let id = self
            .alice
            .fileid(path)?
            .ok_or_else(|| anyhow!("{path} is not there"))?;
        self.ids.borrow_mut().insert(key, id);
        self.alice.delete(path)
    }

    fn restore(&self, key: &str) -> Result<()> {
        let id = self.ids.borrow()[key];
        self.alice.restore(id)
    }
}

type Step = (&'static str, fn(&Ctx) -> Result<()>);

/// The steps, in order; each is followed by a sync.
pub const STEPS: &[Step] = &[
    ("create a file at the root and one deep down", |c| {
        c.alice.put("/new at root.txt", b"new")?;
        c.alice.put("/Projects/beta/deep/er/new.txt", b"deep")?;
        Ok(())
    }),
    ("overwrite a file", |c| {
        c.alice
            .put("/Projects/alpha/notes.txt", &content(99, 5000))?;
        Ok(())
    }),
    ("rename a file within its folder", |c| {
        c.alice.rename(
            "/Projects/beta/it's quoted.txt",
            "/Projects/beta/it's renamed.txt",
        )
    }),
    ("move a file out of the root", |c| {
        c.alice.rename("/a#b.txt", "/Projects/alpha/a#b.txt")
    }),
    ("move a file into the root", |c| {
        c.alice
            .rename("/Reports 2024/Drafts/draft #1.md", "/draft #1.md")
    }),
    ("rename a file at the root", |c| {
        c.alice.rename("/100% pure.txt", "/100% pure (renamed).txt")
    }),
    ("move and rename a deep file into the root", |c| {
        c.alice
            .rename("/Projects/beta/deep/er/file.txt", "/file from deep.txt")
    }),
    ("rename a folder with its contents", |c| {
        c.alice.rename("/Projects/beta", "/Projects/beta renamed")
    }),
    ("move a folder with its contents into the root", |c| {
        c.alice.rename("/Projects/beta renamed/deep", "/deep moved")
    }),
    ("move a folder with its contents out of the root", |c| {
        c.alice.rename("/emoji 😀", "/Reports 2024/emoji 😀")
    }),
    ("rename a folder at the root", |c| {
        c.alice.rename("/中文", "/中文 renamed")
    }),
    ("move a file within the tree and overwrite it", |c| {
        c.alice.rename(
            "/Spécial #1 & 100% done/a+b c.txt",
            "/Reports 2024/a+b c.txt",
        )?;
        c.alice.put("/Reports 2024/a+b c.txt", &content(7, 3000))?;
        Ok(())
    }),
    ("delete a file", |c| c.trash("what", "/what?.txt")),
    ("delete a folder", |c| c.trash("alpha", "/Projects/alpha")),
    ("restore the file from the trash bin", |c| c.restore("what")),
    ("restore the folder from the trash bin", |c| {
        c.restore("alpha")
    }),
    ("a burst of eight creates in one folder", |c| {
        c.alice.mkdir("/burst")?;
        for i in 0..8 {
            c.alice.put(
                &format!("/burst/file {i}.txt"),
                &content(i, 10 + i as usize),
            )?;
        }
        Ok(())
    }),
    ("a burst of overwrites, renames and deletes", |c| {
        for i in 0..7 {
            c.alice
                .put(&format!("/burst/file {i}.txt"), &content(i + 50, 20))?;
        }
        for i in 0..3 {
            c.alice.rename(
                &format!("/burst/file {i}.txt"),
                &format!("/burst/renamed {i}.txt"),
            )?;
        }
        c.alice.delete("/burst/file 7.txt")?;
        c.alice.delete("/burst/file 6.txt")?;
        Ok(())
    }),
    (
        "more creates than one page of the activity stream holds",
        |c| {
            // The server answers at most 200 rows a page, grouped; the rest
            // follows by X-Activity-Last-Given.
            c.alice.mkdir("/many")?;
            for i in 0..230 {
                c.alice.put(&format!("/many/{i:03}.txt"), &content(i, 8))?;
            }
            Ok(())
        },
    ),
    ("copy a folder", |c| {
        c.alice.copy("/Spécial #1 & 100% done", "/Spécial copy")
    }),
    (
        "the other user creates and overwrites inside the share",
        |c| {
            c.bob
                .put("/Shared with Bob/from bob.txt", b"bob was here")?;
            c.bob.put("/Shared with Bob/plan.txt", &content(31, 777))?;
            Ok(())
        },
    ),
    (
        "the other user makes a folder, moves and deletes inside the share",
        |c| {
            c.bob.mkdir("/Shared with Bob/bob's folder")?;
            c.bob.rename(
                "/Shared with Bob/from bob.txt",
                "/Shared with Bob/bob's folder/from bob.txt",
            )?;
            c.bob.delete("/Shared with Bob/plan.txt")?;
            Ok(())
        },
    ),
    ("delete a file and create another under its name", |c| {
        c.alice.delete("/new at root.txt")?;
        c.alice.put("/new at root.txt", b"another file")?;
        Ok(())
    }),
    ("move a file into the root, then its folder away", |c| {
        c.alice
            .rename("/Reports 2024/Q1 résumé.pdf", "/Q1 résumé.pdf")?;
        c.alice
            .rename("/Reports 2024", "/Spécial copy/Reports 2024")?;
        Ok(())
    }),
];

/// Runs the whole scenario: a full sync of the tree, each step and an
/// incremental sync after it, a sync with no change, and a fresh full sync
/// at the end. `reader` lists the server as the syncing user. Returns the
/// no-change sync, whose request count the caller judges.
pub fn run(
    alice: &dyn Files,
    bob: &dyn Files,
    bob_id: &str,
    reader: &Dav,
    account: &RemoteAccount,
    fresh: &RemoteAccount,
) -> Result<crate::remote::Run> {
    build_tree(alice, bob_id)?;
    let full = account.sync();
    assert_eq!(full.mode(), "full", "{}", full.stderr);
    assert_mirrors(&account.records(), &reader.listing()?);

    let ctx = Ctx {
        alice,
        bob,
        ids: RefCell::default(),
    };
    for (i, (what, step)) in STEPS.iter().enumerate() {
        step(&ctx).with_context(|| format!("step {i}: {what}"))?;
        let run = account.sync();
        eprintln!(
            "step {i}: {what}: {} changes, {} requests, {} ms",
            run.changes(),
            run.count("requests"),
            run.count("duration_ms")
        );
        assert!(
            run.by_activity(),
            "step {i} ({what}) was not synced by the activity stream:\n{}",
            run.stderr
        );
        assert!(run.changes() > 0, "step {i} ({what}) changed nothing");
        // The step is named on stderr above.
        assert_mirrors(&account.records(), &reader.listing()?);
    }

    let unchanged = account.sync();
    assert!(unchanged.by_activity(), "{}", unchanged.stderr);
    assert_eq!(unchanged.changes(), 0, "{}", unchanged.stdout);

    let first = fresh.sync();
    assert_eq!(first.mode(), "full");
    assert_eq!(
        without_versions(fresh.records()),
        without_versions(account.records()),
        "the incremental history differs from a fresh full sync"
    );
    Ok(unchanged)
}
