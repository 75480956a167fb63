//! A Nextcloud server over HTTP, as the tests drive it: the real Nextcloud 32
//! that `tests/nextcloud/server.sh` brings up (found through its environment)
//! or the simulator, reached the same way. [`Dav`] is one user's WebDAV and
//! OCS client: the writes that change a server and a raw listing, parsed
//! here and not by the connector, to judge the connector's records against.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use quick_xml::Reader;
use quick_xml::events::Event;

/// The real server's coordinates, as `tests/nextcloud/server.sh env` prints them.
#[derive(Debug, Clone)]
pub struct RealServer {
    pub url: String,
    /// The syncing user (`alice`) and the one who edits inside her share (`bob`).
    pub users: [(String, String); 2],
    /// `occ`, to reset the brute-force counter after a wrong password.
    pub occ: Option<PathBuf>,
}

impl RealServer {
    /// The server `NEXTCLOUD_TEST_URL` names, or why there is none.
    pub fn from_env() -> std::result::Result<RealServer, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(url) = var("NEXTCLOUD_TEST_URL") else {
            return Err("no real Nextcloud: NEXTCLOUD_TEST_URL is not set \
                 (`eval \"$(tests/nextcloud/server.sh up)\"` starts one)"
                .into());
        };
        let user = |n: &str, p: &str| -> std::result::Result<(String, String), String> {
            match (var(n), var(p)) {
                (Some(u), Some(p)) => Ok((u, p)),
                _ => Err(format!("NEXTCLOUD_TEST_URL is set but {n} or {p} is not")),
            }
        };
        let server = RealServer {
            url: url.trim_end_matches('/').to_string(),
            users: [
                user("NEXTCLOUD_TEST_USER", "NEXTCLOUD_TEST_APP_PASSWORD")?,
                user("NEXTCLOUD_TEST_USER2", "NEXTCLOUD_TEST_APP_PASSWORD2")?,
            ],
            occ: var("NEXTCLOUD_TEST_OCC").map(PathBuf::from),
        };
        // A set variable with no server behind it is a broken setup, not a skip.
        let status = Dav::anonymous(&server.url).get_path("/status.php");
        match status {
            Ok(reply) if reply.status == 200 => Ok(server),
            Ok(reply) => panic!(
                "NEXTCLOUD_TEST_URL={}: status.php answered {}",
                server.url, reply.status
            ),
            Err(e) => panic!("NEXTCLOUD_TEST_URL={}: {e:#}", server.url),
        }
    }

    pub fn dav(&self, user: usize) -> Dav {
        let (id, password) = &self.users[user];
        Dav::new(&self.url, id, password)
    }

    /// Runs `occ` with `args`; an error when the server has none at hand.
    pub fn occ(&self, args: &[&str]) -> Result<String> {
        self.occ_with_pass(args, None)
    }

    /// `occ` with `OC_PASS` set, for its `--password-from-env` commands
    /// (a password never goes on a command line).
    fn occ_with_pass(&self, args: &[&str], pass: Option<&str>) -> Result<String> {
        let occ = self
            .occ
            .as_ref()
            .ok_or_else(|| anyhow!("NEXTCLOUD_TEST_OCC is not set"))?;
        let mut command = std::process::Command::new(occ);
        if let Some(pass) = pass {
            command.env("OC_PASS", pass);
        }
        let out = command
            .args(args)
            .output()
            .with_context(|| format!("running {}", occ.display()))?;
        if !out.status.success() {
            bail!(
                "occ {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The server's data directory: a user's files are under `USER/files/`
    /// (written there directly, they count once `occ files:scan USER` ran).
    pub fn data_dir(&self) -> Result<PathBuf> {
        let dir = self.occ(&["config:system:get", "datadirectory"])?;
        Ok(PathBuf::from(dir.trim()))
    }

    /// The app password of `name`, a user the shared tests never touch (they
    /// clear alice's and bob's homes): created by occ the first time, found
    /// again after. The app password is kept in one of the user's settings
    /// on the server, so it lives and dies with the install.
    pub fn ensure_user(&self, name: &str) -> Result<String> {
        const APP: &str = "connector-tests";
        const KEY: &str = "app_password";
        // Fails when the user or the setting is not there yet.
        if let Ok(kept) = self.occ(&["user:setting", name, APP, KEY]) {
            return Ok(kept.trim().to_string());
        }
        let login = format!(
            "{name}-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if self.occ(&["user:info", name]).is_ok() {
            // There, but its app password was lost: a new login password
            // to make one with.
            self.occ_with_pass(
                &["user:resetpassword", "--password-from-env", name],
                Some(&login),
            )?;
        } else {
            self.occ_with_pass(&["user:add", "--password-from-env", name], Some(&login))?;
        }
        let out = self.occ_with_pass(
            &["user:auth-tokens:add", "--password-from-env", name],
            Some(&login),
        )?;
        // "app password:", then the token on a line of its own.
        let token = out
            .lines()
            .map(str::trim)
            .rfind(|l| l.len() >= 32 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .ok_or_else(|| anyhow!("no app password in the output of occ: {out}"))?
            .to_string();
        self.occ(&["user:setting", name, APP, KEY, &token])?;
        Ok(token)
    }
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("HTTP {} is not JSON: {}", self.status, self.text()))
    }

    fn expect(self, what: &str, ok: &[u16]) -> Result<Reply> {
        if ok.contains(&self.status) {
            Ok(self)
        } else {
            bail!("{what}: HTTP {} {}", self.status, self.text())
        }
    }
}

/// What a raw `PROPFIND Depth: infinity` says of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Decoded, leading slash; the root is `/`.
    pub path: String,
    pub is_folder: bool,
    /// Unquoted.
    pub etag: String,
    pub size: u64,
}

