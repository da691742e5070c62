//! Significance of a co-occurrence: Dunning's log-likelihood ratio on the
//! 2x2 contingency table (the G-test), as used by Apache Mahout's item
//! similarity, with support, confidence and lift beside it.
//!
//! For items A and B over `n` baskets, with `ab` baskets holding both, `a`
//! holding A and `b` holding B:
//!
//! ```text
//!             B          not B
//! A           k11 = ab   k12 = a - ab
//! not A       k21 = b-ab k22 = n - a - b + ab
//! ```
//!
//! `LLR = 2 (H(rows) + H(columns) - H(matrix))`, with
//! `H(x1..xn) = xlogx(sum) - sum(xlogx(xi))` and `xlogx(x) = x ln x`.

fn xlogx(x: u64) -> f64 {
    if x == 0 {
        0.0
    } else {
        let x = x as f64;
        x * x.ln()
    }
}

fn entropy(elements: &[u64]) -> f64 {
    let sum: u64 = elements.iter().sum();
    xlogx(sum) - elements.iter().map(|e| xlogx(*e)).sum::<f64>()
}

/// The log-likelihood ratio of a 2x2 table (`k11` both, `k12` first
/// only, `k21` second only, `k22` neither). Never negative.
pub fn llr(k11: u64, k12: u64, k21: u64, k22: u64) -> f64 {
    let row = entropy(&[k11 + k12, k21 + k22]);
    let column = entropy(&[k11 + k21, k12 + k22]);
    let matrix = entropy(&[k11, k12, k21, k22]);
    // Round-off can make this slightly negative for independent items.
    if row + column < matrix {
        0.0
    } else {
        2.0 * (row + column - matrix)
    }
}

/// Measures of one pair, from counts over the same baskets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// Baskets with both items.
    pub count: u64,
    /// `count / baskets`.
    pub support: f64,
    /// `count / baskets with the first item`: P(B | A).
    pub confidence: f64,
    /// `confidence / P(B)`: how much more often than chance.
    pub lift: f64,
    /// Log-likelihood ratio.
    pub llr: f64,
    /// `count / sqrt(baskets with A x baskets with B)`.
    pub cosine: f64,
    /// `count / baskets with A or B`.
    pub jaccard: f64,
}

/// Scores the pair (A, B): `ab` baskets with both, `a` with A, `b` with B,
/// `n` baskets in all. Counts are clamped to a consistent table.
pub fn score(ab: u64, a: u64, b: u64, n: u64) -> PairScore {
    let a = a.max(ab);
    let b = b.max(ab);
    let n = n.max(a + b - ab);
    let ratio = |x: u64, y: u64| if y == 0 { 0.0 } else { x as f64 / y as f64 };
    let confidence = ratio(ab, a);
    PairScore {
        count: ab,
        support: ratio(ab, n),
        confidence,
        lift: if b == 0 {
            0.0
        } else {
            confidence / ratio(b, n)
        },
        llr: llr(ab, a - ab, b - ab, (n + ab).saturating_sub(a + b)),
        cosine: if a == 0 || b == 0 {
            0.0
        } else {
            ab as f64 / (a as f64 * b as f64).sqrt()
        },
        jaccard: ratio(ab, a + b - ab),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn llr_matches_values_computed_from_the_formula() {
        // (1,0,0,1): rows, columns and matrix entropy are all 2 ln 2, so
        // LLR = 2 (2 ln 2 + 2 ln 2 - 2 ln 2) = 4 ln 2.
        assert!(close(llr(1, 0, 0, 1), 4.0 * 2f64.ln()));
        // (2,3,3,12), n = 20: H(rows) = H(cols) = 20 ln 20 - 5 ln 5 - 15 ln 15
        // = 11.2467; H(matrix) = 20 ln 20 - 2 ln 2 - 2(3 ln 3) - 12 ln 12
        // = 22.1178; LLR = 2 (2 x 11.2467 - 22.1178) = 0.75122.
        assert!(close(llr(2, 3, 3, 12), 0.751_216_408_514_139_3));
        // Same formula, evaluated independently (Python, f64).
        assert!(close(llr(10, 0, 0, 10), 27.725_887_222_397_787));
        assert!(close(llr(5, 1995, 0, 100_000), 39.330_521_655_734_63));
        assert!(close(llr(1000, 1995, 1000, 100_000), 4_730.736_813_061_871));
        // No evidence, no score.
        assert_eq!(llr(0, 0, 0, 0), 0.0);
        assert_eq!(llr(1, 0, 0, 0), 0.0);
    }

    #[test]
    fn independent_items_score_near_zero_and_dependent_ones_high() {
        // A in half the baskets, B in half, together in a quarter: independent.
        assert!(llr(25, 25, 25, 25) < 1e-9);
        assert!(llr(50, 0, 0, 50) > 60.0);
    }

    #[test]
    fn score_reports_support_confidence_lift() {
        // 1,000 baskets; A in 100, B in 50, both in 40.
        let s = score(40, 100, 50, 1_000);
        assert_eq!(s.count, 40);
        assert!(close(s.support, 0.04));
        assert!(close(s.confidence, 0.4));
        // P(B) = 0.05, so lift = 0.4 / 0.05 = 8.
        assert!(close(s.lift, 8.0));
        assert!(close(s.llr, llr(40, 60, 10, 890)));
        // Cosine 40 / sqrt(100 x 50) = 0.5657; Jaccard 40 / 110.
        assert!(close(s.cosine, 40.0 / 5_000f64.sqrt()));
        assert!(close(s.jaccard, 40.0 / 110.0));
        // A best-seller partner gets a high count but a low lift.
        let popular = score(40, 100, 500, 1_000);
        assert!(popular.lift < 1.0 && popular.llr < s.llr);
    }
}
