//! The TOML configuration file, validated into a [`Config`].
//!
//! ```toml
//! base_url = "https://cloud.example.com"   # where you open Nextcloud
//! username = "alice"                        # the login name
//! # app_password_env = "NEXTCLOUD_APP_PASSWORD"  (the default)
//! # app_password_file = "app-password.txt"      (instead of the variable)
//! database = "nextcloud.sqlite"             # relative to this file
//! batch_size = 100
//! reconcile_interval_minutes = 1440
//! feed_retention_days = 30                  # 0 keeps the change feed whole
//! # grants = ["files.read", "files.search", "user.read", "activity.read",
//! #           "shares.read", "server.status", "server.capabilities"]
//!
//! [filters]
//! include_extensions = ["pdf", "docx"]
//! exclude_extensions = ["tmp"]
//! modified_after = "2024-01-01"            # or RFC 3339
//!
//! [limits]
//! memory_mib = 256
//! guest_time_slice_ms = 10000
//! http_timeout_seconds = 120
//! max_concurrent_requests = 5
//! max_body_mib = 64
//! requests_per_second = 50
//! max_retries = 5
//! max_retry_seconds = 120
//! max_response_seconds = 3600
//! max_buffered_mib = 256
//! max_open_bodies = 256
//! max_call_mib = 64
//! max_staged_mib = 256
//! max_staged_writes = 100000
//! max_table_elements = 100000
//! max_run_minutes = 1440                    # fractions allowed: 0.5 is 30 s
//! ```
//!
//! `host-runner run` syncs every `interval_minutes` (default 60, fractions
//! allowed; a top-level key). One file may instead list several accounts,
//! each a table with the keys above (and an optional `name`), each with its
//! own SQLite database or all in one PostgreSQL database:
//!
//! ```toml
//! interval_minutes = 30
//!
//! [[account]]
//! name = "alice"
//! base_url = "https://cloud.example.com"
//! username = "alice"
//! app_password_env = "ALICE_APP_PASSWORD"
//! database = "alice.sqlite"
//!
//! [[account]]
//! name = "bob"
//! base_url = "https://other.example.org"
//! username = "bob"
//! app_password_file = "bob-app-password.txt"
//! database = "bob.sqlite"
//! [account.limits]
//! requests_per_second = 10
//! ```

use crate::capability::{self, Capability};
pub use crate::database::Database;
use crate::error::{Error, Result};
use crate::origin::{Origin, is_loopback};
use crate::secret::{Secret, SecretSource};
use crate::timefmt::{DayBound, parse_date_or_rfc3339};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub const DEFAULT_PASSWORD_ENV: &str = "NEXTCLOUD_APP_PASSWORD";

/// The file: one account at the top level, or `[[account]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    interval_minutes: Option<toml::Value>,
    lease_seconds: Option<i64>,
    #[serde(default)]
    account: Vec<RawAccount>,
    name: Option<String>,
    base_url: Option<String>,
    username: Option<String>,
    app_password_env: Option<String>,
    app_password_file: Option<PathBuf>,
    database: Option<String>,
    database_password_env: Option<String>,
    database_password_file: Option<PathBuf>,
    batch_size: Option<i64>,
    reconcile_interval_minutes: Option<i64>,
    feed_retention_days: Option<i64>,
    grants: Option<Vec<String>>,
    filters: Option<RawFilters>,
    limits: Option<RawLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<String>,
    base_url: String,
    username: String,
    app_password_env: Option<String>,
    app_password_file: Option<PathBuf>,
    database: String,
    database_password_env: Option<String>,
    database_password_file: Option<PathBuf>,
    batch_size: Option<i64>,
    reconcile_interval_minutes: Option<i64>,
    feed_retention_days: Option<i64>,
    grants: Option<Vec<String>>,
    #[serde(default)]
    filters: RawFilters,
    #[serde(default)]
    limits: RawLimits,
}

impl RawFile {
    /// The single account of a file without `[[account]]` tables.
    fn into_single(self) -> Result<RawAccount> {
        let missing = |key: &str, what: &str| Error::Config(format!("missing `{key}`: {what}"));
        Ok(RawAccount {
            name: self.name,
            base_url: self.base_url.ok_or_else(|| {
                missing(
                    "base_url",
                    "set it to the address you open Nextcloud at, e.g. https://cloud.example.com",
                )
            })?,
            username: self
                .username
                .ok_or_else(|| missing("username", "set it to your Nextcloud login name"))?,
            app_password_env: self.app_password_env,
            app_password_file: self.app_password_file,
            database: self.database.ok_or_else(|| {
                missing(
                    "database",
                    "name the SQLite file that keeps state and records, or a postgres:// URL",
                )
            })?,
            database_password_env: self.database_password_env,
            database_password_file: self.database_password_file,
            batch_size: self.batch_size,
            reconcile_interval_minutes: self.reconcile_interval_minutes,
            feed_retention_days: self.feed_retention_days,
            grants: self.grants,
            filters: self.filters.unwrap_or_default(),
            limits: self.limits.unwrap_or_default(),
        })
    }

