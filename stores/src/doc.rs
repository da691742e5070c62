//! The document store: MongoDB's role in the seed report's design.

use crate::Result;
use chrono::{NaiveDate, NaiveDateTime};
use schemas::{
    Category, CustomerValue, DeadLetter, Product, PurchaseSummary, Session, Transaction, User,
};
use serde::{Deserialize, Serialize};

/// Documents per collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DocCounts {
    /// Users.
    pub users: u64,
    /// Products.
    pub products: u64,
    /// Categories.
    pub categories: u64,
    /// Transactions.
    pub transactions: u64,
}

/// What [`DocumentStore::put_transactions_checked`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionsPut {
    /// Transactions stored for the first time.
    pub new: u64,
    /// Positions in the batch of transactions whose id was already stored
    /// with other content; not written.
    pub conflicts: Vec<usize>,
}

/// The document store: MongoDB or the embedded one.
///
/// Collections `users`, `products`, `categories`, `transactions`.
///
/// Every write is idempotent: documents are keyed by their ids, so a
/// replayed batch overwrites itself, and a transaction already stored is
/// never counted again in its user's purchase summary.
pub trait DocumentStore: Send + Sync {
    /// Which implementation this is, for logs.
    fn describe(&self) -> String;

    /// Inserts or replaces categories.
    fn upsert_categories(&self, items: &[Category]) -> Result<()>;

    /// Inserts or replaces products (price history embedded).
    fn upsert_products(&self, items: &[Product]) -> Result<()>;

    /// Inserts or replaces users' profiles; their purchase summaries are
    /// kept by the store and are not overwritten.
    fn upsert_users(&self, items: &[User]) -> Result<()>;

    /// Stores transactions and folds the new ones into their users'
    /// purchase summaries. Returns how many were new, and which of `items`
    /// conflict: an id already stored (or earlier in `items`) with other
    /// content. A conflicting transaction is not written (the first one
    /// stored stands, on every backend); the caller dead-letters it. The
    /// same transaction again (a replayed batch) is neither new nor a
    /// conflict.
    fn put_transactions_checked(&self, items: &[Transaction]) -> Result<TransactionsPut>;

    /// [`put_transactions_checked`](Self::put_transactions_checked),
    /// returning how many were new.
    fn put_transactions(&self, items: &[Transaction]) -> Result<u64> {
        Ok(self.put_transactions_checked(items)?.new)
    }

    /// A user with the current purchase summary.
    fn user(&self, user_id: &str) -> Result<Option<User>>;

    /// A product.
    fn product(&self, product_id: &str) -> Result<Option<Product>>;

    /// Ids of the products of a category (category index), sorted.
    fn products_in_category(&self, category_id: &str) -> Result<Vec<String>>;

    /// A transaction.
    fn transaction(&self, transaction_id: &str) -> Result<Option<Transaction>>;

