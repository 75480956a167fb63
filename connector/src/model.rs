//! The guest's own copy of the WIT shapes, so the core compiles and is tested
//! natively; `guest.rs` converts at the boundary.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionLevel {
    Owner,
    Write,
    Read,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        id: String,
        email: Option<String>,
    },
    Group(String),
    AnyoneWithLink {
        share_id: String,
        expires: Option<i64>,
    },
    Federated(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub principal: Principal,
    pub level: PermissionLevel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    New(Record),
    ContentUpdated(Record),
    MetadataUpdated(Record),
    Deleted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordGroup {
    pub external_id: String,
    pub name: String,
    pub owner: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub include_extensions: Vec<String>,
    pub exclude_extensions: Vec<String>,
    pub modified_after: Option<i64>,
    pub modified_before: Option<i64>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub base_url: String,
    pub username: String,
    pub batch_size: u32,
    pub filters: Filters,
    pub reconcile_interval: u64,
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Full,
    Incremental,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    pub mode: SyncMode,
    pub new: u64,
    pub content_updated: u64,
    pub metadata_updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
}

impl SyncSummary {
    pub fn new(mode: SyncMode) -> Self {
        SyncSummary {
            mode,
            new: 0,
            content_updated: 0,
            metadata_updated: 0,
            deleted: 0,
            unchanged: 0,
        }
    }

    pub fn count(&mut self, change: &RecordChange) {
        match change {
            RecordChange::New(_) => self.new += 1,
            RecordChange::ContentUpdated(_) => self.content_updated += 1,
            RecordChange::MetadataUpdated(_) => self.metadata_updated += 1,
            RecordChange::Deleted(_) => self.deleted += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub user_id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub server_version: Option<String>,
    pub activity_available: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    ParentsFirst,
    ChildrenFirst,
}