    /// Top-level account keys set next to `[[account]]` tables.
    fn stray_account_keys(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("base_url", self.base_url.is_some()),
            ("username", self.username.is_some()),
            ("app_password_env", self.app_password_env.is_some()),
            ("app_password_file", self.app_password_file.is_some()),
            ("database", self.database.is_some()),
            (
                "database_password_env",
                self.database_password_env.is_some(),
            ),
            (
                "database_password_file",
                self.database_password_file.is_some(),
            ),
            ("batch_size", self.batch_size.is_some()),
            (
                "reconcile_interval_minutes",
                self.reconcile_interval_minutes.is_some(),
            ),
            ("feed_retention_days", self.feed_retention_days.is_some()),
            ("grants", self.grants.is_some()),
            ("filters", self.filters.is_some()),
            ("limits", self.limits.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilters {
    #[serde(default)]
    include_extensions: Vec<String>,
    #[serde(default)]
    exclude_extensions: Vec<String>,
    modified_after: Option<toml::Value>,
    modified_before: Option<toml::Value>,
    created_after: Option<toml::Value>,
    created_before: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mib: Option<i64>,
    guest_time_slice_ms: Option<i64>,
    http_timeout_seconds: Option<i64>,
    max_concurrent_requests: Option<i64>,
    max_body_mib: Option<i64>,
    requests_per_second: Option<i64>,
    max_retries: Option<i64>,
    max_retry_seconds: Option<i64>,
    max_response_seconds: Option<i64>,
    max_buffered_mib: Option<i64>,
    max_open_bodies: Option<i64>,
    max_call_mib: Option<i64>,
    max_staged_mib: Option<i64>,
    max_staged_writes: Option<i64>,
    max_table_elements: Option<i64>,
    /// An integer or a float: tests and short-lived runs want seconds.
    max_run_minutes: Option<toml::Value>,
}

/// Which files a sync keeps (folders are always kept). Times are unix seconds,
/// inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Lower-case, without the dot; empty keeps all.
    pub include_extensions: Vec<String>,
    pub exclude_extensions: Vec<String>,
    pub modified_after: Option<i64>,
    pub modified_before: Option<i64>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
}

/// The sandbox's and the HTTP client's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory the connector may grow to.
    pub memory_mib: u32,
    /// The longest the connector may compute without calling the host.
    pub guest_time_slice_ms: u64,
    /// Connect timeout, and the longest wait for any read of an answer.
    pub http_timeout_seconds: u64,
    /// How many requests may be in flight at once (sent, and their answer
    /// not yet read to the end).
    pub max_concurrent_requests: u32,
    /// The cap on a buffered (`send-all`) response body.
    pub max_body_mib: u32,
    /// Attempts per second, retries included, with a burst of as many.
    pub requests_per_second: u32,
    /// Retries of one request after a 429, 502, 503, 504, 423 or a reset.
    pub max_retries: u32,
    /// The longest one request may keep retrying, waits included.
    pub max_retry_seconds: u64,
    /// The longest reading one answer's body may take, from its head to its
    /// last byte: a server that trickles a byte at a time never trips the
    /// per-read `http_timeout_seconds`.
    pub max_response_seconds: u64,
    /// What the buffered (`send-all`) answers the connector holds may take
    /// together, across calls, until it reads them to the end or drops them.
    pub max_buffered_mib: u32,
    /// How many answer bodies the connector may hold open at once.
    pub max_open_bodies: u32,
    /// What the host lifts out of one `send`, `send-all` or `lookup` call
    /// (strings, lists, and the host's copy of each element), and what a
    /// `lookup` answer may take.
    pub max_call_mib: u32,
    /// What the writes staged since the last commit (`storage.put`, `set`,
    /// `remove`, `records.on-*`) may take in the host's memory.
    pub max_staged_mib: u32,
    /// How many writes may be staged since the last commit.
    pub max_staged_writes: u32,
    /// The most entries the connector's tables (function references) may grow to.
    pub max_table_elements: u32,
    /// The longest a whole run may take (`max_run_minutes`), checked at every
    /// host call and while the connector computes.
    pub max_run: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            guest_time_slice_ms: 10_000,
            http_timeout_seconds: 120,
            max_concurrent_requests: 5,
            max_body_mib: 64,
            requests_per_second: 50,
            max_retries: 5,
            max_retry_seconds: 120,
            max_response_seconds: 3600,
            max_buffered_mib: 256,
            max_open_bodies: 256,
            max_call_mib: 64,
            max_staged_mib: 256,
            max_staged_writes: 100_000,
            max_table_elements: 100_000,
            max_run: Duration::from_secs(24 * 3600),
        }
    }
}

/// A validated configuration. It holds where the secret comes from, not the
/// secret itself (except when one was provided in-process, which `Debug`
/// still prints as `[redacted]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// What logs and `run`'s output call the account: `name`, or the username.
    pub name: String,
    /// Normalised: `http(s)://host[:port][/subpath]`, no trailing slash.
    pub base_url: String,
    pub origin: Origin,
    pub username: String,
    pub secret_source: SecretSource,
    /// A SQLite path (absolute, or relative to the working directory when the
    /// configuration did not come from a file) or a PostgreSQL database.
    pub database: Database,
    pub batch_size: u32,
    pub reconcile_interval_minutes: u64,
    /// Changes in the feed older than this, that every consumer has
    /// acknowledged, are trimmed after a sync; 0 keeps them all.
    pub feed_retention_days: u64,
    /// The most the component may be granted (`grants`); none means the
    /// read-only capabilities. See [`crate::capability`].
    pub grants: Option<BTreeSet<Capability>>,
    /// How long a worker's lease on the account lasts without a heartbeat
    /// (`lease_seconds`, a top-level key; PostgreSQL only): how soon another
    /// worker takes over the account of one that died.
    pub lease: Duration,
    pub filters: Filters,
    pub limits: Limits,
    /// Things that work but deserve the user's attention.
    pub warnings: Vec<String>,
}

