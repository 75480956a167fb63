//! PostgreSQL as the store, when things go wrong: the real component in the
//! real host (the CLI binary) against the simulator over loopback and a real,
//! throwaway PostgreSQL server.
//!
//! Bad input (a closed port, a wrong database password, a password in the
//! URL, a schema from a newer host-runner) fails with the storage or config
//! exit code, a message that names the database by its URL and says what to
//! do, never a password, and nothing synced or overwritten. Faults (the
//! server stopped in the middle of a sync, a second sync of a leased
//! account) fail cleanly and the next sync converges. Two accounts share one
//! database without seeing each other, and `status --json` reports them.
//!
//! Tests that need a PostgreSQL server say `skipped: …` and pass where there
//! is none; the ones that only need a URL nobody answers run everywhere.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_runner::config::Database;
use host_runner::store::postgres::Conn;
use nextcloud_sim::{Intercept, SimOptions};
use serde_json::Value;
use tests::postgres::Postgres;
use tests::{Account, Backend, PASSWORD, PASSWORD_ENV};

const DAV: &str = "/remote.php/dav/files/alice/";

/// How long any one host-runner process may take before the test calls it hung.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(180);

/// What a finished host-runner process left.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// Everything it wrote, logs included: where a password must never be.
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// What it told the user: stdout and the `error:` message at the end of
    /// stderr (without the trace logs before it).
    fn said(&self) -> String {
        let error = self
            .stderr
            .find("\nerror: ")
            .map(|i| &self.stderr[i + 1..])
            .or_else(|| {
                self.stderr
                    .starts_with("error: ")
                    .then_some(&self.stderr[..])
            })
            .unwrap_or("");
        format!("{}{error}", self.stdout)
    }

    /// Panics with everything it said unless it ended with `code`.
    fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: exit code {:?}, wanted {code}:\n{}",
            self.code,
            self.said()
        );
    }
}

/// `host-runner ARGS --config CONFIG --component …` with the app password in
/// its variable and every log line on (a leak would show).
fn command(account: &Account, config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .env_remove("PGPASSWORD")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null());
    command
}

/// A child whose output goes to files (nothing to drain while it runs).
struct Running {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn(mut command: Command) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let child = command
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("host-runner starts");
    Running {
        child,
        stdout,
        stderr,
        _dir: dir,
    }
}

impl Running {
    /// Waits for the end (killing it and failing after [`PROCESS_TIMEOUT`]).
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "host-runner hung for {PROCESS_TIMEOUT:?}: {}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
        Finished {
            code: status.code(),
            stdout: read(&self.stdout),
            stderr: read(&self.stderr),
        }
    }
}

fn run(account: &Account, args: &[&str]) -> Finished {
    spawn(command(account, &account.config_path, args)).finish()
}

fn sync(account: &Account) -> Finished {
    run(account, &["sync", "--json"])
}

