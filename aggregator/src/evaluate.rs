//! Offline quality of the recommendations: trained on one period, asked
//! about the baskets of the next.
//!
//! For each held-out basket with two or more distinct items, and for each of
//! its items, a query asks for that item's top `k` partners; it is a hit if
//! another item of the same basket is among them. A best-seller baseline
//! (the `k` most bought products, the item itself left out) shows what
//! popularity alone achieves.

use crate::choices::{Ranking, Span};
use crate::names::UNNUMBERED;
use crate::processor::{Aggregator, AggregatorConfig};
use chrono::NaiveDateTime;
use schemas::topics;
use std::collections::{HashMap, HashSet};

/// The train/test split of [`evaluate`]: events before `split` train a
/// model; the transactions after it are the held-out baskets.
#[derive(Debug)]
pub struct Holdout {
    split: NaiveDateTime,
    /// The model, trained on the events before the split.
    pub model: Aggregator,
    /// Each held-out transaction's product numbers.
    pub test: Vec<Vec<u32>>,
    offsets: HashMap<String, u64>,
    /// Numbers for held-out products the model never saw (named ids have
    /// no number until then), from just below [`UNNUMBERED`] down.
    unseen: HashMap<String, u32>,
}

impl Holdout {
    /// An untrained model with `config`, splitting at `split`.
    pub fn new(config: AggregatorConfig, split: NaiveDateTime) -> Holdout {
        Holdout {
            split,
            model: Aggregator::new(config),
            test: Vec::new(),
            offsets: HashMap::new(),
            unseen: HashMap::new(),
        }
    }

    /// Takes the next event of the stream (in event-time order) as the log
    /// would carry it: before the split it is applied to the model (at the
    /// next offset of its topic); after it, a valid transaction becomes a
    /// test basket and everything else is left out.
    pub fn feed(&mut self, topic: &str, time: NaiveDateTime, payload: &[u8]) {
        if time < self.split {
            let offset = self.offsets.entry(topic.to_string()).or_insert(0);
            self.model.apply(topic, 0, *offset, payload);
            *offset += 1;
        } else if topic == topics::TRANSACTIONS {
            if let Ok(t) = schemas::decode_transaction(payload) {
                let basket = t
                    .items
                    .iter()
                    .map(|i| match self.model.product_number(&i.product_id) {
                        Some(n) => n,
                        None => {
                            let taken = u32::try_from(self.unseen.len()).unwrap_or(u32::MAX);
                            let next = (UNNUMBERED - 1).saturating_sub(taken);
                            *self.unseen.entry(i.product_id.clone()).or_insert(next)
                        }
                    })
                    .collect();
                self.test.push(basket);
            }
        }
    }

    /// Events the model was trained on.
    pub fn trained_on(&self) -> u64 {
        self.offsets.values().sum()
    }

    /// Held-out baskets with two or more distinct items (the ones queried).
    pub fn multi_item_baskets(&self) -> usize {
        self.test
            .iter()
            .filter(|b| b.iter().collect::<HashSet<_>>().len() >= 2)
            .count()
    }

    /// [`evaluate`] on the held-out baskets.
    pub fn evaluate(&self, complements: &HashMap<u32, Vec<u32>>, k: usize) -> Vec<Quality> {
        evaluate(&self.model, &self.test, complements, k)
    }
}

/// Hit rates and planted-pair recall of one ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// Which ranking (`llr`, `count`, `best-seller`).
    pub name: &'static str,
    /// Queries with a held-out partner in the top k, over all queries.
    pub hit_rate: f64,
    /// Planted complements found in their product's top k, over all planted.
    pub planted_recall: f64,
}