/// Every entry by file id.
pub type Listing = BTreeMap<u64, Listed>;

const LISTING_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:prop><d:getetag/><d:resourcetype/><oc:fileid/><oc:size/><d:getcontentlength/></d:prop>
</d:propfind>"#;

/// One user's WebDAV and OCS client.
#[derive(Clone)]
pub struct Dav {
    base: String,
    pub user: String,
    authorization: Option<String>,
    agent: ureq::Agent,
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

impl Dav {
    pub fn new(base_url: &str, user: &str, password: &str) -> Dav {
        let credential =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Dav {
            authorization: Some(format!("Basic {credential}")),
            user: user.to_string(),
            ..Dav::anonymous(base_url)
        }
    }

    fn anonymous(base_url: &str) -> Dav {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .allow_non_standard_methods(true)
            // The real server's first requests after a start take a while.
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Dav {
            base: base_url.trim_end_matches('/').to_string(),
            user: String::new(),
            authorization: None,
            agent,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL of a decoded path in the user's files.
    pub fn url_of(&self, path: &str) -> String {
        format!(
            "{}/remote.php/dav/files/{}/{}",
            self.base,
            encode_path(&self.user),
            encode_path(path.trim_start_matches('/'))
        )
    }

    /// One request to `url` (absolute, or a path below the base URL).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_vec())?;
        let mut response = self
            .agent
            .run(request)
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .with_context(|| format!("reading the answer to {method} {url}"))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn get_path(&self, path: &str) -> Result<Reply> {
        self.send("GET", path, &[], &[])
    }

    /// An OCS call, JSON asked for.
    pub fn ocs(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Result<Reply> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&");
        let separator = if path.contains('?') { '&' } else { '?' };
        self.send(
            method,
            &format!("/ocs/v2.php/{path}{separator}format=json"),
            &[
                ("OCS-APIRequest", "true"),
                ("Accept", "application/json"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        )
    }

    pub fn mkdir(&self, path: &str) -> Result<()> {
        self.send("MKCOL", &self.url_of(path), &[], &[])?
            .expect(&format!("MKCOL {path}"), &[201])
            .map(drop)
    }

    /// Creates or overwrites a file; its file id.
    pub fn put(&self, path: &str, content: &[u8]) -> Result<u64> {
        // PHP's built-in server never answers `Expect: 100-continue`.
        let reply = self
            .send("PUT", &self.url_of(path), &[("Expect", "")], content)?
            .expect(&format!("PUT {path}"), &[201, 204])?;
        let id = reply
            .header("OC-FileId")
            .ok_or_else(|| anyhow!("PUT {path}: no OC-FileId"))?;
        // `00000123ocinstanceid`: the digits before the instance id.
        id.trim_start_matches('0')
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| anyhow!("PUT {path}: OC-FileId {id:?}"))
    }

    /// MOVE (a rename or a move), never over an existing entry.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.transfer("MOVE", from, to)
    }

    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.transfer("COPY", from, to)
    }

    fn transfer(&self, method: &str, from: &str, to: &str) -> Result<()> {
        let destination = self.url_of(to);
        self.send(
            method,
            &self.url_of(from),
            &[("Destination", &destination), ("Overwrite", "F")],
            &[],
        )?
        .expect(&format!("{method} {from} -> {to}"), &[201, 204])
        .map(drop)
    }

    /// Into the trash bin.
    pub fn delete(&self, path: &str) -> Result<()> {
        self.send("DELETE", &self.url_of(path), &[], &[])?
            .expect(&format!("DELETE {path}"), &[204])
            .map(drop)
    }

    fn trash_url(&self) -> String {
        format!(
            "{}/remote.php/dav/trashbin/{}",
            self.base,
            encode_path(&self.user)
        )
    }

    /// Restores the trashed item with this file id to where it was deleted.
    pub fn restore(&self, fileid: u64) -> Result<()> {
        let body = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"><d:prop><oc:fileid/><nc:trashbin-filename/></d:prop></d:propfind>"#;
        let listing = self
            .send(
                "PROPFIND",
                &format!("{}/trash/", self.trash_url()),
                &[("Depth", "1")],
                body.as_bytes(),
            )?
            .expect("listing the trash bin", &[207])?;
        let responses = multistatus(&listing.body)?;
        let (href, props) = responses
            .iter()
            .find(|(_, props)| props.get("fileid").map(String::as_str) == Some(&fileid.to_string()))
            .ok_or_else(|| anyhow!("file id {fileid} is not in the trash bin"))?;
        let name = props
            .get("trashbin-filename")
            .ok_or_else(|| anyhow!("{href}: no trashbin-filename"))?;
        let destination = format!(
            "{}/restore/{}",
            self.trash_url(),
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        );
        let source = format!("{}{href}", self.base_origin());
        self.send("MOVE", &source, &[("Destination", &destination)], &[])?
            .expect(&format!("restoring {fileid}"), &[201, 204])
            .map(drop)
    }

    /// Restores the oldest kept version of the file at `path`, as the web
    /// interface does (the versions app's WebDAV endpoint).
    pub fn restore_oldest_version(&self, path: &str) -> Result<()> {
        let id = self
            .fileid(path)?
            .ok_or_else(|| anyhow!("{path} is not there"))?;
        let versions = format!(
            "{}/remote.php/dav/versions/{}/versions/{id}/",
            self.base,
            encode_path(&self.user)
        );
        let listing = self
            .send("PROPFIND", &versions, &[("Depth", "1")], &[])?
            .expect(&format!("listing the versions of {path}"), &[207])?;
        let mut hrefs: Vec<String> = multistatus(&listing.body)?
            .into_iter()
            .map(|(href, _)| href)
            .filter(|href| !href.ends_with('/'))
            .collect();
        // Named by their time: the smallest is the oldest.
        hrefs.sort();
        let oldest = hrefs
            .first()
            .ok_or_else(|| anyhow!("{path} has no older version"))?;
        let destination = format!(
            "{}/remote.php/dav/versions/{}/restore/target",
            self.base,
            encode_path(&self.user)
        );
        let source = format!("{}{oldest}", self.base_origin());
        self.send("MOVE", &source, &[("Destination", &destination)], &[])?
            .expect(&format!("restoring a version of {path}"), &[201, 204])
            .map(drop)
    }

    /// Empties the trash bin.
    pub fn empty_trash(&self) -> Result<()> {
        self.send("DELETE", &format!("{}/trash", self.trash_url()), &[], &[])?
            .expect("emptying the trash bin", &[204])
            .map(drop)
    }

    fn base_origin(&self) -> &str {
        // The base URL has a path only under a subpath; hrefs carry it.
        match self.base.find("://").map(|i| i + 3) {
            Some(start) => match self.base[start..].find('/') {
                Some(slash) => &self.base[..start + slash],
                None => &self.base,
            },
            None => &self.base,
        }
    }

    /// Shares `path` with `with` (a user); the share id.
    pub fn share_with_user(&self, path: &str, with: &str, permissions: u32) -> Result<u64> {
        let reply = self
            .ocs(
                "POST",
                "apps/files_sharing/api/v1/shares",
                &[
                    ("path", path),
                    ("shareType", "0"),
                    ("shareWith", with),
                    ("permissions", &permissions.to_string()),
                ],
            )?
            .expect(&format!("sharing {path} with {with}"), &[200])?;
        let json = reply.json()?;
        let id = &json["ocs"]["data"]["id"];
        id.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| id.as_u64())
            .ok_or_else(|| anyhow!("share answer without an id: {json}"))
    }

