//! What a run has decided about each id and path so far, and so what its
//! deletion passes must leave alone.

use crate::ids::IdSet;

#[derive(Default)]
pub struct Marks {
    /// Taken this run.
    seen: IdSet,
    /// To be taken later this run: never deleted meanwhile.
    reserved: IdSet,
    /// Known paths of folders this run will relist from where they are now:
    /// what is below them moved with them and is not deleted from there.
    reserved_paths: Vec<String>,
    /// Files the filter leaves out: deleted if known.
    excluded: IdSet,
    /// Deleted this run, so each deletion is sent once.
    deleted: IdSet,
    /// Paths of entries that could not be read; what is known there is kept.
    protected: Vec<String>,
}

/// `to_record` only accepts numeric file ids; anything else never matches.
pub fn file_id(external_id: &str) -> u64 {
    external_id.parse().unwrap_or(u64::MAX)
}

impl Marks {
    pub fn has_seen(&self, external_id: &str) -> bool {
        self.seen.contains(file_id(external_id))
    }

    /// False when it was taken before.
    pub fn see(&mut self, external_id: &str) -> bool {
        self.seen.insert(file_id(external_id))
    }

    pub fn is_deleted(&self, external_id: &str) -> bool {
        self.deleted.contains(file_id(external_id))
    }

    /// False when its deletion was sent before.
    pub fn delete(&mut self, external_id: &str) -> bool {
        self.deleted.insert(file_id(external_id))
    }

    pub fn reserve(&mut self, external_id: &str) {
        self.reserved.insert(file_id(external_id));
    }

    pub fn reserve_path(&mut self, known_path: &str) {
        self.reserved_paths.push(known_path.to_string());
    }

    /// The folder is being relisted now: its own deletion passes may act below it.
    pub fn release_path(&mut self, known_path: &str) {
        self.reserved_paths.retain(|p| p != known_path);
    }

    /// The newest reading of an item decides whether the filter keeps it.
    pub fn set_excluded(&mut self, external_id: &str, excluded: bool) {
        let id = file_id(external_id);
        if excluded {
            self.excluded.insert(id);
        } else {
            self.excluded.remove(id);
        }
    }

    /// Whether the filter leaves it out; it is then no longer reserved.
    pub fn take_excluded(&mut self, external_id: &str) -> bool {
        let id = file_id(external_id);
        let excluded = self.excluded.contains(id);
        if excluded {
            self.reserved.remove(id);
        }
        excluded
    }

    pub fn protect(&mut self, path: String) {
        self.protected.push(path);
    }

    /// Whether a deletion pass must leave the known record alone.
    pub fn keeps(&self, external_id: &str, path: &str) -> bool {
        let id = file_id(external_id);
        self.seen.contains(id)
            || self.reserved.contains(id)
            || self
                .protected
                .iter()
                .any(|p| path == p || is_under(path, p))
            || self.reserved_paths.iter().any(|p| is_under(path, p))
    }
}

/// Whether `path` lies strictly below the folder `folder`.
fn is_under(path: &str, folder: &str) -> bool {
    folder == "/" && path != "/"
        || path.len() > folder.len()
            && path.starts_with(folder)
            && path.as_bytes()[folder.len()] == b'/'
}
