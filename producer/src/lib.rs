//! The producer: a deterministic generator of a 90-day shop and the replay
//! that publishes it to the event log.
//!
//! Same [`ShopConfig`] (seed included), same bytes: every random choice is
//! drawn from a ChaCha8 stream derived from the seed, one stream per catalog
//! part and one per session, so the output does not depend on iteration
//! order, thread count or platform.
//!
//! # Layout
//!
//! - `config`: [`ShopConfig`], its defaults (the seed report's shop) and
//!   validation.
//! - `sampling`: alias tables, normal draws, id scrambling, prices.
//! - `catalog`: categories, products with price history, users, planted
//!   complements.
//! - [`events`]: the time-ordered [`EventStream`] of sessions and
//!   transactions, with the dirty share.
//! - [`shape`]: statistics that show the data has the intended shape.
//! - [`dataset`]: writes the dataset as newline-delimited JSON.
//! - [`clickstream`]: imports an event-level clickstream export (CSV,
//!   plain or gzip) into such a dataset.
//! - [`metrics`]: the producer's Prometheus metrics.
//! - [`replay`]: publishes the stream to an [`eventlog::EventLog`],
//!   resumable, at full speed or paced.

mod catalog;
pub mod clickstream;
mod config;
pub mod dataset;
pub mod events;
pub mod metrics;
pub mod replay;
mod sampling;
pub mod shape;

pub use catalog::Catalog;
pub use config::{ConfigError, ShopConfig};
pub use events::{Event, EventStream, Stream};
