//! The shop's analytics as SQL on DataFusion, the seed report's queries
//! (sections 4.1, 4.2, 4.3, 5 and 7) nearly as written.

use crate::engine::Engine;
use crate::table::Table;
use crate::Result;
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

/// Cleaning statistics: records per source before and after, removed by reason.
pub const CLEANING_TOTALS: &str = "\
WITH removed AS (SELECT source_topic, COUNT(*) AS removed FROM dead_letters GROUP BY source_topic),
kept AS (
  SELECT 'transactions' AS source_topic, COUNT(*) AS kept FROM transactions
  UNION ALL SELECT 'sessions', COUNT(*) FROM sessions
  UNION ALL SELECT 'catalog', (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM products)
                              + (SELECT COUNT(*) FROM categories))
SELECT k.source_topic AS source, k.kept + COALESCE(r.removed, 0) AS before,
       k.kept AS after, COALESCE(r.removed, 0) AS removed,
       CAST(COALESCE(r.removed, 0) AS DOUBLE) * 100.0
         / NULLIF(k.kept + COALESCE(r.removed, 0), 0) AS removed_pct
FROM kept k LEFT JOIN removed r ON k.source_topic = r.source_topic
ORDER BY before DESC";

/// Removed records by source and reason.
pub const CLEANING_REASONS: &str = "\
SELECT source_topic AS source, reason_code AS reason, COUNT(*) AS removed
FROM dead_letters GROUP BY source_topic, reason_code
ORDER BY source_topic, removed DESC, reason_code";

/// Co-purchase pairs (seed 4.2.1: explode, self-join, count). The batch
/// counts them with [`crate::cooccur`]; this SQL is the definition it is
/// tested against.
pub const CO_PURCHASE: &str = "\
CREATE OR REPLACE TABLE co_purchase AS
WITH ti AS (SELECT DISTINCT transaction_id, product_id FROM transaction_items)
SELECT a.product_id AS product_a, b.product_id AS product_b, COUNT(*) AS together
FROM ti a JOIN ti b ON a.transaction_id = b.transaction_id AND a.product_id < b.product_id
GROUP BY a.product_id, b.product_id";

/// Co-view pairs (seed 4.2.2: the same on viewed products); see
/// [`CO_PURCHASE`].
pub const CO_VIEW: &str = "\
CREATE OR REPLACE TABLE co_view AS
WITH sv AS (SELECT DISTINCT session_id, product_id FROM session_views)
SELECT a.product_id AS product_a, b.product_id AS product_b, COUNT(*) AS together
FROM sv a JOIN sv b ON a.session_id = b.session_id AND a.product_id < b.product_id
GROUP BY a.product_id, b.product_id";

fn pair_stats(table: &str) -> String {
    format!(
        "SELECT COUNT(*) AS unique_pairs, COALESCE(SUM(together), 0) AS total, \
         COALESCE(AVG(CAST(together AS DOUBLE)), 0.0) AS avg_per_pair FROM {table}"
    )
}

fn top_pairs(table: &str, n: usize) -> String {
    format!(
        "SELECT product_a, product_b, together FROM {table} \
         ORDER BY together DESC, product_a, product_b LIMIT {n}"
    )
}

/// Share of viewed-together pairs that were never bought together.
const VIEWED_NOT_BOUGHT: &str = "\
SELECT COUNT(*) AS viewed_pairs,
       SUM(CASE WHEN p.product_a IS NULL THEN 1 ELSE 0 END) AS never_bought
FROM co_view v LEFT JOIN co_purchase p
  ON v.product_a = p.product_a AND v.product_b = p.product_b";

/// Per product, the sessions that viewed it, the seed's way (4.3.1's
/// `product_views`); the batch registers the table `product_views` from
/// [`crate::cooccur`]'s pass instead, and is tested against this.
pub const PRODUCT_VIEWS: &str = "\
SELECT product_id, COUNT(DISTINCT session_id) AS sessions_viewed
FROM session_views GROUP BY product_id";

