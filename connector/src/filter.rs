//! Which files a sync keeps. Folders are always kept, so the hierarchy stays
//! whole even where nothing below a folder is included.

use crate::model::{Filters, Record};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lower-case, without a leading dot: `pdf`, `tar.gz`.
    include: Vec<String>,
    exclude: Vec<String>,
    modified: (Option<i64>, Option<i64>),
    created: (Option<i64>, Option<i64>),
}

fn extensions(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn within((after, before): (Option<i64>, Option<i64>), t: i64) -> bool {
    after.is_none_or(|a| t >= a) && before.is_none_or(|b| t <= b)
}

impl Filter {
    pub fn new(f: &Filters) -> Self {
        Filter {
            include: extensions(&f.include_extensions),
            exclude: extensions(&f.exclude_extensions),
            modified: (f.modified_after, f.modified_before),
            created: (f.created_after, f.created_before),
        }
    }

    /// Whether a file passes. A file's creation time is `nc:creation_time`
    /// when the client that uploaded it sent one, else its upload time; a
    /// file with neither is outside any created-date range, because nothing
    /// says it is inside.
    pub fn keeps(&self, record: &Record, upload_time: Option<i64>) -> bool {
        if record.is_folder {
            return true;
        }
        let name = record.name.to_lowercase();
        let has = |ext: &String| {
            name.len() > ext.len() + 1
                && name.ends_with(ext.as_str())
                && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
        };
        if !self.include.is_empty() && !self.include.iter().any(has) {
            return false;
        }
        if self.exclude.iter().any(has) {
            return false;
        }
        if !within(self.modified, record.modified) {
            return false;
        }
        if self.created != (None, None) {
            return match record.created.or(upload_time) {
                Some(t) => within(self.created, t),
                None => false,
            };
        }
        true
    }

    /// A stable text for the filter, stored with the records it selected: a
    /// different one means the records must be selected again.
    pub fn fingerprint(&self) -> String {
        format!(
            "include={};exclude={};modified={:?};created={:?}",
            self.include.join(","),
            self.exclude.join(","),
            self.modified,
            self.created
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, modified: i64, created: Option<i64>) -> Record {
        Record {
            external_id: "1".into(),
            parent_external_id: None,
            path: format!("/{name}"),
            name: name.into(),
            is_folder: false,
            etag: "e".into(),
            size: 1,
            mime_type: "text/plain".into(),
            modified,
            created,
            permission_letters: "RGDNVW".into(),
            permissions: vec![],
            owner_id: None,
            checksums: vec![],
        }
    }

    fn filter(f: Filters) -> Filter {
        Filter::new(&f)
    }

    #[test]
    fn extensions_are_case_insensitive_dot_optional_and_multi_part() {
        let f = filter(Filters {
            include_extensions: vec![".PDF".into(), "tar.gz".into()],
            ..Filters::default()
        });
        assert!(f.keeps(&file("Q1.pdf", 0, None), None));
        assert!(f.keeps(&file("Q1.PdF", 0, None), None));
        assert!(f.keeps(&file("backup.TAR.GZ", 0, None), None));
        assert!(!f.keeps(&file("backup.gz", 0, None), None));
        assert!(
            !f.keeps(&file("pdf", 0, None), None),
            "a bare name is not an extension"
        );
        assert!(!f.keeps(&file("notes.txt", 0, None), None));
        assert!(!f.keeps(&file("xpdf", 0, None), None));
        let mut folder = file("archive.zip", 0, None);
        folder.is_folder = true;
        assert!(f.keeps(&folder, None), "folders are always kept");
    }

    #[test]
    fn exclusions_win() {
        let f = filter(Filters {
            include_extensions: vec!["gz".into()],
            exclude_extensions: vec!["tar.gz".into()],
            ..Filters::default()
        });
        assert!(f.keeps(&file("a.gz", 0, None), None));
        assert!(!f.keeps(&file("a.tar.gz", 0, None), None));
    }

    #[test]
    fn date_ranges_are_inclusive() {
        let f = filter(Filters {
            modified_after: Some(100),
            modified_before: Some(200),
            ..Filters::default()
        });
        assert!(!f.keeps(&file("a", 99, None), None));
        assert!(f.keeps(&file("a", 100, None), None));
        assert!(f.keeps(&file("a", 200, None), None));
        assert!(!f.keeps(&file("a", 201, None), None));
    }

    #[test]
    fn unknown_creation_falls_back_to_upload_time_then_excludes() {
        let f = filter(Filters {
            created_after: Some(100),
            ..Filters::default()
        });
        assert!(
            f.keeps(&file("a", 0, Some(150)), Some(50)),
            "creation time wins"
        );
        assert!(!f.keeps(&file("a", 0, Some(50)), Some(150)));
        assert!(
            f.keeps(&file("a", 0, None), Some(150)),
            "upload time stands in"
        );
        assert!(
            !f.keeps(&file("a", 0, None), None),
            "nothing known: outside the range"
        );
        let none = filter(Filters::default());
        assert!(
            none.keeps(&file("a", 0, None), None),
            "no created filter: kept"
        );
    }

    #[test]
    fn fingerprints_ignore_spelling() {
        let a = filter(Filters {
            include_extensions: vec![".PDF".into(), "docx".into()],
            ..Filters::default()
        });
        let b = filter(Filters {
            include_extensions: vec!["docx".into(), "pdf".into()],
            ..Filters::default()
        });
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), filter(Filters::default()).fingerprint());
    }
}
