//! What every end-to-end test needs: a simulator on loopback, a config and
//! database in a temporary directory, and the real component run by the real
//! host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod download;
pub mod edits;
pub mod files;
pub mod nextcloud;
pub mod postgres;
pub mod remote;
pub mod rng;
pub mod scenario;

use host_runner::{Config, RunOptions, Secret, SinkRecord, SyncReport};
use nextcloud_sim::{Server, SimOptions, Simulator};

/// The app password every test account uses.
pub const PASSWORD: &str = "e2e-app-password-7f3a9c";
/// The variable the config names for it (set only for child processes).
pub const PASSWORD_ENV: &str = "NC_E2E_APP_PASSWORD";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn wasm(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the components first with `cargo guest`",
        path.display()
    );
    path
}

/// The connector component, as `cargo guest` builds it.
pub fn connector_wasm() -> PathBuf {
    wasm("connector")
}

/// The hostile test component.
pub fn rogue_wasm() -> PathBuf {
    wasm("rogue_guest")
}

/// The attacks of the hostile component (`tests/rogue-guest/src/attack.rs`):
/// requests a read-only connector must never get sent.
pub const ROGUE_ATTACKS: &[&str] = &[
    "put",
    "mkcol",
    "delete",
    "move",
    "copy",
    "proppatch",
    "lock",
    "trace",
    "share-link",
    "share-link-v1",
    "share-delete",
    "apppassword-rotate",
    "apppassword-delete",
    "getapppassword",
    "method-override-header",
    "method-override-query",
    "header-smuggling",
    "unlisted-header",
    "traversal",
    "other-user",
    "other-dav-roots",
    "send-all-write",
];

/// Makes the hostile component try `mode` on its next run in `database`,
/// whatever the login (a real server needs a real one).
pub fn set_rogue_mode(database: &std::path::Path, mode: &str) {
    let mut store = host_runner::Store::open(database).expect("database opens");
    store.set("rogue-mode".into(), mode.into());
    store.commit().expect("mode committed");
}

/// Where an account's state goes.
#[derive(Clone, Default)]
pub enum Backend {
    /// `state.sqlite` in the account's directory.
    #[default]
    Sqlite,
    /// A fresh database of this server for each account.
    Postgres(Arc<postgres::Postgres>),
}

impl Backend {
    /// A throwaway PostgreSQL server, or `None` after printing why not.
    pub fn postgres_or_skip() -> Option<Backend> {
        postgres::start_or_skip().map(|pg| Backend::Postgres(Arc::new(pg)))
    }

    /// The `database` lines of a config in `dir`: a fresh database for
    /// PostgreSQL, its password in a file beside the config.
    pub fn settings(&self, dir: &Path) -> String {
        match self {
            Backend::Sqlite => "database = \"state.sqlite\"\n".into(),
            Backend::Postgres(pg) => {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let url = pg.create_database(&format!("account_{n}"));
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dir.join("db-password"))
                    .unwrap();
                std::io::Write::write_all(&mut file, pg.password().as_bytes()).unwrap();
                format!("database = \"{url}\"\ndatabase_password_file = \"db-password\"\n")
            }
        }
    }
}

/// A simulated server and an account synced from it into a fresh database.
pub struct Account {
    pub server: Arc<Server>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub component: PathBuf,
    pub backend: Backend,
}

impl Account {
    pub fn new(options: SimOptions) -> Account {
        Self::with_settings(options, "")
    }

    /// `settings` is extra TOML appended to the config.
    pub fn with_settings(options: SimOptions, settings: &str) -> Account {
        Self::with_backend(options, settings, Backend::Sqlite)
    }

    /// Like [`Account::with_settings`], its state in `backend`.
    pub fn with_backend(options: SimOptions, settings: &str, backend: Backend) -> Account {
        let login = options.login.clone();
        let sim = Simulator::new(SimOptions {
            app_password: PASSWORD.into(),
            ..options
        });
        let server = Arc::new(Server::start(sim).expect("simulator starts"));
        Self::on(
            server,
            &login,
            tempfile::tempdir().unwrap(),
            "connector.toml",
            settings,
            backend,
        )
    }

    fn on(
        server: Arc<Server>,
        login: &str,
        dir: tempfile::TempDir,
        config: &str,
        settings: &str,
        backend: Backend,
    ) -> Account {
        let config_path = dir.path().join(config);
        std::fs::write(
            &config_path,
            format!(
                "base_url = \"{}\"\nusername = \"{login}\"\napp_password_env = \"{PASSWORD_ENV}\"\n{}{settings}\n",
                server.base_url(),
                backend.settings(dir.path()),
            ),
        )
        .unwrap();
        Account {
            server,
            dir,
            config_path,
            component: connector_wasm(),
            backend,
        }
    }