/// A whole configuration file: its accounts and the schedule of `run`.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// At least one; names and databases are distinct.
    pub accounts: Vec<Config>,
    /// How often `run` syncs every account (`interval_minutes`, fractions
    /// allowed).
    pub interval: Duration,
}

impl ConfigFile {
    /// Reads and validates a configuration file. Relative paths in it are
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read config file `{}`: {e}", path.display()))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        ConfigFile::from_toml_str(&text, &dir).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("`{}`: {m}", path.display())),
            other => other,
        })
    }

    /// Validates configuration text; relative paths resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<ConfigFile> {
        let raw: RawFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let interval = minutes(
            "interval_minutes",
            raw.interval_minutes.clone(),
            Duration::from_secs(3600),
            525_600.0,
        )?;
        let lease_seconds = in_range("lease_seconds", raw.lease_seconds, 60, 2, 3600)? as u64;
        let mut accounts = if raw.account.is_empty() {
            vec![Config::from_raw(raw.into_single()?, base_dir, None)?]
        } else {
            let stray = raw.stray_account_keys();
            if !stray.is_empty() {
                return Err(Error::Config(format!(
                    "{} set at the top level next to [[account]] tables: with [[account]], every account setting goes inside its own table",
                    stray
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let accounts = raw
                .account
                .into_iter()
                .enumerate()
                .map(|(i, a)| Config::from_raw(a, base_dir, Some(i + 1)))
                .collect::<Result<Vec<_>>>()?;
            for (i, a) in accounts.iter().enumerate() {
                for b in &accounts[..i] {
                    if a.name == b.name {
                        return Err(Error::Config(format!(
                            "two accounts are called `{}`: give each [[account]] its own `name`",
                            a.name
                        )));
                    }
                    // A PostgreSQL database keeps each account apart by
                    // its key; a SQLite file holds one account.
                    let same_state = match (&a.database, &b.database) {
                        (Database::Sqlite(x), Database::Sqlite(y)) => x == y,
                        (Database::Postgres(x), Database::Postgres(y)) => {
                            x.url == y.url && a.account_key() == b.account_key()
                        }
                        _ => false,
                    };
                    if same_state {
                        return Err(Error::Config(format!(
                            "accounts `{}` and `{}` share the database `{}`: each account keeps its own state, so give each its own `database`",
                            b.name, a.name, a.database
                        )));
                    }
                }
            }
            accounts
        };
        for account in &mut accounts {
            account.lease = Duration::from_secs(lease_seconds);
        }
        Ok(ConfigFile { accounts, interval })
    }

    /// The account called `name`; without a name, the only account.
    pub fn account(&self, name: Option<&str>) -> Result<&Config> {
        let names = || {
            self.accounts
                .iter()
                .map(|a| format!("`{}`", a.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            None if self.accounts.len() == 1 => Ok(&self.accounts[0]),
            None => Err(Error::Config(format!(
                "the file lists {} accounts ({}); name one with `--account NAME`",
                self.accounts.len(),
                names()
            ))),
            Some(n) => self.accounts.iter().find(|a| a.name == n).ok_or_else(|| {
                Error::Config(format!(
                    "no account is called `{n}`; the file has {}",
                    names()
                ))
            }),
        }
    }

    /// The account called `name` (or the only one), from a configuration file.
    pub fn load_account(path: &Path, name: Option<&str>) -> Result<Config> {
        let file = ConfigFile::load(path)?;
        file.account(name).cloned().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("`{}`: {m}", path.display())),
            other => other,
        })
    }
}

impl Config {
    /// Reads and validates a configuration file of one account. Relative
    /// paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config> {
        ConfigFile::load_account(path, None)
    }

    /// Validates configuration text of one account; relative paths resolve
    /// against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config> {
        let mut file = ConfigFile::from_toml_str(text, base_dir)?;
        file.account(None)?;
        Ok(file.accounts.remove(0))
    }

    /// `index` is the account's place among `[[account]]` tables (from 1),
    /// for messages.
    fn from_raw(raw: RawAccount, base_dir: &Path, index: Option<usize>) -> Result<Config> {
        let which = |m: String| match index {
            Some(i) => Error::Config(format!("[[account]] #{i}: {m}")),
            None => Error::Config(m),
        };
        Config::validate(raw, base_dir).map_err(|e| match e {
            Error::Config(m) => which(m),
            other => other,
        })
    }

    fn validate(raw: RawAccount, base_dir: &Path) -> Result<Config> {
        let mut warnings = Vec::new();
        let (base_url, origin) = normalize_base_url(&raw.base_url, &mut warnings)?;

        let username = raw.username.trim();
        if username.is_empty() {
            return Err(Error::Config(
                "`username` is empty: set it to your Nextcloud login name".into(),
            ));
        }
        if username.contains(':') || username.chars().any(char::is_control) {
            return Err(Error::Config(format!(
                "`username` `{username}` contains `:` or a control character, which HTTP Basic authentication cannot carry"
            )));
        }
        let name = match raw.name {
            Some(n) => {
                let n = n.trim().to_string();
                if n.is_empty() || n.chars().any(char::is_control) {
                    return Err(Error::Config(
                        "`name` is empty or has control characters".into(),
                    ));
                }
                n
            }
            None => username.to_string(),
        };

        let secret_source = match (raw.app_password_env, raw.app_password_file) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "set either `app_password_env` or `app_password_file`, not both".into(),
                ));
            }
            (_, Some(file)) => SecretSource::File(base_dir.join(file)),
            (Some(name), None) => {
                let name = name.trim().to_string();
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    return Err(Error::Config(format!(
                        "`app_password_env` `{name}` is not a usable environment variable name"
                    )));
                }
                SecretSource::Env(name)
            }
            (None, None) => SecretSource::Env(DEFAULT_PASSWORD_ENV.to_string()),
        };

        let database = Database::parse(
            &raw.database,
            base_dir,
            raw.database_password_env,
            raw.database_password_file,
        )?;

        let batch_size = in_range("batch_size", raw.batch_size, 100, 1, 10_000)? as u32;
        let reconcile_interval_minutes = in_range(
            "reconcile_interval_minutes",
            raw.reconcile_interval_minutes,
            1440,
            0,
            525_600,
        )? as u64;
        let feed_retention_days = in_range(
            "feed_retention_days",
            raw.feed_retention_days,
            30,
            0,
            36_500,
        )? as u64;
        let grants = raw
            .grants
            .map(|names| {
                capability::parse_names(names.iter().map(|n| n.trim()))
                    .map_err(|e| Error::Config(format!("`grants`: {e}")))
            })
            .transpose()?;
        let filters = validate_filters(raw.filters)?;
        let limits = validate_limits(raw.limits)?;

        Ok(Config {
            name,
            base_url,
            origin,
            username: username.to_string(),
            secret_source,
            database,
            batch_size,
            reconcile_interval_minutes,
            feed_retention_days,
            grants,
            lease: Duration::from_secs(60),
            filters,
            limits,
            warnings,
        })
    }

    /// What names the account in a shared database and in the host's own
    /// tables: one login at one install.
    pub fn account_key(&self) -> String {
        format!("{}@{}", self.username, self.base_url)
    }

    /// Replaces where the secret comes from with a secret handed over in-process.
    pub fn with_secret(mut self, secret: Secret) -> Config {
        self.secret_source = SecretSource::Provided(secret);
        self
    }

    /// Reads the app password from its source.
    pub fn secret(&self) -> Result<Secret> {
        self.secret_source.resolve()
    }
}

