//! The app password: where it comes from, and a wrapper that never prints it.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The Nextcloud app password. `Debug` and `Display` print `[redacted]`; the
/// only way to the text is [`Secret::expose`], used where the `Authorization`
/// header is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the app password is read from. It never comes from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The environment variable of this name (`app_password_env`).
    Env(String),
    /// This file, trailing whitespace trimmed (`app_password_file`).
    File(PathBuf),
    /// Handed over in-process (the demo, tests).
    Provided(Secret),
}

/// Which secret a [`SecretSource`] reads, for its messages.
#[derive(Debug)]
pub struct SecretKind {
    pub what: &'static str,
    pub env_key: &'static str,
    pub file_key: &'static str,
    /// What to do when it is missing or empty.
    pub hint: &'static str,
}

pub const APP_PASSWORD: SecretKind = SecretKind {
    what: "app password",
    env_key: "app_password_env",
    file_key: "app_password_file",
    hint: "create an app password in Nextcloud under Settings > Security > Devices & sessions",
};

pub const DATABASE_PASSWORD: SecretKind = SecretKind {
    what: "database password",
    env_key: "database_password_env",
    file_key: "database_password_file",
    hint: "it is the password of the PostgreSQL role named in `database`",
};

impl SecretSource {
    /// Reads the app password, looking environment variables up with `env`.
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Secret> {
        self.resolve_kind_with(&APP_PASSWORD, env)
    }

    /// Reads the secret `kind`, looking environment variables up with `env`.
    pub fn resolve_kind_with(
        &self,
        kind: &SecretKind,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Secret> {
        let SecretKind {
            what,
            env_key,
            file_key,
            hint,
        } = kind;
        let (text, from) = match self {
            SecretSource::Provided(secret) => {
                return check(kind, secret.expose(), "the caller").map(|()| secret.clone());
            }
            SecretSource::Env(name) => {
                let value = env(name).ok_or_else(|| {
                    Error::Config(format!(
                        "the {what} is missing: set the environment variable {name} (named by `{env_key}`), or set `{file_key}` to a file holding it; {hint}"
                    ))
                })?;
                let value = value.into_string().map_err(|_| {
                    Error::Config(format!(
                        "the environment variable {name} does not hold valid UTF-8 text"
                    ))
                })?;
                (value, format!("the environment variable {name}"))
            }
            SecretSource::File(path) => {
                let value = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!(
                        "cannot read the {what} file `{}` (`{file_key}`): {e}",
                        path.display()
                    ))
                })?;
                warn_if_readable_by_others(kind, path);
                (
                    value.trim_end().to_string(),
                    format!("the file `{}`", path.display()),
                )
            }
        };
        check(kind, &text, &from)?;
        Ok(Secret(text))
    }

    /// Reads the app password from the process environment or the file.
    pub fn resolve(&self) -> Result<Secret> {
        self.resolve_with(&|name| std::env::var_os(name))
    }

    /// Reads the secret `kind` from the process environment or the file.
    pub fn resolve_kind(&self, kind: &SecretKind) -> Result<Secret> {
        self.resolve_kind_with(kind, &|name| std::env::var_os(name))
    }
}

fn check(kind: &SecretKind, text: &str, from: &str) -> Result<()> {
    let SecretKind { what, hint, .. } = kind;
    if text.is_empty() {
        return Err(Error::Config(format!(
            "the {what} from {from} is empty; {hint}"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::Config(format!(
            "the {what} from {from} contains a line break or another control character"
        )));
    }
    Ok(())
}

fn warn_if_readable_by_others(kind: &SecretKind, path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the {} file `{}` can be read by other users; restrict it with `chmod 600`",
            kind.what,
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn never_prints_the_secret() {
        let s = Secret::new("hunter2-abcde");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2-abcde");
        let src = SecretSource::Provided(s);
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn env_variable_is_named_when_missing() {
        let err = SecretSource::Env("MY_NC_PW".into())
            .resolve_with(&no_env)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("MY_NC_PW"), "{msg}");
        assert!(msg.contains("app_password_file"), "{msg}");
        assert_eq!(err.exit_code(), crate::error::exit_code::CONFIG);
    }

    #[test]
    fn env_variable_is_read() {
        let env = |n: &str| (n == "PW").then(|| OsString::from("abc-def"));
        let s = SecretSource::Env("PW".into()).resolve_with(&env).unwrap();
        assert_eq!(s.expose(), "abc-def");
    }

    #[test]
    fn empty_and_multiline_secrets_are_refused() {
        let env = |_: &str| Some(OsString::from(""));
        let msg = SecretSource::Env("PW".into())
            .resolve_with(&env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("empty") && msg.contains("PW"), "{msg}");
        let env = |_: &str| Some(OsString::from("abc\r\nX-Evil: 1"));
        let msg = SecretSource::Env("PW".into())
            .resolve_with(&env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("control character"), "{msg}");
    }

    #[test]
    fn file_is_read_and_trailing_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "abcde-fghij\n").unwrap();
        let s = SecretSource::File(path).resolve_with(&no_env).unwrap();
        assert_eq!(s.expose(), "abcde-fghij");
    }

    #[test]
    fn missing_file_is_named() {
        let msg = SecretSource::File("/nonexistent/pw.txt".into())
            .resolve_with(&no_env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/pw.txt"), "{msg}");
        assert!(msg.contains("app_password_file"), "{msg}");
    }
}
