//! Live co-occurrence: per item and per pair of items, how many baskets hold
//! them, over a sliding event-time window and all time, and each item's
//! top-k partners by a chosen ranking.

use crate::llr::{score, PairScore};
use crate::pairs::for_each_pair;
use crate::window::WindowedCounts;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

/// How partners are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ranking {
    /// Log-likelihood ratio: significance, not popularity (the default).
    Llr,
    /// Raw co-occurrence count (the seed report's behaviour).
    Count,
}

/// Counts over the window or over all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The sliding window.
    Window,
    /// Everything seen.
    AllTime,
}

/// A partner of an item, with its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    /// The partner item.
    pub item: u32,
    /// Scores of the pair.
    pub score: PairScore,
}

/// Baskets, item counts and pair counts, by event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoOccurrence {
    max_items: usize,
    baskets: WindowedCounts<()>,
    items: WindowedCounts<u32>,
    pairs: WindowedCounts<(u32, u32)>,
    /// Items each item was ever paired with, each once, in the order first
    /// seen (window counts decide whether a partner is still live).
    partners: HashMap<u32, Vec<u32>>,
}

impl CoOccurrence {
    /// A model with `window_buckets` buckets of `bucket_secs`, taking at most
    /// `max_items` distinct items from one basket.
    pub fn new(bucket_secs: i64, window_buckets: i64, max_items: usize) -> Self {
        CoOccurrence {
            max_items,
            baskets: WindowedCounts::new(bucket_secs, window_buckets),
            items: WindowedCounts::new(bucket_secs, window_buckets),
            pairs: WindowedCounts::new(bucket_secs, window_buckets),
            partners: HashMap::default(),
        }
    }

    /// Adds a basket at event time `t` (seconds).
    pub fn add_basket(&mut self, items: &[u32], t: i64) {
        let distinct = crate::pairs::distinct_capped(items, self.max_items);
        if distinct.is_empty() {
            return;
        }
        self.baskets.add((), t, 1);
        for &i in &distinct {
            self.items.add(i, t, 1);
        }
        let mut sorted = distinct;
        sorted.sort_unstable();
        let (counts, partners) = (&mut self.pairs, &mut self.partners);
        for_each_pair(&sorted, |&a, &b| {
            // A pair new to all time is a new partner of both items.
            if counts.add_counting_new((a, b), t, 1).1 {
                partners.entry(a).or_default().push(b);
                partners.entry(b).or_default().push(a);
            }
        });
    }

    /// Slides the windows so that their newest bucket holds `t`.
    pub fn advance_to(&mut self, t: i64) {
        self.baskets.advance_to(t);
        self.items.advance_to(t);
        self.pairs.advance_to(t);
    }

    fn count(&self, span: Span, key: (u32, u32)) -> u64 {
        match span {
            Span::Window => self.pairs.window_count(&key),
            Span::AllTime => self.pairs.all_time_count(&key),
        }
    }

    /// The top `k` partners of `item` by `ranking` over `span`. Ties break
    /// on the higher count, then the lower item id, so results are stable.
    pub fn top_partners(&self, item: u32, k: usize, ranking: Ranking, span: Span) -> Vec<Partner> {
        let Some(candidates) = self.partners.get(&item) else {
            return Vec::new();
        };
        let (n, a) = match span {
            Span::Window => (
                self.baskets.window_count(&()),
                self.items.window_count(&item),
            ),
            Span::AllTime => (
                self.baskets.all_time_count(&()),
                self.items.all_time_count(&item),
            ),
        };
        let mut out: Vec<Partner> = candidates
            .iter()
            .filter_map(|&p| {
                let ab = self.count(span, (item.min(p), item.max(p)));
                if ab == 0 {
                    return None;
                }
                let b = match span {
                    Span::Window => self.items.window_count(&p),
                    Span::AllTime => self.items.all_time_count(&p),
                };
                Some(Partner {
                    item: p,
                    score: score(ab, a, b, n),
                })
            })
            .collect();
        let key = |p: &Partner| match ranking {
            Ranking::Llr => p.score.llr,
            Ranking::Count => p.score.count as f64,
        };
        out.sort_by(|x, y| {
            key(y)
                .total_cmp(&key(x))
                .then(y.score.count.cmp(&x.score.count))
                .then(x.item.cmp(&y.item))
        });
        out.truncate(k);
        out
    }

    /// The `k` items in the most baskets over `span` (ties: lower id first).
    pub fn top_items(&self, k: usize, span: Span) -> Vec<(u32, u64)> {
        let mut all: Vec<(u32, u64)> = match span {
            Span::Window => self.items.iter_window().map(|(i, n)| (*i, n)).collect(),
            Span::AllTime => self.items.iter_all_time().map(|(i, n)| (*i, n)).collect(),
        };
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    /// The `k` pairs in the most baskets over `span`, as `(a, b, count)`
    /// with `a < b` (ties: lower ids first).
    pub fn top_pairs(&self, k: usize, span: Span) -> Vec<(u32, u32, u64)> {
        let mut all: Vec<(u32, u32, u64)> = match span {
            Span::Window => self
                .pairs
                .iter_window()
                .map(|(&(a, b), n)| (a, b, n))
                .collect(),
            Span::AllTime => self
                .pairs
                .iter_all_time()
                .map(|(&(a, b), n)| (a, b, n))
                .collect(),
        };
        let order = |x: &(u32, u32, u64), y: &(u32, u32, u64)| {
            y.2.cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1))
        };
        if all.len() > k && k > 0 {
            all.select_nth_unstable_by(k - 1, order);
            all.truncate(k);
        }
        all.sort_by(order);
        all.truncate(k);
        all
    }

    /// Whether the item was ever in a basket.
    pub fn knows(&self, item: u32) -> bool {
        self.items.all_time_count(&item) > 0
    }

    /// Pairs with a count in the window (state size).
    pub fn window_pairs(&self) -> usize {
        self.pairs.window_keys()
    }

    /// `[start, end)` seconds covered by the window.
    pub fn covers(&self) -> Option<(i64, i64)> {
        self.baskets.covers()
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
        self.sessions as f64 * 0.3 + self.converted as f64 * 0.5 + self.viewed as f64 / 100.0 * 0.2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
