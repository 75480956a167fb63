//! What a connector component may ask of the server: capabilities.
//!
//! A capability is a name this host defines, standing for a set of HTTP
//! methods on a path pattern under the configured Nextcloud (and, for the
//! few that need them, request headers). A component declares the names it
//! needs in a custom section ([`SECTION`]) that the host reads before it
//! compiles or instantiates anything ([`declared`]); a component without the
//! section (built for WIT 0.1.0 before the section existed) is given
//! [`READ_ONLY`]. What a run may send is what the component declared, narrowed
//! by the operator's `grants` setting; a capability that writes is never
//! granted unless the operator names it ([`Grants::new`]).
//!
//! [`Grants::check`] is the one gate: every request the connector asks the
//! host to send passes it before anything leaves this machine. The path is
//! judged the way the server will read it: each segment percent-decoded, and
//! refused when that yields a separator, a dot segment, a NUL or a control
//! character, so that no encoding reaches another user's files or another
//! endpoint. `{user}` is the user id the host resolved itself
//! ([`crate::identity`]), never one the connector names.

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use url::Url;

/// The custom section a component declares its capabilities in: a JSON object
/// `{"capabilities": ["files.read", …]}`.
pub const SECTION: &str = "nextcloud-connector:capabilities";

/// How far a capability reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Reads the user's data or the server's state; changes nothing.
    Read,
    /// Changes the user's data or shares it; only by an explicit operator grant.
    Write,
}

/// One segment of a path pattern, below the install's base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    Lit(&'static str),
    /// The user id the host resolved.
    User,
    /// Any one segment.
    One,
    /// Any number of segments, none included.
    Rest,
}

use Seg::{Lit, One, Rest, User};

/// Methods on paths.
#[derive(Debug, Clone, Copy)]
struct Rule {
    methods: &'static [&'static str],
    path: &'static [Seg],
    /// Whether a query string may come along (OCS takes `format=json`, …).
    query: bool,
}

const DAV_FILES: &[Seg] = &[Lit("remote.php"), Lit("dav"), Lit("files"), User, Rest];

macro_rules! capabilities {
    ($($variant:ident = $name:literal, $level:ident, $what:literal, [$($rule:expr),+ $(,)?];)+) => {
        /// The capabilities this host knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Capability {
            $(#[doc = $what] $variant,)+
        }

        impl Capability {
            pub const ALL: &'static [Capability] = &[$(Capability::$variant,)+];

            /// The name components and configurations use.
            pub fn name(self) -> &'static str {
                match self { $(Capability::$variant => $name,)+ }
            }

            pub fn level(self) -> Level {
                match self { $(Capability::$variant => Level::$level,)+ }
            }

            /// What it lets the connector do, for people.
            pub fn describe(self) -> &'static str {
                match self { $(Capability::$variant => $what,)+ }
            }

            fn rules(self) -> &'static [Rule] {
                match self { $(Capability::$variant => &[$($rule),+],)+ }
            }
        }
    };
}

capabilities! {
    ServerStatus = "server.status", Read, "read the server's version and state",
        [Rule { methods: &["GET"], path: &[Lit("status.php")], query: false }];
    ServerCapabilities = "server.capabilities", Read, "read which apps and features the server has",
        [Rule { methods: &["GET"], path: &[Lit("ocs"), Lit("v2.php"), Lit("cloud"), Lit("capabilities")], query: true }];
    UserRead = "user.read", Read, "read the user's id, display name and email",
        [Rule { methods: &["GET"], path: &[Lit("ocs"), Lit("v2.php"), Lit("cloud"), Lit("user")], query: true }];
    ActivityRead = "activity.read", Read, "read the user's activity stream",
        [
            Rule { methods: &["GET"], path: &[Lit("ocs"), Lit("v2.php"), Lit("apps"), Lit("activity"), Lit("api"), Lit("v2"), Lit("activity")], query: true },
            Rule { methods: &["GET"], path: &[Lit("ocs"), Lit("v2.php"), Lit("apps"), Lit("activity"), Lit("api"), Lit("v2"), Lit("activity"), One], query: true },
        ];
    SharesRead = "shares.read", Read, "list the user's shares",
        [Rule { methods: &["GET"], path: &[Lit("ocs"), Lit("v2.php"), Lit("apps"), Lit("files_sharing"), Lit("api"), Lit("v1"), Lit("shares")], query: true }];
    FilesRead = "files.read", Read, "list and download the user's files",
        [Rule { methods: &["GET", "HEAD", "PROPFIND"], path: DAV_FILES, query: false }];
    FilesSearch = "files.search", Read, "search the user's files",
        [Rule { methods: &["SEARCH"], path: &[Lit("remote.php"), Lit("dav")], query: false }];
    FilesWrite = "files.write", Write, "create, change, move and delete the user's files",
        [Rule { methods: &["PUT", "MKCOL", "DELETE", "MOVE", "COPY", "PROPPATCH"], path: DAV_FILES, query: false }];
    SharesWrite = "shares.write", Write, "create, change and delete shares, public links included",
        [
            Rule { methods: &["POST"], path: &[Lit("ocs"), Lit("v2.php"), Lit("apps"), Lit("files_sharing"), Lit("api"), Lit("v1"), Lit("shares")], query: true },
            Rule { methods: &["PUT", "DELETE"], path: &[Lit("ocs"), Lit("v2.php"), Lit("apps"), Lit("files_sharing"), Lit("api"), Lit("v1"), Lit("shares"), One], query: true },
        ];
}

