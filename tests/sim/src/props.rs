//! PROPFIND bodies in (which properties were asked for) and `<d:response>`
//! elements out, with the same prefixes, order and 200/404 split as Sabre.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::content::{has_preview, mime_for};
use crate::encode::xml_text;
use crate::proppatch::NodeProps;
use crate::tree::{Kind, Node};

pub const NS_DAV: &str = "DAV:";
pub const NS_SABRE: &str = "http://sabredav.org/ns";
pub const NS_OC: &str = "http://owncloud.org/ns";
pub const NS_NC: &str = "http://nextcloud.org/ns";
/// Not declared on the multistatus: Sabre declares it on the element (`x1:`).
pub const NS_OCS: &str = "http://open-collaboration-services.org/ns";

/// The namespace map of Nextcloud's Sabre server, in the order the root
/// element declares them.
const PREFIXES: [(&str, &str); 4] = [(NS_DAV, "d"), (NS_SABRE, "s"), (NS_OC, "oc"), (NS_NC, "nc")];

pub const MULTISTATUS_OPEN: &str = "<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">";
pub const MULTISTATUS_CLOSE: &str = "</d:multistatus>\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    GetEtag,
    GetLastModified,
    GetContentLength,
    GetContentType,
    ResourceType,
    DisplayName,
    QuotaUsedBytes,
    QuotaAvailableBytes,
    FileId,
    Id,
    Permissions,
    Size,
    CreationTime,
    UploadTime,
    OwnerId,
    OwnerDisplayName,
    ShareTypes,
    ShareAttributes,
    Checksums,
    Favorite,
    HasPreview,
    SharePermissions,
    IsMountRoot,
}

/// (property, namespace, local name, qualified name as written).
const KNOWN: &[(Known, &str, &str, &str)] = &[
    (Known::GetEtag, NS_DAV, "getetag", "d:getetag"),
    (
        Known::GetLastModified,
        NS_DAV,
        "getlastmodified",
        "d:getlastmodified",
    ),
    (
        Known::GetContentLength,
        NS_DAV,
        "getcontentlength",
        "d:getcontentlength",
    ),
    (
        Known::GetContentType,
        NS_DAV,
        "getcontenttype",
        "d:getcontenttype",
    ),
    (
        Known::ResourceType,
        NS_DAV,
        "resourcetype",
        "d:resourcetype",
    ),
    (Known::DisplayName, NS_DAV, "displayname", "d:displayname"),
    (
        Known::QuotaUsedBytes,
        NS_DAV,
        "quota-used-bytes",
        "d:quota-used-bytes",
    ),
    (
        Known::QuotaAvailableBytes,
        NS_DAV,
        "quota-available-bytes",
        "d:quota-available-bytes",
    ),
    (Known::FileId, NS_OC, "fileid", "oc:fileid"),
    (Known::Id, NS_OC, "id", "oc:id"),
    (Known::Permissions, NS_OC, "permissions", "oc:permissions"),
    (Known::Size, NS_OC, "size", "oc:size"),
    (
        Known::CreationTime,
        NS_NC,
        "creation_time",
        "nc:creation_time",
    ),
    (Known::UploadTime, NS_NC, "upload_time", "nc:upload_time"),
    (Known::OwnerId, NS_OC, "owner-id", "oc:owner-id"),
    (
        Known::OwnerDisplayName,
        NS_OC,
        "owner-display-name",
        "oc:owner-display-name",
    ),
    (Known::ShareTypes, NS_OC, "share-types", "oc:share-types"),
    (
        Known::ShareAttributes,
        NS_NC,
        "share-attributes",
        "nc:share-attributes",
    ),
    (Known::Checksums, NS_OC, "checksums", "oc:checksums"),
    (Known::Favorite, NS_OC, "favorite", "oc:favorite"),
    (Known::HasPreview, NS_NC, "has-preview", "nc:has-preview"),
    (
        Known::IsMountRoot,
        NS_NC,
        "is-mount-root",
        "nc:is-mount-root",
    ),
    (
        Known::SharePermissions,
        NS_OCS,
        "share-permissions",
        "share-permissions",
    ),
];