/// Product performance (seed 4.3.1), with a floor on views so that a
/// product seen twice and bought once does not top the list. Reads the
/// table `product_views` (see [`PRODUCT_VIEWS`]).
fn product_performance(order_by: &str, min_views: u64, limit: usize) -> String {
    format!(
        "WITH product_sales AS (
    SELECT product_id, SUM(quantity) AS units_sold, SUM(revenue) AS total_revenue
    FROM transaction_items GROUP BY product_id
)
SELECT p.product_id, p.name, ps.units_sold, ps.total_revenue, pv.sessions_viewed,
       (CAST(ps.units_sold AS DOUBLE) / pv.sessions_viewed) * 100 AS conversion_rate
FROM products p
JOIN product_sales ps ON p.product_id = ps.product_id
JOIN product_views pv ON p.product_id = pv.product_id
WHERE pv.sessions_viewed >= {min_views}
ORDER BY {order_by}, p.product_id
LIMIT {limit}"
    )
}

/// Products viewed in at least `min_views` sessions (sales or not), with
/// their views' and conversion's percentile among them, as the table
/// `product_rank`: the base of the conversion gaps and the niche products.
fn product_rank(min_views: u64) -> String {
    format!(
        "CREATE OR REPLACE TABLE product_rank AS
WITH product_sales AS (
    SELECT product_id, SUM(quantity) AS units_sold FROM transaction_items GROUP BY product_id
), perf AS (
    SELECT p.product_id, p.name, pv.sessions_viewed, COALESCE(ps.units_sold, 0) AS units_sold,
           CAST(COALESCE(ps.units_sold, 0) AS DOUBLE) / pv.sessions_viewed * 100 AS conversion_rate
    FROM products p
    JOIN product_views pv ON p.product_id = pv.product_id
    LEFT JOIN product_sales ps ON p.product_id = ps.product_id
    WHERE pv.sessions_viewed >= {min_views}
)
SELECT *, PERCENT_RANK() OVER (ORDER BY sessions_viewed) AS views_rank,
          PERCENT_RANK() OVER (ORDER BY conversion_rate) AS conversion_rank
FROM perf"
    )
}

/// The rule of the conversion gaps: among the 10% most viewed, the
/// quarter that converts worst.
pub const GAP_RULE: &str = "views_rank >= 0.9 AND conversion_rank < 0.25";

/// The rule of the niche products: in the less viewed half, the 10% that
/// convert best.
pub const NICHE_RULE: &str = "views_rank < 0.5 AND conversion_rank >= 0.9";

/// Products of `product_rank` that `rule` picks, `order`ed, at most 10,
/// and how many it picks in all (`picked`).
fn picked_products(rule: &str, order: &str) -> String {
    format!(
        "SELECT product_id, name, sessions_viewed, units_sold, conversion_rate,
       COUNT(*) OVER () AS picked
FROM product_rank WHERE {rule} ORDER BY {order}, product_id LIMIT 10"
    )
}

/// Engagement per segment: the seed's score, sessions, session conversion
/// and order value of the average customer in each.
pub const SEGMENT_ENGAGEMENT: &str = "\
SELECT segment, COUNT(*) AS customers, AVG(engagement_score) AS avg_engagement,
       AVG(total_sessions) AS avg_sessions,
       SUM(converted_sessions) * 100.0 / NULLIF(SUM(total_sessions), 0) AS session_conversion_pct,
       AVG(avg_order_value) AS avg_order_value
FROM segments GROUP BY segment
ORDER BY CASE segment WHEN 'VIP' THEN 1 WHEN 'High' THEN 2 WHEN 'Medium' THEN 3 ELSE 4 END";

