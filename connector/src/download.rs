//! Streaming a file's content from the server to a host-provided destination,
//! in bounded chunks, with the request built exactly (every reserved byte of
//! the path encoded).
//!
//! * **Resuming.** With an offset, one GET carries `Range: bytes=N-` and
//!   `If-Range` with the record's etag: the held bytes are taken to be the
//!   start of that version. Only a 206 whose `Content-Range` starts at N and
//!   whose etag is still the record's continues it. A 200 means the server
//!   ignored the range (Nextcloud sends no `Accept-Ranges`, and answers a
//!   failed `If-Range` that way): the destination is told to start over and
//!   the same body is streamed from byte 0. A 206 for another version, or a
//!   416, is dropped and the content fetched again without a range.
//! * **Checksums.** The one to verify is the server's `OC-Checksum` header,
//!   else the record's `oc:checksums` when the server's etag is still the
//!   record's (they describe that version only); SHA1 before MD5 before
//!   Adler-32. When the whole content passes through here it is hashed on
//!   the way and a mismatch fails the call after the last chunk, so the host
//!   never finishes the file. A resumed transfer only sees the tail, so it
//!   reports the checksum as `checksum` with `verified` none: the host, which
//!   holds the whole file, must check it (the guest never reads host files).
//! * **Changes.** The server's etag is reported; with `if_match` a different
//!   (or missing) one refuses the download before any byte is written. A
//!   file's size that differs from the record's means another version too:
//!   Nextcloud keeps a file's etag when it is overwritten within the second
//!   of its last write.

use std::io::Read;

use crate::body::io_error;
use crate::checksum::{self, Checksum, Hasher};
use crate::error::Error;
use crate::host::{Host, Level, Request, Response};
use crate::href::DavRoot;
use crate::model::Record;

/// The most a single chunk holds on its way to the destination.
pub const CHUNK: usize = 64 * 1024;

/// Where the content goes (the WIT `destination`).
pub trait Destination {
    fn write(&mut self, chunk: &[u8]) -> Result<(), String>;
    /// Drops everything the destination holds, the bytes it had before the
    /// call included: the content starts again at byte 0.
    fn restart(&mut self) -> Result<(), String>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub offset: u64,
    pub if_match: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Bytes written to the destination by this call.
    pub written: u64,
    pub etag: Option<String>,
    /// True when the content continued after `offset`; false when it started at 0.
    pub resumed: bool,
    /// The checksum the streamed bytes were checked against, when all of them were.
    pub verified: Option<String>,
    /// The server's checksum for the whole content, when it has one this
    /// connector understands.
    pub checksum: Option<String>,
}

/// Streams `record`'s content into `destination` (see the module's notes),
/// in three steps: `fetch` the answer, deciding whether the held bytes are
/// continued; `accept` its status and version; `receive` its body.
pub fn stream<H: Host>(
    host: &H,
    root: &DavRoot,
    record: &Record,
    options: &StreamOptions,
    destination: &mut impl Destination,
) -> Result<StreamInfo, Error> {
    if record.is_folder {
        return Err(Error::Content(format!(
            "{} is a folder; only files can be downloaded",
            record.path
        )));
    }
    let answer = fetch(host, root, record, options.offset)?;
    // Everything that can refuse the answer runs before the destination is
    // touched, so a refusal leaves the held bytes as they were.
    let accepted = accept(&answer, record, options.if_match.as_deref())?;
    let resumed = answer.offset > 0;
    let (written, verified) = receive(answer, &accepted, &record.path, destination)?;
    Ok(StreamInfo {
        written,
        etag: accepted.etag,
        resumed,
        verified,
        checksum: accepted.checksum.map(|c| c.to_string()),
    })
}

/// The answer whose body is streamed, and where in the file that body starts.
struct Answer<B> {
    response: Response<B>,
    /// The asked offset when the held bytes are continued, else 0.
    offset: u64,
    /// The held bytes are not the start of this body: the destination must
    /// drop them before the first write.
    restart: bool,
}

impl<B> Answer<B> {
    /// How many bytes the body must hold, when the server says.
    fn length(&self) -> Option<u64> {
        if self.offset > 0 {
            content_range(&self.response).map(|(start, end, _)| end - start + 1)
        } else {
            content_length(&self.response)
        }
    }
}

