//! MIME types by extension, for when the server sends none.

/// Nextcloud's own MIME type for folders.
pub const FOLDER: &str = "httpd/unix-directory";
const FALLBACK: &str = "application/octet-stream";

const BY_EXTENSION: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("heic", "image/heic"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("md", "text/markdown"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("ogg", "audio/ogg"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("py", "text/x-python"),
    ("rtf", "application/rtf"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("txt", "text/plain"),
    ("wav", "audio/wav"),
    ("webp", "image/webp"),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("xml", "application/xml"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
];

/// The MIME type for a file name, by its last extension.
pub fn by_name(name: &str) -> &'static str {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return FALLBACK;
    };
    let ext = ext.to_ascii_lowercase();
    BY_EXTENSION
        .binary_search_by(|(e, _)| e.cmp(&ext.as_str()))
        .map(|i| BY_EXTENSION[i].1)
        .unwrap_or(FALLBACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(BY_EXTENSION.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn guesses_by_last_extension_case_insensitively() {
        assert_eq!(by_name("Q1 résumé.PDF"), "application/pdf");
        assert_eq!(by_name("backup.tar.gz"), "application/gzip");
        assert_eq!(by_name("README"), FALLBACK);
        assert_eq!(by_name("archive.unknownext"), FALLBACK);
    }
}
