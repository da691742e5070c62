//! The stores ingest writes to and the serving and batch sides read from,
//! behind traits, with an embedded and a server implementation each.
//!
//! - The **document store** plays MongoDB's role: collections `users`,
//!   `products`, `categories`, `transactions`, shaped as in the seed report
//!   (transactions embed their items; products embed `price_history`; users
//!   embed `geo_data` and a `purchase_summary` kept current by ingest).
//! - The **wide-column store** plays HBase's role. Its trait is HBase's own
//!   model (tables, column families, cells, row-range scans); the domain
//!   tables on top of it (`user_sessions`, `product_daily`) are one piece of
//!   code shared by every implementation, so row keys and cells are the same
//!   byte for byte whichever store is behind.
//!
//! # Layout
//!
//! - `error`: [`StoreError`], retryable or permanent.
//! - [`doc`]: the [`DocumentStore`] trait and the summary arithmetic.
//! - [`doc_embedded`]: the document store on fjall.
//! - [`doc_mongo`]: the document store on MongoDB (official driver).
//! - [`queries`]: the four daily questions (revenue by category and day,
//!   top customers, payment mix, a user's history): defined over the
//!   store's reads, run as aggregation pipelines on MongoDB.
//! - [`wide`]: the [`WideColumnStore`] trait (cells, mutations, scans).
//! - [`wide_embedded`]: the wide-column store on fjall, a keyspace per table,
//!   one value per row.
//! - [`wide_hbase`]: the wide-column store on HBase's Thrift API.
//! - `sessions`: `user_sessions` and `product_daily`: row keys, cells,
//!   and the queries (last N sessions, sessions between two times, a
//!   product's daily counts).

pub mod doc;
pub mod doc_embedded;
pub mod doc_mongo;
mod error;
pub mod queries;
mod sessions;
pub mod wide;
pub mod wide_embedded;
pub mod wide_hbase;

pub use doc::{DocCounts, DocumentStore, Progress, TransactionsPut};
pub use error::{Result, StoreError};
pub use sessions::{DailyCounts, SessionStore};
pub use wide::{Cell, Row, RowMutation, WideColumnStore};

/// Background threads (flush, compaction) per fjall database. With two or
/// more, fjall's worker 0 hands every compaction request back to the queue
/// so that it stays free for flushes (fjall 3.1 `worker_pool.rs`); when the
/// other worker is busy compacting, worker 0 spins re-queueing the same
/// request: a sixth of the replay's CPU in a profile. Each store is its own
/// database, so one worker each still flushes them in parallel.
pub const FJALL_WORKERS: usize = 1;

/// The size at which a keyspace's memtable is sealed and flushed. fjall's
/// default is 64 MiB, and it lets four sealed memtables queue per keyspace
/// behind the active one: the documents store writes four keyspaces at once
/// during ingest, so that default let memtables alone reach about 600 MB of
/// the replay's heap. 32 MiB took the replay's peak RSS from 1.57 GB to
/// 1.42 GB at the same wall time (README, "The nightly batch and memory").
/// It applies to keyspaces created from now on: fjall keeps a keyspace's
/// options.
pub const MEMTABLE_BYTES: u64 = 32 << 20;

/// Tables a keyspace's level 0 holds before they are compacted into level
/// 1: twice fjall's default, as the event log's records
/// (`eventlog::embedded`). Ingest writes every keyspace all the time, and
/// fewer, larger compactions cost less CPU: with both, the main job took
/// 54.6 s and 58.6 s (81.5-87.5 s user CPU; ingest 46.3-51.0 s) against
/// 58.6 s and 60.2 s (88.9-90.8 s; 51.2-51.8 s) with the log's alone,
/// alternated (README, "Measured"). Like the memtable size, it applies to
/// keyspaces created from now on.
pub const L0_TABLES: u8 = 8;

/// Options of every keyspace of the embedded stores.
pub(crate) fn keyspace_options() -> fjall::KeyspaceCreateOptions {
    fjall::KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .compaction_strategy(std::sync::Arc::new(
            fjall::compaction::Leveled::default().with_l0_threshold(L0_TABLES),
        ))
}

/// Options of a keyspace whose values are documents (hundreds of bytes)
/// under random keys, written once and rarely read (the document store's
/// sessions): values over 256 bytes are kept apart from the keys (fjall's
/// key-value separation), so compaction rewrites keys, not documents.
/// Measured on the main job (README, "The stores and ingest"); tried on
/// every table of both stores, it did not measurably help more.
pub(crate) fn document_keyspace_options() -> fjall::KeyspaceCreateOptions {
    keyspace_options().with_kv_separation(Some(
        fjall::KvSeparationOptions::default().separation_threshold(256),
    ))
}

/// fjall's persist mode for a durability.
pub(crate) fn persist_mode(durability: schemas::fsio::Durability) -> fjall::PersistMode {
    match durability {
        schemas::fsio::Durability::Process => fjall::PersistMode::Buffer,
        schemas::fsio::Durability::Machine => fjall::PersistMode::SyncData,
    }
}

/// Maps fjall's "directory is locked" to a message that names the cause.
pub(crate) fn open_fjall(path: &std::path::Path) -> Result<fjall::Database> {
    std::fs::create_dir_all(path)?;
    fjall::Database::builder(path)
        .worker_threads(FJALL_WORKERS)
        .open()
        .map_err(|e| match e {
            fjall::Error::Locked => StoreError::Locked(path.display().to_string()),
            other => StoreError::Storage(other),
        })
}
