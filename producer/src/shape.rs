//! Statistics that show the generated data has the intended shape: counts,
//! dirty share per rule, cart abandonment, conversion by device, Zipf skew
//! of product views, and over-representation of planted complements in
//! baskets. Computed from the published bytes through the validators, so
//! they describe what consumers will see.

use crate::catalog::Catalog;
use crate::events::{Event, Stream};
use schemas::envelope::{decode_catalog, decode_session, decode_transaction};
use schemas::{ConversionStatus, DeviceType};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Accumulates statistics over an event stream.
pub struct ShapeCollector {
    complements: HashSet<(u32, u32)>,
    sellable: u64,
    products: usize,
    counts: BTreeMap<String, u64>,
    rejected: BTreeMap<String, BTreeMap<String, u64>>,
    label_mismatches: u64,
    status: [u64; 3],
    by_device: BTreeMap<DeviceType, (u64, u64)>,
    views: Vec<u64>,
    view_total: u64,
    cart_total: u64,
    sessions_clean: u64,
    pairs: u64,
    complement_pairs: u64,
    multi_baskets: u64,
    baskets_with_complement: u64,
    revenue: f64,
    users: usize,
    user_revenue: std::collections::HashMap<String, f64>,
    viewed_pairs: HashSet<u64>,
    bought_pairs: HashSet<u64>,
    bounces: u64,
}

/// The figures, ready to print or serialise.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeReport {
    /// Records per kind (category, product, user, session, transaction).
    pub records: BTreeMap<String, u64>,
    /// Rejected records per kind and reason code.
    pub rejected: BTreeMap<String, BTreeMap<String, u64>>,
    /// Share of all records rejected.
    pub dirty_share: f64,
    /// Records whose validator verdict differs from the planted label (0).
    pub label_mismatches: u64,
    /// Share of clean sessions that abandoned a cart.
    pub abandonment_rate: f64,
    /// Share of clean sessions that converted.
    pub conversion_rate: f64,
    /// Conversion rate per device type.
    pub conversion_by_device: BTreeMap<String, f64>,
    /// Mean products viewed per clean session.
    pub mean_views: f64,
    /// Mean cart items per session with a cart.
    pub mean_cart_items: f64,
    /// Share of product views taken by the top 1% of products.
    pub top1pct_view_share: f64,
    /// Share of product views taken by the top 10% of products.
    pub top10pct_view_share: f64,
    /// Fitted Zipf exponent of views by rank (ranks 1..=1000).
    pub zipf_exponent: f64,
    /// Share of multi-item baskets that contain a planted complement pair.
    pub baskets_with_complement: f64,
    /// Share of co-purchase pairs that are planted pairs, over the share
    /// expected if pairs were random.
    pub complement_lift: f64,
    /// Revenue of clean transactions.
    pub revenue: f64,
    /// Share of revenue of the 2.5% of users who spent most (the report's
    /// VIP segment, ranked by CLV, is close to this).
    pub top2_5pct_revenue_share: f64,
    /// Share of revenue of the 15% of users who spent most (VIP + High).
    pub top15pct_revenue_share: f64,
    /// Share of distinct viewed-together pairs never bought together.
    pub viewed_never_bought: f64,
    /// Share of clean sessions that viewed no product.
    pub bounce_rate: f64,
}

impl ShapeCollector {
    /// A collector for events generated from `catalog`.
    pub fn new(catalog: &Catalog) -> Self {
        let mut complements = HashSet::new();
        for (p, cs) in catalog.complements.iter().enumerate() {
            for &q in cs {
                complements.insert(((p as u32).min(q), (p as u32).max(q)));
            }
        }
        let sellable = (0..catalog.products.len())
            .filter(|&i| catalog.products[i].is_active && !catalog.dirty_products[i])
            .count() as u64;
        ShapeCollector {
            complements,
            sellable,
            products: catalog.products.len(),
            counts: BTreeMap::new(),
            rejected: BTreeMap::new(),
            label_mismatches: 0,
            status: [0; 3],
            by_device: BTreeMap::new(),
            views: vec![0; catalog.products.len()],
            view_total: 0,
            cart_total: 0,
            sessions_clean: 0,
            pairs: 0,
            complement_pairs: 0,
            multi_baskets: 0,
            baskets_with_complement: 0,
            revenue: 0.0,
            users: catalog.users.len(),
            user_revenue: std::collections::HashMap::new(),
            viewed_pairs: HashSet::new(),
            bought_pairs: HashSet::new(),
            bounces: 0,
        }
    }

