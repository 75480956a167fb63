//! The hostile component against a real Nextcloud 32: every write, share,
//! app-password call and dressed-up read is refused by the host before it
//! is sent, and the server is left as it was: same files, same etags, no
//! share, and the app password still works (a rotate would have voided it).

use host_runner::RunOptions;
use tests::{ROGUE_ATTACKS, rogue_wasm, set_rogue_mode};

use super::{account, server};

#[test]
fn a_hostile_component_changes_nothing_on_the_real_server() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let alice = server.dav(0);
    alice.mkdir("/Documents").unwrap();
    alice.put("/Documents/kept.txt", b"kept").unwrap();
    let files = alice.listing().unwrap();
    let shares = || {
        let reply = alice
            .ocs("GET", "apps/files_sharing/api/v1/shares", &[])
            .unwrap();
        reply.json().unwrap()["ocs"]["data"].clone()
    };
    let shares_before = shares();
    let account = account(&server, 0);
    let options = RunOptions::with_component(rogue_wasm());
    for attack in ROGUE_ATTACKS {
        set_rogue_mode(&account.database(), &format!("attack {attack}"));
        let err = host_runner::run_sync(&account.config(), &options)
            .expect_err("a rogue run fails")
            .to_string();
        assert!(
            err.contains("blocked all") && !err.contains("ESCAPED"),
            "{attack}: {err}"
        );
    }
    assert_eq!(alice.listing().unwrap(), files, "the files changed");
    assert_eq!(shares(), shares_before, "the shares changed");
    // The connector, with the same app password, still syncs.
    account.sync();
}
