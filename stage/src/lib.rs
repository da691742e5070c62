//! How an ecomflow stage runs, whatever it does: the parts every stage
//! shares that are not about the shop's records (those are in `schemas`)
//! nor about its metrics (`telemetry`).
//!
//! # Layout
//!
//! - [`shutdown`]: the one stop signal of every stage ([`Shutdown`]), and
//!   when a consumer is done.
//! - [`fsio`]: files replaced whole (temporary file and rename) and
//!   [`fsio::Durability`], how far a write goes towards the disk.
//! - [`http`]: the HTTP/1.1 accept loop of the lookup API and the metrics
//!   endpoint, with its limits.

pub mod fsio;
pub mod http;
pub mod shutdown;

pub use shutdown::Shutdown;
