//! A streaming reader of WebDAV multistatus bodies.
//!
//! Entries come out one at a time as bytes arrive; nothing holds the whole
//! body. The reader is strict where leniency could lose data: a truncated or
//! malformed body is an error, never a short listing, and no DTD or entity is
//! ever expanded.

use std::io::BufRead;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use thiserror::Error;

use crate::text::keep;

/// The namespaces the reader cares about, whatever prefixes the server picks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    Dav,
    Oc,
    Nc,
    Ocs,
    Other,
}

fn ns_of(resolved: ResolveResult) -> Ns {
    match resolved {
        ResolveResult::Bound(Namespace(b"DAV:")) => Ns::Dav,
        ResolveResult::Bound(Namespace(b"http://owncloud.org/ns")) => Ns::Oc,
        ResolveResult::Bound(Namespace(b"http://nextcloud.org/ns")) => Ns::Nc,
        ResolveResult::Bound(Namespace(b"http://open-collaboration-services.org/ns")) => Ns::Ocs,
        _ => Ns::Other,
    }
}

use Ns::{Dav as DAV, Nc as NC, Oc as OC, Ocs as OCS};

/// Deep enough for every property Nextcloud sends; an absurd nesting is hostile.
const MAX_DEPTH: usize = 64;
/// Longer than any href or property value Nextcloud writes.
const MAX_TEXT: usize = 64 * 1024;

/// The properties a listing asks for: what records need, and nothing that
/// costs the server extra queries per file.
pub const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns" xmlns:ocs="http://open-collaboration-services.org/ns">
  <d:prop>
    <d:getetag/>
    <d:getlastmodified/>
    <d:getcontentlength/>
    <d:getcontenttype/>
    <d:resourcetype/>
    <oc:fileid/>
    <oc:permissions/>
    <oc:size/>
    <nc:creation_time/>
    <nc:upload_time/>
    <oc:owner-id/>
    <ocs:share-permissions/>
    <nc:is-mount-root/>
    <oc:checksums/>
  </d:prop>
</d:propfind>
"#;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("malformed multistatus XML: {0}")]
    Xml(String),
    #[error("multistatus body ended early (truncated response?)")]
    Truncated,
    #[error("multistatus XML declares a DOCTYPE; refused (entities are never expanded)")]
    Doctype,
    #[error("multistatus XML uses the entity &{0}; which is not predefined; refused")]
    Entity(String),
    #[error("multistatus XML nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("multistatus XML has a text value longer than {MAX_TEXT} bytes")]
    TextTooLong,
    #[error("not a multistatus body (root element {0})")]
    NotMultistatus(String),
    #[error("reading the body failed: {0}")]
    Body(String),
}

/// One `<d:response>`, with the values of its 200 propstats, unvalidated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DavEntry {
    pub href: String,
    /// A response-level `<d:status>`, when the server sent one instead of propstats.
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_length: Option<String>,
    pub content_type: Option<String>,
    pub is_collection: bool,
    pub fileid: Option<String>,
    pub permissions: Option<String>,
    pub size: Option<String>,
    pub creation_time: Option<String>,
    pub upload_time: Option<String>,
    pub owner_id: Option<String>,
    /// The share's permission bits for what reaches the user through a
    /// share (`ocs:share-permissions`); the letters of a share's mount point
    /// always allow delete and rename, which unshare and move the mount.
    pub share_permissions: Option<String>,
    /// `true` for the root of a mount (a received share, an external
    /// storage), whose letters depend on how it was asked for.
    pub is_mount_root: Option<String>,
    pub checksums: Vec<String>,
    /// Statuses of propstats that were neither 200 nor 404: the server could
    /// not say (e.g. 503 for an unavailable external storage).
    pub failed_propstats: Vec<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    Etag,
    LastModified,
    ContentLength,
    ContentType,
    ResourceType,
    FileId,
    Permissions,
    Size,
    CreationTime,
    UploadTime,
    OwnerId,
    SharePermissions,
    IsMountRoot,
    Checksums,
    Other,
}