    fn product(&self, id: &str) -> Option<u32> {
        let n = schemas::ids::parse_product_id(id)? as usize;
        (1..=self.products).contains(&n).then(|| (n - 1) as u32)
    }

    /// Takes one event into account.
    pub fn observe(&mut self, ev: &Event) {
        let payload = ev.payload();
        *self.counts.entry(ev.kind.as_str().to_string()).or_default() += 1;
        let verdict: Result<(), schemas::Rejection> = match ev.stream {
            Stream::Catalog => decode_catalog(&payload).map(|_| ()),
            Stream::Sessions => decode_session(&payload).map(|s| self.session(&s)),
            Stream::Transactions => decode_transaction(&payload).map(|t| self.transaction(&t)),
        };
        let code = verdict.as_ref().err().map(|e| e.code());
        if code != ev.dirty {
            self.label_mismatches += 1;
        }
        if let Some(code) = code {
            *self
                .rejected
                .entry(ev.kind.as_str().to_string())
                .or_default()
                .entry(code.to_string())
                .or_default() += 1;
        }
    }

    fn session(&mut self, s: &schemas::Session) {
        self.sessions_clean += 1;
        let i = match s.conversion_status {
            ConversionStatus::Browsed => 0,
            ConversionStatus::Abandoned => 1,
            ConversionStatus::Converted => 2,
        };
        self.status[i] += 1;
        let d = self.by_device.entry(s.device_info.device_type).or_default();
        d.0 += 1;
        d.1 += u64::from(i == 2);
        self.view_total += s.viewed_products.len() as u64;
        self.cart_total += s.cart_contents.len() as u64;
        self.bounces += u64::from(s.viewed_products.is_empty());
        let mut viewed: Vec<u32> = s
            .viewed_products
            .iter()
            .filter_map(|p| self.product(p))
            .collect();
        viewed.sort_unstable();
        viewed.dedup();
        for (k, &a) in viewed.iter().enumerate() {
            for &b in &viewed[k + 1..] {
                self.viewed_pairs.insert(u64::from(a) << 32 | u64::from(b));
            }
        }
        for p in &s.viewed_products {
            if let Some(i) = self.product(p) {
                self.views[i as usize] += 1;
            }
        }
    }

    fn transaction(&mut self, t: &schemas::Transaction) {
        self.revenue += t.total;
        *self.user_revenue.entry(t.user_id.clone()).or_default() += t.total;
        let mut items: Vec<u32> = t
            .items
            .iter()
            .filter_map(|i| self.product(&i.product_id))
            .collect();
        items.sort_unstable();
        items.dedup();
        if items.len() < 2 {
            return;
        }
        self.multi_baskets += 1;
        let mut found = false;
        for (k, &a) in items.iter().enumerate() {
            for &b in &items[k + 1..] {
                self.pairs += 1;
                self.bought_pairs.insert(u64::from(a) << 32 | u64::from(b));
                if self.complements.contains(&(a, b)) {
                    self.complement_pairs += 1;
                    found = true;
                }
            }
        }
        self.baskets_with_complement += u64::from(found);
    }

    /// The figures so far.
    pub fn report(&self) -> ShapeReport {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let total: u64 = self.counts.values().sum();
        let rejected: u64 = self.rejected.values().flat_map(|m| m.values()).sum();
        let mut sorted: Vec<u64> = self.views.iter().copied().filter(|v| *v > 0).collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let share = |frac: f64| {
            let k = ((self.products as f64 * frac).ceil() as usize).min(sorted.len());
            ratio(sorted[..k].iter().sum(), self.view_total)
        };
        let possible = self.sellable * self.sellable.saturating_sub(1) / 2;
        ShapeReport {
            records: self.counts.clone(),
            rejected: self.rejected.clone(),
            dirty_share: ratio(rejected, total),
            label_mismatches: self.label_mismatches,
            abandonment_rate: ratio(self.status[1], self.sessions_clean),
            conversion_rate: ratio(self.status[2], self.sessions_clean),
            conversion_by_device: self
                .by_device
                .iter()
                .map(|(d, (n, c))| (d.as_str().to_string(), ratio(*c, *n)))
                .collect(),
            mean_views: ratio(self.view_total, self.sessions_clean),
            mean_cart_items: ratio(self.cart_total, self.status[1] + self.status[2]),
            top1pct_view_share: share(0.01),
            top10pct_view_share: share(0.10),
            zipf_exponent: zipf_fit(&sorted[..sorted.len().min(1000)]),
            baskets_with_complement: ratio(self.baskets_with_complement, self.multi_baskets),
            complement_lift: if possible == 0 || self.pairs == 0 {
                0.0
            } else {
                ratio(self.complement_pairs, self.pairs)
                    / (self.complements.len() as f64 / possible as f64)
            },
            revenue: (self.revenue * 100.0).round() / 100.0,
            top2_5pct_revenue_share: self.top_revenue_share(0.025),
            top15pct_revenue_share: self.top_revenue_share(0.15),
            viewed_never_bought: ratio(
                self.viewed_pairs
                    .iter()
                    .filter(|p| !self.bought_pairs.contains(p))
                    .count() as u64,
                self.viewed_pairs.len() as u64,
            ),
            bounce_rate: ratio(self.bounces, self.sessions_clean),
        }
    }

