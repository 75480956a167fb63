//! An account on any Nextcloud over HTTP — the real one or the simulator —
//! synced the way a person syncs it: `host-runner sync --json` as a child
//! process, its report read from stdout and its log from stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host_runner::{Config, Secret, SinkRecord};

use crate::connector_wasm;
use crate::nextcloud::Listing;

/// The variable a remote account's config names for its app password.
const PASSWORD_ENV: &str = "NC_REMOTE_APP_PASSWORD";

pub struct RemoteAccount {
    /// The host-runner CLI (a test's `env!("CARGO_BIN_EXE_host-runner-e2e")`).
    pub cli: PathBuf,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub password: String,
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    /// The `--json` report (or error) on stdout.
    pub report: serde_json::Value,
    pub stdout: String,
    /// The log, at `info`.
    pub stderr: String,
}

impl Run {
    pub fn mode(&self) -> &str {
        self.report["mode"].as_str().unwrap_or_default()
    }

    pub fn count(&self, key: &str) -> u64 {
        self.report[key].as_u64().unwrap_or(u64::MAX)
    }

    /// Changes the run sent to the sink.
    pub fn changes(&self) -> u64 {
        ["new", "content_updated", "metadata_updated", "deleted"]
            .iter()
            .map(|k| self.count(k))
            .sum()
    }

    /// Whether the run found its changes by the activity stream alone: no
    /// etag reconcile, no listing of the whole account.
    pub fn by_activity(&self) -> bool {
        self.mode() == "incremental"
            && !self.stderr.contains("reconciling by etags")
            && !self.stderr.contains("listing the whole account")
    }
}

impl RemoteAccount {
    /// A fresh database for `user` on the server at `base_url`; `settings`
    /// is extra TOML.
    pub fn new(
        cli: &Path,
        base_url: &str,
        user: &str,
        password: &str,
        settings: &str,
    ) -> RemoteAccount {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("connector.toml");
        std::fs::write(
            &config_path,
            format!(
                "base_url = \"{base_url}\"\nusername = \"{user}\"\napp_password_env = \"{PASSWORD_ENV}\"\ndatabase = \"state.sqlite\"\n{settings}\n"
            ),
        )
        .unwrap();
        RemoteAccount {
            cli: cli.to_path_buf(),
            dir,
            config_path,
            password: password.to_string(),
        }
    }

    /// The same server and user with another app password (and database).
    pub fn with_password(&self, password: &str) -> RemoteAccount {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("connector.toml");
        std::fs::copy(&self.config_path, &config_path).unwrap();
        RemoteAccount {
            cli: self.cli.clone(),
            dir,
            config_path,
            password: password.to_string(),
        }
    }

    /// The same server, user and database under more settings (top-level
    /// keys; a second config file beside the first).
    pub fn with_settings(&self, settings: &str) -> RemoteAccount {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("connector.toml");
        let config = std::fs::read_to_string(&self.config_path).unwrap().replace(
            "database = \"state.sqlite\"",
            &format!("database = {:?}", self.database()),
        );
        std::fs::write(&config_path, format!("{settings}\n{config}")).unwrap();
        RemoteAccount {
            cli: self.cli.clone(),
            dir,
            config_path,
            password: self.password.clone(),
        }
    }

    /// Runs `host-runner ARGS --json --config … --component …`.
    pub fn cli(&self, args: &[&str]) -> Run {
        let output: Output = Command::new(&self.cli)
            .args(args)
            .arg("--json")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--component")
            .arg(connector_wasm())
            .env(PASSWORD_ENV, &self.password)
            .env("RUST_LOG", "info")
            .output()
            .expect("host-runner runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        Run {
            code: output.status.code(),
            report: serde_json::from_str(stdout.lines().last().unwrap_or("null"))
                .unwrap_or(serde_json::Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A sync that must succeed.
    pub fn sync(&self) -> Run {
        let run = self.cli(&["sync"]);
        assert_eq!(
            run.code,
            Some(0),
            "the sync failed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path)
            .expect("config loads")
            .with_secret(Secret::new(&self.password))
    }

    pub fn database(&self) -> PathBuf {
        match self.config().database {
            host_runner::config::Database::Sqlite(path) => path,
            other => panic!("a SQLite database was expected, not {other}"),
        }
    }

    pub fn records(&self) -> Vec<SinkRecord> {
        host_runner::list_records(&self.config()).expect("records list")
    }
}

/// The records without what says how they got there (version, time of the
/// last update): equal between an incremental history and a fresh full sync.
pub fn without_versions(records: Vec<SinkRecord>) -> Vec<SinkRecord> {
    records
        .into_iter()
        .map(|r| SinkRecord {
            version: 0,
            updated_at: 0,
            ..r
        })
        .collect()
}

/// Whether the records hold exactly the ids of the listing, each with its
/// path, kind, etag and size: what a test polls for before it asserts
/// [`assert_mirrors`].
pub fn mirrors(records: &[SinkRecord], listing: &Listing) -> bool {
    records.len() == listing.len()
        && records.iter().all(|r| {
            r.external_id
                .parse::<u64>()
                .ok()
                .and_then(|id| listing.get(&id))
                .is_some_and(|e| {
                    (e.path.as_str(), e.is_folder, e.etag.as_str(), e.size)
                        == (r.path.as_str(), r.is_folder, r.etag.as_str(), r.size)
                })
        })
}

/// Asserts the records are exactly what the server lists: same ids, paths,
/// kinds, etags and sizes, and each record's parent is the record at its
/// parent path.
pub fn assert_mirrors(records: &[SinkRecord], listing: &Listing) {
    let ours: BTreeMap<u64, (&str, bool, &str, u64)> = records
        .iter()
        .map(|r| {
            (
                r.external_id.parse().expect("numeric external id"),
                (r.path.as_str(), r.is_folder, r.etag.as_str(), r.size),
            )
        })
        .collect();
    assert_eq!(records.len(), ours.len(), "duplicate external ids");
    let theirs: BTreeMap<u64, (&str, bool, &str, u64)> = listing
        .iter()
        .map(|(id, e)| (*id, (e.path.as_str(), e.is_folder, e.etag.as_str(), e.size)))
        .collect();
    let missing: Vec<_> = theirs
        .iter()
        .filter(|(id, _)| !ours.contains_key(id))
        .collect();
    let extra: Vec<_> = ours
        .iter()
        .filter(|(id, _)| !theirs.contains_key(id))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    for (id, want) in &theirs {
        assert_eq!(&ours[id], want, "record {id}");
    }
    let by_path: BTreeMap<&str, &str> = records
        .iter()
        .map(|r| (r.path.as_str(), r.external_id.as_str()))
        .collect();
    for r in records {
        let parent = r
            .path
            .rsplit_once('/')
            .map(|(p, _)| if p.is_empty() { "/" } else { p });
        let expected = parent.filter(|_| r.path != "/").map(|p| by_path[p]);
        assert_eq!(
            r.parent_external_id.as_deref(),
            expected,
            "parent of {}",
            r.path
        );
    }
}
