//! Validators: raw, possibly dirty records in; a clean record or a typed
//! [`Rejection`] out. One function per record kind.
//!
//! The rules are the seed report's cleaning rules (section 4.1: missing user
//! id, empty items, unparseable timestamp, non-positive price) plus what real
//! dirty data also needs: inconsistent money, non-positive quantities,
//! impossible durations, a status that contradicts the cart, missing ids,
//! wrong types and broken JSON.

use crate::types::{
    round_cents, CartItem, Category, ConversionStatus, DeviceInfo, GeoData, LineItem,
    PaymentMethod, PricePoint, Product, PurchaseSummary, Session, Transaction, User,
};
use serde::Deserialize;

/// The largest record (envelope included) a decoder reads; a larger one
/// is refused ([`Rejection::Oversized`]) without being parsed. The biggest
/// record the generator makes is a few KiB; Kafka's default message limit
/// is 1 MB.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Money amounts may differ by this much from their recomputation.
pub const MONEY_TOLERANCE: f64 = 0.011;

/// Longest plausible session: one day.
pub const MAX_SESSION_SECONDS: i64 = 86_400;

/// Why a record was refused. Every variant has a stable [`code`](Self::code)
/// used as the dead-letter reason and as a metric label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// A record larger than [`MAX_RECORD_BYTES`],
    /// refused before it is parsed.
    #[error("record of {0} bytes is larger than the limit of {max} bytes", max = MAX_RECORD_BYTES)]
    Oversized(usize),
    /// Not JSON at all, or truncated.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// An envelope with a schema version this build does not read.
    #[error("unsupported schema version {0}")]
    UnsupportedVersion(u64),
    /// An envelope of another kind than the topic carries.
    #[error("expected a {expected} event, found {found:?}")]
    WrongKind {
        /// Kind the reader expected.
        expected: &'static str,
        /// Kind found in the envelope.
        found: String,
    },
    /// A field holds a value of the wrong type or an unknown enum value.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// A required id or field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// An id longer than [`MAX_ID_BYTES`].
    #[error("{field} of {bytes} bytes is longer than the limit of {max} bytes", max = MAX_ID_BYTES)]
    IdTooLong {
        /// The field that holds it.
        field: &'static str,
        /// Its length in bytes.
        bytes: usize,
    },
    /// The record has no user id (seed rule).
    #[error("missing user id")]
    MissingUserId,
    /// A transaction without items (seed rule).
    #[error("transaction has no items")]
    EmptyItems,
    /// A timestamp or date that does not parse (seed rule).
    #[error("unparseable timestamp {0:?}")]
    BadTimestamp(String),
    /// A time or date more than [`MAX_FUTURE_SECONDS`] past the clock of
    /// the machine that reads it: taken in, it would move its partition's
    /// watermark and make every later event there late.
    #[error("timestamp {0:?} is in the future")]
    FutureTimestamp(String),
    /// A time or date before [`EARLIEST_ACCEPTED`] (1995-01-01): a
    /// default date (0000-01-01, 1900-01-01, the Unix epoch) standing for
    /// "unknown", which would skew every time-based figure.
    #[error("timestamp {0:?} is before 1995-01-01")]
    AncientTimestamp(String),
    /// A price of zero or less (seed rule).
    #[error("non-positive price {price} for {product_id}")]
    NonPositivePrice {
        /// Product the price belongs to.
        product_id: String,
        /// The offending price.
        price: f64,
    },
    /// A quantity of zero or less.
    #[error("non-positive quantity {quantity} for {product_id}")]
    NonPositiveQuantity {
        /// Product the quantity belongs to.
        product_id: String,
        /// The offending quantity.
        quantity: i64,
    },
    /// A line item whose subtotal is not quantity times unit price.
    #[error("subtotal {subtotal} of {product_id} is not quantity x unit price = {expected}")]
    SubtotalMismatch {
        /// Product of the line.
        product_id: String,
        /// Subtotal on the record.
        subtotal: f64,
        /// Quantity times unit price.
        expected: f64,
    },
    /// A total that is not the sum of subtotals minus the discount.
    #[error("total {total} is not items minus discount = {expected}")]
    TotalMismatch {
        /// Total on the record.
        total: f64,
        /// Sum of subtotals minus discount.
        expected: f64,
    },
    /// A session duration below zero or above one day.
    #[error("impossible session duration {0} s")]
    BadDuration(i64),
    /// A conversion status that contradicts the cart.
    #[error("status {status} contradicts a cart of {cart_items} item(s)")]
    InconsistentStatus {
        /// Status on the record.
        status: &'static str,
        /// Items in the cart.
        cart_items: usize,
    },
    /// A transaction id already stored with other content.
    #[error("transaction {0} is already stored with other content")]
    DuplicateConflict(String),
    /// Arrived after the aggregator's watermark had passed its event time.
    #[error("late event: {lag_seconds} s behind the watermark")]
    Late {
        /// How far behind the watermark the event time was.
        lag_seconds: i64,
    },
}

