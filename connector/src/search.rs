//! Finding items by file id with WebDAV SEARCH, for items that are no longer
//! where the activity stream last saw them. SEARCH only says where they are:
//! Nextcloud 32 answers it with `nc:upload_time` 0, and a mount point with
//! the bare share bits, so the items are read again where they are found.

use crate::body::read_body;
use crate::entry::to_record;
use crate::error::Error;
use crate::host::{Host, Level, Request};
use crate::propfind::MultistatusReader;
use crate::run::{Run, parse_error};

/// Ids per SEARCH; the server allows 100 operators in one query.
const IDS_PER_SEARCH: usize = 50;
/// Largest SEARCH answer read: 50 entries of a few KiB.
const SEARCH_BODY: usize = 4 * 1024 * 1024;

/// What a search by file ids found.
pub enum Found {
    /// File id and decoded path of each item found.
    Paths(Vec<(u64, String)>),
    /// The server cannot search (no DASL): ids cannot be resolved.
    Unsupported(u16),
}

/// The SEARCH for these file ids in the user's files.
pub fn body(user_id: &str, ids: &[u64]) -> String {
    let conditions: String = ids
        .iter()
        .map(|id| format!("<d:eq><d:prop><oc:fileid/></d:prop><d:literal>{id}</d:literal></d:eq>"))
        .collect();
    let condition = if ids.len() == 1 {
        conditions
    } else {
        format!("<d:or>{conditions}</d:or>")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns" xmlns:ocs="http://open-collaboration-services.org/ns">
  <d:basicsearch>
    <d:select><d:prop>
      <d:getetag/><d:getlastmodified/><d:getcontentlength/><d:getcontenttype/><d:resourcetype/>
      <oc:fileid/><oc:permissions/><oc:size/><nc:creation_time/><nc:upload_time/><oc:owner-id/><ocs:share-permissions/><nc:is-mount-root/><oc:checksums/>
    </d:prop></d:select>
    <d:from><d:scope><d:href>/files/{}</d:href><d:depth>infinity</d:depth></d:scope></d:from>
    <d:where>{condition}</d:where>
  </d:basicsearch>
</d:searchrequest>
"#,
        xml_escape(user_id)
    )
}

/// Looks every id up; ids not in the answer no longer exist for this user.
pub fn by_file_ids<H: Host>(
    run: &mut Run<'_, H>,
    base_url: &str,
    user_id: &str,
    ids: &[u64],
) -> Result<Found, Error> {
    let mut found = Vec::new();
    let url = format!("{}/remote.php/dav/", base_url.trim_end_matches('/'));
    for chunk in ids.chunks(IDS_PER_SEARCH) {
        let request = Request::new("SEARCH", url.clone())
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body(user_id, chunk).into_bytes());
        let response = run.host().send(request)?;
        match response.status {
            207 => {}
            400 | 405 | 415 | 501 => return Ok(Found::Unsupported(response.status)),
            status => return Err(Error::status("searching by file id", status)),
        }
        let body = read_body(response.body, SEARCH_BODY)?;
        for entry in MultistatusReader::new(&body[..]) {
            let entry = entry.map_err(parse_error)?;
            // Unreadable: the id cannot be declared gone.
            let record = to_record(entry, run.dav.root).map_err(|e| {
                Error::Protocol(format!("the server's search answer is unreadable: {e}"))
            })?;
            match record.external_id.parse::<u64>() {
                Ok(id) if chunk.contains(&id) => found.push((id, record.path)),
                _ => run.log(
                    Level::Warn,
                    &format!(
                        "search answered an id not asked for: {}",
                        record.external_id
                    ),
                ),
            }
        }
    }
    Ok(Found::Paths(found))
}

/// Escapes text for an XML element.
fn xml_escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}
