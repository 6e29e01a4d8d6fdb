//! The hasher of the engine's record maps, and the queue's index of records (a table of slot numbers).
//!
//! The hasher: a word at a time through a folded multiply (the 128-bit product's
//! halves xored, as wyhash and foldhash do), much faster than the standard SipHash on short keys like
//! `(table, id)`: `queueChange` spent a tenth of its time hashing. FxHash's plain multiply was tried first and
//! collided on ids like "record-19" and "record-94" (a byte's difference only moves higher bits). Its keys
//! are the app's own record ids, not an adversary's choice, so SipHash's flooding resistance buys nothing here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Clone, Copy, Default)]
pub struct FoldHasher(u64);

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

/// Every hash map of the core and the shell, the public config's included: one hasher, so that the wasm holds
/// no SipHash, and as few key and value types as can be, each being a hash table's code of its own.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

/// The hash of a record key, as [`SlotIndex`] takes it: 32 bits, so that the queue can keep it beside a slot
/// number in the padding of its send-order log, and remove or prefetch a bucket without reading the key again.
pub(crate) fn record_hash(table: u32, id: &str) -> u32 {
    let mut hasher = FoldHasher::default();
    hasher.write_u32(table);
    hasher.write(id.as_bytes());
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// Record keys to slots of the queue's slab, which holds the keys: each bucket is a slot number and 32 bits of
/// its key's hash, 8 bytes, where a `HashMap` from key to slot would repeat the key (24 bytes and the id's
/// text). Open addressing with linear probing, at most three quarters full; removal shifts the following
/// buckets back, so there are no tombstones. A bucket is `hash32 << 32 | slot + 1`, 0 when empty: a queue
/// holds fewer than 2^32 - 1 writes (each takes over 100 bytes, so memory runs out long before).
#[derive(Default)]
pub(crate) struct SlotIndex {
    buckets: Vec<u64>,
    len: usize,
}

impl SlotIndex {
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// The slot whose key has `hash` and passes `is_key`.
    pub fn find(&self, hash: u32, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let (tag, mask) = (u64::from(hash), self.mask());
        let mut at = tag as usize & mask;
        loop {
            let bucket = *self.buckets.get(at)?;
            if bucket == 0 {
                return None;
            }
            let slot = (bucket as u32).wrapping_sub(1);
            if bucket >> 32 == tag && is_key(slot) {
                return Some(slot);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `slot`, whose key (hashed to `hash`) is not in the index yet.
    pub fn insert(&mut self, hash: u32, slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        self.place(u64::from(hash) << 32 | u64::from(slot.wrapping_add(1)));
        self.len += 1;
    }

    fn place(&mut self, bucket: u64) {
        let mask = self.mask();
        let mut at = (bucket >> 32) as usize & mask;
        while let Some(cell) = self.buckets.get_mut(at) {
            if *cell == 0 {
                *cell = bucket;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![0; size]);
        for bucket in old.into_iter().filter(|&b| b != 0) {
            self.place(bucket);
        }
    }

    /// Asks the CPU to bring in the bucket where a key that hashed to `hash` is found (or goes), so that a lookup
    /// soon after does not wait for memory: with a million writes the buckets take 16 MB, and a take-due found
    /// its bucket missing from the cache. A hint only: it does nothing on targets without the instruction.
    pub fn prefetch(&self, hash: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(bucket) = self.buckets.get(hash as usize & self.mask()) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: a prefetch reads nothing and cannot fault; the address is a live element besides.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(bucket).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// Takes `slot` (whose key hashed to `hash`) out, and moves back the buckets after it that probing would
    /// no longer reach.
    pub fn remove(&mut self, hash: u32, slot: u32) {
        let (tag, mask) = (u64::from(hash), self.mask());
        let wanted = tag << 32 | u64::from(slot.wrapping_add(1));
        let mut hole = tag as usize & mask;
        loop {
            match self.buckets.get(hole) {
                Some(&bucket) if bucket == wanted => break,
                Some(&bucket) if bucket != 0 => hole = (hole + 1) & mask,
                _ => return,
            }
        }
        self.len -= 1;
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let Some(&bucket) = self.buckets.get(at) else { return };
            if bucket == 0 {
                break;
            }
            // The bucket may fill the hole unless its home lies after the hole (cyclically, up to `at`).
            let home = (bucket >> 32) as usize & mask;
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                if let Some(cell) = self.buckets.get_mut(hole) {
                    *cell = bucket;
                }
                hole = at;
            }
        }
        if let Some(cell) = self.buckets.get_mut(hole) {
            *cell = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};
    use std::rc::Rc;

    use super::{record_hash, FoldHasher, SlotIndex};

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

    /// Against a HashMap, with ids whose hashes share bits, so that probes run long and wrap around.
    #[test]
    fn slot_index_finds_what_it_holds_after_any_removals() {
        let mut index = SlotIndex::default();
        let mut model = std::collections::HashMap::new();
        let mut rng = fastrand::Rng::with_seed(3);
        let ids: Vec<String> = (0..3_000).map(|i| format!("r{i}")).collect();
        // 37 home buckets near the end of the table: many keys per home, and the probes wrap around.
        let hash = |id: &str| 0xffff_ff00 + record_hash(0, id) % 37 * 7;
        for step in 0..40_000u32 {
            let id = &ids[rng.usize(..ids.len())];
            let found = index.find(hash(id), |slot| ids[slot as usize] == *id);
            assert_eq!(found, model.get(id.as_str()).copied(), "step {step}");
            let slot = ids.iter().position(|i| i == id).unwrap() as u32;
            if found.is_some() {
                index.remove(hash(id), slot);
                model.remove(id.as_str());
            } else {
                index.insert(hash(id), slot);
                model.insert(id.as_str(), slot);
            }
        }
        for (id, &slot) in &model {
            assert_eq!(index.find(hash(id), |s| ids[s as usize] == *id), Some(slot));
        }
        assert_eq!(index.len, model.len());
    }
}