fn in_range(key: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> Result<i64> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(Error::Config(format!(
            "`{key}` must be between {min} and {max} (it is {v})"
        )));
    }
    Ok(v)
}

/// Checks and normalises the base URL; the origin is what requests may go to.
pub fn normalize_base_url(raw: &str, warnings: &mut Vec<String>) -> Result<(String, Origin)> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::Config(
            "`base_url` is empty: set it to the address you open Nextcloud at, e.g. https://cloud.example.com".into(),
        ));
    }
    let mut url = Url::parse(text).map_err(|e| {
        let hint = if !text.contains("://") {
            format!("; did you mean `https://{text}`?")
        } else {
            String::new()
        };
        Error::Config(format!("`base_url` `{text}` is not a URL ({e}){hint}"))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Error::Config(format!(
            "`base_url` must start with https:// or http://, not `{}:`",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(Error::Config(format!("`base_url` `{text}` has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "`base_url` must not contain a user name or password: put the login name in `username` and the app password in the environment variable or file".into(),
        ));
    }
    let path = url.path().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(i) = inside_nextcloud(&segments) {
        // The address of a page or endpoint of Nextcloud: keep what is before it.
        let kept = segments[..i].join("/");
        url.set_path(&kept);
        url.set_query(None);
        url.set_fragment(None);
        let trimmed = url.as_str().trim_end_matches('/').to_string();
        warnings.push(format!(
            "`base_url` pointed inside Nextcloud (`{text}`); using `{trimmed}`: the base URL is the address you open Nextcloud at"
        ));
    } else if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "`base_url` `{text}` must not contain a query (`?…`) or fragment (`#…`)"
        )));
    }
    let base = url.as_str().trim_end_matches('/').to_string();

    if url.scheme() == "http" && !is_loopback(&url) {
        warnings.push(format!(
            "`base_url` uses plain http:// to {}: the app password would travel unencrypted; use https://",
            url.host_str().unwrap_or_default()
        ));
    }
    let origin = Origin::of(&url)
        .ok_or_else(|| Error::Config(format!("`base_url` `{text}` has no usable host and port")))?;
    Ok((base, origin))
}

/// Where a path's Nextcloud part begins: `remote.php`, `index.php…`,
/// `public.php`, `status.php`, `ocs/v1.php`, `ocs/v2.php`, or the pretty URLs
/// `apps/files`, `apps/dashboard` and `login`.
fn inside_nextcloud(segments: &[&str]) -> Option<usize> {
    segments.iter().enumerate().position(|(i, s)| {
        let next = segments.get(i + 1).copied().unwrap_or("");
        matches!(*s, "remote.php" | "public.php" | "status.php" | "login")
            || s.starts_with("index.php")
            || (*s == "ocs" && (next == "v1.php" || next == "v2.php"))
            || (*s == "apps" && (next == "files" || next == "dashboard"))
    })
}

fn normalize_extensions(key: &str, list: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let ext = raw.trim().trim_start_matches('.').to_lowercase();
        if ext.is_empty() {
            return Err(Error::Config(format!("`filters.{key}` has an empty entry")));
        }
        if ext.contains(['/', '\\']) || ext.chars().any(char::is_whitespace) {
            return Err(Error::Config(format!(
                "`filters.{key}` entry `{raw}` is not an extension (write `pdf` or `tar.gz`)"
            )));
        }
        if !out.contains(&ext) {
            out.push(ext);
        }
    }
    Ok(out)
}

