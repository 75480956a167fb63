//! How results look: aligned text for people, JSON for programs.

use crate::commands::{ConnectionReport, SyncReport};
use crate::store::SinkRecord;
use crate::timefmt::rfc3339_utc;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write as _;

/// `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `s` with its control characters escaped (`\u{1b}`), for text bound for a
/// terminal: names and paths come from the connector, and a raw escape
/// sequence in one could clear the screen, retitle the window or hide lines.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `2024-05-01 12:00` (UTC).
fn short_time(unix: i64) -> String {
    let t = rfc3339_utc(unix);
    format!("{} {}", &t[..10], &t[11..16])
}

/// One line of `records --json`.
#[derive(Debug, Serialize)]
pub struct RecordLine<'a> {
    pub external_id: &'a str,
    pub path: &'a str,
    pub is_folder: bool,
    pub etag: &'a str,
    pub size: u64,
    pub mime_type: &'a str,
    /// RFC 3339, UTC.
    pub modified: String,
    pub parent_external_id: Option<&'a str>,
    /// `owner`, `write` or `read`: the first permission entry's level.
    pub permission: Option<&'a str>,
    pub permission_letters: &'a str,
    /// Every principal with access: the syncing user first, then the owner
    /// of an item shared with them, then whoever they shared it with.
    pub permissions: &'a [crate::model::Permission],
    pub owner_id: Option<&'a str>,
}

impl<'a> RecordLine<'a> {
    pub fn of(r: &'a SinkRecord) -> RecordLine<'a> {
        RecordLine {
            external_id: &r.external_id,
            path: &r.path,
            is_folder: r.is_folder,
            etag: &r.etag,
            size: r.size,
            mime_type: &r.mime_type,
            modified: rfc3339_utc(r.modified),
            parent_external_id: r.parent_external_id.as_deref(),
            permission: r.permission.as_deref(),
            permission_letters: &r.permission_letters,
            permissions: &r.permissions,
            owner_id: r.owner_id.as_deref(),
        }
    }
}

/// The records as an indented tree with aligned columns.
pub fn record_tree(records: &[SinkRecord]) -> String {
    if records.is_empty() {
        return "No records yet.\n".to_string();
    }
    let id_width = records
        .iter()
        .map(|r| printable(&r.external_id).chars().count())
        .max()
        .unwrap_or(0)
        .max(2);
    // Sort by path segments, so that `/A B` does not land between `/A` and
    // `/A/x` as it would in plain byte order.
    let mut records: Vec<&SinkRecord> = records.iter().collect();
    records.sort_by(|a, b| {
        a.path
            .split('/')
            .filter(|s| !s.is_empty())
            .cmp(b.path.split('/').filter(|s| !s.is_empty()))
    });
    let sizes: Vec<String> = records.iter().map(|r| human_size(r.size)).collect();
    let size_width = sizes.iter().map(String::len).max().unwrap_or(0).max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>id_width$}  {:<5}  {:>size_width$}  {:<16}  NAME",
        "ID", "PERM", "SIZE", "MODIFIED (UTC)"
    );
    for (r, size) in records.iter().zip(&sizes) {
        let depth = if r.path == "/" {
            0
        } else {
            r.path.matches('/').count()
        };
        let name = if r.path == "/" {
            "/".to_string()
        } else if r.is_folder {
            format!("{}/", printable(&r.name))
        } else {
            printable(&r.name).into_owned()
        };
        let _ = writeln!(
            out,
            "{:>id_width$}  {:<5}  {:>size_width$}  {:<16}  {}{}",
            printable(&r.external_id),
            r.permission.as_deref().unwrap_or("-"),
            size,
            short_time(r.modified),
            "  ".repeat(depth.saturating_sub(1)),
            name
        );
    }
    let folders = records.iter().filter(|r| r.is_folder).count();
    let _ = writeln!(
        out,
        "{folders} folder{}, {} file{}",
        if folders == 1 { "" } else { "s" },
        records.len() - folders,
        if records.len() - folders == 1 {
            ""
        } else {
            "s"
        }
    );
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

