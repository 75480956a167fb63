//! `host-runner demo`: a simulated Nextcloud on loopback, synced twice into a
//! fresh database.

use crate::commands::{RunOptions, SyncReport, list_records, run_sync};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::progress::{NoProgress, ProgressSink};
use crate::secret::Secret;
use crate::store::SinkRecord;
use nextcloud_sim::{Server, SimOptions, Simulator};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct DemoOptions {
    /// Keep the configuration and database in this directory instead of a
    /// temporary one.
    pub keep: Option<PathBuf>,
    pub component: Option<PathBuf>,
    pub progress: Arc<dyn ProgressSink>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            keep: None,
            component: None,
            progress: Arc::new(NoProgress),
        }
    }
}

/// What the demo did.
pub struct DemoOutcome {
    pub base_url: String,
    pub username: String,
    pub config_path: PathBuf,
    pub database: PathBuf,
    /// Whether `config_path` and `database` outlive the demo.
    pub kept: bool,
    pub first: SyncReport,
    pub second: SyncReport,
    pub records: Vec<SinkRecord>,
}

const DB_NAME: &str = "demo.sqlite";

fn remove_old_database(dir: &Path) -> Result<()> {
    for name in [DB_NAME, "demo.sqlite-wal", "demo.sqlite-shm"] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Storage(format!(
                    "cannot remove the previous demo database `{}`: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Starts the simulator with its sample tree, writes a configuration, and
/// syncs twice; the second sync should find nothing to do.
pub fn run_demo(options: &DemoOptions) -> Result<DemoOutcome> {
    // Fail before starting anything when there is no component.
    let component = crate::runtime::locate_component(options.component.as_deref())?;

    let sim = Simulator::new(SimOptions::default());
    sim.populate_sample();
    let sim_options = sim.options();
    let server = Server::start(sim)
        .map_err(|e| Error::Server(format!("the simulator did not start: {e:#}")))?;
    let base_url = server.base_url();

    let (tmp, dir) = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Config(format!("cannot create `{}`: {e}", dir.display())))?;
            remove_old_database(dir)?;
            (None, dir.clone())
        }
        None => {
            let tmp = tempfile::tempdir()
                .map_err(|e| Error::Storage(format!("cannot create a temporary directory: {e}")))?;
            let dir = tmp.path().to_path_buf();
            (Some(tmp), dir)
        }
    };
    let config_path = dir.join("demo.toml");
    let text = format!(
        "# Written by `host-runner demo` for a simulated Nextcloud that is gone when the demo ends.\n\
         # The demo hands the app password over in-process; a real configuration reads it\n\
         # from the environment variable named by app_password_env (default NEXTCLOUD_APP_PASSWORD).\n\
         base_url = \"{base_url}\"\n\
         username = \"{}\"\n\
         database = \"{DB_NAME}\"\n",
        sim_options.login
    );
    std::fs::write(&config_path, text)
        .map_err(|e| Error::Config(format!("cannot write `{}`: {e}", config_path.display())))?;
    let config =
        Config::load(&config_path)?.with_secret(Secret::new(sim_options.app_password.clone()));

    let run = RunOptions {
        component: Some(component),
        progress: options.progress.clone(),
    };
    let first = run_sync(&config, &run)?;
    let records = list_records(&config)?;
    let second = run_sync(&config, &run)?;
    drop(server);
    let outcome = DemoOutcome {
        base_url,
        username: sim_options.login,
        config_path,
        database: dir.join(DB_NAME),
        kept: tmp.is_none(),
        first,
        second,
        records,
    };
    drop(tmp);
    Ok(outcome)
}
