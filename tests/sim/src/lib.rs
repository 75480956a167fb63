//! A Nextcloud 32.0.1 simulator: a real HTTP server on loopback whose WebDAV
//! and OCS answers have the shape of the real server's (see
//! `/work/shared/fixtures/nextcloud-32/`), over an in-memory tree that tests
//! change through [`Simulator`].

mod content;
mod dav;
mod encode;
mod error;
mod generate;
mod http;
mod json;
mod ocs;
mod props;
mod sample;
mod server;
mod sim;
mod tree;
mod walk;

pub use error::SimError;
pub use server::Server;
pub use sim::{RequestLog, SimOptions, Simulator};
pub use tree::{Change, ChangeKind, SimEntry};

/// The instance id in `oc:id` (`%08d` fileid + this).
pub use props::INSTANCE_ID;
