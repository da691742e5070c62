//! The document store on fjall: one keyspace per collection (documents as
//! JSON, keyed by id; sessions in a compact binary form, keyed by day),
//! plus index keyspaces and the purchase summaries.
//!
//! - `products_by_category`: `category_id NUL product_id`;
//! - `transactions_by_user`: `user_id NUL timestamp NUL transaction_id`;
//! - `transactions`: transaction id → where it is stored: its timestamp,
//!   which names its `transactions_by_day` entry (the transaction itself
//!   in stores of layout 3 and earlier);
//! - `transactions_by_day`: `YYYY-MM-DD NUL timestamp NUL transaction_id` →
//!   the transaction (empty in stores of layout 2 and earlier: then it is
//!   read by id), for the nightly snapshot of one day in one scan;
//! - `purchase_summaries`: user id → summary (binary; JSON in stores of
//!   layout 3 and earlier), kept apart from the profile
//!   so that a profile update never resets it;
//! - `dead_letters`: `topic NUL partition NUL offset` (big-endian) → letter;
//! - `customer_values`: user id → the batch's CLV and segment;
//! - `session_docs`: `YYYY-MM-DD NUL start time NUL session_id` → the
//!   session (`session_bytes`; JSON in stores of layout 1), so that the nightly snapshot reads a day in key order
//!   (the few over 256 bytes are kept apart from the keys: fjall's
//!   key-value separation);
//! - `progress`: `group NUL topic NUL partition` (big-endian) → the next
//!   offset (big-endian) whose records are not all stored yet.
//!
//! Layouts, oldest first (each is still read): 1, JSON documents and
//! sessions by id; 2, binary sessions keyed by day; 3, binary transactions
//! under their id, the by-day index holding a copy; 4 (written now), each
//! transaction once, in its by-day entry, and binary summaries.
//!
//! A batch of transactions, its index entries and the updated summaries are
//! committed in one atomic write batch; writers are serialised, and a
//! transaction already present is skipped, so a retried batch changes
//! nothing.

