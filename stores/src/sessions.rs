//! The wide-column tables of the seed report's HBase design, on any
//! [`WideColumnStore`]:
//!
//! - `user_sessions`: row key `user_id _ reversed-ms _ session_id`, so a
//!   prefix scan on `user_000042_` returns that user's newest sessions first;
//!   families `session_info` (session_id, start_time, duration, referrer),
//!   `device_info` (type, os, browser, city, state, ip) and `behavior`
//!   (conversion_status, viewed_products, cart_contents).
//! - `product_daily`: row key `product_id _ reversed-yyyymmdd`; families
//!   `views`, `cart_adds`, `purchases`, each one cell `count` (decimal).
//!   Written once per product and day, by the nightly batch, when the day
//!   is complete ([`SessionStore::put_product_day`]): counted in memory from
//!   the day's sessions, so writing a day again writes the same numbers, and
//!   ingest pays nothing for it.
//! - `ingest_progress`: ingest's next offset per consumer group, topic and
//!   partition (see [`SessionStore::put_progress`]).
//!
//! The nightly snapshot reads a day's sessions from the document store,
//! which holds them too ([`crate::DocumentStore::sessions_on`]).

use crate::wide::{prefix_end, Cell, CellRef, Row, RowMutation, RowRef, WideColumnStore};
use crate::{Progress, Result, StoreError};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use schemas::json_write;
use schemas::{CartItem, ConversionStatus, DeviceInfo, DeviceType, Session};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

/// Table of sessions per user.
pub const USER_SESSIONS: &str = "user_sessions";
/// Families of [`USER_SESSIONS`].
pub const SESSION_FAMILIES: [&str; 3] = ["session_info", "device_info", "behavior"];
/// Table of per-product daily interactions.
pub const PRODUCT_DAILY: &str = "product_daily";
/// Families of [`PRODUCT_DAILY`].
pub const DAILY_FAMILIES: [&str; 3] = ["views", "cart_adds", "purchases"];

/// Table of ingest's progress: row = consumer group, family `next`,
/// qualifier `topic/partition`, value the next offset (decimal) not yet
/// stored.
pub const INGEST_PROGRESS: &str = "ingest_progress";

const REVERSE_MS: i64 = 9_999_999_999_999;
const REVERSE_DAY: u32 = 99_999_999;

/// `user_000042_` + 13-digit reversed epoch milliseconds + `_` + session id.
#[cfg(test)]
pub fn session_row_key(user_id: &str, start: NaiveDateTime, session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_id.len() + session_id.len() + 15);
    push_session_row_key(&mut key, user_id, start, session_id);
    key
}

/// [`session_row_key`], appended to `out`.
fn push_session_row_key(out: &mut Vec<u8>, user_id: &str, start: NaiveDateTime, session_id: &str) {
    let rev = REVERSE_MS - schemas::time::epoch_millis(start).clamp(0, REVERSE_MS);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{user_id}_{rev:013}_{session_id}");
}

/// The row-key prefix of all of a user's sessions.
pub fn user_prefix(user_id: &str) -> Vec<u8> {
    format!("{user_id}_").into_bytes()
}

fn user_time_key(user_id: &str, t: NaiveDateTime) -> Vec<u8> {
    let rev = REVERSE_MS - schemas::time::epoch_millis(t).clamp(0, REVERSE_MS);
    format!("{user_id}_{rev:013}").into_bytes()
}

fn day_number(d: NaiveDate) -> u32 {
    d.year().max(0) as u32 * 10_000 + d.month() * 100 + d.day()
}

/// `prod_00123_` + 8-digit reversed `yyyymmdd`: a product's newest day first.
pub fn product_day_key(product_id: &str, day: NaiveDate) -> Vec<u8> {
    format!("{product_id}_{:08}", REVERSE_DAY - day_number(day)).into_bytes()
}

/// Where a session's row key and the values its row does not hold as text
/// already lie in a buffer ([`push_session_texts`]).
struct SessionTexts {
    key: Range<usize>,
    cart: Range<usize>,
    viewed: Range<usize>,
    duration: Range<usize>,
    start: Range<usize>,
}

