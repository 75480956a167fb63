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

/// The mime type Nextcloud's default mimetype map gives a name.
pub fn mime_for(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "py" => "text/x-python",
        "rs" => "text/x-rust",
        "c" | "h" => "text/x-c",
        "js" => "application/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
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
}