fn qname(k: Known) -> &'static str {
    KNOWN
        .iter()
        .find(|e| e.0 == k)
        .map(|e| e.3)
        .expect("every Known is in KNOWN")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prop {
    Known(Known),
    Other { ns: String, local: String },
}

impl Prop {
    pub fn from_name(ns: &str, local: &str) -> Prop {
        match KNOWN.iter().find(|e| e.1 == ns && e.2 == local) {
            Some(e) => Prop::Known(e.0),
            None => Prop::Other {
                ns: ns.to_string(),
                local: local.to_string(),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// An empty body or `<d:allprop/>`.
    All,
    Props(Vec<Prop>),
}

const ALLPROP_FOLDER: &[Known] = &[
    Known::GetLastModified,
    Known::ResourceType,
    Known::QuotaUsedBytes,
    Known::QuotaAvailableBytes,
    Known::GetEtag,
];
const ALLPROP_FILE: &[Known] = &[
    Known::GetLastModified,
    Known::GetContentLength,
    Known::ResourceType,
    Known::GetEtag,
    Known::GetContentType,
];

/// Reads a PROPFIND body; `Err` carries a message for a 400.
/// The namespace an element's prefix resolves to (`""` when unbound).
pub fn namespace(res: &ResolveResult<'_>) -> Result<String, String> {
    match res {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(format!(
            "unknown namespace prefix {}",
            String::from_utf8_lossy(p)
        )),
    }
}

pub fn parse_propfind(body: &[u8]) -> Result<Selection, String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Selection::All);
    }
    let mut reader = NsReader::from_reader(body);
    // Element path as (namespace, local name) from the root down.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut props = Vec::new();
    let mut all = false;
    let mut saw_root = false;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = namespace(&res)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    if saw_root || ns != NS_DAV || local != "propfind" {
                        return Err("The root element must be {DAV:}propfind".into());
                    }
                    saw_root = true;
                } else if stack.len() == 1
                    && ns == NS_DAV
                    && (local == "allprop" || local == "propname")
                {
                    all = true;
                } else if stack.len() == 2 && stack[1] == (NS_DAV.to_string(), "prop".to_string()) {
                    let p = Prop::from_name(&ns, &local);
                    if !props.contains(&p) {
                        props.push(p);
                    }
                }
                if matches!(event, Event::Start(_)) {
                    stack.push((ns, local));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof if stack.is_empty() => break,
            Event::Eof => return Err("unexpected end of document".into()),
            _ => {}
        }
    }
    if !saw_root {
        return Err("empty document".into());
    }
    Ok(if all {
        Selection::All
    } else {
        Selection::Props(props)
    })
}

/// How one node looks to the requesting user: its owner, its permission
/// letters, the types of shares the user made on it, and (for a home root
/// with share mounts below it) the mount-inclusive etag, size and mtime.
pub struct NodeView<'a> {
    pub owner_id: &'a str,
    pub owner_name: &'a str,
    pub permissions: &'a str,
    pub share_types: Vec<u8>,
    /// The mount point's name, for the root of a received share.
    pub name: Option<&'a str>,
    pub etag: Option<String>,
    pub size: Option<u64>,
    pub mtime: Option<i64>,
    /// `Node::getSharePermissions`: a received share's bits, else the
    /// node's own; never create or delete on a file.
    pub share_permissions: u32,
    /// Whether `nc:upload_time` is known here; else it is 0.
    pub upload_time_known: bool,
    /// The root of a received share's mount.
    pub mount_root: bool,
    /// What this user stored on the node by PROPPATCH, if anything.
    pub stored: Option<&'a NodeProps>,
}

pub const INSTANCE_ID: &str = "ocsim00001";

