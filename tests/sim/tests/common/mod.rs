//! Shared helpers: a plain HTTP client over loopback, fixture access and a
//! multistatus parser that keeps prefixes as written (shape matters here).
#![allow(dead_code)]

use base64::Engine as _;
use nextcloud_sim::{Server, SimOptions, Simulator};
use quick_xml::Reader;
use quick_xml::events::Event;

pub const PASSWORD: &str = "demo-app-password";

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../fixtures/nextcloud-32/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn request_body() -> String {
    fixture("propfind-request-body.xml")
}

pub fn start(opts: SimOptions) -> Server {
    Server::start(Simulator::new(opts)).expect("server starts")
}

pub fn sample_server() -> Server {
    let server = start(SimOptions::default());
    server.simulator().populate_sample();
    server
}

pub fn basic(login: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Basic {token}")
}

pub fn alice() -> String {
    basic("alice", PASSWORD)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> ureq::http::Response<ureq::Body> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    agent()
        .run(req.body(body.to_vec()).expect("request builds"))
        .expect("request succeeds")
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let resp = raw(method, url, headers, body);
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("body reads");
    Reply {
        status,
        headers,
        body,
    }
}

pub fn dav_url(server: &Server, rel: &str) -> String {
    format!("{}/remote.php/dav/files/alice/{rel}", server.base_url())
}

/// PROPFIND as alice with the fixtures' request body.
pub fn propfind(server: &Server, rel: &str, depth: Option<&str>) -> Reply {
    let auth = alice();
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/xml; charset=utf-8"),
    ];
    if let Some(d) = depth {
        headers.push(("Depth", d));
    }
    request(
        "PROPFIND",
        &dav_url(server, rel),
        &headers,
        request_body().as_bytes(),
    )
}

pub fn get(server: &Server, rel: &str, extra: &[(&str, &str)]) -> Reply {
    let auth = alice();
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    request("GET", &dav_url(server, rel), &headers, b"")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// As written, prefix included (`d:getetag`).
    pub name: String,
    pub text: String,
    /// Names of child elements, as written.
    pub children: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DavResponse {
    pub href: String,
    /// (status line, properties) per propstat, in document order.
    pub propstats: Vec<(String, Vec<Prop>)>,
}

impl DavResponse {
    /// (status, property name, child element names) in document order.
    pub fn shape(&self) -> Vec<(String, String, Vec<String>)> {
        self.propstats
            .iter()
            .flat_map(|(st, props)| {
                props
                    .iter()
                    .map(move |p| (st.clone(), p.name.clone(), p.children.clone()))
            })
            .collect()
    }

    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.propstats
            .iter()
            .filter(|(st, _)| st.contains("200"))
            .flat_map(|(_, props)| props.iter())
            .find(|p| p.name == name)
    }

    pub fn text(&self, name: &str) -> &str {
        self.prop(name)
            .map(|p| p.text.as_str())
            .unwrap_or_else(|| panic!("{} has no 200 {name}", self.href))
    }

    pub fn is_collection(&self) -> bool {
        self.prop("d:resourcetype")
            .is_some_and(|p| p.children == ["d:collection"])
    }
}

fn entity(name: &str) -> char {
    match name {
        "quot" => '"',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "apos" => '\'',
        other => panic!("unexpected entity {other}"),
    }
}

