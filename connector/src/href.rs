//! Between server hrefs and the decoded paths records carry.
//!
//! Hrefs are percent-decoded strictly (RFC 3986: `+` stays `+`), one segment
//! at a time so an encoded `/` can never forge a segment boundary, and must
//! lie inside the user's DAV root on the configured origin.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use thiserror::Error;
use url::Url;

/// Every byte outside RFC 3986's unreserved set is encoded, as rclone does:
/// the server decodes all of them, and `#`, `?`, `%`, `;` must never reach it raw.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HrefError {
    #[error("href {0:?} is not valid percent-encoded UTF-8")]
    Encoding(String),
    #[error("href {0:?} points outside the user's files")]
    Outside(String),
    #[error("href {0:?} is on another origin")]
    OtherOrigin(String),
    #[error("href {0:?} has an empty, `.` or `..` segment")]
    BadSegment(String),
}

/// Percent-encodes one path segment.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Percent-encodes a decoded path (`/a b/c#d`) segment by segment.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// The user's WebDAV files root: `{base}/remote.php/dav/files/{user id}/`.
#[derive(Debug, Clone)]
pub struct DavRoot {
    base: Url,
    /// Decoded segments of the root's URL path, e.g. `["nextcloud", "remote.php", "dav", "files", "alice"]`.
    segments: Vec<String>,
    /// The root's URL path as this connector encodes it, without the last
    /// `/` (`/nextcloud/remote.php/dav/files/alice`): an href that starts
    /// with exactly these bytes is inside the root without decoding them.
    raw_prefix: String,
    root_url: String,
}

impl DavRoot {
    pub fn new(base_url: &str, user_id: &str) -> Result<Self, String> {
        let base = Url::parse(base_url).map_err(|e| format!("base URL {base_url:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!(
                "base URL {base_url:?} must start with http:// or https://"
            ));
        }
        // Hrefs are matched against the decoded id, and a `.` or `..` would
        // be resolved away in every URL: the server's `cloud/user` answer
        // must not steer requests outside the user's files.
        if user_id.is_empty() || user_id == "." || user_id == ".." || user_id.contains(['/', '\0'])
        {
            return Err(format!(
                "user id {user_id:?} cannot be used in a WebDAV path"
            ));
        }
        let mut segments: Vec<String> = base
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(|s| decode_segment(s).map_or_else(|| s.to_string(), Cow::into_owned))
            .collect();
        segments.extend(["remote.php", "dav", "files", user_id].map(String::from));
        let root_url = format!(
            "{}/remote.php/dav/files/{}/",
            base_url.trim_end_matches('/'),
            encode_segment(user_id)
        );
        let raw_prefix = format!(
            "{}/remote.php/dav/files/{}",
            base.path().trim_end_matches('/'),
            encode_segment(user_id)
        );
        Ok(DavRoot {
            base,
            segments,
            raw_prefix,
            root_url,
        })
    }

    /// The URL of a decoded path (`/` is the root).
    pub fn url_of(&self, path: &str) -> String {
        let rel = path.trim_start_matches('/');
        format!("{}{}", self.root_url, encode_path(rel))
    }

    /// The origin and prefix every href must share, for error messages.
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// The decoded path (`/`, `/Documents`, `/Documents/a b.txt`) an href names.
    pub fn path_of(&self, href: &str) -> Result<String, HrefError> {
        let raw_path = if href.starts_with('/') {
            href
        } else {
            let url = Url::parse(href).map_err(|_| HrefError::Encoding(href.to_string()))?;
            if url.origin() != self.base.origin() {
                return Err(HrefError::OtherOrigin(href.to_string()));
            }
            // Keep the path as written: `Url` re-encodes, and we decode ourselves.
            let start = href.find(url.path()).unwrap_or(0);
            &href[start..]
        };
        let raw_path = raw_path.split(['?', '#']).next().unwrap_or_default();
        let raw_path = raw_path.strip_suffix('/').unwrap_or(raw_path);
        // Decoded straight into the answer: this runs once per listed entry.
        let mut path = String::with_capacity(raw_path.len());
        // The root written as this connector writes it: only the rest is read.
        let (raw_path, mut depth) = match raw_path.strip_prefix(self.raw_prefix.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => (rest, self.segments.len()),
            _ => (raw_path, 0),
        };
        for raw in raw_path.split('/').skip(1) {
            let segment =
                decode_segment(raw).ok_or_else(|| HrefError::Encoding(href.to_string()))?;
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(HrefError::BadSegment(href.to_string()));
            }
            match self.segments.get(depth) {
                Some(root) if *root != *segment => {
                    return Err(HrefError::Outside(href.to_string()));
                }
                Some(_) => {}
                None => {
                    path.push('/');
                    path.push_str(&segment);
                }
            }
            depth += 1;
        }
        if depth < self.segments.len() {
            return Err(HrefError::Outside(href.to_string()));
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(path)
    }
}