/// The seed's CLV (section 5.2) per user, over the rows `filter` keeps of
/// transactions and sessions (`TRUE` for all). LEFT joins keep every user;
/// a user without transactions or sessions has zeros, not NULLs.
pub fn clv_query(filter: &str) -> String {
    format!(
        "WITH transaction_metrics AS (
    SELECT user_id, COUNT(transaction_id) AS total_transactions,
           SUM(total) AS total_spent, AVG(total) AS avg_order_value
    FROM transactions WHERE {filter} GROUP BY user_id
), session_metrics AS (
    SELECT user_id, COUNT(session_id) AS total_sessions,
           SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted_sessions,
           AVG(duration_seconds) AS avg_session_duration,
           SUM(cardinality(viewed_products)) AS total_products_viewed
    FROM sessions WHERE {filter} GROUP BY user_id
), integrated AS (
    SELECT u.user_id,
           COALESCE(t.total_transactions, 0) AS total_transactions,
           COALESCE(t.total_spent, 0.0) AS total_spent,
           COALESCE(t.avg_order_value, 0.0) AS avg_order_value,
           COALESCE(s.total_sessions, 0) AS total_sessions,
           COALESCE(s.converted_sessions, 0) AS converted_sessions,
           COALESCE(s.total_products_viewed, 0) AS total_products_viewed,
           s.avg_session_duration
    FROM users u
    LEFT JOIN transaction_metrics t ON u.user_id = t.user_id
    LEFT JOIN session_metrics s ON u.user_id = s.user_id
), scored AS (
    SELECT *, total_sessions * 0.3 + converted_sessions * 0.5
              + total_products_viewed / 100.0 * 0.2 AS engagement_score
    FROM integrated
), valued AS (
    SELECT *, avg_order_value * engagement_score * 0.5 AS predicted_future_value FROM scored
)
SELECT *, total_spent + predicted_future_value AS total_clv FROM valued"
    )
}

/// Segments by CLV rank. `RANK()` gives tied users the same rank, so a
/// tie at a threshold puts all of the tied users in the better segment.
fn segments_query(n_vip: u64, n_high: u64, n_medium: u64) -> String {
    format!(
        "CREATE OR REPLACE TABLE segments AS
SELECT *, CASE WHEN clv_rank <= {n_vip} THEN 'VIP'
               WHEN clv_rank <= {n_high} THEN 'High'
               WHEN clv_rank <= {n_medium} THEN 'Medium'
               ELSE 'Low' END AS segment
FROM (SELECT *, RANK() OVER (ORDER BY total_clv DESC) AS clv_rank FROM clv)"
    )
}

/// Customers, share, average CLV, revenue and share of revenue per segment.
pub const SEGMENT_SUMMARY: &str = "\
SELECT segment, COUNT(*) AS customers,
       COUNT(*) * 100.0 / SUM(COUNT(*)) OVER () AS share_pct,
       AVG(total_clv) AS avg_clv, SUM(total_spent) AS revenue,
       SUM(total_spent) * 100.0 / NULLIF(SUM(SUM(total_spent)) OVER (), 0) AS revenue_share_pct
FROM segments GROUP BY segment
ORDER BY CASE segment WHEN 'VIP' THEN 1 WHEN 'High' THEN 2 WHEN 'Medium' THEN 3 ELSE 4 END";

/// The funnel: sessions, with views, with a cart, converted, abandoned.
pub const FUNNEL: &str = "\
SELECT COUNT(*) AS sessions,
       SUM(CASE WHEN cardinality(viewed_products) > 0 THEN 1 ELSE 0 END) AS with_views,
       SUM(CASE WHEN cardinality(cart_contents) > 0 THEN 1 ELSE 0 END) AS with_cart,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted,
       SUM(CASE WHEN conversion_status = 'abandoned' THEN 1 ELSE 0 END) AS abandoned
FROM sessions";

/// Conversion by device type.
pub const BY_DEVICE: &str = "\
SELECT device_type, COUNT(*) AS sessions,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) * 100.0 / COUNT(*)
         AS conversion_pct
FROM sessions GROUP BY device_type ORDER BY device_type";

/// Revenue per day.
pub const DAILY_REVENUE: &str = "\
SELECT \"date\", COUNT(*) AS transactions, SUM(total) AS revenue
FROM transactions GROUP BY \"date\" ORDER BY \"date\"";

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
    /// Engagement per segment ([`SEGMENT_ENGAGEMENT`]).
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
    /// Seconds per analytic, in order.
    pub timings: Vec<(String, f64)>,
}

