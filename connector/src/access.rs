//! Who may read each record: the syncing user (from the permission letters),
//! the owner of what is shared with them, and everyone the user shared an
//! item with (from the OCS Share API), inherited by everything below a
//! shared folder.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::Identity;
use crate::error::Error;
use crate::href::{parent_of, server_path};
use crate::model::{Permission, PermissionLevel, Principal, Record};
use crate::permissions;

/// One recipient of one share, as stored between runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub file_id: String,
    pub path: String,
    pub principal: PrincipalKey,
    pub level: Level,
}

/// A principal in a form that orders and serializes, for storage and diffs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PrincipalKey {
    User {
        id: String,
        email: Option<String>,
    },
    Group(String),
    Link {
        share_id: String,
        expires: Option<i64>,
    },
    Federated(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    Owner,
    Write,
    Read,
}

impl From<PermissionLevel> for Level {
    fn from(l: PermissionLevel) -> Self {
        match l {
            PermissionLevel::Owner => Level::Owner,
            PermissionLevel::Write => Level::Write,
            PermissionLevel::Read => Level::Read,
        }
    }
}

impl From<Level> for PermissionLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Owner => PermissionLevel::Owner,
            Level::Write => PermissionLevel::Write,
            Level::Read => PermissionLevel::Read,
        }
    }
}

impl From<PrincipalKey> for Principal {
    fn from(p: PrincipalKey) -> Self {
        match p {
            PrincipalKey::User { id, email } => Principal::User { id, email },
            PrincipalKey::Group(id) => Principal::Group { id },
            PrincipalKey::Link { share_id, expires } => {
                Principal::AnyoneWithLink { share_id, expires }
            }
            PrincipalKey::Federated(id) => Principal::Federated { id },
        }
    }
}

#[derive(Deserialize)]
struct RawShare {
    id: serde_json::Value,
    share_type: i64,
    #[serde(default)]
    share_with: Option<String>,
    #[serde(default)]
    share_with_displayname_unique: Option<String>,
    permissions: u32,
    #[serde(default)]
    expiration: Option<String>,
    path: String,
    #[serde(default)]
    file_source: Option<serde_json::Value>,
}