fn prop_of(ns: Ns, local: &[u8]) -> Prop {
    match (ns, local) {
        (DAV, b"getetag") => Prop::Etag,
        (DAV, b"getlastmodified") => Prop::LastModified,
        (DAV, b"getcontentlength") => Prop::ContentLength,
        (DAV, b"getcontenttype") => Prop::ContentType,
        (DAV, b"resourcetype") => Prop::ResourceType,
        (OC, b"fileid") => Prop::FileId,
        (OC, b"permissions") => Prop::Permissions,
        (OC, b"size") => Prop::Size,
        (NC, b"creation_time") => Prop::CreationTime,
        (NC, b"upload_time") => Prop::UploadTime,
        (OC, b"owner-id") => Prop::OwnerId,
        (OCS, b"share-permissions") => Prop::SharePermissions,
        (NC, b"is-mount-root") => Prop::IsMountRoot,
        (OC, b"checksums") => Prop::Checksums,
        _ => Prop::Other,
    }
}

/// Values of one propstat, applied to the entry only if its status is 200.
#[derive(Default)]
struct Propstat {
    collection: bool,
    checksums: Vec<String>,
    status: Option<u16>,
}

/// What an open element is, as far as the reader cares: decided when it
/// starts, so its end needs no namespace lookup (the reader checks that
/// each end tag names the element it closes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Multistatus,
    Response,
    /// `href` or `status` of a response: its text is being captured.
    ResponseText,
    Propstat,
    PropstatStatus,
    Prop,
    Checksum,
    Other,
}

/// What the text being collected belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Href,
    ResponseStatus,
    PropstatStatus,
    Prop(Prop),
    Checksum,
}

pub struct MultistatusReader<R: BufRead> {
    reader: NsReader<R>,
    buf: Vec<u8>,
    seen_root: bool,
    finished: bool,
    entry: Option<DavEntry>,
    propstat: Option<Propstat>,
    /// The property element (depth 5) we are inside.
    prop: Option<Prop>,
    /// What each open element is, outermost first: its length is the depth.
    opened: Vec<Open>,
    capture: Capture,
    text: String,
    /// The values of the propstat being read; one vector for all of them.
    values: Vec<(Prop, String)>,
}

impl<R: BufRead> MultistatusReader<R> {
    pub fn new(input: R) -> Self {
        let mut reader = NsReader::from_reader(input);
        reader.config_mut().expand_empty_elements = true;
        MultistatusReader {
            reader,
            buf: Vec::with_capacity(4096),
            seen_root: false,
            finished: false,
            entry: None,
            propstat: None,
            prop: None,
            opened: Vec::with_capacity(8),
            capture: Capture::None,
            text: String::new(),
            values: Vec::with_capacity(16),
        }
    }

    fn next_entry(&mut self) -> Result<Option<DavEntry>, ParseError> {
        // The buffer is lent out so events can borrow it while `self` changes.
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.read_entry(&mut buf);
        self.buf = buf;
        result
    }