/// `status --json` of the account's config file: its one entry.
fn status(account: &Account) -> Value {
    let out = run(account, &["status", "--json"]);
    out.assert_code(0, "status");
    let all: Value = serde_json::from_str(&out.stdout).expect("status prints JSON");
    let all = all.as_array().expect("a JSON array").clone();
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

/// The PostgreSQL server of a backend.
fn server(backend: &Backend) -> Arc<Postgres> {
    match backend {
        Backend::Postgres(pg) => pg.clone(),
        Backend::Sqlite => unreachable!("a PostgreSQL backend"),
    }
}

/// The account's database URL, as its config names it.
fn url(account: &Account) -> String {
    match &account.config().database {
        Database::Postgres(target) => target.url.clone(),
        Database::Sqlite(path) => panic!("{} is not PostgreSQL", path.display()),
    }
}

/// A connection to the account's database, the schema migrated and on the
/// search path, as the host-runner makes one.
fn connect(account: &Account) -> Conn {
    match &account.config().database {
        Database::Postgres(target) => {
            host_runner::store::postgres::connect_only(target).expect("the database answers")
        }
        Database::Sqlite(path) => panic!("{} is not PostgreSQL", path.display()),
    }
}

/// Writes a password file as a user would: readable by its owner only.
fn write_secret(path: &Path, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Replaces the account's config with one naming `database_lines`.
fn rewrite_config(account: &Account, database_lines: &str) {
    std::fs::write(
        &account.config_path,
        format!(
            "base_url = \"{}\"\nusername = \"{}\"\napp_password_env = \"{PASSWORD_ENV}\"\n{database_lines}",
            account.server.base_url(),
            account.sim().options().login,
        ),
    )
    .unwrap();
}

/// The sequence numbers of the account's whole feed, and its head.
fn feed(account: &Account) -> (Vec<i64>, i64) {
    let store = host_runner::Store::connect_existing(&account.config()).expect("store");
    let feed = store.feed();
    let seqs = feed
        .read(0, u32::MAX)
        .expect("feed reads")
        .iter()
        .map(|c| c.seq)
        .collect();
    (seqs, feed.head().expect("feed head"))
}

/// The feed numbers 1..=head, each once, and at least one change.
fn assert_gapless(account: &Account, what: &str) -> i64 {
    let (seqs, head) = feed(account);
    assert!(head > 0, "{what}: an empty feed");
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "{what}: feed with gaps"
    );
    head
}

fn propfinds(account: &Account) -> usize {
    account
        .sim()
        .requests()
        .iter()
        .filter(|r| r.method == "PROPFIND")
        .count()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_database_fails_as_storage_naming_the_url_before_any_listing() {
    // Needs no PostgreSQL server: nothing listens on the port.
    let account = Account::sample();
    let url = format!("postgres://connector@127.0.0.1:{}/nc", closed_port());
    write_secret(
        &account.dir.path().join("db-password"),
        "some-db-password-41",
    );
    rewrite_config(
        &account,
        &format!("database = \"{url}\"\ndatabase_password_file = \"db-password\"\n"),
    );
    let started = Instant::now();
    let out = sync(&account);
    out.assert_code(
        host_runner::exit_code::STORAGE,
        "sync against a closed port",
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused connection took {:?}",
        started.elapsed()
    );
    assert!(
        !out.text().contains("some-db-password-41"),
        "{}",
        out.said()
    );
    let said = out.said();
    assert!(
        said.contains(&url),
        "the message does not name {url}: {said}"
    );
    assert!(
        said.contains("check that PostgreSQL runs and is reachable"),
        "the message does not say what to do: {said}"
    );
    let json: Value = serde_json::from_str(out.stdout.trim()).expect("a JSON error on stdout");
    assert_eq!(json["error"]["kind"], "storage", "{json}");
    assert_eq!(json["error"]["exit_code"], 5, "{json}");
    assert_eq!(propfinds(&account), 0, "{:?}", account.sim().requests());
    assert!(
        account.sim().requests().is_empty(),
        "Nextcloud was asked before the database was: {:?}",
        account.sim().requests()
    );

    // `status` still answers (exit 0); the account's entry says why not.
    let s = status(&account);
    let error = s["error"].as_str().unwrap_or_else(|| panic!("{s}"));
    assert!(error.contains(&url), "{s}");
    assert_eq!(s["database"], url.as_str(), "{s}");
}

#[test]
fn a_wrong_database_password_is_named_and_never_printed() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let pg = server(&backend);
    let account = Account::sample_in(backend);
    let url = url(&account);
    const WRONG: &str = "wrongDbPassword7x9q";
    write_secret(&account.dir.path().join("db-password"), WRONG);

    let out = sync(&account);
    out.assert_code(
        host_runner::exit_code::STORAGE,
        "sync with a wrong database password",
    );
    let said = out.said();
    assert!(
        said.contains(&url),
        "the message does not name {url}: {said}"
    );
    assert!(
        said.contains("database_password_env") && said.contains("database_password_file"),
        "the message does not point at database_password_env/file: {said}"
    );
    let text = out.text();
    assert!(!text.contains(WRONG), "the wrong password is printed");
    assert!(
        !text.contains(pg.password()),
        "the right password is printed"
    );
    assert!(!text.contains(PASSWORD), "the app password is printed");
    assert!(
        account.sim().requests().is_empty(),
        "Nextcloud was asked before the database let us in: {:?}",
        account.sim().requests()
    );

    // Nothing was committed: with the right password the account is empty,
    // and its first sync starts the feed at 1.
    write_secret(&account.dir.path().join("db-password"), pg.password());
    assert!(account.records().is_empty(), "{:?}", account.records());
    sync(&account).assert_code(0, "sync with the right password");
    assert_gapless(&account, "after the first good sync");
    account.assert_mirrors_server();
}

/// PostgreSQL's own reason ("password authentication failed for user …",
/// "database … does not exist") reaches the user: the driver's text for an
/// error the server sent is only "db error" (it once was all the message
/// said).
#[test]
fn the_database_servers_reason_reaches_the_message() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let pg = server(&backend);
    let account = Account::with_backend(SimOptions::default(), "", backend);
    let missing = format!("postgres://connector@127.0.0.1:{}/no_such_db", pg.port());
    rewrite_config(
        &account,
        &format!("database = \"{missing}\"\ndatabase_password_file = \"db-password\"\n"),
    );
    let out = sync(&account);
    out.assert_code(
        host_runner::exit_code::STORAGE,
        "sync into a missing database",
    );
    let no_database = out.said();

    write_secret(
        &account.dir.path().join("db-password"),
        "wrongDbPassword7x9q",
    );
    rewrite_config(
        &account,
        &format!(
            "database = \"{}\"\ndatabase_password_file = \"db-password\"\n",
            pg.create_database("reason")
        ),
    );
    let out = sync(&account);
    out.assert_code(
        host_runner::exit_code::STORAGE,
        "sync with a wrong password",
    );
    let wrong_password = out.said();
    assert!(
        no_database.contains("does not exist"),
        "a missing database is not called missing: {no_database}"
    );
    assert!(
        wrong_password.contains("password authentication failed"),
        "PostgreSQL's reason is not in the message: {wrong_password}"
    );
}