fn http_date(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// Whether the server would return the property for this node (else 404).
fn available(k: Known, node: &Node) -> bool {
    match (k, &node.kind) {
        (
            Known::GetContentLength | Known::GetContentType | Known::UploadTime,
            Kind::File { .. },
        ) => true,
        (
            Known::GetContentLength | Known::GetContentType | Known::UploadTime,
            Kind::Folder { .. },
        ) => false,
        (Known::Checksums, Kind::File { checksum, .. }) => checksum.is_some(),
        (Known::Checksums, Kind::Folder { .. }) => false,
        (Known::QuotaUsedBytes | Known::QuotaAvailableBytes, kind) => {
            matches!(kind, Kind::Folder { .. })
        }
        _ => true,
    }
}

fn write_known(out: &mut String, k: Known, node: &Node, nv: &NodeView, id: u64) {
    let q = qname(k);
    let open = |out: &mut String| {
        out.push('<');
        out.push_str(q);
        out.push('>');
    };
    let close = |out: &mut String| {
        out.push_str("</");
        out.push_str(q);
        out.push('>');
    };
    match k {
        Known::ResourceType => {
            if node.is_folder() {
                out.push_str("<d:resourcetype><d:collection/></d:resourcetype>");
            } else {
                out.push_str("<d:resourcetype/>");
            }
            return;
        }
        Known::ShareTypes => {
            if nv.share_types.is_empty() {
                out.push_str("<oc:share-types/>");
            } else {
                out.push_str("<oc:share-types>");
                for t in &nv.share_types {
                    let _ = write!(out, "<oc:share-type>{t}</oc:share-type>");
                }
                out.push_str("</oc:share-types>");
            }
            return;
        }
        _ => {}
    }
    open(out);
    match k {
        Known::GetEtag => {
            out.push_str("&quot;");
            match &nv.etag {
                Some(e) => out.push_str(e),
                None => out.push_str(&node.etag()),
            }
            out.push_str("&quot;");
        }
        Known::GetLastModified => out.push_str(&http_date(nv.mtime.unwrap_or(node.mtime))),
        Known::Size => {
            let _ = write!(out, "{}", nv.size.unwrap_or(node.size));
        }
        Known::GetContentLength | Known::QuotaUsedBytes => {
            let _ = write!(out, "{}", node.size);
        }
        Known::QuotaAvailableBytes => out.push_str("-3"),
        Known::GetContentType => out.push_str(mime_for(&node.name)),
        Known::DisplayName => {
            // The user's root folder is the "files" entry of the home storage.
            let name = if node.parent.is_none() {
                "files"
            } else {
                nv.name.unwrap_or(&node.name)
            };
            xml_text(out, name);
        }
        Known::FileId => {
            let _ = write!(out, "{id}");
        }
        Known::Id => {
            let _ = write!(out, "{id:08}{INSTANCE_ID}");
        }
        Known::Permissions => out.push_str(nv.permissions),
        Known::CreationTime => out.push('0'),
        Known::UploadTime => {
            if let Kind::File { upload_time, .. } = node.kind {
                let t = if nv.upload_time_known { upload_time } else { 0 };
                let _ = write!(out, "{t}");
            }
        }
        Known::OwnerId => xml_text(out, nv.owner_id),
        Known::OwnerDisplayName => xml_text(out, nv.owner_name),
        Known::ShareAttributes => out.push_str("[]"),
        Known::Checksums => {
            if let Kind::File {
                checksum: Some(c), ..
            } = &node.kind
            {
                out.push_str("<oc:checksum>");
                xml_text(out, c);
                out.push_str("</oc:checksum>");
            }
        }
        Known::Favorite => out.push(if nv.stored.is_some_and(|p| p.favorite) {
            '1'
        } else {
            '0'
        }),
        Known::IsMountRoot => out.push_str(if nv.mount_root { "true" } else { "false" }),
        Known::HasPreview => {
            let yes = !node.is_folder() && has_preview(mime_for(&node.name));
            out.push_str(if yes { "true" } else { "false" });
        }
        Known::ResourceType | Known::ShareTypes | Known::SharePermissions => {
            unreachable!("written by the caller")
        }
    }
    close(out);
}

/// An empty element for a 404 propstat; unknown namespaces are declared on
/// the element itself, as Sabre's writer does.
pub fn write_empty(out: &mut String, p: &Prop, adhoc: &mut Vec<String>) {
    let (ns, local) = match p {
        Prop::Known(k) => {
            let e = KNOWN
                .iter()
                .find(|e| e.0 == *k)
                .expect("every Known is in KNOWN");
            (e.1, e.2)
        }
        Prop::Other { ns, local } => (ns.as_str(), local.as_str()),
    };
    if let Some((_, prefix)) = PREFIXES.iter().find(|(n, _)| *n == ns) {
        let _ = write!(out, "<{prefix}:{local}/>");
    } else if ns.is_empty() {
        let _ = write!(out, "<{local} xmlns=\"\"/>");
    } else {
        let x = adhoc_prefix(adhoc, ns);
        let _ = write!(out, "<{x}:{local} xmlns:{x}=\"");
        xml_text(out, ns);
        out.push_str("\"/>");
    }
}

/// A dead property PROPPATCH stored, named as `write_empty` names it.
fn write_dead(out: &mut String, ns: &str, local: &str, value: &str, adhoc: &mut Vec<String>) {
    let mut open = String::new();
    write_empty(&mut open, &Prop::from_name(ns, local), adhoc);
    // `<x1:a xmlns:x1="…"/>` → `<x1:a xmlns:x1="…">value</x1:a>`.
    let open = open.strip_suffix("/>").unwrap_or(&open);
    let name = open[1..].split(' ').next().unwrap_or(local);
    out.push_str(open);
    out.push('>');
    xml_text(out, value);
    let _ = write!(out, "</{name}>");
}

/// The prefix Sabre's writer makes up for a namespace the root element does
/// not declare: `x1`, `x2`, … in the order they come up in a response.
fn adhoc_prefix(adhoc: &mut Vec<String>, ns: &str) -> String {
    let idx = match adhoc.iter().position(|n| n == ns) {
        Some(i) => i + 1,
        None => {
            adhoc.push(ns.to_string());
            adhoc.len()
        }
    };
    format!("x{idx}")
}

pub fn propstat(out: &mut String, inner: &str, status: &str) {
    if inner.is_empty() {
        return;
    }
    out.push_str("<d:propstat><d:prop>");
    out.push_str(inner);
    out.push_str("</d:prop><d:status>");
    out.push_str(status);
    out.push_str("</d:status></d:propstat>");
}

/// One `<d:response>` for a node. `minimal` drops the 404 propstat
/// (`Prefer: return=minimal` / `Brief: t`).
pub fn write_response(
    out: &mut String,
    href: &str,
    id: u64,
    node: &Node,
    sel: &Selection,
    nv: &NodeView,
    minimal: bool,
) {
    out.push_str("<d:response><d:href>");
    out.push_str(href);
    out.push_str("</d:href>");
    let mut found = String::with_capacity(900);
    let mut missing = String::new();
    let mut adhoc = Vec::new();
    match sel {
        Selection::All => {
            let list = if node.is_folder() {
                ALLPROP_FOLDER
            } else {
                ALLPROP_FILE
            };
            for &k in list {
                write_known(&mut found, k, node, nv, id);
            }
        }
        Selection::Props(props) => {
            for p in props {
                match p {
                    Prop::Known(Known::SharePermissions) => {
                        let x = adhoc_prefix(&mut adhoc, NS_OCS);
                        let _ = write!(
                            found,
                            "<{x}:share-permissions xmlns:{x}=\"{NS_OCS}\">{}</{x}:share-permissions>",
                            nv.share_permissions
                        );
                    }
                    Prop::Known(k) if available(*k, node) => {
                        write_known(&mut found, *k, node, nv, id)
                    }
                    Prop::Other { ns, local } => {
                        let key = (ns.clone(), local.clone());
                        match nv.stored.and_then(|s| s.dead.get(&key)) {
                            Some(value) => write_dead(&mut found, ns, local, value, &mut adhoc),
                            None => write_empty(&mut missing, p, &mut adhoc),
                        }
                    }
                    _ => write_empty(&mut missing, p, &mut adhoc),
                }
            }
        }
    }
    propstat(out, &found, "HTTP/1.1 200 OK");
    if !minimal {
        propstat(out, &missing, "HTTP/1.1 404 Not Found");
    }
    out.push_str("</d:response>");
}

/// A folder on an unavailable external storage, as a listing of its parent
/// shows it: `resourcetype` readable, every other property asked for in a
/// 503 propstat (the storage could not be asked).
pub fn write_unavailable(out: &mut String, href: &str, sel: &Selection) {
    out.push_str("<d:response><d:href>");
    out.push_str(href);
    out.push_str("</d:href>");
    let mut failed = String::new();
    let mut adhoc = Vec::new();
    match sel {
        Selection::Props(props) => {
            for p in props
                .iter()
                .filter(|p| **p != Prop::Known(Known::ResourceType))
            {
                write_empty(&mut failed, p, &mut adhoc);
            }
        }
        Selection::All => {
            for k in ALLPROP_FOLDER.iter().filter(|k| **k != Known::ResourceType) {
                write_empty(&mut failed, &Prop::Known(*k), &mut adhoc);
            }
        }
    }
    propstat(
        out,
        "<d:resourcetype><d:collection/></d:resourcetype>",
        "HTTP/1.1 200 OK",
    );
    propstat(out, &failed, "HTTP/1.1 503 Service Unavailable");
    out.push_str("</d:response>");
}

/// Another user's home as seen by this user: only `resourcetype` is readable.
pub fn write_foreign_home(out: &mut String, href: &str, sel: &Selection, minimal: bool) {
    out.push_str("<d:response><d:href>");
    out.push_str(href);
    out.push_str("</d:href>");
    let mut missing = String::new();
    let mut adhoc = Vec::new();
    if let Selection::Props(props) = sel {
        for p in props
            .iter()
            .filter(|p| **p != Prop::Known(Known::ResourceType))
        {
            write_empty(&mut missing, p, &mut adhoc);
        }
    }
    propstat(
        out,
        "<d:resourcetype><d:collection/></d:resourcetype>",
        "HTTP/1.1 200 OK",
    );
    if !minimal {
        propstat(out, &missing, "HTTP/1.1 404 Not Found");
    }
    out.push_str("</d:response>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_props_in_order() {
        let body = br#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:x"><d:prop><oc:fileid/><d:getetag></d:getetag><x:odd/></d:prop></d:propfind>"#;
        let sel = parse_propfind(body).unwrap();
        assert_eq!(
            sel,
            Selection::Props(vec![
                Prop::Known(Known::FileId),
                Prop::Known(Known::GetEtag),
                Prop::Other {
                    ns: "urn:x".into(),
                    local: "odd".into()
                },
            ])
        );
    }

    #[test]
    fn empty_body_and_allprop_mean_all() {
        assert_eq!(parse_propfind(b"  \n").unwrap(), Selection::All);
        let body = br#"<propfind xmlns="DAV:"><allprop/></propfind>"#;
        assert_eq!(parse_propfind(body).unwrap(), Selection::All);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_propfind(b"<d:propfind xmlns:d=\"DAV:\"><d:prop>").is_err());
        assert!(parse_propfind(b"<a:x xmlns:a=\"urn:a\"/>").is_err());
        assert!(parse_propfind(b"<d:propfind><d:prop/></d:propfind>").is_err());
        assert!(parse_propfind(b"<x></y>").is_err());
    }
}