fn parse_time(key: &str, value: Option<toml::Value>, bound: DayBound) -> Result<Option<i64>> {
    let text = match value {
        None => return Ok(None),
        Some(toml::Value::String(s)) => s,
        Some(toml::Value::Datetime(d)) => d.to_string(),
        Some(other) => {
            return Err(Error::Config(format!(
                "`filters.{key}` must be a date like \"2024-01-31\" or an RFC 3339 time, not {}",
                other.type_str()
            )));
        }
    };
    parse_date_or_rfc3339(&text, bound)
        .map(Some)
        .map_err(|e| Error::Config(format!("`filters.{key}`: {e}")))
}

fn validate_filters(raw: RawFilters) -> Result<Filters> {
    let include_extensions = normalize_extensions("include_extensions", raw.include_extensions)?;
    let exclude_extensions = normalize_extensions("exclude_extensions", raw.exclude_extensions)?;
    if let Some(both) = include_extensions
        .iter()
        .find(|e| exclude_extensions.contains(e))
    {
        return Err(Error::Config(format!(
            "`{both}` is in both `filters.include_extensions` and `filters.exclude_extensions`"
        )));
    }
    let f = Filters {
        include_extensions,
        exclude_extensions,
        modified_after: parse_time("modified_after", raw.modified_after, DayBound::Start)?,
        modified_before: parse_time("modified_before", raw.modified_before, DayBound::End)?,
        created_after: parse_time("created_after", raw.created_after, DayBound::Start)?,
        created_before: parse_time("created_before", raw.created_before, DayBound::End)?,
    };
    for (what, after, before) in [
        ("modified", f.modified_after, f.modified_before),
        ("created", f.created_after, f.created_before),
    ] {
        if let (Some(a), Some(b)) = (after, before)
            && a > b
        {
            return Err(Error::Config(format!(
                "`filters.{what}_after` is later than `filters.{what}_before`: no file could match"
            )));
        }
    }
    Ok(f)
}

fn validate_limits(raw: RawLimits) -> Result<Limits> {
    let d = Limits::default();
    Ok(Limits {
        memory_mib: in_range(
            "limits.memory_mib",
            raw.memory_mib,
            d.memory_mib.into(),
            16,
            4096,
        )? as u32,
        guest_time_slice_ms: in_range(
            "limits.guest_time_slice_ms",
            raw.guest_time_slice_ms,
            d.guest_time_slice_ms as i64,
            100,
            600_000,
        )? as u64,
        http_timeout_seconds: in_range(
            "limits.http_timeout_seconds",
            raw.http_timeout_seconds,
            d.http_timeout_seconds as i64,
            1,
            3600,
        )? as u64,
        max_concurrent_requests: in_range(
            "limits.max_concurrent_requests",
            raw.max_concurrent_requests,
            d.max_concurrent_requests.into(),
            1,
            32,
        )? as u32,
        max_body_mib: in_range(
            "limits.max_body_mib",
            raw.max_body_mib,
            d.max_body_mib.into(),
            1,
            1024,
        )? as u32,
        requests_per_second: in_range(
            "limits.requests_per_second",
            raw.requests_per_second,
            d.requests_per_second.into(),
            1,
            10_000,
        )? as u32,
        max_retries: in_range(
            "limits.max_retries",
            raw.max_retries,
            d.max_retries.into(),
            0,
            20,
        )? as u32,
        max_retry_seconds: in_range(
            "limits.max_retry_seconds",
            raw.max_retry_seconds,
            d.max_retry_seconds as i64,
            0,
            3600,
        )? as u64,
        max_response_seconds: in_range(
            "limits.max_response_seconds",
            raw.max_response_seconds,
            d.max_response_seconds as i64,
            1,
            86_400,
        )? as u64,
        max_buffered_mib: in_range(
            "limits.max_buffered_mib",
            raw.max_buffered_mib,
            d.max_buffered_mib.into(),
            1,
            4096,
        )? as u32,
        max_open_bodies: in_range(
            "limits.max_open_bodies",
            raw.max_open_bodies,
            d.max_open_bodies.into(),
            1,
            65_536,
        )? as u32,
        max_call_mib: in_range(
            "limits.max_call_mib",
            raw.max_call_mib,
            d.max_call_mib.into(),
            1,
            1024,
        )? as u32,
        max_staged_mib: in_range(
            "limits.max_staged_mib",
            raw.max_staged_mib,
            d.max_staged_mib.into(),
            1,
            4096,
        )? as u32,
        max_staged_writes: in_range(
            "limits.max_staged_writes",
            raw.max_staged_writes,
            d.max_staged_writes.into(),
            1,
            10_000_000,
        )? as u32,
        max_table_elements: in_range(
            "limits.max_table_elements",
            raw.max_table_elements,
            d.max_table_elements.into(),
            1000,
            10_000_000,
        )? as u32,
        max_run: minutes(
            "limits.max_run_minutes",
            raw.max_run_minutes,
            d.max_run,
            7.0 * 24.0 * 60.0,
        )?,
    })
}

