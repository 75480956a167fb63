//! The Nextcloud connector: a WebAssembly component that mirrors a user's
//! files and folders into the host's records sink.
//!
//! Everything here is plain Rust that builds and is tested natively; the
//! WIT bindings in `guest.rs` are a thin shell that implements [`host::Host`]
//! over the imports and forwards the exports to [`Connector`]. This file
//! only names the modules; none of them imports from it. The module map is
//! in the README (*The connector's core*).

// Entry points and the run's phases.
pub mod batch;
pub mod connector;
pub mod dav;
pub mod download;
pub mod full;
pub mod incremental;
pub mod reconcile;
pub mod run;
pub mod start;

// What a run keeps while it goes.
pub mod ids;
pub mod keys;
pub mod marks;
pub mod path_cache;
pub mod placement;
pub mod server;

// Reading the server's answers.
pub mod activity;
pub mod body;
pub mod checksum;
pub mod entry;
pub mod href;
pub mod mime;
pub mod ocs;
pub mod propfind;
pub mod search;
pub mod text;

// Rules on records.
pub mod access;
pub mod filter;
pub mod permissions;

// The boundary.
pub mod error;
pub mod host;
pub mod model;

#[cfg(test)]
mod full_tests;
#[cfg(target_arch = "wasm32")]
mod guest;
#[cfg(test)]
mod testing;

pub use connector::Connector;
