//! The exact escaping rules of the real server: Sabre's href encoding, PHP's
//! `rawurlencode`, XMLWriter's text escaping and `json_encode`'s defaults.

use std::fmt::Write as _;

/// Sabre's `encodePathSegment`: everything except `A-Za-z0-9_-.~():@` becomes
/// `%xx` with lowercase hex (the fixtures show `%c3%a9`, `%2b`, and `(`/`)` as is).
pub fn href_segment(out: &mut String, segment: &str) {
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_-.~():@".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
}

/// A decoded path ("/a b/c") as an href suffix ("a%20b/c"), no leading slash.
pub fn href_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for (i, seg) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i > 0 {
            out.push('/');
        }
        href_segment(&mut out, seg);
    }
    out
}

/// PHP's `rawurlencode` (uppercase hex), used in `Content-Disposition`.
pub fn rawurlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A query string or form body as PHP's `$_GET`/`$_POST` read it: `+` is a
/// space, `%xx` escapes are decoded (invalid ones kept as they are).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                },
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// PHP's `urlencode` (what `http_build_query` uses): space as `+`.
pub fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Strict RFC 3986 percent-decoding: a `%` must be followed by two hex digits
/// (either case), `+` stays `+`, and the result must be UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// XMLWriter's text escaping: `"` becomes `&quot;`, which is why etags show up
/// as `&quot;…&quot;` in the fixtures.
pub fn xml_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

/// A JSON string as PHP's `json_encode` writes it with default flags: `/` as
/// `\/` and every non-ASCII character as `\uXXXX`. The fixtures'
/// `Content-Length`s only add up with these rules.
pub fn php_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn href_matches_fixture_encoding() {
        assert_eq!(
            href_path("/Spécial #1 & 100% done/x=1;y=2.txt"),
            "Sp%c3%a9cial%20%231%20%26%20100%25%20done/x%3d1%3by%3d2.txt"
        );
        assert_eq!(
            href_path("/Reports 2024/Summary & Plan #1 (100%).txt"),
            "Reports%202024/Summary%20%26%20Plan%20%231%20(100%25).txt"
        );
        assert_eq!(
            href_path("/it's/notes+plus?.txt"),
            "it%27s/notes%2bplus%3f.txt"
        );
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(percent_decode("a%2Bb%2bc+d").as_deref(), Some("a+b+c+d"));
        assert_eq!(
            percent_decode("r%C3%A9sum%c3%a9").as_deref(),
            Some("résumé")
        );
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn php_json_escapes_like_php() {
        let mut out = String::new();
        php_json_string(&mut out, "Å/😀\"\n");
        assert_eq!(out, r#""\u00c5\/\ud83d\ude00\"\n""#);
    }

    #[test]
    fn rawurlencode_is_uppercase() {
        assert_eq!(rawurlencode("Q1 résumé.pdf"), "Q1%20r%C3%A9sum%C3%A9.pdf");
    }
}