/// Appends a session's row key and its generated values (cart and viewed
/// products as JSON, duration and start time as text) to `buf`.
fn push_session_texts(buf: &mut Vec<u8>, s: &Session) -> SessionTexts {
    let span = |buf: &mut Vec<u8>, f: &dyn Fn(&mut Vec<u8>)| {
        let at = buf.len();
        f(buf);
        at..buf.len()
    };
    SessionTexts {
        key: span(buf, &|b| {
            push_session_row_key(b, &s.user_id, s.start_time, &s.session_id)
        }),
        // serde_json's bytes, without serde (`schemas::json_write`).
        cart: span(buf, &|b| json_write::cart(&s.cart_contents, b)),
        viewed: span(buf, &|b| json_write::strings(&s.viewed_products, b)),
        duration: span(buf, &|b| json_write::unsigned(s.duration_seconds, b)),
        start: span(buf, &|b| {
            b.extend_from_slice(schemas::time::format(s.start_time).as_bytes())
        }),
    }
}

/// A session's 13 cells, sorted by family and qualifier (the order the
/// embedded store keeps them in, so it has nothing to sort), borrowing from
/// the session and from `buf` ([`push_session_texts`]).
fn session_cells<'a>(
    s: &'a Session,
    buf: &'a [u8],
    t: &SessionTexts,
) -> [(&'static str, &'static [u8], &'a [u8]); 13] {
    let d = &s.device_info;
    let text = |r: &Range<usize>| buf.get(r.clone()).unwrap_or_default();
    [
        ("behavior", b"cart_contents", text(&t.cart)),
        (
            "behavior",
            b"conversion_status",
            s.conversion_status.as_str().as_bytes(),
        ),
        ("behavior", b"viewed_products", text(&t.viewed)),
        ("device_info", b"browser", d.browser.as_bytes()),
        ("device_info", b"city", d.city.as_bytes()),
        ("device_info", b"ip", d.ip.as_bytes()),
        ("device_info", b"os", d.os.as_bytes()),
        ("device_info", b"state", d.state.as_bytes()),
        ("device_info", b"type", d.device_type.as_str().as_bytes()),
        ("session_info", b"duration", text(&t.duration)),
        ("session_info", b"referrer", s.referrer.as_bytes()),
        ("session_info", b"session_id", s.session_id.as_bytes()),
        ("session_info", b"start_time", text(&t.start)),
    ]
}

/// A session's row as a [`RowMutation`] (what stores other than the
/// embedded one are given, through
/// [`WideColumnStore::put_whole_rows_ref`]'s default).
#[cfg(test)]
pub fn session_mutation(s: &Session) -> RowMutation {
    let mut buf = Vec::new();
    let t = push_session_texts(&mut buf, s);
    RowMutation {
        row: buf.get(t.key.clone()).unwrap_or_default().to_vec(),
        cells: session_cells(s, &buf, &t)
            .iter()
            .map(|&(family, qualifier, value)| Cell {
                family: std::borrow::Cow::Borrowed(family),
                qualifier: std::borrow::Cow::Borrowed(qualifier),
                value: value.to_vec(),
            })
            .collect(),
    }
}

fn text(row: &Row, family: &str, q: &str) -> Result<String> {
    let v = row.get(family, q).ok_or_else(|| {
        StoreError::corrupt(format!(
            "{} lacks {family}:{q}",
            String::from_utf8_lossy(&row.key)
        ))
    })?;
    String::from_utf8(v.to_vec())
        .map_err(|_| StoreError::corrupt(format!("{family}:{q} is not UTF-8")))
}

fn parse<T: std::str::FromStr>(row: &Row, family: &str, q: &str) -> Result<T> {
    text(row, family, q)?
        .parse()
        .map_err(|_| StoreError::corrupt(format!("{family}:{q} does not parse")))
}

/// Rebuilds a session from its row.
/// The sessions of `user_id` among `rows` (a key range may also cover
/// users whose ids start with `user_id` and `_`).
fn sessions_of(user_id: &str, rows: &[Row]) -> Result<Vec<Session>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let s = session_from_row(row)?;
        if s.user_id == user_id {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn session_from_row(row: &Row) -> Result<Session> {
    let key = String::from_utf8_lossy(&row.key);
    // Ids contain '_' themselves: strip the known `_<13 digits>_<session id>`.
    let session_id = text(row, "session_info", "session_id")?;
    let user_id = key
        .strip_suffix(session_id.as_str())
        .and_then(|k| k.len().checked_sub(15).map(|n| &k[..n]))
        .filter(|u| !u.is_empty())
        .ok_or_else(|| StoreError::corrupt(format!("row key {key}")))?;
    let device_type: DeviceType =
        serde_json::from_value(serde_json::Value::String(text(row, "device_info", "type")?))
            .map_err(|e| StoreError::corrupt(format!("device_info:type: {e}")))?;
    let status: ConversionStatus = serde_json::from_value(serde_json::Value::String(text(
        row,
        "behavior",
        "conversion_status",
    )?))
    .map_err(|e| StoreError::corrupt(format!("behavior:conversion_status: {e}")))?;
    let start = schemas::time::parse(&text(row, "session_info", "start_time")?)
        .ok_or_else(|| StoreError::corrupt("session_info:start_time"))?;
    let viewed: Vec<String> =
        serde_json::from_slice(row.get("behavior", "viewed_products").unwrap_or(b"[]"))
            .map_err(|e| StoreError::corrupt(format!("behavior:viewed_products: {e}")))?;
    let cart: Vec<CartItem> =
        serde_json::from_slice(row.get("behavior", "cart_contents").unwrap_or(b"[]"))
            .map_err(|e| StoreError::corrupt(format!("behavior:cart_contents: {e}")))?;
    Ok(Session {
        session_id,
        user_id: user_id.to_string(),
        start_time: start,
        duration_seconds: parse(row, "session_info", "duration")?,
        referrer: text(row, "session_info", "referrer")?,
        device_info: DeviceInfo {
            device_type,
            os: text(row, "device_info", "os")?,
            browser: text(row, "device_info", "browser")?,
            city: text(row, "device_info", "city")?,
            state: text(row, "device_info", "state")?,
            ip: text(row, "device_info", "ip")?,
        },
        conversion_status: status,
        viewed_products: viewed,
        cart_contents: cart,
    })
}

/// `day`'s `product_daily` counts from the sessions (those of other days
/// are left out), by product id:
/// sessions that viewed the product; units in carts; units in the carts of
/// converted sessions. A product twice in one session's views counts once;
/// twice in its cart, the last entry's quantity counts (as a cell per
/// session and product would).
pub fn count_product_day<'a>(
    day: NaiveDate,
    sessions: impl IntoIterator<Item = &'a Session>,
) -> BTreeMap<String, DailyCounts> {
    // Borrowed ids in a fast hash map while counting (a day has about
    // 22,000 sessions over 5,000 products), sorted once at the end.
    let mut per: rustc_hash::FxHashMap<&'a str, DailyCounts> = Default::default();
    let blank = || DailyCounts {
        day,
        views: 0,
        cart_adds: 0,
        purchases: 0,
    };
    let mut viewed: Vec<&'a str> = Vec::new();
    let mut cart: Vec<(&'a str, u64)> = Vec::new();
    for s in sessions.into_iter().filter(|s| s.start_time.date() == day) {
        viewed.clear();
        viewed.extend(s.viewed_products.iter().map(String::as_str));
        viewed.sort_unstable();
        viewed.dedup();
        for &p in &viewed {
            per.entry(p).or_insert_with(blank).views += 1;
        }
        // The last entry of a product in the cart counts: newest first, a
        // stable sort, then the first of each product is kept.
        cart.clear();
        cart.extend(
            s.cart_contents
                .iter()
                .rev()
                .map(|c| (c.product_id.as_str(), u64::from(c.quantity))),
        );
        cart.sort_by_key(|&(p, _)| p);
        cart.dedup_by_key(|&mut (p, _)| p);
        let converted = s.conversion_status == ConversionStatus::Converted;
        for &(p, q) in &cart {
            let e = per.entry(p).or_insert_with(blank);
            e.cart_adds = e.cart_adds.saturating_add(q);
            if converted {
                e.purchases = e.purchases.saturating_add(q);
            }
        }
    }
    per.into_iter().map(|(p, c)| (p.to_string(), c)).collect()
}

/// A product's interactions on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyCounts {
    /// The day.
    pub day: NaiveDate,
    /// Sessions that viewed the product.
    pub views: u64,
    /// Units put in carts.
    pub cart_adds: u64,
    /// Units bought (carts of converted sessions).
    pub purchases: u64,
}

fn count(row: &Row, family: &str) -> Result<u64> {
    match row.get(family, "count") {
        None => Ok(0),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::corrupt(format!("{PRODUCT_DAILY} {family}:count"))),
    }
}