/// Whole or fractional minutes, from a second to `max` minutes.
fn minutes(key: &str, value: Option<toml::Value>, default: Duration, max: f64) -> Result<Duration> {
    let minutes = match value {
        None => return Ok(default),
        Some(toml::Value::Integer(i)) => i as f64,
        Some(toml::Value::Float(f)) => f,
        Some(other) => {
            return Err(Error::Config(format!(
                "`{key}` must be a number of minutes (it is {other})"
            )));
        }
    };
    let min = 1.0 / 60.0;
    if !(min..=max).contains(&minutes) {
        return Err(Error::Config(format!(
            "`{key}` must be between {min:.3} (one second) and {max} (it is {minutes})"
        )));
    }
    Ok(Duration::from_secs_f64(minutes * 60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
base_url = "https://cloud.example.com/"
username = "alice"
database = "state.sqlite"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml_str(text, Path::new("/etc/nc"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), crate::error::exit_code::CONFIG);
                e.to_string()
            }
        }
    }

    fn with(line: &str) -> String {
        format!("{MINIMAL}{line}\n")
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.base_url, "https://cloud.example.com");
        assert_eq!(c.origin.to_string(), "https://cloud.example.com:443");
        assert_eq!(c.username, "alice");
        assert_eq!(
            c.secret_source,
            SecretSource::Env("NEXTCLOUD_APP_PASSWORD".into())
        );
        assert_eq!(c.database, Database::Sqlite("/etc/nc/state.sqlite".into()));
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.reconcile_interval_minutes, 1440);
        assert_eq!(c.filters, Filters::default());
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.limits.requests_per_second, 50);
        assert_eq!(c.limits.max_concurrent_requests, 5);
        assert_eq!(c.limits.max_retries, 5);
        assert_eq!(c.limits.max_retry_seconds, 120);
        assert_eq!(c.name, "alice");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let file = ConfigFile::from_toml_str(MINIMAL, Path::new("/etc/nc")).unwrap();
        assert_eq!(file.interval, Duration::from_secs(3600));
        assert_eq!(file.accounts.len(), 1);
    }

    const TWO: &str = r#"
interval_minutes = 15

[[account]]
name = "alice"
base_url = "https://cloud.example.com"
username = "alice"
app_password_env = "ALICE_PW"
database = "alice.sqlite"

