//! Live co-occurrence: per item and per pair of items, how many baskets hold
//! them, over a sliding event-time window and all time, and each item's
//! top-k partners by a chosen ranking.
//!
//! Items are numbered densely in the order first seen; pair counts live in
//! a `PairTable` (one cell per pair, all-time and window side by side).
//! The window keeps its baskets per bucket (a day by default), as sorted
//! item numbers: sliding a bucket out takes its baskets' pairs out of the
//! window counts. That costs a second pass over the pairs, but a day of
//! baskets is a few hundred KB where a day of pair counts was tens of MB,
//! and the checkpoint holds the baskets and the all-time counts only.

use crate::choices::{Ranking, Span};
use crate::llr::{score, PairScore};
use crate::pairs::for_each_pair;
use crate::pairtable::{Cell, PairTable};
use crate::window::BucketRing;
use rustc_hash::FxHashMap as HashMap;
use schemas::codec::{put_u64, DecodeError, Decoder, Encoder};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{self, Write};

/// A partner of an item, with its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    /// The partner item.
    pub item: u32,
    /// Scores of the pair.
    pub score: PairScore,
}

/// A count over all time and over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Count {
    all_time: u64,
    window: u64,
}

impl Count {
    fn get(&self, span: Span) -> u64 {
        match span {
            Span::Window => self.window,
            Span::AllTime => self.all_time,
        }
    }
}

fn cell_count(c: Cell, span: Span) -> u64 {
    u64::from(match span {
        Span::Window => c.window,
        Span::AllTime => c.all_time,
    })
}

/// The baskets of one bucket, end to end, each as the checkpoint writes
/// it: its length, then its first item number and the gaps to the next
/// (at least 1: a basket is sorted), as varints. Most gaps take one or two
/// bytes where an item number takes four, and no basket needs an 8-byte
/// end: the four-times shop's state is 580 MiB instead of 648 with item
/// numbers and ends, the default shop's 96 MiB instead of 114, at the
/// same rate (docs/benchmarks.md, "The window's baskets").
#[derive(Debug, Clone, Default, PartialEq)]
struct Baskets {
    bytes: Vec<u8>,
    count: usize,
}

impl Baskets {
    /// Adds a basket (sorted, distinct item numbers).
    fn push(&mut self, basket: &[u32]) {
        put_u64(&mut self.bytes, basket.len() as u64);
        let mut prev = 0;
        for (j, &i) in basket.iter().enumerate() {
            put_u64(
                &mut self.bytes,
                u64::from(if j == 0 { i } else { i.wrapping_sub(prev) }),
            );
            prev = i;
        }
        self.count += 1;
    }

    /// The basket that starts at byte `at`, into `out` (cleared first);
    /// returns the byte after it, or `None` past the last basket.
    fn read(&self, at: usize, out: &mut Vec<u32>) -> Option<usize> {
        out.clear();
        let mut d = Decoder::new(self.bytes.get(at..)?);
        let len = d.u64().ok()?;
        let mut item = 0u32;
        for j in 0..len {
            let v = d.u32().ok()?;
            item = if j == 0 { v } else { item.wrapping_add(v) };
            out.push(item);
        }
        Some(at + d.position())
    }
}

/// Baskets, item counts and pair counts, by event time.
#[derive(Debug, Clone)]
pub struct CoOccurrence {
    max_items: usize,
    baskets: Count,
    /// The product number of each item, in the order first seen.
    products: Vec<u32>,
    /// Item of each product number.
    index: HashMap<u32, u32>,
    items: Vec<Count>,
    pairs: PairTable,
    /// The window's baskets by bucket.
    buckets: BucketRing<Baskets>,
    /// Baskets of buckets that slid out of the window, still to be taken
    /// out of its counts ([`expire`](Self::expire)), and the byte of the
    /// first one's where the next to take out starts.
    expiring: VecDeque<Baskets>,
    expired_in_first: usize,
    /// A basket's distinct products and their item numbers while it is
    /// added (reused, not state).
    scratch: (Vec<u32>, Vec<u32>),
}