/// What the answer to a ranged GET means for the bytes already held.
enum Resume {
    /// Use the answer as it is: a 206 of the record's version from the
    /// offset, or an error status, which [`accept`] reports.
    Keep,
    /// A 200: the server ignored the range (Nextcloud does when `If-Range`
    /// fails) and sent the whole file, which is as good as asking again.
    UseWhole,
    /// A 206 of another version, or a 416: this body is of no use.
    AskAgain,
}

/// Sends the GET and, when resuming, settles from the answer whether the
/// held bytes are continued or the content starts over at byte 0.
fn fetch<H: Host>(
    host: &H,
    root: &DavRoot,
    record: &Record,
    offset: u64,
) -> Result<Answer<H::Body>, Error> {
    let response = get(host, root, record, offset)?;
    let resume = if offset > 0 {
        judge_resumed(host, record, offset, &response)?
    } else {
        Resume::Keep
    };
    let response = match resume {
        Resume::Keep => {
            return Ok(Answer {
                response,
                offset,
                restart: false,
            });
        }
        Resume::UseWhole => response,
        Resume::AskAgain => {
            // An unread streamed body keeps one of the host's concurrent
            // request permits until it is dropped.
            drop(response);
            get(host, root, record, 0)?
        }
    };
    Ok(Answer {
        response,
        offset: 0,
        restart: true,
    })
}

/// One GET; from `offset` on, with `If-Range` so that a server that honours
/// it sends the whole file rather than the tail of another version.
fn get<H: Host>(
    host: &H,
    root: &DavRoot,
    record: &Record,
    offset: u64,
) -> Result<Response<H::Body>, Error> {
    let mut request = Request::new("GET", root.url_of(&record.path));
    if offset > 0 {
        request = request.header("Range", &format!("bytes={offset}-"));
        if !record.etag.is_empty() {
            request = request.header("If-Range", &format!("\"{}\"", record.etag));
        }
    }
    Ok(host.send(request)?)
}

/// Reads the answer to a GET from `offset`. A range that starts elsewhere
/// is refused: appending it would corrupt the file.
fn judge_resumed<B>(
    host: &impl Host,
    record: &Record,
    offset: u64,
    response: &Response<B>,
) -> Result<Resume, Error> {
    let path = &record.path;
    match response.status {
        206 if content_range(response).map(|r| r.0) != Some(offset) => {
            Err(Error::Protocol(format!(
                "asked for {path} from byte {offset} but the server sent Content-Range {:?}",
                response.header("Content-Range")
            )))
        }
        206 if other_version(response, record) => {
            starting_over(
                host,
                &format!(
                    "{path} changed since the held bytes were fetched (etag {}, {} bytes now; {}, {} bytes then)",
                    etag_of(response).unwrap_or_default(),
                    size_text(response),
                    record.etag,
                    record.size
                ),
            );
            Ok(Resume::AskAgain)
        }
        206 => Ok(Resume::Keep),
        416 => {
            let why = format!("the server cannot continue {path} after byte {offset} (HTTP 416)");
            starting_over(host, &why);
            Ok(Resume::AskAgain)
        }
        200 => {
            let why = format!("the server sent all of {path} instead of the rest");
            starting_over(host, &why);
            Ok(Resume::UseWhole)
        }
        // Any other status is an error, which `accept` reports.
        _ => Ok(Resume::Keep),
    }
}

/// Held bytes are dropped only with a line in the log saying why, since the
/// transfer then costs more than the caller planned.
fn starting_over(host: &impl Host, why: &str) {
    host.log(Level::Info, &format!("{why}; starting over"));
}

/// What the accepted answer's headers say about its content.
struct Accepted {
    etag: Option<String>,
    /// The whole content's checksum, when one is known for this version.
    checksum: Option<Checksum>,
}

/// Refuses an answer whose status does not fit what was asked, or, with
/// `if_match`, one that is not of the version the caller expects.
fn accept<B>(
    answer: &Answer<B>,
    record: &Record,
    if_match: Option<&str>,
) -> Result<Accepted, Error> {
    check_status(answer, &record.path)?;
    let response = &answer.response;
    let etag = etag_of(response);
    let same_version = !other_version(response, record);
    if let Some(wanted) = if_match
        && (etag.as_deref() != Some(wanted) || !same_version)
    {
        return Err(changed_since_sync(
            record,
            response,
            etag.as_deref(),
            wanted,
        ));
    }
    Ok(Accepted {
        checksum: expected_checksum(response, record, same_version),
        etag,
    })
}

