//! The path cache: the external id of every folder a run placed, by path,
//! so a record's parent id is known without a request.
//!
//! A listing of a million entries places ~100,000 folders; keeping their
//! paths as strings grew the guest by ~16 MiB, and WebAssembly memory never
//! shrinks. A folder is kept as a 128-bit digest of its path (two SipHash
//! passes under different keys) and its numeric id: 24 bytes. Two paths of
//! one account sharing a digest is a 2^-128-scale event per pair.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

#[derive(Default)]
pub struct PathCache {
    folders: HashMap<u128, u64>,
}

fn digest(path: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        path.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl PathCache {
    pub fn get(&self, path: &str) -> Option<u64> {
        self.folders.get(&digest(path)).copied()
    }

    pub fn insert(&mut self, path: &str, id: u64) {
        self.folders.insert(digest(path), id);
    }

    /// Keeps an id already cached at `path`.
    pub fn insert_if_absent(&mut self, path: &str, id: u64) {
        self.folders.entry(digest(path)).or_insert(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_differ_anywhere_are_apart() {
        let mut cache = PathCache::default();
        cache.insert("/a/b", 1);
        cache.insert("/a/c", 2);
        cache.insert("/a/b/", 3);
        cache.insert_if_absent("/a/b", 9);
        assert_eq!(cache.get("/a/b"), Some(1));
        assert_eq!(cache.get("/a/c"), Some(2));
        assert_eq!(cache.get("/a/b/"), Some(3));
        assert_eq!(cache.get("/a"), None);
    }
}