#[test]
fn a_password_in_the_database_url_is_refused_and_never_echoed() {
    // Needs no PostgreSQL server: the URL is refused before any connection.
    let account = Account::sample();
    const SECRET: &str = "urlPassw0rdLeak";
    for database in [
        format!(
            "postgres://connector:{SECRET}@127.0.0.1:{}/nc",
            closed_port()
        ),
        format!("postgresql://connector:{SECRET}@localhost/nc?sslmode=disable"),
    ] {
        rewrite_config(&account, &format!("database = \"{database}\"\n"));
        let out = sync(&account);
        out.assert_code(host_runner::exit_code::CONFIG, &database);
        let said = out.said();
        assert!(
            said.contains("database_password_env") && said.contains("database_password_file"),
            "the message does not say where the password goes: {said}"
        );
        assert!(
            !out.text().contains(SECRET),
            "the password is echoed: {said}"
        );
        assert!(account.sim().requests().is_empty());
    }
}

#[test]
fn postgres_stopped_mid_sync_fails_cleanly_and_the_next_sync_converges() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let pg = server(&backend);
    // One change per commit, so the sync below has committed some batches
    // when it is held.
    let account = Account::with_backend(
        SimOptions::default(),
        "batch_size = 1\nlease_seconds = 120",
        backend,
    );
    let url = url(&account);
    let sim = account.sim();
    for (path, content) in [
        ("/a/b/c/M/inner/x.txt", "x"),
        ("/a/b/c/stays.txt", "s"),
        ("/z/N/y.txt", "y"),
        ("/z/other.txt", "o"),
    ] {
        sim.mkdir_all(path.rsplit_once('/').unwrap().0).unwrap();
        sim.put(path, content).unwrap();
    }
    sync(&account).assert_code(0, "the first full sync");
    let (_, head_before) = feed(&account);

    // The incremental sync commits the move of /M, then lists /N: held there.
    sim.rename("/a/b/c/M", "/M").unwrap();
    sim.rename("/z/N", "/N").unwrap();
    sim.put("/z/new.txt", "new").unwrap();
    let (hold, gate) = Intercept::hold("PROPFIND", &format!("{DAV}N"));
    sim.intercept(hold.depth("infinity"));
    let running = spawn(command(&account, &account.config_path, &["sync", "--json"]));
    assert!(
        gate.wait_reached(Duration::from_secs(120)),
        "the sync never listed /N"
    );
    let (_, head_held) = feed(&account);
    assert!(
        head_held > head_before,
        "nothing was committed before the hold: the test missed its window"
    );
    pg.stop();
    gate.open();
    sim.clear_intercepts();
    let out = running.finish();
    out.assert_code(
        host_runner::exit_code::STORAGE,
        "the sync whose database stopped",
    );
    let text = out.text();
    let said = out.said();
    assert!(
        said.contains(&url),
        "the error does not name the database {url}: {said}"
    );
    assert!(said.contains("storage"), "not a storage error: {said}");
    assert!(
        !text.contains(pg.password()),
        "the database password is printed"
    );
    assert!(!text.contains(PASSWORD), "the app password is printed");

    pg.restart();
    // The failed sync could not release its lease (the database was down);
    // its holder's advisory lock ended with the server, so the next sync by
    // hand takes the account at once instead of waiting for the lease to
    // expire (`lease_seconds` is long enough here to tell).
    sync(&account).assert_code(0, "the first sync after the restart");
    account.assert_converged();
    let head = assert_gapless(&account, "after the restart");
    assert!(head > head_held, "the resumed sync committed nothing");
}