    fn read_entry(&mut self, buf: &mut Vec<u8>) -> Result<Option<DavEntry>, ParseError> {
        loop {
            buf.clear();
            match self.reader.read_event_into(buf).map_err(xml_error)? {
                Event::Start(start) => {
                    let depth = self.opened.len() + 1;
                    if depth > MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    let (ns, local) = self.reader.resolve_element(start.name());
                    let open = self.on_start(depth, ns_of(ns), local.as_ref())?;
                    self.opened.push(open);
                }
                Event::End(_) => {
                    let open = self.opened.pop().unwrap_or(Open::Other);
                    if let Some(entry) = self.on_end(open)? {
                        return Ok(Some(entry));
                    }
                    if self.opened.is_empty() {
                        self.finished = true;
                        return Ok(None);
                    }
                }
                // Text outside a captured value (indentation) is not even decoded.
                Event::Text(_) if self.capture == Capture::None => {}
                Event::Text(t) => {
                    let text = t.decode().map_err(|_| not_utf8())?;
                    self.push_text(&text)?;
                }
                Event::CData(c) => {
                    let text = c.decode().map_err(|_| not_utf8())?;
                    self.push_text(&text)?;
                }
                Event::GeneralRef(r) => {
                    let c = if r.is_char_ref() {
                        r.resolve_char_ref()
                            .map_err(xml_error)?
                            .ok_or_else(|| ParseError::Xml("empty character reference".into()))?
                    } else {
                        let name = r.decode().map_err(|_| not_utf8())?;
                        match name.as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => return Err(ParseError::Entity(other.to_string())),
                        }
                    };
                    let mut tmp = [0u8; 4];
                    self.push_text(c.encode_utf8(&mut tmp))?;
                }
                Event::DocType(_) => return Err(ParseError::Doctype),
                Event::Eof => {
                    return if self.seen_root && self.opened.is_empty() {
                        self.finished = true;
                        Ok(None)
                    } else {
                        Err(ParseError::Truncated)
                    };
                }
                Event::Empty(_) => unreachable!("expand_empty_elements is on"),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
        }
    }

    /// What the element starting at `depth` (the root is 1) is, acting on it.
    fn on_start(&mut self, depth: usize, ns: Ns, local: &[u8]) -> Result<Open, ParseError> {
        Ok(match depth {
            1 => {
                if (ns, local) != (DAV, &b"multistatus"[..]) {
                    return Err(ParseError::NotMultistatus(
                        String::from_utf8_lossy(local).into_owned(),
                    ));
                }
                self.seen_root = true;
                Open::Multistatus
            }
            2 if (ns, local) == (DAV, &b"response"[..]) => {
                self.entry = Some(DavEntry::default());
                Open::Response
            }
            3 if self.entry.is_some() => match (ns, local) {
                (DAV, b"href") => {
                    self.start_capture(Capture::Href);
                    Open::ResponseText
                }
                (DAV, b"status") => {
                    self.start_capture(Capture::ResponseStatus);
                    Open::ResponseText
                }
                (DAV, b"propstat") => {
                    self.propstat = Some(Propstat::default());
                    self.values.clear();
                    Open::Propstat
                }
                _ => Open::Other,
            },
            4 if self.propstat.is_some() && (ns, local) == (DAV, &b"status"[..]) => {
                self.start_capture(Capture::PropstatStatus);
                Open::PropstatStatus
            }
            5 if self.propstat.is_some() => {
                let prop = prop_of(ns, local);
                self.prop = Some(prop);
                if !matches!(prop, Prop::ResourceType | Prop::Checksums | Prop::Other) {
                    self.start_capture(Capture::Prop(prop));
                }
                Open::Prop
            }
            6 => match (self.prop, ns, local) {
                (Some(Prop::ResourceType), DAV, b"collection") => {
                    if let Some(p) = self.propstat.as_mut() {
                        p.collection = true;
                    }
                    Open::Other
                }
                (Some(Prop::Checksums), OC, b"checksum") => {
                    self.start_capture(Capture::Checksum);
                    Open::Checksum
                }
                _ => Open::Other,
            },
            _ => Open::Other,
        })
    }

    fn on_end(&mut self, open: Open) -> Result<Option<DavEntry>, ParseError> {
        match open {
            Open::Response => return Ok(self.entry.take()),
            Open::ResponseText | Open::PropstatStatus | Open::Checksum => self.finish_capture()?,
            Open::Propstat => {
                if let (Some(p), Some(entry)) = (self.propstat.take(), self.entry.as_mut()) {
                    apply_propstat(entry, p, self.values.drain(..));
                }
            }
            Open::Prop => {
                self.finish_capture()?;
                self.prop = None;
            }
            Open::Multistatus | Open::Other => {}
        }
        Ok(None)
    }

