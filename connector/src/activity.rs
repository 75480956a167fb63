//! Reading the Activity app's `files` stream: pages, cursors and the ids of
//! everything that changed.
//!
//! The stream is a hint of *which* items changed, never of how: each item is
//! refreshed from WebDAV afterwards. So only ids and their newest paths are
//! taken, from `objects` (a grouped entry lists up to five items there, and
//! `object_id` names just one of them), never from the localized subject.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use thiserror::Error;

use crate::href::server_path;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActivityError {
    #[error("activity answer is not the expected JSON: {0}")]
    Shape(String),
    #[error("activity ids went backwards: {got} after {last}")]
    Backwards { last: u64, got: u64 },
}

/// One entry of the stream (possibly several grouped events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: u64,
    pub kind: Kind,
    /// Every item the entry covers: file id → path at the time (leading slash).
    pub objects: Vec<(u64, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Changed,
    Deleted,
    Restored,
    Other,
}

#[derive(Deserialize)]
struct RawActivity {
    activity_id: u64,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    object_id: Option<serde_json::Value>,
    #[serde(default)]
    object_name: Option<String>,
    /// `{}` or `[]` when empty (PHP's empty array), else id → path.
    #[serde(default)]
    objects: serde_json::Value,
}

/// The entries of one page, oldest first as asked (`sort=asc`).
pub fn parse_page(body: &[u8]) -> Result<Vec<Activity>, ActivityError> {
    let raw: Vec<RawActivity> =
        crate::ocs::data(body).map_err(|e| ActivityError::Shape(e.to_string()))?;
    raw.into_iter().map(to_activity).collect()
}

fn to_activity(raw: RawActivity) -> Result<Activity, ActivityError> {
    let kind = match raw.kind.as_str() {
        "file_created" => Kind::Created,
        "file_changed" => Kind::Changed,
        "file_deleted" => Kind::Deleted,
        "file_restored" => Kind::Restored,
        _ => Kind::Other,
    };
    let mut objects = Vec::new();
    match &raw.objects {
        serde_json::Value::Object(map) => {
            for (id, path) in map {
                let id = id.parse::<u64>().map_err(|_| {
                    ActivityError::Shape(format!("object id {id:?} is not a number"))
                })?;
                let path = path.as_str().ok_or_else(|| {
                    ActivityError::Shape(format!("path of object {id} is not a string"))
                })?;
                objects.push((id, checked(path)?));
            }
        }
        serde_json::Value::Array(a) if a.is_empty() => {}
        serde_json::Value::Null => {}
        other => return Err(ActivityError::Shape(format!("objects is {other}"))),
    }
    if objects.is_empty() {
        let id = match &raw.object_id {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        if let (Some(id), Some(name)) = (id.filter(|id| *id > 0), raw.object_name.as_deref()) {
            objects.push((id, checked(name)?));
        }
    }
    Ok(Activity {
        id: raw.activity_id,
        kind,
        objects,
    })
}

/// A path the stream names, as records carry it (see [`server_path`]).
fn checked(path: &str) -> Result<String, ActivityError> {
    server_path(path).ok_or_else(|| {
        ActivityError::Shape(format!(
            "object path {path:?} has an empty, `.` or `..` segment"
        ))
    })
}

/// Everything a run of pages says changed: each item once, with its newest
/// path, and whether its last word was a deletion.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    pub items: BTreeMap<u64, ChangedItem>,
    /// Every path the stream named, the places items passed through
    /// included: their folders changed too.
    pub paths: BTreeSet<String>,
    /// The highest activity id read.
    pub last_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedItem {
    pub path: String,
    pub deleted: bool,
}

impl Changed {
    pub fn add(&mut self, page: &[Activity]) -> Result<(), ActivityError> {
        for a in page {
            if a.id < self.last_id {
                return Err(ActivityError::Backwards {
                    last: self.last_id,
                    got: a.id,
                });
            }
            self.last_id = a.id;
            if a.kind == Kind::Other {
                continue;
            }
            for (id, path) in &a.objects {
                self.paths.insert(path.clone());
                self.items.insert(
                    *id,
                    ChangedItem {
                        path: path.clone(),
                        deleted: a.kind == Kind::Deleted,
                    },
                );
            }
        }
        Ok(())
    }
}

/// The `since` of the next page: `X-Activity-Last-Given`, else the `since`
/// in a `Link: <…>; rel="next"` header.
pub fn next_since(last_given: Option<&str>, link: Option<&str>) -> Option<u64> {
    if let Some(id) = last_given.and_then(|v| v.trim().parse().ok()) {
        return Some(id);
    }
    let link = link?;
    let target = link
        .split(',')
        .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))?;
    let url = target.split(['<', '>']).nth(1)?;
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
}

