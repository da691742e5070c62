//! The shop's analytics as SQL on DataFusion, the seed report's queries
//! (sections 4.1, 4.2, 4.3, 5 and 7) nearly as written.

use crate::engine::Engine;
use crate::table::Table;
use crate::{BatchError, Result};
use serde::Serialize;
use std::time::Instant;

/// Segment cut-offs: shares of customers, best first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SegmentCuts {
    /// Share of customers in VIP (seed: top 2.5%).
    pub vip: f64,
    /// Share in High (seed: next 11.7%).
    pub high: f64,
    /// Share in Medium (seed: next 43%); the rest are Low.
    pub medium: f64,
}

impl Default for SegmentCuts {
    fn default() -> Self {
        SegmentCuts {
            vip: 0.025,
            high: 0.117,
            medium: 0.43,
        }
    }
}

/// Segment names, best first.
pub const SEGMENTS: [&str; 4] = ["VIP", "High", "Medium", "Low"];

/// The analytics' SQL, one statement per file in `batch/sql/`:
/// DataFusion runs them here and `scripts/spark_batch.py` submits the same
/// files to Spark (docs/architecture.md). A file's
/// `{name}` placeholders are filled by [`render`]; a file whose comment
/// starts with "Table x" is made the table `x` for the queries after it.
pub mod sql {
    /// Cleaning statistics: records per source before and after.
    pub const CLEANING_TOTALS: &str = include_str!("../sql/cleaning_totals.sql");
    /// Removed records by source and reason.
    pub const CLEANING_REASONS: &str = include_str!("../sql/cleaning_reasons.sql");
    /// Co-purchase pairs by self-join (seed 4.2.1): the definition
    /// [`crate::cooccur`] is tested against.
    pub const CO_PURCHASE: &str = include_str!("../sql/co_purchase.sql");
    /// Co-view pairs by self-join (seed 4.2.2).
    pub const CO_VIEW: &str = include_str!("../sql/co_view.sql");
    /// Totals of the pair table `{table}`.
    pub const PAIR_STATS: &str = include_str!("../sql/pair_stats.sql");
    /// The `{n}` most frequent pairs of `{table}`.
    pub const TOP_PAIRS: &str = include_str!("../sql/top_pairs.sql");
    /// Viewed-together pairs and those never bought together.
    pub const VIEWED_NOT_BOUGHT: &str = include_str!("../sql/viewed_not_bought.sql");
    /// Per product, the sessions that viewed it (seed 4.3.1).
    pub const PRODUCT_VIEWS: &str = include_str!("../sql/product_views.sql");
    /// Per product sold, units and revenue: the base of the two below.
    pub const PRODUCT_SALES: &str = include_str!("../sql/product_sales.sql");
    /// Product performance: `{min_views}`, `{order_by}`, `{limit}`.
    pub const PRODUCT_PERFORMANCE: &str = include_str!("../sql/product_performance.sql");
    /// Lowest and highest conversion among `{ranked}`.
    pub const CONVERSION_RANGE: &str = include_str!("../sql/conversion_range.sql");
    /// Products with `{min_views}`+ views and their percentiles.
    pub const PRODUCT_RANK: &str = include_str!("../sql/product_rank.sql");
    /// Products of `product_rank` that `{rule}` picks, by `{order}`.
    pub const PICKED_PRODUCTS: &str = include_str!("../sql/picked_products.sql");
    /// The seed's CLV per user over the rows `{filter}` keeps.
    pub const CLV: &str = include_str!("../sql/clv.sql");
    /// Segments by CLV rank: `{n_vip}`, `{n_high}`, `{n_medium}`.
    pub const SEGMENTS: &str = include_str!("../sql/segments.sql");
    /// Customers, CLV and revenue per segment.
    pub const SEGMENT_SUMMARY: &str = include_str!("../sql/segment_summary.sql");
    /// Engagement per segment.
    pub const SEGMENT_ENGAGEMENT: &str = include_str!("../sql/segment_engagement.sql");
    /// Total spent of every buyer, lowest first.
    pub const SPENDING: &str = include_str!("../sql/spending.sql");
    /// The funnel.
    pub const FUNNEL: &str = include_str!("../sql/funnel.sql");
    /// Conversion by device type.
    pub const BY_DEVICE: &str = include_str!("../sql/by_device.sql");
    /// Revenue per day.
    pub const DAILY_REVENUE: &str = include_str!("../sql/daily_revenue.sql");
}

/// The rule of the conversion gaps: among the 10% most viewed, the
/// quarter that converts worst.
pub const GAP_RULE: &str = "views_rank >= 0.9 AND conversion_rank < 0.25";

