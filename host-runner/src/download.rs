//! `host-runner download`: one known record's content to a file or stdout.
//!
//! The record comes from the database (by external id or decoded path);
//! folders are refused before anything is loaded or sent. The connector
//! streams the content into `OUT.part` beside the output; only a complete,
//! verified file is synced and renamed to `OUT`, so a partial file never sits
//! under the final name.
//!
//! * `OUT.part.etag` holds the etag of the version `OUT.part` belongs to.
//!   `--resume` continues `OUT.part` (one Range request) only when that is
//!   still the record's etag (or unknown: a `.part` file with no note);
//!   otherwise it starts over. The connector checks the server's etag too
//!   and starts over when the server ignored the range or has another version.
//! * Checksums: the connector verifies a full transfer while streaming. A
//!   resumed one it only sees the tail of, so it hands back the server's
//!   checksum and the host hashes the finished `OUT.part` (with the same
//!   `connector::checksum` code) before the rename. A mismatch removes it.
//! * On failure `OUT.part` is removed, except with `--resume` when the
//!   failure says nothing against the bytes already written (a broken
//!   connection, a timeout, a server error): then it is kept to resume from.
//!
//! The record (its name, path and size) is whatever the connector committed,
//! so none of it is trusted: the file name is the last segment of a path the
//! host checks, never the record's `name`; the content may not outgrow the
//! record's size; names are escaped before they reach a terminal. The files
//! beside the output are created private and afresh and opened without
//! following a symbolic link another user may have planted in their place.

use crate::commands::{RunOptions, StreamReport, stream_into};
use crate::config::Config;
use crate::content::{Delivered, Destination};
use crate::error::{Error, Result};
use crate::model::{Record, is_account_path};
use crate::progress::ByteProgress;
use crate::render::printable;
use crate::store::Store;
use connector::checksum::{self, Checksum};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// The external id (Nextcloud's file id).
    Id(String),
    /// The decoded path, as `records` shows it.
    Path(String),
}

/// Where the content goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The record's file name in the current directory.
    Default,
    /// A file, or a directory to put the record's file name in.
    File(PathBuf),
    Stdout,
}

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    pub select: Select,
    pub output: Output,
    /// Continue `OUT.part`, and keep it when this transfer breaks too.
    pub resume: bool,
    /// Refuse when the server's etag is not the record's.
    pub if_match: bool,
    /// A byte bar on stderr when it is a terminal.
    pub progress: bool,
}

/// What `download` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadReport {
    pub external_id: String,
    /// The record's path in the account.
    pub path: String,
    /// The file written; none for stdout.
    pub output: Option<String>,
    /// The length of the content.
    pub bytes: u64,
    /// Bytes that came over the network in this run.
    pub transferred: u64,
    /// The etag the server sent with the content.
    pub etag: Option<String>,
    /// The etag the records hold.
    pub record_etag: String,
    /// The server's etag or the file's size differs from the records': the
    /// file changed since the last sync.
    pub changed: bool,
    /// The checksum the content matched, e.g. `SHA1:…`.
    pub verified: Option<String>,
    /// Whether the transfer continued a partial file.
    pub resumed: bool,
    pub requests: u64,
    pub duration_ms: u64,
}

/// Finds the record in the database.
pub fn find_record(config: &Config, select: &Select) -> Result<Record> {
    let store = Store::connect_existing(config)?;
    match select {
        Select::Id(id) => store
            .lookup(std::slice::from_ref(id))?
            .pop()
            .flatten()
            .ok_or_else(|| {
                Error::Config(format!(
                    "no known record has the id `{}`; `host-runner records` lists them (sync first if it changed)",
                    printable(id)
                ))
            }),
        Select::Path(path) => {
            let path = normalise_path(path);
            store.lookup_path(&path)?.ok_or_else(|| {
                Error::Config(format!(
                    "no known record has the path `{}`; `host-runner records` lists them (sync first if it changed)",
                    printable(&path)
                ))
            })
        }
    }
}

/// `a/b/` and `/a/b` both mean `/a/b`.
fn normalise_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

