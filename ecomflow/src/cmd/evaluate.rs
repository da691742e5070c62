//! `ecomflow evaluate`: offline quality of "bought together"
//! ([`aggregator::evaluate`] does the split and the scoring).

use crate::cli::EvaluateArgs;
use aggregator::evaluate::Holdout;
use aggregator::processor::AggregatorConfig;
use std::collections::HashMap;
use std::time::Instant;

/// Trains on the first `--train-days`, tests on the rest, prints a table.
pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let cfg = args.shop.config()?;
    if args.train_days == 0 || args.train_days >= cfg.days {
        anyhow::bail!(
            "--train-days must be between 1 and --days - 1 ({})",
            cfg.days - 1
        );
    }
    let started = Instant::now();
    let catalog = std::sync::Arc::new(producer::Catalog::generate(&cfg));
    let split = cfg.start_date.and_hms_opt(0, 0, 0).unwrap_or_default()
        + chrono::Duration::days(i64::from(args.train_days));
    let config = AggregatorConfig {
        window_days: i64::from(cfg.days),
        ..AggregatorConfig::default()
    };
    let mut holdout = Holdout::new(config, split);
    let stream = producer::EventStream::new(&cfg, catalog.clone());
    let bar = crate::ui::Progress::new(stream.total(), "events");
    for (i, ev) in stream.enumerate() {
        if i % 50_000 == 0 {
            bar.set_position(i as u64);
        }
        if ev.stream != producer::Stream::Catalog {
            holdout.feed(ev.stream.topic(), ev.time, &ev.payload());
        }
    }
    bar.finish_and_clear();
    let complements: HashMap<u32, Vec<u32>> = catalog
        .complements
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .map(|(p, c)| (p as u32 + 1, c.iter().map(|x| x + 1).collect()))
        .collect();
    let results = holdout.evaluate(&complements, args.k);
    println!(
        "Trained on days 1-{} ({} sessions and transactions); tested on {} held-out baskets with 2+ items from days {}-{} ({:.1} s).",
        args.train_days,
        holdout.trained_on(),
        holdout.multi_item_baskets(),
        args.train_days + 1,
        cfg.days,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<16} {:>16} {:>34}",
        "ranking",
        format!("hit rate @{}", args.k),
        format!("planted complements in top {}", args.k)
    );
    for q in results {
        println!(
            "{:<16} {:>15.1}% {:>33.1}%",
            q.name,
            q.hit_rate * 100.0,
            q.planted_recall * 100.0
        );
    }
    Ok(())
}
