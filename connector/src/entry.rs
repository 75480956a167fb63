//! A `<d:response>` turned into a record, with every value checked.

use thiserror::Error;

use crate::href::{DavRoot, name_of};
use crate::mime;
use crate::model::{PermissionLevel, Record};
use crate::permissions;
use crate::propfind::DavEntry;
use crate::text::keep;

/// Why one entry of a listing could not become a record. The listing goes on;
/// the entry is logged and protected from deletion.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("skipping {href:?}: {reason}")]
pub struct EntryError {
    pub href: String,
    /// The decoded path, when the href itself was readable.
    pub path: Option<String>,
    pub reason: String,
}

/// Who is syncing, as `cloud/user` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub display_name: String,
    pub email: Option<String>,
}

/// `nc:upload_time`: when the file arrived in Nextcloud; none when unknown.
pub fn upload_time(entry: &DavEntry) -> Option<i64> {
    entry
        .upload_time
        .as_deref()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|t| *t > 0)
}

/// The syncing user's level on an entry: by its share's bits when it
/// reaches them through a share (the letters of a mount point allow delete
/// and rename whatever the share grants), else by its letters.
pub fn own_level(entry: &DavEntry) -> PermissionLevel {
    let letters = entry.permissions.as_deref().unwrap_or_default();
    let share_bits = entry
        .share_permissions
        .as_deref()
        .and_then(|b| b.trim().parse::<u32>().ok());
    permissions::level_of(letters, share_bits)
}

/// The record for an entry; `parent_external_id` and `permissions` are left
/// for the caller, which knows the folders placed so far and the shares.
pub fn to_record(mut entry: DavEntry, root: &DavRoot) -> Result<Record, EntryError> {
    let path = root.path_of(&entry.href).map_err(|e| EntryError {
        href: entry.href.clone(),
        path: None,
        reason: e.to_string(),
    })?;
    let fail = |reason: String| EntryError {
        href: entry.href.clone(),
        path: Some(path.clone()),
        reason,
    };
    if let Some(status) = entry.status.filter(|s| *s != 200) {
        return Err(fail(format!("the server answered {status} for it")));
    }
    if let Some(status) = entry.failed_propstats.first() {
        return Err(fail(format!(
            "the server could not read its properties (status {status}); unavailable storage?"
        )));
    }
    // Canonical digits: the path cache and id sets know an id by its number.
    let external_id = match entry.fileid.take().map(|id| keep(id, str::trim)) {
        Some(id) => match id.parse::<u64>() {
            // Digits only; most have no leading zero and keep their allocation.
            Ok(n) if !id.starts_with('+') => {
                if id.len() > 1 && id.starts_with('0') {
                    n.to_string()
                } else {
                    id
                }
            }
            _ => return Err(fail(format!("oc:fileid {id:?} is not a number"))),
        },
        None => return Err(fail("no oc:fileid".into())),
    };
    let etag = entry
        .etag
        .take()
        .map(|e| keep(e, |e| e.trim().trim_matches('"')))
        .filter(|e| !e.is_empty())
        .ok_or_else(|| fail("no getetag".into()))?;
    let size_text = entry.size.as_deref().or(entry.content_length.as_deref());
    let size = match size_text.map(str::trim) {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| fail(format!("size {s:?} is not a non-negative number")))?,
    };
    let modified = match entry.last_modified.as_deref() {
        Some(d) => httpdate::parse_http_date(d.trim())
            .map_err(|_| fail(format!("getlastmodified {d:?} is not an HTTP date")))?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        None => return Err(fail("no getlastmodified".into())),
    };
    let created = match entry.creation_time.as_deref().map(str::trim) {
        None | Some("") | Some("0") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| fail(format!("nc:creation_time {t:?} is not a timestamp")))?,
        ),
    };
    let name = name_of(&path).to_string();
    let mime_type = if entry.is_collection {
        mime::FOLDER.to_string()
    } else {
        entry
            .content_type
            .take()
            .map(|t| keep(t, str::trim))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| mime::by_name(&name).to_string())
    };
    let letters = entry.permissions.take().unwrap_or_default();
    let is_share_mount =
        entry.is_mount_root.as_deref().map(str::trim) == Some("true") && letters.contains('S');
    let letters = if is_share_mount {
        permissions::as_listed_mount_point(&letters)
    } else {
        letters
    };
    Ok(Record {
        external_id,
        parent_external_id: None,
        name,
        is_folder: entry.is_collection,
        etag,
        size,
        mime_type,
        modified,
        created,
        permissions: Vec::new(),
        permission_letters: letters,
        owner_id: entry.owner_id.take().filter(|o| !o.is_empty()),
        checksums: std::mem::take(&mut entry.checksums),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propfind::MultistatusReader;
    use crate::testing::fixture;

    /// Recorded from Nextcloud 32.0.1: alice shared a folder and a file
    /// with bob read-only. Their mount points say `SGDNV` (bob may unshare
    /// and rename a mount), their share bits say read.
    #[test]
    fn a_read_only_share_is_read_even_where_its_letters_allow_delete() {
        let body = fixture("propfind-bob-read-only-shares.xml");
        let levels: Vec<(String, String, PermissionLevel)> = MultistatusReader::new(&body[..])
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.href.clone(),
                    e.permissions.clone().unwrap(),
                    own_level(&e),
                )
            })
            .collect();
        let expected = [
            (
                "/remote.php/dav/files/bob/",
                "RGDNVCK",
                PermissionLevel::Owner,
            ),
            (
                "/remote.php/dav/files/bob/RO/",
                "SGDNV",
                PermissionLevel::Read,
            ),
            (
                "/remote.php/dav/files/bob/RO/in.txt",
                "SG",
                PermissionLevel::Read,
            ),
            (
                "/remote.php/dav/files/bob/read%20only.txt",
                "SGDNV",
                PermissionLevel::Read,
            ),
        ]
        .map(|(h, l, level)| (h.to_string(), l.to_string(), level));
        assert_eq!(levels, expected);
    }
}
