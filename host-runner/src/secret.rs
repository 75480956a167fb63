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

const HOW_TO_GET_ONE: &str =
    "create an app password in Nextcloud under Settings > Security > Devices & sessions";

impl SecretSource {
    /// Reads the secret, looking environment variables up with `env`.
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Secret> {
        let (text, from) = match self {
            SecretSource::Provided(secret) => {
                return check(secret.expose(), "the caller").map(|()| secret.clone());
            }
            SecretSource::Env(name) => {
                let value = env(name).ok_or_else(|| {
                    Error::Config(format!(
                        "the app password is missing: set the environment variable {name} (named by `app_password_env`), or set `app_password_file` to a file holding it; {HOW_TO_GET_ONE}"
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
                        "cannot read the app password file `{}` (`app_password_file`): {e}",
                        path.display()
                    ))
                })?;
                warn_if_readable_by_others(path);
                (
                    value.trim_end().to_string(),
                    format!("the file `{}`", path.display()),
                )
            }
        };
        check(&text, &from)?;
        Ok(Secret(text))
    }

    /// Reads the secret from the process environment or the file.
    pub fn resolve(&self) -> Result<Secret> {
        self.resolve_with(&|name| std::env::var_os(name))
    }
}

fn check(text: &str, from: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::Config(format!(
            "the app password from {from} is empty; {HOW_TO_GET_ONE}"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::Config(format!(
            "the app password from {from} contains a line break or another control character"
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the app password file `{}` can be read by other users; restrict it with `chmod 600`",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

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
