//! The wasmtime host for the Nextcloud connector component.
//!
//! The connector (a WebAssembly component, world `nextcloud:connector/connector@0.1.0`)
//! owns the sync logic; this crate owns every secret and side effect: HTTP
//! with the credential attached ([`http`]), state and records ([`store`]: a
//! SQLite file, or a PostgreSQL database that workers share), the sandbox's
//! limits ([`runtime`]) and the CLI ([`cli`]).
//!
//! Tests call [`run_sync`], [`test_connection`] and [`list_records`]
//! in-process with a [`Config`] (see [`Config::from_toml_str`] and
//! [`Config::with_secret`]).

pub mod capability;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod content;
pub mod database;
pub mod demo;
pub mod download;
pub mod error;
pub mod feed;
pub mod http;
pub mod identity;
pub mod inspect;
pub mod lease;
pub mod lock;
pub mod model;
pub mod origin;
pub mod pace;
pub mod progress;
pub mod render;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod secret;
pub mod status;
pub mod stop;
pub mod store;
pub mod timefmt;

pub use commands::{
    ConnectionReport, RunOptions, StreamReport, SyncMode, SyncReport, list_records, run_sync,
    stream_record, test_connection,
};
pub use config::{Config, ConfigFile};
pub use error::{Error, Result, exit_code};
pub use secret::Secret;
pub use store::{SinkRecord, Store};
