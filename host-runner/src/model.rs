//! The record shapes the store keeps, from `record-model`: the one definition
//! the guest's core shares. They serialise to the JSON kept in SQLite, and
//! are independent of the generated bindings so that the store and its tests
//! need no wasmtime.

pub use record_model::{
    Order, Permission, PermissionLevel, Principal, Record, RecordChange, RecordGroup, User,
    is_account_path,
};
