//! The sandbox holds: the guest reaches no other origin, never holds the
//! credential, sees no host files or environment, and cannot run or grow
//! without bound. Each attempt comes from the hostile test component.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use host_runner::{Error, RunOptions};
use nextcloud_sim::SimOptions;
use tests::{Account, PASSWORD, rogue_wasm};

/// A rogue account: `mode` goes in as the username the rogue reads.
fn rogue(mode: &str, settings: &str) -> Account {
    let mut account = Account::with_settings(
        SimOptions {
            login: mode.into(),
            ..SimOptions::default()
        },
        settings,
    );
    account.component = rogue_wasm();
    account
}

fn run(account: &Account) -> host_runner::Result<host_runner::SyncReport> {
    host_runner::run_sync(
        &account.config(),
        &RunOptions::with_component(&account.component),
    )
}

/// A listener on another loopback port: another origin. Counts connections.
fn bystander() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.map(|mut s| s.read(&mut buf));
        }
    });
    (port, hits)
}

#[test]
fn requests_to_another_origin_are_refused_unsent() {
    let (port, hits) = bystander();
    let account = rogue(&format!("other-origin {port}"), "");
    let err = run(&account).unwrap_err().to_string();
    assert!(err.contains("blocked") && err.contains("Refused"), "{err}");
    assert!(!err.contains("ESCAPED"), "{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other origin was contacted"
    );
}

#[test]
fn the_guest_cannot_send_its_own_credentials() {
    let account = rogue("credential-header", "");
    let err = run(&account).unwrap_err().to_string();
    assert!(err.contains("blocked") && err.contains("Refused"), "{err}");
    // Only the host's own lookup of the user id reached the server.
    let reached: Vec<String> = account
        .sim()
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/ocs/v2.php/cloud/user?"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        reached.is_empty(),
        "the request reached the server: {reached:?}"
    );
}

#[test]
fn the_guest_sees_no_environment_and_no_files() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("NC_E2E_SECRET_PROBE", PASSWORD) };
    let account = rogue("env", "");
    let err = run(&account).unwrap_err().to_string();
    assert!(
        err.contains("env: []"),
        "the guest saw an environment: {err}"
    );
    for path in [
        "/etc/passwd",
        account.database().to_str().unwrap(),
        account.config_path.to_str().unwrap(),
    ] {
        let account = rogue(&format!("files {path}"), "");
        let err = run(&account).unwrap_err().to_string();
        assert!(err.contains("blocked"), "{path}: {err}");
    }
}

#[test]
fn a_guest_that_never_returns_is_stopped() {
    let account = rogue("loop", "[limits]\nguest_time_slice_ms = 300");
    let err = run(&account).unwrap_err();
    assert_eq!(err.exit_code(), 6, "{err}");
    assert!(
        err.to_string().contains("without calling the host"),
        "{err}"
    );
}

#[test]
fn a_guest_that_allocates_without_bound_is_stopped() {
    let account = rogue("alloc", "[limits]\nmemory_mib = 64");
    let err = run(&account).unwrap_err();
    assert_eq!(err.exit_code(), 6, "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
}

#[test]
fn a_guest_panic_reaches_the_user_with_its_message() {
    let account = rogue("panic", "");
    let err = run(&account).unwrap_err();
    assert_eq!(err.exit_code(), 6, "{err}");
    assert!(
        err.to_string().contains("rogue guest panicked on purpose"),
        "{err}"
    );
}

#[test]
fn records_outside_the_account_are_refused() {
    let account = rogue("outside-paths", "");
    let err = run(&account).unwrap_err().to_string();
    assert!(err.contains("on-changes: Err"), "{err}");
    assert!(
        host_runner::list_records(&account.config())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_host_stays_healthy_after_a_rogue() {
    let account = rogue("panic", "");
    assert!(matches!(run(&account), Err(Error::Guest(_))));
    let honest = Account::sample();
    honest.sync().unwrap();
    honest.assert_mirrors_server();
}