/// Only a 200 to a request for everything, or a 206 to one for the rest,
/// carries content that can be written.
fn check_status<B>(answer: &Answer<B>, path: &str) -> Result<(), Error> {
    match (answer.response.status, answer.offset) {
        (200, 0) => Ok(()),
        (206, o) if o > 0 => Ok(()),
        (404, _) => Err(Error::NotFound(format!(
            "{path} no longer exists on the server (HTTP 404); sync again to update the records"
        ))),
        (206, _) => Err(Error::Protocol(format!(
            "the server sent part of {path} (HTTP 206) although all of it was asked for"
        ))),
        (status, _) => Err(Error::status(&format!("downloading {path}"), status)),
    }
}

/// The `if_match` refusal, saying what the server has instead.
fn changed_since_sync<B>(
    record: &Record,
    response: &Response<B>,
    etag: Option<&str>,
    wanted: &str,
) -> Error {
    Error::Content(match etag {
        Some(got) => format!(
            "{} changed on the server since the last sync (etag {got}, {} bytes; expected {wanted}, {} bytes); refusing to download it",
            record.path,
            size_text(response),
            record.size
        ),
        None => format!(
            "the server sent no etag for {}, so it cannot be shown to be unchanged (expected {wanted}); refusing to download it",
            record.path
        ),
    })
}

/// The server's `OC-Checksum` for this response, else the record's own when
/// the response is of the version the record describes.
fn expected_checksum<B>(
    response: &Response<B>,
    record: &Record,
    same_version: bool,
) -> Option<Checksum> {
    let sent = checksum::parse_all(response.header("OC-Checksum"));
    if let Some(c) = checksum::preferred(&sent) {
        return Some(c.clone());
    }
    if same_version && etag_of(response).is_some_and(|e| e == record.etag) {
        let known = checksum::parse_all(record.checksums.iter().map(String::as_str));
        return checksum::preferred(&known).cloned();
    }
    None
}

/// Writes the body to the destination and returns the bytes written and the
/// checksum they were verified against. A short body or a mismatch fails
/// only after the last chunk: the host then discards the file unfinished.
fn receive<B: Read>(
    answer: Answer<B>,
    accepted: &Accepted,
    path: &str,
    destination: &mut impl Destination,
) -> Result<(u64, Option<String>), Error> {
    let length = answer.length();
    if answer.restart {
        destination
            .restart()
            .map_err(|e| Error::Storage(format!("starting the content over: {e}")))?;
    }
    // A resumed transfer sees only the tail; the host, which holds the whole
    // file, checks the checksum instead.
    let mut check = accepted
        .checksum
        .as_ref()
        .filter(|_| answer.offset == 0)
        .map(|expected| (expected, Hasher::new(expected.algorithm)));
    let hasher = check.as_mut().map(|(_, hasher)| hasher);
    let written = pump(answer.response.body, destination, hasher)?;
    if let Some(length) = length
        && written != length
    {
        return Err(Error::Http(format!(
            "the server's answer for {path} ended after {written} of {length} bytes"
        )));
    }
    let verified = check
        .map(|(expected, hasher)| verify(hasher, expected, written, path))
        .transpose()?;
    Ok((written, verified))
}

/// The expected checksum, as reported, when the hashed bytes match it.
fn verify(hasher: Hasher, expected: &Checksum, written: u64, path: &str) -> Result<String, Error> {
    let actual = hasher.finish();
    if actual != *expected {
        return Err(Error::Content(format!(
            "checksum mismatch for {path}: Nextcloud has {expected}, the {written} bytes received hash to {actual}; the download is discarded"
        )));
    }
    Ok(expected.to_string())
}

