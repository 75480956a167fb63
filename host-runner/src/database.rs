//! `database`: where an account's state, sink and feed live.
//!
//! A path names a SQLite file (the embedded default, one per account); a
//! `postgres://role@host[:port]/dbname` URL names a PostgreSQL database that
//! many accounts and workers may share. The password never sits in the URL
//! (URLs end up in logs, process lists and shell history): it comes from
//! `database_password_env` (default `PGPASSWORD`, when set) or
//! `database_password_file`, like the app password.

use crate::error::{Error, Result};
use crate::secret::{DATABASE_PASSWORD, Secret, SecretSource};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variable read for the database password when the file names none:
/// PostgreSQL's own tools read it too.
pub const DEFAULT_DATABASE_PASSWORD_ENV: &str = "PGPASSWORD";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(PostgresTarget),
}

/// A PostgreSQL database, as the configuration names it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// As written, without a password: what messages show.
    pub url: String,
    pub password: SecretSource,
    /// Whether the password source was named in the file (then it must
    /// resolve) or is the `PGPASSWORD` default (used only when set).
    pub password_required: bool,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(t) => f.write_str(&t.url),
        }
    }
}

impl Database {
    /// Reads `database` and the database password keys of one account.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
    ) -> Result<Database> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Config(
                "`database` is empty: name the SQLite file that keeps state and records, or a postgres:// URL".into(),
            ));
        }
        let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
        if !is_url {
            if password_env.is_some() || password_file.is_some() {
                return Err(Error::Config(
                    "`database_password_env` and `database_password_file` are for a postgres:// `database`; a SQLite file has no password".into(),
                ));
            }
            if text.contains("://") {
                return Err(Error::Config(format!(
                    "`database` `{text}` is neither a file path nor a postgres:// URL"
                )));
            }
            return Ok(Database::Sqlite(base_dir.join(text)));
        }
        let url = url::Url::parse(text)
            .map_err(|e| Error::Config(format!("`database` is not a URL: {e}")))?;
        if url.password().is_some() {
            return Err(Error::Config(
                "`database` holds a password: take it out of the URL and put it in the environment variable named by `database_password_env` (default PGPASSWORD) or in `database_password_file`".into(),
            ));
        }
        if url.username().is_empty() {
            return Err(Error::Config(format!(
                "`database` `{text}` names no role: write postgres://ROLE@HOST/DBNAME"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) || url.path().trim_matches('/').is_empty() {
            return Err(Error::Config(format!(
                "`database` `{text}` needs a host and a database name: postgres://ROLE@HOST[:PORT]/DBNAME"
            )));
        }
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("sslmode", "disable" | "prefer") | ("application_name", _) => {}
                ("connect_timeout", v) if v.parse::<u32>().is_ok() => {}
                ("sslmode", other) => {
                    return Err(Error::Config(format!(
                        "`database`: sslmode={other} asks for TLS, which this host-runner does not speak to PostgreSQL yet; reach the server over loopback, a Unix-socket proxy or an SSH tunnel"
                    )));
                }
                (other, _) => {
                    return Err(Error::Config(format!(
                        "`database`: the URL parameter `{other}` is not supported (supported: sslmode=disable, connect_timeout, application_name)"
                    )));
                }
            }
        }
        let (password, password_required) = match (password_env, password_file) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "set either `database_password_env` or `database_password_file`, not both"
                        .into(),
                ));
            }
            (_, Some(file)) => (SecretSource::File(base_dir.join(file)), true),
            (Some(name), None) => (SecretSource::Env(name.trim().to_string()), true),
            (None, None) => (
                SecretSource::Env(DEFAULT_DATABASE_PASSWORD_ENV.to_string()),
                false,
            ),
        };
        Ok(Database::Postgres(PostgresTarget {
            url: text.to_string(),
            password,
            password_required,
        }))
    }
}

impl PostgresTarget {
    /// The driver's connection settings, password included.
    pub fn client_config(&self) -> Result<postgres::Config> {
        let mut config: postgres::Config = self
            .url
            .parse()
            .map_err(|e| Error::Config(format!("`database` `{}` is not usable: {e}", self.url)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("nextcloud-connector");
        }
        if let Some(secret) = self.password()? {
            config.password(secret.expose());
        }
        Ok(config)
    }

    fn password(&self) -> Result<Option<Secret>> {
        match (&self.password, self.password_required) {
            (SecretSource::Env(name), false) if std::env::var_os(name).is_none() => Ok(None),
            (source, _) => source.resolve_kind(&DATABASE_PASSWORD).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Database> {
        Database::parse(text, Path::new("/etc/nc"), None, None)
    }

    #[test]
    fn paths_are_sqlite_and_urls_postgres() {
        assert_eq!(
            parse("state.sqlite").unwrap(),
            Database::Sqlite("/etc/nc/state.sqlite".into())
        );
        let Database::Postgres(t) = parse("postgres://connector@db:5433/nc").unwrap() else {
            panic!()
        };
        assert_eq!(t.url, "postgres://connector@db:5433/nc");
        assert!(!t.password_required);
        let c = t.client_config().unwrap();
        assert_eq!(c.get_user(), Some("connector"));
        assert_eq!(c.get_dbname(), Some("nc"));
    }

    #[test]
    fn a_password_in_the_url_or_tls_is_refused_with_what_to_do() {
        let msg = parse("postgres://connector:hunter2@db/nc")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("database_password_env"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let msg = parse("postgres://connector@db/nc?sslmode=require")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("TLS"), "{msg}");
        for bad in [
            "postgres://db/nc",
            "postgres://connector@db/",
            "mysql://a@b/c",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let msg = Database::parse("a.sqlite", Path::new("/"), Some("X".into()), None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("SQLite file has no password"), "{msg}");
    }

    #[test]
    fn debug_never_shows_the_password_source_contents() {
        let d = Database::parse(
            "postgres://connector@db/nc",
            Path::new("/"),
            None,
            Some("pw.txt".into()),
        )
        .unwrap();
        assert!(format!("{d:?}").contains("postgres://connector@db/nc"));
    }
}
