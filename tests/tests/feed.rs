//! The change feed an indexer consumes: every committed change once, in
//! order, without gaps; replayed, it is the records; a consumer that dies
//! before acknowledging reads the same changes again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tests::{Account, Backend, PASSWORD, PASSWORD_ENV};

/// `host-runner changes ARGS --json --config …` as a child with piped stdout.
fn changes(account: &Account, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .arg("changes")
        .args(args)
        .args(["--json", "--config"])
        .arg(&account.config_path)
        .env(PASSWORD_ENV, PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host-runner runs")
}

/// All the changes a finished `changes` run printed.
fn read_all(account: &Account, args: &[&str]) -> Vec<Value> {
    let out = changes(account, args).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn seqs(changes: &[Value]) -> Vec<i64> {
    changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect()
}

/// A few rounds of edits, each synced.
fn edited_account() -> Account {
    edited_account_in(Backend::Sqlite)
}

fn edited_account_in(backend: Backend) -> Account {
    let account = Account::sample_in(backend);
    account.sync().unwrap();
    let sim = account.sim();
    sim.mkdir("/Feed").unwrap();
    sim.put("/Feed/a.txt", "a").unwrap();
    sim.put("/Feed/b.txt", "b").unwrap();
    account.sync().unwrap();
    sim.put("/Feed/a.txt", "a, longer").unwrap();
    sim.rename("/Feed/b.txt", "/Feed/b renamed.txt").unwrap();
    sim.delete("/Feed/a.txt").unwrap();
    account.sync().unwrap();
    account
}

#[test]
fn replaying_the_feed_gives_the_records() {
    replaying_gives_the_records(Backend::Sqlite);
}

#[test]
fn replaying_the_postgres_feed_gives_the_records() {
    if let Some(backend) = Backend::postgres_or_skip() {
        replaying_gives_the_records(backend);
    }
}

fn replaying_gives_the_records(backend: Backend) {
    let account = edited_account_in(backend);
    let feed = read_all(&account, &["--since", "0", "--limit", "100000"]);
    let n = feed.len() as i64;
    assert_eq!(
        seqs(&feed),
        (1..=n).collect::<Vec<_>>(),
        "gapless, in order"
    );
    let mut replayed: BTreeMap<String, Value> = BTreeMap::new();
    for change in &feed {
        let id = change["external_id"].as_str().unwrap().to_string();
        match change["kind"].as_str().unwrap() {
            "new" | "content-updated" | "metadata-updated" => {
                replayed.insert(id, change["data"].clone());
            }
            "deleted" => {
                assert!(replayed.remove(&id).is_some(), "deleted {id} never seen");
            }
            "user" | "record-group" => {}
            other => panic!("unknown kind {other}"),
        }
    }
    let kinds: Vec<&str> = feed.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for kind in ["user", "record-group", "new", "deleted"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let records = account.records();
    assert_eq!(replayed.len(), records.len());
    for r in records {
        let d = &replayed[&r.external_id];
        assert_eq!(
            (
                d["path"].as_str(),
                d["etag"].as_str(),
                d["size"].as_u64(),
                d["version"].as_i64()
            ),
            (
                Some(r.path.as_str()),
                Some(r.etag.as_str()),
                Some(r.size),
                Some(r.version)
            ),
            "{}",
            r.external_id
        );
        assert_eq!(
            serde_json::to_value(&r.permissions).unwrap(),
            d["permissions"],
            "{}",
            r.external_id
        );
    }
}

#[test]
fn a_consumer_moves_only_when_it_acknowledges() {
    let account = edited_account();
    let first = read_all(&account, &["--consumer", "peek", "--limit", "5"]);
    let again = read_all(&account, &["--consumer", "peek", "--limit", "5"]);
    assert_eq!(seqs(&first), [1, 2, 3, 4, 5]);
    assert_eq!(first, again, "without --ack the position stays");
    let acked = read_all(&account, &["--consumer", "idx", "--limit", "5", "--ack"]);
    let next = read_all(&account, &["--consumer", "idx", "--limit", "5", "--ack"]);
    assert_eq!(seqs(&acked), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&next), [6, 7, 8, 9, 10]);
    // A separate acknowledgement.
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args([
            "changes",
            "ack",
            "--consumer",
            "peek",
            "--seq",
            "3",
            "--config",
        ])
        .arg(&account.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seqs(&read_all(&account, &["--consumer", "peek", "--limit", "1"])),
        [4]
    );
}

/// Lines from a child's stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx
                .send(serde_json::from_str(&line).expect("a JSON line"))
                .is_err()
            {
                break;
            }
        }
    });
    rx
}

/// A consumer SIGKILLed while it follows the feed resumes where it last
/// acknowledged: together its two runs saw every change, in order, and
/// only what it had not acknowledged twice.
#[test]
fn a_consumer_killed_mid_read_resumes_without_missing_anything() {
    killed_consumer_resumes(Backend::Sqlite);
}

