//! The library's error type and what each kind means as a process exit code.

use thiserror::Error;

/// Everything a command of this crate can fail with. Each message says what
/// happened and, where the user can act, what to do.
#[derive(Debug, Error)]
pub enum Error {
    /// The configuration file, the secret or a command-line value is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// No connector component, or one built for another WIT version, or one
    /// that does not compile or link.
    #[error("connector component: {0}")]
    Component(String),
    /// Nextcloud rejected the credential.
    #[error("{0}")]
    Unauthorized(String),
    /// HTTP failed, or the server answered with an error status, or with
    /// something the connector cannot read, or the record was not there.
    #[error("{0}")]
    Server(String),
    /// The database (SQLite file or PostgreSQL) could not be opened, read or
    /// written.
    #[error("storage: {0}")]
    Storage(String),
    /// The connector trapped: a panic, a memory or time limit, or a sandbox
    /// violation.
    #[error("connector failed: {0}")]
    Guest(String),
    /// Another sync of the same account is running, or another worker took
    /// over this one's lease.
    #[error("{0}")]
    Busy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes, documented in `host-runner --help`.
pub mod exit_code {
    /// Everything went well.
    pub const OK: i32 = 0;
    /// An unexpected failure outside the categories below.
    pub const OTHER: i32 = 1;
    /// Bad configuration or command line.
    pub const CONFIG: i32 = 2;
    /// Nextcloud rejected the credential.
    pub const UNAUTHORIZED: i32 = 3;
    /// HTTP, server or protocol failure.
    pub const SERVER: i32 = 4;
    /// Database failure (SQLite or PostgreSQL).
    pub const STORAGE: i32 = 5;
    /// The connector trapped or broke a sandbox limit.
    pub const GUEST: i32 = 6;
    /// The connector component is missing, incompatible or does not load.
    pub const COMPONENT: i32 = 7;
    /// Another sync of the same account holds its lock or lease.
    pub const BUSY: i32 = 8;
}

impl Error {
    /// The exit code the CLI ends with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => exit_code::CONFIG,
            Error::Component(_) => exit_code::COMPONENT,
            Error::Unauthorized(_) => exit_code::UNAUTHORIZED,
            Error::Server(_) => exit_code::SERVER,
            Error::Storage(_) => exit_code::STORAGE,
            Error::Guest(_) => exit_code::GUEST,
            Error::Busy(_) => exit_code::BUSY,
        }
    }

    /// The message without the kind's prefix (`storage: `…): what is handed
    /// on when the error crosses to the connector and comes back as one of
    /// its own, which gets the prefix again.
    pub fn detail(&self) -> &str {
        match self {
            Error::Config(m)
            | Error::Component(m)
            | Error::Unauthorized(m)
            | Error::Server(m)
            | Error::Storage(m)
            | Error::Guest(m)
            | Error::Busy(m) => m,
        }
    }

    /// A short name of the kind, for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Component(_) => "component",
            Error::Unauthorized(_) => "unauthorized",
            Error::Server(_) => "server",
            Error::Storage(_) => "storage",
            Error::Guest(_) => "guest",
            Error::Busy(_) => "busy",
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_nonzero() {
        let errors = [
            Error::Config(String::new()),
            Error::Component(String::new()),
            Error::Unauthorized(String::new()),
            Error::Server(String::new()),
            Error::Storage(String::new()),
            Error::Guest(String::new()),
            Error::Busy(String::new()),
        ];
        let mut codes: Vec<i32> = errors.iter().map(Error::exit_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(codes.iter().all(|c| *c > exit_code::OTHER));
    }
}
