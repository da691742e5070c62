//! `ecomflow generate`: the shop as NDJSON files.

use crate::cli::GenerateArgs;
use anyhow::Context;
use std::time::Instant;

/// Writes the dataset and prints its shape.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let cfg = args.shop.config()?;
    let bar = crate::ui::Progress::new(0, "records");
    let started = Instant::now();
    let manifest = producer::dataset::write(&cfg, &args.out, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("writing the dataset to {}", args.out.display()))?;
    bar.finish_and_clear();
    println!(
        "Wrote {} records ({:.1} MiB) to {} in {:.1} s.",
        manifest.records,
        manifest.bytes as f64 / (1 << 20) as f64,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", manifest.shape);
    Ok(())
}