/// Evaluates `model` (trained) on `test` baskets of product numbers, and on
/// the planted `complements` (product → its complements), at top `k`.
pub fn evaluate(
    model: &Aggregator,
    test: &[Vec<u32>],
    complements: &HashMap<u32, Vec<u32>>,
    k: usize,
) -> Vec<Quality> {
    let best: Vec<u32> = model
        .best_sellers(k + 1, Span::AllTime)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let best_for = |item: u32| -> HashSet<u32> {
        best.iter()
            .copied()
            .filter(|p| *p != item)
            .take(k)
            .collect()
    };

    let rankers: Vec<(&'static str, Option<Ranking>)> = Ranking::ALL
        .into_iter()
        .map(|r| (r.name(), Some(r)))
        .chain([("best-seller", None)])
        .collect();
    let mut cache: HashMap<(u32, &'static str), HashSet<u32>> = HashMap::new();
    let mut top = |item: u32, name: &'static str, r: Option<Ranking>| -> HashSet<u32> {
        cache
            .entry((item, name))
            .or_insert_with(|| match r {
                Some(r) => model
                    .bought_together(item, k, r, Span::AllTime)
                    .iter()
                    .map(|p| p.item)
                    .collect(),
                None => best_for(item),
            })
            .clone()
    };
    let mut out = Vec::new();
    for (name, r) in rankers {
        let (mut hits, mut queries) = (0u64, 0u64);
        for basket in test {
            let distinct: HashSet<u32> = basket.iter().copied().collect();
            if distinct.len() < 2 {
                continue;
            }
            for &item in &distinct {
                queries += 1;
                let t = top(item, name, r);
                if distinct.iter().any(|o| *o != item && t.contains(o)) {
                    hits += 1;
                }
            }
        }
        let (mut found, mut planted) = (0u64, 0u64);
        for (&p, comps) in complements {
            let t = top(p, name, r);
            for c in comps {
                planted += 1;
                found += u64::from(t.contains(c));
            }
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        out.push(Quality {
            name,
            hit_rate: ratio(hits, queries),
            planted_recall: ratio(found, planted),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::envelope::{encode, Kind};

    fn basket(i: u64, day: u32, items: &[u32]) -> (u64, Vec<u8>) {
        let items: Vec<schemas::LineItem> = items
            .iter()
            .map(|p| schemas::LineItem {
                product_id: schemas::ids::product_id(*p),
                quantity: 1,
                unit_price: 1.0,
                subtotal: 1.0,
            })
            .collect();
        let t = schemas::Transaction {
            transaction_id: format!("txn_{i}"),
            session_id: "s".into(),
            user_id: "user_000001".into(),
            timestamp: schemas::time::parse(&format!("2025-01-{day:02}T12:00:00")).expect("date"),
            total: items.len() as f64,
            items,
            discount: 0.0,
            payment_method: schemas::PaymentMethod::Paypal,
        };
        (i, encode(Kind::Transaction, &t))
    }

    /// Training: 1 and 2 are bought together 3 times; 9 sells alone 5
    /// times, once with 1 and once with 5, so by baskets 9 is in 7, 1 in 4,
    /// 2 in 3. Test: the basket {1, 2} and the basket {3, 4}.
    /// Queries: item 1 (top: 2, 9: hit), item 2 (top: 1: hit), items 3
    /// and 4 (never seen: miss) -> 2 hits of 4 for co-occurrence rankings.
    /// The best-seller list (9, 1, 2, ...) at k = 1 is {9} for 1 and 2:
    /// miss, miss; {9} for 3 and 4: miss -> 0 of 4.
    #[test]
    fn hit_rates_by_hand() {
        let mut m = Aggregator::new(AggregatorConfig::default());
        let mut n = 0;
        let mut feed = |items: &[u32]| {
            let (o, p) = basket(n, 1, items);
            m.apply(schemas::topics::TRANSACTIONS, 0, o, &p);
            n += 1;
        };
        for _ in 0..3 {
            feed(&[1, 2]);
        }
        for _ in 0..5 {
            feed(&[9]);
        }
        feed(&[1, 9]);
        feed(&[9, 5]);
        let test = vec![vec![1, 2], vec![3, 4]];
        let complements: HashMap<u32, Vec<u32>> =
            [(1, vec![2]), (3, vec![4])].into_iter().collect();
        let q = evaluate(&m, &test, &complements, 1);
        let get = |name: &str| q.iter().find(|x| x.name == name).cloned().expect("ranking");
        assert_eq!(get("count").hit_rate, 0.5);
        assert_eq!(get("llr").hit_rate, 0.5);
        assert_eq!(get("best-seller").hit_rate, 0.0);
        // Planted: 1 -> 2 is found (top 1 of 1 is 2); 3 -> 4 is not.
        assert_eq!(get("llr").planted_recall, 0.5);
        assert_eq!(get("best-seller").planted_recall, 0.0);
    }

    /// Days 1-2 train, day 3 on is held out: the {1, 2} baskets of days 1
    /// and 2 are applied (2 events, offsets 0 and 1), the day-3 baskets
    /// {1, 2} and {7} are the test (one with 2+ items), and a day-3
    /// session is neither.
    #[test]
    fn the_holdout_trains_before_the_split_and_tests_after_it() {
        let split = schemas::time::parse("2025-01-03T00:00:00").expect("date");
        let mut h = Holdout::new(AggregatorConfig::default(), split);
        let time =
            |day: u32| schemas::time::parse(&format!("2025-01-{day:02}T12:00:00")).expect("date");
        for (i, day, items) in [
            (0, 1, &[1, 2][..]),
            (1, 2, &[1, 2]),
            (2, 3, &[1, 2]),
            (3, 3, &[7]),
        ] {
            let (_, payload) = basket(i, day, items);
            h.feed(schemas::topics::TRANSACTIONS, time(day), &payload);
        }
        h.feed(schemas::topics::SESSIONS, time(3), b"not even a session");
        assert_eq!(h.trained_on(), 2);
        assert_eq!(h.test, vec![vec![1, 2], vec![7]]);
        assert_eq!(h.multi_item_baskets(), 1);
        let top = h.model.bought_together(1, 5, Ranking::Count, Span::AllTime);
        assert_eq!(top.len(), 1);
        assert_eq!((top[0].item, top[0].score.count), (2, 2));
        // Item 1's top partner is 2, and so is 2's: both queries hit.
        let q = h.evaluate(&HashMap::new(), 1);
        let count = q.iter().find(|x| x.name == "count").expect("count");
        assert_eq!(count.hit_rate, 1.0);
    }
}