use crate::doc::{
    CategoryDay, Customer, DocCounts, DocumentStore, HistoryLine, PaymentShare, Progress,
    TransactionsPut,
};
use crate::queries;
use crate::{Result, StoreError};
use chrono::{NaiveDate, NaiveDateTime};
use fjall::{Keyspace, PersistMode};
use schemas::{
    CartItem, Category, ConversionStatus, CustomerValue, DeadLetter, DeviceInfo, DeviceType,
    LineItem, PaymentMethod, Product, PurchaseSummary, Session, Transaction, User,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stage::fsio::Durability;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The embedded document store.
pub struct EmbeddedDocStore {
    path: PathBuf,
    users: Keyspace,
    products: Keyspace,
    categories: Keyspace,
    transactions: Keyspace,
    by_category: Keyspace,
    by_user: Keyspace,
    summaries: Keyspace,
    by_day: Keyspace,
    dead: Keyspace,
    values: Keyspace,
    session_docs: Keyspace,
    progress: Keyspace,
    /// The 64-bit fingerprints of the stored sessions' ids: see
    /// [`SessionIds`]. Built on the first [`DocumentStore::put_sessions`].
    session_ids: Mutex<Option<SessionIds>>,
    /// Whether the keyspaces it creates compress their blocks.
    compress: bool,
    durability: Durability,
    /// Serialises the writers, and holds the purchase summaries they wrote.
    writer: Mutex<Summaries>,
    /// Last: dropped after the keyspaces above ([`crate::Db`]).
    db: crate::Db,
}

/// The stored sessions' ids, as the XXH3-64 of each, in memory: how a
/// session sent again (a replayed batch: no conflict) is told from another
/// session under a stored id (dead-lettered), without an index in the store.
/// A session id index in fjall (id → start time, random keys) made the
/// main job 23% slower in wall time and 20% in CPU (`scripts/ab.py -n 3`,
/// alternated); this set costs a hash lookup per session and 9 bytes per
/// bucket (about 36 MiB for the default shop's 2 million sessions). A
/// fingerprint met again is checked against the store: the same id and
/// start time name one `session_docs` entry, whose bytes must be equal;
/// no entry there means the id was stored with another start time. Two
/// ids sharing a fingerprint (odds about 1 in 10 million at 2 million
/// sessions) would be taken for one, and the later session dead-lettered.
#[derive(Default)]
struct SessionIds(std::collections::HashSet<u64>);

impl SessionIds {
    fn fingerprint(id: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(id.as_bytes())
    }

    /// Every session id `session_docs` holds (its keys end with the id).
    fn of(session_docs: &Keyspace) -> Result<Self> {
        let mut ids = std::collections::HashSet::new();
        for kv in session_docs.iter() {
            let k = kv.key()?;
            let id = k.splitn(3, |&b| b == 0).nth(2).ok_or_else(|| {
                StoreError::corrupt(format!("session key {:?}", String::from_utf8_lossy(&k)))
            })?;
            ids.insert(xxhash_rust::xxh3::xxh3_64(id));
        }
        Ok(SessionIds(ids))
    }
}

/// The purchase summaries last written, by user: what `purchase_summaries`
/// holds for them, so that a transaction's summary update does not look
/// its user up in the store (2.5% of ingest's CPU). Filled only after a
/// commit succeeds; emptied when it reaches [`Summaries::MAX`] users, so it
/// stays a few MiB whatever the shop's size.
#[derive(Default)]
struct Summaries(HashMap<String, PurchaseSummary>);

impl Summaries {
    /// Users held at most (about 150 bytes each).
    const MAX: usize = 100_000;

    /// Records what a commit wrote.
    fn written<'a>(
        &mut self,
        summaries: impl ExactSizeIterator<Item = (&'a str, PurchaseSummary)>,
    ) {
        if self.0.len() + summaries.len() > Self::MAX {
            self.0.clear();
        }
        for (user, s) in summaries {
            self.0.insert(user.to_string(), s);
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn from_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// The first byte of a session stored in [`session_bytes`]' form. Sessions
/// written by an older ecomflow are JSON, whose first byte is `{`: both
/// are read.
const SESSION_V1: u8 = 1;

/// A session as `session_docs` stores it: [`SESSION_V1`], then its fields in
/// [`schemas::codec`] form (strings length first; the start time as epoch
/// seconds and nanoseconds; enums as their index; prices as their IEEE
/// bits). 175 bytes on average against 467 of JSON, and no field names to
/// parse: the nightly snapshot decodes every session of a day.
fn session_bytes(s: &Session) -> Vec<u8> {
    use schemas::codec::{put_f64, put_str, put_u64};
    let d = &s.device_info;
    let mut out = Vec::with_capacity(192);
    out.push(SESSION_V1);
    put_str(&mut out, &s.session_id);
    put_str(&mut out, &s.user_id);
    put_time(&mut out, s.start_time);
    put_u64(&mut out, u64::from(s.duration_seconds));
    put_str(&mut out, &s.referrer);
    put_u64(&mut out, d.device_type as u64);
    for text in [&d.os, &d.browser, &d.city, &d.state, &d.ip] {
        put_str(&mut out, text);
    }
    put_u64(&mut out, s.conversion_status as u64);
    put_u64(&mut out, s.viewed_products.len() as u64);
    for p in &s.viewed_products {
        put_str(&mut out, p);
    }
    put_u64(&mut out, s.cart_contents.len() as u64);
    for c in &s.cart_contents {
        put_str(&mut out, &c.product_id);
        put_u64(&mut out, u64::from(c.quantity));
        put_f64(&mut out, c.price);
    }
    out
}

/// A time as epoch seconds and nanoseconds (varints).
fn put_time(out: &mut Vec<u8>, t: NaiveDateTime) {
    let t = t.and_utc();
    schemas::codec::put_i64(out, t.timestamp());
    schemas::codec::put_u64(out, u64::from(t.timestamp_subsec_nanos()));
}

/// What [`put_time`] wrote; `what` names the record in errors.
fn get_time(d: &mut schemas::codec::Decoder<'_>, what: &str) -> Result<NaiveDateTime> {
    let secs = d.i64().map_err(|e| corrupt_in(what, e))?;
    let nanos = d.u32().map_err(|e| corrupt_in(what, e))?;
    Ok(chrono::DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| StoreError::corrupt(format!("{what}: time out of range")))?
        .naive_utc())
}

fn corrupt_in(what: &str, e: schemas::codec::DecodeError) -> StoreError {
    StoreError::corrupt(format!("{what}: {e}"))
}

/// A stored value: JSON from an older ecomflow (first byte `{`), or the
/// binary form whose first byte is `tag`, to be decoded field by field.
enum Stored<'a, T> {
    Json(T),
    Binary(schemas::codec::Decoder<'a>),
}

/// Which form `bytes` (a `what`) is in; any other first byte is an error.
fn stored<'a, T: DeserializeOwned>(bytes: &'a [u8], tag: u8, what: &str) -> Result<Stored<'a, T>> {
    match bytes.split_first() {
        Some((&first, rest)) if first == tag => {
            Ok(Stored::Binary(schemas::codec::Decoder::new(rest)))
        }
        Some((b'{', _)) => from_json(what, bytes).map(Stored::Json),
        _ => Err(StoreError::corrupt(format!("{what}: unknown encoding"))),
    }
}

/// An error if bytes of a `what` are left after its last field.
fn all_read(d: &schemas::codec::Decoder<'_>, what: &str) -> Result<()> {
    if d.done() {
        Ok(())
    } else {
        Err(StoreError::corrupt(format!(
            "{what}: bytes after the last field"
        )))
    }
}

/// The first byte of a transaction stored in [`transaction_bytes`]' form;
/// transactions written by an older ecomflow are JSON (first byte `{`).
const TRANSACTION_V1: u8 = 1;

/// A transaction as `transactions` stores it: [`TRANSACTION_V1`], then its
/// fields in [`schemas::codec`] form, as [`session_bytes`] does; the
/// payment method as its index in [`PAYMENT_METHODS`].
fn transaction_bytes(t: &Transaction) -> Vec<u8> {
    use schemas::codec::{put_f64, put_str, put_u64};
    let mut out = Vec::with_capacity(96 + 32 * t.items.len());
    out.push(TRANSACTION_V1);
    put_str(&mut out, &t.transaction_id);
    put_str(&mut out, &t.session_id);
    put_str(&mut out, &t.user_id);
    put_time(&mut out, t.timestamp);
    put_u64(&mut out, t.items.len() as u64);
    for i in &t.items {
        put_str(&mut out, &i.product_id);
        put_u64(&mut out, u64::from(i.quantity));
        put_f64(&mut out, i.unit_price);
        put_f64(&mut out, i.subtotal);
    }
    put_f64(&mut out, t.discount);
    put_f64(&mut out, t.total);
    // A match, not a search of the list: a new method does not compile
    // until it has its number.
    let method: u64 = match t.payment_method {
        PaymentMethod::CreditCard => 0,
        PaymentMethod::DebitCard => 1,
        PaymentMethod::Paypal => 2,
        PaymentMethod::MobileWallet => 3,
        PaymentMethod::BankTransfer => 4,
        PaymentMethod::Unknown => 5,
    };
    put_u64(&mut out, method);
    out
}

/// Payment methods in the order [`transaction_bytes`] numbers them (the
/// test `transactions_round_trip_and_json_from_older_stores_is_read_and_compared`
/// checks the two agree): never reorder, only append.
const PAYMENT_METHODS: [PaymentMethod; 6] = [
    PaymentMethod::CreditCard,
    PaymentMethod::DebitCard,
    PaymentMethod::Paypal,
    PaymentMethod::MobileWallet,
    PaymentMethod::BankTransfer,
    PaymentMethod::Unknown,
];

/// A transaction stored by [`transaction_bytes`] or, by an older ecomflow,
/// as JSON.
fn transaction_from(bytes: &[u8]) -> Result<Transaction> {
    const WHAT: &str = "transaction";
    let mut d = match stored(bytes, TRANSACTION_V1, WHAT)? {
        Stored::Json(v) => return Ok(v),
        Stored::Binary(d) => d,
    };
    let corrupt = |e| corrupt_in(WHAT, e);
    let transaction_id = d.str().map_err(corrupt)?;
    let session_id = d.str().map_err(corrupt)?;
    let user_id = d.str().map_err(corrupt)?;
    let timestamp = get_time(&mut d, WHAT)?;
    let n = d.count().map_err(corrupt)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(LineItem {
            product_id: d.str().map_err(corrupt)?,
            quantity: d.u32().map_err(corrupt)?,
            unit_price: d.f64().map_err(corrupt)?,
            subtotal: d.f64().map_err(corrupt)?,
        });
    }
    let discount = d.f64().map_err(corrupt)?;
    let total = d.f64().map_err(corrupt)?;
    let payment_method = usize::try_from(d.u64().map_err(corrupt)?)
        .ok()
        .and_then(|i| PAYMENT_METHODS.get(i).copied())
        .ok_or_else(|| StoreError::corrupt("transaction: payment method out of range"))?;
    all_read(&d, WHAT)?;
    Ok(Transaction {
        transaction_id,
        session_id,
        user_id,
        timestamp,
        items,
        discount,
        total,
        payment_method,
    })
}

/// The first byte of a `transactions` value that locates the transaction
/// instead of holding it: then the timestamp follows, as written in its
/// `transactions_by_day` key ([`day_key`]), and that entry holds the
/// transaction. Stored once, not twice: the id keyspace took a quarter of
/// a transaction's bytes through the journal, the memtables and compaction.
/// Stores of layout 3 and earlier hold the transaction under its id
/// ([`TRANSACTION_V1`] or JSON): both are read.
const TRANSACTION_AT: u8 = 2;

/// A `transactions` value locating `ts`'s entry in `transactions_by_day`:
/// 20 bytes for a whole-second time, which fjall keeps inline.
fn locator(ts: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ts.len());
    out.push(TRANSACTION_AT);
    out.extend_from_slice(ts.as_bytes());
    out
}

/// The first byte of a purchase summary stored in [`summary_bytes`]' form;
/// summaries written by an older ecomflow are JSON (first byte `{`).
const SUMMARY_V1: u8 = 1;

/// A purchase summary as `purchase_summaries` stores it: [`SUMMARY_V1`],
/// the count, the total and the average (IEEE bits), then each of the first
/// and last purchase times as 0 (none) or 1 and the time. 32 bytes for a
/// user with purchases in 2025 where JSON took about 147, rewritten once
/// per user and chunk of transactions.
fn summary_bytes(s: &PurchaseSummary) -> Vec<u8> {
    use schemas::codec::{put_f64, put_u64};
    let mut out = Vec::with_capacity(40);
    out.push(SUMMARY_V1);
    put_u64(&mut out, s.total_purchases);
    put_f64(&mut out, s.total_spent);
    put_f64(&mut out, s.avg_order_value);
    for t in [s.first_purchase, s.last_purchase] {
        match t {
            None => put_u64(&mut out, 0),
            Some(t) => {
                put_u64(&mut out, 1);
                put_time(&mut out, t);
            }
        }
    }
    out
}