/// The rule of the niche products: in the less viewed half, the 10% that
/// convert best.
pub const NICHE_RULE: &str = "views_rank < 0.5 AND conversion_rank >= 0.9";

/// No limit, for `{limit}`: the largest LIMIT both engines take (Spark's
/// is a 32-bit integer).
pub const NO_LIMIT: usize = i32::MAX as usize;

/// Fills a SQL file's `{name}` placeholders. Every placeholder must be
/// given and every parameter used: a typo is an error, never a query that
/// runs with `{min_views}` in it.
pub fn render(template: &str, params: &[(&str, &dyn std::fmt::Display)]) -> Result<String> {
    let mut out = template.to_string();
    for (name, value) in params {
        let key = format!("{{{name}}}");
        if !out.contains(&key) {
            return Err(BatchError::Corrupt(format!(
                "SQL parameter {key} is not used by the query"
            )));
        }
        out = out.replace(&key, &value.to_string());
    }
    if let Some(open) = out.find('{') {
        let rest = &out[open..];
        let end = rest.find('}').map_or(rest.len(), |e| e + 1);
        return Err(BatchError::Corrupt(format!(
            "SQL placeholder {} has no value",
            &rest[..end]
        )));
    }
    Ok(out)
}

/// Makes `sql`'s result the table `name`.
fn create_table(engine: &Engine, name: &str, sql: &str) -> Result<()> {
    engine.query(&format!("CREATE OR REPLACE TABLE {name} AS {sql}"))?;
    Ok(())
}

/// The seed's CLV per user over the rows `filter` keeps ([`sql::CLV`]).
pub fn clv_query(filter: &str) -> Result<String> {
    render(sql::CLV, &[("filter", &filter)])
}

/// Product performance ([`sql::PRODUCT_PERFORMANCE`]).
fn product_performance(order_by: &str, min_views: u64, limit: usize) -> Result<String> {
    render(
        sql::PRODUCT_PERFORMANCE,
        &[
            ("min_views", &min_views),
            ("order_by", &order_by),
            ("limit", &limit),
        ],
    )
}

/// Products `rule` picks from `product_rank` ([`sql::PICKED_PRODUCTS`]).
fn picked_products(rule: &str, order: &str) -> Result<String> {
    render(sql::PICKED_PRODUCTS, &[("rule", &rule), ("order", &order)])
}

/// Totals of one pair table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PairSummary {
    /// Distinct unordered pairs.
    pub unique_pairs: u64,
    /// Sum of their counts.
    pub total: u64,
    /// Average count per pair.
    pub avg_per_pair: f64,
    /// The most frequent pairs: (product a, product b, count).
    pub top: Vec<(String, String, u64)>,
}

/// The funnel in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Funnel {
    /// All sessions.
    pub sessions: u64,
    /// Sessions that viewed a product.
    pub with_views: u64,
    /// Sessions with a cart.
    pub with_cart: u64,
    /// Sessions that ended in a purchase.
    pub converted: u64,
    /// Sessions that left a cart behind.
    pub abandoned: u64,
}

/// Per segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    /// Segment name.
    pub segment: String,
    /// Users in it.
    pub customers: u64,
    /// Share of users, percent.
    pub share_pct: f64,
    /// Average CLV.
    pub avg_clv: f64,
    /// Revenue (sum of total spent).
    pub revenue: f64,
    /// Share of revenue, percent.
    pub revenue_share_pct: f64,
}

/// Everything the analytics found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Cleaning: source, before, after, removed, removed_pct.
    pub cleaning: Table,
    /// Removed by source and reason.
    pub cleaning_reasons: Table,
    /// Bought together.
    pub co_purchase: PairSummary,
    /// Viewed together.
    pub co_view: PairSummary,
    /// Percent of viewed-together pairs never bought together.
    pub viewed_never_bought_pct: f64,
    /// The cap on distinct products per basket the pairs were counted
    /// with (`None`: whole baskets).
    pub basket_cap: Option<usize>,
    /// Top products by conversion rate.
    pub top_converting: Table,
    /// Top products by units sold.
    pub top_selling: Table,
    /// Lowest and highest conversion rate among products with enough views.
    pub conversion_range: (f64, f64),
    /// Views needed to be ranked by conversion.
    pub min_views: u64,
    /// Conversion gaps ([`GAP_RULE`]): the most viewed first; the last
    /// column, `picked`, is how many the rule picks in all.
    pub conversion_gaps: Table,
    /// Niche products ([`NICHE_RULE`]): the best converting first.
    pub niche: Table,
    /// Engagement per segment ([`sql::SEGMENT_ENGAGEMENT`]).
    pub segment_engagement: Table,
    /// Segment table.
    pub segments: Vec<SegmentRow>,
    /// Total spent of every user with at least one transaction.
    pub spending: Vec<f64>,
    /// Funnel.
    pub funnel: Funnel,
    /// Conversion by device.
    pub by_device: Table,
    /// Revenue per day.
    pub daily_revenue: Table,
    /// Seconds per analytic, in order (not serialized: `findings.json` is
    /// the same bytes for the same data; the batch's steps carry them).
    #[serde(skip)]
    pub timings: Vec<(String, f64)>,
}