/// The name a record's content is saved under when no file is given: the
/// last segment of its path, once the path is inside the account
/// ([`is_account_path`], the rule the host holds every record a connector
/// hands it to) and only if it is a plain file name. `name` is the
/// connector's to set and is never used: `/home/user/.bashrc` would write
/// outside the chosen folder. The path is checked again because the
/// database may have been written by an older host that did not check it,
/// and a control character would end up in the file name and in every
/// message naming it.
fn file_name(record: &Record) -> Result<&str> {
    let refuse = |why: &str| {
        Error::Guest(format!(
            "record {} has the path `{}`, which {why}; it gives no safe file name. Name the output file with `-o FILE`",
            printable(&record.external_id),
            printable(&record.path)
        ))
    };
    if !is_account_path(&record.path) {
        return Err(refuse(
            "is not a path inside the account (it must start with `/` and have no empty, `.` or `..` segment or NUL)",
        ));
    }
    let Some(segments) = record.path.strip_prefix('/').filter(|s| !s.is_empty()) else {
        return Err(refuse("is the root of the account"));
    };
    let name = segments.rsplit_once('/').map_or(segments, |(_, last)| last);
    if name.contains('\\') {
        return Err(refuse("ends in a name with a backslash"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("ends in a name with a control character"));
    }
    Ok(name)
}

/// `dir/NAME`: a record's file name only ever lands in the folder the user
/// chose (or the current one, for `dir` empty).
fn in_folder(record: &Record, dir: &Path) -> Result<PathBuf> {
    Ok(dir.join(file_name(record)?))
}

/// `OUT.part`, `OUT.part.etag`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn storage(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let message = format!("{what} `{}`", path.display());
    move |e| Error::Storage(format!("{message}: {e}"))
}

/// Downloads the selected record.
pub fn download(
    config: &Config,
    run: &RunOptions,
    options: &DownloadOptions,
) -> Result<DownloadReport> {
    let started = Instant::now();
    let record = find_record(config, &options.select)?;
    if record.is_folder {
        return Err(Error::Config(format!(
            "`{}` is a folder; only files can be downloaded (`host-runner records` lists what is in it)",
            printable(&record.path)
        )));
    }
    let if_match = options.if_match.then(|| record.etag.clone());
    let out = match &options.output {
        Output::Stdout => {
            if options.resume {
                return Err(Error::Config(
                    "--resume continues a file; it cannot be used with `-o -`".into(),
                ));
            }
            let bar = options
                .progress
                .then(|| ByteProgress::for_stderr(&printable(&record.name), record.size))
                .flatten();
            let mut destination = Destination::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            ))
            .limit(record.size);
            if let Some(bar) = &bar {
                let bar = bar.bar();
                destination = destination.on_progress(move |n| bar.set_position(n));
            }
            let (report, delivered) =
                stream_into(config, run, record.clone(), destination, 0, if_match)?;
            drop(bar);
            check_within_size(&record, &delivered)?;
            return Ok(finish_report(&record, None, report, delivered, started));
        }
        Output::Default => in_folder(&record, Path::new(""))?,
        Output::File(p) if p.is_dir() => in_folder(&record, p)?,
        Output::File(p) => p.clone(),
    };
    let part = with_suffix(&out, ".part");
    let note = with_suffix(&out, ".part.etag");
    let (file, offset) = open_partial(&record, &part, &note, options.resume)?;
    create_private(&note)
        .and_then(|mut f| f.write_all(record.etag.as_bytes()))
        .map_err(storage("cannot write", &note))?;

    let bar = options
        .progress
        .then(|| ByteProgress::for_stderr(&printable(&record.name), record.size))
        .flatten();
    let mut destination = Destination::file(file)
        .map_err(storage("cannot use", &part))?
        .limit(record.size);
    if let Some(bar) = &bar {
        let bar = bar.bar();
        bar.set_position(offset);
        destination = destination.on_progress(move |n| bar.set_position(n));
    }
    let result = stream_into(config, run, record.clone(), destination, offset, if_match).and_then(
        |(report, delivered)| {
            check_within_size(&record, &delivered)?;
            check_consistent(&report, &delivered, offset)?;
            let verified = verify_resumed(&record, &report, &part)?;
            Ok((StreamReport { verified, ..report }, delivered))
        },
    );
    drop(bar);
    let (report, delivered) = match result {
        Ok(done) => done,
        Err(e) => return Err(give_up(e, &part, &note, options.resume)),
    };
    let finished = (|| {
        open_regular(&part, OpenOptions::new().read(true))
            .and_then(|f| f.sync_all())
            .map_err(storage("cannot sync", &part))?;
        std::fs::rename(&part, &out)
            .map_err(storage("cannot rename the finished download to", &out))?;
        sync_parent(&out);
        Ok::<(), Error>(())
    })();
    if let Err(e) = finished {
        return Err(give_up(e, &part, &note, false));
    }
    let _ = std::fs::remove_file(&note);
    Ok(finish_report(
        &record,
        Some(out.display().to_string()),
        report,
        delivered,
        started,
    ))
}

