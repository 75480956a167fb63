//! Against a real Nextcloud 32: the server `tests/nextcloud/server.sh up`
//! brings up, named by its environment (`NEXTCLOUD_TEST_URL`, users and app
//! passwords; see `tests/nextcloud/README.md`). Without it every test here
//! says why on one line and passes, so a fresh clone still passes:
//!
//! ```sh
//! eval "$(tests/nextcloud/server.sh up)"
//! cargo test -p tests --test e2e real:: -- --nocapture
//! ```
//!
//! The tests change the two users' files: they run one at a time, each from
//! empty homes. `latency` keeps its large tree with a third user, `carol`.

mod conformance;
mod latency;
mod least_privilege;
mod sync;
mod workers;

use std::fs::File;
use std::os::fd::AsRawFd;

use tests::nextcloud::RealServer;
use tests::remote::RemoteAccount;

/// Held while a test uses the server: one test at a time, across threads
/// and processes (two `cargo test` runs share the server's users too).
pub struct ServerLock {
    _file: File,
}

fn lock(server: &RealServer) -> ServerLock {
    let name: String = server
        .url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = std::env::temp_dir().join(format!("nextcloud-tests-{name}.lock"));
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Released when the file is closed, however the test ends.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    ServerLock { _file: file }
}

/// The real server with both users' files and shares cleared, and the lock
/// that keeps it this test's; `None`, said on stderr, without a server.
fn server() -> Option<(RealServer, ServerLock)> {
    let server = match RealServer::from_env() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return None;
        }
    };
    let guard = lock(&server);
    for user in 0..2 {
        server
            .dav(user)
            .clear()
            .unwrap_or_else(|e| panic!("clearing {}: {e:#}", server.users[user].0));
    }
    Some((server, guard))
}

/// A fresh database for one of the server's users.
fn account(server: &RealServer, user: usize) -> RemoteAccount {
    let (id, password) = &server.users[user];
    RemoteAccount::new(
        env!("CARGO_BIN_EXE_host-runner-e2e").as_ref(),
        &server.url,
        id,
        password,
        "",
    )
}
