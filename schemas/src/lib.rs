//! The shared language of ecomflow: the records a shop produces, the envelope
//! they travel in on the event log, their ids, and the validators that turn
//! raw bytes into clean records or a typed reason why not.
//!
//! The crates that handle records (`eventlog`, `stores`, `producer`,
//! `ingest`, `aggregator`, `batch` and the binary) depend on this one; of
//! ours, it depends only on `measures`.
//!
//! # Layout
//!
//! - [`types`]: `User`, `Category`, `Product`, `Session`, `Transaction` and
//!   their parts, as stored and as published.
//! - [`ids`]: id formats (`user_000042`, `prod_00123`, `cat_007`,
//!   `sess_…`, `txn_…`) and their parsers.
//! - [`envelope`]: the versioned event envelope, topic names, encode/decode.
//! - [`validate`]: one validator per record kind and the [`Rejection`] reasons.
//! - `plain_json` (inside the crate): the decoders' fast path for sessions
//!   and transactions, a JSON reader that fills the validator's raw records
//!   without serde when a record is plainly shaped.
//! - [`json_write`]: sessions and transactions written as JSON, the bytes
//!   serde_json writes, without serde's derived code (the producer's).
//! - [`time`]: the timestamp formats we accept and the one we write.
//! - [`formulas`]: the shop's scores (engagement), defined once.
//! - [`codec`]: a compact binary encoding (varints, length-prefixed
//!   strings) for what only ecomflow reads back.

pub mod codec;
pub mod envelope;
pub use measures::formulas;
pub mod ids;
pub mod json_write;
mod plain_json;
pub mod time;
pub mod types;
pub mod validate;

pub use envelope::{
    decode_catalog, decode_session, decode_transaction, encode, CatalogRecord, DeadLetter, Kind,
    SCHEMA_VERSION,
};
pub use types::{
    CartItem, Category, ConversionStatus, CustomerValue, DeviceInfo, DeviceType, GeoData, LineItem,
    PaymentMethod, PricePoint, Product, PurchaseSummary, Session, Transaction, User,
};
pub use validate::Rejection;

/// Topic names on the event log, shared by producer, ingest and aggregator.
pub mod topics {
    /// Browsing sessions, keyed by user id.
    pub const SESSIONS: &str = "sessions";
    /// Purchases, keyed by user id.
    pub const TRANSACTIONS: &str = "transactions";
    /// Reference data (categories, products, users), keyed by record id.
    pub const CATALOG: &str = "catalog";
    /// Records that could not be used, with the reason.
    pub const DEAD_LETTERS: &str = "dead-letters";
    /// Partitions of each event topic when ecomflow creates it.
    pub const DEFAULT_PARTITIONS: u32 = 4;
    /// The topics ingest consumes.
    pub const INGEST_INPUTS: [&str; 3] = [CATALOG, SESSIONS, TRANSACTIONS];
    /// The topics the aggregator consumes.
    pub const AGGREGATOR_INPUTS: [&str; 2] = [SESSIONS, TRANSACTIONS];

    /// Every topic of the shop with its partition count when ecomflow
    /// creates it: the event topics `partitions` each, the dead letters one
    /// (they are read in order, by people and by `ecomflow query`).
    pub fn shop(partitions: u32) -> [(&'static str, u32); 4] {
        [
            (CATALOG, partitions),
            (SESSIONS, partitions),
            (TRANSACTIONS, partitions),
            (DEAD_LETTERS, 1),
        ]
    }
}
