//! The same tree listed by `rclone lsjson -R` (Debian package `rclone`), as
//! the reference a full listing is compared with.
//!
//! rclone 1.60's WebDAV backend has no recursive listing (no `--fast-list`,
//! no `Depth: infinity`): it sends one `Depth: 1` PROPFIND per folder, and
//! its pacer waits at least 10 ms between requests whatever `--checkers`
//! says, so its wall time grows with the number of folders (~10% of a
//! generated tree) at no more than 100 folders a second.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::{Account, PASSWORD};

use crate::process::{Cost, fail, run};

pub struct Rclone {
    exe: PathBuf,
    /// The app password as `rclone obscure` hides it: rclone reads
    /// passwords from its configuration only in that form.
    obscured: String,
}

/// What one listing cost and whether it saw the tree the simulator holds.
pub struct RcloneListing {
    pub cost: Cost,
    /// As the simulator counted them.
    pub requests: u64,
    pub listed: usize,
    pub expected: usize,
    /// Paths one side has and the other lacks, a few of each.
    pub mismatch: Option<String>,
}

impl Rclone {
    /// `rclone` from `PATH`, if there is one.
    pub fn find() -> Option<Rclone> {
        let exe = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("rclone"))
                .find(|p| p.is_file())
        })?;
        let out = Command::new(&exe)
            .args(["obscure", PASSWORD])
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| fail(&format!("{}: {e}", exe.display())));
        if !out.status.success() {
            fail(&format!("rclone obscure failed: {}", out.status));
        }
        let obscured = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(Rclone { exe, obscured })
    }

    /// Lists the account's files with the remote configured through the
    /// environment only, so no rclone.conf of the machine is read or written.
    pub fn list(&self, account: &Account) -> RcloneListing {
        let options = account.sim().options();
        let url = format!(
            "{}/remote.php/dav/files/{}",
            account.server.base_url().trim_end_matches('/'),
            options.user_id
        );
        let out_path = account.dir.path().join("rclone.json");
        let err_path = account.dir.path().join("rclone.stderr");
        let requests_before = account.sim().request_count();
        let (status, cost) = run(Command::new(&self.exe)
            .args(["lsjson", "-R", "nc:"])
            .env("RCLONE_CONFIG", account.dir.path().join("rclone.conf"))
            .env("RCLONE_CONFIG_NC_TYPE", "webdav")
            .env("RCLONE_CONFIG_NC_URL", &url)
            .env("RCLONE_CONFIG_NC_VENDOR", "nextcloud")
            .env("RCLONE_CONFIG_NC_USER", &options.login)
            .env("RCLONE_CONFIG_NC_PASS", &self.obscured)
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap()));
        if !status.success() {
            fail(&format!(
                "rclone lsjson failed ({status}): {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            ));
        }
        let requests = account.sim().request_count() - requests_before;
        let (listed, theirs) = listed_paths(&out_path);
        // The simulator's paths start with `/`; rclone's are relative and
        // leave out the root itself.
        let ours: BTreeSet<String> = account
            .sim()
            .listing()
            .into_iter()
            .filter(|e| e.path != "/")
            .map(|e| e.path[1..].to_string())
            .collect();
        let mismatch = (listed != ours.len() || theirs != ours).then(|| {
            let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
                a.difference(b).take(3).cloned().collect::<Vec<_>>()
            };
            format!(
                "rclone lists {listed} entries, the simulator {}; only rclone has {:?}, only the simulator {:?}",
                ours.len(),
                only(&theirs, &ours),
                only(&ours, &theirs)
            )
        });
        RcloneListing {
            cost,
            requests,
            listed,
            expected: ours.len(),
            mismatch,
        }
    }
}

/// The number of entries of an `lsjson` output and their distinct paths.
fn listed_paths(path: &Path) -> (usize, BTreeSet<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| fail(&format!("rclone lsjson printed no JSON array: {e}")));
    let paths = entries
        .iter()
        .map(|e| {
            e["Path"]
                .as_str()
                .unwrap_or_else(|| fail(&format!("an rclone entry without a Path: {e}")))
                .to_string()
        })
        .collect();
    (entries.len(), paths)
}