    /// The same server and database under other settings (a second config
    /// file beside the first; the database is shared).
    pub fn twin(&self, settings: &str) -> Account {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("twin.toml");
        let database = match &self.config().database {
            host_runner::config::Database::Sqlite(path) => {
                format!("database = \"{}\"\n", path.display())
            }
            host_runner::config::Database::Postgres(target) => {
                std::fs::copy(
                    self.dir.path().join("db-password"),
                    dir.path().join("db-password"),
                )
                .unwrap();
                format!(
                    "database = \"{}\"\ndatabase_password_file = \"db-password\"\n",
                    target.url
                )
            }
        };
        std::fs::write(
            &config_path,
            format!(
                "base_url = \"{}\"\nusername = \"{}\"\napp_password_env = \"{PASSWORD_ENV}\"\n{database}{settings}\n",
                self.server.base_url(),
                self.sim().options().login,
            ),
        )
        .unwrap();
        Account {
            server: self.server.clone(),
            dir,
            config_path,
            component: self.component.clone(),
            backend: self.backend.clone(),
        }
    }

    /// The same server with a fresh database: what a first full sync gives.
    pub fn twin_fresh(&self) -> Account {
        Self::on(
            self.server.clone(),
            &self.sim().options().login,
            tempfile::tempdir().unwrap(),
            "connector.toml",
            "",
            self.backend.clone(),
        )
    }

    /// An account run by the hostile component, on the sample tree; `mode`
    /// goes in as the login, which the rogue reads as what to try.
    pub fn rogue(mode: &str, settings: &str) -> Account {
        let mut account = Account::with_settings(
            SimOptions {
                login: mode.into(),
                ..SimOptions::default()
            },
            settings,
        );
        account.sim().populate_sample();
        account.component = rogue_wasm();
        account
    }

    /// The demo's sample tree.
    pub fn sample() -> Account {
        Account::sample_in(Backend::Sqlite)
    }

    /// The demo's sample tree, its state in `backend`.
    pub fn sample_in(backend: Backend) -> Account {
        let account = Account::with_backend(SimOptions::default(), "", backend);
        account.sim().populate_sample();
        account
    }

    pub fn sim(&self) -> &Simulator {
        self.server.simulator()
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path)
            .expect("config loads")
            .with_secret(Secret::new(PASSWORD))
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("state.sqlite")
    }

    pub fn sync(&self) -> host_runner::Result<SyncReport> {
        host_runner::run_sync(&self.config(), &RunOptions::with_component(&self.component))
    }

    pub fn records(&self) -> Vec<SinkRecord> {
        host_runner::list_records(&self.config()).expect("records list")
    }

    /// The records without what says how they got there (version, time of
    /// the last update): equal between an incremental history and a fresh
    /// full sync.
    pub fn records_without_versions(&self) -> Vec<SinkRecord> {
        remote::without_versions(self.records())
    }

    /// Asserts the account converged: its records mirror the server and
    /// equal what a fresh full sync of the same server gives.
    pub fn assert_converged(&self) {
        self.assert_mirrors_server();
        let fresh = self.twin_fresh();
        fresh.sync().expect("a fresh full sync");
        assert_eq!(
            fresh.records_without_versions(),
            self.records_without_versions(),
            "the records differ from a fresh full sync"
        );
    }

    /// Asserts the records are exactly what a Depth: infinity listing of the
    /// server holds: same ids, paths, parents, kinds, etags and sizes.
    pub fn assert_mirrors_server(&self) {
        remote::assert_mirrors(&self.records(), &listing_of(self.sim().listing()));
    }
}

/// A simulated user's Depth: infinity listing, in the shape the real
/// server's is compared in.
pub fn listing_of(entries: Vec<nextcloud_sim::SimEntry>) -> nextcloud::Listing {
    entries
        .into_iter()
        .map(|e| {
            let entry = nextcloud::Listed {
                path: e.path,
                is_folder: e.is_folder,
                etag: e.etag,
                size: e.size,
            };
            (e.fileid, entry)
        })
        .collect()
}

/// Counts of a report, for compact assertions.
pub fn counts(report: &SyncReport) -> (u64, u64, u64, u64) {
    (
        report.new,
        report.content_updated,
        report.metadata_updated,
        report.deleted,
    )
}
