//! Wiring: opens the log and the stores the flags ask for, and runs ingest
//! workers on threads.

use crate::cli::{IngestFlags, LogArgs};
use anyhow::Context;
use eventlog::EventLog;
use ingest::{IngestConfig, IngestError, IngestStats};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use stores::doc_embedded::EmbeddedDocStore;
use stores::doc_mongo::MongoDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::wide_hbase::HbaseWideStore;
use stores::{DocumentStore, SessionStore, WideColumnStore};

/// The stores of one process.
#[derive(Clone)]
pub struct Stores {
    /// Document store (MongoDB's role).
    pub docs: Arc<dyn DocumentStore>,
    /// Wide-column tables (HBase's role).
    pub sessions: SessionStore,
}

/// Opens the stores the flags ask for: servers when given, otherwise the
/// embedded engines under `--data-dir`.
pub fn open_stores(args: &LogArgs) -> anyhow::Result<Stores> {
    let docs: Arc<dyn DocumentStore> = match &args.mongodb_uri {
        Some(uri) => Arc::new(
            MongoDocStore::connect(uri, &args.mongodb_database)
                .with_context(|| format!("connecting to MongoDB at {uri}"))?,
        ),
        None => Arc::new(
            EmbeddedDocStore::open(&args.data_dir.join("docs"))
                .context("opening the document store")?,
        ),
    };
    let wide: Arc<dyn WideColumnStore> = match &args.hbase_thrift {
        Some(addr) => Arc::new(
            HbaseWideStore::connect(addr, 4)
                .with_context(|| format!("connecting to HBase Thrift at {addr}"))?,
        ),
        None => Arc::new(
            EmbeddedWideStore::open(&args.data_dir.join("wide"))
                .context("opening the wide-column store")?,
        ),
    };
    Ok(Stores {
        docs,
        sessions: SessionStore::new(wide)?,
    })
}

/// Removes the embedded engines' directories (for `--fresh`).
pub fn remove_embedded(args: &LogArgs) -> anyhow::Result<()> {
    for sub in ["log", "docs", "wide", "markers"] {
        let dir = args.data_dir.join(sub);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", dir.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Ingest settings from flags.
pub fn ingest_config(flags: &IngestFlags) -> IngestConfig {
    IngestConfig {
        group: flags.ingest_group.clone(),
        batch: flags.ingest_batch.max(1),
        ..IngestConfig::default()
    }
}

/// Starts `workers` ingest threads; they run until `stop` is set.
pub fn spawn_ingest(
    log: Arc<dyn EventLog>,
    stores: Stores,
    cfg: IngestConfig,
    workers: usize,
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<JoinHandle<Result<(), IngestError>>>> {
    (0..workers.max(1))
        .map(|i| {
            let (log, stores, cfg, stats, stop) = (
                log.clone(),
                stores.clone(),
                cfg.clone(),
                stats.clone(),
                stop.clone(),
            );
            std::thread::Builder::new()
                .name(format!("ingest-{i}"))
                .spawn(move || {
                    ingest::run_worker(
                        log.as_ref(),
                        stores.docs.as_ref(),
                        &stores.sessions,
                        &cfg,
                        &stats,
                        &stop,
                    )
                })
                .context("starting an ingest thread")
        })
        .collect()
}

/// Joins worker threads and returns the first error.
pub fn join_all(handles: Vec<JoinHandle<Result<(), IngestError>>>) -> anyhow::Result<()> {
    let mut first = Ok(());
    for h in handles {
        let r = match h.join() {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!("an ingest thread panicked")),
        };
        if first.is_ok() {
            first = r;
        }
    }
    first
}