impl PartialEq for CoOccurrence {
    fn eq(&self, o: &Self) -> bool {
        self.max_items == o.max_items
            && self.baskets == o.baskets
            && self.products == o.products
            && self.items == o.items
            && self.pairs == o.pairs
            && self.buckets == o.buckets
            && self.expiring == o.expiring
            && self.expired_in_first == o.expired_in_first
    }
}

/// Which way a basket crosses the window's edge.
#[derive(Clone, Copy, PartialEq)]
enum Move {
    /// Back into the window (a checkpoint restored).
    In,
    /// Out of it (its bucket slid out).
    Out,
}

/// Counts a basket already counted all-time into or out of the window:
/// the basket count, its items' and its pairs'. `false` if an item number
/// is out of range (a damaged checkpoint).
fn window_basket(
    baskets: &mut Count,
    items: &mut [Count],
    pairs: &mut PairTable,
    basket: &[u32],
    way: Move,
) -> bool {
    let step = |n: &mut u64| {
        *n = match way {
            Move::In => n.saturating_add(1),
            Move::Out => n.saturating_sub(1),
        }
    };
    step(&mut baskets.window);
    let mut ok = true;
    for &i in basket {
        match items.get_mut(i as usize) {
            Some(c) => step(&mut c.window),
            None => ok = false,
        }
    }
    match way {
        Move::In => for_each_pair(basket, |&a, &b| ok &= pairs.add_window(a, b)),
        Move::Out => pairs.remove_basket_window(basket),
    }
    ok
}

impl CoOccurrence {
    /// A model with `window_buckets` buckets of `bucket_secs`, taking at most
    /// `max_items` distinct items from one basket.
    pub fn new(bucket_secs: i64, window_buckets: i64, max_items: usize) -> Self {
        CoOccurrence {
            max_items,
            baskets: Count::default(),
            products: Vec::new(),
            index: HashMap::default(),
            items: Vec::new(),
            pairs: PairTable::default(),
            buckets: BucketRing::new(bucket_secs, window_buckets),
            expiring: VecDeque::new(),
            expired_in_first: 0,
            scratch: (Vec::new(), Vec::new()),
        }
    }

    fn intern(&mut self, product: u32) -> u32 {
        if let Some(&i) = self.index.get(&product) {
            return i;
        }
        let i = self.products.len() as u32;
        self.products.push(product);
        self.index.insert(product, i);
        self.items.push(Count::default());
        self.pairs.grow(self.products.len());
        i
    }

    /// Adds a basket at event time `t` (seconds): its distinct items, the
    /// first `max_items` of them, and their pairs (as
    /// [`crate::pairs::pairs`] defines them). A basket dated before the
    /// window counts all-time only.
    pub fn add_basket(&mut self, items: &[u32], t: i64) {
        let (mut distinct, mut basket) = std::mem::take(&mut self.scratch);
        crate::pairs::distinct_capped_into(items, self.max_items, &mut distinct);
        basket.clear();
        basket.extend(distinct.iter().map(|&p| self.intern(p)));
        if !basket.is_empty() {
            basket.sort_unstable();
            let in_window = self.buckets.admits(t);
            let w = u64::from(in_window);
            self.baskets.all_time += 1;
            self.baskets.window += w;
            for &i in &basket {
                let c = &mut self.items[i as usize];
                c.all_time += 1;
                c.window += w;
            }
            self.pairs.add_basket(&basket, in_window);
            if let Some(bucket) = self.buckets.bucket_mut(t) {
                bucket.push(&basket);
            }
        }
        self.scratch = (distinct, basket);
    }

