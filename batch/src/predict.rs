//! Predictive CLV: BG/NBD for how many purchases a customer will make and
//! Gamma-Gamma for what they will be worth (Fader, Hardie and Lee 2005),
//! fitted by maximum likelihood, with the special functions they need.
//!
//! Conventions follow the `lifetimes` package: time in days, purchases
//! counted per day; `x` is the number of *repeat* purchase days, `t_x` the
//! time from the first to the last purchase, `t_cal` (the papers' `T`) the
//! time from the first purchase to the end of the observation period, and
//! `m` the mean value of the repeat purchase days.
//!
//! # Why the numerical pieces are written here
//!
//! ln Γ, Gauss's 2F1 and the Nelder-Mead minimiser are ours rather than
//! statrs' or argmin's. Build costs are a crate depending only on the
//! library, `cargo build --release` from an empty target dir on the
//! 2-core machine of docs/benchmarks.md:
//!
//! - statrs 0.19 (`default-features = false`, 14 crates, 3.9 s) has ln Γ
//!   but no hypergeometric function. Its ln Γ differs from this one by up
//!   to 2.1e-12 relative for x from 0.01 to 2000: taking it would change
//!   the predictions' last digits, and the snapshot's bytes, for nothing
//!   the fits' tolerance (1e-9) can see.
//! - argmin 0.11 (29 crates, 6.9 s wall, 10.7 s CPU) would need the two
//!   likelihoods wrapped in its `CostFunction` and `Executor` types, in
//!   place of the 100 lines below.
//!
//! Both fits are checked against the parameters Fader, Hardie and Lee
//! published for the CDNOW sample (`batch/tests/cdnow.rs`).

use serde::Serialize;

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Gauss's hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1, by its
/// power series.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for j in 0..100_000 {
        let j = j as f64;
        term *= (a + j) * (b + j) / ((c + j) * (j + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

/// Minimises `f` from `start` by the Nelder-Mead simplex method (with one
/// restart from the best point found). Returns the point and the value.
pub fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, start: &[f64]) -> (Vec<f64>, f64) {
    let mut best = start.to_vec();
    let mut value = f(&best);
    for _ in 0..3 {
        let (p, v) = simplex(f, &best, 0.5);
        let improved = value - v;
        best = p;
        value = v;
        if improved.abs() < 1e-9 {
            break;
        }
    }
    (best, value)
}

fn simplex(f: &dyn Fn(&[f64]) -> f64, start: &[f64], step: f64) -> (Vec<f64>, f64) {
    let n = start.len();
    let eval = |p: &[f64]| {
        let v = f(p);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut pts: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    pts.push((start.to_vec(), eval(start)));
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += step;
        let v = eval(&p);
        pts.push((p, v));
    }
    for _ in 0..20_000 {
        pts.sort_by(|a, b| a.1.total_cmp(&b.1));
        let spread = pts[n].1 - pts[0].1;
        if spread.abs() < 1e-11 * (1.0 + pts[0].1.abs()) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|k| pts[..n].iter().map(|p| p.0[k]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&pts[n].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let r = along(-1.0);
        let fr = eval(&r);
        if fr < pts[0].1 {
            let e = along(-2.0);
            let fe = eval(&e);
            pts[n] = if fe < fr { (e, fe) } else { (r, fr) };
        } else if fr < pts[n - 1].1 {
            pts[n] = (r, fr);
        } else {
            let (c, fc) = if fr < pts[n].1 {
                let c = along(-0.5);
                let fc = eval(&c);
                (c, fc)
            } else {
                let c = along(0.5);
                let fc = eval(&c);
                (c, fc)
            };
            if fc < pts[n].1.min(fr) {
                pts[n] = (c, fc);
            } else {
                let best = pts[0].0.clone();
                for p in pts.iter_mut().skip(1) {
                    for (k, v) in p.0.iter_mut().enumerate() {
                        *v = best[k] + 0.5 * (*v - best[k]);
                    }
                    p.1 = eval(&p.0);
                }
            }
        }
    }
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (p, v) = pts.swap_remove(0);
    (p, v)
}

/// One customer's purchase history in the models' terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rfm {
    /// Repeat purchase days.
    pub x: f64,
    /// Days from the first to the last purchase.
    pub t_x: f64,
    /// Days from the first purchase to the end of the period.
    pub t_cal: f64,
    /// Mean value of the repeat purchase days (0 when `x` is 0).
    pub m: f64,
}

/// BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma.
    pub alpha: f64,
    /// Beta parameter a of the dropout probability.
    pub a: f64,
    /// Beta parameter b of the dropout probability.
    pub b: f64,
}

