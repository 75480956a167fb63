//! Two `host-runner run` workers share both users of the real Nextcloud
//! through one PostgreSQL database while random real edits land; one worker
//! is SIGKILLed and replaced half-way. The records converge on the server's
//! listing, and the feed holds every change once, in order, with deletions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use tests::nextcloud::RealServer;
use tests::remote::{assert_mirrors, mirrors};
use tests::{connector_wasm, edits, scenario};

use super::server;

const ROUNDS: u64 = 6;
const EDITS: u64 = 4;
/// How long a round may take to show up in the records: a sync every
/// 1.2 s, a few seconds each on the real server.
const CONVERGE: Duration = Duration::from_secs(120);

fn worker(config: &Path, server: &RealServer) -> Child {
    Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(["run", "--json", "--config"])
        .arg(config)
        .arg("--component")
        .arg(connector_wasm())
        .env("ALICE_PW", &server.users[0].1)
        .env("BOB_PW", &server.users[1].1)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("host-runner run starts")
}

fn records(config: &host_runner::Config) -> Vec<host_runner::SinkRecord> {
    host_runner::list_records(config).unwrap_or_default()
}

/// Waits, at most [`CONVERGE`], until the account's records equal the
/// server's listing; then asserts it in full.
fn converge(config: &host_runner::Config, files: &tests::nextcloud::Dav, what: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let listing = files.listing().unwrap();
        if mirrors(&records(config), &listing) {
            assert_mirrors(&records(config), &listing);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the records did not converge on the listing in {CONVERGE:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Replays an account's whole feed: each change once (a `new` only for an
/// id not live, an update or `deleted` only for one that is), gapless and
/// in order; the result, and how many deletions it saw.
fn replay(config: &host_runner::Config) -> (BTreeMap<String, Value>, usize) {
    let store = host_runner::Store::connect_existing(config).unwrap();
    let feed = store.feed().read(0, u32::MAX).unwrap();
    let mut live: BTreeMap<String, Value> = BTreeMap::new();
    let mut deletions = 0;
    for (i, change) in feed.iter().enumerate() {
        assert_eq!(change.seq, i as i64 + 1, "gapless and in order");
        let id = change.external_id.clone();
        match change.kind.as_str() {
            "new" => assert!(
                live.insert(id.clone(), change.data.clone()).is_none(),
                "change {}: `new` for {id}, which is live",
                change.seq
            ),
            "content-updated" | "metadata-updated" => assert!(
                live.insert(id.clone(), change.data.clone()).is_some(),
                "change {}: an update of {id}, which is not live",
                change.seq
            ),
            "deleted" => {
                deletions += 1;
                assert!(
                    live.remove(&id).is_some(),
                    "change {}: {id} deleted twice, or never new",
                    change.seq
                );
            }
            _ => {}
        }
    }
    (live, deletions)
}

#[test]
fn two_workers_on_postgres_mirror_the_real_server_and_feed_every_change_once() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let Some(pg) = tests::postgres::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.create_database("real_workers");
    std::fs::write(dir.path().join("db-password"), pg.password()).unwrap();
    let account = |name: &str, user: usize, env: &str| {
        format!(
            "[[account]]\nname = \"{name}\"\nbase_url = \"{}\"\nusername = \"{}\"\napp_password_env = \"{env}\"\ndatabase = \"{url}\"\ndatabase_password_file = \"db-password\"\n",
            server.url, server.users[user].0
        )
    };
    let config_path = dir.path().join("workers.toml");
    std::fs::write(
        &config_path,
        format!(
            "interval_minutes = 0.02\nlease_seconds = 4\n{}{}",
            account("alice", 0, "ALICE_PW"),
            account("bob", 1, "BOB_PW")
        ),
    )
    .unwrap();
    let file = host_runner::ConfigFile::load(&config_path).unwrap();
    let configs: Vec<host_runner::Config> = file
        .accounts
        .iter()
        .zip(&server.users)
        .map(|(c, (_, pw))| c.clone().with_secret(host_runner::Secret::new(pw.clone())))
        .collect();

    let alice = server.dav(0);
    let bob = server.dav(1);
    scenario::build_tree(&alice, &server.users[1].0).unwrap();
    bob.mkdir("/Bob's").unwrap();
    bob.put("/Bob's/notes.txt", b"notes").unwrap();

    let mut workers = vec![worker(&config_path, &server), worker(&config_path, &server)];
    converge(&configs[0], &alice, "alice, first sync");
    converge(&configs[1], &bob, "bob, first sync");

    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[13; 32]),
    );
    let mut deleted = 0;
    for round in 0..ROUNDS {
        for i in 0..EDITS {
            let edit = edits::edit().new_tree(&mut runner).unwrap().current();
            let done = edits::apply(&alice, &edit, round * EDITS + i, &[]);
            deleted += usize::from(done.trashed.is_some());
        }
        bob.put(&format!("/Bob's/round {round}.txt"), b"r").unwrap();
        if round == ROUNDS / 2 {
            // A worker dies mid-flight, whatever it was doing; another
            // starts. Its accounts pass on when its connection ends.
            workers[0].kill().unwrap();
            workers[0].wait().unwrap();
            workers[0] = worker(&config_path, &server);
        }
        converge(&configs[0], &alice, &format!("alice, round {round}"));
        converge(&configs[1], &bob, &format!("bob, round {round}"));
        eprintln!("round {round}: converged");
    }
    for w in &mut workers {
        unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
    }
    for w in &mut workers {
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker ended badly: {status:?}");
    }

    for (config, files) in configs.iter().zip([&alice, &bob]) {
        let (live, deletions) = replay(config);
        let records = records(config);
        assert_eq!(
            live.keys().collect::<Vec<_>>(),
            {
                let mut ids: Vec<&String> = records.iter().map(|r| &r.external_id).collect();
                ids.sort();
                ids
            },
            "{}: the replayed feed is not the records",
            config.name
        );
        for r in &records {
            assert_eq!(live[&r.external_id]["path"], r.path.as_str());
            assert_eq!(live[&r.external_id]["etag"], r.etag.as_str());
        }
        assert_mirrors(&records, &files.listing().unwrap());
        if config.name == "alice" && deleted > 0 {
            assert!(deletions > 0, "alice's feed shows no deletion");
        }
        eprintln!(
            "{}: {} records, feed replayed, {deletions} deletions",
            config.name,
            records.len()
        );
    }
    let status = host_runner::status::status(&file);
    for s in &status {
        assert_eq!(
            s.last_success.as_ref().and_then(|r| r.outcome.as_deref()),
            Some("ok")
        );
        assert!(
            s.holder.is_none(),
            "{} still held: {:?}",
            s.account,
            s.holder
        );
    }
    let holders: std::collections::BTreeSet<String> = configs
        .iter()
        .flat_map(|c| {
            host_runner::Store::connect_existing(c)
                .unwrap()
                .sync_runs(1000)
                .unwrap()
        })
        .map(|r| r.holder)
        .collect();
    eprintln!("syncs by {} workers: {holders:?}", holders.len());
}