    /// Deletes everything in the user's files and trash bin, and every share
    /// the user made.
    pub fn clear(&self) -> Result<()> {
        let shares = self
            .ocs("GET", "apps/files_sharing/api/v1/shares", &[])?
            .expect("listing shares", &[200])?
            .json()?;
        for share in shares["ocs"]["data"].as_array().into_iter().flatten() {
            let id = share["id"].as_str().map(str::to_string).unwrap_or_default();
            self.ocs(
                "DELETE",
                &format!("apps/files_sharing/api/v1/shares/{id}"),
                &[],
            )?
            .expect(&format!("deleting share {id}"), &[200])?;
        }
        let top: Vec<String> = self
            .listing_at("/", "1")?
            .into_values()
            .map(|e| e.path)
            .filter(|p| p != "/")
            .collect();
        for path in top {
            self.delete(&path)?;
        }
        self.empty_trash()
    }

    /// A raw `PROPFIND Depth: infinity` of the user's files.
    pub fn listing(&self) -> Result<Listing> {
        self.listing_at("/", "infinity")
    }

    fn listing_at(&self, path: &str, depth: &str) -> Result<Listing> {
        let reply = self
            .send(
                "PROPFIND",
                &self.url_of(path),
                &[("Depth", depth), ("Content-Type", "application/xml")],
                LISTING_BODY.as_bytes(),
            )?
            .expect(&format!("PROPFIND {path}"), &[207])?;
        let root = format!("/remote.php/dav/files/{}/", encode_path(&self.user));
        let mut out = Listing::new();
        for (href, props) in multistatus(&reply.body)? {
            let below = href
                .find(&root)
                .map(|i| &href[i + root.len()..])
                .ok_or_else(|| anyhow!("href {href} is outside {root}"))?;
            let mut path = String::new();
            for segment in below.split('/').filter(|s| !s.is_empty()) {
                path.push('/');
                path.push_str(&percent_decode_str(segment).decode_utf8()?);
            }
            if path.is_empty() {
                path.push('/');
            }
            let number = |key: &str| -> Option<u64> { props.get(key)?.trim().parse().ok() };
            let fileid = number("fileid").ok_or_else(|| anyhow!("{href}: no fileid"))?;
            let entry = Listed {
                path,
                is_folder: props.contains_key("collection"),
                etag: props
                    .get("getetag")
                    .map(|e| e.trim_matches('"').to_string())
                    .unwrap_or_default(),
                size: number("size")
                    .or_else(|| number("getcontentlength"))
                    .unwrap_or(0),
            };
            if out.insert(fileid, entry).is_some() {
                bail!("file id {fileid} listed twice");
            }
        }
        Ok(out)
    }