    fn start_capture(&mut self, capture: Capture) {
        self.capture = capture;
        self.text.clear();
    }

    fn push_text(&mut self, text: &str) -> Result<(), ParseError> {
        if self.capture == Capture::None {
            return Ok(());
        }
        if self.text.len() + text.len() > MAX_TEXT {
            return Err(ParseError::TextTooLong);
        }
        self.text.push_str(text);
        Ok(())
    }

    fn finish_capture(&mut self) -> Result<(), ParseError> {
        let capture = std::mem::replace(&mut self.capture, Capture::None);
        match capture {
            Capture::None => {}
            // Numbers are read where the text is; the buffer stays for the next value.
            Capture::ResponseStatus => {
                let status = parse_status(&self.text)?;
                if let Some(e) = self.entry.as_mut() {
                    e.status = Some(status);
                }
            }
            Capture::PropstatStatus => {
                let status = parse_status(&self.text)?;
                if let Some(p) = self.propstat.as_mut() {
                    p.status = Some(status);
                }
            }
            Capture::Href => {
                if let Some(e) = self.entry.as_mut() {
                    e.href = keep(std::mem::take(&mut self.text), str::trim);
                }
            }
            Capture::Prop(prop) => {
                if self.propstat.is_some() {
                    self.values.push((prop, std::mem::take(&mut self.text)));
                }
            }
            Capture::Checksum => {
                let value = keep(std::mem::take(&mut self.text), str::trim);
                if let Some(p) = self.propstat.as_mut()
                    && !value.is_empty()
                {
                    p.checksums.push(value);
                }
            }
        }
        self.text.clear();
        Ok(())
    }
}

impl<R: BufRead> Iterator for MultistatusReader<R> {
    type Item = Result<DavEntry, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

fn apply_propstat(entry: &mut DavEntry, p: Propstat, values: impl Iterator<Item = (Prop, String)>) {
    match p.status {
        Some(200) => {}
        Some(404) => return,
        other => {
            entry.failed_propstats.push(other.unwrap_or(0));
            return;
        }
    }
    entry.is_collection |= p.collection;
    entry.checksums.extend(p.checksums);
    for (prop, value) in values {
        let slot = match prop {
            Prop::Etag => &mut entry.etag,
            Prop::LastModified => &mut entry.last_modified,
            Prop::ContentLength => &mut entry.content_length,
            Prop::ContentType => &mut entry.content_type,
            Prop::FileId => &mut entry.fileid,
            Prop::Permissions => &mut entry.permissions,
            Prop::Size => &mut entry.size,
            Prop::CreationTime => &mut entry.creation_time,
            Prop::UploadTime => &mut entry.upload_time,
            Prop::OwnerId => &mut entry.owner_id,
            Prop::SharePermissions => &mut entry.share_permissions,
            Prop::IsMountRoot => &mut entry.is_mount_root,
            Prop::ResourceType | Prop::Checksums | Prop::Other => continue,
        };
        *slot = Some(value);
    }
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status(line: &str) -> Result<u16, ParseError> {
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ParseError::Xml(format!("unreadable status line {line:?}")))
}

/// quick-xml's own message counts bytes from wherever the bytes it was
/// decoding began, which depends on how the body arrived: one message for
/// the same body however it was chunked.
fn not_utf8() -> ParseError {
    ParseError::Xml("text that is not valid UTF-8".into())
}

fn xml_error(e: quick_xml::Error) -> ParseError {
    match e {
        quick_xml::Error::Io(io) => ParseError::Body(io.to_string()),
        quick_xml::Error::Encoding(_) => not_utf8(),
        quick_xml::Error::Syntax(quick_xml::errors::SyntaxError::InvalidBangMarkup) => {
            ParseError::Xml(e.to_string())
        }
        // Every other syntax error is markup left open when the input ended.
        quick_xml::Error::Syntax(_) => ParseError::Truncated,
        other => ParseError::Xml(other.to_string()),
    }
}

/// True when a 403 body says the server refuses `Depth: infinity` (RFC 4918 §9.1).
pub fn is_finite_depth_error(body: &[u8]) -> bool {
    body.windows(b"propfind-finite-depth".len())
        .any(|w| w == b"propfind-finite-depth")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FIXTURES, fixture};
    use std::io::{BufReader, Read};