fn pairs(engine: &Engine, table: &str, top_n: usize) -> Result<PairSummary> {
    let stats = engine.table(&render(sql::PAIR_STATS, &[("table", &table)])?)?;
    let top = engine.table(&render(
        sql::TOP_PAIRS,
        &[("table", &table), ("n", &top_n)],
    )?)?;
    let mut out = PairSummary {
        unique_pairs: stats.i64(0, "unique_pairs")?.max(0) as u64,
        total: stats.i64(0, "total")?.max(0) as u64,
        avg_per_pair: stats.f64(0, "avg_per_pair")?,
        top: Vec::new(),
    };
    for r in 0..top.rows.len() {
        out.top.push((
            top.text(r, "product_a")?,
            top.text(r, "product_b")?,
            top.i64(r, "together")?.max(0) as u64,
        ));
    }
    Ok(out)
}

/// Co-purchase and co-view pairs and the viewed-never-bought share the
/// seed's way: SQL self-joins ([`sql::CO_PURCHASE`], [`sql::CO_VIEW`]). The batch
/// uses [`crate::cooccur`]; this is the reference it is tested against.
pub fn co_occurrence_by_sql(engine: &Engine) -> Result<(PairSummary, PairSummary, f64)> {
    create_table(engine, "co_purchase", sql::CO_PURCHASE)?;
    create_table(engine, "co_view", sql::CO_VIEW)?;
    let co_purchase = pairs(engine, "co_purchase", 10)?;
    let co_view = pairs(engine, "co_view", 10)?;
    let nb = engine.table(sql::VIEWED_NOT_BOUGHT)?;
    let viewed = nb.i64(0, "viewed_pairs")?;
    let pct = if viewed > 0 {
        nb.i64(0, "never_bought")? as f64 * 100.0 / viewed as f64
    } else {
        0.0
    };
    Ok((co_purchase, co_view, pct))
}

