//! Conformance of the simulator to a real Nextcloud 32: one script of
//! operations builds the same state on both (through [`Files`]), the same
//! requests go to both, and the answers' **shapes** must be equal.
//!
//! What is compared, for every request:
//!
//! - the status code;
//! - the headers that matter to a client of the protocol. For WebDAV:
//!   `Content-Type` and `DAV` (the connector checks neither, but a server
//!   that is not Sabre would differ here first), `WWW-Authenticate` on a
//!   401. For GET and HEAD of a file (the download): `Content-Type`,
//!   `Content-Length` (presence and value: the contents are the same),
//!   `Content-Range`, `ETag` and `OC-ETag` (quoting, length, whether they
//!   agree), `Last-Modified`, `Accept-Ranges` (the resume logic relies on
//!   its absence), `Content-Disposition`, `OC-Checksum`, `OC-FileId`. For
//!   OCS: `Content-Type` and `WWW-Authenticate`. For the Activity API: the
//!   paging headers the incremental sync follows (`X-Activity-First-Known`,
//!   `X-Activity-Last-Given` and whether it is the last id of the page,
//!   `Link` with its query) and `ETag`. Headers no client reads (cookies,
//!   `X-Powered-By`, `X-Request-Id`, `X-Debug-Token`, CSP, `Vary`,
//!   `Connection`, `Transfer-Encoding` versus a closed connection) are left
//!   out: the PHP built-in server and the simulator's HTTP stack differ
//!   there by construction;
//! - XML bodies element by element: qualified names as written (prefixes),
//!   namespace declarations, order, empty versus open elements, text with
//!   volatile values masked (etags keep their quoting and length, dates
//!   their format, file ids become the path the item had when first seen);
//!   so the 200/404 propstat split of every property is compared;
//! - JSON bodies key by key with value types; values too, but for ids
//!   (mapped to the same labels), times, activity ids and the base URL.
//!   Object key order is not compared (serde reads the real server's JSON
//!   into a sorted map; no client depends on it);
//! - other bodies by length and content.
//!
//! Relaxed on purpose, each where it is done: the order of SEARCH results
//! ([`View::Search`]), JSON object key order, and the entries of an
//! activity page after an unknown `since` ([`View::ActivityHead`]: they are
//! the account's whole history, which the simulator does not share).
//!
//! Every difference must be in [`KNOWN`], with why it does not matter; an
//! entry that no longer matches anything fails the test too.
//!
//! The PUT, MKCOL, MOVE, COPY and DELETE the script sends to the real server
//! are not compared: the simulator is changed through its API, and the
//! connector never writes (the host refuses writes unless the operator grants
//! them; the simulator serves them so that an escape would show, see
//! `least_privilege`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use connector::checksum::{Algorithm, Hasher};
use connector::propfind::PROPFIND_BODY;
use nextcloud_sim::{Server, SimOptions, Simulator, UserSpec};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;
use tests::files::{Files, SimFiles};
use tests::nextcloud::{Dav, RealServer, Reply};
use tests::scenario::content;

use super::server;

/// A difference between the two servers that is accepted, and why.
struct Known {
    /// A part of the check's label (`""`: any check).
    check: &'static str,
    /// A part of the differing line.
    line: &'static str,
    why: &'static str,
}

/// The differences that remain, each justified.
const KNOWN: &[Known] = &[Known {
    check: "GET missing file",
    line: "header Content-Length:",
    why: "Sabre sends an error body without a length and PHP's built-in server ends it by \
          closing the connection; the simulator's HTTP stack sizes a small body. A client \
          reads to the end either way, and the connector reads no 404 body",
}];

// ---------------------------------------------------------------------------
// The two servers.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Alice,
    Bob,
    /// Alice's login with a wrong password: sent once to the real server.
    Wrong,
    /// No credentials at all (no failed login is counted).
    Anonymous,
}

struct Side {
    name: &'static str,
    base: String,
    users: [String; 2],
    dav: [Dav; 2],
    wrong: Dav,
    files: [Box<dyn Files>; 2],
    /// File id → the label both sides agree on (a path when first seen).
    ids: RefCell<BTreeMap<u64, String>>,
    /// Share id → its label.
    shares: RefCell<BTreeMap<u64, String>>,
    /// The simulator, on its side: what `Files` cannot do.
    sim: Option<Simulator>,
    _server: Option<Server>,
}

impl Side {
    fn real(server: &RealServer) -> Side {
        let (alice, bob) = (server.dav(0), server.dav(1));
        Side {
            name: "real",
            base: server.url.clone(),
            users: [server.users[0].0.clone(), server.users[1].0.clone()],
            wrong: Dav::new(&server.url, &server.users[0].0, "not-the-app-password"),
            files: [Box::new(alice.clone()), Box::new(bob.clone())],
            dav: [alice, bob],
            ids: RefCell::default(),
            shares: RefCell::default(),
            sim: None,
            _server: None,
        }
    }

