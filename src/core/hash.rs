//! The hasher of the engine's record maps: a word at a time through a folded multiply (the 128-bit product's
//! halves xored, as wyhash and foldhash do), much faster than the standard SipHash on short keys like
//! `(table, id)`: `queueChange` spent a tenth of its time hashing. FxHash's plain multiply was tried first and
//! collided on ids like "record-19" and "record-94" (a byte's difference only moves higher bits). Its keys
//! are the app's own record ids, not an adversary's choice, so SipHash's flooding resistance buys nothing here.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Clone, Copy, Default)]
pub(crate) struct FoldHasher(u64);

impl FoldHasher {
    fn add(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * 0x517c_c1b7_2722_0a95;
        self.0 = product as u64 ^ (product >> 64) as u64;
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ (rest.len() as u64) << 59);
    }

    fn write_u8(&mut self, n: u8) {
        self.add(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A HashMap keyed by records or tables.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FoldHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};
    use std::rc::Rc;

    use super::FoldHasher;

    #[test]
    fn keys_that_differ_hash_apart() {
        let build = BuildHasherDefault::<FoldHasher>::default();
        let hash = |table: u32, id: &str| build.hash_one((table, Rc::<str>::from(id)));
        let mut seen = std::collections::HashSet::new();
        for table in 0..4 {
            for i in 0..20_000 {
                seen.insert(hash(table, &format!("record-{i}")));
            }
        }
        assert_eq!(seen.len(), 80_000);
        assert_ne!(hash(0, "ab"), hash(0, "ab\0"));
        assert_ne!(hash(0, ""), hash(1, ""));
    }
}
