//! The four questions a shop asks its operational database every day, as in
//! the seed report's section 3.1 ("4 aggregation pipelines"): revenue by
//! category and day, the top customers, the payment-method mix, and a
//! user's purchase history with product names.
//!
//! Each is a [`DocumentStore`] method. The functions
//! here are the definitions, written over the store's plain reads: the
//! embedded store answers with them, and MongoDB answers with an
//! aggregation pipeline run by the server (`doc_mongo.rs`). The contract
//! tests check both give the same rows. Money is summed in cents-rounded
//! `f64` and rounded to cents at the end, so both agree to the cent.

use crate::doc::DocumentStore;
pub use crate::doc::{CategoryDay, Customer, HistoryLine, PaymentShare};
use crate::Result;
use chrono::{NaiveDate, NaiveDateTime};
use schemas::types::round_cents;
use std::collections::{BTreeMap, HashMap};

/// The queries, by the name `ecomflow query` takes.
pub const NAMES: [&str; 4] = [
    "revenue-by-category",
    "top-customers",
    "payment-mix",
    "purchase-history",
];

/// Bounds that hold every stored time and format as four-digit years (the
/// stores compare times as text).
fn all_time() -> (NaiveDateTime, NaiveDateTime) {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    (
        day(1000, 1, 1).and_hms_opt(0, 0, 0).unwrap_or_default(),
        day(9999, 12, 31)
            .and_hms_opt(23, 59, 59)
            .unwrap_or_default(),
    )
}

/// Every day the store has transactions on, `from..=to`.
fn days_between<S: DocumentStore + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>> {
    Ok(store
        .transaction_days()?
        .into_iter()
        .filter(|d| (from..=to).contains(d))
        .collect())
}

/// Revenue and units per category and day, `from..=to`, by day then
/// revenue (highest first) then category id.
pub fn revenue_by_category<S: DocumentStore + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CategoryDay>> {
    let category_of: HashMap<String, String> = store
        .all_products()?
        .into_iter()
        .map(|p| (p.product_id, p.category_id))
        .collect();
    let names: HashMap<String, String> = store
        .all_categories()?
        .into_iter()
        .map(|c| (c.category_id, c.name))
        .collect();
    let mut rows = Vec::new();
    for day in days_between(store, from, to)? {
        // A line whose product is unknown has no category: it is left out,
        // as the pipeline's $lookup + $unwind leaves it out.
        let mut sums: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        let txns = store.transactions_on(day)?;
        for t in &txns {
            for item in &t.items {
                if let Some(c) = category_of.get(&item.product_id) {
                    let e = sums.entry(c.as_str()).or_default();
                    e.0 += u64::from(item.quantity);
                    e.1 += item.subtotal;
                }
            }
        }
        let mut day_rows: Vec<CategoryDay> = sums
            .into_iter()
            .map(|(c, (units, revenue))| CategoryDay {
                day,
                category_id: c.to_string(),
                category: names.get(c).cloned(),
                units,
                revenue: round_cents(revenue),
            })
            .collect();
        day_rows.sort_by(|a, b| {
            b.revenue
                .total_cmp(&a.revenue)
                .then_with(|| a.category_id.cmp(&b.category_id))
        });
        rows.extend(day_rows);
    }
    Ok(rows)
}

/// The `limit` customers who spent most (ties by user id).
pub fn top_customers<S: DocumentStore + ?Sized>(store: &S, limit: usize) -> Result<Vec<Customer>> {
    let mut by_user: HashMap<String, (u64, f64, NaiveDateTime)> = HashMap::new();
    for day in store.transaction_days()? {
        for t in store.transactions_on(day)? {
            let e = by_user
                .entry(t.user_id.clone())
                .or_insert((0, 0.0, t.timestamp));
            e.0 += 1;
            e.1 += t.total;
            e.2 = e.2.max(t.timestamp);
        }
    }
    let mut rows: Vec<Customer> = by_user
        .into_iter()
        .map(|(user_id, (orders, spent, last_purchase))| Customer {
            user_id,
            name: None,
            orders,
            spent: round_cents(spent),
            last_purchase,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.spent
            .total_cmp(&a.spent)
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
    rows.truncate(limit);
    for r in &mut rows {
        r.name = store.user(&r.user_id)?.map(|u| u.name);
    }
    Ok(rows)
}

/// Transactions and revenue per payment method, most revenue first.
pub fn payment_mix<S: DocumentStore + ?Sized>(store: &S) -> Result<Vec<PaymentShare>> {
    let mut by_method: HashMap<schemas::PaymentMethod, (u64, f64)> = HashMap::new();
    for day in store.transaction_days()? {
        for t in store.transactions_on(day)? {
            let e = by_method.entry(t.payment_method).or_default();
            e.0 += 1;
            e.1 += t.total;
        }
    }
    // The name as stored (serde's), once per method.
    let name = |m: schemas::PaymentMethod| {
        serde_json::to_value(m)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    Ok(shares(
        by_method
            .into_iter()
            .map(|(method, (orders, revenue))| (name(method), orders, revenue))
            .collect(),
    ))
}

/// Payment rows from (method, orders, revenue) groups: revenue to the cent,
/// shares of the total, most revenue first (ties by method).
pub fn shares(groups: Vec<(String, u64, f64)>) -> Vec<PaymentShare> {
    let total: f64 = groups.iter().map(|g| round_cents(g.2)).sum();
    let mut rows: Vec<PaymentShare> = groups
        .into_iter()
        .map(|(method, orders, revenue)| {
            let revenue = round_cents(revenue);
            PaymentShare {
                method,
                orders,
                revenue,
                share: if total > 0.0 {
                    (revenue / total * 10_000.0).round() / 10_000.0
                } else {
                    0.0
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.revenue
            .total_cmp(&a.revenue)
            .then_with(|| a.method.cmp(&b.method))
    });
    rows
}

/// A user's `limit` latest transactions, newest first, one row per line
/// item (in the transaction's order), with product names.
pub fn purchase_history<S: DocumentStore + ?Sized>(
    store: &S,
    user_id: &str,
    limit: usize,
) -> Result<Vec<HistoryLine>> {
    let (from, to) = all_time();
    let mut txns = store.user_transactions(user_id, from, to)?;
    txns.sort_by(|a, b| {
        b.timestamp
            .cmp(&a.timestamp)
            .then_with(|| b.transaction_id.cmp(&a.transaction_id))
    });
    txns.truncate(limit);
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut rows = Vec::new();
    for t in txns {
        for item in t.items {
            let product = match names.get(&item.product_id) {
                Some(n) => n.clone(),
                None => {
                    let n = store.product(&item.product_id)?.map(|p| p.name);
                    names.insert(item.product_id.clone(), n.clone());
                    n
                }
            };
            rows.push(HistoryLine {
                transaction_id: t.transaction_id.clone(),
                timestamp: t.timestamp,
                product_id: item.product_id,
                product,
                quantity: item.quantity,
                unit_price: item.unit_price,
                subtotal: item.subtotal,
            });
        }
    }
    Ok(rows)
}
