//! Reading response bodies the host streams.

use std::io::Read;

use crate::error::{Error, HttpError};

/// Reads a whole body that is expected to be small, refusing one past `cap`.
pub fn read_body<R: Read>(body: R, cap: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    body.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(io_error)?;
    if out.len() > cap {
        return Err(Error::Http(format!(
            "response body larger than {cap} bytes"
        )));
    }
    Ok(out)
}

/// Body read errors carry the host's [`HttpError`] when it has one.
pub fn io_error(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<HttpError>())
    {
        Some(http) => Error::from(http.clone()),
        None => Error::Http(format!("reading the response: {e}")),
    }
}