    /// A simulator with the real server's users (ids, display names, e-mail
    /// addresses), so that the answers can be equal.
    fn sim(real: &Side) -> Result<Side> {
        let who = |i: usize| -> Result<(String, Option<String>)> {
            let user = real.dav[i]
                .ocs("GET", "cloud/user", &[])?
                .json()
                .context("cloud/user of the real server")?;
            let data = &user["ocs"]["data"];
            Ok((
                data["displayname"].as_str().unwrap_or_default().to_string(),
                data["email"].as_str().map(str::to_string),
            ))
        };
        let ((alice_name, alice_mail), (bob_name, bob_mail)) = (who(0)?, who(1)?);
        let [alice, bob] = real.users.clone();
        let sim = Simulator::new(SimOptions {
            user_id: alice.clone(),
            login: alice.clone(),
            display_name: alice_name,
            email: alice_mail,
            app_password: tests::PASSWORD.into(),
            ..SimOptions::default()
        });
        let bob_password = "bob-conformance-app-password";
        sim.add_user(UserSpec {
            user_id: bob.clone(),
            login: bob.clone(),
            display_name: bob_name,
            email: bob_mail,
            app_password: bob_password.into(),
        })?;
        let server = Server::start(sim.clone())?;
        let base = server.base_url();
        let files = |user: &str| -> Box<dyn Files> {
            Box::new(SimFiles {
                sim: sim.clone(),
                user: user.to_string(),
            })
        };
        Ok(Side {
            name: "sim",
            dav: [
                Dav::new(&base, &alice, tests::PASSWORD),
                Dav::new(&base, &bob, bob_password),
            ],
            wrong: Dav::new(&base, &alice, "not-the-app-password"),
            files: [files(&alice), files(&bob)],
            users: [alice, bob],
            base,
            ids: RefCell::default(),
            shares: RefCell::default(),
            sim: Some(sim),
            _server: Some(server),
        })
    }

    /// 0 for the real server, 1 for the simulator: where a pair of values
    /// taken from both keeps this side's.
    fn index(&self) -> usize {
        usize::from(self.name == "sim")
    }

    fn alice(&self) -> &dyn Files {
        &*self.files[0]
    }

    fn bob(&self) -> &dyn Files {
        &*self.files[1]
    }

    fn dav_path(&self, who: usize, path: &str) -> String {
        let url = self.dav[who].url_of(path);
        url[self.base.len()..].to_string()
    }

    /// Labels every id `who` lists that has none yet.
    fn label_listing(&self, who: usize) -> Result<()> {
        let prefix = if who == 0 { "" } else { "bob:" };
        let listing = self.dav[who].listing()?;
        let mut ids = self.ids.borrow_mut();
        for (id, entry) in listing {
            ids.entry(id)
                .or_insert_with(|| format!("{prefix}{}", entry.path));
        }
        Ok(())
    }

    fn label(&self, id: u64, label: &str) {
        self.ids
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| label.to_string());
    }

    fn id_of(&self, label: &str) -> u64 {
        self.ids
            .borrow()
            .iter()
            .find(|(_, l)| *l == label)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("{}: no id labelled {label}", self.name))
    }

    fn id_label(&self, id: u64) -> String {
        match self.ids.borrow().get(&id) {
            Some(label) => format!("#{{{label}}}"),
            None => "#{?}".into(),
        }
    }

    fn share(&self, path: &str, with: usize, permissions: u32) -> Result<()> {
        let id = self
            .alice()
            .share_with_user(path, &self.users[with], permissions)
            .map_err(|e| {
                if e.to_string().contains("HTTP 429") {
                    e.context(
                        "the real server lets a user create 20 shares in 10 minutes \
                         (UserRateLimit on ShareAPIController::createShare); this test makes 4",
                    )
                } else {
                    e
                }
            })?;
        let mut shares = self.shares.borrow_mut();
        let n = shares.len();
        shares.insert(id, format!("share{n} {path}"));
        Ok(())
    }

    fn put(&self, who: usize, path: &str, content: &[u8]) -> Result<()> {
        let id = self.files[who].put(path, content)?;
        let prefix = if who == 0 { "" } else { "bob:" };
        self.label(id, &format!("{prefix}{path}"));
        Ok(())
    }

    /// Uploads a file with a checksum, as a client sending `OC-Checksum`
    /// does (the simulator is given the checksum directly).
    fn put_checked(&self, path: &str, content: &[u8]) -> Result<()> {
        let mut hasher = Hasher::new(Algorithm::Sha1);
        hasher.update(content);
        let checksum = hasher.finish().to_string();
        match &self.sim {
            Some(sim) => {
                sim.put(path, content.to_vec())?;
                sim.set_checksum(path, Some(&checksum))?;
            }
            None => {
                let url = self.dav[0].url_of(path);
                let reply = self.dav[0].send(
                    "PUT",
                    &url,
                    &[("OC-Checksum", &checksum), ("Expect", "")],
                    content,
                )?;
                if reply.status != 201 {
                    return Err(anyhow!("PUT {path}: HTTP {}", reply.status));
                }
            }
        }
        Ok(())
    }

    /// The newest activity id of the `files` stream, as the connector reads it.
    fn newest_activity(&self, who: usize) -> Result<u64> {
        let reply = self.dav[who].send(
            "GET",
            &activity_path("sort=desc&limit=1"),
            &OCS_HEADERS_SENT,
            b"",
        )?;
        if reply.status != 200 {
            return Err(anyhow!(
                "{}: newest activity: HTTP {}",
                self.name,
                reply.status
            ));
        }
        reply.json()?["ocs"]["data"][0]["activity_id"]
            .as_u64()
            .ok_or_else(|| anyhow!("{}: no activity id", self.name))
    }

    fn send(&self, req: &Req) -> Result<Reply> {
        let headers: Vec<(&str, &str)> =
            req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match req.who {
            Who::Alice => self.dav[0].send(req.method, &req.path, &headers, &req.body),
            Who::Bob => self.dav[1].send(req.method, &req.path, &headers, &req.body),
            Who::Wrong => self.wrong.send(req.method, &req.path, &headers, &req.body),
            Who::Anonymous => anonymous(&self.base, req, &headers),
        }
    }
}

