//! The core's shapes. The record shapes come from `record-model`, the one
//! definition the host shares; the rest are the guest's own copies of its
//! WIT `lifecycle` shapes, so the core compiles and is tested natively.
//! `guest.rs` converts at the boundary.

pub use record_model::{
    Order, Permission, PermissionLevel, Principal, Record, RecordChange, RecordGroup, User,
};

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
