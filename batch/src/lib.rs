//! The nightly batch: snapshot the stores into Parquet, run the shop's
//! analytics as SQL on Apache DataFusion, compute CLV segments and the
//! predictive models, write each user's value back, and write the report.
//!
//! # Layout
//!
//! - [`snapshot`]: day-partitioned, incremental Parquet snapshots.
//! - [`engine`]: a DataFusion session over a snapshot (also `ecomflow sql`).
//! - [`analytics`]: the seed report's queries.
//! - [`cooccur`]: co-purchase and co-view pair counts (a dedicated operator).
//! - [`predict`]: BG/NBD, Gamma-Gamma and the numerics they need.
//! - `clv`: holdout check of the CLV models, 90-day predictions, write-back rows.
//! - `charts`, [`report`]: SVG charts and `report.md`.
//! - [`table`]: query results as rows of values.
//! - [`metrics`]: the batch job's Prometheus metrics.

pub mod analytics;
mod charts;
mod clv;
pub mod cooccur;
pub mod engine;
pub mod metrics;
pub mod predict;
pub mod report;
pub mod snapshot;
pub mod table;

use chrono::NaiveDate;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use stores::{DocumentStore, SessionStore};

pub use analytics::{Findings, SegmentCuts};
pub use engine::{Engine, QueryResult};

/// Errors of the batch job.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] stores::StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// The query engine refused or failed a query.
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Arrow refused a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Writing Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// A query tried to change something through `ecomflow sql`.
    #[error("refused: {0}")]
    ReadOnly(String),
    /// A user's query that does not parse or plan (a typo, an unknown
    /// table or column), with the tables there are.
    #[error("error in the query: {message}\ntables: {tables}")]
    BadQuery {
        /// DataFusion's message.
        message: String,
        /// The tables and views the query can read.
        tables: String,
    },
    /// The snapshot's files do not match its manifest.
    #[error("the snapshot in {dir} does not match its manifest: {}; run `ecomflow batch` to write it again from the stores", problems.join("; "))]
    Damaged {
        /// Snapshot directory.
        dir: String,
        /// What is wrong, a line per file.
        problems: Vec<String>,
    },
    /// There is no snapshot to query.
    #[error("no snapshot in {0}: run `ecomflow batch` first")]
    NoSnapshot(String),
    /// The run was cancelled ([`BatchConfig::cancel`]).
    #[error("cancelled")]
    Cancelled,
    /// Something on disk or in a result is not what it should be.
    #[error("{0}")]
    Corrupt(String),
}

impl BatchError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BatchError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result of the batch job.
pub type Result<T> = std::result::Result<T, BatchError>;

/// What to do.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Snapshot directory (`<data-dir>/snapshot`).
    pub snapshot_dir: PathBuf,
    /// Report directory (`<data-dir>/report`).
    pub report_dir: PathBuf,
    /// Last day to include (`None`: everything stored).
    pub through: Option<NaiveDate>,
    /// Segment shares.
    pub cuts: SegmentCuts,
    /// Viewing sessions a product needs to be ranked by conversion.
    pub min_views: u64,
    /// Count pairs over at most this many distinct products of each
    /// basket, first seen first, as the live aggregator does (`None`:
    /// whole baskets, as the seed's SQL).
    pub basket_cap: Option<usize>,
    /// Days held out to check the CLV models.
    pub holdout_days: i64,
    /// Write each user's segment and CLV back to the document store.
    pub write_back: bool,
    /// How closely the snapshot's complete days are checked before they
    /// are trusted (the replay's nightly runs check sizes and row counts;
    /// `ecomflow batch` checksums too).
    pub check: snapshot::Check,
    /// When stopped (by another thread), the run stops after the day
    /// partitions being written and returns [`BatchError::Cancelled`]: what
    /// it wrote is recorded, the rest is left for the next run.
    pub cancel: Option<stage::Shutdown>,
}