    fn parse(body: &[u8]) -> Result<Vec<DavEntry>, ParseError> {
        MultistatusReader::new(body).collect()
    }

    /// Hands out one byte per read, as the slowest network would.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// Found by fuzzing: invalid UTF-8 in an attribute was reported at a
    /// byte index that depended on how the body was chunked.
    #[test]
    fn bad_utf8_reads_the_same_however_the_body_arrives() {
        let body = b"\xef\xbb\xbfml version=\"1.\xff.?><!DOC4us xmlns:d=\"DAV:\"<<d:response><d:href>&x;&amp;&#x41;";
        let whole = parse(body);
        let trickled: Result<Vec<DavEntry>, ParseError> =
            MultistatusReader::new(BufReader::with_capacity(2, Trickle(body))).collect();
        assert_eq!(whole, trickled);
        assert!(whole.is_err());
    }

    #[test]
    fn reads_every_multistatus_fixture() {
        let mut seen = 0;
        for file in std::fs::read_dir(FIXTURES).unwrap() {
            let name = file.unwrap().file_name().into_string().unwrap();
            let is_multistatus = name.ends_with(".xml")
                && (name.starts_with("propfind-")
                    || name.starts_with("search-")
                    || name.starts_with("trashbin-list"))
                && !name.contains("404")
                && !name.contains("request")
                && name != "search-wrong-endpoint.xml";
            if !is_multistatus {
                continue;
            }
            let body = fixture(&name);
            let entries = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let responses = String::from_utf8_lossy(&body)
                .matches("<d:response>")
                .count();
            assert_eq!(entries.len(), responses, "{name}");
            assert!(entries.iter().all(|e| !e.href.is_empty()), "{name}");
            seen += 1;
        }
        assert!(seen >= 15, "only {seen} fixtures read");
    }

    #[test]
    fn reads_properties_of_files_and_folders() {
        let entries = parse(&fixture("propfind-depth-infinity.xml")).unwrap();
        assert_eq!(entries.len(), 53);
        let root = &entries[0];
        assert_eq!(root.href, "/remote.php/dav/files/alice/");
        assert!(root.is_collection);
        assert_eq!(root.fileid.as_deref(), Some("158"));
        assert_eq!(root.etag.as_deref(), Some("\"6b0b03ebc2a70\""));
        assert_eq!(root.size.as_deref(), Some("558"));
        assert_eq!(root.permissions.as_deref(), Some("RGDNVCK"));
        // Folder properties arrive in a 404 propstat and must stay unknown.
        assert_eq!(root.content_length, None);
        assert_eq!(root.content_type, None);
        assert!(root.failed_propstats.is_empty());
        let file = &entries[1];
        assert_eq!(file.href, "/remote.php/dav/files/alice/100%25%20pure.txt");
        assert!(!file.is_collection);
        assert_eq!(file.fileid.as_deref(), Some("180"));
        assert_eq!(file.content_length.as_deref(), Some("21"));
        assert_eq!(file.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            file.last_modified.as_deref(),
            Some("Sat, 28 Nov 2026 16:40:06 GMT")
        );
        assert_eq!(file.creation_time.as_deref(), Some("0"));
        assert_eq!(file.owner_id.as_deref(), Some("alice"));
        assert!(file.checksums.is_empty());
    }