/// Customers as the likelihoods see them: grouped by repeat purchases `x`
/// (ascending), and within a group the distinct `(t_x, t_cal)` with how
/// many customers share them. Days are whole numbers, so a shop's
/// customers fall into far fewer cells than there are customers, and the
/// gamma functions of `x` are computed once per group, not per customer.
type ByRepeats = Vec<(f64, Vec<(f64, f64, f64)>)>;

fn by_repeats(data: &[Rfm]) -> ByRepeats {
    let mut cells: Vec<(f64, f64, f64)> = data.iter().map(|c| (c.x, c.t_x, c.t_cal)).collect();
    cells.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.total_cmp(&b.2))
    });
    let mut groups: ByRepeats = Vec::new();
    for (x, t_x, t_cal) in cells {
        match groups.last_mut() {
            Some((gx, cells)) if *gx == x => match cells.last_mut() {
                Some(cell) if cell.0 == t_x && cell.1 == t_cal => cell.2 += 1.0,
                _ => cells.push((t_x, t_cal, 1.0)),
            },
            _ => groups.push((x, vec![(t_x, t_cal, 1.0)])),
        }
    }
    groups
}

impl BgNbd {
    /// Log-likelihood of one customer.
    pub fn ll(&self, c: &Rfm) -> f64 {
        self.ll_of_repeats(c.x) + self.ll_of_times(c.x, c.t_x, c.t_cal)
    }

    /// The part of a customer's log-likelihood that depends on `x` alone.
    fn ll_of_repeats(&self, x: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        a1 + a2
    }

    /// The rest of it: what depends on the recency and age too.
    fn ll_of_times(&self, x: f64, t_x: f64, t_cal: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let a3 = -(r + x) * (alpha + t_cal).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + t_x).ln();
            let m = a3.max(a4);
            m + ((a3 - m).exp() + (a4 - m).exp()).ln()
        } else {
            a3
        }
    }

    /// Total log-likelihood.
    pub fn total_ll(&self, data: &[Rfm]) -> f64 {
        data.iter().map(|c| self.ll(c)).sum()
    }

    /// [`total_ll`](Self::total_ll) over customers grouped by [`by_repeats`].
    fn grouped_ll(&self, groups: &ByRepeats) -> f64 {
        groups
            .iter()
            .map(|(x, cells)| {
                let n: f64 = cells.iter().map(|c| c.2).sum();
                n * self.ll_of_repeats(*x)
                    + cells
                        .iter()
                        .map(|&(t_x, t_cal, k)| k * self.ll_of_times(*x, t_x, t_cal))
                        .sum::<f64>()
            })
            .sum()
    }

    /// Maximum-likelihood fit.
    pub fn fit(data: &[Rfm]) -> (BgNbd, f64) {
        let from = |p: &[f64]| BgNbd {
            r: p[0].exp(),
            alpha: p[1].exp(),
            a: p[2].exp(),
            b: p[3].exp(),
        };
        let groups = by_repeats(data);
        let f = |p: &[f64]| -from(p).grouped_ll(&groups);
        let (p, v) = nelder_mead(&f, &[0.0, 0.0, 0.0, 0.0]);
        (from(&p), -v)
    }

    /// Expected number of purchases in the next `t` days, given the history.
    pub fn expected_purchases(&self, c: &Rfm, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = c.x;
        let z = t / (alpha + c.t_cal + t);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - ((alpha + c.t_cal) / (alpha + c.t_cal + t)).powf(r + x) * hyp;
        let denominator = if x > 0.0 {
            1.0 + a / (b + x - 1.0) * ((alpha + c.t_cal) / (alpha + c.t_x)).powf(r + x)
        } else {
            1.0
        };
        (first * second / denominator).max(0.0)
    }
}

