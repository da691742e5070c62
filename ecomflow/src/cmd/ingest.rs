//! `ecomflow ingest`: ingest workers as a service.

use crate::cli::IngestArgs;
use crate::{pipeline, stages, ui};
use std::sync::Arc;

/// Runs the workers until Ctrl-C (or `--until-idle`), then prints what
/// they stored and their rate (the replay's per-stage table: events/s
/// from the workers' start to the last record, over the first and last
/// tenth, and the peak RSS).
pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    // An embedded engine in the data dir (the log or a store): one process
    // at a time. With Kafka, MongoDB and HBase nothing of it is used, and
    // ingest services may share it.
    let embedded = args.log.kafka_brokers.is_none()
        || args.stores.mongodb_uri.is_none()
        || args.stores.hbase.hbase_thrift.is_none();
    let _lock = if embedded {
        Some(crate::lock::lock_data_dir(&args.log.data_dir)?)
    } else {
        None
    };
    let cfg = pipeline::ingest_config(&args.ingest, args.log.partitions, args.until_idle);
    let opened = pipeline::Pipeline::open(&args.log, Some(&args.stores), false)?;
    let log = &opened.log;
    let stop = super::ctrl_c()?;
    let _metrics = crate::servers::start_metrics(args.log.metrics.as_deref())?;
    let stats = Arc::new(ingest::IngestStats::default());
    let counted = stats.clone();
    let clock =
        stages::StageClock::start(vec!["ingest"], move || vec![counted.snapshot().consumed]);
    let stores = opened.stores()?;
    let workers = pipeline::start_ingest(log, stores, &cfg, &stats, &stop.child())?;
    tracing::info!(log = %log.describe(), docs = %stores.docs.describe(), workers = cfg.workers, "Ingest started.");
    workers.join()?;
    let rows = clock.finish();
    ui::print_ingest_summary(&stats.snapshot(), stores)?;
    if !rows.is_empty() {
        print!("{}", stages::format(&rows));
    }
    Ok(())
}
