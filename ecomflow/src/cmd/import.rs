//! `ecomflow import`: an event-level clickstream export as a dataset.

use crate::cli::ImportArgs;
use anyhow::Context;
use std::time::Instant;

/// Imports the files and prints what was read, taken, dropped and written.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let bar = crate::ui::Progress::new(0, "bytes");
    let started = Instant::now();
    let report = producer::clickstream::import(&args.files, &args.out, |done, total, rows| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(format!("{} rows", crate::ui::count(rows)));
    })
    .with_context(|| format!("importing into {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let taken: Vec<String> = report
        .taken
        .iter()
        .map(|(k, n)| format!("{k} {}", crate::ui::count(*n)))
        .collect();
    println!(
        "Read {} rows from {} file(s) in {:.1} s ({:.0} rows/s): taken {} ({}), dropped {}.",
        crate::ui::count(report.rows),
        args.files.len(),
        secs,
        report.rows as f64 / secs.max(1e-9),
        crate::ui::count(report.rows - report.dropped_rows()),
        taken.join(", "),
        crate::ui::count(report.dropped_rows()),
    );
    if !report.dropped.is_empty() {
        let dropped: Vec<String> = report
            .dropped
            .iter()
            .map(|(k, n)| format!("{} {}", k.code(), crate::ui::count(*n)))
            .collect();
        println!("  Dropped, by reason: {}.", dropped.join(", "));
    }
    println!(
        "Wrote {} sessions, {} transactions, {} products, {} categories and {} users to {}.",
        crate::ui::count(report.sessions),
        crate::ui::count(report.transactions),
        crate::ui::count(report.products),
        crate::ui::count(report.categories),
        crate::ui::count(report.users),
        args.out.display()
    );
    if report.products_without_price > 0 {
        println!(
            "  {} products were never seen with a price: no catalog record (sessions and baskets still name them).",
            crate::ui::count(report.products_without_price)
        );
    }
    println!(
        "Replay it with: ecomflow replay --dataset {}",
        args.out.display()
    );
    Ok(())
}
