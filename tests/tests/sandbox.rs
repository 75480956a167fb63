//! The sandbox holds: the guest reaches no other origin, never holds the
//! credential, sees no host files or environment, and cannot run or grow
//! without bound. Each attempt comes from the hostile test component.
//!
//! The floods run the host as a child process: its peak RSS is then the
//! flood's alone, where in this process it would mix with every other
//! test's (and the simulator's).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use host_runner::store::StoreCounts;
use host_runner::{Config, Error, RunOptions, Secret, Store};
use nextcloud_sim::SimOptions;
use tests::{Account, PASSWORD, PASSWORD_ENV, rogue_wasm};

/// What no flood may make the host use.
const MAX_PEAK_RSS: u64 = 1 << 30;

/// A rogue account: `mode` goes in as the username the rogue reads; its
/// first word is the user id, for the rogues that read their own files.
fn rogue(mode: &str, settings: &str) -> Account {
    let mut account = Account::with_settings(
        SimOptions {
            login: mode.into(),
            user_id: mode.split(' ').next().unwrap_or_default().into(),
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

/// How a host-runner child ended: its exit code, its stderr and its peak RSS
/// in bytes.
struct Child {
    code: i32,
    stderr: String,
    peak_rss: u64,
}

// The child is reaped by `wait4` below, which std does not know of.
#[allow(clippy::zombie_processes)]
fn run_child(account: &Account) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(["sync", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host-runner starts");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    // wait4, not `Child::wait`: it also gives the child's peak RSS.
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's and has not been reaped.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(libc::WIFEXITED(status), "the host did not exit: {status}");
    Child {
        code: libc::WEXITSTATUS(status),
        stderr: reader.join().unwrap(),
        // Linux gives KiB.
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

/// Runs a flood: it must end as a broken sandbox limit naming `setting`,
/// with nothing committed and the host's peak RSS bounded. Returns the peak.
fn assert_flood_stopped(account: &Account, setting: &str) -> u64 {
    let child = run_child(account);
    let err = &child.stderr;
    assert_eq!(child.code, 6, "{err}");
    assert!(err.contains(&format!("`limits.{setting}`")), "{err}");
    assert!(!err.contains("ESCAPED"), "{err}");
    let counts = Store::open(&account.database()).unwrap().counts().unwrap();
    assert_eq!(counts, StoreCounts::default(), "something was committed");
    assert!(
        child.peak_rss < MAX_PEAK_RSS,
        "{setting}: peak RSS {} MiB",
        child.peak_rss >> 20
    );
    eprintln!("{setting}: host peak RSS {} MiB", child.peak_rss >> 20);
    child.peak_rss
}

#[test]
fn staged_writes_are_bounded_between_commits() {
    assert_flood_stopped(&rogue("staged-flood", ""), "max_staged_mib");
}

#[test]
fn aliased_strings_are_counted_before_the_host_copies_them() {
    for (mode, settings, setting) in [
        ("alias-put", "", "max_staged_mib"),
        ("alias-changes", "batch_size = 10000", "max_staged_mib"),
        ("alias-lookup", "", "max_call_mib"),
        ("alias-send-all", "", "max_call_mib"),
    ] {
        eprintln!("{mode}:");
        assert_flood_stopped(&rogue(mode, settings), setting);
    }
}

#[test]
fn answer_bodies_held_open_are_bounded() {
    assert_flood_stopped(&rogue("body-flood", ""), "max_open_bodies");
}

#[test]
fn buffered_answers_held_across_send_alls_are_bounded() {
    let account = rogue("send-all-hoard", "");
    // Under `max_body_mib` (64) one by one; the fifth passes `max_buffered_mib` (256).
    account.sim().put_sized("/big.bin", 60 << 20).unwrap();
    assert_flood_stopped(&account, "max_buffered_mib");
}

#[test]
fn a_run_ends_at_its_deadline_however_it_spends_it() {
    // Calling the host forever: never stalled, so only the run's deadline ends it.
    let started = Instant::now();
    assert_flood_stopped(
        &rogue("host-forever", "[limits]\nmax_run_minutes = 0.05"),
        "max_run_minutes",
    );
    // Computing, with a time slice longer than the run: the epoch check ends it.
    assert_flood_stopped(
        &rogue(
            "loop",
            "[limits]\nmax_run_minutes = 0.05\nguest_time_slice_ms = 600000",
        ),
        "max_run_minutes",
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A server that tells the host its user is `trickle`, and whose every
/// other answer promises a megabyte and sends a byte every 100 ms: no read
/// waits long, the answer never ends.
fn trickling_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                if buf[..n].starts_with(b"GET /ocs/v2.php/cloud/user") {
                    let me = r#"{"ocs":{"meta":{"status":"ok"},"data":{"id":"trickle"}}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{me}",
                        me.len()
                    );
                    let _ = stream.write_all(answer.as_bytes());
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                while stream.write_all(b"t").is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
    });
    base
}

#[test]
fn a_trickling_answer_ends_at_its_deadline() {
    let base = trickling_server();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(
        &format!(
            "base_url = \"{base}\"\nusername = \"trickle\"\ndatabase = \"state.sqlite\"\n\
             [limits]\nhttp_timeout_seconds = 30\nmax_response_seconds = 1\n"
        ),
        dir.path(),
    )
    .unwrap()
    .with_secret(Secret::new(PASSWORD));
    let started = Instant::now();
    let err =
        host_runner::run_sync(&config, &RunOptions::with_component(rogue_wasm())).unwrap_err();
    // The server's fault, not the connector's: an HTTP timeout it hears of.
    assert!(matches!(err, Error::Server(_)), "{err}");
    assert!(
        err.to_string().contains("`limits.max_response_seconds`"),
        "{err}"
    );
    assert!(!err.to_string().contains("ESCAPED"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
