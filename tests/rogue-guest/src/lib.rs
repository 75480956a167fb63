//! A deliberately hostile connector component. It speaks the same WIT as the
//! real one, and `init`'s `username` picks which escape it tries in
//! `run-sync`; the host must block every one and stay healthy.
//!
//! - `other-origin PORT`: sends a request to another origin (`127.0.0.1:PORT`).
//! - `credential-header`: sends its own `Authorization` header to its server.
//! - `env`: reads the environment (the app password lives there on the host).
//! - `files PATH`: reads a host file.
//! - `loop`: never returns.
//! - `alloc`: allocates without bound.
//! - `panic`: panics with a message the user must see.
//! - `terminal-escape`: fails with a message full of terminal escapes.
//! - `outside-paths`: emits a record whose path is outside its account.
//! - `bad-names`: commits records whose names and paths would escape a
//!   download folder or drive a terminal, and one whose content outgrows its size.

use std::cell::RefCell;

wit_bindgen::generate!({
    world: "connector",
    path: "../../wit",
});

mod attack;

/// The sync point a test may set to pick the mode instead of the login.
const MODE_KEY: &str = "rogue-mode";

/// It asks for everything this host knows, writes included: only the
/// operator's `grants` may give it more than reads.
const MANIFEST: &[u8] = br#"{"capabilities":["server.status","server.capabilities","user.read","activity.read","shares.read","files.read","files.search","files.write","shares.write"]}"#;

#[unsafe(link_section = "nextcloud-connector:capabilities")]
#[used]
static CAPABILITIES: [u8; MANIFEST.len()] = {
    let mut bytes = [0u8; MANIFEST.len()];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = MANIFEST[i];
        i += 1;
    }
    bytes
};

use exports::nextcloud::connector::lifecycle as wit;
use nextcloud::connector::{content, http, records, storage, types};

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
    static BASE_URL: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Rogue;

fn request(url: &str, headers: Vec<http::Header>) -> http::Request {
    http::Request {
        method: "GET".into(),
        url: url.into(),
        headers,
        body: None,
    }
}

fn outcome(
    result: Result<http::Response, http::HttpError>,
) -> Result<wit::SyncSummary, wit::Error> {
    match result {
        Ok(r) => Err(wit::Error::Http(format!(
            "ESCAPED: the host sent it and got {}",
            r.status
        ))),
        Err(e) => Err(wit::Error::Http(format!("blocked: {e:?}"))),
    }
}

impl wit::Guest for Rogue {
    fn init(config: wit::Config) -> Result<(), wit::Error> {
        MODE.with(|m| *m.borrow_mut() = config.username);
        BASE_URL.with(|b| *b.borrow_mut() = config.base_url);
        Ok(())
    }

    fn test_connection() -> Result<wit::ConnectionInfo, wit::Error> {
        Err(wit::Error::Config(
            "a rogue has no connection to test".into(),
        ))
    }

    fn run_sync() -> Result<wit::SyncSummary, wit::Error> {
        // A sync point the test stored wins over the login, which a real
        // server needs to be a real user.
        let mode = storage::get(MODE_KEY).unwrap_or_else(|| MODE.with(|m| m.borrow().clone()));
        let (what, arg) = mode.split_once(' ').unwrap_or((mode.as_str(), ""));
        match what {
            "attack" => attack(arg),
            "other-origin" => outcome(http::send(&request(
                &format!("http://127.0.0.1:{arg}/steal"),
                vec![],
            ))),
            "credential-header" => outcome(http::send(&request(
                &format!("{}/status.php", BASE_URL.with(|b| b.borrow().clone())),
                vec![http::Header {
                    name: "Authorization".into(),
                    value: "Basic cm9ndWU6cm9ndWU=".into(),
                }],
            ))),
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                Err(wit::Error::Config(format!("env: {vars:?}")))
            }
            "files" => match std::fs::read(arg) {
                Ok(bytes) => Err(wit::Error::Config(format!(
                    "ESCAPED: read {} bytes",
                    bytes.len()
                ))),
                Err(e) => Err(wit::Error::Config(format!("blocked: {e}"))),
            },
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 * 1024 * 1024]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("rogue guest panicked on purpose"),
            "terminal-escape" => Err(wit::Error::Config(
                "\u{1b}]0;owned\u{7}\u{1b}[2Jscreen cleared".into(),
            )),
            "outside-paths" => {
                let record = types::Record {
                    external_id: "1".into(),
                    parent_external_id: None,
                    path: "/../../etc/passwd".into(),
                    name: "passwd".into(),
                    is_folder: false,
                    etag: "x".into(),
                    size: 1,
                    mime_type: "text/plain".into(),
                    modified: 0,
                    created: None,
                    permission_letters: String::new(),
                    permissions: vec![],
                    owner_id: None,
                    checksums: vec![],
                };
                let sent = records::on_changes(&[types::RecordChange::New(record)]);
                let committed = storage::commit();
                Err(wit::Error::Storage(format!(
                    "on-changes: {sent:?}; commit: {committed:?}"
                )))
            }
            "bad-names" => bad_names(),
            other => Err(wit::Error::Config(format!("unknown rogue mode {other:?}"))),
        }
    }

    fn stream_record(
        record: types::Record,
        destination: &content::Destination,
        _options: wit::StreamOptions,
    ) -> Result<wit::StreamInfo, wit::Error> {
        if MODE.with(|m| m.borrow().as_str() == "bad-names") {
            return Ok(stream_bad_names(&record, destination));
        }
        Err(wit::Error::Content("a rogue streams nothing".into()))
    }
}