/// A purchase summary stored by [`summary_bytes`] or, by an older
/// ecomflow, as JSON.
fn summary_from(bytes: &[u8]) -> Result<PurchaseSummary> {
    const WHAT: &str = "purchase summary";
    let mut d = match stored(bytes, SUMMARY_V1, WHAT)? {
        Stored::Json(v) => return Ok(v),
        Stored::Binary(d) => d,
    };
    let corrupt = |e| corrupt_in(WHAT, e);
    let total_purchases = d.u64().map_err(corrupt)?;
    let total_spent = d.f64().map_err(corrupt)?;
    let avg_order_value = d.f64().map_err(corrupt)?;
    let mut time = || -> Result<Option<NaiveDateTime>> {
        match d.u64().map_err(corrupt)? {
            0 => Ok(None),
            1 => get_time(&mut d, WHAT).map(Some),
            _ => Err(StoreError::corrupt("purchase summary: bad time flag")),
        }
    };
    let first_purchase = time()?;
    let last_purchase = time()?;
    all_read(&d, WHAT)?;
    Ok(PurchaseSummary {
        total_purchases,
        total_spent,
        avg_order_value,
        first_purchase,
        last_purchase,
    })
}

/// A session stored by [`session_bytes`] or, by an older ecomflow, as JSON.
fn session_from(bytes: &[u8]) -> Result<Session> {
    let mut d = match stored(bytes, SESSION_V1, "session")? {
        Stored::Json(v) => return Ok(v),
        Stored::Binary(d) => d,
    };
    let corrupt = |e| corrupt_in("session", e);
    let session_id = d.str().map_err(corrupt)?;
    let user_id = d.str().map_err(corrupt)?;
    let start_time = get_time(&mut d, "session")?;
    let duration_seconds = d.u32().map_err(corrupt)?;
    let referrer = d.str().map_err(corrupt)?;
    let device_type = match d.u64().map_err(corrupt)? {
        i if i < DeviceType::EVERY.len() as u64 => DeviceType::EVERY[i as usize],
        _ => return Err(StoreError::corrupt("session: device type out of range")),
    };
    let device_info = DeviceInfo {
        device_type,
        os: d.str().map_err(corrupt)?,
        browser: d.str().map_err(corrupt)?,
        city: d.str().map_err(corrupt)?,
        state: d.str().map_err(corrupt)?,
        ip: d.str().map_err(corrupt)?,
    };
    let conversion_status = match d.u64().map_err(corrupt)? {
        0 => ConversionStatus::Converted,
        1 => ConversionStatus::Abandoned,
        2 => ConversionStatus::Browsed,
        _ => return Err(StoreError::corrupt("session: status out of range")),
    };
    let viewed = d.count().map_err(corrupt)?;
    let viewed_products = (0..viewed)
        .map(|_| d.str().map_err(corrupt))
        .collect::<Result<Vec<_>>>()?;
    let carted = d.count().map_err(corrupt)?;
    let mut cart_contents = Vec::with_capacity(carted);
    for _ in 0..carted {
        let product_id = d.str().map_err(corrupt)?;
        let quantity = d.u32().map_err(corrupt)?;
        cart_contents.push(CartItem {
            product_id,
            quantity,
            price: d.f64().map_err(corrupt)?,
        });
    }
    all_read(&d, "session")?;
    Ok(Session {
        session_id,
        user_id,
        start_time,
        duration_seconds,
        referrer,
        device_info,
        conversion_status,
        viewed_products,
        cart_contents,
    })
}

