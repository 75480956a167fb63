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
//! ```

use crate::error::{Error, Result};
use crate::origin::{Origin, is_loopback};
use crate::secret::{Secret, SecretSource};
use crate::timefmt::{DayBound, parse_date_or_rfc3339};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use url::Url;

pub const DEFAULT_PASSWORD_ENV: &str = "NEXTCLOUD_APP_PASSWORD";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base_url: String,
    username: String,
    app_password_env: Option<String>,
    app_password_file: Option<PathBuf>,
    database: PathBuf,
    batch_size: Option<i64>,
    reconcile_interval_minutes: Option<i64>,
    #[serde(default)]
    filters: RawFilters,
    #[serde(default)]
    limits: RawLimits,
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
    /// How many requests of one `send-all` run at once.
    pub max_concurrent_requests: u32,
    /// The cap on a buffered (`send-all`) response body.
    pub max_body_mib: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            guest_time_slice_ms: 10_000,
            http_timeout_seconds: 120,
            max_concurrent_requests: 5,
            max_body_mib: 64,
        }
    }
}

/// A validated configuration. It holds where the secret comes from, not the
/// secret itself (except when one was provided in-process, which `Debug`
/// still prints as `[redacted]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Normalised: `http(s)://host[:port][/subpath]`, no trailing slash.
    pub base_url: String,
    pub origin: Origin,
    pub username: String,
    pub secret_source: SecretSource,
    /// Absolute, or relative to the working directory when the configuration
    /// did not come from a file.
    pub database: PathBuf,
    pub batch_size: u32,
    pub reconcile_interval_minutes: u64,
    pub filters: Filters,
    pub limits: Limits,
    /// Things that work but deserve the user's attention.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a configuration file. Relative paths in it are
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read config file `{}`: {e}", path.display()))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Config::from_toml_str(&text, &dir).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("`{}`: {m}", path.display())),
            other => other,
        })
    }

    /// Validates configuration text; relative paths resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
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

        if raw.database.as_os_str().is_empty() {
            return Err(Error::Config(
                "`database` is empty: name the SQLite file that keeps state and records".into(),
            ));
        }
        let database = base_dir.join(raw.database);

        let batch_size = in_range("batch_size", raw.batch_size, 100, 1, 10_000)? as u32;
        let reconcile_interval_minutes = in_range(
            "reconcile_interval_minutes",
            raw.reconcile_interval_minutes,
            1440,
            0,
            525_600,
        )? as u64;
        let filters = validate_filters(raw.filters)?;
        let limits = validate_limits(raw.limits)?;

        Ok(Config {
            base_url,
            origin,
            username: username.to_string(),
            secret_source,
            database,
            batch_size,
            reconcile_interval_minutes,
            filters,
            limits,
            warnings,
        })
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
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "`base_url` `{text}` must not contain a query (`?…`) or fragment (`#…`)"
        )));
    }

    let path = url.path().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(i) = segments
        .iter()
        .position(|s| *s == "remote.php" || *s == "index.php" || s.starts_with("index.php"))
    {
        let kept = segments[..i].join("/");
        url.set_path(&kept);
        let trimmed = url.as_str().trim_end_matches('/').to_string();
        warnings.push(format!(
            "`base_url` pointed inside Nextcloud (`{}`); using `{trimmed}`: the base URL is the address you open Nextcloud at",
            path
        ));
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
    })
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
        assert_eq!(c.database, PathBuf::from("/etc/nc/state.sqlite"));
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.reconcile_interval_minutes, 1440);
        assert_eq!(c.filters, Filters::default());
        assert_eq!(c.limits, Limits::default());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
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
"#,
        )
        .unwrap();
        assert_eq!(c.base_url, "https://cloud.example.com/nextcloud");
        assert_eq!(c.secret_source, SecretSource::File("/etc/nc/pw.txt".into()));
        assert_eq!(c.database, PathBuf::from("/var/lib/nc.sqlite"));
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
                max_body_mib: 8
            }
        );
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
        assert_eq!(c.database, dir.path().join("state.sqlite"));

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