/// Runs every analytic. Leaves the tables `clv` and `segments` in the
/// engine for the steps after.
pub fn run(
    engine: &Engine,
    cuts: SegmentCuts,
    min_views: u64,
    basket_cap: Option<usize>,
) -> Result<Findings> {
    let mut timings = Vec::new();
    let mut step = |name: &str, started: Instant| {
        let secs = started.elapsed().as_secs_f64();
        tracing::debug!(
            step = name,
            seconds = format!("{secs:.2}"),
            "Analytic done."
        );
        timings.push((name.to_string(), secs));
    };

    let t = Instant::now();
    let cleaning = engine.table(sql::CLEANING_TOTALS)?;
    let cleaning_reasons = engine.table(sql::CLEANING_REASONS)?;
    step("cleaning statistics", t);

    let t = Instant::now();
    let co = crate::cooccur::count(engine, 10, basket_cap)?;
    let summary = |p: crate::cooccur::PairTable| PairSummary {
        unique_pairs: p.unique_pairs,
        total: p.total,
        // What SQL's AVG gives: the sum is exact in f64 below 2^53.
        avg_per_pair: if p.unique_pairs > 0 {
            p.total as f64 / p.unique_pairs as f64
        } else {
            0.0
        },
        top: p.top,
    };
    let viewed = co.viewed.unique_pairs;
    let viewed_never_bought_pct = if viewed > 0 {
        co.viewed_never_bought as f64 * 100.0 / viewed as f64
    } else {
        0.0
    };
    let co_purchase = summary(co.bought);
    let co_view = summary(co.viewed);
    engine.register_product_views(&co.sessions_viewed)?;
    step("co-purchase and co-view pairs", t);

    let t = Instant::now();
    create_table(engine, "product_sales", sql::PRODUCT_SALES)?;
    let top_converting =
        engine.table(&product_performance("conversion_rate DESC", min_views, 20)?)?;
    let top_selling = engine.table(&product_performance(
        "units_sold DESC",
        min_views.min(1),
        20,
    )?)?;
    let ranked = product_performance("conversion_rate", min_views, NO_LIMIT)?;
    let range = engine.table(&render(sql::CONVERSION_RANGE, &[("ranked", &ranked)])?)?;
    let conversion_range = (range.f64(0, "lo")?, range.f64(0, "hi")?);
    create_table(
        engine,
        "product_rank",
        &render(sql::PRODUCT_RANK, &[("min_views", &min_views)])?,
    )?;
    let conversion_gaps = engine.table(&picked_products(GAP_RULE, "sessions_viewed DESC")?)?;
    let niche = engine.table(&picked_products(NICHE_RULE, "conversion_rate DESC")?)?;
    step("product performance", t);

    let t = Instant::now();
    create_table(engine, "clv", &clv_query("TRUE")?)?;
    let n = engine.table("SELECT COUNT(*) AS n FROM clv")?.i64(0, "n")?;
    let n = n.max(0) as f64;
    // Cumulative cut-offs as customer counts (a hair of slack so that, say,
    // 0.142 x 1000 is 142 and not 141.99999).
    let cum = |share: f64| (share * n + 1e-9).floor() as u64;
    let n_vip = cum(cuts.vip);
    let n_high = cum(cuts.vip + cuts.high);
    let n_medium = cum(cuts.vip + cuts.high + cuts.medium);
    create_table(
        engine,
        "segments",
        &render(
            sql::SEGMENTS,
            &[
                ("n_vip", &n_vip),
                ("n_high", &n_high),
                ("n_medium", &n_medium),
            ],
        )?,
    )?;
    let seg = engine.table(sql::SEGMENT_SUMMARY)?;
    let mut segments = Vec::new();
    for r in 0..seg.rows.len() {
        segments.push(SegmentRow {
            segment: seg.text(r, "segment")?,
            customers: seg.i64(r, "customers")?.max(0) as u64,
            share_pct: seg.f64(r, "share_pct")?,
            avg_clv: seg.f64(r, "avg_clv")?,
            revenue: seg.f64(r, "revenue")?,
            revenue_share_pct: seg.f64(r, "revenue_share_pct")?,
        });
    }
    let spend = engine.table(sql::SPENDING)?;
    let spending = (0..spend.rows.len())
        .map(|r| spend.f64(r, "total_spent"))
        .collect::<Result<Vec<_>>>()?;
    let segment_engagement = engine.table(sql::SEGMENT_ENGAGEMENT)?;
    step("CLV and segments", t);

    let t = Instant::now();
    let fu = engine.table(sql::FUNNEL)?;
    let u = |c: &str| fu.i64(0, c).map(|v| v.max(0) as u64);
    let funnel = Funnel {
        sessions: u("sessions")?,
        with_views: u("with_views")?,
        with_cart: u("with_cart")?,
        converted: u("converted")?,
        abandoned: u("abandoned")?,
    };
    let by_device = engine.table(sql::BY_DEVICE)?;
    let daily_revenue = engine.table(sql::DAILY_REVENUE)?;
    step("funnel, devices, daily revenue", t);

    Ok(Findings {
        cleaning,
        cleaning_reasons,
        co_purchase,
        co_view,
        viewed_never_bought_pct,
        basket_cap,
        top_converting,
        top_selling,
        conversion_range,
        min_views,
        conversion_gaps,
        niche,
        segment_engagement,
        segments,
        spending,
        funnel,
        by_device,
        daily_revenue,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_every_placeholder_and_refuses_a_missing_or_unused_one() {
        let sql = render(
            "SELECT * FROM {table} LIMIT {n} -- {table}",
            &[("table", &"co_view"), ("n", &10)],
        )
        .expect("render");
        assert_eq!(sql, "SELECT * FROM co_view LIMIT 10 -- co_view");
        let missing = render(sql::TOP_PAIRS, &[("table", &"co_view")]).unwrap_err();
        assert!(
            missing.to_string().contains("{n} has no value"),
            "{missing}"
        );
        let unused = render(sql::FUNNEL, &[("table", &"x")]).unwrap_err();
        assert!(
            unused.to_string().contains("{table} is not used"),
            "{unused}"
        );
    }

    #[test]
    fn every_sql_file_is_one_statement_that_both_engines_read_alike() {
        // What Spark reads differently: "x" is a string there, 0.3 a DECIMAL.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("batch/sql") {
            let path = entry.expect("entry").path();
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).expect("read");
            files += 1;
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.contains('"'), "{name} quotes an identifier");
            assert!(!code.contains(';'), "{name} has more than one statement");
            assert!(
                !code.to_uppercase().contains("CREATE "),
                "{name} creates its own table: the runner does"
            );
        }
        assert_eq!(
            files, 21,
            "a new SQL file needs its constant in analytics::sql"
        );
    }
}