#[test]
fn a_postgres_consumer_killed_mid_read_resumes_without_missing_anything() {
    if let Some(backend) = Backend::postgres_or_skip() {
        killed_consumer_resumes(backend);
    }
}

fn killed_consumer_resumes(backend: Backend) {
    // More changes than the pipe holds (64 KiB): once the test stops
    // reading, the reader blocks in a write, so the kill lands mid-read.
    let account = edited_account_in(backend);
    for i in 0..400 {
        account
            .sim()
            .put(&format!("/Feed/many {i}.txt"), "m")
            .unwrap();
    }
    account.sync().unwrap();
    let head = read_all(&account, &["--since", "0", "--limit", "100000"]).len() as i64;
    assert!(head > 400, "{head}");
    let mut reader = changes(
        &account,
        &["--consumer", "k", "--follow", "--ack", "--limit", "7"],
    );
    let lines = lines_of(&mut reader);
    let mut seen = Vec::new();
    while seen.len() < 20 {
        seen.push(
            lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a change")["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    reader.kill().unwrap();
    reader.wait().unwrap();
    // What it wrote before it died, still in the pipe.
    seen.extend(lines.iter().map(|c| c["seq"].as_i64().unwrap()));
    let rest = seqs(&read_all(
        &account,
        &["--consumer", "k", "--limit", "100000", "--ack"],
    ));
    assert!(
        (seen.len() as i64) < head && !rest.is_empty(),
        "the kill did not land mid-read: {} of {head} seen",
        seen.len()
    );
    let resumed_at = rest[0];
    assert!(
        resumed_at <= seen.last().unwrap() + 1,
        "resumed at {resumed_at} after seeing up to {}",
        seen.last().unwrap()
    );
    assert_eq!(rest, (resumed_at..=head).collect::<Vec<_>>());
    assert_eq!(seen, (1..=seen.len() as i64).collect::<Vec<_>>());
    assert!(
        read_all(&account, &["--consumer", "k"]).is_empty(),
        "all acknowledged"
    );
}

/// `--follow` prints what a later sync commits, and ends on SIGTERM.
#[test]
fn following_sees_new_commits() {
    following_sees(Backend::Sqlite);
}

/// With PostgreSQL the follower waits on LISTEN/NOTIFY.
#[test]
fn following_a_postgres_feed_sees_new_commits() {
    if let Some(backend) = Backend::postgres_or_skip() {
        following_sees(backend);
    }
}

fn following_sees(backend: Backend) {
    let account = edited_account_in(backend);
    let head = read_all(&account, &["--since", "0", "--limit", "100000"]).len() as i64;
    let mut follower = changes(&account, &["--since", &head.to_string(), "--follow"]);
    let lines = lines_of(&mut follower);
    account.sim().put("/Feed/late.txt", "late").unwrap();
    account.sync().unwrap();
    // Its folders' new etags and sizes come first, then the file.
    let mut next = head + 1;
    loop {
        let change = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the new changes");
        assert_eq!(change["seq"], next);
        next += 1;
        if change["data"]["path"] == "/Feed/late.txt" {
            assert_eq!(change["kind"], "new");
            break;
        }
    }
    unsafe { libc::kill(follower.id() as i32, libc::SIGTERM) };
    let status = follower.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// After a sync, changes older than `feed_retention_days` (30 by default) go
/// once every consumer acknowledged them, and not one a consumer has not.
#[test]
fn retention_after_a_sync_trims_only_what_every_consumer_acknowledged() {
    let account = Account::sample();
    account.sync().unwrap();
    let head = read_all(&account, &["--since", "0", "--limit", "100000"]).len() as i64;
    let half = head / 2;
    read_all(
        &account,
        &["--consumer", "half", "--limit", &half.to_string(), "--ack"],
    );
    read_all(
        &account,
        &["--consumer", "all", "--limit", "100000", "--ack"],
    );
    // Everything so far is made 40 days old.
    let db = rusqlite::Connection::open(account.database()).unwrap();
    db.execute(
        "UPDATE changes SET committed_at = committed_at - 40 * 86400",
        [],
    )
    .unwrap();
    drop(db);
    account.sim().put("/late.txt", "late").unwrap();
    account.sync().unwrap();
    let left = seqs(&read_all(&account, &["--since", "0", "--limit", "100000"]));
    assert_eq!(
        left.first(),
        Some(&(half + 1)),
        "trimmed up to what `half` acknowledged"
    );
    assert!(
        *left.last().unwrap() > head,
        "the new sync's changes are kept"
    );
    assert_eq!(left, (half + 1..=*left.last().unwrap()).collect::<Vec<_>>());
}