/// Whether a `Link` header announces another page.
pub fn has_next(link: Option<&str>) -> bool {
    link.is_some_and(|l| l.contains("rel=\"next\"") || l.contains("rel=next"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;

    fn page(name: &str) -> Vec<Activity> {
        parse_page(&fixture(&format!("{name}.json"))).unwrap()
    }

    #[test]
    fn grouped_entries_yield_every_object() {
        let p = page("activity-page1");
        assert_eq!(p.len(), 10);
        assert_eq!(p[0].id, 132);
        assert_eq!(p[0].kind, Kind::Created);
        let ids: Vec<u64> = p[0].objects.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [159, 160, 161, 162, 163]);
        let mut changed = Changed::default();
        changed.add(&p).unwrap();
        changed.add(&page("activity-page2")).unwrap();
        assert_eq!(changed.items.len(), 52);
        assert_eq!(changed.last_id, 179);
        assert_eq!(
            changed.items[&210].path,
            "/Spécial #1 & 100% done/x=1;y=2.txt"
        );
    }

    #[test]
    fn renames_and_moves_name_the_new_path_of_the_item() {
        let rename = page("activity-rename");
        assert_eq!(
            rename[0].objects,
            [(184, "/Documents/notes renamed.md".to_string())]
        );
        // A move without rename names the destination folder in `newfile`;
        // `objects` still holds the item itself.
        let moved = page("activity-move");
        assert_eq!(
            moved[0].objects,
            [(179, "/Documents/top-level.txt".to_string())]
        );
        let folder = page("activity-move-folder");
        assert_eq!(folder[0].objects, [(164, "/Documents/Drafts".to_string())]);
    }

    #[test]
    fn moves_and_renames_into_the_root_name_the_item_at_the_root() {
        // Nextcloud 32 writes these paths `//name`.
        let objects: Vec<(u64, String)> = page("activity-move-and-rename-at-root")
            .into_iter()
            .flat_map(|a| a.objects)
            .collect();
        let expected = [
            (3523, "/moved to root.txt"),
            (3524, "/renamed at root after.txt"),
            (3522, "/root-move-src renamed"),
        ]
        .map(|(id, p)| (id, p.to_string()));
        assert_eq!(objects, expected);
    }

    #[test]
    fn the_last_word_decides_deletion() {
        let mut changed = Changed::default();
        changed.add(&page("activity-delete")).unwrap();
        assert!(changed.items[&181].deleted);
        changed.add(&page("activity-delete-folder")).unwrap();
        assert_eq!(changed.items[&169].path, "/Projects/alpha");
        assert!(changed.items[&169].deleted);
        changed.add(&page("activity-restore")).unwrap();
        assert!(!changed.items[&181].deleted);
        changed.add(&page("activity-restore-folder")).unwrap();
        assert!(!changed.items[&169].deleted);
    }

    #[test]
    fn other_users_edits_count_too() {
        let mut changed = Changed::default();
        changed
            .add(&page("activity-changed-by-other-user"))
            .unwrap();
        assert_eq!(
            changed.items.keys().copied().collect::<Vec<_>>(),
            [208, 223]
        );
    }

    #[test]
    fn ids_going_backwards_are_refused() {
        let mut changed = Changed::default();
        changed.add(&page("activity-page2")).unwrap();
        assert_eq!(
            changed.add(&page("activity-page1")),
            Err(ActivityError::Backwards {
                last: 179,
                got: 132
            })
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for body in [
            &b"[]"[..],
            br#"{"ocs":{"data":{}}}"#,
            br#"{"ocs":{"data":[{"activity_id":"x"}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_created","objects":{"abc":"/x"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_created","objects":{"1":7}}]}}"#,
            // Paths that would resolve outside the user's files.
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","objects":{"1":"/../../bob/x"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","objects":{"1":"/a/./b"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","objects":{"1":"/a//b"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","objects":{"1":"///b"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","objects":{"1":"//../b"}}]}}"#,
            br#"{"ocs":{"data":[{"activity_id":1,"type":"file_changed","object_id":1,"object_name":"/..","objects":[]}]}}"#,
        ] {
            assert!(
                parse_page(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn next_page_from_headers() {
        assert_eq!(next_since(Some("177"), None), Some(177));
        let link = r#"<http://127.0.0.1:8080/ocs/v2.php/apps/activity/api/v2/activity/files?since=177&limit=50&sort=asc&format=json>; rel="next""#;
        assert_eq!(next_since(None, Some(link)), Some(177));
        assert!(has_next(Some(link)));
        assert!(!has_next(None));
        assert_eq!(next_since(None, None), None);
    }
}
