//! Streaming a file's content from the server to a host-provided destination,
//! in bounded chunks, with the request built exactly (every reserved byte of
//! the path encoded).

use std::io::Read;

use crate::error::Error;
use crate::host::{Host, Request};
use crate::href::DavRoot;
use crate::io_error;
use crate::model::Record;

/// The most a single chunk holds on its way to the destination.
pub const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub offset: u64,
    pub if_match: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub written: u64,
    pub etag: Option<String>,
    pub resumed: bool,
    pub verified: Option<String>,
}

pub fn stream<H: Host>(
    host: &H,
    root: &DavRoot,
    record: &Record,
    options: &StreamOptions,
    mut write: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<StreamInfo, Error> {
    if record.is_folder {
        return Err(Error::Content(format!(
            "{} is a folder; only files can be downloaded",
            record.path
        )));
    }
    let mut request = Request::new("GET", root.url_of(&record.path));
    if options.offset > 0 {
        request = request.header("Range", &format!("bytes={}-", options.offset));
    }
    let response = host.send(request)?;
    let resumed = match response.status {
        200 => false,
        206 => {
            let start = response
                .header("Content-Range")
                .and_then(|r| r.strip_prefix("bytes "))
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(options.offset) {
                return Err(Error::Protocol(format!(
                    "asked for bytes from {} of {} but the server sent Content-Range {:?}",
                    options.offset,
                    record.path,
                    response.header("Content-Range")
                )));
            }
            true
        }
        404 => {
            return Err(Error::NotFound(format!(
                "{} no longer exists on the server; sync again to update the records",
                record.path
            )));
        }
        status => {
            return Err(Error::status(
                &format!("downloading {}", record.path),
                status,
            ));
        }
    };
    let etag = response
        .header("ETag")
        .or_else(|| response.header("OC-ETag"))
        .map(|e| e.trim().trim_matches('"').to_string());
    if let (Some(wanted), Some(got)) = (&options.if_match, &etag)
        && wanted != got
    {
        return Err(Error::Content(format!(
            "{} changed on the server since the last sync (etag {got}, expected {wanted}); refusing to download it",
            record.path
        )));
    }
    let mut body = response.body;
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        write(&buf[..n]).map_err(|e| Error::Storage(format!("writing the content: {e}")))?;
        written += n as u64;
    }
    Ok(StreamInfo {
        written,
        etag,
        resumed,
        verified: None,
    })
}
