//! One sort for the whole core. Each `sort_unstable` on another element type is another copy of the sort in
//! the wasm binary (2-5 KB each, measured with twiggy); sorting `(key, index)` pairs with one key type keeps a
//! single copy, and the per-type part is a permutation.

/// Three integers, compared in order: every ordering the core needs fits in it.
pub(crate) type SortKey = [u64; 3];

/// Sorts `items` by `key`; items whose keys tie keep their order (the index breaks the tie).
pub(crate) fn sort_by_key<T>(items: &mut Vec<T>, key: impl Fn(&T) -> SortKey) {
    let mut keyed: Vec<(SortKey, usize)> = items.iter().map(&key).enumerate().map(|(i, k)| (k, i)).collect();
    keyed.sort_unstable();
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(keyed.into_iter().filter_map(|(_, i)| slots.get_mut(i).and_then(Option::take)));
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
}
