//! The shop report: Markdown tables, findings in plain words, SVG charts.

use crate::analytics::Findings;
use crate::charts;
use crate::clv::Prediction;
use crate::table::{Table, Value};
use crate::{BatchError, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Chart files written next to the report.
pub const CHARTS: [&str; 5] = [
    "sales_over_time.svg",
    "customer_spending.svg",
    "top_products.svg",
    "conversion_funnel.svg",
    "segments.svg",
];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Int(i) => thousands(*i),
        Value::Float(f) => format!("{f:.2}"),
        Value::Text(s) => s.replace('|', "\\|"),
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A result table as Markdown.
pub fn markdown_table(t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", t.columns.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        t.columns
            .iter()
            .map(|_| "---")
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// Which baskets the pairs were counted over, in words.
pub fn counted_over(basket_cap: Option<usize>) -> String {
    match basket_cap {
        None => "Pairs counted over whole baskets, as the seed's SQL self-join counts them \
                 (the live aggregator takes the first 50 distinct products of a basket; \
                 `--basket-cap 50` counts as it does)."
            .to_string(),
        Some(n) => format!(
            "Pairs counted over the first {n} distinct products of each basket \
             (`--basket-cap {n}`), as the live aggregator counts them; the seed's \
             SQL counts whole baskets."
        ),
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A table of picked products without its `picked` count column, or a line
/// saying none was picked.
fn picked_table(t: &Table) -> String {
    if t.rows.is_empty() {
        return "No product meets the rule.\n".to_string();
    }
    let keep = t.columns.len().saturating_sub(1);
    markdown_table(&Table {
        columns: t.columns[..keep].to_vec(),
        rows: t
            .rows
            .iter()
            .map(|r| r[..keep.min(r.len())].to_vec())
            .collect(),
    })
}

/// A key-finding line for picked products: how many, and the first.
fn picked_line(t: &Table, title: &str, rule: &str) -> Result<Option<String>> {
    if t.rows.is_empty() {
        return Ok(None);
    }
    let picked = t.i64(0, "picked")?;
    let (noun, verb) = if picked == 1 {
        ("product", "is")
    } else {
        ("products", "are")
    };
    Ok(Some(format!(
        "- **{title}:** {picked} {noun} {verb} {rule}; first, {} ({}): {} viewing sessions, {:.1}% conversion.",
        t.text(0, "product_id")?,
        t.text(0, "name")?,
        thousands(t.i64(0, "sessions_viewed")?),
        t.f64(0, "conversion_rate")?
    )))
}

/// A key-finding line for engagement by segment.
fn engagement_line(t: &Table) -> Result<Option<String>> {
    let mut by: Vec<(String, f64)> = Vec::new();
    for r in 0..t.rows.len() {
        by.push((t.text(r, "segment")?, t.f64(r, "avg_engagement")?));
    }
    if by.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = by.iter().map(|(s, e)| format!("{s} {e:.1}")).collect();
    let of = |name: &str| by.iter().find(|(s, _)| s == name).map(|(_, e)| *e);
    let gap = match (of("High"), of("Medium")) {
        (Some(h), Some(m)) if m > 0.0 => {
            format!("; a High customer engages {:.1} times as much as a Medium one (the seed found Medium customers' engagement low)", h / m)
        }
        _ => String::new(),
    };
    Ok(Some(format!(
        "- **Engagement by segment:** average engagement score {}{gap}.",
        list.join(", ")
    )))
}

/// The seed report's headline findings (its sections 5 and 6) beside this
/// run's, as a Markdown table.
fn seed_beside_run(f: &Findings, devices: &[(String, f64)]) -> String {
    let seg = |name: &str| f.segments.iter().find(|s| s.segment == name);
    let dev = |name: &str| devices.iter().find(|d| d.0 == name).map(|d| d.1);
    let fu = &f.funnel;
    let mut rows: Vec<(&str, &str, String)> = Vec::new();
    if let Some(vip) = seg("VIP") {
        rows.push((
            "VIP customers (top 2.5%): share of revenue",
            "45%",
            format!("{:.1}%", vip.revenue_share_pct),
        ));
        if let Some(high) = seg("High") {
            rows.push((
                "VIP + High (top 14.2%): share of revenue",
                "83%",
                format!("{:.1}%", vip.revenue_share_pct + high.revenue_share_pct),
            ));
        }
    }
    rows.push((
        "viewed-together pairs never bought together",
        "65%",
        format!("{:.1}%", f.viewed_never_bought_pct),
    ));
    rows.push((
        "cart abandonment (share of sessions)",
        "18%",
        format!("{:.1}%", pct(fu.abandoned, fu.sessions)),
    ));
    if let (Some(d), Some(m)) = (dev("desktop"), dev("mobile")) {
        rows.push((
            "mobile conversion below desktop (percentage points)",
            "8",
            format!("{:.1} ({m:.1}% against {d:.1}%)", d - m),
        ));
    }
    let mut out = String::from(
        "\nThe seed report's headline findings beside this run's:\n\n| finding | seed | this run |\n|---|---|---|\n",
    );
    for (what, seed, run) in rows {
        let _ = writeln!(out, "| {what} | {seed} | {run} |");
    }
    out
}

/// Rounds every float in `v` to 12 significant digits: DataFusion adds a
/// sum's two partitions in whichever order they finish, so its last bits
/// differ from run to run (72421.97000000054, then 72421.97000000058), and
/// `findings.json` should be the same bytes for the same data, as the
/// report is.
fn round_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(rounded) = n
                .as_f64()
                .and_then(|x| format!("{x:.11e}").parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64)
            {
                *n = rounded;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(round_floats),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(round_floats),
        _ => {}
    }
}

/// The findings as JSON, beside the report.
pub const FINDINGS: &str = "findings.json";

/// Writes `report.md`, the charts and [`FINDINGS`] into `dir`; returns
/// the report's path.
pub fn write(
    dir: &Path,
    f: &Findings,
    prediction: Option<&Prediction>,
    through: Option<chrono::NaiveDate>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| BatchError::io(dir, e))?;
    let mut md = String::new();
    let through = through.map_or("no data yet".to_string(), |d| d.to_string());
    let _ = writeln!(md, "# Shop report\n\nData through {through}. Written by `ecomflow batch` from the Parquet snapshot, with the queries run on Apache DataFusion.\n");

    key_findings(&mut md, f, prediction)?;
    cleaning_and_pairs(&mut md, f)?;
    products(&mut md, f)?;
    segments(&mut md, f, prediction)?;
    funnel_charts_and_revenue(&mut md, f)?;
    write_charts(dir, f)?;
    // Every figure of the report, machine-readable: what
    // scripts/spark_batch.py writes from Spark, compared in CI.
    let mut value = serde_json::to_value(f)
        .map_err(|e| BatchError::Corrupt(format!("findings as JSON: {e}")))?;
    round_floats(&mut value);
    let json = serde_json::to_vec_pretty(&value)
        .map_err(|e| BatchError::Corrupt(format!("findings as JSON: {e}")))?;
    crate::snapshot::write_atomic(&dir.join(FINDINGS), &json)?;
    let path = dir.join("report.md");
    crate::snapshot::write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

/// The key findings, in words, and the seed's headline findings beside this run's.
fn key_findings(md: &mut String, f: &Findings, prediction: Option<&Prediction>) -> Result<()> {
    // Key findings first, in words.
    let _ = writeln!(md, "## Key findings\n");
    if let (Some(vip), Some(high)) = (
        f.segments.iter().find(|s| s.segment == "VIP"),
        f.segments.iter().find(|s| s.segment == "High"),
    ) {
        let _ = writeln!(
            md,
            "- **Customers:** the top {:.1}% of customers (VIP) bring {:.1}% of revenue; VIP and High together ({:.1}% of customers) bring {:.1}%.",
            vip.share_pct,
            vip.revenue_share_pct,
            vip.share_pct + high.share_pct,
            vip.revenue_share_pct + high.revenue_share_pct
        );
    }
    let fu = &f.funnel;
    let _ = writeln!(
        md,
        "- **Funnel:** {:.1}% of sessions view a product, {:.1}% fill a cart, {:.1}% buy; {:.1}% of sessions leave a cart behind ({:.1}% of carts).",
        pct(fu.with_views, fu.sessions),
        pct(fu.with_cart, fu.sessions),
        pct(fu.converted, fu.sessions),
        pct(fu.abandoned, fu.sessions),
        pct(fu.abandoned, fu.with_cart)
    );
    let devices = device_finding(md, f)?;
    if let Some((a, b, n)) = f.co_purchase.top.first() {
        let _ = writeln!(
            md,
            "- **Bought together:** {} distinct pairs; the top pair, {a} and {b}, was bought together {n} times; {:.1} co-purchases per pair on average.",
            thousands(f.co_purchase.unique_pairs as i64),
            f.co_purchase.avg_per_pair
        );
    }
    let _ = writeln!(
        md,
        "- **Viewed together:** {} distinct pairs; {:.1}% of them were never bought together: browsing that did not turn into a basket.",
        thousands(f.co_view.unique_pairs as i64),
        f.viewed_never_bought_pct
    );
    let _ = writeln!(
        md,
        "- **Products:** among products viewed in at least {} sessions, conversion (units sold per 100 viewing sessions) ranges from {:.1}% to {:.1}%.",
        f.min_views, f.conversion_range.0, f.conversion_range.1
    );
    if let Some(line) = picked_line(
        &f.conversion_gaps,
        "Conversion gaps",
        "among the 10% most viewed but in the quarter that converts worst",
    )? {
        let _ = writeln!(md, "{line}");
    }
    if let Some(line) = picked_line(
        &f.niche,
        "Niche products",
        "in the less viewed half but among the 10% that convert best",
    )? {
        let _ = writeln!(md, "{line}");
    }
    if let Some(line) = engagement_line(&f.segment_engagement)? {
        let _ = writeln!(md, "{line}");
    }
    if let Some(line) = prediction.and_then(prediction_line) {
        let _ = writeln!(md, "{line}");
    }
    md.push_str(&seed_beside_run(f, &devices));

    Ok(())
}

/// The devices' finding (best and worst converting), if the data names two
/// devices or more; returns each device's conversion.
fn device_finding(md: &mut String, f: &Findings) -> Result<Vec<(String, f64)>> {
    let mut devices = Vec::new();
    for r in 0..f.by_device.rows.len() {
        devices.push((
            f.by_device.text(r, "device_type")?,
            f.by_device.f64(r, "conversion_pct")?,
        ));
    }
    // Devices the data names: an imported clickstream says none
    // (`unknown`), and one device compared with itself says nothing.
    let known: Vec<&(String, f64)> = devices.iter().filter(|d| d.0 != "unknown").collect();
    if let (true, Some(best), Some(worst)) = (
        known.len() >= 2,
        known.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        known.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
    ) {
        let _ = writeln!(
            md,
            "- **Devices:** {} converts best ({:.1}%), {} worst ({:.1}%): {:.1} points apart.",
            best.0,
            best.1,
            worst.0,
            worst.1,
            best.1 - worst.1
        );
    }
    Ok(devices)
}

/// The finding on predicting value: which model ranked customers best.
fn prediction_line(p: &Prediction) -> Option<String> {
    let best = p
        .scores
        .iter()
        .max_by(|a, b| a.rank_correlation.total_cmp(&b.rank_correlation))?;
    Some(format!(
        "- **Predicting value:** on the last {} days held out, {} ranked customers best (rank correlation {:.3}); see the table below before trusting a CLV figure.",
        p.holdout_days, best.model, best.rank_correlation
    ))
}
/// What cleaning removed; bought and viewed together.
fn cleaning_and_pairs(md: &mut String, f: &Findings) -> Result<()> {
    let _ = writeln!(md, "\n## Cleaning\n\nRecords that failed validation were dead-lettered by ingest with their reason; the stores hold the rest.\n");
    md.push_str(&markdown_table(&f.cleaning));
    if !f.cleaning_reasons.rows.is_empty() {
        md.push_str("\nRemoved, by reason:\n\n");
        md.push_str(&markdown_table(&f.cleaning_reasons));
    }

    let _ = writeln!(md, "\n## Bought together and viewed together\n");
    let _ = writeln!(md, "{}\n", counted_over(f.basket_cap));
    let _ = writeln!(md, "| | unique pairs | co-occurrences | average per pair | top pair | its count |\n|---|---|---|---|---|---|");
    for (name, p) in [("bought", &f.co_purchase), ("viewed", &f.co_view)] {
        let (top, n) = p
            .top
            .first()
            .map_or((String::new(), 0), |(a, b, n)| (format!("{a} + {b}"), *n));
        let _ = writeln!(
            md,
            "| {name} together | {} | {} | {:.2} | {top} | {n} |",
            thousands(p.unique_pairs as i64),
            thousands(p.total as i64),
            p.avg_per_pair
        );
    }
    let _ = writeln!(
        md,
        "\n{:.1}% of viewed-together pairs were never bought together.\n\nTop bought-together pairs:\n\n| product a | product b | times |\n|---|---|---|",
        f.viewed_never_bought_pct
    );
    for (a, b, n) in &f.co_purchase.top {
        let _ = writeln!(md, "| {a} | {b} | {n} |");
    }

    Ok(())
}

/// Product performance: best converting, best selling, conversion gaps, niche products.
fn products(md: &mut String, f: &Findings) -> Result<()> {
    let _ = writeln!(md, "\n## Product performance\n\nTop 20 by conversion rate (units sold per 100 sessions that viewed the product; at least {} viewing sessions):\n", f.min_views);
    md.push_str(&markdown_table(&f.top_converting));
    md.push_str("\nTop 20 by units sold:\n\n");
    md.push_str(&markdown_table(&f.top_selling));
    let _ = writeln!(
        md,
        "\n### Conversion gaps: viewed a lot, bought little\n\nThe rule: among products viewed in at least {} sessions, the 10% most viewed that are in the quarter converting worst (percent ranks of viewing sessions and of conversion). Most viewed first, at most 10:\n",
        f.min_views
    );
    md.push_str(&picked_table(&f.conversion_gaps));
    let _ = writeln!(
        md,
        "\n### Niche products: seen little, bought when seen\n\nThe rule: among products viewed in at least {} sessions, those in the less viewed half that are among the 10% converting best. Best converting first, at most 10:\n",
        f.min_views
    );
    md.push_str(&picked_table(&f.niche));

    Ok(())
}

/// CLV segments, engagement by segment, the predictive CLV models.
fn segments(md: &mut String, f: &Findings, prediction: Option<&Prediction>) -> Result<()> {
    let _ = writeln!(md, "\n## Customer lifetime value and segments\n\nCLV = total spent + average order value x engagement score x 0.5, engagement = sessions x 0.3 + converted x 0.5 + products viewed / 100 x 0.2 (the seed's formulas). Segments by CLV rank.\n");
    let _ = writeln!(md, "| segment | customers | % of customers | average CLV | revenue | % of revenue |\n|---|---|---|---|---|---|");
    for s in &f.segments {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1}% | {:.2} | {:.2} | {:.1}% |",
            s.segment,
            thousands(s.customers as i64),
            s.share_pct,
            s.avg_clv,
            s.revenue,
            s.revenue_share_pct
        );
    }
    let _ = writeln!(md, "\n### Engagement by segment\n\nThe average customer of each segment: the seed's engagement score, sessions, share of sessions that bought, average order value.\n");
    md.push_str(&markdown_table(&f.segment_engagement));
    if let Some(p) = prediction {
        let _ = writeln!(
            md,
            "\n### Predictive CLV: which model to trust\n\nFitted on the data through {} and checked on the {} days after it, over the {} customers who had bought by then (actual spend in the holdout: {:.2}).\n",
            p.calibration_end,
            p.holdout_days,
            thousands(p.customers as i64),
            p.actual_total
        );
        let _ = writeln!(
            md,
            "| model | mean absolute error | rank correlation | predicted total |\n|---|---|---|---|"
        );
        for s in &p.scores {
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.3} | {:.2} |",
                s.model, s.mae, s.rank_correlation, s.predicted_total
            );
        }
        let b = p.bgnbd;
        let g = p.gamma_gamma;
        let _ = writeln!(md, "\nThe seed's predicted value is not scaled to any horizon, so its error is large by construction; its rank correlation is the fair comparison. On all data: BG/NBD r = {:.4}, alpha = {:.4}, a = {:.4}, b = {:.4}; Gamma-Gamma p = {:.4}, q = {:.4}, gamma = {:.4}. Each user's expected spend over the next 90 days is written back with the segment.", b.r, b.alpha, b.a, b.b, g.p, g.q, g.gamma);
    }

    Ok(())
}

