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
//! empty homes.

mod sync;

use std::sync::{Mutex, MutexGuard};

use tests::nextcloud::RealServer;
use tests::remote::RemoteAccount;

/// One test at a time: they share the server's users.
static SERVER: Mutex<()> = Mutex::new(());

/// The real server with both users' files and shares cleared, and the lock
/// that keeps it this test's; `None`, said on stderr, without a server.
fn server() -> Option<(RealServer, MutexGuard<'static, ()>)> {
    let server = match RealServer::from_env() {
        Ok(server) => server,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return None;
        }
    };
    let guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
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