fn pairs(engine: &Engine, table: &str, top_n: usize) -> Result<PairSummary> {
    let stats = Table::from_batches(&engine.query(&pair_stats(table))?)?;
    let top = Table::from_batches(&engine.query(&top_pairs(table, top_n))?)?;
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
/// seed's way: SQL self-joins ([`CO_PURCHASE`], [`CO_VIEW`]). The batch
/// uses [`crate::cooccur`]; this is the reference it is tested against.
pub fn co_occurrence_by_sql(engine: &Engine) -> Result<(PairSummary, PairSummary, f64)> {
    engine.query(CO_PURCHASE)?;
    engine.query(CO_VIEW)?;
    let co_purchase = pairs(engine, "co_purchase", 10)?;
    let co_view = pairs(engine, "co_view", 10)?;
    let nb = Table::from_batches(&engine.query(VIEWED_NOT_BOUGHT)?)?;
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
    let cleaning = Table::from_batches(&engine.query(CLEANING_TOTALS)?)?;
    let cleaning_reasons = Table::from_batches(&engine.query(CLEANING_REASONS)?)?;
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
    let top_converting = Table::from_batches(&engine.query(&product_performance(
        "conversion_rate DESC",
        min_views,
        20,
    ))?)?;
    let top_selling = Table::from_batches(&engine.query(&product_performance(
        "units_sold DESC",
        min_views.min(1),
        20,
    ))?)?;
    let range = Table::from_batches(&engine.query(&format!(
        "SELECT MIN(conversion_rate) AS lo, MAX(conversion_rate) AS hi FROM ({})",
        product_performance("conversion_rate", min_views, usize::MAX >> 1)
    ))?)?;
    let conversion_range = (range.f64(0, "lo")?, range.f64(0, "hi")?);
    engine.query(&product_rank(min_views))?;
    let conversion_gaps =
        Table::from_batches(&engine.query(&picked_products(GAP_RULE, "sessions_viewed DESC"))?)?;
    let niche =
        Table::from_batches(&engine.query(&picked_products(NICHE_RULE, "conversion_rate DESC"))?)?;
    step("product performance", t);

    let t = Instant::now();
    engine.query(&format!(
        "CREATE OR REPLACE TABLE clv AS {}",
        clv_query("TRUE")
    ))?;
    let n = Table::from_batches(&engine.query("SELECT COUNT(*) AS n FROM clv")?)?.i64(0, "n")?;
    let n = n.max(0) as f64;
    // Cumulative cut-offs as customer counts (a hair of slack so that, say,
    // 0.142 x 1000 is 142 and not 141.99999).
    let cum = |share: f64| (share * n + 1e-9).floor() as u64;
    let n_vip = cum(cuts.vip);
    let n_high = cum(cuts.vip + cuts.high);
    let n_medium = cum(cuts.vip + cuts.high + cuts.medium);
    engine.query(&segments_query(n_vip, n_high, n_medium))?;
    let seg = Table::from_batches(&engine.query(SEGMENT_SUMMARY)?)?;
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
    let spend =
        Table::from_batches(&engine.query(
            "SELECT total_spent FROM clv WHERE total_transactions > 0 ORDER BY total_spent",
        )?)?;
    let spending = (0..spend.rows.len())
        .map(|r| spend.f64(r, "total_spent"))
        .collect::<Result<Vec<_>>>()?;
    let segment_engagement = Table::from_batches(&engine.query(SEGMENT_ENGAGEMENT)?)?;
    step("CLV and segments", t);

    let t = Instant::now();
    let fu = Table::from_batches(&engine.query(FUNNEL)?)?;
    let u = |c: &str| fu.i64(0, c).map(|v| v.max(0) as u64);
    let funnel = Funnel {
        sessions: u("sessions")?,
        with_views: u("with_views")?,
        with_cart: u("with_cart")?,
        converted: u("converted")?,
        abandoned: u("abandoned")?,
    };
    let by_device = Table::from_batches(&engine.query(BY_DEVICE)?)?;
    let daily_revenue = Table::from_batches(&engine.query(DAILY_REVENUE)?)?;
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