/// The funnel and devices, the charts' links, the daily revenue.
fn funnel_charts_and_revenue(md: &mut String, f: &Findings) -> Result<()> {
    let fu = &f.funnel;
    let _ = writeln!(md, "\n## Funnel and devices\n");
    let _ = writeln!(
        md,
        "| sessions | with views | with cart | converted | abandoned cart |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
        thousands(fu.sessions as i64),
        thousands(fu.with_views as i64),
        thousands(fu.with_cart as i64),
        thousands(fu.converted as i64),
        thousands(fu.abandoned as i64)
    );
    md.push_str(&markdown_table(&f.by_device));

    let _ = writeln!(md, "\n## Charts\n");
    let titles = [
        "Sales over time",
        "Customer spending distribution",
        "Top-selling products",
        "Conversion funnel",
        "Segments",
    ];
    for (file, title) in CHARTS.iter().zip(titles) {
        let _ = writeln!(md, "![{title}]({file})\n");
    }
    let _ = writeln!(md, "## Daily revenue\n");
    md.push_str(&markdown_table(&f.daily_revenue));

    Ok(())
}

/// The report's SVG charts ([`CHARTS`]) into `dir`.
fn write_charts(dir: &Path, f: &Findings) -> Result<()> {
    let fu = &f.funnel;
    let mut days = Vec::new();
    let mut revenue = Vec::new();
    for r in 0..f.daily_revenue.rows.len() {
        days.push(f.daily_revenue.text(r, "date")?);
        revenue.push(f.daily_revenue.f64(r, "revenue")?);
    }
    let mut names = Vec::new();
    let mut units = Vec::new();
    for r in 0..f.top_selling.rows.len() {
        names.push(f.top_selling.text(r, "product_id")?);
        units.push(f.top_selling.f64(r, "units_sold")?);
    }
    let svgs = [
        charts::line("Sales over time", "day", "revenue per day", &days, &revenue),
        charts::log_histogram(
            "Customer spending distribution",
            "total spent per customer (bins grow 1-2-5 per decade)",
            "customers",
            &f.spending,
        ),
        charts::bars(
            "Top-selling products",
            "product",
            "units sold",
            &names,
            &[("units sold", units)],
        ),
        charts::bars(
            "Conversion funnel",
            "stage",
            "sessions",
            &[
                "all sessions".to_string(),
                "viewed a product".to_string(),
                "filled a cart".to_string(),
                "converted".to_string(),
            ],
            &[(
                "sessions",
                vec![
                    fu.sessions as f64,
                    fu.with_views as f64,
                    fu.with_cart as f64,
                    fu.converted as f64,
                ],
            )],
        ),
        charts::bars(
            "Segments: share of customers and of revenue",
            "segment",
            "percent",
            &f.segments
                .iter()
                .map(|s| s.segment.clone())
                .collect::<Vec<_>>(),
            &[
                (
                    "% of customers",
                    f.segments.iter().map(|s| s.share_pct).collect(),
                ),
                (
                    "% of revenue",
                    f.segments.iter().map(|s| s.revenue_share_pct).collect(),
                ),
            ],
        ),
    ];
    for (file, svg) in CHARTS.iter().zip(svgs) {
        let path = dir.join(file);
        crate::snapshot::write_atomic(&path, svg.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::round_floats;

    #[test]
    fn floats_are_rounded_to_twelve_significant_digits_and_integers_kept() {
        let mut v = serde_json::json!({
            "revenue": [72421.97000000054, 72421.97000000058],
            "third": 1.0 / 3.0,
            "customers": 249,
            "segment": "VIP",
            "small": 1.234567890123456e-7
        });
        round_floats(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "revenue": [72421.97, 72421.97],
                "third": 0.333333333333,
                "customers": 249,
                "segment": "VIP",
                "small": 1.23456789012e-7
            })
        );
    }
}