#[test]
fn two_accounts_share_one_database_and_never_see_each_other() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let first = Account::with_backend(SimOptions::default(), "", backend);
    // A second simulator, same login, same file ids: only the base URL tells
    // the accounts apart.
    let second = Account::new(SimOptions::default());
    std::fs::copy(
        first.dir.path().join("db-password"),
        second.dir.path().join("db-password"),
    )
    .unwrap();
    let url = url(&first);
    rewrite_config(
        &second,
        &format!("database = \"{url}\"\ndatabase_password_file = \"db-password\"\n"),
    );
    assert_ne!(first.server.base_url(), second.server.base_url());
    for (account, only) in [(&first, "/Only first"), (&second, "/Only second")] {
        let sim = account.sim();
        sim.mkdir_all(&format!("{only}/deep")).unwrap();
        sim.put(&format!("{only}/deep/a.txt"), "a").unwrap();
        sim.put("/shared-name.txt", only.as_bytes().to_vec())
            .unwrap();
    }
    first.sim().put("/first-extra.txt", "x").unwrap();

    sync(&first).assert_code(0, "the first account's sync");
    sync(&second).assert_code(0, "the second account's sync");
    first.assert_mirrors_server();
    second.assert_mirrors_server();
    let paths = |a: &Account| {
        a.records()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    };
    assert!(!paths(&first).iter().any(|p| p.starts_with("/Only second")));
    assert!(!paths(&second).iter().any(|p| p.starts_with("/Only first")));

    // The same external ids in both: only the account keeps them apart.
    let ids = |a: &Account| {
        a.records()
            .iter()
            .map(|r| r.external_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        !ids(&first).is_disjoint(&ids(&second)),
        "the simulators gave disjoint ids: the test proves less than it says"
    );
    let head_first = assert_gapless(&first, "the first account's feed");
    let head_second = assert_gapless(&second, "the second account's feed");
    assert_ne!(head_first, head_second, "the trees differ in size");

    // A change to one moves only its own feed.
    first.sim().put("/first-extra.txt", "longer now").unwrap();
    sync(&first).assert_code(0, "the first account's second sync");
    sync(&second).assert_code(0, "the second account's second sync");
    assert!(assert_gapless(&first, "first, again") > head_first);
    assert_eq!(assert_gapless(&second, "second, again"), head_second);
    first.assert_mirrors_server();
    second.assert_mirrors_server();

    for account in [&first, &second] {
        let s = status(account);
        assert_eq!(s["error"], Value::Null, "{s}");
        assert_eq!(s["last_sync"]["outcome"], "ok", "{s}");
        assert_eq!(s["database"], url.as_str(), "{s}");
        assert_eq!(s["key"], account.config().account_key().as_str(), "{s}");
        assert_eq!(
            s["counts"]["records"],
            account.sim().listing().len() as u64,
            "{s}"
        );
    }
}

