//! A compact set of file ids.
//!
//! A run remembers every id it took, and WebAssembly memory never shrinks:
//! a hash set of a million `u64`s grows the guest by ~28 MiB at its last
//! resize. Nextcloud's file ids are dense integers (one counter per
//! server), so they are kept the way a Roaring bitmap keeps them: by their
//! high bits in blocks, each block a sorted list while sparse and a bitmap
//! once dense. A million ids of one account take ~2 bytes each at worst
//! (ids spread thinly over a busy server) and ~0.13 bytes when dense.
//! (The `roaring` crate does this and more, at a size the guest's 1 MB
//! budget has no room for.)

use std::collections::HashMap;

/// Ids per block: the low 16 bits.
const BLOCK_BITS: u32 = 16;
/// A sparse block becomes a bitmap past this many ids, where the sorted
/// list (2 bytes an id) would outgrow the bitmap (8 KiB).
const SPARSE_MAX: usize = 4096;
const WORDS: usize = (1 << BLOCK_BITS) / 64;

enum Block {
    Sparse(Vec<u16>),
    Dense(Box<[u64; WORDS]>),
}

#[derive(Default)]
pub struct IdSet {
    blocks: HashMap<u64, Block>,
    len: usize,
}

fn split(id: u64) -> (u64, u16) {
    (id >> BLOCK_BITS, id as u16)
}

impl IdSet {
    pub fn new() -> Self {
        IdSet::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, id: u64) -> bool {
        let (high, low) = split(id);
        match self.blocks.get(&high) {
            None => false,
            Some(Block::Sparse(ids)) => ids.binary_search(&low).is_ok(),
            Some(Block::Dense(bits)) => bits[low as usize / 64] & (1 << (low % 64)) != 0,
        }
    }

    /// False when it was there already.
    pub fn insert(&mut self, id: u64) -> bool {
        let (high, low) = split(id);
        let block = self
            .blocks
            .entry(high)
            .or_insert_with(|| Block::Sparse(Vec::new()));
        let added = match block {
            Block::Sparse(ids) => match ids.binary_search(&low) {
                Ok(_) => false,
                Err(at) => {
                    ids.insert(at, low);
                    if ids.len() > SPARSE_MAX {
                        let mut bits = Box::new([0u64; WORDS]);
                        for &i in ids.iter() {
                            bits[i as usize / 64] |= 1 << (i % 64);
                        }
                        *block = Block::Dense(bits);
                    }
                    true
                }
            },
            Block::Dense(bits) => {
                let (word, bit) = (low as usize / 64, 1u64 << (low % 64));
                let added = bits[word] & bit == 0;
                bits[word] |= bit;
                added
            }
        };
        self.len += usize::from(added);
        added
    }

    /// False when it was not there.
    pub fn remove(&mut self, id: u64) -> bool {
        let (high, low) = split(id);
        let removed = match self.blocks.get_mut(&high) {
            None => false,
            Some(Block::Sparse(ids)) => match ids.binary_search(&low) {
                Ok(at) => {
                    ids.remove(at);
                    true
                }
                Err(_) => false,
            },
            Some(Block::Dense(bits)) => {
                let (word, bit) = (low as usize / 64, 1u64 << (low % 64));
                let removed = bits[word] & bit != 0;
                bits[word] &= !bit;
                removed
            }
        };
        self.len -= usize::from(removed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// Any sequence of inserts and removals answers as a hash set does,
        /// across sparse and dense blocks and block boundaries.
        #[test]
        fn behaves_as_a_hash_set(ops in prop::collection::vec((any::<bool>(), 0u64..200_000), 0..6000)) {
            let mut ours = IdSet::new();
            let mut theirs = HashSet::new();
            for (add, id) in ops {
                // Many ids in one block, so that blocks turn dense.
                let id = if id % 2 == 0 { id / 40 } else { id * 7919 };
                if add {
                    prop_assert_eq!(ours.insert(id), theirs.insert(id));
                } else {
                    prop_assert_eq!(ours.remove(id), theirs.remove(&id));
                }
                prop_assert_eq!(ours.len(), theirs.len());
            }
            for id in theirs.iter() {
                prop_assert!(ours.contains(*id));
            }
        }
    }

    #[test]
    fn a_dense_block_holds_every_low_id() {
        let mut set = IdSet::new();
        for id in 0..70_000u64 {
            assert!(set.insert(id));
        }
        assert!(!set.insert(5));
        assert!((0..70_000).all(|id| set.contains(id)));
        assert!(!set.contains(70_000));
        assert!(set.remove(65_535) && !set.contains(65_535));
        assert_eq!(set.len(), 69_999);
        assert!(!set.contains(u64::MAX));
    }
}
