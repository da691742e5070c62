//! The document store on MongoDB, through the official driver.
//!
//! Documents use their record id as `_id`, so writing a replayed record
//! overwrites it instead of duplicating it. Writes are unordered
//! multi-statement `update` commands with `upsert: true` (one round trip per
//! batch). Purchase summaries are recomputed, not incremented: after a batch
//! of transactions is stored, one `$group` aggregation over the stored
//! transactions of the users it touched gives their summaries, which one
//! more `update` writes back. A retried batch therefore yields the same
//! summaries, whatever part of it had been applied before.
//!
//! The driver is async; the store owns a small Tokio runtime and blocks on
//! it, so it can be used from the (synchronous) ingest workers. Do not call
//! it from inside an async task: use `spawn_blocking`.
//!
//! `mongodb+srv://` URIs (Atlas and other hosted clusters) resolve through
//! the driver's DNS resolver. The URI's password never leaves this module:
//! the store's description and every error carry [`crate::redact::uri`]'s
//! form of it. Collections may carry a prefix (`shop1_users`), for a
//! database shared with other applications.

use crate::doc::{DocCounts, DocumentStore, Progress, TransactionsPut};
use crate::queries::{CategoryDay, Customer, HistoryLine, PaymentShare};
use crate::{Result, StoreError};
use chrono::{NaiveDate, NaiveDateTime};
use mongodb::bson::{self, doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};
use schemas::types::round_cents;
use schemas::{
    Category, CustomerValue, DeadLetter, Product, PurchaseSummary, Session, Transaction, User,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The MongoDB document store.
pub struct MongoDocStore {
    runtime: tokio::runtime::Runtime,
    db: Database,
    name: String,
    prefix: String,
}

fn server_error(e: mongodb::error::Error) -> StoreError {
    use mongodb::error::ErrorKind;
    let retryable = matches!(
        *e.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError");
    StoreError::Server {
        server: "MongoDB",
        message: e.to_string(),
        retryable,
    }
}

fn to_doc<T: Serialize>(v: &T, id: &str) -> Result<Document> {
    let mut d = bson::to_document(v)
        .map_err(|e| StoreError::corrupt(format!("encoding a document: {e}")))?;
    d.insert("_id", id);
    Ok(d)
}

fn from_doc<T: DeserializeOwned>(what: &str, mut d: Document) -> Result<T> {
    d.remove("_id");
    bson::from_document(d).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

impl MongoDocStore {
    /// Connects to `uri` and uses database `database`, creating the indexes.
    pub fn connect(uri: &str, database: &str) -> Result<Self> {
        Self::connect_with_prefix(uri, database, "")
    }

    /// Connects as [`connect`](Self::connect) does, naming every
    /// collection `prefix` + its name. Errors never hold the URI's secrets.
    pub fn connect_with_prefix(uri: &str, database: &str, prefix: &str) -> Result<Self> {
        Self::open(uri, database, prefix).map_err(|e| crate::redact::error(e, uri))
    }

    fn open(uri: &str, database: &str, prefix: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let db = runtime.block_on(async {
            let client = Client::with_uri_str(uri).await.map_err(server_error)?;
            Ok::<_, StoreError>(client.database(database))
        })?;
        let store = MongoDocStore {
            runtime,
            db,
            name: format!("MongoDB database {database} at {}", crate::redact::uri(uri)),
            prefix: prefix.to_string(),
        };
        store.create_indexes()?;
        Ok(store)
    }

    /// The server's name of the collection `name`.
    fn collection_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(&self.collection_name(name))
    }

    /// The days of `collection`'s timestamps in `field` (text, canonical
    /// format), ascending: a skip scan over the field's index, one query
    /// per day.
    fn days_of(&self, collection: &str, field: &str) -> Result<Vec<NaiveDate>> {
        let coll = self.coll(collection);
        let mut days = Vec::new();
        let mut from = String::new();
        loop {
            let next = self
                .runtime
                .block_on(async {
                    coll.find_one(doc! {field: {"$gte": &from}})
                        .sort(doc! {field: 1})
                        .projection(doc! {field: 1})
                        .await
                })
                .map_err(server_error)?;
            let Some(d) = next else { break };
            let ts = d
                .get_str(field)
                .map_err(|e| StoreError::corrupt(format!("{collection} {field}: {e}")))?;
            let day = ts
                .get(..10)
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
                .ok_or_else(|| StoreError::corrupt(format!("{collection} {field} {ts:?}")))?;
            days.push(day);
            let (start, _) = crate::doc::day_bounds(day + chrono::Duration::days(1));
            from = fmt_ts(start);
        }
        Ok(days)
    }

    fn create_indexes(&self) -> Result<()> {
        let unique = |keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(true).build())
                .build()
        };
        let plain = |keys: Document| IndexModel::builder().keys(keys).build();
        self.runtime
            .block_on(async {
                self.coll("products")
                    .create_indexes([
                        unique(doc! {"product_id": 1}),
                        plain(doc! {"category_id": 1}),
                    ])
                    .await?;
                self.coll("sessions")
                    .create_indexes([
                        plain(doc! {"user_id": 1, "start_time": -1}),
                        plain(doc! {"start_time": 1}),
                    ])
                    .await?;
                self.coll("transactions")
                    .create_indexes([
                        unique(doc! {"transaction_id": 1}),
                        plain(doc! {"user_id": 1, "timestamp": 1}),
                        plain(doc! {"timestamp": 1}),
                    ])
                    .await?;
                Ok::<_, mongodb::error::Error>(())
            })
            .map_err(server_error)
    }

    /// Recomputes the purchase summaries of `users` from the transactions
    /// stored, and writes them to their user documents.
    fn refresh_summaries(&self, users: &[&str]) -> Result<()> {
        let pipeline = [
            doc! {"$match": {"user_id": {"$in": &users}}},
            doc! {"$group": {"_id": "$user_id", "n": {"$sum": 1}, "spent": {"$sum": "$total"},
            "first": {"$min": "$timestamp"}, "last": {"$max": "$timestamp"}}},
        ];
        let groups: Vec<Document> = self.runtime.block_on(async {
            let mut cursor = self
                .coll("transactions")
                .aggregate(pipeline)
                .await
                .map_err(server_error)?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(server_error)? {
                out.push(cursor.deserialize_current().map_err(server_error)?);
            }
            Ok::<_, StoreError>(out)
        })?;
        let mut updates = Vec::with_capacity(groups.len());
        for g in groups {
            let user = g
                .get_str("_id")
                .map_err(|e| StoreError::corrupt(format!("summary group: {e}")))?
                .to_string();
            let n = match g.get("n") {
                Some(Bson::Int32(n)) => i64::from(*n),
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Double(n)) => *n as i64,
                _ => 0,
            };
            let summary = PurchaseSummary::from_totals(
                u64::try_from(n).unwrap_or(0),
                g.get_f64("spent").unwrap_or(0.0),
                g.get_str("first").ok().and_then(schemas::time::parse),
                g.get_str("last").ok().and_then(schemas::time::parse),
            );
            let s = bson::to_bson(&summary)
                .map_err(|e| StoreError::corrupt(format!("summary: {e}")))?;
            updates.push(
                doc! {"q": {"_id": &user}, "u": {"$set": {"purchase_summary": s}}, "upsert": true},
            );
        }
        self.upsert_many("users", updates)
    }

    /// Runs one unordered `update` command with upserts.
    /// What `collection` holds under `ids` already, as stored, by id.
    fn stored_by_id(&self, collection: &str, ids: &[&str]) -> Result<HashMap<String, Document>> {
        self.runtime.block_on(async {
            let mut cursor = self
                .coll(collection)
                .find(doc! {"_id": {"$in": ids}})
                .await
                .map_err(server_error)?;
            let mut found = HashMap::new();
            while cursor.advance().await.map_err(server_error)? {
                let d: Document = cursor.deserialize_current().map_err(server_error)?;
                if let Ok(id) = d.get_str("_id") {
                    found.insert(id.to_string(), d.clone());
                }
            }
            Ok::<_, StoreError>(found)
        })
    }

    fn upsert_many(&self, collection: &str, updates: Vec<Document>) -> Result<()> {
        self.upsert_many_with(collection, updates, None)
    }

    /// [`upsert_many`](Self::upsert_many) under a write concern of its own.
    fn upsert_many_with(
        &self,
        collection: &str,
        updates: Vec<Document>,
        write_concern: Option<Document>,
    ) -> Result<()> {
        for chunk in updates.chunks(1_000) {
            let mut cmd = doc! {"update": collection, "updates": chunk.to_vec(), "ordered": false};
            if let Some(wc) = &write_concern {
                cmd.insert("writeConcern", wc.clone());
            }
            let reply = self
                .runtime
                .block_on(async { self.db.run_command(cmd).await })
                .map_err(server_error)?;
            if let Ok(errors) = reply.get_array("writeErrors") {
                if let Some(first) = errors.first() {
                    return Err(StoreError::Server {
                        server: "MongoDB",
                        message: format!(
                            "{} write error(s) in {collection}, first: {first}",
                            errors.len()
                        ),
                        retryable: false,
                    });
                }
            }
        }
        Ok(())
    }

    fn find<T: DeserializeOwned>(
        &self,
        what: &str,
        collection: &str,
        filter: Document,
        sort: Option<Document>,
    ) -> Result<Vec<T>> {
        self.runtime.block_on(async {
            let coll = self.coll(collection);
            let mut cursor = match sort {
                Some(s) => coll.find(filter).sort(s).await,
                None => coll.find(filter).await,
            }
            .map_err(server_error)?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(server_error)? {
                let d = cursor.deserialize_current().map_err(server_error)?;
                out.push(from_doc(what, d)?);
            }
            Ok(out)
        })
    }

    /// Runs an aggregation pipeline on `collection`, each result document
    /// read as a `T`.
    fn aggregate<T: DeserializeOwned>(
        &self,
        collection: &str,
        pipeline: Vec<Document>,
    ) -> Result<Vec<T>> {
        self.runtime.block_on(async {
            let mut cursor = self
                .coll(collection)
                .aggregate(pipeline)
                .await
                .map_err(server_error)?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(server_error)? {
                let d = cursor.deserialize_current().map_err(server_error)?;
                out.push(
                    bson::from_document(d).map_err(|e| {
                        StoreError::corrupt(format!("{collection} pipeline row: {e}"))
                    })?,
                );
            }
            Ok(out)
        })
    }

    fn find_one<T: DeserializeOwned>(
        &self,
        what: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<T>> {
        let coll = self.coll(collection);
        let found = self
            .runtime
            .block_on(async { coll.find_one(doc! {"_id": id}).await })
            .map_err(server_error)?;
        found.map(|d| from_doc(what, d)).transpose()
    }
}