/// The partial file to write into and how many bytes of it to keep.
fn open_partial(record: &Record, part: &Path, note: &Path, resume: bool) -> Result<(File, u64)> {
    if resume
        && let Some(file) = open_existing(part, OpenOptions::new().write(true))
            .map_err(storage("cannot open", part))?
    {
        let noted = read_note(note);
        let same_version = noted.as_deref().is_none_or(|e| e.trim() == record.etag);
        let held = file.metadata().map_err(storage("cannot read", part))?.len();
        if same_version {
            if held > 0 {
                tracing::info!("resuming {} after {held} bytes", printable(&record.path));
            }
            return Ok((file, held));
        }
        tracing::info!(
            "`{}` holds an older version of {} (etag {}, now {}); starting over",
            part.display(),
            printable(&record.path),
            printable(noted.unwrap_or_default().trim()),
            printable(&record.etag)
        );
        file.set_len(0).map_err(storage("cannot empty", part))?;
        return Ok((file, 0));
    }
    if let Some(dir) = part.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(Error::Config(format!(
            "the directory `{}` for the output does not exist",
            dir.display()
        )));
    }
    let file = create_private(part).map_err(storage("cannot create", part))?;
    Ok((file, 0))
}

/// The etag `OUT.part.etag` notes, if it is a readable note: a few bytes of
/// a regular file (a symlink to `/dev/zero` would never end).
fn read_note(note: &Path) -> Option<String> {
    let file = open_existing(note, OpenOptions::new().read(true)).ok()??;
    let mut noted = String::new();
    file.take(1024).read_to_string(&mut noted).ok()?;
    Some(noted)
}