[[account]]
base_url = "https://other.example.org/nc/"
username = "bob"
app_password_file = "bob.txt"
database = "/var/lib/bob.sqlite"
batch_size = 10
[account.limits]
requests_per_second = 5
"#;

    #[test]
    fn several_accounts_each_with_their_own_settings() {
        let file = ConfigFile::from_toml_str(TWO, Path::new("/etc/nc")).unwrap();
        assert_eq!(file.interval, Duration::from_secs(15 * 60));
        let [alice, bob] = &file.accounts[..] else {
            panic!("{:?}", file.accounts)
        };
        assert_eq!(alice.name, "alice");
        assert_eq!(
            alice.database,
            Database::Sqlite("/etc/nc/alice.sqlite".into())
        );
        assert_eq!(alice.secret_source, SecretSource::Env("ALICE_PW".into()));
        assert_eq!(alice.limits, Limits::default());
        assert_eq!(alice.batch_size, 100);
        assert_eq!(bob.name, "bob", "the username when there is no name");
        assert_eq!(bob.base_url, "https://other.example.org/nc");
        assert_eq!(
            bob.secret_source,
            SecretSource::File("/etc/nc/bob.txt".into())
        );
        assert_eq!(bob.batch_size, 10);
        assert_eq!(bob.limits.requests_per_second, 5);

        assert_eq!(file.account(Some("bob")).unwrap().username, "bob");
        let msg = file.account(None).unwrap_err().to_string();
        assert!(
            msg.contains("2 accounts")
                && msg.contains("`alice`, `bob`")
                && msg.contains("--account"),
            "{msg}"
        );
        let msg = file.account(Some("carol")).unwrap_err().to_string();
        assert!(msg.contains("no account is called `carol`"), "{msg}");
        let msg = Config::from_toml_str(TWO, Path::new("/etc/nc"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("--account"), "{msg}");
    }

    #[test]
    fn several_accounts_problems_are_explained() {
        let file = |text: &str| {
            ConfigFile::from_toml_str(text, Path::new("/etc/nc"))
                .unwrap_err()
                .to_string()
        };
        let account = |name: &str, db: &str| {
            format!(
                "[[account]]\nname = \"{name}\"\nbase_url = \"https://h\"\nusername = \"u\"\ndatabase = \"{db}\"\n"
            )
        };
        let msg = file(&format!("{}{}", account("a", "x"), account("a", "y")));
        assert!(msg.contains("two accounts are called `a`"), "{msg}");
        let msg = file(&format!("{}{}", account("a", "x"), account("b", "x")));
        assert!(
            msg.contains("`a` and `b` share the database") && msg.contains("own `database`"),
            "{msg}"
        );
        let msg = file(&format!("base_url = \"https://h\"\n{}", account("a", "x")));
        assert!(msg.contains("`base_url` set at the top level"), "{msg}");
        let msg = file(&format!(
            "{}{}",
            account("a", "x"),
            "[[account]]\nbase_url = \"ftp://h\"\nusername = \"u\"\ndatabase = \"z\"\n"
        ));
        assert!(
            msg.contains("[[account]] #2") && msg.contains("https://"),
            "{msg}"
        );
        let msg = file(&format!("{}interval_minutes = 5\n", account("a", "x")));
        assert!(msg.contains("interval_minutes"), "{msg}");
    }

    #[test]
    fn full_config_is_read() {
        let c = parse(
            r#"
base_url = "https://cloud.example.com/nextcloud"
username = "alice@example.com"
app_password_file = "pw.txt"
database = "/var/lib/nc.sqlite"
batch_size = 500
reconcile_interval_minutes = 60
[filters]
include_extensions = [".PDF", "tar.gz", "pdf"]
exclude_extensions = ["tmp"]
modified_after = 2024-01-01
modified_before = "2024-12-31"
created_after = "2024-01-01T00:00:00+01:00"
[limits]
memory_mib = 128
guest_time_slice_ms = 2000
http_timeout_seconds = 30
max_concurrent_requests = 2
max_body_mib = 8
requests_per_second = 7
max_retries = 0
max_retry_seconds = 30
max_response_seconds = 60
max_buffered_mib = 32
max_open_bodies = 16
max_call_mib = 8
max_staged_mib = 16
max_staged_writes = 500
max_table_elements = 5000
max_run_minutes = 0.5
"#,
        )
        .unwrap();
        assert_eq!(c.base_url, "https://cloud.example.com/nextcloud");
        assert_eq!(c.secret_source, SecretSource::File("/etc/nc/pw.txt".into()));
        assert_eq!(c.database, Database::Sqlite("/var/lib/nc.sqlite".into()));
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.filters.include_extensions, vec!["pdf", "tar.gz"]);
        assert_eq!(c.filters.exclude_extensions, vec!["tmp"]);
        assert_eq!(c.filters.modified_after, Some(1_704_067_200));
        assert_eq!(c.filters.modified_before, Some(1_735_689_599));
        assert_eq!(c.filters.created_after, Some(1_704_063_600));
        assert_eq!(
            c.limits,
            Limits {
                memory_mib: 128,
                guest_time_slice_ms: 2000,
                http_timeout_seconds: 30,
                max_concurrent_requests: 2,
                max_body_mib: 8,
                requests_per_second: 7,
                max_retries: 0,
                max_retry_seconds: 30,
                max_response_seconds: 60,
                max_buffered_mib: 32,
                max_open_bodies: 16,
                max_call_mib: 8,
                max_staged_mib: 16,
                max_staged_writes: 500,
                max_table_elements: 5000,
                max_run: Duration::from_secs(30),
            }
        );
        assert_eq!(c.name, "alice@example.com");
    }

    #[test]
    fn nextcloud_paths_are_trimmed_with_a_warning() {
        for (given, want) in [
            (
                "https://h.example/remote.php/dav/files/alice/",
                "https://h.example",
            ),
            (
                "https://h.example/nc/index.php/apps/files",
                "https://h.example/nc",
            ),
            ("https://h.example/nc/index.php", "https://h.example/nc"),
            (
                "https://h.example/apps/files/files?dir=/Documents",
                "https://h.example",
            ),
            (
                "https://h.example/nc/ocs/v2.php/cloud/user?format=json",
                "https://h.example/nc",
            ),
            ("https://h.example/nc/status.php", "https://h.example/nc"),
            (
                "https://h.example/index.php/apps/files/#top",
                "https://h.example",
            ),
        ] {
            let c = parse(&format!(
                "base_url = \"{given}\"\nusername = \"a\"\ndatabase = \"d\"\n"
            ))
            .unwrap();
            assert_eq!(c.base_url, want);
            assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
            assert!(c.warnings[0].contains(want), "{:?}", c.warnings);
        }
    }

    #[test]
    fn plain_http_warns_unless_loopback() {
        let c =
            parse("base_url = \"http://cloud.example.com\"\nusername = \"a\"\ndatabase = \"d\"\n")
                .unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("unencrypted")),
            "{:?}",
            c.warnings
        );
        let c = parse("base_url = \"http://127.0.0.1:8080\"\nusername = \"a\"\ndatabase = \"d\"\n")
            .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.origin.to_string(), "http://127.0.0.1:8080");
    }

    #[test]
    fn bad_base_urls_are_explained() {
        let cases = [
            ("", "is empty"),
            (
                "cloud.example.com",
                "did you mean `https://cloud.example.com`",
            ),
            (
                "ftp://cloud.example.com",
                "must start with https:// or http://",
            ),
            (
                "https://bob:pw@cloud.example.com",
                "must not contain a user name or password",
            ),
            ("https://cloud.example.com/?x=1", "must not contain a query"),
            ("https://cloud.example.com/#top", "must not contain a query"),
        ];
        for (url, want) in cases {
            let msg = err(&format!(
                "base_url = \"{url}\"\nusername = \"a\"\ndatabase = \"d\"\n"
            ));
            assert!(msg.contains(want), "{url}: {msg}");
        }
    }

    #[test]
    fn username_problems_are_explained() {
        let msg = err("base_url = \"https://h\"\nusername = \" \"\ndatabase = \"d\"\n");
        assert!(msg.contains("`username` is empty"), "{msg}");
        let msg = err("base_url = \"https://h\"\nusername = \"a:b\"\ndatabase = \"d\"\n");
        assert!(msg.contains("Basic authentication"), "{msg}");
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        let msg = err("base_url = \"https://h\"\nusername = \"a\"\n");
        assert!(msg.contains("database"), "{msg}");
        let msg = err(&with("app_password = \"secret\""));
        assert!(msg.contains("unknown field `app_password`"), "{msg}");
        let msg = err(&with("[limits]\nmemory = 1"));
        assert!(msg.contains("unknown field `memory`"), "{msg}");
        let msg = err(&with("[filters]\ninclude = []"));
        assert!(msg.contains("unknown field `include`"), "{msg}");
        let msg = err(&with("batch_size = \"many\""));
        assert!(msg.contains("batch_size"), "{msg}");
    }

    #[test]
    fn secret_sources_are_exclusive() {
        let msg = err(&with("app_password_env = \"A\"\napp_password_file = \"f\""));
        assert!(msg.contains("not both"), "{msg}");
        let msg = err(&with("app_password_env = \"\""));
        assert!(msg.contains("app_password_env"), "{msg}");
        let c = parse(&with("app_password_env = \"MY_PW\"")).unwrap();
        assert_eq!(c.secret_source, SecretSource::Env("MY_PW".into()));
    }

    #[test]
    fn empty_database_is_refused() {
        let msg = err("base_url = \"https://h\"\nusername = \"a\"\ndatabase = \"\"\n");
        assert!(msg.contains("`database` is empty"), "{msg}");
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        let cases = [
            (
                "batch_size = 0",
                "`batch_size` must be between 1 and 10000 (it is 0)",
            ),
            (
                "batch_size = 10001",
                "`batch_size` must be between 1 and 10000",
            ),
            (
                "reconcile_interval_minutes = -1",
                "`reconcile_interval_minutes` must be between 0",
            ),
            (
                "[limits]\nmemory_mib = 8",
                "`limits.memory_mib` must be between 16 and 4096",
            ),
            (
                "[limits]\nguest_time_slice_ms = 10",
                "`limits.guest_time_slice_ms` must be between 100",
            ),
            (
                "[limits]\nhttp_timeout_seconds = 0",
                "`limits.http_timeout_seconds` must be between 1",
            ),
            (
                "[limits]\nmax_concurrent_requests = 0",
                "`limits.max_concurrent_requests` must be between 1 and 32",
            ),
            (
                "[limits]\nmax_body_mib = 0",
                "`limits.max_body_mib` must be between 1 and 1024",
            ),
            (
                "[limits]\nrequests_per_second = 0",
                "`limits.requests_per_second` must be between 1 and 10000",
            ),
            (
                "[limits]\nmax_retries = 21",
                "`limits.max_retries` must be between 0 and 20",
            ),
            (
                "[limits]\nmax_retry_seconds = -1",
                "`limits.max_retry_seconds` must be between 0 and 3600",
            ),
            (
                "[limits]\nmax_response_seconds = 0",
                "`limits.max_response_seconds` must be between 1",
            ),
            (
                "[limits]\nmax_buffered_mib = 0",
                "`limits.max_buffered_mib` must be between 1",
            ),
            (
                "[limits]\nmax_open_bodies = 0",
                "`limits.max_open_bodies` must be between 1",
            ),
            (
                "[limits]\nmax_call_mib = 0",
                "`limits.max_call_mib` must be between 1",
            ),
            (
                "[limits]\nmax_staged_mib = 0",
                "`limits.max_staged_mib` must be between 1",
            ),
            (
                "[limits]\nmax_staged_writes = 0",
                "`limits.max_staged_writes` must be between 1",
            ),
            (
                "[limits]\nmax_table_elements = 10",
                "`limits.max_table_elements` must be between 1000",
            ),
            (
                "[limits]\nmax_run_minutes = 0.001",
                "`limits.max_run_minutes` must be between 0.017 (one second)",
            ),
            (
                "[limits]\nmax_run_minutes = \"1h\"",
                "`limits.max_run_minutes` must be a number of minutes",
            ),
            (
                "interval_minutes = 0",
                "`interval_minutes` must be between 0.017 (one second) and 525600",
            ),
        ];
        for (line, want) in cases {
            let msg = err(&with(line));
            assert!(msg.contains(want), "{line}: {msg}");
        }
    }

    #[test]
    fn filter_problems_are_explained() {
        let cases = [
            (
                "include_extensions = [\"\"]",
                "`filters.include_extensions` has an empty entry",
            ),
            ("exclude_extensions = [\"a/b\"]", "is not an extension"),
            (
                "include_extensions = [\"pdf\"]\nexclude_extensions = [\"PDF\"]",
                "`pdf` is in both",
            ),
            (
                "modified_after = \"last week\"",
                "`filters.modified_after`: `last week` is not a date",
            ),
            (
                "created_before = 5",
                "`filters.created_before` must be a date",
            ),
            (
                "modified_after = \"2024-02-01\"\nmodified_before = \"2024-01-01\"",
                "no file could match",
            ),
            (
                "created_after = 2024-02-01\ncreated_before = 2024-01-01",
                "no file could match",
            ),
        ];
        for (lines, want) in cases {
            let msg = err(&with(&format!("[filters]\n{lines}")));
            assert!(msg.contains(want), "{lines}: {msg}");
        }
    }

    #[test]
    fn load_resolves_paths_against_the_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nc.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.database,
            Database::Sqlite(dir.path().join("state.sqlite"))
        );

        std::fs::write(&path, "base_url = 1").unwrap();
        let msg = Config::load(&path).unwrap_err().to_string();
        assert!(msg.contains("nc.toml"), "{msg}");

        let missing = dir.path().join("nope.toml");
        let msg = Config::load(&missing).unwrap_err().to_string();
        assert!(
            msg.contains("cannot read config file") && msg.contains("nope.toml"),
            "{msg}"
        );
    }

    #[test]
    fn debug_never_shows_a_provided_secret() {
        let c = parse(MINIMAL)
            .unwrap()
            .with_secret(Secret::new("s3cret-app-password"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("[redacted]"), "{dbg}");
        assert_eq!(c.secret().unwrap().expose(), "s3cret-app-password");
    }
}