    /// The file id at `path`, if anything is there.
    pub fn fileid(&self, path: &str) -> Result<Option<u64>> {
        let reply = self.send(
            "PROPFIND",
            &self.url_of(path),
            &[("Depth", "0"), ("Content-Type", "application/xml")],
            LISTING_BODY.as_bytes(),
        )?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = reply.expect(&format!("PROPFIND {path}"), &[207])?;
        Ok(multistatus(&reply.body)?
            .first()
            .and_then(|(_, props)| props.get("fileid")?.parse().ok()))
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        Ok(self
            .send("GET", &self.url_of(path), &[], &[])?
            .expect(&format!("GET {path}"), &[200])?
            .body)
    }
}

/// Each `<d:response>`: its raw href and the properties of its 200
/// propstat, by local name (`collection` present for a folder).
fn multistatus(body: &[u8]) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let mut reader = Reader::from_reader(body);
    let mut out = Vec::new();
    let mut href = String::new();
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut status = String::new();
    let mut current: Option<String> = None;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "collection" {
                    pending.insert(name.clone(), String::new());
                }
                current = Some(name);
            }
            Event::Empty(e) if e.local_name().as_ref() == b"collection" => {
                pending.insert("collection".into(), String::new());
            }
            Event::Text(t) => {
                if let Some(name) = &current {
                    let text = t.decode()?.into_owned();
                    match name.as_str() {
                        "href" => href.push_str(&text),
                        "status" => status.push_str(&text),
                        _ => pending.entry(name.clone()).or_default().push_str(&text),
                    }
                }
            }
            Event::GeneralRef(r) => {
                // `&quot;` around etags.
                if let Some(name) = &current {
                    let entity = r.decode()?;
                    let text = match entity.as_ref() {
                        "quot" => "\"",
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "apos" => "'",
                        other => bail!("unexpected entity &{other};"),
                    };
                    match name.as_str() {
                        "href" => href.push_str(text),
                        "status" => {}
                        _ => pending.entry(name.clone()).or_default().push_str(text),
                    }
                }
            }
            Event::End(e) => {
                current = None;
                match e.local_name().as_ref() {
                    b"propstat" => {
                        let pending = std::mem::take(&mut pending);
                        if status.contains(" 200 ") {
                            props.extend(pending);
                        }
                        status.clear();
                    }
                    b"response" => {
                        out.push((std::mem::take(&mut href), std::mem::take(&mut props)));
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}
