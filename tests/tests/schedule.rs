//! `host-runner run` and the account lock: a stop mid-sync keeps every
//! committed batch and the next sync goes on from there; two syncs of one
//! account never run at once, and a killed holder does not block the next.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use host_runner::lock::AccountLock;
use host_runner::schedule::{Event, ScheduleOptions, run_schedule};
use host_runner::{ConfigFile, RunOptions, exit_code};
use nextcloud_sim::SimOptions;
use tests::{Account, PASSWORD, PASSWORD_ENV};

/// Entries in the trees the stop and lock tests sync: enough that a sync
/// takes far longer than noticing that its listing started.
const BIG_TREE: usize = 20_000;

fn command(account: &Account, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"));
    command
        .args(args)
        .arg("--config")
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .env("RUST_LOG", "info");
    command
}

/// Starts host-runner with its output going to files in the account's directory.
fn spawn(account: &Account, args: &[&str], name: &str) -> Child {
    let out = File::create(account.dir.path().join(format!("{name}.stdout"))).unwrap();
    let err = File::create(account.dir.path().join(format!("{name}.stderr"))).unwrap();
    command(account, args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("host-runner starts")
}

fn output_of(account: &Account, name: &str) -> (String, String) {
    let read = |ext: &str| {
        std::fs::read_to_string(account.dir.path().join(format!("{name}.{ext}"))).unwrap()
    };
    (read("stdout"), read("stderr"))
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child we have not waited for yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// Polls `done` until it holds; panics after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("host-runner did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the simulator has started answering the full listing.
fn listing_started(account: &Account) -> bool {
    account
        .sim()
        .requests()
        .iter()
        .any(|r| r.method == "PROPFIND" && r.depth.as_deref() == Some("infinity"))
}

#[test]
fn run_stops_cleanly_on_sigterm_mid_sync_and_the_next_sync_resumes() {
    let account = Account::new(SimOptions::default());
    account.sim().generate(BIG_TREE, 1);
    let total = account.sim().listing().len();

    let mut run = spawn(&account, &["run", "--json"], "run");
    wait_until("the listing to start", Duration::from_secs(120), || {
        listing_started(&account)
    });
    signal(&run, libc::SIGTERM);
    let signalled = Instant::now();
    let status = wait_exit(&mut run, Duration::from_secs(60));
    let took = signalled.elapsed();
    let (stdout, stderr) = output_of(&account, "run");
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(20),
        "took {took:?} to stop\n{stderr}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let last = events.last().expect("a stopped event");
    assert_eq!(last["event"], "stopped", "{stdout}");
    assert_eq!(
        last["account"], "alice",
        "the stop came during the sync: {stdout}"
    );
    assert!(
        stderr.contains("stopped during the sync of alice"),
        "{stderr}"
    );

    // The batch in flight when the signal came was committed; the rest waits.
    let kept = account.records().len();
    eprintln!("stopped {took:?} after the signal with {kept} of {total} records committed");
    assert!(kept > 0, "nothing was committed before the stop");
    assert!(
        kept < total,
        "the sync was not interrupted: {kept} of {total}"
    );

    let again = command(&account, &["sync", "--json"]).output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        report["new"].as_u64(),
        Some((total - kept) as u64),
        "{report}"
    );
    account.assert_mirrors_server();
}

#[test]
fn a_second_sync_is_refused_while_one_runs_and_a_killed_one_does_not_block() {
    let account = Account::new(SimOptions::default());
    account.sim().generate(BIG_TREE, 2);

    let mut first = spawn(&account, &["sync"], "first");
    wait_until("the listing to start", Duration::from_secs(120), || {
        listing_started(&account)
    });
    let second = command(&account, &["sync", "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(exit_code::BUSY), "{stderr}");
    assert!(
        stderr.contains(&format!("another host-runner (process {})", first.id()))
            && stderr.contains("state.sqlite.lock"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "busy");
    assert_eq!(json["error"]["exit_code"], exit_code::BUSY);

    // Killed mid-sync: the system drops its lock.
    signal(&first, libc::SIGKILL);
    let status = wait_exit(&mut first, Duration::from_secs(30));
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(AccountLock::path_for(&account.database()).exists());

    let third = command(&account, &["sync"]).output().unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    account.assert_mirrors_server();
}

#[test]
fn an_in_process_sync_is_refused_while_the_lock_is_held() {
    let account = Account::sample();
    let held = AccountLock::acquire(&account.database()).unwrap();
    let err = account.sync().unwrap_err();
    assert_eq!(err.exit_code(), exit_code::BUSY, "{err}");
    assert!(err.to_string().contains("syncing this account"), "{err}");
    assert_eq!(account.sim().request_count(), 0);
    drop(held);
    account.sync().unwrap();
    account.assert_mirrors_server();
}

/// Two accounts on two servers in one file, each with its own database.
fn two_accounts(dir: &Path, a: &Account, b: &Account, extra: &str) -> ConfigFile {
    std::fs::write(dir.join("pw.txt"), format!("{PASSWORD}\n")).unwrap();
    let table = |name: &str, account: &Account| {
        format!(
            "[[account]]\nname = \"{name}\"\nbase_url = \"{}\"\nusername = \"{}\"\napp_password_file = \"pw.txt\"\ndatabase = \"{}\"\n{extra}\n",
            account.server.base_url(),
            account.sim().options().login,
            account.database().display()
        )
    };
    let path = dir.join("both.toml");
    std::fs::write(
        &path,
        format!(
            "interval_minutes = 1\n\n{}\n{}",
            table("first", a),
            table("second", b)
        ),
    )
    .unwrap();
    ConfigFile::load(&path).unwrap()
}

#[test]
fn one_file_several_accounts_each_with_its_own_state() {
    let a = Account::sample();
    let b = Account::new(SimOptions {
        login: "bob".into(),
        user_id: "bob".into(),
        ..SimOptions::default()
    });
    b.sim().generate(300, 7);
    let dir = tempfile::tempdir().unwrap();
    let file = two_accounts(dir.path(), &a, &b, "batch_size = 50");
    let options = ScheduleOptions {
        run: RunOptions::with_component(tests::connector_wasm()),
        rounds: Some(1),
        ..ScheduleOptions::default()
    };
    let mut synced = Vec::new();
    run_schedule(&file, &options, |event| match event {
        Event::Synced { account, report } => synced.push((account.name.clone(), report)),
        other => panic!("{other:?}"),
    })
    .unwrap();
    let names: Vec<&str> = synced.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(synced[0].1.new, a.sim().listing().len() as u64);
    assert_eq!(synced[1].1.new, b.sim().listing().len() as u64);
    assert!(synced[1].1.largest_batch <= 50);
    a.assert_mirrors_server();
    b.assert_mirrors_server();

    // A second round finds nothing new on either.
    b.sim().put("/added by bob.txt", "hi").unwrap();
    let mut changes = Vec::new();
    run_schedule(&file, &options, |event| {
        if let Event::Synced { account, report } = event {
            changes.push((account.name.clone(), report.new));
        }
    })
    .unwrap();
    assert_eq!(
        changes,
        [("first".to_string(), 0), ("second".to_string(), 1)]
    );
    b.assert_mirrors_server();
}