/// A request without credentials (`Dav` always sends some).
fn anonymous(base: &str, req: &Req, headers: &[(&str, &str)]) -> Result<Reply> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(req.method)
        .uri(format!("{base}{}", req.path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent.run(request.body(req.body.clone())?)?;
    Ok(Reply {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: response.body_mut().read_to_vec()?,
    })
}

struct Req {
    who: Who,
    method: &'static str,
    /// Below the base URL.
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Req {
    fn new(who: Who, method: &'static str, path: String) -> Req {
        Req {
            who,
            method,
            path,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    fn propfind(who: Who, path: String, depth: &str, body: &str) -> Req {
        Req::new(who, "PROPFIND", path)
            .header("Depth", depth)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body)
    }

    /// The Activity API's `files` stream, as the connector reads it.
    fn activity(who: Who, query: impl AsRef<str>) -> Req {
        let mut req = Req::new(who, "GET", activity_path(query.as_ref()));
        for (k, v) in OCS_HEADERS_SENT {
            req = req.header(k, v);
        }
        req
    }

    fn ocs(who: Who, path: &str) -> Req {
        let mut req = Req::new(who, "GET", format!("/ocs/v2.php/{path}"));
        for (k, v) in OCS_HEADERS_SENT {
            req = req.header(k, v);
        }
        req
    }
}

/// What the connector sends with every OCS request.
const OCS_HEADERS_SENT: [(&str, &str); 2] =
    [("OCS-APIRequest", "true"), ("Accept", "application/json")];

fn activity_path(query: &str) -> String {
    format!("/ocs/v2.php/apps/activity/api/v2/activity/files?format=json&{query}")
}

fn search(side: &Side, who: Who, labels: &[&str]) -> Req {
    let user = &side.users[if who == Who::Bob { 1 } else { 0 }];
    let ids: Vec<u64> = labels
        .iter()
        .map(|l| match *l {
            "unknown" => 999_999_999,
            l => side.id_of(l),
        })
        .collect();
    Req::new(who, "SEARCH", "/remote.php/dav/".into())
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(connector::search::body(user, &ids))
}

// ---------------------------------------------------------------------------
// Shapes.

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Dav,
    /// A SEARCH answer, whose responses come in no defined order: the real
    /// server's order is its database's (home storage first, then each
    /// share mount); the connector matches results by file id.
    Search,
    Get,
    Ocs,
    /// Only the parts of the capabilities the connector reads.
    Capabilities,
    Activity,
    /// Status and headers only: the entries depend on the account's whole
    /// history, which the simulator does not share.
    ActivityHead,
}

const DAV_HEADERS: &[&str] = &["Content-Type", "DAV", "WWW-Authenticate"];
const GET_HEADERS: &[&str] = &[
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "ETag",
    "OC-ETag",
    "Last-Modified",
    "Accept-Ranges",
    "Content-Disposition",
    "OC-Checksum",
    "OC-FileId",
];
const OCS_HEADERS: &[&str] = &["Content-Type", "WWW-Authenticate"];
const ACTIVITY_HEADERS: &[&str] = &[
    "Content-Type",
    "X-Activity-First-Known",
    "X-Activity-Last-Given",
    "Link",
    "ETag",
];

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `"<hex:N>"`: an etag's quoting and length.
fn etag_shape(v: &str) -> String {
    let (open, inner, close) = match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => ("\"", inner, "\""),
        None => ("", v, ""),
    };
    if is_hex(inner) {
        format!("{open}<hex:{}>{close}", inner.len())
    } else {
        format!("{open}<{inner}>{close}")
    }
}

/// `Sun, 29 Nov 2026 13:22:19 GMT`.
fn http_date_shape(v: &str) -> String {
    let b = v.as_bytes();
    let ok = v.len() == 29
        && v.ends_with(" GMT")
        && b[3] == b','
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[12..16].iter().all(u8::is_ascii_digit);
    if ok {
        "<http-date>".into()
    } else {
        format!("<not an HTTP date: {v}>")
    }
}

/// `2026-11-29T13:22:19+00:00`.
fn atom_shape(v: &str) -> String {
    let ok = v.len() == 25 && v.as_bytes()[10] == b'T' && v.ends_with("+00:00");
    if ok {
        "<atom>".into()
    } else {
        format!("<not an ATOM date: {v}>")
    }
}

fn digits(v: &str) -> Option<u64> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// Replaces the base URL and file ids in links (`/f/123`).
fn mask_text(side: &Side, v: &str) -> String {
    let v = v.replace(&side.base, "<base>");
    let mut out = String::new();
    let mut rest = v.as_str();
    while let Some(i) = rest.find("/f/") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match digits(&rest[..end]) {
            Some(id) => out.push_str(&side.id_label(id)),
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn header_lines(side: &Side, view: View, reply: &Reply, body: Option<&Value>) -> Vec<String> {
    let names = match view {
        View::Dav | View::Search => DAV_HEADERS,
        View::Get => GET_HEADERS,
        View::Ocs | View::Capabilities => OCS_HEADERS,
        View::Activity | View::ActivityHead => ACTIVITY_HEADERS,
    };
    let last_id = body
        .and_then(|b| b["ocs"]["data"].as_array())
        .and_then(|d| d.last())
        .and_then(|e| e["activity_id"].as_u64());
    let last_given = reply.header("X-Activity-Last-Given").and_then(digits);
    names
        .iter()
        .map(|name| {
            let Some(v) = reply.header(name) else {
                return format!("header {name}: (absent)");
            };
            let shown = match *name {
                "ETag" if matches!(view, View::Activity | View::ActivityHead) => {
                    if v.len() == 32 && is_hex(v) {
                        "<md5>".into()
                    } else {
                        format!("<{v}>")
                    }
                }
                "ETag" => etag_shape(v),
                "OC-ETag" if reply.header("ETag") == Some(v) => {
                    format!("{} (= ETag)", etag_shape(v))
                }
                "OC-ETag" => etag_shape(v),
                "Last-Modified" => http_date_shape(v),
                "OC-FileId" => "<file id>".into(),
                "X-Activity-First-Known" => match digits(v) {
                    Some(_) => "<activity id>".into(),
                    None => format!("<{v}>"),
                },
                "X-Activity-Last-Given" => match (digits(v), last_id) {
                    (Some(a), Some(b)) if a == b => "<the page's last activity id>".into(),
                    (Some(_), _) => "<another activity id>".into(),
                    _ => format!("<{v}>"),
                },
                "Link" => {
                    let mut v = v.replace(&side.base, "<base>");
                    if let Some(i) = v.find("since=") {
                        let rest = &v[i + 6..];
                        let end = rest
                            .find(|c: char| !c.is_ascii_digit())
                            .unwrap_or(rest.len());
                        let since = digits(&rest[..end]);
                        let label = if since.is_some() && since == last_given {
                            "<last given>"
                        } else {
                            "<another id>"
                        };
                        v = format!("{}{label}{}", &v[..i + 6], &rest[end..]);
                    }
                    v
                }
                _ => mask_text(side, v),
            };
            format!("header {name}: {shown}")
        })
        .collect()
}

/// The volatile text of an XML element, masked by its local name.
fn mask_xml_text(side: &Side, local: &str, text: &str) -> String {
    match local {
        "getetag" => etag_shape(text),
        "getlastmodified" => http_date_shape(text),
        "fileid" => match digits(text) {
            Some(id) => side.id_label(id),
            None => format!("<{text}>"),
        },
        "id" => {
            // `%08d` file id and the instance id.
            let end = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            match digits(&text[..end]) {
                Some(id) if end >= 8 && end < text.len() => {
                    format!("{}<instance id>", side.id_label(id))
                }
                _ => format!("<{text}>"),
            }
        }
        "upload_time" => match digits(text) {
            Some(t) if t > 1_000_000_000 => "<unix time>".into(),
            _ => text.to_string(),
        },
        _ => mask_text(side, text),
    }
}

fn xml_lines(side: &Side, body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut reader = Reader::from_reader(body);
    // Open elements: (local name, index of their line, text so far).
    let mut stack: Vec<(String, usize, String)> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                out.push(format!("malformed XML: {e}"));
                break;
            }
        };
        let indent = "  ".repeat(stack.len());
        match event {
            Event::Decl(d) => out.push(format!("<?{}?>", String::from_utf8_lossy(&d))),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut line = format!("{indent}{}", String::from_utf8_lossy(e.name().as_ref()));
                for a in e.attributes().flatten() {
                    line.push_str(&format!(
                        " {}=\"{}\"",
                        String::from_utf8_lossy(a.key.as_ref()),
                        String::from_utf8_lossy(&a.value)
                    ));
                }
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if matches!(event, Event::Empty(_)) {
                    line.push_str(" (empty)");
                    out.push(line);
                } else {
                    out.push(line);
                    stack.push((local, out.len() - 1, String::new()));
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.2
                        .push_str(&t.decode().map(|c| c.into_owned()).unwrap_or_default());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    top.2.push_str(match name.as_str() {
                        "quot" => "\"",
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "apos" => "'",
                        _ => "<entity>",
                    });
                }
            }
            Event::End(_) => {
                if let Some((local, at, text)) = stack.pop() {
                    let text = text.trim();
                    if !text.is_empty() {
                        let masked = mask_xml_text(side, &local, text);
                        out[at].push_str(&format!(" = {masked}"));
                    }
                }
            }
            Event::Eof => break,
            Event::DocType(_) => out.push("<!DOCTYPE>".into()),
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        out.push("truncated XML".into());
    }
    out
}

