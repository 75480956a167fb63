//! The host's own copies of the WIT shapes the store keeps. They serialise to
//! the JSON kept in SQLite, and are independent of the generated bindings so
//! that the store and its tests need no wasmtime.

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