    /// Slides the window so that its newest bucket holds `t`, taking the
    /// baskets of the buckets that fall out out of the window counts.
    /// Never moves backwards.
    pub fn advance_to(&mut self, t: i64) {
        self.slide_to(t);
        self.expire(usize::MAX);
    }

    /// [`advance_to`](Self::advance_to), but the baskets of the buckets
    /// that fall out are only queued for [`expire`](Self::expire) to take
    /// out of the window counts; until it has, lookups still count them.
    pub fn slide_to(&mut self, t: i64) {
        let expiring = &mut self.expiring;
        self.buckets.slide_to(t, |gone| expiring.push_back(gone));
    }

    /// Takes queued baskets (see [`advance_to`](Self::advance_to)) out of
    /// the window counts, whole baskets, until about `budget` pairs were
    /// taken out; returns whether some are left. A day of viewing sessions
    /// is over a million pairs: done in pieces, the runner lets lookups in
    /// between instead of holding them for the whole day.
    pub fn expire(&mut self, budget: usize) -> bool {
        let (mut spent, budget) = (0usize, budget.max(1));
        let mut basket = std::mem::take(&mut self.scratch.1);
        let mut left = false;
        while let Some(first) = self.expiring.front() {
            let mut at = self.expired_in_first;
            // Whether the bucket has no basket left from `at` on (the bytes
            // are `push`'s, so that is at their end).
            let mut done = false;
            while spent < budget {
                let Some(next) = first.read(at, &mut basket) else {
                    done = true;
                    break;
                };
                window_basket(
                    &mut self.baskets,
                    &mut self.items,
                    &mut self.pairs,
                    &basket,
                    Move::Out,
                );
                spent += 1 + basket.len() * basket.len().saturating_sub(1) / 2;
                at = next;
            }
            if !done && at < first.bytes.len() {
                self.expired_in_first = at;
                left = true;
                break;
            }
            self.expiring.pop_front();
            self.expired_in_first = 0;
        }
        self.scratch.1 = basket;
        left
    }

    /// The top `k` partners of `item` by `ranking` over `span`. Ties break
    /// on the higher count, then the lower item id, so results are stable.
    pub fn top_partners(&self, item: u32, k: usize, ranking: Ranking, span: Span) -> Vec<Partner> {
        let Some(&x) = self.index.get(&item) else {
            return Vec::new();
        };
        let n = self.baskets.get(span);
        let a = self.items[x as usize].get(span);
        let mut out: Vec<Partner> = Vec::new();
        self.pairs.for_each_partner(x, |p, cell| {
            let ab = cell_count(cell, span);
            if ab == 0 {
                return;
            }
            let b = self.items[p as usize].get(span);
            out.push(Partner {
                item: self.products[p as usize],
                score: score(ab, a, b, n),
            });
        });
        let order = |x: &Partner, y: &Partner| {
            let (kx, ky) = (ranking.key(&x.score), ranking.key(&y.score));
            ky.0.cmp(&kx.0)
                .then(ky.1.total_cmp(&kx.1))
                .then(y.score.count.cmp(&x.score.count))
                .then(x.item.cmp(&y.item))
        };
        if k > 0 && out.len() > k {
            out.select_nth_unstable_by(k - 1, order);
            out.truncate(k);
        }
        out.sort_by(order);
        out.truncate(k);
        out
    }