    /// A user's transactions with `from <= timestamp <= to`, oldest first
    /// (user id + time index).
    fn user_transactions(
        &self,
        user_id: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Transaction>>;

    /// Documents per collection.
    fn counts(&self) -> Result<DocCounts>;

    /// Every user (with the current purchase summary), sorted by id.
    fn all_users(&self) -> Result<Vec<User>>;

    /// Every product, sorted by id.
    fn all_products(&self) -> Result<Vec<Product>>;

    /// Every category, sorted by id.
    fn all_categories(&self) -> Result<Vec<Category>>;

    /// The days on which transactions were stored, ascending (day index).
    fn transaction_days(&self) -> Result<Vec<NaiveDate>>;

    /// The transactions of one day, by timestamp then id.
    fn transactions_on(&self, day: NaiveDate) -> Result<Vec<Transaction>>;

    /// Stores sessions (as the seed's MongoDB holds them, beside users,
    /// products and transactions). Returns which of `items` conflict: an id
    /// already stored (or earlier in `items`) with other content, which is
    /// not written (the first one stored stands, on every backend); the
    /// caller dead-letters it. The same session again (a replayed batch)
    /// changes nothing. The nightly snapshot reads them from here by day
    /// ([`sessions_on`](Self::sessions_on)); the wide-column store stays the
    /// path for "a user's last N sessions".
    fn put_sessions(&self, items: &[Session]) -> Result<Vec<usize>>;

    /// The days on which sessions started, ascending.
    fn session_days(&self) -> Result<Vec<NaiveDate>>;

    /// The sessions that started on `day`, by start time then id.
    fn sessions_on(&self, day: NaiveDate) -> Result<Vec<Session>>;

    /// Stores dead letters, keyed by where the record came from (topic,
    /// partition, offset), so storing one twice keeps one.
    fn put_dead_letters(&self, items: &[DeadLetter]) -> Result<()>;

    /// Every dead letter, by topic, partition and offset.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>>;

    /// Writes the batch's customer values back to the users.
    fn put_customer_values(&self, items: &[CustomerValue]) -> Result<()>;

    /// The customer value last written back for a user.
    fn customer_value(&self, user_id: &str) -> Result<Option<CustomerValue>>;

    /// Records that everything consumer group `group` read before
    /// `offsets` (next offset per topic and partition) is stored. Written
    /// after the records' own writes, so a store that lost its last writes
    /// (a machine crash) lost this too and says where to read again from.
    /// Durable on a machine crash when the store is (`--fsync` for the
    /// embedded one).
    fn put_progress(&self, group: &str, offsets: &Progress) -> Result<()>;

    /// What [`put_progress`](Self::put_progress) last recorded for `group`.
    fn progress(&self, group: &str) -> Result<Progress>;

    /// Revenue and units per category and day, `from..=to` (the
    /// definitions of the four queries are the functions of `queries`,
    /// over the reads above; MongoDB runs each as a pipeline).
    fn revenue_by_category(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<CategoryDay>>;

    /// The `limit` customers who spent most.
    fn top_customers(&self, limit: usize) -> Result<Vec<Customer>>;

    /// Transactions and revenue per payment method.
    fn payment_mix(&self) -> Result<Vec<PaymentShare>>;

    /// A user's `limit` latest transactions, a row per line item, with
    /// product names.
    fn purchase_history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryLine>>;
}

/// Revenue of one category on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryDay {
    /// The day.
    pub day: NaiveDate,
    /// `cat_007`.
    pub category_id: String,
    /// Its name (`None` when the category document is missing).
    pub category: Option<String>,
    /// Units sold.
    pub units: u64,
    /// Line subtotals (before the transaction's discount), to the cent.
    pub revenue: f64,
}

/// A customer's purchases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// `user_000042`.
    pub user_id: String,
    /// Their name (`None` when the profile is missing).
    pub name: Option<String>,
    /// Transactions.
    pub orders: u64,
    /// Sum of transaction totals, to the cent.
    pub spent: f64,
    /// Time of the latest transaction.
    pub last_purchase: NaiveDateTime,
}

/// One payment method's part of the transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentShare {
    /// `credit_card`, `paypal`, ...
    pub method: String,
    /// Transactions.
    pub orders: u64,
    /// Sum of totals, to the cent.
    pub revenue: f64,
    /// Share of all revenue, 0 to 1 (rounded to 4 places).
    pub share: f64,
}

/// One line of a user's purchase history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// The transaction.
    pub transaction_id: String,
    /// When.
    pub timestamp: NaiveDateTime,
    /// `prod_00123`.
    pub product_id: String,
    /// The product's name (`None` when its document is missing).
    pub product: Option<String>,
    /// Units.
    pub quantity: u32,
    /// Price per unit.
    pub unit_price: f64,
    /// Line subtotal.
    pub subtotal: f64,
}

/// Next offset per (topic, partition) that a store holds everything before.
pub type Progress = std::collections::BTreeMap<(String, u32), u64>;

/// The first and last instant of a day, as stored (whole seconds).
pub fn day_bounds(day: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let start = day.and_time(chrono::NaiveTime::MIN);
    (start, start + chrono::Duration::seconds(86_399))
}

/// The summary of a set of transactions, computed from scratch.
pub fn summarize<'a>(txns: impl IntoIterator<Item = &'a Transaction>) -> PurchaseSummary {
    let mut s = PurchaseSummary::default();
    for t in txns {
        s.add(t);
    }
    s
}
