//! Small, deterministic sampling tools: weighted choice in O(1), normal
//! draws, and a bijective scrambler that turns indexes into unique,
//! random-looking ids.

use rand::{Rng, RngExt};

/// Walker/Vose alias table: draws index `i` with probability
/// `weights[i] / sum(weights)` in constant time.
#[derive(Debug, Clone)]
pub struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Alias {
    /// Builds the table; `None` when no weight is positive.
    pub fn new(weights: &[f64]) -> Option<Self> {
        let n = weights.len();
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        if n == 0 || total <= 0.0 {
            return None;
        }
        let mut scaled: Vec<f64> = weights
            .iter()
            .map(|w| {
                if w.is_finite() && *w > 0.0 {
                    w * n as f64 / total
                } else {
                    0.0
                }
            })
            .collect();
        let mut prob = vec![0.0; n];
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            prob[i] = 1.0;
            alias[i] = i as u32;
        }
        Some(Alias { prob, alias })
    }

    /// Builds the table, or one that draws uniformly from `weights.len()`
    /// indexes (at least one) when no weight is positive.
    pub fn new_or_uniform(weights: &[f64]) -> Self {
        Self::new(weights).unwrap_or_else(|| {
            let n = weights.len().max(1);
            Alias {
                prob: vec![1.0; n],
                alias: (0..n as u32).collect(),
            }
        })
    }

    /// Draws an index.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// A standard normal draw (Box-Muller).
pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A log-normal draw with the given median and log-scale spread.
pub fn lognormal<R: Rng + ?Sized>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Picks from `(item, weight)` pairs (for short fixed tables).
pub fn pick<'a, T, R: Rng + ?Sized>(rng: &mut R, table: &'a [(T, f64)]) -> &'a T {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in table {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &table[table.len() - 1].0
}

const MASK48: u64 = (1 << 48) - 1;

/// A bijection on 48-bit integers keyed by `key`: distinct inputs give
/// distinct outputs, so ids made from indexes never collide.
pub fn scramble48(x: u64, key: u64) -> u64 {
    let mut v = (x ^ key) & MASK48;
    for round in 0..3u64 {
        v = v.wrapping_mul(0x9E37_79B9_7F4B | 1) & MASK48;
        v ^= v >> 21;
        v = (v ^ (key.rotate_left(17 * round as u32 + 7) & MASK48)) & MASK48;
    }
    v
}

/// Rounds a price to the shop's `.99` convention, never below 0.99.
pub fn shop_price(x: f64) -> f64 {
    ((x.floor().max(0.0) + 0.99) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn alias_matches_its_weights() {
        let a = Alias::new(&[1.0, 0.0, 3.0]).expect("weights");
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[a.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "zero weight never drawn");
        let share = f64::from(counts[2]) / 40_000.0;
        assert!(
            (share - 0.75).abs() < 0.01,
            "share of weight 3/4 was {share}"
        );
        assert!(Alias::new(&[0.0, 0.0]).is_none());
        assert!(Alias::new(&[]).is_none());
    }

    #[test]
    fn without_positive_weights_the_fallback_is_uniform() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(7);
        let a = Alias::new_or_uniform(&[0.0, 0.0, f64::NAN]);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[a.sample(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let empty = Alias::new_or_uniform(&[]);
        assert_eq!(empty.sample(&mut rng), 0);
        // With positive weights it is the ordinary table.
        let w = Alias::new_or_uniform(&[0.0, 1.0]);
        assert!((0..100).all(|_| w.sample(&mut rng) == 1));
    }

    #[test]
    fn scramble_is_a_bijection_on_a_sample() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u64 {
            let v = scramble48(i, 0xdead_beef);
            assert!(v <= MASK48);
            assert!(seen.insert(v), "collision at {i}");
        }
        assert_ne!(scramble48(1, 1), scramble48(1, 2));
    }

    #[test]
    fn prices_end_in_99() {
        assert_eq!(shop_price(129.4), 129.99);
        assert_eq!(shop_price(0.2), 0.99);
        assert_eq!(shop_price(-3.0), 0.99);
    }
}
