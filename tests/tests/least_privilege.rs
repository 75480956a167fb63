//! Least privilege: the hostile component, holding the same WIT as the real
//! connector, tries every request a read-only connector does not need. The
//! host refuses each before it is sent, and the simulator (which implements
//! the write endpoints, so an escape would show) is left exactly as it was.

use nextcloud_sim::SimOptions;
use tests::{Account, ROGUE_ATTACKS};

/// The requests the simulator saw that were not the user-id lookups (the
/// host's own and the rogue's): each would be a request that got out.
fn unexpected_requests(account: &Account) -> Vec<String> {
    account
        .sim()
        .requests()
        .into_iter()
        .filter(|r| !(r.method == "GET" && r.path.starts_with("/ocs/v2.php/cloud/user?")))
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

#[test]
fn every_attack_is_refused_before_it_is_sent() {
    for attack in ROGUE_ATTACKS {
        let account = Account::rogue(&format!("attack {attack}"), "");
        let before = account.sim().state_fingerprint();
        let err = account.sync().expect_err("a rogue run fails").to_string();
        assert!(
            err.contains("blocked all") && !err.contains("ESCAPED"),
            "{attack}: {err}"
        );
        assert!(err.contains("Refused"), "{attack}: {err}");
        assert_eq!(account.sim().writes(), Vec::<String>::new(), "{attack}");
        assert_eq!(
            account.sim().state_fingerprint(),
            before,
            "{attack} changed the server"
        );
        assert_eq!(
            unexpected_requests(&account),
            Vec::<String>::new(),
            "{attack} got requests out"
        );
    }
}

#[test]
fn refusals_name_the_capability_a_write_would_need() {
    let account = Account::rogue("attack put", "");
    let err = account.sync().unwrap_err().to_string();
    assert!(
        err.contains("`files.write`") && err.contains("grants"),
        "{err}"
    );
    let account = Account::rogue("attack share-link", "");
    let err = account.sync().unwrap_err().to_string();
    assert!(err.contains("`shares.write`"), "{err}");
    let account = Account::rogue("attack apppassword-rotate", "");
    let err = account.sync().unwrap_err().to_string();
    assert!(err.contains("not granted by any capability"), "{err}");
}

/// The control: the same component, with the operator's grant, gets its
/// declared write through, and only that one. The refusals above are the
/// policy, not a broken client.
#[test]
fn only_an_operator_grant_lets_a_declared_write_through() {
    let grants = "grants = [\"user.read\", \"files.read\", \"files.write\"]";
    let account = Account::rogue("attack put", grants);
    let before = account.sim().state_fingerprint();
    let err = account.sync().unwrap_err().to_string();
    assert!(err.contains("ESCAPED") && err.contains("PUT"), "{err}");
    assert_eq!(account.sim().writes().len(), 1);
    assert_ne!(account.sim().state_fingerprint(), before);

    let account = Account::rogue("attack share-link", grants);
    let err = account.sync().unwrap_err().to_string();
    assert!(err.contains("blocked all"), "{err}");
    assert!(account.sim().writes().is_empty());
}

#[test]
fn a_capability_the_operator_leaves_out_is_refused() {
    // `user.read` left out: even the rogue's own lookup is refused.
    let account = Account::rogue("attack put", "grants = [\"files.read\"]");
    let err = account.sync().unwrap_err().to_string();
    assert!(
        err.contains("whoami") && err.contains("`user.read`"),
        "{err}"
    );
}

#[test]
fn an_unknown_grant_is_a_config_error() {
    let account = Account::rogue("attack put", "grants = [\"files.everything\"]");
    let err = host_runner::Config::load(&account.config_path).unwrap_err();
    assert!(matches!(err, host_runner::Error::Config(_)), "{err}");
    assert!(err.to_string().contains("`files.everything`"), "{err}");
}

/// `{user}` is the id the host resolved, not the login, and not whatever
/// the connector names: with a login that differs from the user id, the
/// connector's own files are reachable and no one else's are.
#[test]
fn the_user_in_every_grant_is_the_one_the_host_resolved() {
    let account = Account::with_settings(
        SimOptions {
            login: "alice@example.org".into(),
            user_id: "alice".into(),
            ..SimOptions::default()
        },
        "",
    );
    account.sim().populate_sample();
    account.sync().expect("the connector syncs its own files");
    account.assert_mirrors_server();
    // The id is remembered: an unchanged account still costs two requests.
    account.sim().reset_requests();
    let report = account.sync().unwrap();
    assert_eq!(report.requests, 2, "{:?}", account.sim().requests());
}