fn all_values<T: DeserializeOwned>(ks: &Keyspace, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for kv in ks.iter() {
        let (_, v) = kv.into_inner()?;
        out.push(from_json(what, &v)?);
    }
    Ok(out)
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

/// `YYYY-MM-DD NUL timestamp NUL id`: a record's key in a by-day keyspace
/// (`transactions_by_day`, `session_docs`), in time order within a day;
/// `ts` is the timestamp as stored ([`schemas::time::format`]).
fn day_key(ts: &str, id: &[u8]) -> Vec<u8> {
    day_key_bytes(ts.as_bytes(), id)
}

/// [`day_key`] of a timestamp read back as bytes.
fn day_key_bytes(ts: &[u8], id: &[u8]) -> Vec<u8> {
    key(&[ts.get(..10).unwrap_or_default(), ts, id])
}

/// The prefix of `day`'s keys in a by-day keyspace ([`day_key`]).
fn day_prefix(day: NaiveDate) -> Vec<u8> {
    key(&[day.format("%Y-%m-%d").to_string().as_bytes(), b""])
}

/// The days of a keyspace whose keys start with `YYYY-MM-DD`, ascending: a
/// skip scan, one seek per day, not one step per key.
fn days_of(ks: &Keyspace) -> Result<Vec<NaiveDate>> {
    let mut days = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    while let Some(kv) = ks.range(from.clone()..).next() {
        let k = kv.key()?;
        let day = k.get(..10).unwrap_or_default();
        let text = String::from_utf8_lossy(day);
        let parsed = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map_err(|e| StoreError::corrupt(format!("day index key {text:?}: {e}")))?;
        days.push(parsed);
        from = day.to_vec();
        from.push(1);
    }
    Ok(days)
}

impl EmbeddedDocStore {
    /// Opens (or creates) the store in `path`, durable on a process crash.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Durability::Process)
    }

    /// Opens (or creates) the store in `path`. With
    /// [`Durability::Machine`], [`DocumentStore::put_progress`] syncs the
    /// journal (and with it every write before it).
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self> {
        Self::open_compressed(path, durability, false)
    }

    /// [`EmbeddedDocStore::open_with`]; with `compress`, the keyspaces it
    /// creates compress their blocks ([`crate::keyspace_options`]).
    pub fn open_compressed(path: &Path, durability: Durability, compress: bool) -> Result<Self> {
        let db = crate::open_fjall(path)?;
        let ks = |name: &str| db.keyspace(name, || crate::keyspace_options(compress));
        let store = EmbeddedDocStore {
            users: ks("users")?,
            products: ks("products")?,
            categories: ks("categories")?,
            transactions: ks("transactions")?,
            by_category: ks("products_by_category")?,
            by_user: ks("transactions_by_user")?,
            summaries: ks("purchase_summaries")?,
            by_day: ks("transactions_by_day")?,
            dead: ks("dead_letters")?,
            values: ks("customer_values")?,
            session_docs: db.keyspace("session_docs", || {
                crate::document_keyspace_options(compress)
            })?,
            session_ids: Mutex::new(None),
            progress: ks("progress")?,
            compress,
            durability,
            writer: Mutex::new(Summaries::default()),
            path: path.to_path_buf(),
            db,
        };
        store.migrate_sessions_by_id()?;
        // Indexes that nothing reads any more, in stores of layouts 1 and 2:
        // dropped. `products_by_active` held the active flag; `session_ids`
        // mapped a session id to its whole key in `session_docs`.
        for unused in ["products_by_active", "session_ids"] {
            if store.db.keyspace_exists(unused) {
                let ks = store
                    .db
                    .keyspace(unused, || crate::keyspace_options(false))?;
                store.db.delete_keyspace(ks)?;
            }
        }
        Ok(store)
    }

    /// A store written before sessions were keyed by day kept them in the
    /// keyspace `sessions`, by id: they are moved to `session_docs` (in
    /// write batches of 10,000, each with its deletions) and the old
    /// keyspace is dropped. A crash midway leaves the rest for the next
    /// open; storing a session twice is idempotent.
    fn migrate_sessions_by_id(&self) -> Result<()> {
        const OLD: &str = "sessions";
        if !self.db.keyspace_exists(OLD) {
            return Ok(());
        }
        let old = self
            .db
            .keyspace(OLD, || crate::document_keyspace_options(self.compress))?;
        let mut moved = 0u64;
        loop {
            let mut sessions = Vec::new();
            let mut keys = Vec::new();
            for kv in old.iter().take(10_000) {
                let (k, v) = kv.into_inner()?;
                sessions.push(from_json::<Session>("session", &v)?);
                keys.push(k);
            }
            if keys.is_empty() {
                break;
            }
            let _w = self.lock();
            let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
            self.add_sessions(&mut batch, &sessions);
            for k in &keys {
                batch.remove(&old, k.to_vec());
            }
            batch.commit()?;
            moved += keys.len() as u64;
        }
        self.db.persist(crate::persist_mode(Durability::Machine))?;
        self.db.delete_keyspace(old)?;
        if moved > 0 {
            tracing::info!(
                sessions = moved,
                "Moved the sessions of an older document store to the by-day layout."
            );
        }
        Ok(())
    }

    /// The bytes of the transaction stored under `id`: from the day's
    /// entry its [`locator`] names, or, in a store of layout 3 or
    /// earlier, the value itself.
    fn stored_transaction(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let Some(v) = self.transactions.get(id)? else {
            return Ok(None);
        };
        let Some(ts) = v.strip_prefix(&[TRANSACTION_AT]) else {
            return Ok(Some(v.to_vec()));
        };
        match self.by_day.get(day_key_bytes(ts, id.as_bytes()))? {
            Some(b) if !b.is_empty() => Ok(Some(b.to_vec())),
            _ => Err(StoreError::corrupt(format!(
                "transaction {id}: the day entry its id locates is missing"
            ))),
        }
    }

    fn add_sessions(&self, batch: &mut fjall::OwnedWriteBatch, items: &[Session]) {
        for item in items {
            let k = day_key(
                &schemas::time::format(item.start_time),
                item.session_id.as_bytes(),
            );
            batch.insert(&self.session_docs, k, session_bytes(item));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Summaries> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DocumentStore for EmbeddedDocStore {
    fn describe(&self) -> String {
        format!("embedded document store at {}", self.path.display())
    }

    // The four daily queries: their definitions, over the plain reads.
    fn revenue_by_category(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<CategoryDay>> {
        queries::revenue_by_category(self, from, to)
    }

    fn top_customers(&self, limit: usize) -> Result<Vec<Customer>> {
        queries::top_customers(self, limit)
    }

    fn payment_mix(&self) -> Result<Vec<PaymentShare>> {
        queries::payment_mix(self)
    }

    fn purchase_history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryLine>> {
        queries::purchase_history(self, user_id, limit)
    }

    fn upsert_categories(&self, items: &[Category]) -> Result<()> {
        let _w = self.lock();
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for c in items {
            batch.insert(&self.categories, c.category_id.as_bytes(), to_json(c));
        }
        batch.commit()?;
        Ok(())
    }

    fn upsert_products(&self, items: &[Product]) -> Result<()> {
        let _w = self.lock();
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for p in items {
            let id = p.product_id.as_bytes();
            if let Some(old) = self.products.get(id)? {
                let old: Product = from_json("product", &old)?;
                batch.remove(&self.by_category, key(&[old.category_id.as_bytes(), id]));
            }
            batch.insert(&self.products, id, to_json(p));
            batch.insert(&self.by_category, key(&[p.category_id.as_bytes(), id]), b"");
        }
        batch.commit()?;
        Ok(())
    }

    fn upsert_users(&self, items: &[User]) -> Result<()> {
        let _w = self.lock();
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for u in items {
            let profile = User {
                purchase_summary: PurchaseSummary::default(),
                ..u.clone()
            };
            batch.insert(&self.users, u.user_id.as_bytes(), to_json(&profile));
        }
        batch.commit()?;
        Ok(())
    }

    fn put_transactions_checked(&self, items: &[Transaction]) -> Result<TransactionsPut> {
        let mut w = self.lock();
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        let mut summaries: HashMap<&str, PurchaseSummary> = HashMap::new();
        // Id -> the bytes stored (or about to be) under it in this batch.
        let mut seen: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut out = TransactionsPut::default();
        for (i, t) in items.iter().enumerate() {
            let id = t.transaction_id.as_str();
            let bytes = transaction_bytes(t);
            let earlier = match seen.get(id) {
                Some(b) => Some(b.clone()),
                None => self.stored_transaction(id)?,
            };
            if let Some(stored) = earlier {
                // Stored by an older ecomflow as JSON: compared as values.
                let same = stored == bytes
                    || (stored.first() == Some(&b'{') && transaction_from(&stored)? == *t);
                if !same {
                    out.conflicts.push(i);
                }
                seen.entry(id).or_insert(stored);
                continue;
            }
            out.new += 1;
            let ts = schemas::time::format(t.timestamp);
            // The day's index holds the transaction, so that the nightly
            // snapshot reads a day in one scan; the id locates it there.
            batch.insert(&self.transactions, id, locator(&ts));
            batch.insert(
                &self.by_user,
                key(&[t.user_id.as_bytes(), ts.as_bytes(), id.as_bytes()]),
                b"",
            );
            batch.insert(&self.by_day, day_key(&ts, id.as_bytes()), bytes.as_slice());
            seen.insert(id, bytes);
            let summary = match summaries.entry(t.user_id.as_str()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let current = match w.0.get(t.user_id.as_str()) {
                        Some(s) => s.clone(),
                        None => match self.summaries.get(t.user_id.as_bytes())? {
                            Some(v) => summary_from(&v)?,
                            None => PurchaseSummary::default(),
                        },
                    };
                    e.insert(current)
                }
            };
            summary.add(t);
        }
        for (user, s) in &summaries {
            batch.insert(&self.summaries, user.as_bytes(), summary_bytes(s));
        }
        batch.commit()?;
        w.written(summaries.into_iter());
        Ok(out)
    }

    fn user(&self, user_id: &str) -> Result<Option<User>> {
        let Some(v) = self.users.get(user_id)? else {
            return Ok(None);
        };
        let mut user: User = from_json("user", &v)?;
        if let Some(s) = self.summaries.get(user_id)? {
            user.purchase_summary = summary_from(&s)?;
        }
        Ok(Some(user))
    }

    fn product(&self, product_id: &str) -> Result<Option<Product>> {
        self.products
            .get(product_id)?
            .map(|v| from_json("product", &v))
            .transpose()
    }

    fn products_in_category(&self, category_id: &str) -> Result<Vec<String>> {
        let prefix = key(&[category_id.as_bytes(), b""]);
        self.by_category
            .prefix(&prefix)
            .map(|kv| Ok(String::from_utf8_lossy(&kv.key()?[prefix.len()..]).into_owned()))
            .collect()
    }

    fn transaction(&self, transaction_id: &str) -> Result<Option<Transaction>> {
        self.stored_transaction(transaction_id)?
            .map(|v| transaction_from(&v))
            .transpose()
    }

    fn user_transactions(
        &self,
        user_id: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Transaction>> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = key(&[user_id.as_bytes(), schemas::time::format(from).as_bytes()]);
        // Keys are `user NUL timestamp NUL id` with fixed-width timestamps:
        // `user NUL to \x01` sorts after every key at `to` and before any later.
        let mut stop = key(&[user_id.as_bytes(), schemas::time::format(to).as_bytes()]);
        stop.push(1);
        let mut out = Vec::new();
        for kv in self.by_user.range(start..stop) {
            let k = kv.key()?;
            // `user NUL ts NUL id`: the day's entry is read directly.
            let rest = k.get(user_id.len()..).unwrap_or_default();
            let mut parts = rest.split(|b| *b == 0).skip(1);
            let (Some(ts), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(StoreError::corrupt("transactions_by_user: malformed key"));
            };
            let entry = self.by_day.get(day_key_bytes(ts, id))?;
            let bytes = match entry {
                Some(v) if !v.is_empty() => Some(v.to_vec()),
                // Layout 2 and earlier: the day's entry is empty.
                _ => self.stored_transaction(&String::from_utf8_lossy(id))?,
            };
            if let Some(b) = bytes {
                out.push(transaction_from(&b)?);
            }
        }
        Ok(out)
    }

    fn counts(&self) -> Result<DocCounts> {
        Ok(DocCounts {
            users: self.users.len()? as u64,
            products: self.products.len()? as u64,
            categories: self.categories.len()? as u64,
            transactions: self.transactions.len()? as u64,
        })
    }

    fn all_users(&self) -> Result<Vec<User>> {
        let mut out = Vec::new();
        for kv in self.users.iter() {
            let (k, v) = kv.into_inner()?;
            let mut user: User = from_json("user", &v)?;
            if let Some(s) = self.summaries.get(&k)? {
                user.purchase_summary = summary_from(&s)?;
            }
            out.push(user);
        }
        Ok(out)
    }

    fn all_products(&self) -> Result<Vec<Product>> {
        all_values(&self.products, "product")
    }

    fn all_categories(&self) -> Result<Vec<Category>> {
        all_values(&self.categories, "category")
    }

    fn transaction_days(&self) -> Result<Vec<NaiveDate>> {
        days_of(&self.by_day)
    }

    fn transactions_on(&self, day: NaiveDate) -> Result<Vec<Transaction>> {
        let prefix = day_prefix(day);
        let mut out = Vec::new();
        for kv in self.by_day.prefix(&prefix) {
            let (k, v) = kv.into_inner()?;
            if !v.is_empty() {
                out.push(transaction_from(&v)?);
                continue;
            }
            // Layout 2 and earlier: the index holds only the id.
            let id = k.rsplit(|b| *b == 0).next().unwrap_or_default();
            if let Some(t) = self.transactions.get(id)? {
                out.push(transaction_from(&t)?);
            }
        }
        Ok(out)
    }

    fn put_dead_letters(&self, items: &[DeadLetter]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let _w = self.lock();
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for d in items {
            let k = key(&[
                d.source_topic.as_bytes(),
                &d.partition.to_be_bytes(),
                &d.offset.to_be_bytes(),
            ]);
            batch.insert(&self.dead, k, to_json(d));
        }
        batch.commit()?;
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        all_values(&self.dead, "dead letter")
    }

    fn put_customer_values(&self, items: &[CustomerValue]) -> Result<()> {
        let _w = self.lock();
        for chunk in items.chunks(10_000) {
            let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
            for v in chunk {
                batch.insert(&self.values, v.user_id.as_bytes(), to_json(v));
            }
            batch.commit()?;
        }
        Ok(())
    }

    fn customer_value(&self, user_id: &str) -> Result<Option<CustomerValue>> {
        self.values
            .get(user_id)?
            .map(|v| from_json("customer value", &v))
            .transpose()
    }

    fn put_sessions(&self, items: &[Session]) -> Result<Vec<usize>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // One writer at a time: two workers must not both find an id free.
        let mut ids = self.session_ids.lock().unwrap_or_else(|e| e.into_inner());
        let known = match &mut *ids {
            Some(known) => known,
            unset => unset.insert(SessionIds::of(&self.session_docs)?),
        };
        // Key and bytes of each session about to be stored, and each one's
        // place there by id.
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut added = Vec::new();
        let mut conflicts = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let id = item.session_id.as_str();
            let bytes = session_bytes(item);
            let ts = schemas::time::format(item.start_time);
            let k = day_key(&ts, id.as_bytes());
            let fingerprint = SessionIds::fingerprint(id);
            let earlier = match seen.get(id) {
                Some(&row) => Some(rows.get(row).map(|(_, b)| b.clone())),
                None if known.0.contains(&fingerprint) => {
                    Some(self.session_docs.get(&k)?.map(|b| b.to_vec()))
                }
                None => None,
            };
            match earlier {
                // Stored by an older ecomflow as JSON: compared as values.
                Some(Some(stored))
                    if stored == bytes
                        || (stored.first() == Some(&b'{') && session_from(&stored)? == *item) => {}
                Some(_) => conflicts.push(i),
                None => {
                    seen.insert(id, rows.len());
                    rows.push((k, bytes));
                    added.push(fingerprint);
                }
            }
        }
        crate::put_rows(&self.db, &self.session_docs, rows)?;
        known.0.extend(added);
        Ok(conflicts)
    }

    fn session_days(&self) -> Result<Vec<NaiveDate>> {
        days_of(&self.session_docs)
    }

    fn sessions_on(&self, day: NaiveDate) -> Result<Vec<Session>> {
        let prefix = day_prefix(day);
        let mut out = Vec::new();
        for kv in self.session_docs.prefix(&prefix) {
            let (_, v) = kv.into_inner()?;
            out.push(session_from(&v)?);
        }
        Ok(out)
    }

    fn put_progress(&self, group: &str, offsets: &Progress) -> Result<()> {
        let _w = self.lock();
        let mut batch = self
            .db
            .batch()
            .durability(Some(crate::persist_mode(self.durability)));
        for ((topic, partition), next) in offsets {
            batch.insert(
                &self.progress,
                key(&[group.as_bytes(), topic.as_bytes(), &partition.to_be_bytes()]),
                next.to_be_bytes(),
            );
        }
        batch.commit()?;
        Ok(())
    }

    fn progress(&self, group: &str) -> Result<Progress> {
        let mut prefix = group.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Progress::new();
        for kv in self.progress.prefix(&prefix) {
            let (k, v) = kv.into_inner()?;
            let bad =
                || StoreError::corrupt(format!("progress entry {:?}", String::from_utf8_lossy(&k)));
            let rest = k.get(prefix.len()..).ok_or_else(bad)?;
            let (topic, partition) = match rest.len().checked_sub(5) {
                Some(n) if rest[n] == 0 => (&rest[..n], &rest[n + 1..]),
                _ => return Err(bad()),
            };
            let topic = std::str::from_utf8(topic).map_err(|_| bad())?;
            let partition = u32::from_be_bytes(partition.try_into().map_err(|_| bad())?);
            let next = u64::from_be_bytes((&*v).try_into().map_err(|_| bad())?);
            out.insert((topic.to_string(), partition), next);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(id: &str, user: &str, at: &str, total: f64) -> Transaction {
        serde_json::from_value(serde_json::json!({
            "transaction_id": id, "session_id": "sess_1", "user_id": user,
            "timestamp": at,
            "items": [{"product_id": "prod_00001", "quantity": 1,
                       "unit_price": total, "subtotal": total}],
            "discount": 0.0, "total": total, "payment_method": "credit_card"
        }))
        .expect("transaction")
    }

    fn summary(store: &EmbeddedDocStore, user: &str) -> (u64, f64, f64) {
        let s = store
            .user(user)
            .expect("user")
            .expect("exists")
            .purchase_summary;
        (s.total_purchases, s.total_spent, s.avg_order_value)
    }

    #[test]
    fn summaries_are_carried_over_batches_and_reopens() {
        let dir = tempfile::tempdir().expect("tmp");
        let user = User {
            user_id: "user_000001".into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            geo_data: schemas::GeoData {
                city: "Kigali".into(),
                state: "Kigali".into(),
                country: "RW".into(),
            },
            registration_date: NaiveDate::from_ymd_opt(2024, 12, 15).expect("day"),
            purchase_summary: PurchaseSummary::default(),
        };
        {
            let store = EmbeddedDocStore::open(dir.path()).expect("open");
            store
                .upsert_users(std::slice::from_ref(&user))
                .expect("user");
            let t = paid("txn_1", "user_000001", "2025-03-01T10:00:00", 10.0);
            store.put_transactions_checked(&[t]).expect("put");
            assert_eq!(summary(&store, "user_000001"), (1, 10.0, 10.0));
        }
        // The store let go of its keyspaces before the database, with
        // everything in tables: the journal is emptied.
        assert_eq!(crate::journal_bytes(dir.path()), 0);
        // A new process knows nothing in memory: it reads the stored summary.
        let store = EmbeddedDocStore::open(dir.path()).expect("reopen");
        assert!(store.lock().0.is_empty());
        let t = paid("txn_2", "user_000001", "2025-03-02T10:00:00", 5.0);
        store.put_transactions_checked(&[t]).expect("put");
        assert_eq!(summary(&store, "user_000001"), (2, 15.0, 7.5));
        // Then from memory, as stored: 15.00 + 2.50 over 3 orders.
        assert_eq!(store.lock().0["user_000001"].total_purchases, 2);
        let t = paid("txn_3", "user_000001", "2025-03-03T10:00:00", 2.5);
        store.put_transactions_checked(&[t]).expect("put");
        assert_eq!(summary(&store, "user_000001"), (3, 17.5, 5.83));
        // A transaction already stored changes neither.
        let t = paid("txn_3", "user_000001", "2025-03-03T10:00:00", 2.5);
        store.put_transactions_checked(&[t]).expect("put");
        assert_eq!(summary(&store, "user_000001"), (3, 17.5, 5.83));
        assert_eq!(store.lock().0["user_000001"].total_purchases, 3);
    }

    #[test]
    fn the_summaries_held_in_memory_are_bounded() {
        let mut held = Summaries::default();
        let names: Vec<String> = (0..Summaries::MAX).map(|i| format!("u{i}")).collect();
        held.written(
            names
                .iter()
                .map(|n| (n.as_str(), PurchaseSummary::default())),
        );
        assert_eq!(held.0.len(), Summaries::MAX);
        // Full: emptied before the next commit's users go in.
        held.written(
            ["a", "b"]
                .into_iter()
                .map(|n| (n, PurchaseSummary::default())),
        );
        assert_eq!(held.0.len(), 2);
    }

    /// The codec against postcard (serde's compact varint format, from the
    /// derives the records already have) on 200,000 sessions shaped like
    /// the default shop's: bytes and time to encode and to decode. A
    /// benchmark that prints; run it with `cargo test -p stores --release
    /// --lib codec_against_postcard -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures, asserts only that both round-trip"]
    fn codec_against_postcard() {
        use std::time::Instant;
        let mut seed = 42u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let sessions: Vec<Session> = (0..200_000)
            .map(|i| {
                let mut s = session(&format!("sess_{i:010x}"), "2025-03-12T08:00:00");
                s.user_id = format!("user_{:06}", next(10_000));
                s.start_time += chrono::Duration::seconds(next(86_400) as i64);
                s.duration_seconds = next(1_800) as u32;
                s.viewed_products = (0..1 + next(8))
                    .map(|_| format!("prod_{:05}", next(5_000)))
                    .collect();
                s.cart_contents = (0..next(3))
                    .map(|_| schemas::CartItem {
                        product_id: format!("prod_{:05}", next(5_000)),
                        quantity: 1 + next(3) as u32,
                        price: 1.0 + next(50_000) as f64 / 100.0,
                    })
                    .collect();
                s
            })
            .collect();
        let time = |what: &str, f: &mut dyn FnMut() -> usize| {
            let mut best = f64::MAX;
            let mut size = 0;
            for _ in 0..5 {
                let t = Instant::now();
                size = f();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{what:>16}: {:6.0} ns per session, {:5.1} bytes per session",
                best * 1e9 / sessions.len() as f64,
                size as f64 / sessions.len() as f64
            );
        };
        let ours: Vec<Vec<u8>> = sessions.iter().map(session_bytes).collect();
        let theirs: Vec<Vec<u8>> = sessions
            .iter()
            .map(|s| postcard::to_allocvec(s).expect("postcard"))
            .collect();
        time("codec encode", &mut || {
            sessions.iter().map(|s| session_bytes(s).len()).sum()
        });
        time("postcard encode", &mut || {
            sessions
                .iter()
                .map(|s| postcard::to_allocvec(s).expect("postcard").len())
                .sum()
        });
        time("codec decode", &mut || {
            for b in &ours {
                std::hint::black_box(session_from(b).expect("codec"));
            }
            ours.iter().map(Vec::len).sum()
        });
        time("postcard decode", &mut || {
            for b in &theirs {
                std::hint::black_box(postcard::from_bytes::<Session>(b).expect("postcard"));
            }
            theirs.iter().map(Vec::len).sum()
        });
        for (i, s) in sessions.iter().enumerate().step_by(997) {
            assert_eq!(&session_from(&ours[i]).expect("codec"), s);
            assert_eq!(
                &postcard::from_bytes::<Session>(&theirs[i]).expect("postcard"),
                s
            );
        }
    }

    fn session(id: &str, start: &str) -> Session {
        serde_json::from_value(serde_json::json!({
            "session_id": id, "user_id": "user_000001", "start_time": start,
            "duration_seconds": 60, "referrer": "direct",
            "device_info": {"type": "mobile", "os": "iOS", "browser": "Safari",
                            "city": "Austin", "state": "TX", "ip": "10.0.0.1"},
            "conversion_status": "browsed", "viewed_products": ["prod_00001"],
            "cart_contents": []
        }))
        .expect("session")
    }

    #[test]
    fn an_older_store_has_its_sessions_moved_to_the_by_day_layout_and_the_unused_indexes_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (
            session("sess_b", "2025-03-12T08:00:00"),
            session("sess_a", "2025-03-12T09:00:00"),
        );
        let day = NaiveDate::from_ymd_opt(2025, 3, 12).expect("day");
        {
            // What an older ecomflow wrote: the keyspace `sessions`, by id,
            // and two indexes nothing reads now.
            let db = crate::open_fjall(dir.path()).expect("db");
            let old = db
                .keyspace("sessions", || crate::document_keyspace_options(false))
                .expect("keyspace");
            for s in [&a, &b] {
                old.insert(s.session_id.as_bytes(), to_json(s))
                    .expect("insert");
            }
            for (name, k, v) in [
                ("products_by_active", &b"1\0prod_00001"[..], &b""[..]),
                ("session_ids", b"sess_a", b"2025-03-12\0..."),
            ] {
                let unused = db
                    .keyspace(name, || crate::keyspace_options(false))
                    .expect("keyspace");
                unused.insert(k, v).expect("insert");
            }
            db.persist(PersistMode::SyncAll).expect("persist");
        }
        let store = EmbeddedDocStore::open(dir.path()).expect("open");
        assert_eq!(
            store.sessions_on(day).expect("day"),
            vec![a.clone(), b.clone()]
        );
        for gone in ["sessions", "products_by_active", "session_ids"] {
            assert!(!store.db.keyspace_exists(gone), "{gone}");
        }
        drop(store);
        // Opened again: nothing to move, the sessions stay.
        let store = EmbeddedDocStore::open(dir.path()).expect("reopen");
        assert_eq!(store.sessions_on(day).expect("day"), vec![a.clone(), b]);
        assert_eq!(store.counts().expect("counts").users, 0);
        // Their ids are known: the same session again is nothing, another
        // under its id (other content, or another start) a conflict.
        let mut other = a.clone();
        other.duration_seconds += 1;
        let mut later = a.clone();
        later.start_time += chrono::Duration::hours(30);
        assert_eq!(
            store.put_sessions(&[a, other, later]).expect("put"),
            vec![1, 2]
        );
    }

    #[test]
    fn a_session_is_stored_in_the_compact_form_byte_for_byte() {
        let mut s = session("s", "1970-01-01T00:00:01");
        s.user_id = "u".into();
        s.referrer = "d".into();
        s.device_info = DeviceInfo {
            device_type: DeviceType::Tablet,
            os: "o".into(),
            browser: "b".into(),
            city: "c".into(),
            state: "t".into(),
            ip: "i".into(),
        };
        s.viewed_products = vec!["p".into()];
        s.cart_contents = vec![CartItem {
            product_id: "p".into(),
            quantity: 2,
            price: 1.5,
        }];
        let mut want = vec![
            SESSION_V1, 1, b's', 1, b'u', // ids
            2, 0, 60, // 1 s (zigzag 2), 0 ns, 60 s long
            1, b'd', 2, // referrer, tablet
            1, b'o', 1, b'b', 1, b'c', 1, b't', 1, b'i', // device
            2,    // browsed
            1, 1, b'p', // viewed
            1, 1, b'p', 2, // cart: one line, 2 units
        ];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]); // 1.5
        assert_eq!(session_bytes(&s), want);
        assert_eq!(session_from(&want).expect("decode"), s);
    }

    #[test]
    fn sessions_round_trip_in_every_variant_and_json_from_older_stores_is_read() {
        let mut sessions = Vec::new();
        for (i, device_type) in DeviceType::EVERY.into_iter().enumerate() {
            for status in [
                ConversionStatus::Converted,
                ConversionStatus::Abandoned,
                ConversionStatus::Browsed,
            ] {
                let mut s = session(&format!("sess_{i}"), "2025-03-12T08:00:00");
                s.device_info.device_type = device_type;
                s.device_info.city = "São Paulo".into();
                s.conversion_status = status;
                sessions.push(s);
            }
        }
        let mut odd = session("sess_odd", "1969-12-31T23:59:59.123456789");
        odd.duration_seconds = u32::MAX;
        odd.viewed_products.clear();
        odd.cart_contents = vec![CartItem {
            product_id: "prod_00001".into(),
            quantity: 3,
            price: 0.1 + 0.2,
        }];
        sessions.push(odd);
        for s in &sessions {
            let bytes = session_bytes(s);
            assert_eq!(&session_from(&bytes).expect("decode"), s);
            let json = to_json(s);
            assert!(
                bytes.len() * 2 < json.len(),
                "{} vs {}",
                bytes.len(),
                json.len()
            );
            assert_eq!(&session_from(&json).expect("json"), s);
        }
    }

    #[test]
    fn a_transaction_is_stored_in_the_compact_form_byte_for_byte() {
        let mut t = paid("t", "u", "1970-01-01T00:00:01", 1.5);
        t.session_id = "s".into();
        t.items[0].product_id = "p".into();
        t.items[0].quantity = 3;
        t.payment_method = PaymentMethod::Paypal;
        let mut want = vec![
            TRANSACTION_V1,
            1,
            b't',
            1,
            b's',
            1,
            b'u', // ids
            2,
            0, // 1 s (zigzag 2), 0 ns
            1,
            1,
            b'p',
            3, // one line: product, 3 units
        ];
        let f = |v: f64| v.to_bits().to_le_bytes();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]); // unit price 1.5
        want.extend_from_slice(&f(1.5)); // subtotal
        want.extend_from_slice(&[0; 8]); // discount 0.0
        want.extend_from_slice(&f(1.5)); // total
        want.push(2); // PayPal
        assert_eq!(transaction_bytes(&t), want);
        assert_eq!(transaction_from(&want).expect("decode"), t);
        // 1 + 6 (ids) + 2 (time) + 5 (line) + 32 (four prices) + 1 = 46
        // bytes, where JSON takes more than four times as many.
        assert_eq!(want.len(), 46);
        assert!(serde_json::to_vec(&t).expect("json").len() > 4 * 46);
    }

    #[test]
    fn transactions_round_trip_and_json_from_older_stores_is_read_and_compared() {
        for (i, m) in PAYMENT_METHODS.into_iter().enumerate() {
            let mut t = paid(
                &format!("txn_{i}"),
                "user_000001",
                "1969-12-31T23:59:59.25",
                0.1 + 0.2,
            );
            t.payment_method = m;
            t.discount = 0.05;
            t.items.push(LineItem {
                product_id: "prod_é".into(),
                quantity: u32::MAX,
                unit_price: 1e-9,
                subtotal: 12345.67,
            });
            // The method's number is the last byte, its place in the list.
            assert_eq!(transaction_bytes(&t).last(), Some(&(i as u8)));
            assert_eq!(transaction_from(&transaction_bytes(&t)).expect("decode"), t);
            let json = serde_json::to_vec(&t).expect("json");
            assert_eq!(transaction_from(&json).expect("json"), t);
        }
        // A store written by an older ecomflow: its transaction, in JSON.
        let dir = tempfile::tempdir().expect("tmp");
        let store = EmbeddedDocStore::open(dir.path()).expect("open");
        let old = paid("txn_old", "user_000001", "2025-03-01T10:00:00", 10.0);
        let json = serde_json::to_vec(&old).expect("json");
        store.transactions.insert("txn_old", json).expect("insert");
        assert_eq!(
            store.transaction("txn_old").expect("get"),
            Some(old.clone())
        );
        // Sent again: the same, not a conflict; with another total: one.
        let mut other = old.clone();
        other.total = 11.0;
        let put = store
            .put_transactions_checked(&[old.clone(), other])
            .expect("put");
        assert_eq!((put.new, put.conflicts), (0, vec![1]));
        assert_eq!(store.transaction("txn_old").expect("get"), Some(old));
        for bad in [&[9u8, 1][..], &[][..], &[TRANSACTION_V1, 1, b't'][..]] {
            assert!(matches!(transaction_from(bad), Err(StoreError::Corrupt(_))));
        }
        let mut bytes = transaction_bytes(&paid("t", "u", "2025-03-01T10:00:00", 1.0));
        let last = bytes.len() - 1;
        bytes[last] = 6; // no seventh payment method
        assert!(transaction_from(&bytes).is_err());
        bytes[last] = 0;
        bytes.push(0);
        assert!(
            transaction_from(&bytes).is_err(),
            "a byte after the last field"
        );
    }

    #[test]
    fn a_days_transactions_are_read_from_the_day_index_and_by_id_from_older_stores() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = EmbeddedDocStore::open(dir.path()).expect("open");
        // Written by an older ecomflow: an empty index entry, the
        // transaction under its id.
        let old = paid("txn_old", "user_000001", "2025-03-01T09:00:00", 10.0);
        let ts = schemas::time::format(old.timestamp);
        store
            .transactions
            .insert("txn_old", transaction_bytes(&old))
            .expect("insert");
        store
            .by_day
            .insert(day_key(&ts, b"txn_old"), b"")
            .expect("insert");
        let new = paid("txn_new", "user_000002", "2025-03-01T10:00:00", 20.0);
        let next_day = paid("txn_next", "user_000002", "2025-03-02T00:00:00", 30.0);
        store
            .put_transactions_checked(&[next_day.clone(), new.clone()])
            .expect("put");
        // The new index entry holds the very bytes stored under the id.
        let entry = store
            .by_day
            .get(day_key(&schemas::time::format(new.timestamp), b"txn_new"))
            .expect("get")
            .expect("indexed");
        assert_eq!(&*entry, transaction_bytes(&new).as_slice());
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(
            store.transactions_on(day("2025-03-01")).expect("day"),
            vec![old, new]
        );
        assert_eq!(
            store.transactions_on(day("2025-03-02")).expect("day"),
            vec![next_day]
        );
    }

    #[test]
    fn a_summary_is_stored_in_the_compact_form_byte_for_byte() {
        let t = |s: &str| schemas::time::parse(s).expect("time");
        let s = PurchaseSummary {
            total_purchases: 300,
            total_spent: 1.5,
            avg_order_value: 0.005,
            first_purchase: Some(t("1970-01-01T00:00:01")),
            last_purchase: None,
        };
        let mut want = vec![SUMMARY_V1, 0xac, 0x02]; // 300 = 44 + 2 * 128
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]); // 1.5
        want.extend_from_slice(&0.005f64.to_bits().to_le_bytes());
        want.extend_from_slice(&[1, 2, 0]); // first: 1 s (zigzag 2), 0 ns
        want.push(0); // no last purchase
        assert_eq!(summary_bytes(&s), want);
        assert_eq!(summary_from(&want).expect("decode"), s);
        let json = serde_json::to_vec(&s).expect("json");
        assert!(json.len() > 3 * want.len(), "{} bytes of JSON", json.len());
        // Both times, fractional and before 1970; and JSON from older stores.
        let both = PurchaseSummary {
            first_purchase: Some(t("1969-12-31T23:59:59.25")),
            last_purchase: Some(t("2025-03-03T10:00:00")),
            ..s
        };
        assert_eq!(summary_from(&summary_bytes(&both)).expect("decode"), both);
        assert_eq!(summary_from(&json).expect("json"), s);
        for bad in [
            &want[..want.len() - 1],
            &[&want[..], &[0]].concat()[..],
            &[&want[..want.len() - 1], &[2]].concat()[..],
            &[7, 1][..],
            &[][..],
        ] {
            assert!(matches!(summary_from(bad), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn a_transaction_is_stored_once_in_its_day_and_located_by_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = EmbeddedDocStore::open(dir.path()).expect("open");
        let t = paid("txn_a", "user_000001", "2025-03-01T10:00:00", 10.0);
        let put = store
            .put_transactions_checked(std::slice::from_ref(&t))
            .expect("put");
        assert_eq!(put.new, 1);
        // Under the id: the tag and the timestamp, 20 bytes.
        let located = store.transactions.get("txn_a").expect("get").expect("id");
        assert_eq!(&*located, b"\x022025-03-01T10:00:00");
        let entry = store
            .by_day
            .get(b"2025-03-01\x002025-03-01T10:00:00\x00txn_a")
            .expect("get")
            .expect("day entry");
        assert_eq!(&*entry, transaction_bytes(&t).as_slice());
        assert_eq!(store.transaction("txn_a").expect("get"), Some(t.clone()));
        let (from, to) = (t.timestamp, t.timestamp);
        assert_eq!(
            store
                .user_transactions("user_000001", from, to)
                .expect("user"),
            vec![t.clone()]
        );
        // The summary is stored in binary.
        let stored = |user: &str| {
            let v = store.summaries.get(user).expect("get").expect("summary");
            let s = summary_from(&v).expect("decode");
            (
                v.first().copied(),
                s.total_purchases,
                s.total_spent,
                s.avg_order_value,
            )
        };
        assert_eq!(stored("user_000001"), (Some(SUMMARY_V1), 1, 10.0, 10.0));
        // Sent again it is found through the day entry: the same, or with
        // another total a conflict; nothing is written twice.
        let mut other = t.clone();
        other.total = 11.0;
        let put = store
            .put_transactions_checked(&[t.clone(), other])
            .expect("put");
        assert_eq!((put.new, put.conflicts), (0, vec![1]));
        assert_eq!(stored("user_000001"), (Some(SUMMARY_V1), 1, 10.0, 10.0));
        // An older store's transaction under its id, its summary in JSON.
        let old = paid("txn_old", "user_000002", "2025-03-02T09:00:00", 4.0);
        store
            .transactions
            .insert("txn_old", transaction_bytes(&old))
            .expect("insert");
        store
            .by_user
            .insert(b"user_000002\x002025-03-02T09:00:00\x00txn_old", b"")
            .expect("insert");
        let json = br#"{"total_purchases":1,"total_spent":4.0,"avg_order_value":4.0,"first_purchase":"2025-03-02T09:00:00","last_purchase":"2025-03-02T09:00:00"}"#;
        store.summaries.insert("user_000002", json).expect("insert");
        assert_eq!(stored("user_000002"), (Some(b'{'), 1, 4.0, 4.0));
        assert_eq!(
            store.transaction("txn_old").expect("get"),
            Some(old.clone())
        );
        let (from, to) = (old.timestamp, old.timestamp);
        assert_eq!(
            store
                .user_transactions("user_000002", from, to)
                .expect("user"),
            vec![old]
        );
        let next = paid("txn_b", "user_000002", "2025-03-03T09:00:00", 6.0);
        store.put_transactions_checked(&[next]).expect("put");
        assert_eq!(stored("user_000002"), (Some(SUMMARY_V1), 2, 10.0, 5.0));
        // A locator whose day entry is gone is an error, not a miss.
        store
            .by_day
            .remove(b"2025-03-01\x002025-03-01T10:00:00\x00txn_a")
            .expect("remove");
        assert!(matches!(
            store.transaction("txn_a"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_corrupted_session_is_an_error() {
        let bytes = session_bytes(&session("sess_a", "2025-03-12T08:00:00"));
        for bad in [
            &bytes[..bytes.len() - 1],
            &[&bytes[..], &[0]].concat()[..],
            &[7, 1, b'x'][..],
            &[][..],
        ] {
            assert!(matches!(session_from(bad), Err(StoreError::Corrupt(_))));
        }
        let mut status = bytes.clone();
        // The status byte sits just before the viewed list (one product).
        let at = status.len() - 1 - 1 - 11 - 1;
        assert_eq!(status[at], ConversionStatus::Browsed as u8);
        status[at] = 9;
        assert!(session_from(&status).is_err());
    }
}