#[test]
fn a_schema_from_a_newer_host_runner_is_refused_and_left_alone() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let account = Account::sample_in(backend);
    sync(&account).assert_code(0, "the first sync");
    let url = url(&account);
    let records = account.records().len() as i64;
    assert!(records > 0);

    let mut conn = connect(&account);
    let one = |conn: &mut Conn, sql: &str| -> i64 {
        conn.client.query_one(sql, &[]).expect(sql).get::<_, i64>(0)
    };
    conn.client
        .execute("UPDATE schema_version SET version = 99", &[])
        .unwrap();
    let head = one(&mut conn, "SELECT max(feed_head) FROM accounts");
    let runs = one(&mut conn, "SELECT count(*) FROM sync_runs");

    account.sim().put("/after.txt", "would be new").unwrap();
    account.sim().reset_requests();
    for args in [&["sync", "--json"][..], &["records", "--json"][..]] {
        let out = run(&account, args);
        out.assert_code(host_runner::exit_code::STORAGE, &args.join(" "));
        let said = out.said();
        assert!(
            said.contains("newer host-runner"),
            "{args:?} does not say a newer host-runner wrote it: {said}"
        );
        assert!(said.contains(&url), "{args:?} does not name {url}: {said}");
    }
    assert!(
        account.sim().requests().is_empty(),
        "Nextcloud was asked: {:?}",
        account.sim().requests()
    );
    assert_eq!(
        one(&mut conn, "SELECT count(*) FROM schema_version"),
        1,
        "schema_version rows"
    );
    assert_eq!(
        one(&mut conn, "SELECT max(version)::bigint FROM schema_version"),
        99,
        "the newer schema's version was overwritten"
    );
    assert_eq!(one(&mut conn, "SELECT count(*) FROM records"), records);
    assert_eq!(one(&mut conn, "SELECT max(feed_head) FROM accounts"), head);
    assert_eq!(one(&mut conn, "SELECT count(*) FROM sync_runs"), runs);
    let s = status(&account);
    let error = s["error"].as_str().unwrap_or_else(|| panic!("{s}"));
    assert!(error.contains("newer host-runner"), "{s}");
}

#[test]
fn a_second_sync_of_a_leased_account_is_busy_at_once() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let account = Account::with_backend(SimOptions::default(), "name = \"busy-bee\"", backend);
    account.sim().populate_sample();
    let url = url(&account);
    let (hold, gate) = Intercept::hold("PROPFIND", DAV);
    account.sim().intercept(hold);
    let running = spawn(command(&account, &account.config_path, &["sync", "--json"]));
    let pid = running.child.id();
    assert!(
        gate.wait_reached(Duration::from_secs(120)),
        "the first sync never listed"
    );

    let held = status(&account);
    let holder = held["holder"].as_str().unwrap_or_else(|| panic!("{held}"));
    assert!(holder.ends_with(&format!(":{pid}")), "{held}");
    let requests = account.sim().request_count();
    let started = Instant::now();
    let second = sync(&account);
    let took = started.elapsed();
    second.assert_code(host_runner::exit_code::BUSY, "the second sync");
    assert!(took < Duration::from_secs(15), "busy only after {took:?}");
    let said = second.said();
    assert!(
        said.contains("busy-bee"),
        "the account is not named: {said}"
    );
    assert!(said.contains(&url), "the database is not named: {said}");
    let json: Value = serde_json::from_str(second.stdout.trim()).expect("a JSON error");
    assert_eq!(json["error"]["kind"], "busy", "{json}");
    assert_eq!(
        account.sim().request_count(),
        requests,
        "the busy sync talked to Nextcloud"
    );

    gate.open();
    running.finish().assert_code(0, "the first sync");
    account.assert_mirrors_server();
    let idle = status(&account);
    assert_eq!(idle["holder"], Value::Null, "{idle}");
    assert_eq!(idle["last_sync"]["outcome"], "ok", "{idle}");
}

/// `status` keeps the latest syncs of each account, and only its own: a
/// second account's history in the same database is not cut.
#[test]
fn only_the_latest_syncs_of_each_account_are_kept() {
    use host_runner::store::KEPT_SYNC_RUNS;
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let a = Account::with_backend(SimOptions::default(), "", backend.clone());
    // The same database, another login: another account.
    let b = a.twin("");
    let login = format!("username = \"{}\"", a.sim().options().login);
    let text = std::fs::read_to_string(&b.config_path).unwrap();
    assert!(text.contains(&login), "{text}");
    std::fs::write(&b.config_path, text.replace(&login, "username = \"bob\"")).unwrap();
    let store_a = host_runner::Store::connect(&a.config()).unwrap();
    let store_b = host_runner::Store::connect(&b.config()).unwrap();
    let first_b = store_b.run_started("b:1").unwrap();
    store_b.run_finished(first_b, "ok", None).unwrap();
    for i in 0..KEPT_SYNC_RUNS + 5 {
        let run = store_a.run_started(&format!("a:{i}")).unwrap();
        store_a.run_finished(run, "ok", None).unwrap();
    }
    let kept = store_a.sync_runs(u32::MAX).unwrap();
    assert_eq!(kept.len() as u32, KEPT_SYNC_RUNS);
    assert_eq!(kept[0].holder, format!("a:{}", KEPT_SYNC_RUNS + 4));
    assert_eq!(store_b.sync_runs(u32::MAX).unwrap().len(), 1);
}