/// The reason codes, written once: [`Rejection::code`],
/// [`Rejection::CODES`] and the [`Reason`] enum are made from this one list,
/// and the `match` it makes is exhaustive, so a new variant without a code
/// does not compile.
macro_rules! rejection_codes {
    ($($variant:ident => $code:literal),+ $(,)?) => {
        impl Rejection {
            /// Every reason code, in a fixed order (for reports and metrics).
            pub const CODES: &'static [&'static str] = &[$($code),+];

            /// A short, stable, snake_case code for this reason.
            pub fn code(&self) -> &'static str {
                self.reason().code()
            }

            /// The kind of this rejection, without its details.
            pub fn reason(&self) -> Reason {
                match self {
                    $(Rejection::$variant { .. } => Reason::$variant,)+
                }
            }
        }

        /// The kinds of [`Rejection`], without their details: what the
        /// producer's dirty records aim at, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $(
                #[doc = concat!("`", $code, "`: see [`Rejection::", stringify!($variant), "`].")]
                $variant,
            )+
        }

        impl Reason {
            /// The dead-letter code, as [`Rejection::code`] gives it.
            pub fn code(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)+
                }
            }
        }
    };
}

rejection_codes! {
    Oversized => "oversized",
    InvalidJson => "invalid_json",
    UnsupportedVersion => "unsupported_version",
    WrongKind => "wrong_kind",
    WrongType => "wrong_type",
    MissingField => "missing_field",
    MissingUserId => "missing_user_id",
    IdTooLong => "id_too_long",
    EmptyItems => "empty_items",
    BadTimestamp => "bad_timestamp",
    FutureTimestamp => "future_timestamp",
    AncientTimestamp => "ancient_timestamp",
    NonPositivePrice => "non_positive_price",
    NonPositiveQuantity => "non_positive_quantity",
    SubtotalMismatch => "subtotal_mismatch",
    TotalMismatch => "total_mismatch",
    BadDuration => "bad_duration",
    InconsistentStatus => "inconsistent_status",
    DuplicateConflict => "duplicate_conflict",
    Late => "late",
}

impl Rejection {
    /// Maps a serde_json error to `InvalidJson` (syntax, truncation) or
    /// `WrongType` (well-formed JSON of the wrong shape).
    pub fn from_json(e: &serde_json::Error) -> Rejection {
        use serde_json::error::Category as C;
        match e.classify() {
            C::Syntax | C::Eof | C::Io => Rejection::InvalidJson(e.to_string()),
            C::Data => Rejection::WrongType(e.to_string()),
        }
    }
}

/// The longest id taken (product, user, session, transaction, category):
/// any UTF-8 text of 1 to 256 bytes.
pub const MAX_ID_BYTES: usize = 256;

fn short(s: String, field: &'static str) -> Result<String, Rejection> {
    if s.len() > MAX_ID_BYTES {
        return Err(Rejection::IdTooLong {
            field,
            bytes: s.len(),
        });
    }
    Ok(s)
}

fn required(v: Option<String>, field: &'static str) -> Result<String, Rejection> {
    match v {
        Some(s) if !s.trim().is_empty() => short(s, field),
        _ => Err(Rejection::MissingField(field)),
    }
}

fn user_id(v: Option<String>) -> Result<String, Rejection> {
    match v {
        Some(s) if !s.trim().is_empty() => short(s, "user_id"),
        _ => Err(Rejection::MissingUserId),
    }
}

/// How far past the reading machine's clock (UTC) an event time may be: a
/// day, for clocks set wrong and time zones written as UTC. Later is
/// `future_timestamp`.
pub const MAX_FUTURE_SECONDS: i64 = 86_400;

/// The latest event time accepted now: the clock plus
/// [`MAX_FUTURE_SECONDS`].
pub fn latest_accepted() -> chrono::NaiveDateTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    chrono::DateTime::from_timestamp(now.saturating_add(MAX_FUTURE_SECONDS), 0)
        .map_or(chrono::NaiveDateTime::MAX, |t| t.naive_utc())
}

/// The earliest event time or date accepted; earlier is
/// `ancient_timestamp`.
pub const EARLIEST_ACCEPTED: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1995, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

