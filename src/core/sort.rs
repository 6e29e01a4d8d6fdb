//! One sort for the whole core. Each `sort_unstable` on another element type is another copy of the sort in
//! the wasm binary (2-5 KB each, measured with twiggy); sorting `(key, index)` pairs with one key type keeps a
//! single copy, and the per-type part is a permutation. That copy is a heap sort of our own: the standard
//! library's `sort_unstable` is 3.7 KB of wasm (quicksort, small sorts, pivot selection), a heap sort a few
//! hundred bytes. Its inputs are a batch, the 512 latency samples or a snapshot's entries: O(n log n) with no
//! worst case is all they need, and the index makes every key distinct, so the result is stable anyway.

/// Three integers, compared in order: every ordering the core needs fits in it.
pub(crate) type SortKey = [u64; 3];

/// Sorts `items` by `key`; items whose keys tie keep their order (the index breaks the tie).
pub(crate) fn sort_by_key<T>(items: &mut [T], key: impl Fn(&T) -> SortKey) {
    if let Some(keyed) = sorted_keys(items.len(), &|i| key(&items[i])) {
        permute(items, &keyed);
    }
}

/// The keys of items `0..len`, sorted with their indexes; `None` when they are in order already (a snapshot's
/// entries mostly are) and nothing is to move. Behind `dyn`, so that each item type adds only its key function.
fn sorted_keys(len: usize, key: &dyn Fn(usize) -> SortKey) -> Option<Vec<(SortKey, usize)>> {
    let mut keyed: Vec<(SortKey, usize)> = (0..len).map(|i| (key(i), i)).collect();
    sort_keys(&mut keyed).then_some(keyed)
}

/// Puts `items` in the order of the indexes in `keyed` (as [`sort_keys`] left them). In place, by swaps: the
/// per-type part is one `swap`, and the walk that plans the swaps is compiled once for every type.
pub(crate) fn permute<T>(items: &mut [T], keyed: &[(SortKey, usize)]) {
    let keyed = &keyed[..keyed.len().min(items.len())];
    swaps(keyed, &mut |a, b| items.swap(a, b));
}

/// Follows each cycle of the permutation once: position `k` takes the item at `keyed[k].1`, and the item it
/// held moves on along the cycle. An index out of range or repeated (never made by [`sort_keys`]) ends its
/// cycle: items are only swapped, so none is lost.
fn swaps(keyed: &[(SortKey, usize)], swap: &mut dyn FnMut(usize, usize)) {
    let mut placed = vec![false; keyed.len()];
    for start in 0..keyed.len() {
        let mut k = start;
        while !placed[k] {
            placed[k] = true;
            let from = keyed[k].1;
            if from == start || from >= keyed.len() {
                break;
            }
            swap(k, from);
            k = from;
        }
    }
}

/// Sorts `v`, in time linear in its sorted start: what the core sorts most is nearly in order already (a
/// snapshot's entries come in send order, with the few failed and blocked writes after them), and a heap sort
/// of a million of those took 100 ms or more in compaction. The part after the longest sorted start is heap
/// sorted, then merged from the back into place. Whether anything moved. Not generic, so the wasm holds it once.
pub(crate) fn sort_keys(v: &mut Vec<(SortKey, usize)>) -> bool {
    let start = 1 + v.windows(2).take_while(|pair| pair[0] <= pair[1]).count();
    if start >= v.len() {
        return false;
    }
    let mut tail = v.split_off(start);
    heap_sort(&mut tail);
    let (mut i, mut j) = (v.len(), tail.len());
    v.extend_from_slice(&tail);
    for k in (0..v.len()).rev() {
        // The larger of the two last ones left; `i < k` until the tail is used up, so nothing unread is overwritten.
        let from_tail = j > 0 && (i == 0 || tail[j - 1] > v[i - 1]);
        v[k] = if from_tail {
            j -= 1;
            tail[j]
        } else {
            i -= 1;
            v[i]
        };
        if j == 0 {
            break;
        }
    }
    true
}

fn heap_sort(v: &mut [(SortKey, usize)]) {
    // Moves `v[root]` down the max-heap `v[..end]` until both of its children are smaller.
    fn sift_down(v: &mut [(SortKey, usize)], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let len = v.len();
    for root in (0..len / 2).rev() {
        sift_down(v, root, len);
    }
    for end in (1..len).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// Sorts names in place: a handful of table names, once, where an insertion sort is the smallest code.
pub(crate) fn sort_names(names: &mut [String]) {
    for i in 1..names.len() {
        let mut j = i;
        while j > 0 && names[j - 1] > names[j] {
            names.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_the_key_and_keeps_every_item() {
        let mut items = vec!["c", "a", "d", "b"];
        sort_by_key(&mut items, |s| [0, s.as_bytes()[0] as u64, 0]);
        assert_eq!(items, ["a", "b", "c", "d"]);
        let mut names: Vec<String> = ["b", "c", "a"].iter().map(|s| s.to_string()).collect();
        sort_names(&mut names);
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn sorts_like_the_standard_stable_sort() {
        // A fixed pseudo-random sequence with many ties, of every length up to 300.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..300 {
            let mut items: Vec<(u64, usize)> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 17, i)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            sort_by_key(&mut items, |&(k, _)| [k / 5, k % 5, 0]);
            assert_eq!(items, expected, "length {len}");
        }
    }

    /// Whatever the indexes, every item is kept and nothing panics: the core never panics on any input.
    #[test]
    fn a_bad_permutation_loses_no_item() {
        let bad: [&[usize]; 5] = [&[0, 0, 0], &[2, 9, 1], &[1, 2, 0, 3, 4], &[0, 1, 2, 4, 3], &[1]];
        for indexes in bad {
            let keyed: Vec<(SortKey, usize)> = indexes.iter().map(|&i| ([0; 3], i)).collect();
            let mut items = vec!["a", "b", "c"];
            permute(&mut items, &keyed);
            items.sort_unstable();
            assert_eq!(items, ["a", "b", "c"], "indexes {indexes:?}");
        }
        let mut items = vec!["a", "b", "c"];
        permute(&mut items, &[([0; 3], 2), ([0; 3], 0), ([0; 3], 1)]);
        assert_eq!(items, ["c", "a", "b"]);
    }

    /// A sorted start of every length, then an unsorted tail of every length (a snapshot's shape): the tail is
    /// merged in at the right places, before, among and after the start's items, ties after the start's.
    #[test]
    fn sorts_a_sorted_start_with_a_tail() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for start in 0..40 {
            for tail in 0..40 {
                let mut items: Vec<(u64, usize)> = (0..start).map(|i| (i as u64 * 3, i)).collect();
                items.extend((0..tail).map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % (start as u64 * 3 + 4), start + i)
                }));
                let mut expected = items.clone();
                expected.sort_by_key(|&(k, _)| k);
                sort_by_key(&mut items, |&(k, _)| [k, 0, 0]);
                assert_eq!(items, expected, "start {start}, tail {tail}");
            }
        }
    }
}