/// The grants of a share list, sorted; share types this connector does not
/// model (teams, Talk rooms, …) are returned apart, for a log line.
pub fn parse_shares(body: &[u8]) -> Result<(Vec<Grant>, Vec<String>), Error> {
    let shares: Vec<RawShare> =
        crate::ocs::data(body).map_err(|e| Error::Protocol(format!("share list answer: {e}")))?;
    let mut grants = Vec::new();
    let mut skipped = Vec::new();
    for s in shares {
        let id = json_text(&s.id);
        let file_id = s.file_source.as_ref().map(json_text).unwrap_or_default();
        let with = s.share_with.clone().unwrap_or_default();
        let principal = match s.share_type {
            0 => PrincipalKey::User {
                email: s.share_with_displayname_unique.filter(|e| e.contains('@')),
                id: with,
            },
            1 => PrincipalKey::Group(with),
            // Public links and shares by mail: whoever holds the link.
            3 | 4 => PrincipalKey::Link {
                share_id: id.clone(),
                expires: s.expiration.as_deref().and_then(parse_expiration),
            },
            6 => PrincipalKey::Federated(with),
            other => {
                skipped.push(format!("share {id} of {} has type {other}", s.path));
                continue;
            }
        };
        let path = server_path(&s.path).ok_or_else(|| {
            Error::Protocol(format!(
                "share {id} names path {:?}, which has an empty, `.` or `..` segment",
                s.path
            ))
        })?;
        grants.push(Grant {
            file_id,
            path,
            principal,
            level: permissions::level_of_bits(s.permissions).into(),
        });
    }
    grants.sort();
    grants.dedup();
    Ok((grants, skipped))
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `2026-12-31 00:00:00` (the server's own zone; read as UTC) → unix seconds.
fn parse_expiration(text: &str) -> Option<i64> {
    let (date, time) = text
        .trim()
        .split_once(' ')
        .unwrap_or((text.trim(), "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (
        t.next()??,
        t.next().flatten().unwrap_or(0),
        t.next().flatten().unwrap_or(0),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The grants in force, by shared path.
#[derive(Debug, Clone, Default)]
pub struct Access {
    by_path: BTreeMap<String, Vec<Grant>>,
}

impl Access {
    pub fn new(grants: &[Grant]) -> Self {
        let mut by_path: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        for g in grants {
            by_path.entry(g.path.clone()).or_default().push(g.clone());
        }
        Access { by_path }
    }

    /// Sets a record's permissions: the syncing user first (`own`, see
    /// [`crate::entry::own_level`]),
    /// then the owner of an item shared with them, then every recipient of a
    /// share on the item or a folder above it (the highest level wins).
    pub fn apply(&self, who: &Identity, record: &mut Record, own: PermissionLevel) {
        let mut entries: Vec<(PrincipalKey, Level)> = vec![(
            PrincipalKey::User {
                id: who.user_id.clone(),
                email: who.email.clone(),
            },
            own.into(),
        )];
        if let Some(owner) = record.owner_id.as_deref().filter(|o| *o != who.user_id) {
            entries.push((
                PrincipalKey::User {
                    id: owner.to_string(),
                    email: None,
                },
                Level::Owner,
            ));
        }
        let mut path = Some(record.path.as_str());
        while let Some(p) = path {
            for g in self.by_path.get(p).into_iter().flatten() {
                match entries.iter_mut().find(|(k, _)| *k == g.principal) {
                    Some((_, level)) => *level = (*level).min(g.level),
                    None => entries.push((g.principal.clone(), g.level)),
                }
            }
            path = parent_of(p);
        }
        record.permissions = entries
            .into_iter()
            .map(|(principal, level)| Permission {
                principal: principal.into(),
                level: level.into(),
            })
            .collect();
    }
}

/// The file ids whose grants differ between two share lists: everything at
/// and below them needs its permissions sent again.
pub fn changed_roots(before: &[Grant], after: &[Grant]) -> Vec<String> {
    let mut ids: Vec<String> = before
        .iter()
        .filter(|g| !after.contains(g))
        .chain(after.iter().filter(|g| !before.contains(g)))
        .map(|g| g.file_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            user_id: "alice".into(),
            display_name: "Alice".into(),
            email: Some("alice@example.test".into()),
        }
    }

    fn record(path: &str, letters: &str, owner: &str) -> Record {
        Record {
            external_id: "1".into(),
            parent_external_id: None,
            path: path.into(),
            name: path.rsplit('/').next().unwrap().into(),
            is_folder: false,
            etag: "e".into(),
            size: 0,
            mime_type: "text/plain".into(),
            modified: 0,
            created: None,
            permission_letters: letters.into(),
            permissions: vec![],
            owner_id: Some(owner.into()),
            checksums: vec![],
        }
    }

    #[test]
    fn reads_the_share_list_fixture() {
        let body = crate::testing::fixture("shares.json");
        let (grants, skipped) = parse_shares(&body).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(grants.len(), 2);
        let folder = grants
            .iter()
            .find(|g| g.path == "/Shared with Bob")
            .unwrap();
        assert_eq!(folder.file_id, "176");
        assert_eq!(
            folder.level,
            Level::Owner,
            "31 maps to owner by the seed's rule"
        );
        assert_eq!(
            folder.principal,
            PrincipalKey::User {
                id: "bob".into(),
                email: Some("bob@example.test".into())
            }
        );
        let file = grants.iter().find(|g| g.file_id == "189").unwrap();
        assert_eq!(file.level, Level::Read);
    }

    #[test]
    fn maps_every_share_type() {
        let body = br#"{"ocs":{"data":[
            {"id":"1","share_type":1,"share_with":"staff","permissions":15,"path":"/G","file_source":5},
            {"id":"2","share_type":3,"share_with":null,"permissions":1,"path":"/L","file_source":6,"expiration":"2026-12-31 00:00:00","token":"t"},
            {"id":"3","share_type":4,"share_with":"x@y.z","permissions":1,"path":"/M","file_source":7},
            {"id":"4","share_type":6,"share_with":"bob@other.example","permissions":3,"path":"/F","file_source":8},
            {"id":"5","share_type":7,"share_with":"team","permissions":1,"path":"/T","file_source":9}
        ]}}"#;
        let (grants, skipped) = parse_shares(body).unwrap();
        assert_eq!(skipped.len(), 1, "teams are not modelled: {skipped:?}");
        let by_path = |p: &str| grants.iter().find(|g| g.path == p).unwrap().clone();
        assert_eq!(by_path("/G").principal, PrincipalKey::Group("staff".into()));
        assert_eq!(by_path("/G").level, Level::Write);
        assert_eq!(
            by_path("/L").principal,
            PrincipalKey::Link {
                share_id: "2".into(),
                expires: Some(1_798_675_200)
            }
        );
        assert!(matches!(by_path("/M").principal, PrincipalKey::Link { .. }));
        assert_eq!(
            by_path("/F").principal,
            PrincipalKey::Federated("bob@other.example".into())
        );
        assert_eq!(by_path("/F").level, Level::Write);
    }

    #[test]
    fn a_share_path_with_dot_segments_is_refused() {
        let body = br#"{"ocs":{"meta":{},"data":[
            {"id":"1","share_type":0,"share_with":"bob","permissions":1,"path":"/A/../../bob","file_source":2}
        ]}}"#;
        let err = parse_shares(body).unwrap_err().to_string();
        assert!(err.contains("share 1"), "{err}");
    }

    #[test]
    fn grants_are_inherited_and_the_highest_wins() {
        let (grants, _) = parse_shares(
            br#"{"ocs":{"data":[
            {"id":"1","share_type":0,"share_with":"bob","permissions":1,"path":"/A","file_source":2},
            {"id":"2","share_type":0,"share_with":"bob","permissions":3,"path":"/A/B","file_source":3}
        ]}}"#,
        )
        .unwrap();
        let access = Access::new(&grants);
        let mut deep = record("/A/B/c.txt", "RGDNVW", "alice");
        access.apply(&alice(), &mut deep, PermissionLevel::Owner);
        assert_eq!(deep.permissions.len(), 2);
        assert_eq!(deep.permissions[0].level, PermissionLevel::Owner);
        assert_eq!(deep.permissions[1].level, PermissionLevel::Write);
        let mut elsewhere = record("/AB/c.txt", "RGDNVW", "alice");
        access.apply(&alice(), &mut elsewhere, PermissionLevel::Owner);
        assert_eq!(elsewhere.permissions.len(), 1, "/AB is not under /A");
    }

    #[test]
    fn shared_with_me_items_name_their_owner_and_are_never_owned() {
        let mut item = record("/Team/plan.txt", "SGDNV", "bob");
        Access::default().apply(&alice(), &mut item, PermissionLevel::Write);
        assert_eq!(item.permissions[0].level, PermissionLevel::Write);
        assert_eq!(
            item.permissions[1],
            Permission {
                principal: Principal::User {
                    id: "bob".into(),
                    email: None
                },
                level: PermissionLevel::Owner
            }
        );
    }

    #[test]
    fn changed_roots_cover_added_removed_and_changed_grants() {
        let g = |id: &str, level| Grant {
            file_id: id.into(),
            path: format!("/{id}"),
            principal: PrincipalKey::Group("g".into()),
            level,
        };
        let before = vec![g("1", Level::Read), g("2", Level::Read)];
        let after = vec![g("2", Level::Write), g("3", Level::Read)];
        assert_eq!(changed_roots(&before, &after), ["1", "2", "3"]);
        assert!(changed_roots(&after, &after).is_empty());
    }

    #[test]
    fn expirations() {
        assert_eq!(parse_expiration("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_expiration("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_expiration("garbage"), None);
    }
}