/// Every `<d:response>`, keeping the text of each property (entities resolved).
pub fn parse_multistatus(xml: &str) -> Vec<DavResponse> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut cur: Option<DavResponse> = None;
    let mut props: Vec<Prop> = Vec::new();
    let mut status = String::new();
    let mut text = String::new();
    loop {
        let ev = reader.read_event().expect("well-formed XML");
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let depth = path.len();
                if name == "d:response" {
                    cur = Some(DavResponse {
                        href: String::new(),
                        propstats: Vec::new(),
                    });
                } else if depth == 4 && path[3] == "d:prop" {
                    props.push(Prop {
                        name: name.clone(),
                        text: String::new(),
                        children: Vec::new(),
                    });
                } else if depth == 5 && path[3] == "d:prop" {
                    props.last_mut().unwrap().children.push(name.clone());
                }
                text.clear();
                if matches!(ev, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => match r.resolve_char_ref().unwrap() {
                Some(c) => text.push(c),
                None => text.push(entity(&r.decode().unwrap())),
            },
            Event::End(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let depth = path.len();
                match name.as_str() {
                    "d:href" if depth == 3 => cur.as_mut().unwrap().href = text.clone(),
                    "d:status" => status = text.clone(),
                    "d:propstat" => cur
                        .as_mut()
                        .unwrap()
                        .propstats
                        .push((std::mem::take(&mut status), std::mem::take(&mut props))),
                    "d:response" => out.push(cur.take().unwrap()),
                    _ if depth == 5 && path[3] == "d:prop" => {
                        let p = props.last_mut().unwrap();
                        if p.children.is_empty() {
                            p.text = text.clone();
                        } else {
                            // A list property: keep the items' text joined.
                            p.text.push_str(&text);
                        }
                    }
                    _ if depth == 6 && path[3] == "d:prop" => {
                        props.last_mut().unwrap().text.push_str(&text)
                    }
                    _ => {}
                }
                text.clear();
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

pub fn find<'a>(responses: &'a [DavResponse], href_suffix: &str) -> &'a DavResponse {
    responses
        .iter()
        .find(|r| r.href.ends_with(href_suffix))
        .unwrap_or_else(|| panic!("no response ending in {href_suffix}"))
}

// ---------------------------------------------------------------------------
// OCS, Activity and shares.

pub const BOB_PASSWORD: &str = "bob-app-password";

pub fn bob() -> String {
    basic("bob", BOB_PASSWORD)
}

pub fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    parse_json(&fixture(name))
}

/// The captured response headers (`name: value` lines after the status line).
pub fn fixture_headers(name: &str) -> Vec<(String, String)> {
    fixture(name)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

/// The body of a captured request (after the blank line).
pub fn fixture_request_body(name: &str) -> String {
    let text = fixture(name);
    text.split_once("\n\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// GET an OCS URL (`rel` below `/ocs/v2.php/`) with `OCS-APIRequest: true`.
pub fn ocs_get(server: &Server, rel: &str, auth: &str) -> Reply {
    request(
        "GET",
        &format!("{}/ocs/v2.php/{rel}", server.base_url()),
        &[("Authorization", auth), ("OCS-APIRequest", "true")],
        b"",
    )
}

/// GET the activity API (`rel` below `.../api/v2/activity`) as `auth`.
pub fn activity_as(server: &Server, rel: &str, auth: &str) -> Reply {
    ocs_get(server, &format!("apps/activity/api/v2/activity{rel}"), auth)
}

pub fn activity(server: &Server, rel: &str) -> Reply {
    activity_as(server, rel, &alice())
}

/// The `data` array of an OCS JSON answer.
pub fn data(reply: &Reply) -> Vec<serde_json::Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    parse_json(&reply.body)["ocs"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {}", reply.body))
        .clone()
}

/// An activity entry with what differs between servers blanked out: ids,
/// times and the host. `objects` becomes the list of its paths (the map's
/// keys are fileids).
pub fn normalize_activity(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    fn url(s: &str) -> String {
        let s = match s
            .find("/index.php")
            .or_else(|| s.find("/apps/"))
            .or_else(|| s.find("/core/"))
        {
            Some(i) if s.starts_with("http") => format!("BASE{}", &s[i..]),
            _ => s.to_string(),
        };
        match s.find("/index.php/f/") {
            Some(i) => format!("{}/index.php/f/N", &s[..i]),
            None => s,
        }
    }
    fn walk(v: &Value, key: &str) -> Value {
        match v {
            Value::Object(m) => {
                if key == "objects" {
                    let mut paths: Vec<Value> = m.values().cloned().collect();
                    paths.sort_by_key(|p| p.to_string());
                    return Value::Array(paths);
                }
                Value::Object(m.iter().map(|(k, x)| (k.clone(), walk(x, k))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, key)).collect()),
            Value::String(s) if key == "link" || key == "icon" => Value::String(url(s)),
            Value::String(_) if key == "datetime" => Value::String("T".into()),
            Value::String(s) if key == "id" && s.bytes().all(|b| b.is_ascii_digit()) => {
                Value::String("N".into())
            }
            Value::Number(_) if key == "activity_id" || key == "object_id" => Value::from(0),
            other => other.clone(),
        }
    }
    walk(v, "")
}

/// Object keys in the order they appear in a raw JSON text (first occurrence).
pub fn key_order(raw: &str, keys: &[&str]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = keys
        .iter()
        .filter_map(|k| raw.find(&format!("\"{k}\":")).map(|i| (i, k.to_string())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}