/// Copies the body to the destination in chunks of up to [`CHUNK`] bytes,
/// hashing on the way.
fn pump(
    mut body: impl Read,
    destination: &mut impl Destination,
    mut hasher: Option<&mut Hasher>,
) -> Result<u64, Error> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    let mut done = false;
    while !done {
        let mut filled = 0;
        while filled < CHUNK {
            let n = body.read(&mut buf[filled..]).map_err(io_error)?;
            if n == 0 {
                done = true;
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        if let Some(h) = hasher.as_deref_mut() {
            h.update(chunk);
        }
        destination
            .write(chunk)
            .map_err(|e| Error::Storage(format!("writing the content: {e}")))?;
        written += filled as u64;
    }
    Ok(written)
}

/// The server's etag, bare (no quotes, no `W/`) like the records' own.
fn etag_of<B>(response: &Response<B>) -> Option<String> {
    response
        .header("ETag")
        .or_else(|| response.header("OC-ETag"))
        .map(|e| {
            e.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        })
        .filter(|e| !e.is_empty())
}

/// `bytes START-END/TOTAL` as (start, end inclusive, total when known).
fn content_range<B>(response: &Response<B>) -> Option<(u64, u64, Option<u64>)> {
    let spec = response.header("Content-Range")?.trim();
    let (unit, rest) = spec.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some((start, end, total.trim().parse().ok()))
}

/// `Content-Length`, when the server sent one that parses.
fn content_length<B>(response: &Response<B>) -> Option<u64> {
    response
        .header("Content-Length")
        .and_then(|l| l.trim().parse().ok())
}

/// The size of the whole file the answer is part of, when it says.
fn file_size<B>(response: &Response<B>) -> Option<u64> {
    match response.status {
        206 => content_range(response).and_then(|(_, _, total)| total),
        _ => content_length(response),
    }
}

/// [`file_size`] for a message: `?` when the answer does not say.
fn size_text<B>(response: &Response<B>) -> String {
    file_size(response).map_or("?".into(), |s| s.to_string())
}

/// Whether the answer is of another version than the record's. The etag
/// alone cannot say: Nextcloud keeps a file's etag when it is overwritten
/// within the second of its last write, so a size that differs does too.
fn other_version<B>(response: &Response<B>, record: &Record) -> bool {
    let etag = etag_of(response);
    let etag_differs = !record.etag.is_empty() && etag.is_some_and(|e| e != record.etag);
    etag_differs || file_size(response).is_some_and(|size| size != record.size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HttpError;
    use crate::testing::MemoryHost;
    use std::io::Cursor;

    /// A destination that keeps what it holds, like the host's file.
    #[derive(Default)]
    struct Held {
        bytes: Vec<u8>,
        writes: Vec<usize>,
        restarts: usize,
    }

    impl Destination for Held {
        fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
            self.writes.push(chunk.len());
            self.bytes.extend_from_slice(chunk);
            Ok(())
        }
        fn restart(&mut self) -> Result<(), String> {
            self.restarts += 1;
            self.bytes.clear();
            Ok(())
        }
    }

    fn root() -> DavRoot {
        DavRoot::new("https://cloud.example.com", "alice").unwrap()
    }

    /// A server that answers every request with `status`, one header and `body`.
    fn answering(status: u16, header: (&str, &str), body: Vec<u8>) -> MemoryHost {
        let header = (header.0.to_string(), header.1.to_string());
        MemoryHost::new(move |_| {
            Ok(Response {
                status,
                headers: vec![header.clone()],
                body: Cursor::new(body.clone()),
            })
        })
    }

    /// `/a.bin` (etag e1) continued after the `held` bytes a destination
    /// already has; the answer, and what the destination holds after it.
    fn resume(host: &MemoryHost, held: usize) -> (Result<StreamInfo, Error>, Held) {
        let mut destination = Held {
            bytes: content(held),
            ..Held::default()
        };
        let options = resume_from(held as u64);
        let answer = stream(
            host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &options,
            &mut destination,
        );
        (answer, destination)
    }

    /// The whole file into a fresh destination.
    fn whole(host: &MemoryHost, record: &Record) -> Result<StreamInfo, Error> {
        stream(
            host,
            &root(),
            record,
            &StreamOptions::default(),
            &mut Held::default(),
        )
    }

    fn file(path: &str, etag: &str, checksums: &[&str]) -> Record {
        Record {
            external_id: "42".into(),
            parent_external_id: Some("1".into()),
            path: path.into(),
            name: crate::href::name_of(path).into(),
            is_folder: false,
            etag: etag.into(),
            size: 0,
            mime_type: "application/octet-stream".into(),
            modified: 0,
            created: None,
            permission_letters: "RGDNVW".into(),
            permissions: vec![],
            owner_id: Some("alice".into()),
            checksums: checksums.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn sha1(bytes: &[u8]) -> String {
        let mut h = Hasher::new(checksum::Algorithm::Sha1);
        h.update(bytes);
        h.finish().to_string()
    }

    /// A server holding `body` at etag `etag`, answering like Nextcloud
    /// (single ranges, no If-Range unless `honour_if_range`).
    fn server(
        body: Vec<u8>,
        etag: &'static str,
        oc_checksum: Option<String>,
        honour_if_range: bool,
    ) -> impl FnMut(&Request) -> Result<Response<Cursor<Vec<u8>>>, HttpError> {
        move |r: &Request| {
            let header = |n: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
            };
            let mut headers = vec![
                ("ETag".to_string(), format!("\"{etag}\"")),
                ("Content-Type".to_string(), "application/pdf".to_string()),
            ];
            if let Some(c) = &oc_checksum {
                headers.push(("OC-Checksum".into(), c.clone()));
            }
            let if_range_ok =
                header("If-Range").is_none_or(|v| !honour_if_range || v == format!("\"{etag}\""));
            let range = header("Range")
                .and_then(|v| {
                    v.strip_prefix("bytes=")?
                        .strip_suffix('-')?
                        .parse::<usize>()
                        .ok()
                })
                .filter(|_| if_range_ok);
            match range {
                Some(start) if start >= body.len() => Ok(Response {
                    status: 416,
                    headers: vec![],
                    body: Cursor::new(vec![]),
                }),
                Some(start) => {
                    headers.push((
                        "Content-Range".into(),
                        format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
                    ));
                    headers.push(("Content-Length".into(), (body.len() - start).to_string()));
                    Ok(Response {
                        status: 206,
                        headers,
                        body: Cursor::new(body[start..].to_vec()),
                    })
                }
                None => {
                    headers.push(("Content-Length".into(), body.len().to_string()));
                    Ok(Response {
                        status: 200,
                        headers,
                        body: Cursor::new(body.clone()),
                    })
                }
            }
        }
    }

    #[test]
    fn streams_in_bounded_chunks_to_the_exact_url() {
        let body = content(3 * CHUNK + 17);
        let host = MemoryHost::new(server(body.clone(), "e1", None, false));
        let record = file("/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf", "e1", &[]);
        let mut held = Held::default();
        let info = stream(
            &host,
            &root(),
            &record,
            &StreamOptions::default(),
            &mut held,
        )
        .unwrap();
        assert_eq!(held.bytes, body);
        assert_eq!(held.writes, [CHUNK, CHUNK, CHUNK, 17]);
        assert_eq!(info.written, body.len() as u64);
        assert_eq!(info.etag.as_deref(), Some("e1"));
        assert!(!info.resumed);
        assert_eq!((info.verified, info.checksum), (None, None));
        let requests = host.requests.borrow();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].url,
            "https://cloud.example.com/remote.php/dav/files/alice/Reports%202024/Q1%20r%C3%A9sum%C3%A9%20%231%20%26%20100%25%20%28final%29%3F.pdf"
        );
        assert!(requests[0].headers.is_empty(), "{:?}", requests[0].headers);
    }

    #[test]
    fn folders_are_refused_without_a_request() {
        let host = MemoryHost::new(|_| panic!("no request for a folder"));
        let mut record = file("/Documents", "e1", &[]);
        record.is_folder = true;
        let err = whole(&host, &record).unwrap_err();
        assert!(
            matches!(&err, Error::Content(m) if m.contains("/Documents is a folder")),
            "{err:?}"
        );
    }

    #[test]
    fn verifies_the_header_checksum_while_streaming() {
        let body = content(100_000);
        let sum = sha1(&body);
        let host = MemoryHost::new(server(body.clone(), "e1", Some(sum.clone()), false));
        let mut held = Held::default();
        let info = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions::default(),
            &mut held,
        )
        .unwrap();
        assert_eq!(info.verified.as_deref(), Some(sum.as_str()));
        assert_eq!(info.checksum.as_deref(), Some(sum.as_str()));
    }

    #[test]
    fn a_checksum_mismatch_fails_after_the_last_chunk() {
        let body = content(100_000);
        let wrong = sha1(b"something else");
        let host = MemoryHost::new(server(body, "e1", Some(wrong.clone()), false));
        let err = whole(&host, &file("/a.bin", "e1", &[])).unwrap_err();
        match err {
            Error::Content(m) => {
                assert!(m.contains("checksum mismatch") && m.contains(&wrong), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_records_checksum_counts_only_for_its_own_version() {
        let body = content(5000);
        let md5 = {
            let mut h = Hasher::new(checksum::Algorithm::Md5);
            h.update(&body);
            h.finish().to_string()
        };
        // Same etag: the record's MD5 (lower-case name, several entries) is checked.
        let host = MemoryHost::new(server(body.clone(), "e1", None, false));
        let record = Record {
            size: 5000,
            ..file(
                "/a.bin",
                "e1",
                &[&format!("sha256:00 {}", md5.to_lowercase())],
            )
        };
        let info = whole(&host, &record).unwrap();
        assert_eq!(info.verified, Some(md5.clone()));
        // A wrong one fails.
        let host = MemoryHost::new(server(body.clone(), "e1", None, false));
        let record = Record {
            size: 5000,
            ..file("/a.bin", "e1", &["ADLER32:00000001"])
        };
        assert!(matches!(
            whole(&host, &record),
            Err(Error::Content(m)) if m.contains("checksum mismatch")
        ));
        // The file changed since: the record's checksum describes the old
        // content and is not held against the new one.
        let host = MemoryHost::new(server(body.clone(), "e2", None, false));
        let record = file("/a.bin", "e1", &["ADLER32:00000001"]);
        let info = whole(&host, &record).unwrap();
        assert_eq!((info.verified, info.checksum), (None, None));
        assert_eq!(info.etag.as_deref(), Some("e2"));
    }

    /// Nextcloud keeps a file's etag when it is overwritten within the
    /// second of its last write: its size is what says it changed.
    #[test]
    fn a_size_other_than_the_records_is_another_version_under_the_same_etag() {
        let body = content(200_000);
        // Held bytes of a 150,000-byte version with the same etag.
        let stale = Record {
            size: 150_000,
            ..file("/a.bin", "e1", &["ADLER32:00000001"])
        };
        let host = MemoryHost::new(server(body.clone(), "e1", None, true));
        let mut held = Held {
            bytes: body[..70_000].to_vec(),
            ..Held::default()
        };
        let options = StreamOptions {
            offset: 70_000,
            if_match: None,
        };
        let info = stream(&host, &root(), &stale, &options, &mut held).unwrap();
        assert_eq!(held.restarts, 1, "the resumed bytes are of another version");
        assert_eq!(held.bytes, body);
        assert!(!info.resumed);
        assert_eq!(
            info.checksum, None,
            "the record's checksum is of the old version"
        );

        let host = MemoryHost::new(server(body, "e1", None, true));
        let err = stream(
            &host,
            &root(),
            &stale,
            &StreamOptions {
                offset: 0,
                if_match: Some("e1".into()),
            },
            &mut Held::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Content(m) if m.contains("changed") && m.contains("150000")),
            "{err:?}"
        );
    }

    #[test]
    fn if_match_refuses_a_changed_file_before_writing() {
        let host = MemoryHost::new(server(content(10), "e2", None, false));
        let mut held = Held::default();
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions {
                offset: 0,
                if_match: Some("e1".into()),
            },
            &mut held,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Content(m) if m.contains("changed") && m.contains("e2")),
            "{err:?}"
        );
        assert!(held.writes.is_empty());
    }

    #[test]
    fn resumes_with_a_single_range_and_reports_the_checksum_for_the_host() {
        let body = content(200_000);
        let sum = sha1(&body);
        let host = MemoryHost::new(server(body.clone(), "e1", Some(sum.clone()), true));
        let mut held = Held {
            bytes: body[..70_000].to_vec(),
            ..Held::default()
        };
        let record = Record {
            size: 200_000,
            ..file("/a.bin", "e1", &[])
        };
        let info = stream(
            &host,
            &root(),
            &record,
            &StreamOptions {
                offset: 70_000,
                if_match: None,
            },
            &mut held,
        )
        .unwrap();
        assert_eq!(held.bytes, body);
        assert_eq!(held.restarts, 0);
        assert!(info.resumed);
        assert_eq!(info.written, 130_000);
        assert_eq!(info.verified, None, "the guest saw only the tail");
        assert_eq!(info.checksum, Some(sum));
        let requests = host.requests.borrow();
        assert_eq!(requests.len(), 1);
        assert!(
            requests[0]
                .headers
                .contains(&("Range".into(), "bytes=70000-".into()))
        );
        assert!(
            requests[0]
                .headers
                .contains(&("If-Range".into(), "\"e1\"".into()))
        );
    }

    #[test]
    fn a_200_to_a_range_starts_over_with_the_same_body() {
        let body = content(50_000);
        let sum = sha1(&body);
        // The server holds e2; If-Range "e1" fails, so it sends everything.
        let host = MemoryHost::new(server(body.clone(), "e2", Some(sum.clone()), true));
        let mut held = Held {
            bytes: b"old version bytes".to_vec(),
            ..Held::default()
        };
        let info = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions {
                offset: 17,
                if_match: None,
            },
            &mut held,
        )
        .unwrap();
        assert_eq!(held.restarts, 1);
        assert_eq!(held.bytes, body);
        assert!(!info.resumed);
        assert_eq!(info.verified, Some(sum), "a full transfer is verified");
        assert_eq!(host.requests.borrow().len(), 1, "the 200 body is used");
    }

    #[test]
    fn a_206_of_another_version_is_fetched_again_in_full() {
        let body = content(50_000);
        // No If-Range support: the server answers the range of its new version.
        let host = MemoryHost::new(server(body.clone(), "e2", None, false));
        let mut held = Held {
            bytes: vec![0; 1000],
            ..Held::default()
        };
        let info = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions {
                offset: 1000,
                if_match: None,
            },
            &mut held,
        )
        .unwrap();
        assert_eq!((held.restarts, &held.bytes), (1, &body));
        assert!(!info.resumed);
        let requests = host.requests.borrow();
        assert_eq!(requests.len(), 2);
        assert!(requests[1].headers.is_empty());
    }

    #[test]
    fn a_416_starts_over() {
        let body = content(1000);
        let host = MemoryHost::new(server(body.clone(), "e1", None, true));
        let (info, held) = resume(&host, 1000);
        let info = info.unwrap();
        assert_eq!((held.restarts, &held.bytes), (1, &body));
        assert!(!info.resumed);
    }

    #[test]
    fn a_wrong_content_range_is_refused() {
        let host = answering(206, ("Content-Range", "bytes 0-9/10"), vec![0; 10]);
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions {
                offset: 5,
                if_match: None,
            },
            &mut Held::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    }

    #[test]
    fn statuses_say_what_happened() {
        let answer = |status: u16| {
            move |_: &Request| -> Result<Response<Cursor<Vec<u8>>>, HttpError> {
                Ok(Response {
                    status,
                    headers: vec![],
                    body: Cursor::new(vec![]),
                })
            }
        };
        let run = |host: MemoryHost| whole(&host, &file("/gone.txt", "e1", &[])).unwrap_err();
        assert!(
            matches!(run(MemoryHost::new(answer(404))), Error::NotFound(m) if m.contains("/gone.txt") && m.contains("no longer exists"))
        );
        assert!(matches!(run(MemoryHost::new(answer(503))), Error::Http(m) if m.contains("503")));
        let unauthorized = MemoryHost::new(|_| {
            Err(HttpError::Unauthorized(
                "Nextcloud rejected the app password".into(),
            ))
        });
        assert!(matches!(run(unauthorized), Error::Unauthorized(m) if m.contains("app password")));
    }

    #[test]
    fn a_short_body_is_an_error() {
        let host = answering(200, ("Content-Length", "100"), vec![1; 60]);
        let err = whole(&host, &file("/a.bin", "e1", &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Http(m) if m.contains("60 of 100")),
            "{err:?}"
        );
    }

    /// A destination whose every call fails, to see where each failure is reported.
    struct Broken;

    impl Destination for Broken {
        fn write(&mut self, _: &[u8]) -> Result<(), String> {
            Err("disk full".into())
        }
        fn restart(&mut self) -> Result<(), String> {
            Err("read-only".into())
        }
    }

    fn resume_from(offset: u64) -> StreamOptions {
        StreamOptions {
            offset,
            if_match: None,
        }
    }

    #[test]
    fn each_way_of_starting_over_says_why_in_the_log() {
        // (the server's etag, whether it honours If-Range, the record's
        // size, the bytes held, what the log says)
        let cases: [(&str, bool, u64, u64, &[&str]); 4] = [
            (
                "e2",
                true,
                0,
                17,
                &["the server sent all of /a.bin instead of the rest; starting over"],
            ),
            (
                "e1",
                true,
                0,
                50,
                &["the server cannot continue /a.bin after byte 50 (HTTP 416); starting over"],
            ),
            (
                "e2",
                false,
                40,
                10,
                &[
                    "/a.bin changed since the held bytes were fetched (etag e2, 50 bytes now; e1, 40 bytes then); starting over",
                ],
            ),
            // A 206 of the record's version: nothing to say.
            ("e1", false, 50, 10, &[]),
        ];
        for (etag, honour_if_range, size, held, expected) in cases {
            let host = MemoryHost::new(server(content(50), etag, None, honour_if_range));
            let record = Record {
                size,
                ..file("/a.bin", "e1", &[])
            };
            stream(
                &host,
                &root(),
                &record,
                &resume_from(held),
                &mut Held::default(),
            )
            .unwrap();
            let logs = host.logs.borrow();
            assert!(logs.iter().all(|(level, _)| *level == Level::Info));
            let said: Vec<&str> = logs.iter().map(|(_, m)| m.as_str()).collect();
            assert_eq!(said, expected, "etag {etag}, held {held}");
        }
    }

    #[test]
    fn an_error_status_to_a_range_is_reported_without_starting_over() {
        for (status, expect) in [(404, "no longer exists"), (503, "HTTP 503")] {
            let host = MemoryHost::new(move |_| crate::testing::response(status, vec![]));
            let (err, held) = resume(&host, 10);
            let err = err.unwrap_err();
            assert!(err.to_string().contains(expect), "{err:?}");
            assert_eq!((held.restarts, held.bytes.len()), (0, 10));
            assert_eq!(host.requests.borrow().len(), 1);
            assert!(host.logs.borrow().is_empty());
        }
    }

    #[test]
    fn a_206_to_a_request_for_everything_is_refused() {
        let host = answering(206, ("Content-Range", "bytes 0-9/10"), vec![0; 10]);
        let err = whole(&host, &file("/a.bin", "e1", &[])).unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("although all of it was asked for")),
            "{err:?}"
        );
    }

    /// The refetch after a 206 of another version is held to the same rules
    /// as a first request for everything.
    #[test]
    fn a_partial_answer_to_the_refetch_is_refused() {
        let host = MemoryHost::new(|_| {
            Ok(Response {
                status: 206,
                headers: vec![
                    ("ETag".into(), "\"e2\"".into()),
                    ("Content-Range".into(), "bytes 5-9/10".into()),
                ],
                body: Cursor::new(vec![0; 5]),
            })
        });
        let (err, held) = resume(&host, 5);
        let err = err.unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err:?}");
        assert_eq!(host.requests.borrow().len(), 2);
        assert_eq!(
            (held.restarts, held.bytes.len()),
            (0, 5),
            "nothing is dropped"
        );
    }

    #[test]
    fn a_refused_if_match_leaves_the_held_bytes_alone() {
        // The server ignores the range for its new version; the 200 is refused
        // before the destination is told to start over.
        let host = MemoryHost::new(server(content(50), "e2", None, true));
        let mut held = Held {
            bytes: content(17),
            ..Held::default()
        };
        let options = StreamOptions {
            offset: 17,
            if_match: Some("e1".into()),
        };
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &options,
            &mut held,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Content(m) if m.contains("etag e2, 50 bytes; expected e1, 0 bytes")),
            "{err:?}"
        );
        assert_eq!((held.restarts, held.bytes.len()), (0, 17));
    }

    #[test]
    fn if_match_refuses_an_answer_without_an_etag() {
        let host = MemoryHost::new(|_| crate::testing::response(200, vec![1; 10]));
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions {
                offset: 0,
                if_match: Some("e1".into()),
            },
            &mut Held::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Content(m) if m.contains("sent no etag for /a.bin") && m.contains("expected e1")),
            "{err:?}"
        );
    }

    #[test]
    fn a_resumed_transfer_reports_the_records_checksum_unverified() {
        let body = content(1000);
        let sum = sha1(&body);
        let host = MemoryHost::new(server(body.clone(), "e1", None, true));
        let record = Record {
            size: 1000,
            ..file("/a.bin", "e1", &[sum.as_str()])
        };
        let mut held = Held {
            bytes: body[..400].to_vec(),
            ..Held::default()
        };
        let info = stream(&host, &root(), &record, &resume_from(400), &mut held).unwrap();
        assert_eq!(held.bytes, body);
        assert!(info.resumed);
        assert_eq!((info.written, info.verified), (600, None));
        assert_eq!(info.checksum, Some(sum));
    }

    #[test]
    fn a_short_resumed_body_is_an_error() {
        let host = answering(206, ("Content-Range", "bytes 5-99/100"), vec![1; 10]);
        let record = Record {
            size: 100,
            ..file("/a.bin", "e1", &[])
        };
        let err = stream(
            &host,
            &root(),
            &record,
            &resume_from(5),
            &mut Held::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Http(m) if m.contains("ended after 10 of 95 bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn the_destinations_failures_are_storage_errors() {
        // Starting over fails before any byte is written.
        let host = MemoryHost::new(server(content(50), "e2", None, true));
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &resume_from(17),
            &mut Broken,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Storage(m) if m == "starting the content over: read-only"),
            "{err:?}"
        );
        let host = MemoryHost::new(server(content(50), "e1", None, false));
        let err = stream(
            &host,
            &root(),
            &file("/a.bin", "e1", &[]),
            &StreamOptions::default(),
            &mut Broken,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Storage(m) if m == "writing the content: disk full"),
            "{err:?}"
        );
    }
}
