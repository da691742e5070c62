//! The event stream: every catalog record, then 90 days of sessions and
//! transactions in event-time order, some deliberately dirty.
//!
//! Generation is two-phase so that it is deterministic, exact and streams
//! in bounded memory: a compact skeleton of all sessions (time, user,
//! device, outcome: 16 bytes each) is drawn and sorted first; each session's
//! details are then drawn from its own RNG stream as the iterator reaches
//! it, and its transaction waits in a small heap until its time comes.

use crate::catalog::weekday_weight;
use crate::catalog::{Catalog, HOUR_WEIGHTS, STREAM_FIRST_SESSION, STREAM_SKELETON};
use crate::config::ShopConfig;
use crate::sampling::{lognormal, pick, scramble48, Alias};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use schemas::envelope::{wrap, Kind};
use schemas::types::round_cents;
use schemas::validate::Reason;
use schemas::{ids, topics};
use schemas::{
    CartItem, ConversionStatus, DeviceInfo, DeviceType, LineItem, PaymentMethod, Session,
    Transaction,
};
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

const STREAM_CATALOG_DIRTY: u64 = 5;

/// Which topic an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Categories, products, users.
    Catalog,
    /// Browsing sessions.
    Sessions,
    /// Transactions.
    Transactions,
}

impl Stream {
    /// The topic name.
    pub fn topic(self) -> &'static str {
        match self {
            Stream::Catalog => topics::CATALOG,
            Stream::Sessions => topics::SESSIONS,
            Stream::Transactions => topics::TRANSACTIONS,
        }
    }
}

/// One generated record, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Topic it belongs on.
    pub stream: Stream,
    /// Record kind inside the envelope.
    pub kind: Kind,
    /// Event time (catalog records: the start of the period).
    pub time: NaiveDateTime,
    /// Partitioning key: the user id for events, the record id for catalog.
    pub key: String,
    /// The record as JSON text; broken on purpose when `dirty` is set.
    pub data: Vec<u8>,
    /// The rule this record was made to break (a `Rejection` code).
    pub dirty: Option<&'static str>,
}

impl Event {
    /// The envelope as published.
    pub fn payload(&self) -> Vec<u8> {
        wrap(self.kind, &self.data)
    }