fn timestamp(v: Option<String>) -> Result<chrono::NaiveDateTime, Rejection> {
    let s = v.unwrap_or_default();
    match crate::time::parse(&s) {
        None => Err(Rejection::BadTimestamp(s)),
        Some(t) if t > latest_accepted() => Err(Rejection::FutureTimestamp(s)),
        Some(t) if t.date() < EARLIEST_ACCEPTED => Err(Rejection::AncientTimestamp(s)),
        Some(t) => Ok(t),
    }
}

fn date(v: Option<String>) -> Result<chrono::NaiveDate, Rejection> {
    let s = v.unwrap_or_default();
    match crate::time::parse_date(&s) {
        None => Err(Rejection::BadTimestamp(s)),
        Some(d) if d > latest_accepted().date() => Err(Rejection::FutureTimestamp(s)),
        Some(d) if d < EARLIEST_ACCEPTED => Err(Rejection::AncientTimestamp(s)),
        Some(d) => Ok(d),
    }
}

fn positive_price(product_id: &str, price: Option<f64>) -> Result<f64, Rejection> {
    match price {
        Some(p) if p > 0.0 && p.is_finite() => Ok(p),
        other => Err(Rejection::NonPositivePrice {
            product_id: product_id.to_string(),
            price: other.unwrap_or(0.0),
        }),
    }
}

fn positive_quantity(product_id: &str, quantity: Option<i64>) -> Result<u32, Rejection> {
    match quantity {
        Some(q) if q > 0 && q <= i64::from(u32::MAX) => Ok(q as u32),
        other => Err(Rejection::NonPositiveQuantity {
            product_id: product_id.to_string(),
            quantity: other.unwrap_or(0),
        }),
    }
}

/// A transaction line as it arrives.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct RawLineItem {
    pub(crate) product_id: Option<String>,
    pub(crate) quantity: Option<i64>,
    pub(crate) unit_price: Option<f64>,
    pub(crate) subtotal: Option<f64>,
}

/// A transaction as it arrives: every field optional, times as text.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct RawTransaction {
    pub(crate) transaction_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) timestamp: Option<String>,
    pub(crate) items: Option<Vec<RawLineItem>>,
    pub(crate) discount: Option<f64>,
    pub(crate) total: Option<f64>,
    pub(crate) payment_method: Option<PaymentMethod>,
}

/// Validates a raw transaction.
pub fn transaction(raw: RawTransaction) -> Result<Transaction, Rejection> {
    let transaction_id = required(raw.transaction_id, "transaction_id")?;
    let user_id = user_id(raw.user_id)?;
    let timestamp = timestamp(raw.timestamp)?;
    let raw_items = raw.items.unwrap_or_default();
    if raw_items.is_empty() {
        return Err(Rejection::EmptyItems);
    }
    let mut items = Vec::with_capacity(raw_items.len());
    let mut sum = 0.0;
    for it in raw_items {
        let product_id = required(it.product_id, "items.product_id")?;
        let unit_price = positive_price(&product_id, it.unit_price)?;
        let quantity = positive_quantity(&product_id, it.quantity)?;
        let expected = round_cents(f64::from(quantity) * unit_price);
        let subtotal = it.subtotal.unwrap_or(expected);
        if (subtotal - expected).abs() > MONEY_TOLERANCE {
            return Err(Rejection::SubtotalMismatch {
                product_id,
                subtotal,
                expected,
            });
        }
        sum += subtotal;
        items.push(LineItem {
            product_id,
            quantity,
            unit_price,
            subtotal,
        });
    }
    let discount = raw.discount.unwrap_or(0.0);
    let expected = round_cents(sum - discount);
    let total = raw.total.ok_or(Rejection::MissingField("total"))?;
    if !(0.0..=sum).contains(&discount) || (total - expected).abs() > MONEY_TOLERANCE {
        return Err(Rejection::TotalMismatch { total, expected });
    }
    Ok(Transaction {
        transaction_id,
        session_id: raw.session_id.unwrap_or_default(),
        user_id,
        timestamp,
        items,
        discount,
        total,
        payment_method: raw
            .payment_method
            .ok_or(Rejection::MissingField("payment_method"))?,
    })
}

/// A cart line as it arrives.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct RawCartItem {
    pub(crate) product_id: Option<String>,
    pub(crate) quantity: Option<i64>,
    pub(crate) price: Option<f64>,
}

/// A session as it arrives: every field optional, times as text.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct RawSession {
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) start_time: Option<String>,
    pub(crate) duration_seconds: Option<i64>,
    pub(crate) referrer: Option<String>,
    pub(crate) device_info: Option<DeviceInfo>,
    pub(crate) conversion_status: Option<ConversionStatus>,
    pub(crate) viewed_products: Option<Vec<String>>,
    pub(crate) cart_contents: Option<Vec<RawCartItem>>,
}

