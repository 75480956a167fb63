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
//! - `staged-flood`: stages 3,000 puts of about 1 MiB each, never committing.
//! - `alias-put`, `alias-changes`, `alias-lookup`, `alias-send-all`: pass one
//!   call a long list whose strings (or bodies) all share the same bytes of
//!   guest memory: little guest memory, gigabytes once the host copies them.
//! - `body-flood`: sends request after request, keeping every answer's body.
//! - `send-all-hoard`: fetches its `/big.bin` with `send-all` again and
//!   again, keeping every buffered answer unread.
//! - `host-forever`: calls the host in a loop that never ends.
//! - `trickle`: reads an answer from its server to the end.

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
            "staged-flood" => staged_flood(),
            "alias-put" => alias_put(),
            "alias-changes" => alias_changes(),
            "alias-lookup" => alias_lookup(),
            "alias-send-all" => alias_send_all(),
            "body-flood" => body_flood(),
            "send-all-hoard" => send_all_hoard(),
            "host-forever" => loop {
                storage::get("cursor");
            },
            "trickle" => trickle(),
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
    // What `download` finds (the connector's known records), and what
    // `records` shows: names that would leave a folder, in paths the host
    // lets in. (Paths it does not let in, the test plants in the database.)
    let known = [
        record("bashrc", "/home/x/.bashrc", "/home/x/.bashrc", 6),
        record("ansi", "/\x1b[2J\x1b]0;owned\x07", "\x1b[2J", 6),
        record("backslash", "/..\\x", "..\\x", 6),
        record("big", "/big.bin", "big.bin", 4),
    ];
    storage::put(&known);
    let changes: Vec<types::RecordChange> = known
        .iter()
        .cloned()
        .map(types::RecordChange::New)
        .collect();
    let sent = records::on_changes(&changes);
    let committed = storage::commit();
    match (sent, committed) {
        (Ok(()), Ok(())) => Ok(wit::SyncSummary {
            mode: wit::SyncMode::Full,
            new: 4,
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

/// A record at `path` with `permissions`, otherwise empty.
fn flood_record(id: String, path: String, permissions: Vec<types::Permission>) -> types::Record {
    types::Record {
        external_id: id,
        parent_external_id: None,
        path,
        name: String::new(),
        is_folder: false,
        etag: String::new(),
        size: 0,
        mime_type: String::new(),
        modified: 0,
        created: None,
        permission_letters: String::new(),
        permissions,
        owner_id: None,
        checksums: vec![],
    }
}

/// A `String` over `text`'s bytes, sharing them: the host sees one more
/// string, the guest spends nothing. Never dropped (see [`never_drop`]).
fn alias(text: &'static str) -> String {
    // SAFETY: the bytes are valid UTF-8 and live forever; the String is
    // never dropped, so they are never freed (or freed twice).
    unsafe { String::from_raw_parts(text.as_ptr().cast_mut(), text.len(), text.len()) }
}

/// The same for bytes.
fn alias_bytes(bytes: &'static [u8]) -> Vec<u8> {
    // SAFETY: as in `alias`.
    unsafe { Vec::from_raw_parts(bytes.as_ptr().cast_mut(), bytes.len(), bytes.len()) }
}

/// Values holding aliases must never free what they share.
fn never_drop<T>(value: T) {
    std::mem::forget(value);
}

fn leaked(text: String) -> &'static str {
    text.leak()
}

/// A result the host should never let the rogue reach.
fn escaped(what: &str) -> Result<wit::SyncSummary, wit::Error> {
    Err(wit::Error::Storage(format!("ESCAPED: {what}")))
}

fn group(id: &'static str) -> types::Permission {
    types::Permission {
        principal: types::Principal::Group(alias(id)),
        level: types::PermissionLevel::Read,
    }
}

fn staged_flood() -> Result<wit::SyncSummary, wit::Error> {
    let id = leaked("g".repeat(1000));
    for i in 0..3000 {
        // 1,000 principals of 1,000 bytes: about 1 MiB for the host to keep.
        let permissions: Vec<types::Permission> = (0..1000).map(|_| group(id)).collect();
        let record = flood_record(i.to_string(), format!("/f{i}"), permissions);
        storage::put(std::slice::from_ref(&record));
        never_drop(record);
    }
    escaped(&format!("staged 3000 MiB; commit: {:?}", storage::commit()))
}

fn alias_put() -> Result<wit::SyncSummary, wit::Error> {
    let path = leaked(format!("/{}", "p".repeat(4000)));
    let records: Vec<types::Record> = (0..90_000)
        .map(|i| flood_record(i.to_string(), alias(path), vec![]))
        .collect();
    storage::put(&records);
    never_drop(records);
    escaped(&format!("put 360 MB; commit: {:?}", storage::commit()))
}

fn alias_changes() -> Result<wit::SyncSummary, wit::Error> {
    let path = leaked(format!("/{}", "p".repeat(4000)));
    let id = leaked("g".repeat(1000));
    let permissions: Vec<types::Permission> = (0..100).map(|_| group(id)).collect();
    let changes: Vec<types::RecordChange> = (0..10_000)
        .map(|i| {
            // SAFETY: the records share one permission list, never dropped.
            let shared = unsafe {
                Vec::from_raw_parts(
                    permissions.as_ptr().cast_mut(),
                    permissions.len(),
                    permissions.len(),
                )
            };
            types::RecordChange::New(flood_record(i.to_string(), alias(path), shared))
        })
        .collect();
    let sent = records::on_changes(&changes);
    never_drop(changes);
    escaped(&format!(
        "on-changes of 1 GB: {sent:?}; commit: {:?}",
        storage::commit()
    ))
}

fn alias_lookup() -> Result<wit::SyncSummary, wit::Error> {
    let id = leaked("i".repeat(1000));
    let ids: Vec<String> = (0..1_000_000).map(|_| alias(id)).collect();
    let found = storage::lookup(&ids);
    never_drop(ids);
    escaped(&format!("looked up 1 GB of ids: {} answers", found.len()))
}

fn base_url() -> String {
    BASE_URL.with(|b| b.borrow().clone())
}

fn alias_send_all() -> Result<wit::SyncSummary, wit::Error> {
    let body: &'static [u8] = vec![b'b'; 1 << 20].leak();
    let url = format!("{}/status.php", base_url());
    let requests: Vec<http::Request> = (0..200)
        .map(|_| http::Request {
            method: "POST".into(),
            url: url.clone(),
            headers: vec![],
            body: Some(alias_bytes(body)),
        })
        .collect();
    let answers = http::send_all(&requests);
    never_drop(requests);
    escaped(&format!(
        "sent 200 MiB of bodies: {} answers",
        answers.len()
    ))
}

/// A `PROPFIND` of the user's root, as a connector sends them.
fn propfind_root() -> http::Request {
    let user = MODE.with(|m| m.borrow().clone());
    http::Request {
        method: "PROPFIND".into(),
        url: format!("{}/remote.php/dav/files/{user}/", base_url()),
        headers: vec![http::Header {
            name: "Depth".into(),
            value: "0".into(),
        }],
        body: None,
    }
}

fn body_flood() -> Result<wit::SyncSummary, wit::Error> {
    let mut kept = Vec::new();
    for _ in 0..100_000 {
        let answer = http::send(&propfind_root())
            .map_err(|e| wit::Error::Http(format!("send failed: {e:?}")))?;
        // Read to the end: the request leaves flight, the handle stays.
        while let Ok(Some(_)) = answer.body.read(1 << 16) {}
        kept.push(answer.body);
    }
    escaped(&format!("holds {} bodies", kept.len()))
}

fn send_all_hoard() -> Result<wit::SyncSummary, wit::Error> {
    let user = MODE.with(|m| m.borrow().clone());
    let url = format!("{}/remote.php/dav/files/{user}/big.bin", base_url());
    let mut kept = Vec::new();
    for _ in 0..1000 {
        for answer in http::send_all(&[request(&url, vec![])]) {
            let answer = answer.map_err(|e| wit::Error::Http(format!("send-all failed: {e:?}")))?;
            if answer.status != 200 {
                return Err(wit::Error::Http(format!("{url}: status {}", answer.status)));
            }
            kept.push(answer.body);
        }
    }
    escaped(&format!("holds {} answers", kept.len()))
}

fn trickle() -> Result<wit::SyncSummary, wit::Error> {
    let url = format!("{}/remote.php/dav/files/trickle/slow.bin", base_url());
    let answer = http::send(&request(&url, vec![]))
        .map_err(|e| wit::Error::Http(format!("send failed: {e:?}")))?;
    let mut read = 0;
    loop {
        match answer.body.read(1 << 16) {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) => return escaped(&format!("read all {read} bytes")),
            Err(e) => return Err(wit::Error::Http(format!("after {read} bytes: {e:?}"))),
        }
    }
}

export!(Rogue);