    /// Event time in milliseconds since the epoch.
    pub fn timestamp_ms(&self) -> i64 {
        schemas::time::epoch_millis(self.time)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    t: u32,
    user: u32,
    device: u8,
    outcome: u8,
}

const BROWSED: u8 = 0;
const ABANDONED: u8 = 1;
const CONVERTED: u8 = 2;

fn device_of(i: u8) -> DeviceType {
    DeviceType::ALL[usize::from(i) % 3]
}

fn device_index(d: DeviceType) -> u8 {
    match d {
        DeviceType::Mobile => 0,
        // The generator makes no unknown device (`device_of` draws from
        // the known ones).
        DeviceType::Desktop | DeviceType::Unknown => 1,
        DeviceType::Tablet => 2,
    }
}

/// Relative chance of converting by device: mobile converts less, as in
/// the seed report (section 7.3).
/// Mobile's chance to buy in a session against desktop's 1: chosen so that
/// mobile converts about 8 points below desktop, the seed report's "8%
/// lower" read as percentage points (docs/data.md).
const MOBILE_CONVERSION_WEIGHT: f64 = 0.68;

/// Share of the sessions that neither buy nor fill a cart that leave
/// without viewing a product (a bounce): about a quarter of all sessions.
const BOUNCE_SHARE_OF_BROWSED: f64 = 0.45;

fn device_conversion_weight(d: DeviceType) -> f64 {
    match d {
        DeviceType::Desktop | DeviceType::Unknown => 1.0,
        DeviceType::Tablet => 0.9,
        DeviceType::Mobile => MOBILE_CONVERSION_WEIGHT,
    }
}

fn skeleton(cfg: &ShopConfig, catalog: &Catalog) -> Vec<Slot> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(STREAM_SKELETON);
    let days: Vec<f64> = (0..cfg.days)
        .map(|d| {
            let date = cfg.start_date + Duration::days(i64::from(d));
            let trend = 1.0 + 0.25 * f64::from(d) / f64::from(cfg.days);
            // One sale day a month draws a crowd.
            let sale = if d % 30 == 24 { 1.6 } else { 1.0 };
            weekday_weight(date) * trend * sale
        })
        .collect();
    let day_alias = Alias::new_or_uniform(&days);
    let hour_alias = Alias::new_or_uniform(&HOUR_WEIGHTS);
    let n = cfg.sessions as usize;
    let mut slots = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let day = day_alias.sample(&mut rng) as u32;
        let hour = hour_alias.sample(&mut rng) as u32;
        let t = day * 86_400 + hour * 3_600 + rng.random_range(0..3_600);
        let user = catalog.user_activity.sample(&mut rng) as u32;
        let persona = &catalog.personas[user as usize];
        let device = if rng.random_bool(0.8) {
            persona.device
        } else {
            DeviceType::ALL[rng.random_range(0..3)]
        };
        // Efraimidis-Spirakis: the T largest u^(1/w) are a weighted sample
        // without replacement, giving exactly T conversions.
        let w = device_conversion_weight(device) * persona.propensity;
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        keys.push(u.ln() / w);
        slots.push(Slot {
            t,
            user,
            device: device_index(device),
            outcome: BROWSED,
        });
    }
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let t = (cfg.transactions as usize).min(n);
    if t > 0 && t < n {
        idx.select_nth_unstable_by(t, |a, b| keys[*b as usize].total_cmp(&keys[*a as usize]));
    }
    for &i in &idx[..t] {
        slots[i as usize].outcome = CONVERTED;
    }
    let rest = &mut idx[t..];
    let a = (cfg.abandoned_sessions() as usize).min(rest.len());
    for k in 0..a {
        let j = rng.random_range(k..rest.len());
        rest.swap(k, j);
        slots[rest[k] as usize].outcome = ABANDONED;
    }
    slots.sort_by_key(|s| s.t);
    slots
}

struct PendingTxn {
    t: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for PendingTxn {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for PendingTxn {}
impl PartialOrd for PendingTxn {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for PendingTxn {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(o.t, o.seq))
    }
}

/// Iterator over every event of the shop, in publication order.
pub struct EventStream {
    cfg: ShopConfig,
    catalog: Arc<Catalog>,
    start: NaiveDateTime,
    slots: Vec<Slot>,
    next_slot: usize,
    catalog_pos: usize,
    catalog_rng: ChaCha8Rng,
    pending: BinaryHeap<Reverse<PendingTxn>>,
}

impl EventStream {
    /// The stream for `cfg` over `catalog` (generated from the same config).
    pub fn new(cfg: &ShopConfig, catalog: Arc<Catalog>) -> Self {
        let mut catalog_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        catalog_rng.set_stream(STREAM_CATALOG_DIRTY);
        EventStream {
            slots: skeleton(cfg, &catalog),
            start: cfg.start_date.and_hms_opt(0, 0, 0).unwrap_or_default(),
            cfg: cfg.clone(),
            catalog,
            next_slot: 0,
            catalog_pos: 0,
            catalog_rng,
            pending: BinaryHeap::new(),
        }
    }

    /// Number of events the stream yields in all.
    pub fn total(&self) -> u64 {
        (self.catalog_len() + self.slots.len()) as u64
            + self.slots.iter().filter(|s| s.outcome == CONVERTED).count() as u64
    }

    fn catalog_len(&self) -> usize {
        self.catalog.categories.len() + self.catalog.products.len() + self.catalog.users.len()
    }

