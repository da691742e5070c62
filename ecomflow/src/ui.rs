//! What the commands print: progress bars and the stages' summaries.

use crate::pipeline::{AggregatorHandle, Stores};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::Ordering;

/// A progress bar of `total` `what`s (set the length later when unknown).
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{elapsed_precise}} [{{bar:32}}] {{human_pos}}/{{human_len}} {what} ({{per_sec}}, eta {{eta}}) {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// What ingest did in this run, and what the stores hold.
pub fn print_ingest_summary(s: &ingest::StatsSnapshot, stores: &Stores) -> anyhow::Result<()> {
    println!(
        "Ingested by this run: {} records: {} sessions, {} transactions ({} new), {} catalog records; {} dead letters{}.",
        s.consumed,
        s.sessions,
        s.transactions,
        s.new_transactions,
        s.catalog,
        s.dead_total(),
        if s.dead_letters.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.dead_letters.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
        }
    );
    let c = stores.docs.counts()?;
    println!(
        "Stored: {} users, {} products, {} categories, {} transactions in the {}; sessions in the {}.",
        c.users,
        c.products,
        c.categories,
        c.transactions,
        stores.docs.describe(),
        stores.sessions.inner().describe()
    );
    Ok(())
}

/// What the aggregator applied, and the window's best-sellers with their
/// top partners as the API ranks them.
pub fn print_aggregator_summary(a: &AggregatorHandle) {
    use aggregator::cooccur::Span;
    let m = a.model.read();
    let (bought, viewed) = m.window_pairs();
    println!(
        "Aggregator: {} events applied by this run, {} late; {} bought-together and {} viewed-together pairs in the window.",
        a.stats.applied.load(Ordering::Relaxed),
        a.stats.late.load(Ordering::Relaxed),
        bought,
        viewed
    );
    println!(
        "Frequently bought together (best-sellers of the window, top partners by {}, as the API ranks them):",
        a.ranking.name()
    );
    for (p, n) in m.best_sellers(3, Span::Window) {
        let partners: Vec<String> = m
            .bought_together(p, 3, a.ranking, Span::Window)
            .iter()
            .map(|x| {
                format!(
                    "{} (x{}, LLR {:.0})",
                    schemas::ids::product_id(x.item),
                    x.score.count,
                    x.score.llr
                )
            })
            .collect();
        println!(
            "  {} (in {} baskets): {}",
            schemas::ids::product_id(p),
            n,
            partners.join(", ")
        );
    }
}