impl BatchConfig {
    /// Defaults under a data directory.
    pub fn new(data_dir: &Path) -> Self {
        BatchConfig {
            snapshot_dir: data_dir.join("snapshot"),
            report_dir: data_dir.join("report"),
            through: None,
            cuts: SegmentCuts::default(),
            min_views: 30,
            basket_cap: None,
            holdout_days: 30,
            write_back: true,
            check: snapshot::Check::Full,
            cancel: None,
        }
    }
}

/// What a run did, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct BatchOutcome {
    /// Last day included.
    pub through: Option<NaiveDate>,
    /// Day partitions written this run.
    pub partitions_written: usize,
    /// Rows written to day partitions this run.
    pub rows_written: u64,
    /// Seconds per step, in order.
    pub steps: Vec<(String, f64)>,
    /// The analytics.
    pub findings: Findings,
    /// The CLV models' holdout check.
    pub prediction: Option<clv::Prediction>,
    /// Users whose value was written back.
    pub written_back: usize,
    /// The report.
    pub report: PathBuf,
}

/// Runs the whole batch: snapshot, analytics, prediction, write-back, report;
/// publishes the outcome in the metrics.
pub fn run(
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    cfg: &BatchConfig,
) -> Result<BatchOutcome> {
    let outcome = run_steps(docs, sessions, cfg);
    match &outcome {
        Ok(o) => metrics::observe(o),
        Err(BatchError::Cancelled) => {}
        Err(_) => metrics::failed(),
    }
    outcome
}

fn run_steps(
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    cfg: &BatchConfig,
) -> Result<BatchOutcome> {
    let mut steps: Vec<(String, f64)> = Vec::new();
    let time = |steps: &mut Vec<(String, f64)>, name: &str, started: Instant| {
        let secs = started.elapsed().as_secs_f64();
        tracing::debug!(
            step = name,
            seconds = format!("{secs:.2}"),
            "Batch step done."
        );
        steps.push((name.to_string(), secs));
    };

    let t = Instant::now();
    let snap = snapshot::snapshot_cancellable(
        docs,
        sessions,
        &cfg.snapshot_dir,
        cfg.through,
        cfg.check,
        cfg.cancel.as_ref(),
    )?;
    if cfg.cancel.as_ref().is_some_and(stage::Shutdown::is_stopped) {
        return Err(BatchError::Cancelled);
    }
    time(&mut steps, "snapshot", t);

    let engine = Engine::open(&cfg.snapshot_dir)?;
    let findings = analytics::run(&engine, cfg.cuts, cfg.min_views, cfg.basket_cap)?;
    steps.extend(findings.timings.iter().cloned());

    let t = Instant::now();
    let range = first_and_last_day(&engine)?;
    let prediction = match range {
        Some((first, last)) => clv::predict(&engine, first, last, cfg.holdout_days)?,
        None => None,
    };
    time(&mut steps, "predictive CLV", t);

    let t = Instant::now();
    let as_of = snap
        .through
        .or(range.map(|r| r.1))
        .unwrap_or(NaiveDate::MIN);
    let values = clv::customer_values(&engine, prediction.as_ref(), as_of)?;
    if cfg.write_back {
        docs.put_customer_values(&values)?;
    }
    time(&mut steps, "write-back", t);

    let t = Instant::now();
    let report = report::write(
        &cfg.report_dir,
        &findings,
        prediction.as_ref(),
        snap.through,
    )?;
    time(&mut steps, "report", t);

    Ok(BatchOutcome {
        through: snap.through,
        partitions_written: snap.written.len(),
        rows_written: snap.written.iter().map(|w| w.2).sum(),
        steps,
        findings,
        prediction,
        written_back: if cfg.write_back { values.len() } else { 0 },
        report,
    })
}

/// First and last day with transactions in the snapshot.
fn first_and_last_day(engine: &Engine) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let t =
        engine.table("SELECT MIN(\"date\") AS first, MAX(\"date\") AS last FROM transactions")?;
    let parse = |s: String| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
    Ok(
        match (
            parse(t.text(0, "first").unwrap_or_default()),
            parse(t.text(0, "last").unwrap_or_default()),
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        },
    )
}
