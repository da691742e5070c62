//! Ingest: consumer workers that validate events and write them to the
//! stores, exactly once in effect.
//!
//! Per batch a worker (1) decodes and validates every record with the
//! schemas' validators, (2) writes the good ones to the stores: catalog
//! and transactions to the document store; sessions to the document store
//! (by day, which the nightly snapshot reads, and where a session id with
//! other content is caught) and then to the wide-column store
//! (`user_sessions`, a user's sessions newest first); the bad ones to the
//! document store's dead letters (which the nightly cleaning statistics
//! count); and each store's progress after its data, (3) publishes the bad
//! ones to the dead-letter topic with their reason, with per-partition
//! markers that say how far dead letters were sent, and (4) only then
//! commits the batch's offsets. A crash anywhere replays the
//! batch: the stores are idempotent (ids as keys, summaries that skip
//! transactions already counted), and dead letters below a partition's
//! marker are not sent again, so nothing is lost or counted twice.
//!
//! # Layout
//!
//! - [`worker`]: the worker loop, its configuration and statistics.
//! - [`metrics`]: ingest's Prometheus metrics.

pub mod metrics;
pub mod worker;

pub use worker::{
    resume_from_stores, run_worker, run_worker_on, IngestConfig, IngestError, IngestStats,
    StatsSnapshot,
};
