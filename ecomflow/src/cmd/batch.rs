//! `ecomflow batch`: the nightly batch, once or every `--every` seconds.

use crate::cli::BatchArgs;
use crate::{nightly, pipeline};
use std::time::Duration;

/// Runs the batch once, or as a service until Ctrl-C.
pub fn run(args: BatchArgs) -> anyhow::Result<()> {
    let stop = super::ctrl_c()?;
    let cfg = args.batch.config(&args.log.data_dir)?;
    let stores = pipeline::open_stores(&args.log, &args.stores)?;
    let _metrics = pipeline::start_metrics(args.log.metrics.as_deref())?;
    loop {
        let outcome = batch::run(stores.docs.as_ref(), &stores.sessions, &cfg);
        let Some(every) = args.every else {
            nightly::print_outcome(&outcome?);
            return Ok(());
        };
        // As a service, a failed night is logged (and counted in
        // ecomflow_batch_runs_total{outcome="error"}); the next one retries.
        match outcome {
            Ok(o) => nightly::print_outcome(&o),
            Err(e) => tracing::error!(error = %e, retry_in_secs = every, "Batch run failed."),
        }
        if stop.wait_timeout(Duration::from_secs(every)) {
            return Ok(());
        }
    }
}