    /// Share of revenue of the `frac` of all users who spent most.
    fn top_revenue_share(&self, frac: f64) -> f64 {
        let mut spent: Vec<f64> = self.user_revenue.values().copied().collect();
        spent.sort_unstable_by(|a, b| b.total_cmp(a));
        let k = ((self.users as f64 * frac).floor() as usize).min(spent.len());
        let total: f64 = spent.iter().sum();
        if total <= 0.0 {
            0.0
        } else {
            spent[..k].iter().sum::<f64>() / total
        }
    }
}

/// Least-squares slope of ln(count) against ln(rank), negated.
pub fn zipf_fit(counts_desc: &[u64]) -> f64 {
    let pts: Vec<(f64, f64)> = counts_desc
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(r, c)| (((r + 1) as f64).ln(), (*c as f64).ln()))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        -sxy / sxx
    }
}

impl fmt::Display for ShapeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        writeln!(f, "records:")?;
        for (k, n) in &self.records {
            let bad: u64 = self.rejected.get(k).map_or(0, |m| m.values().sum());
            writeln!(
                f,
                "  {k:<12} {n:>10}  dirty {bad:>6} ({})",
                pct(if *n == 0 { 0.0 } else { bad as f64 / *n as f64 })
            )?;
        }
        writeln!(f, "dirty records by rule:")?;
        for (k, m) in &self.rejected {
            let rules: Vec<String> = m.iter().map(|(c, n)| format!("{c} {n}")).collect();
            writeln!(f, "  {k:<12} {}", rules.join(", "))?;
        }
        writeln!(
            f,
            "dirty share:          {} (validator and generator disagree on {} records)",
            pct(self.dirty_share),
            self.label_mismatches
        )?;
        writeln!(f, "conversion:           {}", pct(self.conversion_rate))?;
        writeln!(
            f,
            "cart abandonment:     {} of sessions",
            pct(self.abandonment_rate)
        )?;
        let dev: Vec<String> = self
            .conversion_by_device
            .iter()
            .map(|(d, r)| format!("{d} {}", pct(*r)))
            .collect();
        writeln!(f, "conversion by device: {}", dev.join(", "))?;
        writeln!(
            f,
            "views per session:    {:.2} (cart items per cart {:.2})",
            self.mean_views, self.mean_cart_items
        )?;
        writeln!(
            f,
            "view skew:            top 1% of products {}, top 10% {}, Zipf exponent {:.2}",
            pct(self.top1pct_view_share),
            pct(self.top10pct_view_share),
            self.zipf_exponent
        )?;
        writeln!(
            f,
            "complements:          in {} of multi-item baskets, {:.0}x over random pairs",
            pct(self.baskets_with_complement),
            self.complement_lift
        )?;
        writeln!(
            f,
            "customers:            the top 2.5% of users bring {} of revenue, the top 15% {}",
            pct(self.top2_5pct_revenue_share),
            pct(self.top15pct_revenue_share)
        )?;
        writeln!(
            f,
            "browsing:             {} of sessions bounce (no view); {} of viewed-together pairs never bought together",
            pct(self.bounce_rate),
            pct(self.viewed_never_bought)
        )?;
        write!(f, "revenue (clean):      {:.2}", self.revenue)
    }
}

#[cfg(test)]
mod tests {
    use super::zipf_fit;

    #[test]
    fn zipf_fit_recovers_the_exponent_of_exact_power_laws() {
        let exact: Vec<u64> = (1..=200u64)
            .map(|r| (1e6 / r as f64).round() as u64)
            .collect();
        assert!((zipf_fit(&exact) - 1.0).abs() < 0.01);
        let flat = vec![5u64; 50];
        assert!(zipf_fit(&flat).abs() < 1e-12);
        assert_eq!(zipf_fit(&[3]), 0.0);
    }
}
