//! File bodies (stored bytes or synthetic, generated on demand) and mime types.

use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Content {
    Bytes(Arc<[u8]>),
    /// `size` bytes derived from `seed`; never materialised as a whole.
    Synthetic {
        seed: u64,
        size: u64,
    },
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Synthetic { size, .. } => *size,
        }
    }

    /// Bytes `[start, end)` of the body.
    pub fn slice(&self, start: u64, end: u64) -> Vec<u8> {
        match self {
            Content::Bytes(b) => b[start as usize..end as usize].to_vec(),
            Content::Synthetic { seed, .. } => synthetic(*seed, start, end),
        }
    }
}

pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Printable text, so a synthetic file looks like a plain document when
/// opened; each 8-byte block depends only on (seed, block index), so any range
/// can be produced without the bytes before it.
pub fn synthetic(seed: u64, start: u64, end: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 64] =
        b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut pos = start;
    while pos < end {
        let block = pos / 8;
        let word = splitmix64(seed ^ splitmix64(block));
        let from = (pos % 8) as usize;
        let to = ((end - block * 8).min(8)) as usize;
        for i in from..to {
            out.push(ALPHABET[((word >> (i * 8)) & 63) as usize]);
        }
        pos = block * 8 + to as u64;
    }
    out
}

/// The mime type Nextcloud's default mimetype map
/// (`resources/config/mimetypemapping.dist.json`) gives a name; a name
/// whose extension it lacks is `application/octet-stream`, whatever its
/// content.
pub fn mime_for(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "txt" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "py" => "text/x-python",
        "c" => "text/x-c",
        "h" => "text/x-h",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "bin" => "application/x-bin",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

/// The `Content-Type` of a download: `getSecureMimeType` turns types a
/// browser would run (HTML, SVG, scripts, JSON, XML) into `text/plain`, and
/// PHP adds `;charset=UTF-8` to every `text/` type sent without a charset.
pub fn download_type(name: &str) -> String {
    let secure = match mime_for(name) {
        "text/html"
        | "image/svg+xml"
        | "application/javascript"
        | "application/json"
        | "application/xml" => "text/plain",
        other => other,
    };
    if secure.starts_with("text/") {
        format!("{secure};charset=UTF-8")
    } else {
        secure.to_string()
    }
}

/// Whether the default preview providers cover this mime type (`nc:has-preview`).
pub fn has_preview(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg"
            | "image/png"
            | "image/gif"
            | "image/webp"
            | "image/heic"
            | "text/plain"
            | "text/markdown"
            | "audio/mpeg"
    ) || mime.starts_with("application/vnd.oasis.opendocument.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_ranges_agree_with_the_whole() {
        let whole = synthetic(42, 0, 1000);
        assert_eq!(whole.len(), 1000);
        for (a, b) in [(0, 1), (3, 17), (8, 16), (999, 1000), (5, 5), (123, 777)] {
            assert_eq!(synthetic(42, a, b), whole[a as usize..b as usize]);
        }
        assert_ne!(synthetic(43, 0, 64), whole[..64]);
    }

    #[test]
    fn mime_types_match_fixtures() {
        assert_eq!(mime_for("Q1 résumé.pdf"), "application/pdf");
        assert_eq!(mime_for("main.py"), "text/x-python");
        assert_eq!(
            mime_for("budget.ods"),
            "application/vnd.oasis.opendocument.spreadsheet"
        );
        assert_eq!(mime_for("Ελληνικά.mp3"), "audio/mpeg");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }

    /// As Nextcloud 32.0.1 answered the conformance test's listing and HEADs.
    #[test]
    fn mime_and_download_types_match_the_real_server() {
        for (name, mime, download) in [
            ("a.html", "text/html", "text/plain;charset=UTF-8"),
            ("b.svg", "image/svg+xml", "text/plain;charset=UTF-8"),
            ("c.json", "application/json", "text/plain;charset=UTF-8"),
            ("d.csv", "text/csv", "text/csv;charset=UTF-8"),
            ("e.xml", "application/xml", "text/plain;charset=UTF-8"),
            ("f.jpg", "image/jpeg", "image/jpeg"),
            ("g.bin", "application/x-bin", "application/x-bin"),
            ("h.js", "application/javascript", "text/plain;charset=UTF-8"),
            ("i.css", "text/css", "text/css;charset=UTF-8"),
            (
                "j.log",
                "application/octet-stream",
                "application/octet-stream",
            ),
            ("k.h", "text/x-h", "text/x-h;charset=UTF-8"),
            (
                "l.rs",
                "application/octet-stream",
                "application/octet-stream",
            ),
            ("n.md", "text/markdown", "text/markdown;charset=UTF-8"),
            ("o.PDF", "application/pdf", "application/pdf"),
            ("t.txt", "text/plain", "text/plain;charset=UTF-8"),
        ] {
            assert_eq!(mime_for(name), mime, "{name}");
            assert_eq!(download_type(name), download, "{name}");
        }
    }
}