/// What a component built before [`SECTION`] existed is given, and the most
/// any component gets without an operator grant.
pub const READ_ONLY: &[Capability] = &[
    Capability::ServerStatus,
    Capability::ServerCapabilities,
    Capability::UserRead,
    Capability::ActivityRead,
    Capability::SharesRead,
    Capability::FilesRead,
    Capability::FilesSearch,
];

impl Capability {
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The methods and path patterns, as `METHOD,… /pattern` lines for people.
    pub fn reach(self) -> Vec<String> {
        self.rules()
            .iter()
            .map(|r| {
                let path: Vec<&str> = r
                    .path
                    .iter()
                    .map(|s| match s {
                        Lit(l) => l,
                        User => "{user}",
                        One => "{id}",
                        Rest => "**",
                    })
                    .collect();
                format!("{} /{}", r.methods.join(","), path.join("/"))
            })
            .collect()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Names to capabilities, refusing any this host does not know.
pub fn parse_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Capability>, String> {
    names
        .into_iter()
        .map(|n| {
            Capability::from_name(n).ok_or_else(|| {
                format!(
                    "`{n}` is not a capability this host knows (it knows {})",
                    Capability::ALL
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}

/// What a component asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub capabilities: BTreeSet<Capability>,
    /// False when the component has no [`SECTION`] and gets [`READ_ONLY`].
    pub explicit: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    capabilities: Vec<String>,
}

/// Reads the capabilities a component declares, without compiling it. More
/// than one section, or one that does not parse, is an error: the host never
/// guesses what a component meant.
pub fn declared(wasm: &[u8]) -> Result<Declared, String> {
    if !wasm.starts_with(b"\0asm") {
        return Err("it is not a WebAssembly binary (no `\\0asm` header)".into());
    }
    let mut found: Option<Vec<u8>> = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| {
            format!(
                "it is not a valid WebAssembly binary ({} at byte {})",
                e.message(),
                e.offset()
            )
        })?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == SECTION
        {
            if found.is_some() {
                return Err(format!("it declares `{SECTION}` more than once"));
            }
            found = Some(section.data().to_vec());
        }
    }
    let Some(data) = found else {
        return Ok(Declared {
            capabilities: READ_ONLY.iter().copied().collect(),
            explicit: false,
        });
    };
    let manifest: Manifest = serde_json::from_slice(&data)
        .map_err(|e| format!("its `{SECTION}` section is not the expected JSON: {e}"))?;
    Ok(Declared {
        capabilities: parse_names(manifest.capabilities.iter().map(String::as_str))
            .map_err(|e| format!("its `{SECTION}` section: {e}"))?,
        explicit: true,
    })
}

/// What one run may send: the capabilities granted, bound to one install and
/// one user.
#[derive(Debug, Clone)]
pub struct Grants {
    granted: BTreeSet<Capability>,
    /// The install's subpath (`/nextcloud`), as decoded segments.
    base: Vec<String>,
    user_id: String,
}

impl Grants {
    /// Declared ∩ operator grants; without operator grants, declared ∩
    /// [`READ_ONLY`].
    pub fn new(
        declared: &Declared,
        operator: Option<&BTreeSet<Capability>>,
        base_url: &Url,
        user_id: &str,
    ) -> Grants {
        let ceiling: BTreeSet<Capability> = match operator {
            Some(g) => g.clone(),
            None => READ_ONLY.iter().copied().collect(),
        };
        Grants {
            granted: declared
                .capabilities
                .intersection(&ceiling)
                .copied()
                .collect(),
            base: base_url
                .path_segments()
                .map(|s| {
                    s.filter(|s| !s.is_empty())
                        .map(|s| decode(s).unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default(),
            user_id: user_id.to_string(),
        }
    }

    pub fn granted(&self) -> &BTreeSet<Capability> {
        &self.granted
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Whether `method` on `url` is granted; the error says why not, naming
    /// the capability that would allow it when there is one.
    pub fn check(&self, method: &str, url: &Url) -> Result<Capability, String> {
        let what = format!("{method} {url}");
        if url.fragment().is_some() {
            return Err(format!("{what}: a URL with a fragment is refused"));
        }
        let segments = decoded_path(url).map_err(|e| format!("{what}: {e}"))?;
        let Some(rest) = segments.strip_prefix(self.base.as_slice()) else {
            return Err(format!(
                "{what}: the path is not under the Nextcloud install `/{}`",
                self.base.join("/")
            ));
        };
        if let Some(query) = url.query()
            && url.query_pairs().any(|(k, _)| k.starts_with('_'))
        {
            return Err(format!(
                "{what}: the query `{query}` carries a parameter starting with `_` (a method override); refused"
            ));
        }
        let mut needed = None;
        for &capability in Capability::ALL {
            for rule in capability.rules() {
                if !matches(rule.path, rest, &self.user_id)
                    || (!rule.query && url.query().is_some())
                {
                    continue;
                }
                if !rule.methods.contains(&method) {
                    continue;
                }
                if self.granted.contains(&capability) {
                    return Ok(capability);
                }
                needed.get_or_insert(capability);
            }
        }
        Err(match needed {
            Some(c) => format!(
                "{what} needs the `{c}` capability ({}), which {}",
                c.describe(),
                match c.level() {
                    Level::Write =>
                        "writes: it is granted only when the operator lists it in `grants` and the component declares it",
                    Level::Read =>
                        "the component did not declare or the operator's `grants` leave out",
                }
            ),
            None => format!(
                "{what} is not granted by any capability: this host lets a connector reach only {}",
                self.granted
                    .iter()
                    .flat_map(|c| c.reach())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }
}

fn matches(pattern: &[Seg], path: &[String], user_id: &str) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (Some((Rest, _)), _) => true,
        (None, None) => true,
        (Some((seg, pattern)), Some((first, path))) => {
            let ok = match seg {
                Lit(l) => first == l,
                User => first == user_id,
                One => true,
                Rest => unreachable!("matched above"),
            };
            ok && matches(pattern, path, user_id)
        }
        _ => false,
    }
}

/// The path's segments as the server decodes them. One trailing slash is
/// allowed; otherwise a segment that is empty, or decodes to `.`, `..`, or
/// holds a separator, NUL or control character, is refused.
fn decoded_path(url: &Url) -> Result<Vec<String>, String> {
    let mut raw: Vec<&str> = url.path_segments().ok_or("the URL has no path")?.collect();
    if raw.len() > 1 && raw.last() == Some(&"") {
        raw.pop();
    }
    raw.iter()
        .map(|s| {
            let d = decode(s)?;
            if d.is_empty() || d == "." || d == ".." {
                return Err(format!(
                    "the path has an empty, `.` or `..` segment (`{s}`)"
                ));
            }
            if d.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
                return Err(format!(
                    "the path segment `{s}` decodes to a separator or a control character"
                ));
            }
            Ok(d)
        })
        .collect()
}

fn decode(segment: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("the path segment `{segment}` is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(base: &str, operator: Option<&[Capability]>, declared: &[Capability]) -> Grants {
        let declared = Declared {
            capabilities: declared.iter().copied().collect(),
            explicit: true,
        };
        let operator: Option<BTreeSet<Capability>> = operator.map(|o| o.iter().copied().collect());
        Grants::new(
            &declared,
            operator.as_ref(),
            &Url::parse(base).unwrap(),
            "alice",
        )
    }

    fn read_only(base: &str) -> Grants {
        grants(base, None, Capability::ALL)
    }

    fn check(g: &Grants, method: &str, url: &str) -> Result<Capability, String> {
        g.check(method, &Url::parse(url).unwrap())
    }

    #[test]
    fn the_connectors_requests_are_granted_read_only() {
        let g = read_only("http://h/nc");
        for (method, url) in [
            ("GET", "http://h/nc/status.php"),
            ("GET", "http://h/nc/ocs/v2.php/cloud/user?format=json"),
            (
                "GET",
                "http://h/nc/ocs/v2.php/cloud/capabilities?format=json",
            ),
            (
                "GET",
                "http://h/nc/ocs/v2.php/apps/activity/api/v2/activity/files?format=json&since=3",
            ),
            (
                "GET",
                "http://h/nc/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json&reshares=true",
            ),
            ("PROPFIND", "http://h/nc/remote.php/dav/files/alice/"),
            ("PROPFIND", "http://h/nc/remote.php/dav/files/alice"),
            (
                "GET",
                "http://h/nc/remote.php/dav/files/alice/a%20b/100%25%20%23x.txt",
            ),
            ("GET", "http://h/nc/remote.php/dav/files/alice/%2e%2e.txt"),
            ("SEARCH", "http://h/nc/remote.php/dav/"),
        ] {
            assert!(
                check(&g, method, url).is_ok(),
                "{method} {url}: {:?}",
                check(&g, method, url)
            );
        }
    }

    #[test]
    fn writes_and_other_endpoints_are_refused_by_default() {
        let g = read_only("http://h");
        for (method, url, needle) in [
            (
                "PUT",
                "http://h/remote.php/dav/files/alice/x",
                "`files.write`",
            ),
            (
                "MKCOL",
                "http://h/remote.php/dav/files/alice/x",
                "`files.write`",
            ),
            (
                "DELETE",
                "http://h/remote.php/dav/files/alice/x",
                "`files.write`",
            ),
            (
                "MOVE",
                "http://h/remote.php/dav/files/alice/x",
                "`files.write`",
            ),
            (
                "PROPPATCH",
                "http://h/remote.php/dav/files/alice/x",
                "`files.write`",
            ),
            (
                "POST",
                "http://h/ocs/v2.php/apps/files_sharing/api/v1/shares",
                "`shares.write`",
            ),
            (
                "DELETE",
                "http://h/ocs/v2.php/apps/files_sharing/api/v1/shares/7",
                "`shares.write`",
            ),
            (
                "TRACE",
                "http://h/remote.php/dav/files/alice/",
                "not granted by any",
            ),
            (
                "POST",
                "http://h/ocs/v2.php/core/apppassword/rotate",
                "not granted by any",
            ),
            (
                "DELETE",
                "http://h/ocs/v2.php/core/apppassword",
                "not granted by any",
            ),
            (
                "GET",
                "http://h/ocs/v2.php/core/getapppassword",
                "not granted by any",
            ),
            (
                "GET",
                "http://h/remote.php/dav/files/bob/secret.txt",
                "not granted by any",
            ),
            (
                "GET",
                "http://h/remote.php/dav/trashbin/alice/trash",
                "not granted by any",
            ),
            ("GET", "http://h/remote.php/webdav/x", "not granted by any"),
            ("GET", "http://h/index.php/apps/files", "not granted by any"),
            (
                "SEARCH",
                "http://h/remote.php/dav/files/alice/",
                "not granted by any",
            ),
            (
                "PROPFIND",
                "http://h/remote.php/dav/files/alice/?_method=DELETE",
                "method override",
            ),
            (
                "GET",
                "http://h/ocs/v2.php/cloud/user?_method=DELETE",
                "method override",
            ),
        ] {
            let err = check(&g, method, url).unwrap_err();
            assert!(err.contains(needle), "{method} {url}: {err}");
        }
    }

    #[test]
    fn every_encoding_of_a_way_out_is_refused() {
        let g = read_only("http://h/nc");
        for url in [
            "http://h/nc/remote.php/dav/files/alice/..%2F..%2Fbob/x",
            "http://h/nc/remote.php/dav/files/alice/%2E%2E%2fbob",
            "http://h/nc/remote.php/dav/files/alice/a%2fb",
            "http://h/nc/remote.php/dav/files/alice/a%5cb",
            "http://h/nc/remote.php/dav/files/alice/a%5C..%5Cb",
            "http://h/nc/remote.php/dav/files/alice/a%00b",
            "http://h/nc/remote.php/dav/files/alice/a%0d%0ab",
            "http://h/nc/remote.php/dav/files/alice//x",
            "http://h/nc/remote.php/dav/files/alice/%ff",
            "http://h/nc/remote.php/dav/files/ali%63e%2f..%2fbob/x",
            // Dot segments the URL parser resolves still land outside.
            "http://h/nc/remote.php/dav/files/alice/../bob/x",
            "http://h/nc/remote.php/dav/files/alice/%2e%2e/bob/x",
            "http://h/nc/remote.php/dav/files/alice/.%2e/.%2E/../x",
            "http://h/remote.php/dav/files/alice/x",
            "http://h/nc/remote.php/dav/files/alice/x#frag",
        ] {
            assert!(check(&g, "GET", url).is_err(), "{url} was granted");
        }
        // The user segment is the host's: an encoded form of it is the same user.
        assert!(check(&g, "GET", "http://h/nc/remote.php/dav/files/ali%63e/x").is_ok());
        assert!(check(&g, "GET", "http://h/nc/remote.php/dav/files/Alice/x").is_err());
        assert!(check(&g, "GET", "http://h/nc/remote.php/dav/files/alicex/x").is_err());
    }

    #[test]
    fn the_operator_narrows_and_alone_grants_writes() {
        // The component asks for everything; the operator grants one read.
        let g = grants("http://h", Some(&[Capability::FilesRead]), Capability::ALL);
        assert!(check(&g, "PROPFIND", "http://h/remote.php/dav/files/alice/").is_ok());
        let err = check(&g, "GET", "http://h/status.php").unwrap_err();
        assert!(err.contains("`server.status`"), "{err}");
        // A write granted by the operator and declared by the component.
        let g = grants("http://h", Some(&[Capability::FilesWrite]), Capability::ALL);
        assert!(check(&g, "PUT", "http://h/remote.php/dav/files/alice/x").is_ok());
        // Granted by the operator but not declared: refused.
        let g = grants("http://h", Some(&[Capability::FilesWrite]), READ_ONLY);
        assert!(check(&g, "PUT", "http://h/remote.php/dav/files/alice/x").is_err());
    }

    /// A core module holding the given custom sections.
    fn module_with(sections: &[(&str, &str)]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for (name, data) in sections {
            let mut body = vec![name.len() as u8];
            body.extend(name.as_bytes());
            body.extend(data.as_bytes());
            assert!(body.len() < 128, "one-byte LEB128 sizes only");
            wasm.push(0);
            wasm.push(body.len() as u8);
            wasm.extend(body);
        }
        wasm
    }

    #[test]
    fn the_declared_section_is_read_before_anything_runs() {
        let none = declared(&module_with(&[("other", "x")])).unwrap();
        assert!(!none.explicit);
        assert_eq!(none.capabilities, READ_ONLY.iter().copied().collect());

        let asked = declared(&module_with(&[(
            SECTION,
            r#"{"capabilities":["files.read","files.write"]}"#,
        )]))
        .unwrap();
        assert!(asked.explicit);
        assert_eq!(
            asked.capabilities,
            BTreeSet::from([Capability::FilesRead, Capability::FilesWrite])
        );

        for (sections, needle) in [
            (
                vec![(SECTION, r#"{"capabilities":["files.all"]}"#)],
                "`files.all`",
            ),
            (vec![(SECTION, "files.read")], "not the expected JSON"),
            (
                vec![(SECTION, r#"{"capabilities":[],"also":1}"#)],
                "not the expected JSON",
            ),
            (
                vec![
                    (SECTION, r#"{"capabilities":[]}"#),
                    (SECTION, r#"{"capabilities":[]}"#),
                ],
                "more than once",
            ),
        ] {
            let err = declared(&module_with(&sections)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(declared(b"not wasm").is_err());
    }

    #[test]
    fn manifests_are_read_and_refused_when_unclear() {
        assert_eq!(
            parse_names(["files.read", "shares.read"]).unwrap(),
            BTreeSet::from([Capability::FilesRead, Capability::SharesRead])
        );
        let err = parse_names(["files.everything"]).unwrap_err();
        assert!(
            err.contains("`files.everything`") && err.contains("files.read"),
            "{err}"
        );
        for c in Capability::ALL {
            assert_eq!(Capability::from_name(c.name()), Some(*c));
            assert!(!c.reach().is_empty());
        }
    }
}