    /// The `k` items in the most baskets over `span` (ties: lower id first).
    pub fn top_items(&self, k: usize, span: Span) -> Vec<(u32, u64)> {
        let mut all: Vec<(u32, u64)> = self
            .products
            .iter()
            .zip(&self.items)
            .map(|(p, c)| (*p, c.get(span)))
            .filter(|(_, n)| *n > 0)
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    /// The `k` pairs in the most baskets over `span`, as `(a, b, count)`
    /// with `a < b` (ties: lower ids first).
    pub fn top_pairs(&self, k: usize, span: Span) -> Vec<(u32, u32, u64)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // The best k so far in a min-heap keyed so that "better" is
        // greater: higher count, then lower ids. Memory k, not all pairs.
        // (count, lower ids first), reversed for a min-heap.
        type Ranked = Reverse<(u64, Reverse<(u32, u32)>)>;
        let mut best: BinaryHeap<Ranked> = BinaryHeap::new();
        if k == 0 {
            return Vec::new();
        }
        self.pairs.for_each(|a, b, c| {
            let n = cell_count(c, span);
            if n == 0 {
                return;
            }
            let (pa, pb) = (self.products[a as usize], self.products[b as usize]);
            let entry = Reverse((n, Reverse((pa.min(pb), pa.max(pb)))));
            if best.len() < k {
                best.push(entry);
            } else if best.peek().is_some_and(|worst| entry < *worst) {
                best.pop();
                best.push(entry);
            }
        });
        best.into_sorted_vec()
            .into_iter()
            .map(|Reverse((n, Reverse((a, b))))| (a, b, n))
            .collect()
    }

    /// Bytes held on the heap (see `PairTable::heap_bytes`).
    pub fn heap_bytes(&self) -> usize {
        let baskets: usize = self.buckets.iter().map(|(_, b)| b.bytes.capacity()).sum();
        self.pairs.heap_bytes()
            + baskets
            + self.products.capacity() * 4
            + self.index.capacity() * 9
            + self.items.capacity() * std::mem::size_of::<Count>()
    }

    /// Whether the item was ever in a basket.
    pub fn knows(&self, item: u32) -> bool {
        self.index.contains_key(&item)
    }

    /// Pairs with a count in the window (state size).
    pub fn window_pairs(&self) -> usize {
        self.pairs.window_pairs()
    }

    /// `[start, end)` seconds covered by the window.
    pub fn covers(&self) -> Option<(i64, i64)> {
        self.buckets.covers()
    }

    /// Writes the state: settings, all-time counts of baskets, items and
    /// pairs (each row's partners as gaps from the previous one, ended by
    /// a 0), and the window's baskets (items as gaps). Window counts are
    /// not written: [`decode`](Self::decode) adds the baskets back, so
    /// baskets still queued to expire are gone from the restored window.
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.usize(self.max_items)?;
        self.buckets.encode_shape(e)?;
        e.u64(self.baskets.all_time)?;
        e.usize(self.products.len())?;
        for (p, c) in self.products.iter().zip(&self.items) {
            e.u64(u64::from(*p))?;
            e.u64(c.all_time)?;
        }
        let mut row = Vec::new();
        for a in 0..self.products.len() as u32 {
            self.pairs.row_sorted(a, &mut row);
            let mut prev = a;
            for &(b, c) in &row {
                e.u64(u64::from(b - prev))?;
                e.u64(u64::from(c.all_time))?;
                prev = b;
            }
            e.u64(0)?;
        }
        e.usize(self.buckets.held())?;
        for (bucket, baskets) in self.buckets.iter() {
            e.i64(bucket)?;
            // Each basket's length, then its first item number as it is
            // and the gaps to the next (at least 1: sorted), as held.
            e.usize(baskets.count)?;
            e.raw(&baskets.bytes)?;
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote, checking that every item
    /// number is in range and every basket sorted.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let bad = |what: &str| DecodeError(format!("co-occurrence: {what}"));
        let max_items = usize::try_from(d.u64()?).map_err(|_| bad("cap"))?;
        let mut m = CoOccurrence::new(1, 1, max_items);
        m.buckets = BucketRing::decode_shape(d)?;
        m.baskets.all_time = d.u64()?;
        let n = d.count()?;
        for _ in 0..n {
            let p = d.u32()?;
            let all_time = d.u64()?;
            if m.index.contains_key(&p) {
                return Err(bad("an item twice"));
            }
            m.intern(p);
            if let Some(c) = m.items.last_mut() {
                c.all_time = all_time;
            }
        }
        for a in 0..n as u32 {
            let mut prev = a;
            loop {
                let gap = d.u32()?;
                if gap == 0 {
                    break;
                }
                let b = prev
                    .checked_add(gap)
                    .ok_or_else(|| bad("pair out of range"))?;
                let count = d.u32()?;
                if !m.pairs.set_all_time(a, b, count) {
                    return Err(bad("pair out of range"));
                }
                prev = b;
            }
        }
        let buckets = d.count()?;
        for _ in 0..buckets {
            let bucket = d.i64()?;
            let count = d.count()?;
            let mut baskets = Baskets::default();
            let mut basket = Vec::new();
            for _ in 0..count {
                let len = d.count()?;
                basket.clear();
                let mut prev = 0u32;
                for j in 0..len {
                    let v = d.u32()?;
                    let i = if j == 0 {
                        v
                    } else if v == 0 {
                        return Err(bad("basket not sorted"));
                    } else {
                        prev.checked_add(v)
                            .ok_or_else(|| bad("item out of range"))?
                    };
                    if i as usize >= n {
                        return Err(bad("item out of range"));
                    }
                    basket.push(i);
                    prev = i;
                }
                baskets.push(&basket);
                if !window_basket(
                    &mut m.baskets,
                    &mut m.items,
                    &mut m.pairs,
                    &basket,
                    Move::In,
                ) {
                    return Err(bad("pair out of range"));
                }
            }
            m.buckets.restore(bucket, baskets);
        }
        Ok(m)
    }
}