/// Validates a raw session.
pub fn session(raw: RawSession) -> Result<Session, Rejection> {
    let session_id = required(raw.session_id, "session_id")?;
    let user_id = user_id(raw.user_id)?;
    let start_time = timestamp(raw.start_time)?;
    let duration = raw
        .duration_seconds
        .ok_or(Rejection::MissingField("duration_seconds"))?;
    if !(0..=MAX_SESSION_SECONDS).contains(&duration) {
        return Err(Rejection::BadDuration(duration));
    }
    let device_info = raw
        .device_info
        .ok_or(Rejection::MissingField("device_info"))?;
    let status = raw
        .conversion_status
        .ok_or(Rejection::MissingField("conversion_status"))?;
    let mut cart_contents = Vec::new();
    for it in raw.cart_contents.unwrap_or_default() {
        let product_id = required(it.product_id, "cart_contents.product_id")?;
        let price = positive_price(&product_id, it.price)?;
        let quantity = positive_quantity(&product_id, it.quantity)?;
        cart_contents.push(CartItem {
            product_id,
            quantity,
            price,
        });
    }
    let has_cart = !cart_contents.is_empty();
    if has_cart == (status == ConversionStatus::Browsed) {
        return Err(Rejection::InconsistentStatus {
            status: status.as_str(),
            cart_items: cart_contents.len(),
        });
    }
    Ok(Session {
        session_id,
        user_id,
        start_time,
        duration_seconds: duration as u32,
        referrer: raw.referrer.unwrap_or_else(|| "direct".to_string()),
        device_info,
        conversion_status: status,
        viewed_products: raw
            .viewed_products
            .unwrap_or_default()
            .into_iter()
            .map(|p| short(p, "viewed_products"))
            .collect::<Result<_, _>>()?,
        cart_contents,
    })
}

/// A price-history entry as it arrives.
#[derive(Debug, Default, Deserialize)]
pub struct RawPricePoint {
    price: Option<f64>,
    date: Option<String>,
}

/// A product as it arrives.
#[derive(Debug, Default, Deserialize)]
pub struct RawProduct {
    product_id: Option<String>,
    name: Option<String>,
    category_id: Option<String>,
    base_price: Option<f64>,
    current_stock: Option<i64>,
    is_active: Option<bool>,
    price_history: Option<Vec<RawPricePoint>>,
    creation_date: Option<String>,
}

/// Validates a raw product.
pub fn product(raw: RawProduct) -> Result<Product, Rejection> {
    let product_id = required(raw.product_id, "product_id")?;
    let base_price = positive_price(&product_id, raw.base_price)?;
    let mut price_history = Vec::new();
    for p in raw.price_history.unwrap_or_default() {
        price_history.push(PricePoint {
            price: positive_price(&product_id, p.price)?,
            date: date(p.date)?,
        });
    }
    price_history.sort_by_key(|p| p.date);
    Ok(Product {
        name: raw.name.unwrap_or_default(),
        category_id: required(raw.category_id, "category_id")?,
        base_price,
        current_stock: raw.current_stock.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
        is_active: raw.is_active.unwrap_or(true),
        price_history,
        creation_date: date(raw.creation_date)?,
        product_id,
    })
}

/// A user as it arrives.
#[derive(Debug, Default, Deserialize)]
pub struct RawUser {
    user_id: Option<String>,
    name: Option<String>,
    email: Option<String>,
    geo_data: Option<GeoData>,
    registration_date: Option<String>,
    purchase_summary: Option<PurchaseSummary>,
}

/// Validates a raw user.
pub fn user(raw: RawUser) -> Result<User, Rejection> {
    Ok(User {
        user_id: user_id(raw.user_id)?,
        name: raw.name.unwrap_or_default(),
        email: raw.email.unwrap_or_default(),
        geo_data: raw.geo_data.ok_or(Rejection::MissingField("geo_data"))?,
        registration_date: date(raw.registration_date)?,
        purchase_summary: raw.purchase_summary.unwrap_or_default(),
    })
}

/// A category as it arrives.
#[derive(Debug, Default, Deserialize)]
pub struct RawCategory {
    category_id: Option<String>,
    name: Option<String>,
}

/// Validates a raw category.
pub fn category(raw: RawCategory) -> Result<Category, Rejection> {
    Ok(Category {
        category_id: required(raw.category_id, "category_id")?,
        name: raw.name.unwrap_or_default(),
    })
}