/// Domain queries over a wide-column store. Every row it writes is written
/// whole (all of its families' qualifiers each time), so it writes with
/// [`WideColumnStore::put_whole_rows`].
#[derive(Clone)]
pub struct SessionStore {
    store: Arc<dyn WideColumnStore>,
}

impl SessionStore {
    /// Wraps a store and makes sure its tables exist.
    pub fn new(store: Arc<dyn WideColumnStore>) -> Result<Self> {
        store.ensure_table(USER_SESSIONS, &SESSION_FAMILIES)?;
        store.ensure_table(PRODUCT_DAILY, &DAILY_FAMILIES)?;
        store.ensure_table(INGEST_PROGRESS, &["next"])?;
        Ok(SessionStore { store })
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn WideColumnStore> {
        &self.store
    }

    /// Writes sessions (idempotent): their `user_sessions` row. (The
    /// nightly snapshot reads a day's sessions from the document store,
    /// which holds them too: [`crate::DocumentStore::sessions_on`].)
    pub fn put_sessions(&self, sessions: &[Session]) -> Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        // Keys and generated values side by side in one buffer, and every
        // cell borrowed: no allocation per cell (building a `RowMutation`
        // per session, 14 allocations each, was 3.4% of the replay's CPU).
        let mut buf = Vec::with_capacity(sessions.len() * 192);
        let texts: Vec<SessionTexts> = sessions
            .iter()
            .map(|s| push_session_texts(&mut buf, s))
            .collect();
        let cells: Vec<[CellRef<'_>; 13]> = sessions
            .iter()
            .zip(&texts)
            .map(|(s, t)| session_cells(s, &buf, t))
            .collect();
        let rows: Vec<RowRef<'_>> = texts
            .iter()
            .zip(&cells)
            .map(|(t, cells)| RowRef {
                row: buf.get(t.key.clone()).unwrap_or_default(),
                cells,
            })
            .collect();
        self.store.put_whole_rows_ref(USER_SESSIONS, &rows)
    }

    /// Writes `day`'s `product_daily` rows, counted from all of that day's
    /// sessions (`count_product_day`); writing a day again overwrites
    /// it with the same numbers.
    pub fn put_product_day(&self, day: NaiveDate, sessions: &[Session]) -> Result<()> {
        let rows: Vec<RowMutation> = count_product_day(day, sessions)
            .into_iter()
            .map(|(product, c)| RowMutation {
                row: product_day_key(&product, day),
                cells: vec![
                    Cell::named("views", "count", c.views.to_string()),
                    Cell::named("cart_adds", "count", c.cart_adds.to_string()),
                    Cell::named("purchases", "count", c.purchases.to_string()),
                ],
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.store.put_whole_rows(PRODUCT_DAILY, &rows)
    }

    /// Records that everything consumer group `group` read before `offsets`
    /// is stored, after the sessions' own writes (see
    /// [`DocumentStore::put_progress`](crate::DocumentStore::put_progress)),
    /// then syncs the store as far as it was asked to.
    pub fn put_progress(&self, group: &str, offsets: &Progress) -> Result<()> {
        let cells = offsets
            .iter()
            .map(|((topic, partition), next)| {
                Cell::new("next", format!("{topic}/{partition}"), next.to_string())
            })
            .collect();
        self.store.put(
            INGEST_PROGRESS,
            &[RowMutation {
                row: group.as_bytes().to_vec(),
                cells,
            }],
        )?;
        self.store.sync()
    }

    /// What [`put_progress`](Self::put_progress) recorded for `group`.
    pub fn progress(&self, group: &str) -> Result<Progress> {
        let key = group.as_bytes();
        let rows = self.store.scan(
            INGEST_PROGRESS,
            key,
            &prefix_end(key),
            &["next"],
            usize::MAX,
        )?;
        let mut out = Progress::new();
        for row in rows.iter().filter(|r| r.key == key) {
            for cell in row.family("next") {
                let bad = || {
                    StoreError::corrupt(format!(
                        "progress cell {:?}",
                        String::from_utf8_lossy(&cell.qualifier)
                    ))
                };
                let q = std::str::from_utf8(&cell.qualifier).map_err(|_| bad())?;
                let (topic, partition) = q.rsplit_once('/').ok_or_else(bad)?;
                let partition: u32 = partition.parse().map_err(|_| bad())?;
                let next: u64 = std::str::from_utf8(&cell.value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(bad)?;
                out.insert((topic.to_string(), partition), next);
            }
        }
        Ok(out)
    }

    /// A user's `n` newest sessions, newest first: one short prefix scan.
    ///
    /// Ids may hold `_`, so the prefix `a_` of user `a` also covers the
    /// rows of user `a_b`: rows of another user are skipped, and the scan
    /// is made again without a limit in the rare case that some were.
    pub fn last_sessions(&self, user_id: &str, n: usize) -> Result<Vec<Session>> {
        let prefix = user_prefix(user_id);
        let scan = |limit| {
            let rows = self.store.scan(
                USER_SESSIONS,
                &prefix,
                &prefix_end(&prefix),
                &SESSION_FAMILIES,
                limit,
            )?;
            let scanned = rows.len();
            let own = sessions_of(user_id, &rows)?;
            Ok::<_, StoreError>((scanned, own))
        };
        let (scanned, own) = scan(n)?;
        if own.len() == scanned {
            return Ok(own);
        }
        let (_, mut own) = scan(usize::MAX)?;
        own.truncate(n);
        Ok(own)
    }

    /// A user's sessions that started in `[from, to]`, newest first.
    pub fn sessions_between(
        &self,
        user_id: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<Session>> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = user_time_key(user_id, to);
        let stop = prefix_end(&user_time_key(user_id, from));
        let rows = self
            .store
            .scan(USER_SESSIONS, &start, &stop, &SESSION_FAMILIES, usize::MAX)?;
        sessions_of(user_id, &rows)
    }

    /// A product's counts for each day in `[from, to]` with any interaction,
    /// oldest first.
    pub fn product_daily(
        &self,
        product_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyCounts>> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = product_day_key(product_id, to);
        let stop = prefix_end(&product_day_key(product_id, from));
        let rows = self
            .store
            .scan(PRODUCT_DAILY, &start, &stop, &DAILY_FAMILIES, usize::MAX)?;
        let mut out = Vec::with_capacity(rows.len());
        // `id _ 8 digits`: a longer key is another product's whose id
        // starts with this one and `_`.
        let own_len = product_id.len() + 9;
        for row in rows.iter().rev().filter(|r| r.key.len() == own_len) {
            let key = String::from_utf8_lossy(&row.key);
            let rev: u32 = key
                .rsplit('_')
                .next()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| StoreError::corrupt(format!("row key {key}")))?;
            let n = REVERSE_DAY - rev;
            let day = NaiveDate::from_ymd_opt((n / 10_000) as i32, n / 100 % 100, n % 100)
                .ok_or_else(|| StoreError::corrupt(format!("day in {key}")))?;
            out.push(DailyCounts {
                day,
                views: count(row, "views")?,
                cart_adds: count(row, "cart_adds")?,
                purchases: count(row, "purchases")?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        schemas::time::parse(s).expect("test literal")
    }

    #[test]
    fn a_sessions_cells_come_sorted_by_family_and_qualifier() {
        let s: Session = serde_json::from_value(serde_json::json!({
            "session_id": "sess_a", "user_id": "user_000001",
            "start_time": "2025-03-12T08:00:00", "duration_seconds": 60,
            "referrer": "direct",
            "device_info": {"type": "mobile", "os": "iOS", "browser": "Safari",
                            "city": "Austin", "state": "TX", "ip": "10.0.0.1"},
            "conversion_status": "browsed", "viewed_products": ["prod_00001"],
            "cart_contents": []
        }))
        .expect("session");
        let m = session_mutation(&s);
        assert_eq!(m.cells.len(), 13);
        assert!(m
            .cells
            .windows(2)
            .all(|w| (&w[0].family, &w[0].qualifier) < (&w[1].family, &w[1].qualifier)));
        // Each family of SESSION_FAMILIES, in its sorted place.
        let families: Vec<&str> = m.cells.iter().map(|c| &*c.family).collect();
        assert_eq!(families[0], "behavior");
        assert_eq!(families[3], "device_info");
        assert_eq!(families[9], "session_info");
    }

    fn session(
        id: &str,
        start: &str,
        status: &str,
        viewed: &[&str],
        cart: &[(&str, u32)],
    ) -> Session {
        let cart: Vec<serde_json::Value> = cart
            .iter()
            .map(|(p, q)| serde_json::json!({"product_id": p, "quantity": q, "price": 10.0}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "session_id": id, "user_id": "user_000001",
            "start_time": start, "duration_seconds": 60, "referrer": "direct",
            "device_info": {"type": "mobile", "os": "iOS", "browser": "Safari",
                            "city": "Austin", "state": "TX", "ip": "10.0.0.1"},
            "conversion_status": status, "viewed_products": viewed,
            "cart_contents": cart
        }))
        .expect("session")
    }

    /// A store that writes borrowed rows the trait's default way (as
    /// `RowMutation`s), as the HBase store does.
    struct Owned(crate::wide_embedded::EmbeddedWideStore);

    impl WideColumnStore for Owned {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn ensure_table(&self, table: &str, families: &[&str]) -> Result<()> {
            self.0.ensure_table(table, families)
        }
        fn put(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
            self.0.put(table, mutations)
        }
        fn put_whole_rows(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
            self.0.put_whole_rows(table, mutations)
        }
        fn scan(
            &self,
            table: &str,
            start: &[u8],
            stop: &[u8],
            families: &[&str],
            limit: usize,
        ) -> Result<Vec<Row>> {
            self.0.scan(table, start, stop, families, limit)
        }
    }

    #[test]
    fn sessions_written_from_borrowed_cells_are_the_rows_they_always_were() {
        let sessions = vec![
            session(
                "sess_a",
                "2025-03-12T08:00:00",
                "browsed",
                &["prod_00001", "prod_00002"],
                &[],
            ),
            session(
                "sess_b",
                "2025-03-12T09:30:00",
                "abandoned",
                &["prod_00003"],
                &[("prod_00003", 2)],
            ),
        ];
        let dirs = [
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        ];
        let open = |d: &tempfile::TempDir| {
            crate::wide_embedded::EmbeddedWideStore::open(d.path()).expect("open")
        };
        // The embedded store's own borrowed path, and the trait's default.
        let direct = SessionStore::new(Arc::new(open(&dirs[0]))).expect("store");
        let owned = SessionStore::new(Arc::new(Owned(open(&dirs[1])))).expect("store");
        direct.put_sessions(&sessions).expect("put");
        owned.put_sessions(&sessions).expect("put");
        let scan = |s: &SessionStore| {
            s.store
                .scan(USER_SESSIONS, b"", b"", &SESSION_FAMILIES, 10)
                .expect("scan")
        };
        let rows = scan(&direct);
        assert_eq!(rows, scan(&owned));
        // And what each cell holds, by hand; newest first.
        assert_eq!(rows.len(), 2);
        let b = &rows[0];
        assert!(b.key.starts_with(b"user_000001_") && b.key.ends_with(b"_sess_b"));
        assert_eq!(b.cells.len(), 13);
        assert_eq!(b.get("session_info", "duration"), Some(&b"60"[..]));
        assert_eq!(
            b.get("session_info", "start_time"),
            Some(&b"2025-03-12T09:30:00"[..])
        );
        assert_eq!(
            b.get("behavior", "viewed_products"),
            Some(&br#"["prod_00003"]"#[..])
        );
        assert_eq!(
            b.get("behavior", "cart_contents"),
            Some(&br#"[{"product_id":"prod_00003","quantity":2,"price":10.0}]"#[..])
        );
        assert_eq!(b.get("device_info", "type"), Some(&b"mobile"[..]));
        assert_eq!(rows[1].get("behavior", "cart_contents"), Some(&b"[]"[..]));
        assert_eq!(
            rows[1].key,
            session_row_key("user_000001", ts("2025-03-12T08:00:00"), "sess_a")
        );
        // Read back, they are the sessions written.
        assert_eq!(session_from_row(&rows[1]).expect("row"), sessions[0]);
        assert_eq!(session_from_row(&rows[0]).expect("row"), sessions[1]);
    }

    #[test]
    fn a_days_product_counts_take_each_view_once_and_a_carts_last_quantity() {
        let day = NaiveDate::from_ymd_opt(2025, 3, 12).expect("date");
        let sessions = [
            // Viewed p1 twice and p2; p1 in the cart twice (5 counts), p2 once.
            session(
                "s1",
                "2025-03-12T08:00:00",
                "converted",
                &["prod_00001", "prod_00002", "prod_00001"],
                &[("prod_00001", 2), ("prod_00002", 1), ("prod_00001", 5)],
            ),
            // Browsed: a view and a cart, no purchase.
            session(
                "s2",
                "2025-03-12T23:59:59",
                "abandoned",
                &["prod_00001"],
                &[("prod_00003", 4)],
            ),
            // Another day: left out.
            session(
                "s3",
                "2025-03-13T00:00:00",
                "converted",
                &["prod_00001"],
                &[("prod_00001", 7)],
            ),
        ];
        let counts = count_product_day(day, &sessions);
        let got: Vec<(&str, u64, u64, u64)> = counts
            .iter()
            .map(|(p, c)| (p.as_str(), c.views, c.cart_adds, c.purchases))
            .collect();
        assert_eq!(
            got,
            vec![
                ("prod_00001", 2, 5, 5),
                ("prod_00002", 1, 1, 1),
                ("prod_00003", 0, 4, 0),
            ]
        );
        assert!(counts.values().all(|c| c.day == day));
    }

    #[test]
    fn row_keys_sort_newest_first() {
        let older = session_row_key("user_000042", ts("2025-03-12T14:52:41"), "sess_a");
        let newer = session_row_key("user_000042", ts("2025-03-12T14:52:42"), "sess_b");
        assert!(newer < older);
        // 2025-03-12T14:52:41Z is 1741791161000 ms; 9999999999999 - that.
        assert_eq!(
            String::from_utf8(older).expect("ascii"),
            "user_000042_8258208838999_sess_a"
        );
        let d1 = product_day_key(
            "prod_00123",
            NaiveDate::from_ymd_opt(2025, 3, 12).expect("date"),
        );
        let d2 = product_day_key(
            "prod_00123",
            NaiveDate::from_ymd_opt(2025, 3, 13).expect("date"),
        );
        assert_eq!(
            String::from_utf8(d1.clone()).expect("ascii"),
            "prod_00123_79749687"
        );
        assert!(d2 < d1);
    }
}