    fn catalog_event(&mut self, pos: usize) -> Event {
        let c = &self.catalog;
        let (nc, np) = (c.categories.len(), c.products.len());
        let rng = &mut self.catalog_rng;
        let (kind, key, value, dirty) = if pos < nc {
            let cat = &c.categories[pos];
            (
                Kind::Category,
                cat.category_id.clone(),
                to_value(cat),
                false,
            )
        } else if pos < nc + np {
            let p = &c.products[pos - nc];
            (
                Kind::Product,
                p.product_id.clone(),
                to_value(p),
                c.dirty_products[pos - nc],
            )
        } else {
            let u = &c.users[pos - nc - np];
            (
                Kind::User,
                u.user_id.clone(),
                to_value(u),
                c.dirty_users[pos - nc - np],
            )
        };
        let (data, label) = if dirty {
            let (d, l) = match kind {
                Kind::Product => dirty_product(rng, value),
                _ => dirty_user(rng, value),
            };
            (d, Some(l))
        } else {
            (value.to_string().into_bytes(), None)
        };
        Event {
            stream: Stream::Catalog,
            kind,
            time: self.start,
            key,
            data,
            dirty: label,
        }
    }

    fn session_events(&mut self, i: usize) -> (Event, Option<(i64, Event)>) {
        let slot = self.slots[i];
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        rng.set_stream(STREAM_FIRST_SESSION + i as u64);
        // The last second of the shop's last day: a purchase is dated
        // within the period, so no day after it has a few stray sales.
        let end = self.start + Duration::days(i64::from(self.cfg.days)) - Duration::seconds(1);
        let (session, txn) = build_session(
            &self.catalog,
            &mut rng,
            self.start,
            end,
            i as u64,
            self.cfg.seed,
            slot,
        );
        let session_event = finish(
            &mut rng,
            self.cfg.dirty_share,
            Stream::Sessions,
            session.start_time,
            &session.user_id,
            &session,
            dirty_session,
        );
        let txn_event = txn.map(|t| {
            let secs = (t.timestamp - self.start).num_seconds();
            let ev = finish(
                &mut rng,
                self.cfg.dirty_share,
                Stream::Transactions,
                t.timestamp,
                &t.user_id,
                &t,
                dirty_transaction,
            );
            (secs, ev)
        });
        (session_event, txn_event)
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A record the producer publishes, written as JSON by
/// `schemas::json_write` (serde_json's bytes, without serde's derived code).
trait Record: serde::Serialize {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl Record for Session {
    fn write_json(&self, out: &mut Vec<u8>) {
        schemas::json_write::session(self, out);
    }
}

impl Record for Transaction {
    fn write_json(&self, out: &mut Vec<u8>) {
        schemas::json_write::transaction(self, out);
    }
}

/// Serialises a clean record, then with probability `dirty_share` breaks
/// it, and with a small probability writes its time in another valid
/// format (real feeds mix formats; the validator normalises them).
fn finish<T: Record>(
    rng: &mut ChaCha8Rng,
    dirty_share: f64,
    stream: Stream,
    time: NaiveDateTime,
    user_id: &str,
    record: &T,
    breaker: impl FnOnce(&mut ChaCha8Rng, Value) -> (Vec<u8>, &'static str),
) -> Event {
    let kind = if stream == Stream::Sessions {
        Kind::Session
    } else {
        Kind::Transaction
    };
    let time_field = if stream == Stream::Sessions {
        "start_time"
    } else {
        "timestamp"
    };
    let (data, dirty) = if rng.random_bool(dirty_share) {
        let (d, l) = breaker(rng, to_value(record));
        (d, Some(l))
    } else if rng.random_bool(0.01) {
        let mut v = to_value(record);
        let alt = if rng.random_bool(0.5) {
            time.format("%Y-%m-%d %H:%M:%S")
        } else {
            time.format("%Y-%m-%dT%H:%M:%SZ")
        };
        v[time_field] = json!(alt.to_string());
        (v.to_string().into_bytes(), None)
    } else {
        let mut data = Vec::with_capacity(512);
        record.write_json(&mut data);
        (data, None)
    };
    Event {
        stream,
        kind,
        time,
        key: user_id.to_string(),
        data,
        dirty,
    }
}

fn build_session(
    c: &Catalog,
    rng: &mut ChaCha8Rng,
    start: NaiveDateTime,
    end: NaiveDateTime,
    index: u64,
    seed: u64,
    slot: Slot,
) -> (Session, Option<Transaction>) {
    let start_time = start + Duration::seconds(i64::from(slot.t));
    let day: NaiveDate = start_time.date();
    let user = &c.users[slot.user as usize];
    let device = device_of(slot.device);

    // Views: a quarter of sessions bounce; the others look at a handful of
    // products, a few at dozens.
    let bounce = slot.outcome == BROWSED && rng.random_bool(BOUNCE_SHARE_OF_BROWSED);
    let n_views = if bounce {
        0
    } else if rng.random_bool(0.0005) {
        // A few look at dozens (the aggregator must cap those at 50).
        rng.random_range(51..80)
    } else {
        let mut k = 1;
        while k < 40 && rng.random_bool(0.77) {
            k += 1;
        }
        k
    };
    let mut viewed: Vec<u32> = if bounce {
        Vec::new()
    } else {
        vec![c.popular(rng)]
    };
    let mut attempts = 0;
    while viewed.len() < n_views && attempts < n_views * 4 {
        attempts += 1;
        let r: f64 = rng.random();
        let base = viewed[rng.random_range(0..viewed.len())] as usize;
        // Browsing stays near where it started: the category's popular
        // products and the complements, and now and then anywhere.
        let cand = if r < 0.50 {
            c.popular_in(rng, c.product_category[base])
        } else if r < 0.80 {
            let comps = &c.complements[base];
            (!comps.is_empty()).then(|| comps[rng.random_range(0..comps.len())])
        } else {
            Some(c.popular(rng))
        };
        if let Some(p) = cand {
            if !viewed.contains(&p) {
                viewed.push(p);
            }
        }
    }

    // Cart: seeded from what was viewed, grown along planted complements.
    let mut cart: Vec<u32> = Vec::new();
    if slot.outcome != BROWSED {
        let base = *pick(
            rng,
            &[(1usize, 0.40), (2, 0.30), (3, 0.17), (4, 0.08), (5, 0.05)],
        );
        let basket = c.personas[slot.user as usize].basket;
        let size = ((base as f64 * basket).round() as usize).clamp(1, 15);
        cart.push(if rng.random_bool(0.6) {
            viewed[0]
        } else {
            viewed[rng.random_range(0..viewed.len())]
        });
        let mut attempts = 0;
        while cart.len() < size && attempts < 4 * size + 10 {
            attempts += 1;
            let cand = if rng.random_bool(0.65) {
                let comps = &c.complements[cart[rng.random_range(0..cart.len())] as usize];
                (!comps.is_empty()).then(|| comps[rng.random_range(0..comps.len())])
            } else {
                let free: Vec<u32> = viewed
                    .iter()
                    .copied()
                    .filter(|p| !cart.contains(p))
                    .collect();
                Some(if free.is_empty() {
                    c.popular(rng)
                } else {
                    free[rng.random_range(0..free.len())]
                })
            };
            if let Some(p) = cand {
                if !cart.contains(&p) {
                    cart.push(p);
                    if !viewed.contains(&p) {
                        viewed.push(p);
                    }
                }
            }
        }
    }
    let quantity =
        |rng: &mut ChaCha8Rng| *pick(rng, &[(1u32, 0.78), (2, 0.16), (3, 0.05), (4, 0.01)]);
    let cart_contents: Vec<CartItem> = cart
        .iter()
        .map(|&p| {
            let prod = &c.products[p as usize];
            CartItem {
                product_id: prod.product_id.clone(),
                quantity: quantity(rng),
                price: prod.price_on(day),
            }
        })
        .collect();

    let median = [180.0, 420.0, 600.0][usize::from(slot.outcome)];
    let duration_seconds = lognormal(rng, median, 0.7).clamp(5.0, 14_400.0) as u32;
    let (os, browser) = match device {
        DeviceType::Mobile => (
            *pick(rng, &[("Android", 0.55), ("iOS", 0.45)]),
            *pick(
                rng,
                &[
                    ("Chrome", 0.55),
                    ("Safari", 0.35),
                    ("Samsung Internet", 0.10),
                ],
            ),
        ),
        DeviceType::Desktop => (
            *pick(rng, &[("Windows", 0.70), ("macOS", 0.25), ("Linux", 0.05)]),
            *pick(
                rng,
                &[
                    ("Chrome", 0.65),
                    ("Edge", 0.15),
                    ("Firefox", 0.10),
                    ("Safari", 0.10),
                ],
            ),
        ),
        DeviceType::Tablet => (
            *pick(rng, &[("iPadOS", 0.6), ("Android", 0.4)]),
            *pick(rng, &[("Safari", 0.55), ("Chrome", 0.45)]),
        ),
        DeviceType::Unknown => ("unknown", "unknown"),
    };
    let (city, state) = if rng.random_bool(0.9) {
        (user.geo_data.city.clone(), user.geo_data.state.clone())
    } else {
        use fake::Fake;
        (
            fake::faker::address::en::CityName().fake_with_rng::<String, _>(rng),
            fake::faker::address::en::StateName().fake_with_rng::<String, _>(rng),
        )
    };
    let ip = format!(
        "{}.{}.{}.{}",
        rng.random_range(11..224),
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    );
    let referrer = *pick(
        rng,
        &[
            ("google", 35.0),
            ("direct", 25.0),
            ("facebook", 10.0),
            ("email", 10.0),
            ("instagram", 8.0),
            ("affiliate", 7.0),
            ("bing", 5.0),
        ],
    );
    let session_id = ids::session_id(scramble48(index, seed ^ 0x5e55));
    let conversion_status = match slot.outcome {
        CONVERTED => ConversionStatus::Converted,
        ABANDONED => ConversionStatus::Abandoned,
        _ => ConversionStatus::Browsed,
    };

    let txn = (slot.outcome == CONVERTED).then(|| {
        let offset = (f64::from(duration_seconds) * rng.random_range(0.6..1.0)) as i64;
        let timestamp = (start_time + Duration::seconds(offset.max(1)))
            .min(end.max(start_time + Duration::seconds(1)));
        let items: Vec<LineItem> = cart_contents
            .iter()
            .zip(&cart)
            .map(|(ci, &p)| {
                let unit_price = c.products[p as usize].price_on(timestamp.date());
                LineItem {
                    product_id: ci.product_id.clone(),
                    quantity: ci.quantity,
                    unit_price,
                    subtotal: round_cents(f64::from(ci.quantity) * unit_price),
                }
            })
            .collect();
        let sum: f64 = items.iter().map(|i| i.subtotal).sum();
        let discount = if rng.random_bool(0.12) {
            round_cents(sum * *pick(rng, &[(0.05, 1.0), (0.10, 2.0), (0.15, 1.0), (0.20, 0.5)]))
        } else {
            0.0
        };
        Transaction {
            transaction_id: ids::transaction_id(scramble48(index, seed ^ 0x7a11)),
            session_id: session_id.clone(),
            user_id: user.user_id.clone(),
            timestamp,
            items,
            discount,
            total: round_cents(sum - discount),
            payment_method: *pick(
                rng,
                &[
                    (PaymentMethod::CreditCard, 45.0),
                    (PaymentMethod::DebitCard, 20.0),
                    (PaymentMethod::Paypal, 20.0),
                    (PaymentMethod::MobileWallet, 10.0),
                    (PaymentMethod::BankTransfer, 5.0),
                ],
            ),
        }
    });
    let session = Session {
        session_id,
        user_id: user.user_id.clone(),
        start_time,
        duration_seconds,
        referrer: referrer.to_string(),
        device_info: DeviceInfo {
            device_type: device,
            os: os.to_string(),
            browser: browser.to_string(),
            city,
            state,
            ip,
        },
        conversion_status,
        viewed_products: viewed
            .iter()
            .map(|&p| c.products[p as usize].product_id.clone())
            .collect(),
        cart_contents,
    };
    (session, txn)
}

impl Iterator for EventStream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.catalog_pos < self.catalog_len() {
            let pos = self.catalog_pos;
            self.catalog_pos += 1;
            return Some(self.catalog_event(pos));
        }
        let next_t = self.slots.get(self.next_slot).map(|s| i64::from(s.t));
        if let Some(Reverse(top)) = self.pending.peek() {
            if next_t.is_none_or(|t| top.t <= t) {
                return self.pending.pop().map(|Reverse(p)| p.event);
            }
        }
        let i = self.next_slot;
        if i >= self.slots.len() {
            return None;
        }
        self.next_slot += 1;
        let (session, txn) = self.session_events(i);
        if let Some((t, event)) = txn {
            self.pending.push(Reverse(PendingTxn {
                t,
                seq: i as u64,
                event,
            }));
        }
        Some(session)
    }
}

// Dirty records: each breaker breaks exactly one rule and returns its code.

const BAD_TIMESTAMPS: [&str; 5] = [
    "2025-02-30T10:00:00",
    "N/A",
    "",
    "12/03/2025 14:52",
    "2025-13-01T00:00:00",
];

fn truncated(rng: &mut ChaCha8Rng, v: &Value) -> Vec<u8> {
    let mut bytes = v.to_string().into_bytes();
    let cut = rng.random_range(1..bytes.len().max(2));
    bytes.truncate(cut);
    // Keep the bytes valid UTF-8 so files stay readable line by line.
    while std::str::from_utf8(&bytes).is_err() {
        bytes.pop();
    }
    bytes
}

fn bad_timestamp(rng: &mut ChaCha8Rng) -> Value {
    json!(BAD_TIMESTAMPS[rng.random_range(0..BAD_TIMESTAMPS.len())])
}

fn remove(v: &mut Value, field: &str) {
    if let Some(o) = v.as_object_mut() {
        o.remove(field);
    }
}

fn dirty_session(rng: &mut ChaCha8Rng, mut v: Value) -> (Vec<u8>, &'static str) {
    let has_cart = v["cart_contents"].as_array().is_some_and(|a| !a.is_empty());
    let mut rules = vec![
        Reason::MissingUserId,
        Reason::BadTimestamp,
        Reason::BadDuration,
        Reason::InconsistentStatus,
        Reason::WrongType,
        Reason::MissingField,
        Reason::InvalidJson,
    ];
    if has_cart {
        rules.extend([Reason::NonPositivePrice, Reason::NonPositiveQuantity]);
    }
    let rule = rules[rng.random_range(0..rules.len())];
    match rule {
        Reason::MissingUserId => {
            v["user_id"] = if rng.random_bool(0.5) {
                Value::Null
            } else {
                json!("")
            }
        }
        Reason::BadTimestamp => v["start_time"] = bad_timestamp(rng),
        Reason::BadDuration => {
            v["duration_seconds"] = if rng.random_bool(0.5) {
                json!(-rng.random_range(1..600))
            } else {
                json!(rng.random_range(90_000..900_000))
            }
        }
        Reason::InconsistentStatus => {
            v["conversion_status"] = json!(if has_cart { "browsed" } else { "converted" })
        }
        Reason::WrongType => {
            v["duration_seconds"] = json!(format!("{}s", rng.random_range(5..900)))
        }
        Reason::MissingField => remove(&mut v, "session_id"),
        Reason::NonPositivePrice => {
            v["cart_contents"][0]["price"] = json!(-(rng.random_range(0..50) as f64))
        }
        Reason::NonPositiveQuantity => {
            v["cart_contents"][0]["quantity"] = json!(-rng.random_range(0..3))
        }
        // InvalidJson, the one rule left.
        _ => return (truncated(rng, &v), Reason::InvalidJson.code()),
    }
    (v.to_string().into_bytes(), rule.code())
}

fn dirty_transaction(rng: &mut ChaCha8Rng, mut v: Value) -> (Vec<u8>, &'static str) {
    const RULES: [Reason; 10] = [
        Reason::MissingUserId,
        Reason::EmptyItems,
        Reason::BadTimestamp,
        Reason::NonPositivePrice,
        Reason::NonPositiveQuantity,
        Reason::SubtotalMismatch,
        Reason::TotalMismatch,
        Reason::WrongType,
        Reason::MissingField,
        Reason::InvalidJson,
    ];
    let rule = RULES[rng.random_range(0..RULES.len())];
    match rule {
        Reason::MissingUserId => {
            v["user_id"] = if rng.random_bool(0.5) {
                Value::Null
            } else {
                json!("")
            }
        }
        Reason::EmptyItems => {
            if rng.random_bool(0.5) {
                v["items"] = json!([]);
            } else {
                remove(&mut v, "items");
            }
        }
        Reason::BadTimestamp => v["timestamp"] = bad_timestamp(rng),
        Reason::NonPositivePrice => {
            let p = -(rng.random_range(0..50) as f64);
            v["items"][0]["unit_price"] = json!(p);
            v["items"][0]["subtotal"] = json!(p);
        }
        Reason::NonPositiveQuantity => {
            v["items"][0]["quantity"] = json!(0);
            v["items"][0]["subtotal"] = json!(0.0);
        }
        Reason::SubtotalMismatch => {
            let s = v["items"][0]["subtotal"].as_f64().unwrap_or(0.0);
            v["items"][0]["subtotal"] = json!(round_cents(s * 1.5 + 1.0));
        }
        Reason::TotalMismatch => {
            let t = v["total"].as_f64().unwrap_or(0.0);
            v["total"] = json!(round_cents(t * 1.37 + 5.0));
        }
        Reason::WrongType => {
            let q = v["items"][0]["quantity"].as_u64().unwrap_or(1);
            v["items"][0]["quantity"] = json!(q.to_string());
        }
        Reason::MissingField => remove(&mut v, "transaction_id"),
        // InvalidJson, the one rule left.
        _ => return (truncated(rng, &v), Reason::InvalidJson.code()),
    }
    (v.to_string().into_bytes(), rule.code())
}

fn dirty_product(rng: &mut ChaCha8Rng, mut v: Value) -> (Vec<u8>, &'static str) {
    const RULES: [Reason; 5] = [
        Reason::NonPositivePrice,
        Reason::BadTimestamp,
        Reason::MissingField,
        Reason::WrongType,
        Reason::InvalidJson,
    ];
    let rule = RULES[rng.random_range(0..RULES.len())];
    match rule {
        Reason::NonPositivePrice => v["base_price"] = json!(-(rng.random_range(0..100) as f64)),
        Reason::BadTimestamp => v["creation_date"] = json!("N/A"),
        Reason::MissingField => remove(&mut v, "product_id"),
        Reason::WrongType => v["current_stock"] = json!("many"),
        // InvalidJson, the one rule left.
        _ => return (truncated(rng, &v), Reason::InvalidJson.code()),
    }
    (v.to_string().into_bytes(), rule.code())
}

fn dirty_user(rng: &mut ChaCha8Rng, mut v: Value) -> (Vec<u8>, &'static str) {
    const RULES: [Reason; 5] = [
        Reason::MissingUserId,
        Reason::BadTimestamp,
        Reason::MissingField,
        Reason::WrongType,
        Reason::InvalidJson,
    ];
    let rule = RULES[rng.random_range(0..RULES.len())];
    match rule {
        Reason::MissingUserId => v["user_id"] = Value::Null,
        Reason::BadTimestamp => v["registration_date"] = json!("yesterday"),
        Reason::MissingField => remove(&mut v, "geo_data"),
        Reason::WrongType => v["geo_data"] = json!("Kigali"),
        // InvalidJson, the one rule left.
        _ => return (truncated(rng, &v), Reason::InvalidJson.code()),
    }
    (v.to_string().into_bytes(), rule.code())
}