/// One line per value: `path: type value`, volatile values masked.
fn json_lines(side: &Side, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    json_walk(side, "", "", value, None, &mut out);
    out
}

fn json_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("int {n}"),
        Value::Number(n) => format!("float {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) | Value::Object(_) => unreachable!("scalars only"),
    }
}

fn json_walk(
    side: &Side,
    path: &str,
    key: &str,
    v: &Value,
    parent: Option<&serde_json::Map<String, Value>>,
    out: &mut Vec<String>,
) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let masked = |shown: String| format!("{} {shown}", kind(v));
    let line = match (key, v) {
        (_, Value::Object(map)) => {
            if key == "objects" {
                // Activity objects: file id → path; ids become labels.
                let mut pairs: Vec<String> = map
                    .iter()
                    .map(|(id, p)| {
                        let id = digits(id).map_or_else(|| format!("<{id}>"), |i| side.id_label(i));
                        format!("{id} => {}", json_scalar(p))
                    })
                    .collect();
                pairs.sort();
                out.push(format!("{path}: object of {}", map.len()));
                for p in pairs {
                    out.push(format!("{path}.{p}"));
                }
                return;
            }
            out.push(format!(
                "{path}: object {{{}}}",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            for (k, child) in map {
                json_walk(side, &format!("{path}.{k}"), k, child, Some(map), out);
            }
            return;
        }
        (_, Value::Array(items)) => {
            out.push(format!("{path}: array of {}", items.len()));
            for (i, child) in items.iter().enumerate() {
                json_walk(side, &format!("{path}[{i}]"), "", child, None, out);
            }
            return;
        }
        ("activity_id", Value::Number(_)) => masked("<activity id>".into()),
        ("datetime", Value::String(s)) => masked(atom_shape(s)),
        (
            "object_id" | "item_source" | "file_source" | "file_parent" | "fileId",
            Value::Number(n),
        ) => masked(
            n.as_u64()
                .map_or_else(|| n.to_string(), |i| side.id_label(i)),
        ),
        (
            "stime"
            | "item_mtime"
            | "storage"
            | "lastLogin"
            | "lastLoginTimestamp"
            | "firstLoginTimestamp",
            Value::Number(_),
        ) => masked("<masked>".into()),
        ("id", Value::String(s))
            if parent.is_some_and(|p| p.get("type") == Some(&Value::String("file".into()))) =>
        {
            masked(digits(s).map_or_else(|| format!("<{s}>"), |i| side.id_label(i)))
        }
        ("id", Value::String(s)) if is_share_item(path) => masked(
            digits(s)
                .and_then(|i| side.shares.borrow().get(&i).cloned())
                .map_or_else(|| format!("<share {s}>"), |l| format!("#{{{l}}}")),
        ),
        (_, Value::String(s)) => format!("string {:?}", mask_text(side, s)),
        _ => json_scalar(v),
    };
    out.push(format!("{path}: {line}"));
}

/// `.ocs.data[N].id` or `.ocs.data.id` of the Share API.
fn is_share_item(path: &str) -> bool {
    match path.strip_prefix(".ocs.data") {
        Some(".id") => true,
        Some(rest) => rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix("].id"))
            .is_some_and(|i| digits(i).is_some()),
        None => false,
    }
}

