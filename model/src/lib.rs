//! The record shapes of the WIT `types` interface, defined once: the guest's
//! core, the host and its stores all use these, and only the generated
//! bindings differ (`connector/src/guest.rs` and
//! `host-runner/src/runtime/convert.rs` convert at the boundary).
//!
//! They serialise to the JSON the host's stores keep (SQLite's
//! `known_records.data`, the change feed): field names, the `type` tag of a
//! principal, kebab-case variants and lower-case levels are a stored format,
//! pinned by the tests below. Plain data and serde derives only, so that the guest
//! stays small and nothing here needs wasmtime.

use serde::{Deserialize, Serialize};

/// How far a principal may go with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionLevel {
    Owner,
    Write,
    Read,
}

impl PermissionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionLevel::Owner => "owner",
            PermissionLevel::Write => "write",
            PermissionLevel::Read => "read",
        }
    }
}

/// Who a permission entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Principal {
    User {
        id: String,
        email: Option<String>,
    },
    Group {
        id: String,
    },
    AnyoneWithLink {
        share_id: String,
        expires: Option<i64>,
    },
    Federated {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub principal: Principal,
    pub level: PermissionLevel,
}

/// One file or folder, as the WIT `record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub external_id: String,
    pub parent_external_id: Option<String>,
    pub path: String,
    pub name: String,
    pub is_folder: bool,
    pub etag: String,
    pub size: u64,
    pub mime_type: String,
    pub modified: i64,
    pub created: Option<i64>,
    pub permission_letters: String,
    pub permissions: Vec<Permission>,
    pub owner_id: Option<String>,
    pub checksums: Vec<String>,
}

/// What happened to a record since the last commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    New(Record),
    ContentUpdated(Record),
    MetadataUpdated(Record),
    Deleted(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordGroup {
    pub external_id: String,
    pub name: String,
    /// `drive`, the only kind the WIT knows today.
    pub kind: String,
    pub owner: String,
}

impl RecordGroup {
    /// The WIT `record-group-kind.drive`: a user's own files.
    pub const DRIVE: &'static str = "drive";
}

/// Which end of a subtree `list_under` returns first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Path ascending: ancestors before descendants.
    ParentsFirst,
    /// Path descending: descendants before ancestors.
    ChildrenFirst,
}

/// `/`, or `/`-separated segments none of which is empty, `.`, `..` or holds
/// a NUL: a path inside the account, which the host requires of every record
/// a connector hands it, and `download` of every record it writes out.
pub fn is_account_path(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Record {
        Record {
            external_id: "42".into(),
            parent_external_id: Some("1".into()),
            path: "/Docs/a.pdf".into(),
            name: "a.pdf".into(),
            is_folder: false,
            etag: "e".into(),
            size: 7,
            mime_type: "application/pdf".into(),
            modified: 1,
            created: None,
            permission_letters: "RGDNVW".into(),
            permissions: vec![
                Permission {
                    principal: Principal::User {
                        id: "alice".into(),
                        email: Some("alice@example.com".into()),
                    },
                    level: PermissionLevel::Owner,
                },
                Permission {
                    principal: Principal::Group { id: "staff".into() },
                    level: PermissionLevel::Write,
                },
                Permission {
                    principal: Principal::AnyoneWithLink {
                        share_id: "s".into(),
                        expires: Some(9),
                    },
                    level: PermissionLevel::Read,
                },
                Permission {
                    principal: Principal::Federated {
                        id: "bob@other".into(),
                    },
                    level: PermissionLevel::Read,
                },
            ],
            owner_id: Some("alice".into()),
            checksums: vec!["SHA1:00".into()],
        }
    }

    /// The JSON stores hold: changing it breaks every existing database.
    #[test]
    fn records_keep_their_stored_json_shape() {
        let expected = json!({
            "external_id": "42",
            "parent_external_id": "1",
            "path": "/Docs/a.pdf",
            "name": "a.pdf",
            "is_folder": false,
            "etag": "e",
            "size": 7,
            "mime_type": "application/pdf",
            "modified": 1,
            "created": null,
            "permission_letters": "RGDNVW",
            "permissions": [
                {"principal": {"type": "user", "id": "alice", "email": "alice@example.com"}, "level": "owner"},
                {"principal": {"type": "group", "id": "staff"}, "level": "write"},
                {"principal": {"type": "anyone-with-link", "share_id": "s", "expires": 9}, "level": "read"},
                {"principal": {"type": "federated", "id": "bob@other"}, "level": "read"},
            ],
            "owner_id": "alice",
            "checksums": ["SHA1:00"],
        });
        assert_eq!(serde_json::to_value(record()).unwrap(), expected);
        let back: Record = serde_json::from_value(expected).unwrap();
        assert_eq!(back, record());
    }

    #[test]
    fn users_and_groups_keep_their_stored_json_shape() {
        let user = User {
            id: "alice".into(),
            display_name: "Alice".into(),
            email: None,
        };
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            json!({"id": "alice", "display_name": "Alice", "email": null})
        );
        let group = RecordGroup {
            external_id: "nextcloud:alice".into(),
            name: "Nextcloud - alice".into(),
            kind: RecordGroup::DRIVE.into(),
            owner: "alice".into(),
        };
        assert_eq!(
            serde_json::to_value(&group).unwrap(),
            json!({
                "external_id": "nextcloud:alice",
                "name": "Nextcloud - alice",
                "kind": "drive",
                "owner": "alice",
            })
        );
    }

    #[test]
    fn levels_are_named_as_serialised() {
        for level in [
            PermissionLevel::Owner,
            PermissionLevel::Write,
            PermissionLevel::Read,
        ] {
            assert_eq!(serde_json::to_value(level).unwrap(), json!(level.as_str()));
        }
    }

    #[test]
    fn account_paths() {
        for ok in ["/", "/a", "/a b/c#d", "/..a/b..", "/日本"] {
            assert!(is_account_path(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "//",
            "/a/",
            "/a//b",
            "/../etc/passwd",
            "/a/./b",
            "/a/..",
            "/a\0b",
        ] {
            assert!(!is_account_path(bad), "{bad:?}");
        }
    }
}