/// Creates `path` afresh, readable by this user only. Whatever was there (a
/// stale partial file, or a symlink planted to make this process write
/// elsewhere) is unlinked, never followed; `create_new` fails rather than
/// follow one put back in between.
fn create_private(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// [`open_regular`], or `None` when nothing is there.
fn open_existing(path: &Path, options: &mut OpenOptions) -> std::io::Result<Option<File>> {
    match open_regular(path, options) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `path` only if it is a regular file: a symlink is not followed and
/// anything else is refused; `O_NONBLOCK` keeps a FIFO planted in its place
/// from blocking the open (it means nothing to a regular file).
fn open_regular(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                std::io::Error::other("it is a symbolic link, which is not followed")
            }
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// The content may not outgrow the record: the destination refused what
/// went past its size, and a connector that carried on regardless fails
/// here. (The real connector gives up at the refusal: the file grew since
/// the last sync.)
fn check_within_size(record: &Record, delivered: &Delivered) -> Result<()> {
    if delivered.overflowed {
        return Err(Error::Guest(format!(
            "the connector went on writing past the {} bytes of {} after the destination refused; the download is discarded",
            record.size,
            printable(&record.path)
        )));
    }
    Ok(())
}

/// The connector's account of the transfer must agree with the destination's.
fn check_consistent(report: &StreamReport, delivered: &Delivered, offset: u64) -> Result<()> {
    let resumed_here = offset > 0 && !delivered.restarted;
    if report.resumed != resumed_here || report.written != delivered.written {
        return Err(Error::Guest(format!(
            "the connector reported {} bytes {}, but the destination received {} bytes {}",
            report.written,
            if report.resumed {
                "resumed"
            } else {
                "from the start"
            },
            delivered.written,
            if resumed_here {
                "after the held ones"
            } else {
                "from the start"
            }
        )));
    }
    Ok(())
}

/// After a resumed transfer, hashes the whole partial file against the
/// server's checksum; otherwise keeps what the connector verified.
fn verify_resumed(record: &Record, report: &StreamReport, part: &Path) -> Result<Option<String>> {
    if report.verified.is_some() {
        return Ok(report.verified.clone());
    }
    let Some(sum) = &report.checksum else {
        return Ok(None);
    };
    let Some(expected) = Checksum::parse(sum) else {
        tracing::warn!("the connector reported a checksum this host cannot read: {sum:?}");
        return Ok(None);
    };
    let file =
        open_regular(part, OpenOptions::new().read(true)).map_err(storage("cannot read", part))?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    match checksum::verify_reader(&expected, reader).map_err(storage("cannot read", part))? {
        Ok(()) => Ok(Some(expected.to_string())),
        Err(actual) => Err(Error::Server(format!(
            "content: checksum mismatch for {} after resuming: Nextcloud has {expected}, the whole file hashes to {actual}; the download is discarded",
            printable(&record.path)
        ))),
    }
}

/// Whether an error says the bytes written are wrong or useless (as opposed
/// to the transfer stopping early).
fn condemns_the_bytes(e: &Error) -> bool {
    match e {
        // The connector's `content` errors: checksum mismatch, changed
        // file, folder. See `runtime::session` for the prefix.
        Error::Server(m) => m.starts_with("content: ") || m.starts_with("not found: "),
        Error::Guest(_) => true,
        _ => false,
    }
}

/// Removes the partial download, or keeps it for `--resume` (and says so).
fn give_up(e: Error, part: &Path, note: &Path, resume: bool) -> Error {
    let held = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if resume && held > 0 && !condemns_the_bytes(&e) {
        tracing::warn!(
            "{held} bytes are kept in `{}`; run again with --resume to continue",
            part.display()
        );
        return e;
    }
    let _ = std::fs::remove_file(part);
    let _ = std::fs::remove_file(note);
    e
}

/// Makes the rename durable (best effort).
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn finish_report(
    record: &Record,
    output: Option<String>,
    report: StreamReport,
    delivered: Delivered,
    started: Instant,
) -> DownloadReport {
    // A size of its own says so too: Nextcloud keeps a file's etag when it
    // is overwritten within the second of its last write.
    let changed = report.etag.as_deref().is_some_and(|e| e != record.etag)
        || delivered.total() != record.size;
    if changed {
        tracing::warn!(
            "{} changed on the server since the last sync (etag {}, {} bytes; the records have {}, {} bytes); this is the current version; sync to update the records",
            printable(&record.path),
            printable(report.etag.as_deref().unwrap_or_default()),
            delivered.total(),
            printable(&record.etag),
            record.size
        );
    }
    DownloadReport {
        external_id: record.external_id.clone(),
        path: record.path.clone(),
        output,
        bytes: delivered.total(),
        transferred: delivered.written,
        etag: report.etag,
        record_etag: record.etag.clone(),
        changed,
        verified: report.verified,
        resumed: report.resumed,
        requests: report.requests,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// One line for people (a terminal, most likely: the path, output and
/// checksum are escaped).
pub fn render(report: &DownloadReport) -> String {
    let mut line = format!(
        "Downloaded {} ({})",
        printable(&report.path),
        crate::render::human_size(report.bytes)
    );
    if let Some(out) = &report.output {
        line.push_str(&format!(" to {}", printable(out)));
    }
    if report.resumed {
        line.push_str(&format!(
            ", resumed after {}",
            crate::render::human_size(report.bytes - report.transferred)
        ));
    }
    match &report.verified {
        Some(sum) => line.push_str(&format!(", checksum {} verified", printable(sum))),
        None => line.push_str(", no checksum on the server to verify"),
    }
    if report.changed {
        line.push_str("; it changed since the last sync");
    }
    line.push('\n');
    line
}

/// Writes `text` to stderr (for summaries when stdout carries the content).
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise_path("a/b c/"), "/a/b c");
        assert_eq!(normalise_path("/a"), "/a");
        assert_eq!(normalise_path("/"), "/");
    }

    fn record(path: &str, name: &str) -> Record {
        Record {
            external_id: "7".into(),
            parent_external_id: None,
            path: path.into(),
            name: name.into(),
            is_folder: false,
            etag: "e".into(),
            size: 1,
            mime_type: "text/plain".into(),
            modified: 0,
            created: None,
            permission_letters: String::new(),
            permissions: vec![],
            owner_id: None,
            checksums: vec![],
        }
    }

    #[test]
    fn the_file_name_is_the_checked_paths_last_segment_never_the_name() {
        for (path, want) in [
            ("/a.txt", "a.txt"),
            ("/Docs/Q1 résumé #1?.pdf", "Q1 résumé #1?.pdf"),
            ("/home/x/.bashrc", ".bashrc"),
            ("/a/...", "..."),
            ("/a/ü 🎵", "ü 🎵"),
        ] {
            let r = record(path, "/home/user/.bashrc");
            assert_eq!(file_name(&r).unwrap(), want, "{path}");
            let dir = Path::new("/out");
            assert_eq!(in_folder(&r, dir).unwrap().parent(), Some(dir), "{path}");
        }
    }

    #[test]
    fn paths_that_give_no_safe_file_name_are_refused() {
        for path in [
            "/",
            "",
            "a.txt",
            "/../x",
            "/a/..",
            "/a/.",
            "/a//b",
            "/a/",
            "/a\0b",
            "/..\\x",
            "/a\\b",
            "/\x1b[2J",
            "/tab\there",
            "/del\x7f",
            "/c1\u{9b}",
            "/x\n",
        ] {
            let err = file_name(&record(path, "fine.txt")).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit_code::GUEST, "{path:?}");
            let msg = err.to_string();
            assert!(msg.contains("-o FILE"), "{msg}");
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
        }
    }

    #[test]
    fn suffixes_keep_unicode_names() {
        assert_eq!(
            with_suffix(Path::new("/x/Q1 résumé #1?.pdf"), ".part"),
            PathBuf::from("/x/Q1 résumé #1?.pdf.part")
        );
    }

    #[test]
    fn which_failures_condemn_the_bytes() {
        assert!(condemns_the_bytes(&Error::Server(
            "content: checksum mismatch".into()
        )));
        assert!(condemns_the_bytes(&Error::Server("not found: x".into())));
        assert!(condemns_the_bytes(&Error::Guest("trap".into())));
        assert!(!condemns_the_bytes(&Error::Server(
            "connection: reset".into()
        )));
        assert!(!condemns_the_bytes(&Error::Unauthorized("401".into())));
    }

    #[test]
    fn consistency_is_checked() {
        let report = |written, resumed| StreamReport {
            written,
            etag: None,
            resumed,
            verified: None,
            checksum: None,
            requests: 1,
        };
        let delivered = |written, held, restarted| Delivered {
            written,
            held,
            restarted,
            overflowed: false,
        };
        assert!(check_consistent(&report(5, true), &delivered(5, 10, false), 10).is_ok());
        assert!(check_consistent(&report(15, false), &delivered(15, 0, true), 10).is_ok());
        assert!(check_consistent(&report(15, false), &delivered(15, 0, false), 0).is_ok());
        assert!(check_consistent(&report(5, true), &delivered(5, 0, true), 10).is_err());
        assert!(check_consistent(&report(4, false), &delivered(5, 0, false), 0).is_err());
    }
}