/// What of the capabilities the connector reads: the version, the Activity
/// API, whether sharing is there.
fn trim_capabilities(v: &Value) -> Value {
    let data = &v["ocs"]["data"];
    let caps = &data["capabilities"];
    serde_json::json!({
        "meta": v["ocs"]["meta"],
        "version": data["version"],
        "activity": caps["activity"],
        "files_sharing present": caps.get("files_sharing").is_some(),
        "files_sharing.api_enabled": caps["files_sharing"]["api_enabled"],
    })
}

fn shape(side: &Side, view: View, reply: &Reply) -> Vec<String> {
    let json: Option<Value> = match view {
        View::Ocs | View::Capabilities | View::Activity | View::ActivityHead
            if !reply.body.is_empty() =>
        {
            serde_json::from_slice(&reply.body).ok()
        }
        _ => None,
    };
    let mut out = vec![format!("status {}", reply.status)];
    out.extend(header_lines(side, view, reply, json.as_ref()));
    let content_type = reply
        .header("Content-Type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if reply.body.is_empty() {
        out.push("body: empty".into());
    } else if view == View::ActivityHead {
        out.push("body: not compared".into());
    } else if view == View::Search && content_type.contains("xml") {
        out.extend(sort_responses(xml_lines(side, &reply.body)));
    } else if let Some(json) = json {
        if view == View::Activity {
            out.push(format!("activity ids: {}", activity_order(&json)));
        }
        let json = match view {
            View::Capabilities => trim_capabilities(&json),
            _ => json,
        };
        out.extend(json_lines(side, &json));
    } else if content_type.contains("xml") {
        out.extend(xml_lines(side, &reply.body));
    } else if content_type.contains("json") {
        match serde_json::from_slice::<Value>(&reply.body) {
            Ok(json) => out.extend(json_lines(side, &json)),
            Err(e) => out.push(format!("body: not JSON: {e}")),
        }
    } else {
        // FNV-1a: the same bytes on both sides.
        let hash = reply.body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        out.push(format!("body: {} bytes, fnv {hash:016x}", reply.body.len()));
    }
    out
}

/// How the ids of an activity page run (each is masked where it stands).
fn activity_order(json: &Value) -> &'static str {
    let ids: Vec<u64> = json["ocs"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["activity_id"].as_u64())
        .collect();
    if ids.len() < 2 {
        "fewer than two"
    } else if ids.windows(2).all(|w| w[0] < w[1]) {
        "ascending"
    } else if ids.windows(2).all(|w| w[0] > w[1]) {
        "descending"
    } else {
        "unordered"
    }
}

/// The `d:response` blocks of a multistatus in sorted order.
fn sort_responses(lines: Vec<String>) -> Vec<String> {
    let mut head = Vec::new();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for line in lines {
        if line == "  d:response" {
            blocks.push(vec![line]);
        } else if line.starts_with("    ") && !blocks.is_empty() {
            blocks.last_mut().expect("not empty").push(line);
        } else {
            head.push(line);
        }
    }
    blocks.sort();
    head.extend(blocks.into_iter().flatten());
    head
}

// ---------------------------------------------------------------------------
// Comparing.

/// Lines only in one of the two, in order (a longest common subsequence).
fn diff(a: &[String], b: &[String]) -> Vec<(bool, String)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push((true, a[i].clone()));
            i += 1;
        } else {
            out.push((false, b[j].clone()));
            j += 1;
        }
    }
    out
}

struct Conformance {
    real: Side,
    sim: Side,
    checks: usize,
    /// (check, line, side) of every difference not in [`KNOWN`].
    unexplained: Vec<String>,
    used: Vec<bool>,
}

impl Conformance {
    /// Sends `make`'s request to both servers (once each) and compares the
    /// answers' shapes; returns both answers.
    fn check(&mut self, label: &str, view: View, make: impl Fn(&Side) -> Req) -> [Reply; 2] {
        let replies = [&self.real, &self.sim].map(|side| {
            let req = make(side);
            side.send(&req).unwrap_or_else(|e| {
                panic!(
                    "{label}: {} {} on {}: {e:#}",
                    req.method, req.path, side.name
                )
            })
        });
        self.compare(label, view, &replies);
        replies
    }