/// `bad-names`: what a download must neither name a file after nor print
/// raw. `download` finds what the connector `put` (unchecked); `records`
/// shows what `on-changes` let in (paths inside the account only).
fn bad_names() -> Result<wit::SyncSummary, wit::Error> {
    let record = |id: &str, path: &str, name: &str, size: u64| types::Record {
        external_id: id.into(),
        parent_external_id: None,
        path: path.into(),
        name: name.into(),
        is_folder: false,
        etag: format!("etag-{id}"),
        size,
        mime_type: "text/plain".into(),
        modified: 0,
        created: None,
        permission_letters: String::new(),
        permissions: vec![],
        owner_id: None,
        checksums: vec![],
    };
    // What `download` finds (the connector's known records) ...
    let known = [
        record("bashrc", "/home/x/.bashrc", "/home/x/.bashrc", 6),
        record("ansi", "/\x1b[2J\x1b]0;owned\x07", "\x1b[2J", 6),
        record("backslash", "/..\\x", "..\\x", 6),
        record("big", "/big.bin", "big.bin", 4),
        record("dotdot", "/../x", "../x", 6),
        record("nul", "/a\0b", "a\0b", 6),
        record("relative", "x", "x", 6),
        record("root", "/", "", 6),
    ];
    storage::put(&known);
    // ... and what `records` shows: those whose paths the sink lets in.
    let changes: Vec<types::RecordChange> = known[..4]
        .iter()
        .cloned()
        .map(types::RecordChange::New)
        .collect();
    let sent = records::on_changes(&changes);
    let committed = storage::commit();
    match (sent, committed) {
        (Ok(()), Ok(())) => Ok(wit::SyncSummary {
            mode: wit::SyncMode::Full,
            new: 8,
            content_updated: 0,
            metadata_updated: 0,
            deleted: 0,
            unchanged: 0,
        }),
        (sent, committed) => Err(wit::Error::Storage(format!(
            "on-changes: {sent:?}; commit: {committed:?}"
        ))),
    }
}

/// The record's size in bytes, except `big`, which goes on past it
/// whatever the destination says; the report claims only what was taken.
fn stream_bad_names(record: &types::Record, destination: &content::Destination) -> wit::StreamInfo {
    let mut chunks = vec![vec![b'r'; record.size as usize]];
    if record.external_id == "big" {
        chunks.push(vec![b'!'; 1 << 20]);
    }
    let written = chunks
        .iter()
        .filter(|c| destination.write(c).is_ok())
        .map(|c| c.len() as u64)
        .sum();
    wit::StreamInfo {
        written,
        etag: Some(record.etag.clone()),
        resumed: false,
        verified: None,
        checksum: None,
    }
}

/// Sends the requests of one attack (see `attack.rs`); each must come back
/// refused. The error lists what escaped and what was blocked.
fn attack(name: &str) -> Result<wit::SyncSummary, wit::Error> {
    let base = BASE_URL.with(|b| b.borrow().clone());
    let user = whoami(&base)?;
    let sent: Vec<(String, Result<http::Response, http::HttpError>)> = if name == "send-all-write" {
        let requests = attack::send_all_requests(&base, &user);
        let what: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect();
        what.into_iter().zip(http::send_all(&requests)).collect()
    } else {
        attack::requests(name, &base, &user)
            .ok_or_else(|| wit::Error::Config(format!("unknown attack {name:?}")))?
            .into_iter()
            .map(|r| (format!("{} {}", r.method, r.url), http::send(&r)))
            .collect()
    };
    let mut escaped = Vec::new();
    let mut blocked = Vec::new();
    for (what, result) in sent {
        match result {
            Ok(r) => escaped.push(format!("{what} -> {}", r.status)),
            Err(e) => blocked.push(format!("{what}: {e:?}")),
        }
    }
    Err(wit::Error::Http(if escaped.is_empty() {
        format!("blocked all {}: {blocked:?}", blocked.len())
    } else {
        format!("ESCAPED: {escaped:?}; blocked: {blocked:?}")
    }))
}

/// The user id, as a connector may learn it.
fn whoami(base: &str) -> Result<String, wit::Error> {
    let response = http::send(&request(
        &format!("{base}/ocs/v2.php/cloud/user?format=json"),
        vec![
            http::Header {
                name: "OCS-APIRequest".into(),
                value: "true".into(),
            },
            http::Header {
                name: "Accept".into(),
                value: "application/json".into(),
            },
        ],
    ))
    .map_err(|e| wit::Error::Http(format!("whoami: {e:?}")))?;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .body
        .read(65536)
        .map_err(|e| wit::Error::Http(format!("whoami: {e:?}")))?
    {
        body.extend(chunk);
    }
    attack::user_id(&String::from_utf8_lossy(&body))
        .ok_or_else(|| wit::Error::Protocol("whoami: no user id".into()))
}

export!(Rogue);
