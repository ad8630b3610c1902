//! A fast hasher for the link's internal tables (symbol names, section names, section bodies).
//!
//! SipHash's resistance to chosen keys buys nothing here: the keys come from the build's own
//! objects and script, and a poor spread could only cost time. This module owns the hash
//! function, the map/set aliases and the id-only name index; it knows nothing about what is
//! hashed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash over 8-byte words (the Fx construction).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buf));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut buf = [0u8; 8];
            buf[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(buf) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    /// The multiply leaves the high bits best mixed; hash tables index with the low ones.
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// Builds [`FastHasher`]s.
pub type FastBuild = BuildHasherDefault<FastHasher>;
/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;
/// A `HashSet` with [`FastHasher`].
pub type FastSet<K> = HashSet<K, FastBuild>;

/// Ids of names the caller keeps in its own list (symbols, section names), holding only the
/// ids: a name is found by comparing it with the one its id stands for. At 200k names the
/// table is ~1 MB and stays in cache, where (name, id) pairs took ~5 MB and a cache miss
/// per name. Ids are 32-bit: every name costs its input file more than a byte.
#[derive(Debug, Default, Clone)]
pub struct NameIndex(hashbrown::HashTable<u32>);

impl NameIndex {
    /// The hash [`NameIndex::find`] and [`NameIndex::insert_new`] take.
    pub fn hash(name: &str) -> u64 {
        let mut hasher = FastHasher::default();
        hasher.write(name.as_bytes());
        hasher.finish()
    }

    /// The id of `name` (of hash `hash`), `name_of` giving each id's name.
    pub fn find<'k>(&self, hash: u64, name: &str, name_of: impl Fn(u32) -> &'k str) -> Option<u32> {
        self.0.find(hash, |&id| name_of(id) == name).copied()
    }

    /// Adds `id`, whose name (of hash `hash`) is not in the index yet.
    pub fn insert_new<'k>(&mut self, hash: u64, id: u32, name_of: impl Fn(u32) -> &'k str) {
        self.0
            .insert_unique(hash, id, |&id| NameIndex::hash(name_of(id)));
    }

    /// Makes room for `additional` more names without moving the table.
    pub fn reserve<'k>(&mut self, additional: usize, name_of: impl Fn(u32) -> &'k str) {
        self.0
            .reserve(additional, |&id| NameIndex::hash(name_of(id)));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}