/// A sync's counts, aligned.
pub fn sync_summary(r: &SyncReport) -> String {
    let mut out = format!(
        "{} sync finished in {}\n",
        match r.mode {
            crate::commands::SyncMode::Full => "Full",
            crate::commands::SyncMode::Incremental => "Incremental",
        },
        seconds(r.duration_ms)
    );
    for (label, n) in [
        ("new", r.new),
        ("content updated", r.content_updated),
        ("metadata updated", r.metadata_updated),
        ("deleted", r.deleted),
        ("unchanged", r.unchanged),
        ("requests", r.requests),
        ("bytes received", r.bytes_received),
    ] {
        let _ = writeln!(out, "  {label:<17} {n:>8}");
    }
    out
}

/// What the connector learnt of the account; every value came through it,
/// so each is made printable.
pub fn connection(base_url: &str, r: &ConnectionReport) -> String {
    let mut out = format!(
        "Connected to {} as {}\n",
        printable(base_url),
        printable(&r.user_id)
    );
    for (label, value) in [
        ("user id", r.user_id.clone()),
        ("display name", r.display_name.clone()),
        ("email", r.email.clone().unwrap_or_else(|| "-".into())),
        (
            "server version",
            r.server_version.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "activity app",
            if r.activity_available {
                "available".into()
            } else {
                "not available (incremental syncs walk the tree by etags)".into()
            },
        ),
        (
            "requests",
            format!("{} in {}", r.requests, seconds(r.duration_ms)),
        ),
    ] {
        let _ = writeln!(out, "  {label:<15} {}", printable(&value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(id: &str, path: &str, folder: bool, size: u64) -> SinkRecord {
        SinkRecord {
            record: crate::model::Record {
                external_id: id.into(),
                parent_external_id: (path != "/").then(|| "1".into()),
                path: path.into(),
                name: path.rsplit('/').next().unwrap().into(),
                is_folder: folder,
                etag: "e".into(),
                size,
                mime_type: "text/plain".into(),
                modified: 1_714_564_800,
                created: None,
                permission_letters: "RGDNVW".into(),
                permissions: vec![],
                owner_id: None,
                checksums: vec![],
            },
            permission: Some("owner".into()),
            version: 1,
            updated_at: 0,
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn tree_indents_by_depth_and_aligns() {
        let text = record_tree(&[
            sink("1", "/", true, 2048),
            sink("2", "/Docs", true, 2048),
            sink("3", "/Docs b.txt", false, 2048),
            sink("10", "/Docs/a.txt", false, 2048),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[1].ends_with("  /"), "{text}");
        assert!(lines[2].ends_with("  Docs/"), "{text}");
        assert!(lines[3].ends_with("    a.txt"), "{text}");
        assert!(
            lines[4].ends_with("  Docs b.txt"),
            "children stay under their folder: {text}"
        );
        assert!(lines[3].contains("2024-05-01 12:00"), "{text}");
        let col = |l: &str| l.find("owner").unwrap();
        assert!(
            lines[1..5].iter().all(|l| col(l) == col(lines[1])),
            "{text}"
        );
        assert_eq!(lines[5], "2 folders, 2 files");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert!(matches!(printable("Q1 résumé 🎵.pdf"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\x1b[2Jx\0\n\u{9b}\x7f"),
            r"\u{1b}[2Jx\u{0}\u{a}\u{9b}\u{7f}"
        );
        let mut r = sink("\x1b]0;id\x07", "/\x1b[2J", false, 1);
        r.name = "\x1b[2J".into();
        let text = record_tree(&[r]);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(
            text.contains(r"\u{1b}[2J") && text.contains(r"\u{1b}]0;id\u{7}"),
            "{text}"
        );
    }

    #[test]
    fn json_line_has_exactly_the_documented_fields() {
        let r = sink("10", "/Docs/a.txt", false, 3);
        let v = serde_json::to_value(RecordLine::of(&r)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "external_id",
            "path",
            "is_folder",
            "etag",
            "size",
            "mime_type",
            "modified",
            "parent_external_id",
            "permission",
            "permission_letters",
            "permissions",
            "owner_id",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["modified"], "2024-05-01T12:00:00Z");
        assert_eq!(v["permission"], "owner");
        assert_eq!(v["parent_external_id"], "1");
    }
}