    fn compare(&mut self, label: &str, view: View, replies: &[Reply; 2]) {
        self.checks += 1;
        let real = shape(&self.real, view, &replies[0]);
        let sim = shape(&self.sim, view, &replies[1]);
        if let Some(dir) = std::env::var_os("CONFORMANCE_DUMP") {
            // Every shape in full, to read beside the differences.
            let name = label.replace(['/', ' ', ','], "_");
            for (side, lines) in [("real", &real), ("sim", &sim)] {
                let path =
                    std::path::Path::new(&dir).join(format!("{:02}-{name}.{side}", self.checks));
                std::fs::write(path, lines.join("\n") + "\n").expect("writing a dump");
            }
        }
        let mut shown = false;
        for (in_real, line) in diff(&real, &sim) {
            let side = if in_real { "real" } else { "sim " };
            let known = KNOWN
                .iter()
                .position(|k| label.contains(k.check) && line.contains(k.line));
            if !shown {
                eprintln!("== {label}");
                shown = true;
            }
            match known {
                Some(k) => {
                    self.used[k] = true;
                    eprintln!("   known ({}): {side} {line}", KNOWN[k].why);
                }
                None => {
                    eprintln!("   {side} {line}");
                    self.unexplained.push(format!("{label}: {side} {line}"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The state both servers are given.

const DOCS: &str = "/Docs & Spécial #1";

/// Files whose type the server names by their extension alone (a text in a
/// `.log` or `.rs` file is still `application/octet-stream`).
const TYPES: &[&str] = &[
    "a.html",
    "b.svg",
    "c.json",
    "d.csv",
    "e.xml",
    "f.jpg",
    "g.bin",
    "h.js",
    "i.css",
    "j.log",
    "k.h",
    "l.rs",
    "m.docx",
    "n.md",
    "no extension",
    "o.PDF",
    "p.tar.gz",
    "q.odt",
    "r.mp4",
    "s.png",
];

/// Alice's tree, her shares with bob (a folder and a file, read-write and
/// read-only) and bob's own file.
fn build(side: &Side) -> Result<()> {
    let a = side.alice();
    for folder in [DOCS, &format!("{DOCS}/Sub"), "/RW", "/RW/sub", "/RO"] {
        a.mkdir(folder)?;
    }
    for (i, path) in [
        format!("{DOCS}/notes.txt"),
        format!("{DOCS}/keep.txt"),
        format!("{DOCS}/Sub/deep.md"),
        "/root.txt".into(),
        "/RW/inside.txt".into(),
        "/RW/sub/leaf.pdf".into(),
        "/RO/look.txt".into(),
        "/rw.txt".into(),
        "/ro.txt".into(),
    ]
    .iter()
    .enumerate()
    {
        side.put(0, path, &content(i as u64, 50 + 97 * i))?;
    }
    side.share("/RW", 1, 31)?;
    side.share("/RO", 1, 1)?;
    side.share("/rw.txt", 1, 19)?;
    side.share("/ro.txt", 1, 1)?;
    side.put(1, "/bob.txt", b"bob's own")?;
    side.put_checked("/checked.txt", b"a file uploaded with its checksum")?;
    a.mkdir("/types")?;
    for name in TYPES {
        side.put(
            0,
            &format!("/types/{name}"),
            format!("{name}: some text\n").as_bytes(),
        )?;
    }
    side.label_listing(0)?;
    side.label_listing(1)
}

/// Deletes `path` (alice's) and returns its id, for a restore.
fn trash(side: &Side, path: &str) -> Result<u64> {
    let id = side
        .alice()
        .fileid(path)?
        .ok_or_else(|| anyhow!("{}: {path} is not there", side.name))?;
    side.alice().delete(path)?;
    Ok(id)
}

/// Moves and renames into and out of the root and of a share, folder moves,
/// deletes, restores, a copy, a burst of creates, and bob's edits inside
/// the share.
fn operate(side: &Side) -> Result<()> {
    let (a, b) = (side.alice(), side.bob());
    a.rename("/root.txt", "/root renamed.txt")?;
    a.rename(&format!("{DOCS}/notes.txt"), "/notes.txt")?;
    a.rename("/notes.txt", &format!("{DOCS}/Sub/notes.txt"))?;
    a.rename(&format!("{DOCS}/Sub"), &format!("{DOCS}/Sub 2"))?;
    a.rename(&format!("{DOCS}/Sub 2"), "/Sub 2")?;
    a.rename("/RW/inside.txt", "/RW/sub/inside.txt")?;
    a.rename("/RW/sub/inside.txt", "/RW/sub/inside renamed.txt")?;
    a.rename("/root renamed.txt", "/RW/root renamed.txt")?;
    a.rename("/RW/sub/leaf.pdf", "/leaf moved.pdf")?;
    let deep = trash(side, "/Sub 2/deep.md")?;
    let docs = trash(side, DOCS)?;
    a.restore(deep)?;
    a.restore(docs)?;
    a.copy("/Sub 2", "/Sub 2 copy")?;
    a.mkdir("/burst")?;
    for i in 0..7u64 {
        side.put(0, &format!("/burst/b{i}.txt"), &content(100 + i, 10))?;
    }
    side.put(1, "/RW/from bob.txt", b"bob was here")?;
    b.rename("/RW/from bob.txt", "/RW/by bob.txt")?;
    b.put("/RW/sub/inside renamed.txt", b"bob changed it")?;
    b.delete("/RW/root renamed.txt")?;
    side.label_listing(0)?;
    side.label_listing(1)?;
    trash(side, "/Sub 2 copy").map(drop)
}

#[test]
fn the_simulator_answers_like_the_real_server() {
    let Some((server, _lock)) = server() else {
        return;
    };
    let started = Instant::now();
    let real = Side::real(&server);
    let sim = Side::sim(&real).unwrap();
    for side in [&real, &sim] {
        build(side).unwrap_or_else(|e| panic!("building on {}: {e:#}", side.name));
    }
    let mut c = Conformance {
        real,
        sim,
        checks: 0,
        unexplained: Vec::new(),
        used: vec![false; KNOWN.len()],
    };
    let built = started.elapsed();

    // Alice's own items and what she shared.
    let alice_dav = |path: &str| {
        let path = path.to_string();
        move |s: &Side| s.dav_path(0, &path)
    };
    let bob_dav = |path: &str| {
        let path = path.to_string();
        move |s: &Side| s.dav_path(1, &path)
    };
    for (label, path, depth) in [
        ("alice PROPFIND / Depth 0", "/", "0"),
        ("alice PROPFIND / Depth 1", "/", "1"),
        ("alice PROPFIND / Depth infinity", "/", "infinity"),
        ("alice PROPFIND folder Depth 1", DOCS, "1"),
        ("alice PROPFIND folder Depth infinity", DOCS, "infinity"),
        (
            "alice PROPFIND file with a checksum Depth 0",
            "/checked.txt",
            "0",
        ),
        ("alice PROPFIND file Depth 0", "/root.txt", "0"),
        ("alice PROPFIND shared folder Depth 1", "/RW", "1"),
        ("alice PROPFIND missing path", "/no such/thing.txt", "0"),
    ] {
        let at = alice_dav(path);
        c.check(label, View::Dav, |s| {
            Req::propfind(Who::Alice, at(s), depth, PROPFIND_BODY)
        });
    }
    let at = alice_dav(DOCS);
    c.check("alice PROPFIND empty body Depth 1", View::Dav, |s| {
        Req::propfind(Who::Alice, at(s), "1", "")
    });
    let at = alice_dav("/RW");
    c.check("alice PROPFIND allprop Depth 1", View::Dav, |s| {
        Req::propfind(
            Who::Alice,
            at(s),
            "1",
            r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>"#,
        )
    });

    // Content types, in a listing and in the download's headers.
    let at = alice_dav("/types");
    c.check("alice PROPFIND types Depth 1", View::Dav, |s| {
        Req::propfind(Who::Alice, at(s), "1", PROPFIND_BODY)
    });
    for name in TYPES {
        let file = alice_dav(&format!("/types/{name}"));
        c.check(&format!("alice HEAD types/{name}"), View::Get, |s| {
            Req::new(Who::Alice, "HEAD", file(s))
        });
    }

    // Bob: his own file and the four shares, at and below the mount points.
    for (label, path, depth) in [
        ("bob PROPFIND / Depth 1", "/", "1"),
        ("bob PROPFIND / Depth infinity", "/", "infinity"),
        ("bob PROPFIND read-write share Depth 1", "/RW", "1"),
        (
            "bob PROPFIND read-write share Depth infinity",
            "/RW",
            "infinity",
        ),
        ("bob PROPFIND read-only share Depth 1", "/RO", "1"),
        ("bob PROPFIND read-only file share Depth 0", "/ro.txt", "0"),
    ] {
        let at = bob_dav(path);
        c.check(label, View::Dav, |s| {
            Req::propfind(Who::Bob, at(s), depth, PROPFIND_BODY)
        });
    }

    // The download: GET, HEAD, a resumed GET with the current etag and one
    // with an etag the file no longer has.
    let file = alice_dav(&format!("{DOCS}/notes.txt"));
    let [get_real, get_sim] = c.check("alice GET file", View::Get, |s| {
        Req::new(Who::Alice, "GET", file(s))
    });
    let etags = [
        get_real.header("ETag").map(str::to_string),
        get_sim.header("ETag").map(str::to_string),
    ];
    c.check("alice HEAD file", View::Get, |s| {
        Req::new(Who::Alice, "HEAD", file(s))
    });
    let etag_of = |s: &Side| etags[s.index()].clone().unwrap_or_default();
    c.check("alice GET file resumed, same version", View::Get, |s| {
        Req::new(Who::Alice, "GET", file(s))
            .header("Range", "bytes=10-")
            .header("If-Range", etag_of(s))
    });
    c.check("alice GET file resumed, other version", View::Get, |s| {
        Req::new(Who::Alice, "GET", file(s))
            .header("Range", "bytes=10-")
            .header("If-Range", "\"0123456789abcdef0123456789abcdef\"")
    });
    let checked = alice_dav("/checked.txt");
    c.check("alice GET file with a checksum", View::Get, |s| {
        Req::new(Who::Alice, "GET", checked(s))
    });
    let missing = alice_dav("/no such file.txt");
    c.check("alice GET missing file", View::Get, |s| {
        Req::new(Who::Alice, "GET", missing(s))
    });

    // SEARCH by file id, as the connector sends it.
    c.check("alice SEARCH one id", View::Search, |s| {
        search(s, Who::Alice, &[&format!("{DOCS}/notes.txt")])
    });
    c.check("alice SEARCH several ids", View::Search, |s| {
        search(
            s,
            Who::Alice,
            &[DOCS, "/rw.txt", "/RO/look.txt", "/checked.txt", "unknown"],
        )
    });
    c.check("bob SEARCH shared ids", View::Search, |s| {
        search(
            s,
            Who::Bob,
            &[
                "/RW",
                "/RW/inside.txt",
                "/RW/sub",
                "/RO",
                "/RO/look.txt",
                "/rw.txt",
                "/ro.txt",
                "bob:/bob.txt",
            ],
        )
    });

    // OCS.
    c.check("status.php", View::Ocs, |_| {
        Req::new(Who::Alice, "GET", "/status.php".into())
    });
    c.check("alice cloud/user", View::Ocs, |_| {
        Req::ocs(Who::Alice, "cloud/user?format=json")
    });
    c.check("alice cloud/capabilities", View::Capabilities, |_| {
        Req::ocs(Who::Alice, "cloud/capabilities?format=json")
    });
    let shares = "apps/files_sharing/api/v1/shares?format=json&reshares=true";
    c.check("alice share list", View::Ocs, |_| {
        Req::ocs(Who::Alice, shares)
    });
    c.check("bob share list", View::Ocs, |_| Req::ocs(Who::Bob, shares));

    // No credentials (no failed login is counted), then one wrong password.
    let root = alice_dav("/");
    c.check("anonymous PROPFIND", View::Dav, |s| {
        Req::propfind(Who::Anonymous, root(s), "0", PROPFIND_BODY)
    });
    c.check("anonymous cloud/user", View::Ocs, |_| {
        Req::ocs(Who::Anonymous, "cloud/user?format=json")
    });
    if server.occ.is_some() {
        c.check("wrong password cloud/user", View::Ocs, |_| {
            Req::ocs(Who::Wrong, "cloud/user?format=json")
        });
        server
            .occ(&["security:bruteforce:reset", "127.0.0.1"])
            .expect("resetting the brute-force counter");
    } else {
        eprintln!("no NEXTCLOUD_TEST_OCC: no wrong password sent (its failure could not be reset)");
    }

    // The activity stream of a sequence of changes.
    let cursors: Vec<[u64; 2]> = [&c.real, &c.sim]
        .iter()
        .map(|s| [s.newest_activity(0).unwrap(), s.newest_activity(1).unwrap()])
        .collect();
    let cursor = |s: &Side, who: usize| cursors[s.index()][who];
    let operated = Instant::now();
    for side in [&c.real, &c.sim] {
        operate(side).unwrap_or_else(|e| panic!("operating on {}: {e:#}", side.name));
    }
    let operated = operated.elapsed();
    let [page_real, page_sim] = c.check("alice activity since the cursor", View::Activity, |s| {
        Req::activity(
            Who::Alice,
            format!("sort=asc&limit=200&since={}", cursor(s, 0)),
        )
    });
    let first = c.check(
        "alice activity since the cursor, pages of 5",
        View::Activity,
        |s| {
            Req::activity(
                Who::Alice,
                format!("sort=asc&limit=5&since={}", cursor(s, 0)),
            )
        },
    );
    // The next page, where the first one's X-Activity-Last-Given says.
    let next = first.map(|r| {
        r.header("X-Activity-Last-Given")
            .and_then(digits)
            .expect("a first page of 5 names its last activity")
    });
    c.check(
        "alice activity since the cursor, second page of 5",
        View::Activity,
        |s| {
            Req::activity(
                Who::Alice,
                format!("sort=asc&limit=5&since={}", next[s.index()]),
            )
        },
    );
    c.check("bob activity since the cursor", View::Activity, |s| {
        Req::activity(
            Who::Bob,
            format!("sort=asc&limit=200&since={}", cursor(s, 1)),
        )
    });
    c.check("alice newest activity", View::Activity, |_| {
        Req::activity(Who::Alice, "sort=desc&limit=1")
    });
    let last = [page_real, page_sim].map(|r| {
        r.header("X-Activity-Last-Given")
            .and_then(digits)
            .expect("the page names its last activity")
    });
    c.check("alice activity since the last one", View::Activity, |s| {
        Req::activity(
            Who::Alice,
            format!("sort=asc&limit=200&since={}", last[s.index()]),
        )
    });
    c.check("alice activity since bob's activity", View::Activity, |s| {
        Req::activity(
            Who::Alice,
            format!("sort=asc&limit=200&since={}", cursor(s, 1)),
        )
    });
    c.check(
        "alice activity since an unknown id",
        View::ActivityHead,
        |_| Req::activity(Who::Alice, "sort=asc&limit=1&since=999999999"),
    );

    // Items found again by id after they moved, were restored, or are in
    // the trash bin; then the whole end state.
    c.check(
        "alice SEARCH moved, restored and trashed ids",
        View::Search,
        |s| {
            search(
                s,
                Who::Alice,
                &[
                    &format!("{DOCS}/notes.txt"),
                    &format!("{DOCS}/Sub"),
                    &format!("{DOCS}/Sub/deep.md"),
                    DOCS,
                    "/Sub 2 copy",
                    "bob:/RW/from bob.txt",
                ],
            )
        },
    );
    c.check(
        "bob SEARCH moved, deleted and unshared ids",
        View::Search,
        |s| {
            search(
                s,
                Who::Bob,
                &[
                    "/RW/inside.txt",
                    "/RW/sub/leaf.pdf",
                    "/root.txt",
                    "bob:/RW/from bob.txt",
                ],
            )
        },
    );
    let root = alice_dav("/");
    c.check(
        "alice PROPFIND / Depth infinity at the end",
        View::Dav,
        |s| Req::propfind(Who::Alice, root(s), "infinity", PROPFIND_BODY),
    );
    let root = bob_dav("/");
    c.check("bob PROPFIND / Depth infinity at the end", View::Dav, |s| {
        Req::propfind(Who::Bob, root(s), "infinity", PROPFIND_BODY)
    });

    let elapsed = started.elapsed();
    eprintln!(
        "{} checks (a request to each server); {:.1} s in all (building {:.1} s, operating {:.1} s)",
        c.checks,
        elapsed.as_secs_f64(),
        built.as_secs_f64(),
        operated.as_secs_f64()
    );
    let stale: Vec<&str> = KNOWN
        .iter()
        .zip(&c.used)
        .filter(|(_, used)| !**used)
        .map(|(k, _)| k.line)
        .collect();
    assert!(
        c.unexplained.is_empty() && stale.is_empty(),
        "{} unexplained differences (listed above){}",
        c.unexplained.len(),
        if stale.is_empty() {
            String::new()
        } else {
            format!("; known differences that no longer occur: {stale:?}")
        }
    );
}