/// A stored user document as a [`User`], with an empty summary when no
/// transaction has been folded in yet.
fn user_from_doc(mut d: Document) -> Result<User> {
    d.remove("customer_value");
    if !d.contains_key("purchase_summary") {
        let s = bson::to_bson(&PurchaseSummary::default())
            .map_err(|e| StoreError::corrupt(format!("summary: {e}")))?;
        d.insert("purchase_summary", s);
    }
    from_doc("user", d)
}

fn dead_letter_id(d: &DeadLetter) -> String {
    format!("{}/{}/{}", d.source_topic, d.partition, d.offset)
}

fn fmt_ts(t: NaiveDateTime) -> String {
    schemas::time::format(t)
}

impl DocumentStore for MongoDocStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn upsert_categories(&self, items: &[Category]) -> Result<()> {
        let updates = items
            .iter()
            .map(|c| Ok(doc! {"q": {"_id": &c.category_id}, "u": to_doc(c, &c.category_id)?, "upsert": true}))
            .collect::<Result<Vec<_>>>()?;
        self.upsert_many("categories", updates)
    }

    fn upsert_products(&self, items: &[Product]) -> Result<()> {
        let updates = items
            .iter()
            .map(|p| Ok(doc! {"q": {"_id": &p.product_id}, "u": to_doc(p, &p.product_id)?, "upsert": true}))
            .collect::<Result<Vec<_>>>()?;
        self.upsert_many("products", updates)
    }

    fn upsert_users(&self, items: &[User]) -> Result<()> {
        let updates = items
            .iter()
            .map(|u| {
                // `$set` the profile only, so the summary kept beside it stays.
                let mut profile = to_doc(u, &u.user_id)?;
                profile.remove("purchase_summary");
                profile.remove("_id");
                Ok(doc! {"q": {"_id": &u.user_id}, "u": {"$set": profile}, "upsert": true})
            })
            .collect::<Result<Vec<_>>>()?;
        self.upsert_many("users", updates)
    }

    fn put_transactions_checked(&self, items: &[Transaction]) -> Result<TransactionsPut> {
        if items.is_empty() {
            return Ok(TransactionsPut::default());
        }
        let ids: Vec<&str> = items.iter().map(|t| t.transaction_id.as_str()).collect();
        let mut stored = self.stored_by_id("transactions", &ids)?;
        let mut out = TransactionsPut::default();
        let mut updates = Vec::new();
        for (i, t) in items.iter().enumerate() {
            let d = to_doc(t, &t.transaction_id)?;
            match stored.get(&t.transaction_id) {
                // The first one stored stands: a replay of it changes
                // nothing, other content under its id is a conflict.
                Some(existing) => {
                    if *existing != d {
                        out.conflicts.push(i);
                    }
                }
                None => {
                    out.new += 1;
                    updates.push(
                        doc! {"q": {"_id": &t.transaction_id}, "u": d.clone(), "upsert": true},
                    );
                    stored.insert(t.transaction_id.clone(), d);
                }
            }
        }
        if !updates.is_empty() {
            self.upsert_many("transactions", updates)?;
        }

        let users: Vec<&str> = items
            .iter()
            .map(|t| t.user_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        self.refresh_summaries(&users)?;
        Ok(out)
    }

    fn user(&self, user_id: &str) -> Result<Option<User>> {
        let users = self.coll("users");
        let Some(d) = self
            .runtime
            .block_on(async { users.find_one(doc! {"_id": user_id}).await })
            .map_err(server_error)?
        else {
            return Ok(None);
        };
        // A summary may arrive before the profile: no profile, no user.
        if !d.contains_key("user_id") {
            return Ok(None);
        }
        user_from_doc(d).map(Some)
    }

    fn product(&self, product_id: &str) -> Result<Option<Product>> {
        self.find_one("product", "products", product_id)
    }

    fn products_in_category(&self, category_id: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Id {
            product_id: String,
        }
        let ids: Vec<Id> = self.find(
            "product",
            "products",
            doc! {"category_id": category_id},
            Some(doc! {"product_id": 1}),
        )?;
        Ok(ids.into_iter().map(|i| i.product_id).collect())
    }

    fn transaction(&self, transaction_id: &str) -> Result<Option<Transaction>> {
        self.find_one("transaction", "transactions", transaction_id)
    }

    fn user_transactions(
        &self,
        user_id: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Transaction>> {
        // Timestamps are stored in the canonical fixed-width format, so
        // string order is time order.
        let filter =
            doc! {"user_id": user_id, "timestamp": {"$gte": fmt_ts(from), "$lte": fmt_ts(to)}};
        self.find(
            "transaction",
            "transactions",
            filter,
            Some(doc! {"timestamp": 1, "_id": 1}),
        )
    }

    fn counts(&self) -> Result<DocCounts> {
        self.runtime.block_on(async {
            let count = |c: &str, f: Document| {
                let coll = self.coll(c);
                async move { coll.count_documents(f).await.map_err(server_error) }
            };
            Ok(DocCounts {
                users: count("users", doc! {"user_id": {"$exists": true}}).await?,
                products: count("products", doc! {}).await?,
                categories: count("categories", doc! {}).await?,
                transactions: count("transactions", doc! {}).await?,
            })
        })
    }

    fn all_users(&self) -> Result<Vec<User>> {
        let docs: Vec<Document> = self.find(
            "user",
            "users",
            doc! {"user_id": {"$exists": true}},
            Some(doc! {"_id": 1}),
        )?;
        docs.into_iter().map(user_from_doc).collect()
    }

    fn all_products(&self) -> Result<Vec<Product>> {
        self.find("product", "products", doc! {}, Some(doc! {"_id": 1}))
    }

    fn all_categories(&self) -> Result<Vec<Category>> {
        self.find("category", "categories", doc! {}, Some(doc! {"_id": 1}))
    }

    fn transaction_days(&self) -> Result<Vec<NaiveDate>> {
        self.days_of("transactions", "timestamp")
    }

    fn transactions_on(&self, day: NaiveDate) -> Result<Vec<Transaction>> {
        let (start, end) = crate::doc::day_bounds(day);
        self.find(
            "transaction",
            "transactions",
            doc! {"timestamp": {"$gte": fmt_ts(start), "$lte": fmt_ts(end)}},
            Some(doc! {"timestamp": 1, "_id": 1}),
        )
    }

    fn put_dead_letters(&self, items: &[DeadLetter]) -> Result<()> {
        let updates = items
            .iter()
            .map(|d| {
                let id = dead_letter_id(d);
                Ok(doc! {"q": {"_id": &id}, "u": to_doc(d, &id)?, "upsert": true})
            })
            .collect::<Result<Vec<_>>>()?;
        self.upsert_many("dead_letters", updates)
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.find(
            "dead letter",
            "dead_letters",
            doc! {},
            Some(doc! {"source_topic": 1, "partition": 1, "offset": 1}),
        )
    }

    fn put_customer_values(&self, items: &[CustomerValue]) -> Result<()> {
        let updates = items
            .iter()
            .map(|v| {
                let value = bson::to_bson(v)
                    .map_err(|e| StoreError::corrupt(format!("customer value: {e}")))?;
                Ok(doc! {"q": {"_id": &v.user_id}, "u": {"$set": {"customer_value": value}}, "upsert": true})
            })
            .collect::<Result<Vec<_>>>()?;
        self.upsert_many("users", updates)
    }

    fn customer_value(&self, user_id: &str) -> Result<Option<CustomerValue>> {
        let users = self.coll("users");
        let found = self
            .runtime
            .block_on(async {
                users
                    .find_one(doc! {"_id": user_id})
                    .projection(doc! {"customer_value": 1})
                    .await
            })
            .map_err(server_error)?;
        match found.and_then(|mut d| d.remove("customer_value")) {
            Some(v) => bson::from_bson(v)
                .map(Some)
                .map_err(|e| StoreError::corrupt(format!("customer value: {e}"))),
            None => Ok(None),
        }
    }

    fn revenue_by_category(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<CategoryDay>> {
        let (start, _) = crate::doc::day_bounds(from);
        let (_, end) = crate::doc::day_bounds(to);
        let pipeline = vec![
            doc! {"$match": {"timestamp": {"$gte": fmt_ts(start), "$lte": fmt_ts(end)}}},
            doc! {"$unwind": "$items"},
            doc! {"$lookup": {"from": self.collection_name("products"), "localField": "items.product_id",
            "foreignField": "_id", "as": "product"}},
            doc! {"$unwind": "$product"},
            doc! {"$group": {
                "_id": {"day": {"$substrBytes": ["$timestamp", 0, 10]},
                        "category_id": "$product.category_id"},
                "units": {"$sum": "$items.quantity"},
                "revenue": {"$sum": "$items.subtotal"},
            }},
            doc! {"$project": {"_id": 0, "day": "$_id.day", "category_id": "$_id.category_id",
            "units": 1, "revenue": 1}},
            doc! {"$lookup": {"from": self.collection_name("categories"), "localField": "category_id",
            "foreignField": "_id", "as": "category"}},
            // One category or none (its document missing): a field of a
            // sub-document, which every server reads the same way.
            doc! {"$unwind": {"path": "$category", "preserveNullAndEmptyArrays": true}},
            doc! {"$addFields": {"category": "$category.name"}},
        ];
        #[derive(serde::Deserialize)]
        struct Row {
            day: String,
            category_id: String,
            category: Option<String>,
            units: i64,
            revenue: f64,
        }
        let mut rows = self
            .aggregate::<Row>("transactions", pipeline)?
            .into_iter()
            .map(|r| {
                let day = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d")
                    .map_err(|e| StoreError::corrupt(format!("day {:?}: {e}", r.day)))?;
                Ok(CategoryDay {
                    day,
                    category_id: r.category_id,
                    category: r.category,
                    units: u64::try_from(r.units).unwrap_or(0),
                    revenue: round_cents(r.revenue),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by(|a, b| {
            a.day
                .cmp(&b.day)
                .then_with(|| b.revenue.total_cmp(&a.revenue))
                .then_with(|| a.category_id.cmp(&b.category_id))
        });
        Ok(rows)
    }

    fn top_customers(&self, limit: usize) -> Result<Vec<Customer>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pipeline = vec![
            doc! {"$group": {"_id": "$user_id", "orders": {"$sum": 1},
            "spent": {"$sum": "$total"}, "last": {"$max": "$timestamp"}}},
            // Cents first: the order is the rounded figures' order.
            doc! {"$addFields": {"spent": {"$round": ["$spent", 2]}}},
            doc! {"$sort": {"spent": -1, "_id": 1}},
            doc! {"$limit": limit},
            doc! {"$lookup": {"from": self.collection_name("users"), "localField": "_id",
            "foreignField": "_id", "as": "user"}},
            doc! {"$unwind": {"path": "$user", "preserveNullAndEmptyArrays": true}},
            doc! {"$project": {"_id": 0, "user_id": "$_id", "name": "$user.name",
            "orders": 1, "spent": 1, "last": 1}},
        ];
        #[derive(serde::Deserialize)]
        struct Row {
            user_id: String,
            name: Option<String>,
            orders: i64,
            spent: f64,
            last: String,
        }
        self.aggregate::<Row>("transactions", pipeline)?
            .into_iter()
            .map(|r| {
                let last_purchase = schemas::time::parse(&r.last)
                    .ok_or_else(|| StoreError::corrupt(format!("timestamp {:?}", r.last)))?;
                Ok(Customer {
                    user_id: r.user_id,
                    name: r.name,
                    orders: u64::try_from(r.orders).unwrap_or(0),
                    spent: round_cents(r.spent),
                    last_purchase,
                })
            })
            .collect()
    }

    fn payment_mix(&self) -> Result<Vec<PaymentShare>> {
        let pipeline = vec![
            doc! {"$group": {"_id": "$payment_method", "orders": {"$sum": 1},
            "revenue": {"$sum": "$total"}}},
        ];
        #[derive(serde::Deserialize)]
        struct Row {
            #[serde(rename = "_id")]
            method: String,
            orders: i64,
            revenue: f64,
        }
        Ok(crate::queries::shares(
            self.aggregate::<Row>("transactions", pipeline)?
                .into_iter()
                .map(|r| (r.method, u64::try_from(r.orders).unwrap_or(0), r.revenue))
                .collect(),
        ))
    }

    fn purchase_history(&self, user_id: &str, limit: usize) -> Result<Vec<HistoryLine>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pipeline = vec![
            doc! {"$match": {"user_id": user_id}},
            doc! {"$sort": {"timestamp": -1, "_id": -1}},
            doc! {"$limit": limit},
            doc! {"$unwind": {"path": "$items", "includeArrayIndex": "line"}},
            doc! {"$lookup": {"from": self.collection_name("products"), "localField": "items.product_id",
            "foreignField": "_id", "as": "product"}},
            doc! {"$unwind": {"path": "$product", "preserveNullAndEmptyArrays": true}},
            doc! {"$project": {"_id": 0, "transaction_id": "$_id", "timestamp": 1, "line": 1,
            "product_id": "$items.product_id",
            "product": "$product.name",
            "quantity": "$items.quantity", "unit_price": "$items.unit_price",
            "subtotal": "$items.subtotal"}},
        ];
        #[derive(serde::Deserialize)]
        struct Row {
            transaction_id: String,
            timestamp: String,
            line: i64,
            product_id: String,
            product: Option<String>,
            quantity: i64,
            unit_price: f64,
            subtotal: f64,
        }
        let mut rows = self.aggregate::<Row>("transactions", pipeline)?;
        // The server keeps the order of $sort through $unwind; sorted here
        // again so the answer does not rest on that.
        rows.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then_with(|| b.transaction_id.cmp(&a.transaction_id))
                .then_with(|| a.line.cmp(&b.line))
        });
        rows.into_iter()
            .map(|r| {
                Ok(HistoryLine {
                    timestamp: schemas::time::parse(&r.timestamp).ok_or_else(|| {
                        StoreError::corrupt(format!("timestamp {:?}", r.timestamp))
                    })?,
                    transaction_id: r.transaction_id,
                    product_id: r.product_id,
                    product: r.product,
                    quantity: u32::try_from(r.quantity)
                        .map_err(|_| StoreError::corrupt(format!("quantity {}", r.quantity)))?,
                    unit_price: r.unit_price,
                    subtotal: r.subtotal,
                })
            })
            .collect()
    }

    fn put_sessions(&self, items: &[Session]) -> Result<Vec<usize>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = items.iter().map(|s| s.session_id.as_str()).collect();
        let mut stored = self.stored_by_id("sessions", &ids)?;
        let mut conflicts = Vec::new();
        let mut updates = Vec::new();
        for (i, x) in items.iter().enumerate() {
            let d = to_doc(x, &x.session_id)?;
            match stored.get(&x.session_id) {
                // The first one stored stands, as for transactions.
                Some(existing) => {
                    if *existing != d {
                        conflicts.push(i);
                    }
                }
                None => {
                    updates
                        .push(doc! {"q": {"_id": &x.session_id}, "u": d.clone(), "upsert": true});
                    stored.insert(x.session_id.clone(), d);
                }
            }
        }
        if !updates.is_empty() {
            self.upsert_many("sessions", updates)?;
        }
        Ok(conflicts)
    }

    fn session_days(&self) -> Result<Vec<NaiveDate>> {
        self.days_of("sessions", "start_time")
    }

    fn sessions_on(&self, day: NaiveDate) -> Result<Vec<Session>> {
        let (start, end) = crate::doc::day_bounds(day);
        self.find(
            "session",
            "sessions",
            doc! {"start_time": {"$gte": fmt_ts(start), "$lte": fmt_ts(end)}},
            Some(doc! {"start_time": 1, "_id": 1}),
        )
    }

    fn put_progress(&self, group: &str, offsets: &Progress) -> Result<()> {
        let updates = offsets
            .iter()
            .map(|((topic, partition), next)| {
                let next = i64::try_from(*next)
                    .map_err(|_| StoreError::corrupt(format!("offset {next} of {topic}")))?;
                Ok(doc! {
                    "q": {"_id": format!("{group}/{topic}/{partition}")},
                    "u": {"group": group, "topic": topic, "partition": i64::from(*partition), "next": next},
                    "upsert": true,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Journaled: once MongoDB acknowledges this, it and every write
        // before it are in its journal, so a mongod killed afterwards keeps
        // them, and ingest commits its offsets only then. (With the default
        // write concern, a mongod killed within its journal interval, up to
        // 100 ms, loses writes it acknowledged: the end-to-end fault test
        // lost a dead letter that way.)
        self.upsert_many_with("ingest_progress", updates, Some(doc! {"w": 1, "j": true}))
    }

    fn progress(&self, group: &str) -> Result<Progress> {
        #[derive(serde::Deserialize)]
        struct Entry {
            topic: String,
            partition: i64,
            next: i64,
        }
        let entries: Vec<Entry> = self.find(
            "progress entry",
            "ingest_progress",
            doc! {"group": group},
            None,
        )?;
        entries
            .into_iter()
            .map(|e| {
                let bad = || StoreError::corrupt(format!("progress entry of {}", e.topic));
                let partition = u32::try_from(e.partition).map_err(|_| bad())?;
                let next = u64::try_from(e.next).map_err(|_| bad())?;
                Ok(((e.topic.clone(), partition), next))
            })
            .collect()
    }
}