    #[test]
    fn reads_checksums() {
        let entries = parse(&fixture("propfind-file-with-checksum.xml")).unwrap();
        assert_eq!(
            entries[0].checksums,
            ["SHA1:b899232493c720d6f062c532adfdfbf96b6dc958"]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_entries() {
        let body = fixture("propfind-depth-infinity.xml");
        let whole = parse(&body).unwrap();
        let reader = BufReader::with_capacity(1, Trickle(&body));
        let trickled: Vec<DavEntry> = MultistatusReader::new(reader)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(whole, trickled);
    }

    #[test]
    fn a_cut_body_is_always_an_error_never_a_short_listing() {
        let body = fixture("propfind-depth1-special-chars.xml");
        let end = body.iter().rposition(|b| *b == b'>').unwrap();
        for cut in 0..end {
            let result = parse(&body[..cut]);
            assert!(
                result.is_err(),
                "cut at {cut} of {} parsed as a listing",
                body.len()
            );
        }
        assert_eq!(parse(&body).unwrap().len(), 2);
    }

    #[test]
    fn refuses_dtds_and_unknown_entities() {
        let doctype = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "boom">]><d:multistatus xmlns:d="DAV:"></d:multistatus>"#;
        assert_eq!(parse(doctype), Err(ParseError::Doctype));
        let entity = br#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>&x;</d:href></d:response></d:multistatus>"#;
        assert_eq!(parse(entity), Err(ParseError::Entity("x".into())));
    }

    #[test]
    fn refuses_absurd_nesting_and_huge_text() {
        let mut deep = String::from(r#"<d:multistatus xmlns:d="DAV:">"#);
        deep.push_str(&"<d:x>".repeat(100));
        assert_eq!(parse(deep.as_bytes()), Err(ParseError::TooDeep));
        let long = format!(
            r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>{}</d:href></d:response></d:multistatus>"#,
            "a".repeat(MAX_TEXT + 1)
        );
        assert_eq!(parse(long.as_bytes()), Err(ParseError::TextTooLong));
    }

    #[test]
    fn refuses_non_utf8_and_other_roots() {
        let bad = b"<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>\xff\xfe</d:href></d:response></d:multistatus>";
        assert!(matches!(parse(bad), Err(ParseError::Xml(_))));
        assert!(matches!(
            parse(b"<html><body>hi</body></html>"),
            Err(ParseError::NotMultistatus(_))
        ));
        assert_eq!(parse(b""), Err(ParseError::Truncated));
    }

    #[test]
    fn prefixes_do_not_matter_namespaces_do() {
        let body = br#"<x:multistatus xmlns:x="DAV:" xmlns:o="http://owncloud.org/ns"><x:response><x:href>/a</x:href>
            <x:propstat><x:prop><o:fileid>7</o:fileid><x:getetag>"e"</x:getetag><x:fileid>9</x:fileid></x:prop>
            <x:status>HTTP/1.1 200 OK</x:status></x:propstat></x:response></x:multistatus>"#;
        let entries = parse(body).unwrap();
        assert_eq!(
            entries[0].fileid.as_deref(),
            Some("7"),
            "DAV:fileid is not oc:fileid"
        );
    }

    #[test]
    fn failed_propstats_are_reported() {
        let body = br#"<d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:response><d:href>/m/</d:href>
            <d:propstat><d:prop><oc:size/></d:prop><d:status>HTTP/1.1 503 Service Unavailable</d:status></d:propstat>
            </d:response></d:multistatus>"#;
        assert_eq!(parse(body).unwrap()[0].failed_propstats, [503]);
    }

    #[test]
    fn finite_depth_refusal_is_recognised() {
        assert!(is_finite_depth_error(
            br#"<d:error xmlns:d="DAV:"><d:propfind-finite-depth/></d:error>"#
        ));
        assert!(!is_finite_depth_error(b"<d:error/>"));
    }
}