/// A customer with repeat purchases, with what the Gamma-Gamma likelihood
/// takes of them that does not depend on the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Repeater {
    x: f64,
    m: f64,
    ln_m: f64,
    ln_x: f64,
    /// Where `x` is in [`Repeaters::xs`].
    x_at: usize,
}

/// The customers with repeat purchases (`x > 0` and `m > 0`), in the
/// order given, and their distinct `x` (whole days: a few dozen values).
#[derive(Debug, Clone, PartialEq)]
struct Repeaters {
    xs: Vec<f64>,
    rows: Vec<Repeater>,
}

impl Repeaters {
    fn new(data: &[Rfm]) -> Repeaters {
        let repeat = || data.iter().filter(|c| c.x > 0.0 && c.m > 0.0);
        let mut xs: Vec<f64> = repeat().map(|c| c.x).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let rows = repeat()
            .map(|c| Repeater {
                x: c.x,
                m: c.m,
                ln_m: c.m.ln(),
                ln_x: c.x.ln(),
                // Every x is in xs: found, never the insertion point.
                x_at: xs.partition_point(|v| v.total_cmp(&c.x).is_lt()),
            })
            .collect();
        Repeaters { xs, rows }
    }
}

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    /// Shape of a transaction's value.
    pub p: f64,
    /// Shape of the customers' value scale.
    pub q: f64,
    /// Scale of the customers' value scale.
    pub gamma: f64,
}

impl GammaGamma {
    /// Log-likelihood of one customer with `x > 0` repeat purchases of mean `m`.
    pub fn ll(&self, c: &Rfm) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let (x, m) = (c.x, c.m);
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + gamma).ln()
    }

    /// The sum of [`ll`](Self::ll) over `data`, bit for bit: the same
    /// terms in the same order, with ln Γ of `p x + q` and of `p x` taken
    /// once per distinct `x`, ln Γ(q) and `q ln γ` once, and `ln m`,
    /// `ln x` read from [`Repeaters`]. One logarithm per customer is left
    /// of the ten in `ll` (ln Γ takes two); the fits called `ll` for
    /// every customer at each of the minimiser's steps.
    fn total_ll(&self, data: &Repeaters) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let of_x: Vec<(f64, f64)> = data
            .xs
            .iter()
            .map(|&x| (ln_gamma(p * x + q), ln_gamma(p * x)))
            .collect();
        let (ln_gamma_q, q_ln_gamma) = (ln_gamma(q), q * gamma.ln());
        data.rows
            .iter()
            .map(|r| {
                let (x, m) = (r.x, r.m);
                let (ln_gamma_pxq, ln_gamma_px) = of_x[r.x_at];
                ln_gamma_pxq - ln_gamma_px - ln_gamma_q
                    + q_ln_gamma
                    + (p * x - 1.0) * r.ln_m
                    + p * x * r.ln_x
                    - (p * x + q) * (x * m + gamma).ln()
            })
            .sum()
    }

    /// Maximum-likelihood fit on the customers with repeat purchases.
    pub fn fit(data: &[Rfm]) -> (GammaGamma, f64) {
        let repeat = Repeaters::new(data);
        let from = |p: &[f64]| GammaGamma {
            p: p[0].exp(),
            q: p[1].exp(),
            gamma: p[2].exp(),
        };
        let f = |p: &[f64]| -from(p).total_ll(&repeat);
        let (p, v) = nelder_mead(&f, &[0.0, 0.0, 0.0]);
        (from(&p), -v)
    }

    /// Expected value of a future purchase, given the history.
    pub fn expected_value(&self, c: &Rfm) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let population = gamma * p / (q - 1.0);
        let w = p * c.x / (p * c.x + q - 1.0);
        (1.0 - w) * population + w * c.m
    }
}

/// Builds a customer's [`Rfm`] from `(day, value)` purchases (days as
/// numbers, one entry per day) observed up to day `end` inclusive.
pub fn rfm(purchases: &[(i64, f64)], end: i64) -> Option<Rfm> {
    let first = purchases.iter().map(|p| p.0).min()?;
    let last = purchases.iter().map(|p| p.0).max()?;
    let mut days: Vec<(i64, f64)> = purchases.to_vec();
    days.sort_by_key(|p| p.0);
    let repeat: Vec<f64> = days.iter().skip(1).map(|p| p.1).collect();
    let x = repeat.len() as f64;
    Some(Rfm {
        x,
        t_x: (last - first) as f64,
        t_cal: (end - first) as f64,
        m: if repeat.is_empty() {
            0.0
        } else {
            repeat.iter().sum::<f64>() / x
        },
    })
}