fn decode_segment(raw: &str) -> Option<Cow<'_, str>> {
    // Most segments have nothing encoded, and a `&str` is UTF-8 already.
    let segment = if raw.contains('%') {
        percent_decode_str(raw).decode_utf8().ok()?
    } else {
        Cow::Borrowed(raw)
    };
    (!segment.contains(['/', '\0'])).then_some(segment)
}

/// A decoded path the server names in JSON (activity objects, share paths)
/// as records carry it: one leading `/`, none trailing; `None` when it has
/// an empty, `.` or `..` segment: that is no Nextcloud path, and a request
/// built from it could resolve outside the user's files.
///
/// Nextcloud's Activity app writes a moved or renamed item's path as its
/// folder's path, `/` and its name; the root's path is `/` itself, so an
/// item moved or renamed into the root is named `//name`. That one doubled
/// slash is accepted, and only at the start.
pub fn server_path(raw: &str) -> Option<String> {
    let trimmed = raw.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("//")
        .or_else(|| trimmed.strip_prefix('/'))
        .unwrap_or(trimmed);
    if rest.is_empty() {
        return Some("/".into());
    }
    if rest
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    Some(format!("/{rest}"))
}

/// The parent of a decoded path; `None` for the root.
pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last segment of a decoded path; empty for the root.
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_as_nextcloud_writes_them() {
        for (raw, path) in [
            ("/Documents/notes renamed.md", "/Documents/notes renamed.md"),
            // Moved or renamed into the root (activity-move-and-rename-at-root.json).
            ("//moved to root.txt", "/moved to root.txt"),
            ("//root-move-src renamed", "/root-move-src renamed"),
            // A destination folder with its trailing slash; the root as `//`.
            ("/Documents/", "/Documents"),
            ("//", "/"),
            ("/", "/"),
            ("", "/"),
            ("Shared with Bob", "/Shared with Bob"),
        ] {
            assert_eq!(server_path(raw).as_deref(), Some(path), "{raw:?}");
        }
        for raw in [
            "/../../bob/x",
            "/a/./b",
            "/a//b",
            "///x",
            "//a//b",
            "/..",
            "//..",
            "/a/../../b",
        ] {
            assert_eq!(server_path(raw), None, "{raw:?}");
        }
    }

    fn root() -> DavRoot {
        DavRoot::new("https://cloud.example.com", "alice").unwrap()
    }

    #[test]
    fn decodes_the_fixture_hrefs() {
        let r = root();
        let cases = [
            ("/remote.php/dav/files/alice/", "/"),
            ("/remote.php/dav/files/alice/Documents/", "/Documents"),
            (
                "/remote.php/dav/files/alice/100%25%20pure.txt",
                "/100% pure.txt",
            ),
            (
                "/remote.php/dav/files/alice/Projects/beta/notes%2bplus.txt",
                "/Projects/beta/notes+plus.txt",
            ),
            (
                "/remote.php/dav/files/alice/Projects/beta/it%27s%20quoted.txt",
                "/Projects/beta/it's quoted.txt",
            ),
            ("/remote.php/dav/files/alice/what%3f.txt", "/what?.txt"),
            ("/remote.php/dav/files/alice/a%23b.txt", "/a#b.txt"),
            (
                "/remote.php/dav/files/alice/Sp%c3%a9cial%20%231%20%26%20100%25%20done/x%3d1%3by%3d2.txt",
                "/Spécial #1 & 100% done/x=1;y=2.txt",
            ),
            (
                "/remote.php/dav/files/alice/Reports%202024/Summary%20%26%20Plan%20%231%20(100%25).txt",
                "/Reports 2024/Summary & Plan #1 (100%).txt",
            ),
            (
                "/remote.php/dav/files/alice/Music/emoji%20%f0%9f%8e%b5%20song.txt",
                "/Music/emoji 🎵 song.txt",
            ),
            // Uppercase hex is just as valid.
            ("/remote.php/dav/files/alice/R%C3%A9sum%C3%A9", "/Résumé"),
            // A literal plus is never a space.
            ("/remote.php/dav/files/alice/a+b.txt", "/a+b.txt"),
        ];
        for (href, path) in cases {
            assert_eq!(r.path_of(href).unwrap(), path, "{href}");
        }
    }

    #[test]
    fn respects_an_install_subpath() {
        let r = DavRoot::new("https://host/nextcloud/", "alice").unwrap();
        assert_eq!(
            r.path_of("/nextcloud/remote.php/dav/files/alice/a%20b/")
                .unwrap(),
            "/a b"
        );
        assert_eq!(
            r.url_of("/a b/c#d"),
            "https://host/nextcloud/remote.php/dav/files/alice/a%20b/c%23d"
        );
        assert!(matches!(
            r.path_of("/remote.php/dav/files/alice/a"),
            Err(HrefError::Outside(_))
        ));
    }

    #[test]
    fn refuses_hrefs_outside_the_root() {
        let r = root();
        for href in [
            "/remote.php/dav/files/bob/secret.txt",
            "/remote.php/dav/files/alicex/a.txt",
            "/remote.php/dav/files/",
            "/etc/passwd",
        ] {
            assert!(
                matches!(r.path_of(href), Err(HrefError::Outside(_))),
                "{href}"
            );
        }
        for href in [
            "/remote.php/dav/files/alice/../bob/x",
            "/remote.php/dav/files/alice/./x",
            "/remote.php/dav/files/alice//x",
            "/remote.php/dav/files/alice/%2e%2e/bob",
        ] {
            assert!(
                matches!(r.path_of(href), Err(HrefError::BadSegment(_))),
                "{href}"
            );
        }
        // An encoded slash would otherwise forge a segment boundary.
        assert!(matches!(
            r.path_of("/remote.php/dav/files/alice/a%2fb"),
            Err(HrefError::Encoding(_))
        ));
        assert!(matches!(
            r.path_of("/remote.php/dav/files/alice/%ff"),
            Err(HrefError::Encoding(_))
        ));
    }

    #[test]
    fn absolute_hrefs_must_share_the_origin() {
        let r = root();
        assert_eq!(
            r.path_of("https://cloud.example.com/remote.php/dav/files/alice/x%20y")
                .unwrap(),
            "/x y"
        );
        for href in [
            "https://evil.example/remote.php/dav/files/alice/x",
            "http://cloud.example.com/remote.php/dav/files/alice/x",
            "https://cloud.example.com:8443/remote.php/dav/files/alice/x",
        ] {
            assert!(
                matches!(r.path_of(href), Err(HrefError::OtherOrigin(_))),
                "{href}"
            );
        }
    }

    #[test]
    fn encodes_every_reserved_byte() {
        assert_eq!(
            encode_path("/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf"),
            "/Reports%202024/Q1%20r%C3%A9sum%C3%A9%20%231%20%26%20100%25%20%28final%29%3F.pdf"
        );
        assert_eq!(encode_segment("a+b;c=d'e"), "a%2Bb%3Bc%3Dd%27e");
        assert_eq!(encode_segment("safe-._~AZaz09"), "safe-._~AZaz09");
    }

    #[test]
    fn user_ids_are_encoded_in_urls_and_matched_decoded() {
        let r = DavRoot::new("http://127.0.0.1:8080", "alice@example.com").unwrap();
        assert_eq!(
            r.root_url(),
            "http://127.0.0.1:8080/remote.php/dav/files/alice%40example.com/"
        );
        assert_eq!(
            r.path_of("/remote.php/dav/files/alice@example.com/a")
                .unwrap(),
            "/a"
        );
        assert_eq!(
            r.path_of("/remote.php/dav/files/alice%40example.com/a")
                .unwrap(),
            "/a"
        );
    }

    #[test]
    fn user_ids_that_no_href_could_match_are_refused() {
        // Found by `fuzz/` (href): with a NUL in the id, no href decoded to
        // the root, so every entry of every listing was skipped.
        for id in ["", ".", "..", "a/b", "ali\0ce"] {
            assert!(
                DavRoot::new("https://cloud.example.com", id).is_err(),
                "{id:?}"
            );
        }
        let r = DavRoot::new("https://cloud.example.com", "a b.c").unwrap();
        assert_eq!(r.path_of(&r.url_of("/c")).unwrap(), "/c");
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b c"), Some("/a"));
        assert_eq!(name_of("/a/b c"), "b c");
        assert_eq!(name_of("/"), "");
    }

    proptest::proptest! {
        #[test]
        fn encode_then_decode_is_identity(segs in proptest::collection::vec("[^/\u{0}]{1,12}", 1..6)) {
            let segs: Vec<String> = segs.into_iter().filter(|s| s != "." && s != "..").collect();
            proptest::prop_assume!(!segs.is_empty());
            let path = format!("/{}", segs.join("/"));
            let r = root();
            let url = r.url_of(&path);
            proptest::prop_assert_eq!(r.path_of(&url).unwrap(), path);
        }
    }
}
