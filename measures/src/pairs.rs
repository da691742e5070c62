//! Pairs of items that occur together in one basket (a transaction's
//! items, or a session's viewed products).

/// Default cap on items taken from one basket. Apache Mahout caps heavy
/// users at 500 interactions; a basket of `n` items yields `n(n-1)/2`
/// pairs, so a session that viewed 300 products would add 44,850 pairs on
/// its own. 50 items (1,225 pairs) keeps such sessions from blowing up the
/// state while leaving normal baskets whole.
pub const DEFAULT_MAX_ITEMS: usize = 50;

/// The distinct items of a basket, in first-seen order, at most `max_items`.
pub fn distinct_capped<T: PartialEq + Clone>(items: &[T], max_items: usize) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len().min(max_items));
    distinct_capped_into(items, max_items, &mut out);
    out
}

/// [`distinct_capped`] into `out` (cleared first), for callers that reuse
/// one vector basket after basket.
pub fn distinct_capped_into<T: PartialEq + Clone>(items: &[T], max_items: usize, out: &mut Vec<T>) {
    out.clear();
    for it in items {
        if out.len() >= max_items {
            break;
        }
        if !out.contains(it) {
            out.push(it.clone());
        }
    }
}

/// Unordered pairs `(a, b)` with `a < b` of the distinct items of a basket
/// (after the cap). Each pair appears once per basket, however often its
/// items repeat in it.
pub fn pairs<T: Ord + Clone>(items: &[T], max_items: usize) -> Vec<(T, T)> {
    let mut distinct = distinct_capped(items, max_items);
    distinct.sort();
    let mut out = Vec::with_capacity(distinct.len() * distinct.len().saturating_sub(1) / 2);
    for_each_pair(&distinct, |a, b| out.push((a.clone(), b.clone())));
    out
}

/// Calls `f(a, b)` for every pair `a < b` of `sorted_distinct` (strictly
/// increasing, as [`pairs`] makes it): the same pairs, without a vector.
pub fn for_each_pair<T>(sorted_distinct: &[T], mut f: impl FnMut(&T, &T)) {
    for (i, a) in sorted_distinct.iter().enumerate() {
        for b in &sorted_distinct[i + 1..] {
            f(a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_unordered_distinct_and_once_per_basket() {
        assert_eq!(
            pairs(&["b", "a", "c", "a"], 10),
            vec![("a", "b"), ("a", "c"), ("b", "c")]
        );
        assert!(pairs(&["a"], 10).is_empty());
        assert!(pairs(&["a", "a"], 10).is_empty());
        assert!(pairs::<&str>(&[], 10).is_empty());
    }

    #[test]
    fn the_cap_bounds_the_pairs_of_a_huge_basket() {
        let items: Vec<u32> = (0..300).collect();
        // 300 items would be 44,850 pairs; capped at 50: 50*49/2.
        assert_eq!(pairs(&items, DEFAULT_MAX_ITEMS).len(), 1_225);
        // The cap counts distinct items, in first-seen order.
        assert_eq!(distinct_capped(&[3, 3, 1, 3, 2, 5], 3), vec![3, 1, 2]);
    }
}
