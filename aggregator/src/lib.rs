//! The aggregator: co-occurrence pairs, their significance and counts kept
//! by event time over a sliding window, as plain functions over plain types
//! with no I/O (`pairs`, `llr`, `window`, `cooccur`, `pairtable`,
//! `processor`); and on top of them the parts that do I/O: the consumer
//! group member with its checkpoints (`runner`, encoded with
//! [`schemas::codec`]), the lookup API
//! (`http`), metrics and the offline evaluation.
//!
//! # Layout
//!
//! - [`choices`]: what a lookup chooses by name: [`choices::Ranking`],
//!   [`choices::Relation`], [`choices::Span`]; `named_enum!`, which names
//!   them and the endpoints.
//! - [`cooccur`]: windowed item and pair counts, top-k partners by every
//!   ranking, and the per-user engagement score.
//! - `pairtable`: one cell per pair of dense item numbers, in rows that
//!   are sparse or dense, whichever is smaller.
//! - `sparserow`: a sparse row's cells, in a table of its own probed
//!   linearly.
//! - [`endpoint`]: the lookup API's endpoints, their routes and metric
//!   labels.
//! - [`metrics`]: the aggregator's Prometheus metrics.
//! - [`names`]: numbers for ids of any format (generated-form ids are
//!   their own number; others are numbered as they arrive).
//! - [`pairs`]: unordered pairs of distinct items in a basket, with a cap on
//!   items per basket.
//! - [`evaluate`]: hit rate of top-k recommendations on held-out baskets,
//!   against a best-seller baseline, and recall of planted complements.
//! - [`http`]: the lookup API (axum): bought/viewed together, engagement,
//!   health and metrics; errors map to 400/404 with a JSON body.
//! - [`llr`]: Dunning's log-likelihood ratio (G-test) on the 2x2 table, as
//!   Apache Mahout computes it, and the companion measures (support,
//!   confidence, lift).
//! - [`processor`]: the state machine: records in, windows by event time,
//!   watermark and late events, lookups, checkpoint with offsets.
//! - [`runner`]: the aggregator as a consumer group member: apply,
//!   dead-letter late events, checkpoint state with offsets, restore.
//! - `window`: the bucket ring (event time to bucket, sliding), counts
//!   per key by event time in buckets (one per day by default) that slide
//!   by dropping whole buckets, plus all-time counts; watermarks.

// `named_enum!` is defined there and used by `endpoint` too.
#[macro_use]
pub mod choices;
pub mod cooccur;
pub mod endpoint;
pub mod evaluate;
pub mod http;
pub use measures::llr;
pub mod metrics;
pub mod names;
pub use measures::pairs;
mod pairtable;
pub mod processor;
pub mod runner;
mod sparserow;
mod window;

/// The lock the live model sits behind, shared by the aggregator (the
/// writer) and the lookup API (the readers). parking_lot's, not std's, for
/// `RwLockWriteGuard::unlock_fair`: the writer hands the lock to the
/// lookups waiting for it after each slice it applies, where std's lock
/// let the writer take it straight back before a waiting reader, woken
/// but not yet on a core, got it (so one lookup could wait out several
/// slices while the replay kept both cores busy).
pub use parking_lot::RwLock;

/// The live model as the aggregator and the API share it.
pub type SharedModel = std::sync::Arc<RwLock<processor::Aggregator>>;

/// Records for the crate's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A transaction `id` by `user_000007` at `at` (`YYYY-MM-DDTHH:MM:SS`),
    /// one unit of each of `products` at 10.0, as the log carries it.
    pub fn transaction(id: &str, at: &str, products: &[&str]) -> Vec<u8> {
        schemas::envelope::encode(
            schemas::envelope::Kind::Transaction,
            &schemas::Transaction {
                transaction_id: id.into(),
                session_id: "sess_x".into(),
                user_id: "user_000007".into(),
                timestamp: schemas::time::parse(at).unwrap_or_default(),
                items: products
                    .iter()
                    .map(|p| schemas::LineItem {
                        product_id: p.to_string(),
                        quantity: 1,
                        unit_price: 10.0,
                        subtotal: 10.0,
                    })
                    .collect(),
                discount: 0.0,
                total: 10.0 * products.len() as f64,
                payment_method: schemas::PaymentMethod::Paypal,
            },
        )
    }
}