#[test]
fn status_json_after_a_sync_shows_the_outcome_lag_and_lease() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let account = Account::sample_in(backend);
    let url = url(&account);
    sync(&account).assert_code(0, "the first sync");

    let s = status(&account);
    assert_eq!(s["error"], Value::Null, "{s}");
    assert_eq!(s["database"], url.as_str(), "{s}");
    assert_eq!(s["last_sync"]["outcome"], "ok", "{s}");
    assert_eq!(s["last_sync"]["error"], Value::Null, "{s}");
    assert!(s["last_sync"]["finished_at_ms"].is_i64(), "{s}");
    assert_eq!(s["last_success"], s["last_sync"], "{s}");
    let lag = s["lag_seconds"].as_f64().unwrap_or_else(|| panic!("{s}"));
    assert!((0.0..600.0).contains(&lag), "{s}");
    assert_eq!(s["holder"], Value::Null, "{s}");
    assert_eq!(s["lease"]["holder"], Value::Null, "{s}");
    let token = s["lease"]["token"]
        .as_i64()
        .unwrap_or_else(|| panic!("{s}"));
    assert!(token >= 1, "{s}");
    assert_eq!(s["last_sync"]["token"], token, "{s}");
    let (_, head) = feed(&account);
    assert_eq!(s["feed_head"], head, "{s}");
    assert_eq!(
        s["counts"]["records"],
        account.sim().listing().len() as u64,
        "{s}"
    );

    // Every take raises the token by one.
    sync(&account).assert_code(0, "the second sync");
    let again = status(&account);
    assert_eq!(again["lease"]["token"], token + 1, "{again}");
    assert_eq!(again["last_sync"]["outcome"], "ok", "{again}");
    assert_eq!(again["holder"], Value::Null, "{again}");
}

/// A statement PostgreSQL refuses inside a commit (a trigger here): the
/// whole batch rolls back, the feed keeps no gap, the next sync converges,
/// and the message names the database and the server's reason, with the
/// error's kind said once (it once read "storage: storage: storage: commit
/// failed: db error").
#[test]
fn a_write_refused_mid_commit_rolls_the_batch_back_and_names_the_database() {
    let Some(backend) = Backend::postgres_or_skip() else {
        return;
    };
    let account = Account::sample_in(backend);
    sync(&account).assert_code(0, "the first sync");
    let url = url(&account);
    let before = account.records();
    let (_, head_before) = feed(&account);

    // The database refuses every new record row, as a full disk or a
    // revoked privilege would, after the commit has begun.
    let mut conn = connect(&account);
    conn.client
        .batch_execute(
            "CREATE FUNCTION refuse_records() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse_records BEFORE INSERT ON records
             FOR EACH ROW EXECUTE FUNCTION refuse_records();",
        )
        .unwrap();
    let sim = account.sim();
    sim.mkdir("/Refused").unwrap();
    sim.put("/Refused/a.txt", "a").unwrap();
    sim.put("/Refused/b.txt", "b").unwrap();
    let out = sync(&account);
    out.assert_code(host_runner::exit_code::STORAGE, "the refused sync");
    let said = out.said();
    assert_eq!(account.records(), before, "part of the batch was committed");
    assert_eq!(feed(&account).1, head_before, "the feed moved");
    let known = |conn: &mut Conn| -> i64 {
        conn.client
            .query_one(
                "SELECT count(*) FROM known_records WHERE path LIKE '/Refused%'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(known(&mut conn), 0, "the connector's state moved");

    conn.client
        .batch_execute("DROP TRIGGER refuse_records ON records")
        .unwrap();
    sync(&account).assert_code(0, "the sync after the database accepts again");
    account.assert_converged();
    assert!(assert_gapless(&account, "after the refused batch") > head_before);

    assert!(
        said.contains(&url),
        "a statement refused inside a commit does not name the database {url}: {said}"
    );
    assert!(
        said.contains("refused by the test"),
        "PostgreSQL's reason is not in the message: {said}"
    );
    assert!(
        !said.contains("storage: storage:"),
        "the error's kind is prefixed more than once: {said}"
    );
}
