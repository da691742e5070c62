//! `ecomflow batch`: the nightly batch, once or every `--every` seconds.

use crate::cli::BatchArgs;
use crate::{nightly, pipeline};
use std::time::Duration;

/// Runs the batch once, or as a service until Ctrl-C.
pub fn run(args: BatchArgs) -> anyhow::Result<()> {
    let stop = super::ctrl_c()?;
    let cfg = args.batch.config(&args.dir.data_dir)?;
    // The snapshot and the report are written here: one batch at a time.
    let _lock = crate::lock::lock_data_dir(&args.dir.data_dir)?;
    let stores = pipeline::open_stores(&args.dir.data_dir, args.durability(), false, &args.stores)?;
    let _metrics = crate::servers::start_metrics(args.metrics.as_deref())?;
    loop {
        // Nothing stored shows in the run itself (no user, no transaction
        // in the snapshot): no separate count of the stores, which would
        // scan every transaction's key first.
        let outcome = batch::run(stores.docs.as_ref(), &stores.sessions, &cfg);
        let empty = matches!(&outcome, Ok(o) if nothing_stored(o));
        match (empty, args.every) {
            (true, None) => anyhow::bail!(
                "nothing is stored in the {}: ingest a shop first (`ecomflow replay --data-dir {}`, or `ecomflow ingest`)",
                stores.docs.describe(),
                args.dir.data_dir.display()
            ),
            (false, None) => {
                nightly::print_outcome(&outcome?);
                return Ok(());
            }
            // As a service, an empty store is a shop not ingested yet.
            (true, Some(every)) => {
                tracing::warn!(retry_in_secs = every, "Nothing stored yet; the batch waits for ingest.");
            }
            // A failed night is logged (and counted in
            // ecomflow_batch_runs_total{outcome="error"}); the next retries.
            (false, Some(every)) => match outcome {
                Ok(o) => nightly::print_outcome(&o),
                Err(e) => tracing::error!(error = %e, retry_in_secs = every, "Batch run failed."),
            },
        }
        if let Some(every) = args.every {
            if stop.wait_timeout(Duration::from_secs(every)) {
                return Ok(());
            }
        }
    }
}

/// A run over stores that hold nothing: no customer in any segment and no
/// row in the snapshot.
fn nothing_stored(o: &batch::BatchOutcome) -> bool {
    o.rows_written == 0 && o.findings.segments.iter().all(|s| s.customers == 0)
}