/// A user's engagement over the window, with the seed report's score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Engagement {
    /// Sessions.
    pub sessions: u64,
    /// Sessions that converted.
    pub converted: u64,
    /// Products viewed (sum over sessions).
    pub viewed: u64,
    /// Sessions that abandoned a cart.
    pub abandoned: u64,
}

impl Engagement {
    /// `sessions x 0.3 + converted x 0.5 + viewed / 100 x 0.2` (seed, 5.2).
    pub fn score(&self) -> f64 {
        schemas::formulas::engagement_score(
            self.sessions as f64,
            self.converted as f64,
            self.viewed as f64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Baskets are held as the checkpoint writes them: length, first item
    /// number, then gaps, as varints (7 bits a byte, low first), and read
    /// back one after the other from a byte offset.
    #[test]
    fn baskets_are_held_as_varint_gaps() {
        let mut b = Baskets::default();
        b.push(&[3, 130]);
        b.push(&[0, 128]);
        b.push(&[7, 16_391, u32::MAX - 1]);
        assert_eq!(b.count, 3);
        assert_eq!(
            &b.bytes[..7],
            &[2, 3, 0x7f, 2, 0, 0x80, 0x01],
            "[3, 130] then [0, 128]"
        );
        let mut out = Vec::new();
        let mut at = 0;
        let mut read = Vec::new();
        while let Some(next) = b.read(at, &mut out) {
            read.push(out.clone());
            at = next;
        }
        assert_eq!(at, b.bytes.len());
        assert_eq!(
            read,
            vec![vec![3, 130], vec![0, 128], vec![7, 16_391, u32::MAX - 1]]
        );
        // From the second basket's start: the rest only.
        assert_eq!(b.read(3, &mut out), Some(7));
        assert_eq!(out, vec![0, 128]);
    }

    use crate::window::DAY;

    /// 10 baskets: item 1 with 2 four times (2 is rare: only with 1), item 1
    /// with 9 five times (9 is a best-seller: in every basket).
    fn model() -> CoOccurrence {
        let mut m = CoOccurrence::new(DAY, 30, 50);
        for _ in 0..4 {
            m.add_basket(&[1, 2, 9], 0);
        }
        m.add_basket(&[1, 9], 0);
        for _ in 0..5 {
            m.add_basket(&[3, 9], 0);
        }
        m.advance_to(0);
        m
    }

    #[test]
    fn llr_prefers_the_specific_partner_count_the_popular_one() {
        let m = model();
        let by_llr = m.top_partners(1, 10, Ranking::Llr, Span::Window);
        let by_count = m.top_partners(1, 10, Ranking::Count, Span::Window);
        assert_eq!(
            by_llr.iter().map(|p| p.item).collect::<Vec<_>>(),
            vec![2, 9]
        );
        assert_eq!(
            by_count.iter().map(|p| p.item).collect::<Vec<_>>(),
            vec![9, 2]
        );
        // Pair (1,2): ab 4, a 5, b 4, n 10: table (4,1,0,5).
        assert_eq!(by_llr[0].score.count, 4);
        assert!((by_llr[0].score.llr - crate::llr::llr(4, 1, 0, 5)).abs() < 1e-12);
        // Pair (1,9): ab 5, a 5, b 10, n 10: 9 is everywhere, lift 1, LLR 0.
        assert_eq!(by_llr[1].score.count, 5);
        assert!(by_llr[1].score.llr.abs() < 1e-9);
        assert!((by_llr[1].score.lift - 1.0).abs() < 1e-12);
        assert_eq!(m.top_partners(1, 1, Ranking::Llr, Span::Window).len(), 1);
        assert!(m
            .top_partners(42, 10, Ranking::Llr, Span::Window)
            .is_empty());
    }

    #[test]
    fn expired_pairs_leave_the_window_but_not_all_time() {
        let mut m = model();
        // Thirty days later a new basket slides everything out.
        m.add_basket(&[5, 6], 30 * DAY);
        m.advance_to(30 * DAY);
        assert!(m.top_partners(1, 10, Ranking::Llr, Span::Window).is_empty());
        assert_eq!(m.window_pairs(), 1);
        assert_eq!(
            m.top_partners(1, 10, Ranking::Count, Span::AllTime).len(),
            2
        );
        assert_eq!(
            m.top_partners(5, 10, Ranking::Count, Span::Window)[0].item,
            6
        );
    }

    #[test]
    fn top_pairs_by_count_over_the_window() {
        let mut m = model();
        // Pairs: (1,2) x4, (1,9) x5, (2,9) x4, (3,9) x5.
        assert_eq!(
            m.top_pairs(3, Span::Window),
            vec![(1, 9, 5), (3, 9, 5), (1, 2, 4)]
        );
        assert_eq!(m.top_pairs(10, Span::Window).len(), 4);
        assert!(m.top_pairs(0, Span::Window).is_empty());
        // Once the window slid past them they are only in all-time.
        m.add_basket(&[5, 6], 30 * DAY);
        m.advance_to(30 * DAY);
        assert_eq!(m.top_pairs(10, Span::Window), vec![(5, 6, 1)]);
        assert_eq!(m.top_pairs(1, Span::AllTime), vec![(1, 9, 5)]);
    }

    /// A small deterministic generator (no dependency for tests).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// Top `k` partners computed from scratch from the baskets: counts in
    /// plain maps, the window being the baskets of its buckets.
    fn from_scratch(
        baskets: &[(Vec<u32>, i64)],
        item: u32,
        k: usize,
        ranking: Ranking,
        span: Span,
        tail: i64,
        max_items: usize,
    ) -> Vec<Partner> {
        use std::collections::HashMap;
        let (mut n, mut items, mut pairs) = (0u64, HashMap::new(), HashMap::new());
        for (b, t) in baskets {
            if span == Span::Window && t.div_euclid(DAY) < tail {
                continue;
            }
            let distinct = crate::pairs::distinct_capped(b, max_items);
            if distinct.is_empty() {
                continue;
            }
            n += 1;
            for i in &distinct {
                *items.entry(*i).or_insert(0u64) += 1;
            }
            for pair in crate::pairs::pairs(b, max_items) {
                *pairs.entry(pair).or_insert(0u64) += 1;
            }
        }
        let a = items.get(&item).copied().unwrap_or(0);
        let mut out: Vec<Partner> = pairs
            .iter()
            .filter_map(|(&(x, y), &ab)| {
                let p = if x == item {
                    y
                } else if y == item {
                    x
                } else {
                    return None;
                };
                Some(Partner {
                    item: p,
                    score: score(ab, a, items[&p], n),
                })
            })
            .collect();
        out.sort_by(|x, y| {
            let (kx, ky) = (ranking.key(&x.score), ranking.key(&y.score));
            ky.0.cmp(&kx.0)
                .then(ky.1.total_cmp(&kx.1))
                .then(y.score.count.cmp(&x.score.count))
                .then(x.item.cmp(&y.item))
        });
        out.truncate(k);
        out
    }

    #[test]
    fn incremental_counts_give_the_from_scratch_top_k_on_random_streams() {
        let mut dense = 0;
        for seed in 1..=12u64 {
            let mut rng = Lcg(seed);
            let (catalog, max_items, window) = (5 + rng.below(60) as u32, 6, 3);
            let mut m = CoOccurrence::new(DAY, window, max_items);
            let mut seen: Vec<(Vec<u32>, i64)> = Vec::new();
            let mut newest = 0i64;
            for step in 0..400 {
                // Mostly forward in time, sometimes a few days back (late,
                // possibly before the window), sometimes a big basket.
                let t = if rng.below(10) == 0 {
                    newest - rng.below(5 * DAY as u64) as i64
                } else {
                    newest + rng.below(DAY as u64 / 4) as i64
                };
                let len = if rng.below(20) == 0 { 12 } else { rng.below(5) };
                // Product numbers far apart, popular ones more often.
                let basket: Vec<u32> = (0..len)
                    .map(|_| 1_000 + 7 * (rng.below(u64::from(catalog)) * rng.below(2)) as u32)
                    .collect();
                m.add_basket(&basket, t);
                seen.push((basket, t));
                newest = newest.max(t);
                if seed % 2 == 0 {
                    m.advance_to(newest);
                } else {
                    // Slid, then expired in small pieces: the same counts.
                    m.slide_to(newest);
                    while m.expire(7) {}
                }
                if step % 97 == 0 {
                    // A checkpoint and restore in the middle changes nothing.
                    let mut e = Encoder::new(Vec::new());
                    m.encode(&mut e).expect("encode");
                    let bytes = e.finish().expect("bytes");
                    let mut d = Decoder::new(&bytes);
                    let back = CoOccurrence::decode(&mut d).expect("decode");
                    assert!(d.done());
                    assert_eq!(back, m, "seed {seed} step {step}");
                    m = back;
                }
            }
            dense += m.pairs.dense_rows();
            let tail = newest.div_euclid(DAY) - window + 1;
            for item in (0..catalog).map(|i| 1_000 + 7 * i) {
                for span in [Span::Window, Span::AllTime] {
                    for ranking in Ranking::ALL {
                        for k in [1, 3, 100] {
                            assert_eq!(
                                m.top_partners(item, k, ranking, span),
                                from_scratch(&seen, item, k, ranking, span, tail, max_items),
                                "seed {seed}, item {item}, {span:?}, {ranking:?}, k {k}"
                            );
                        }
                    }
                }
            }
        }
        assert!(dense > 0, "some rows were dense, some sparse");
    }

    #[test]
    fn engagement_score_is_the_seed_formula() {
        // 10 sessions, 2 converted, 250 products viewed:
        // 10 x 0.3 + 2 x 0.5 + 250 / 100 x 0.2 = 3 + 1 + 0.5 = 4.5.
        let e = Engagement {
            sessions: 10,
            converted: 2,
            viewed: 250,
            abandoned: 1,
        };
        assert!((e.score() - 4.5).abs() < 1e-12);
        assert_eq!(Engagement::default().score(), 0.0);
    }
}
