//! `ecomflow serve`: the aggregator and its lookup API as a service.

use crate::cli::ServeArgs;
use crate::{pipeline, ui};
use std::sync::atomic::Ordering;

/// Serves until Ctrl-C (or `--until-idle`), then prints the throughput
/// over the busy time and the state's size.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // The checkpoint lives in the data dir: one process at a time.
    let _lock = crate::lock::lock_data_dir(&args.log.data_dir)?;
    let log = pipeline::Pipeline::open(&args.log, None, false)?.log;
    let stop = super::ctrl_c()?;
    let _metrics = crate::servers::start_metrics(args.log.metrics.as_deref())?;
    let settings = pipeline::AggregatorSettings::new(
        &args.aggregator,
        &args.log,
        pipeline::AggregatorRun {
            until_idle: args.until_idle,
            http_threads: args
                .aggregator
                .http_threads
                .unwrap_or(pipeline::SERVE_HTTP_THREADS),
            copy_checkpoints: true,
        },
    );
    let mut handle = pipeline::start_aggregator(log.clone(), settings, stop.child())?;
    // Daily counts are a side dish: without their store, the lookups of
    // the live window are served all the same, and that endpoint says why.
    match pipeline::daily_sessions(&args.log, &args.hbase) {
        Ok(Some(sessions)) => handle.serve_daily(&sessions),
        Ok(None) => {}
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "No daily counts: /v1/products/{{id}}/daily answers 503."
        ),
    }
    println!(
        "Aggregator reading {}; lookup API on http://{} until Ctrl-C.",
        log.describe(),
        handle.addr
    );
    handle.join_runner()?;
    let applied = handle.stats.applied.load(Ordering::Relaxed);
    // Over the busy time, not the idle wait at the end.
    let busy = handle.stats.busy().as_secs_f64().max(1e-3);
    println!(
        "Applied {applied} events in {busy:.1} s ({:.0} events/s); state {:.1} MiB, checkpoint {:.1} MiB.",
        applied as f64 / busy,
        aggregator::metrics::STATE_BYTES.get() as f64 / f64::from(1u32 << 20),
        aggregator::metrics::CHECKPOINT_BYTES.get() as f64 / f64::from(1u32 << 20)
    );
    ui::print_aggregator_summary(&handle);
    handle.shutdown();
    Ok(())
}
