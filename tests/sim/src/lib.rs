//! A Nextcloud 32.0.1 simulator: a real HTTP server on loopback whose WebDAV
//! (PROPFIND, GET, SEARCH, and the writes), OCS (capabilities, user,
//! Activity v2, Share API, app passwords) answers have the shape of the real server's (see
//! `tests/fixtures/nextcloud-32/`), over an in-memory tree of one or
//! more users that tests change through [`Simulator`] and [`SimUser`].

mod activity;
mod apppassword;
mod audit;
mod content;
mod dav;
mod encode;
mod error;
mod fault;
mod generate;
mod http;
mod json;

mod ocs;
mod proppatch;
mod props;
mod sample;
mod search;
mod server;
mod share;
mod sim;
mod time;
mod tree;
mod view;
mod walk;
mod write;

pub use error::SimError;
pub use fault::{Canned, FaultCounts, Faults, Gate, Intercept, Rewrite};
pub use server::Server;
pub use share::{
    PERMISSION_ALL, PERMISSION_CREATE, PERMISSION_DELETE, PERMISSION_READ, PERMISSION_SHARE,
    PERMISSION_UPDATE, ShareWith,
};
pub use sim::{RequestLog, SimOptions, SimUser, Simulator, UserSpec};
pub use tree::{Change, ChangeKind, SimEntry};

/// The instance id in `oc:id` (`%08d` fileid + this).
pub use props::INSTANCE_ID;

/// Lowercase hex MD5, like PHP's `md5($s)`: the Activity ETag and the etag
/// of a folder holding share mounts are built with it.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
