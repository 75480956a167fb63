//! Typed errors. Each says what happened and, where the user can act, what to do.

use thiserror::Error;

/// What the host's HTTP layer reported; mirrors the WIT `http-error`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("request refused by the host: {0}")]
    Refused(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("response too large: {0}")]
    TooLarge(String),
}

/// Why an operation of the connector failed; mirrors the WIT `error`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Http(String),
    #[error("unreadable server answer: {0}")]
    Protocol(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Content(String),
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Unauthorized(m) => Error::Unauthorized(m),
            other => Error::Http(other.to_string()),
        }
    }
}

impl Error {
    /// An HTTP answer the connector did not expect, with what it was asking for.
    pub fn status(what: &str, status: u16) -> Self {
        let hint = match status {
            404 => " (is the base URL right, and does the user exist?)",
            429 => " (the server is throttling this address; wait and retry later)",
            500..=599 => " (the server failed; retry later)",
            _ => "",
        };
        Error::Http(format!("{what}: HTTP {status}{hint}"))
    }
}