/// Spearman's rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in &idx[i..=j] {
                r[*k] = avg;
            }
            i = j + 1;
        }
        r
    }
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (ra, rb) = (ranks(&a[..n]), ranks(&b[..n]));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (da, db) = (ra[i] - mean, rb[i] - mean);
        cov += da * db;
        va += da * da;
        vb += db * db;
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Mean absolute error.
pub fn mae(pred: &[f64], actual: &[f64]) -> f64 {
    let n = pred.len().min(actual.len());
    if n == 0 {
        return 0.0;
    }
    pred.iter()
        .zip(actual)
        .map(|(p, a)| (p - a).abs())
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tolerance {tol})");
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half() {
        close(ln_gamma(1.0), 0.0, 1e-13);
        close(ln_gamma(2.0), 0.0, 1e-13);
        close(ln_gamma(5.0), 24f64.ln(), 1e-12);
        close(ln_gamma(11.0), 3_628_800f64.ln(), 1e-11);
        // Γ(1/2) = √π; Γ(0.1) = 9.513507698668732.
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13);
        close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-12);
    }

    #[test]
    fn hyp2f1_matches_closed_form() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z.
        for z in [0.1, 1.0 / 3.0, 0.5, 0.9] {
            close(hyp2f1(1.0, 1.0, 2.0, z), -(1.0 - z).ln() / z, 1e-12);
        }
        // 2F1(a, b; b; z) = (1 - z)^-a.
        close(hyp2f1(2.5, 3.0, 3.0, 0.4), 0.6f64.powf(-2.5), 1e-12);
    }

    /// The Gamma-Gamma total equals the sum of each customer's `ll` bit
    /// for bit (the fits' parameters, and so the written predictions, do
    /// not change), with repeated and fractional `x`, customers without
    /// repeats or value left out, at parameters far from each other.
    #[test]
    fn the_gamma_gamma_total_is_the_sum_of_ll_bit_for_bit() {
        let c = |x: f64, m: f64| Rfm {
            x,
            t_x: 1.0,
            t_cal: 2.0,
            m,
        };
        let data = [
            c(3.0, 12.5),
            c(0.0, 0.0),
            c(1.0, 80.25),
            c(3.0, 7.1),
            c(2.5, 40.0),
            c(1.0, 0.0),
            c(17.0, 1234.56),
        ];
        let repeat = Repeaters::new(&data);
        assert_eq!(repeat.xs, vec![1.0, 2.5, 3.0, 17.0]);
        assert_eq!(repeat.rows.len(), 5);
        for (p, q, gamma) in [(6.25, 3.74, 15.44), (0.3, 12.0, 0.05), (1.0, 1.0, 1.0)] {
            let g = GammaGamma { p, q, gamma };
            let by_customer: f64 = data
                .iter()
                .filter(|c| c.x > 0.0 && c.m > 0.0)
                .map(|c| g.ll(c))
                .sum();
            assert_eq!(g.total_ll(&repeat).to_bits(), by_customer.to_bits());
        }
    }

    #[test]
    fn the_grouped_likelihood_is_the_sum_over_customers() {
        let c = |x: f64, t_x: f64, t_cal: f64| Rfm {
            x,
            t_x,
            t_cal,
            m: 10.0,
        };
        // Two customers share a cell, two share x only, one has none.
        let data = [
            c(2.0, 30.0, 80.0),
            c(0.0, 0.0, 55.0),
            c(2.0, 30.0, 80.0),
            c(2.0, 41.0, 80.0),
            c(5.0, 60.0, 61.0),
        ];
        let groups = by_repeats(&data);
        assert_eq!(
            groups,
            vec![
                (0.0, vec![(0.0, 55.0, 1.0)]),
                (2.0, vec![(30.0, 80.0, 2.0), (41.0, 80.0, 1.0)]),
                (5.0, vec![(60.0, 61.0, 1.0)]),
            ]
        );
        let m = BgNbd {
            r: 0.24,
            alpha: 4.41,
            a: 0.79,
            b: 2.43,
        };
        close(m.grouped_ll(&groups), m.total_ll(&data), 1e-12);
    }

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let f = |p: &[f64]| (p[0] - 3.0).powi(2) + 10.0 * (p[1] + 1.0).powi(2) + 2.0;
        let (p, v) = nelder_mead(&f, &[0.0, 0.0]);
        close(p[0], 3.0, 1e-4);
        close(p[1], -1.0, 1e-4);
        close(v, 2.0, 1e-8);
    }

    #[test]
    fn bgnbd_likelihood_by_hand() {
        let m = BgNbd {
            r: 1.0,
            alpha: 1.0,
            a: 1.0,
            b: 1.0,
        };
        // x = 0: L = (alpha / (alpha + T))^r = 1/2.
        let none = Rfm {
            x: 0.0,
            t_x: 0.0,
            t_cal: 1.0,
            m: 0.0,
        };
        close(m.ll(&none), -(2f64.ln()), 1e-12);
        // x = 1, t_x = 0.5, T = 1: L = B(1,2)/B(1,1) / 2^2 + B(2,1)/B(1,1) / 1.5^2
        //   = 1/8 + 1/4.5 = 0.3472222...
        let one = Rfm {
            x: 1.0,
            t_x: 0.5,
            t_cal: 1.0,
            m: 10.0,
        };
        close(m.ll(&one), (0.125f64 + 1.0 / 4.5).ln(), 1e-12);
    }

    #[test]
    fn bgnbd_expectation_by_hand() {
        // r = 1, alpha = 1, a = 2, b = 1, x = 0, T = 1, t = 1:
        // (a+b-1)/(a-1) = 2; z = 1/3; 2F1(1,1;2;1/3) = 3 ln 1.5;
        // E = 2 (1 - (2/3) 3 ln 1.5) = 2 (1 - 2 ln 1.5) = 0.3781393...
        let m = BgNbd {
            r: 1.0,
            alpha: 1.0,
            a: 2.0,
            b: 1.0,
        };
        let c = Rfm {
            x: 0.0,
            t_x: 0.0,
            t_cal: 1.0,
            m: 0.0,
        };
        close(
            m.expected_purchases(&c, 1.0),
            2.0 * (1.0 - 2.0 * 1.5f64.ln()),
            1e-12,
        );
    }

    #[test]
    fn gamma_gamma_likelihood_and_expectation_by_hand() {
        // p = q = gamma = 1, x = 1, m = 2: the marginal density of one value
        // z is 1 / (1 + z)^2 = 1/9.
        let g = GammaGamma {
            p: 1.0,
            q: 1.0,
            gamma: 1.0,
        };
        let c = Rfm {
            x: 1.0,
            t_x: 1.0,
            t_cal: 2.0,
            m: 2.0,
        };
        close(g.ll(&c), -(9f64.ln()), 1e-12);
        // p = 6, q = 4, gamma = 15, x = 2, m = 20: weight 12/15, population
        // mean 15 * 6 / 3 = 30: 0.2 * 30 + 0.8 * 20 = 22.
        let g = GammaGamma {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        let c = Rfm {
            x: 2.0,
            t_x: 5.0,
            t_cal: 9.0,
            m: 20.0,
        };
        close(g.expected_value(&c), 22.0, 1e-12);
    }

    #[test]
    fn rfm_from_purchase_days() {
        // Purchases on days 3, 10 and 12 worth 5, 7 and 9; period ends day 20.
        let r = rfm(&[(10, 7.0), (3, 5.0), (12, 9.0)], 20).unwrap();
        assert_eq!(
            r,
            Rfm {
                x: 2.0,
                t_x: 9.0,
                t_cal: 17.0,
                m: 8.0
            }
        );
        assert_eq!(rfm(&[], 20), None);
    }

    #[test]
    fn spearman_by_hand() {
        close(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0, 1e-12);
        close(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0, 1e-12);
        // Ranks (1, 2, 3, 4) vs (2, 1, 4, 3): 1 - 6 * 4 / (4 * 15) = 0.6.
        close(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 4.0, 3.0]),
            0.6,
            1e-12,
        );
        close(mae(&[1.0, 5.0], &[2.0, 2.0]), 2.0, 1e-12);
    }
}
