//! The records of a shop, shaped as in section 3 of the seed report.
//!
//! These are clean records: every value here passed its validator. Raw,
//! possibly dirty input is read by [`crate::validate`].

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Where a user lives, embedded in the user document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoData {
    /// City name.
    pub city: String,
    /// State or region.
    pub state: String,
    /// ISO country code.
    pub country: String,
}

/// A user's purchases so far, kept current by ingest as transactions arrive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurchaseSummary {
    /// Number of transactions.
    pub total_purchases: u64,
    /// Sum of transaction totals.
    pub total_spent: f64,
    /// `total_spent / total_purchases`, 0 when there are none.
    pub avg_order_value: f64,
    /// Time of the first transaction.
    pub first_purchase: Option<NaiveDateTime>,
    /// Time of the latest transaction.
    pub last_purchase: Option<NaiveDateTime>,
}

impl PurchaseSummary {
    /// The summary of `purchases` transactions that total `spent`: the one
    /// place the cents rounding and the average are made, whether a store
    /// folds transactions in one by one ([`add`](Self::add)) or a server
    /// sums them (MongoDB's aggregation).
    pub fn from_totals(
        purchases: u64,
        spent: f64,
        first_purchase: Option<NaiveDateTime>,
        last_purchase: Option<NaiveDateTime>,
    ) -> Self {
        let total_spent = round_cents(spent);
        PurchaseSummary {
            total_purchases: purchases,
            total_spent,
            avg_order_value: if purchases > 0 {
                round_cents(total_spent / purchases as f64)
            } else {
                0.0
            },
            first_purchase,
            last_purchase,
        }
    }

    /// Folds one more transaction in.
    pub fn add(&mut self, t: &Transaction) {
        *self = PurchaseSummary::from_totals(
            self.total_purchases + 1,
            self.total_spent + t.total,
            Some(
                self.first_purchase
                    .map_or(t.timestamp, |f| f.min(t.timestamp)),
            ),
            Some(
                self.last_purchase
                    .map_or(t.timestamp, |l| l.max(t.timestamp)),
            ),
        );
    }
}

/// A registered customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `user_000042`.
    pub user_id: String,
    /// Full name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Where the user lives.
    pub geo_data: GeoData,
    /// Day the account was created.
    pub registration_date: NaiveDate,
    /// Purchases so far.
    pub purchase_summary: PurchaseSummary,
}

/// A product category, referenced (not embedded) by products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// `cat_007`.
    pub category_id: String,
    /// Display name.
    pub name: String,
}

/// One entry of a product's price history: the price in force from `date`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    /// Price from this day on.
    pub price: f64,
    /// First day of this price.
    pub date: NaiveDate,
}

/// A product with its embedded price history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// `prod_00123`.
    pub product_id: String,
    /// Display name.
    pub name: String,
    /// Reference to a [`Category`].
    pub category_id: String,
    /// List price at creation.
    pub base_price: f64,
    /// Units in stock.
    pub current_stock: u32,
    /// Whether the product is for sale.
    pub is_active: bool,
    /// Price changes, oldest first; the first entry is the creation price.
    pub price_history: Vec<PricePoint>,
    /// Day the product was listed.
    pub creation_date: NaiveDate,
}

impl Product {
    /// The price in force on `day`: the latest history entry not after it,
    /// or the base price before the first entry.
    pub fn price_on(&self, day: NaiveDate) -> f64 {
        self.price_history
            .iter()
            .rev()
            .find(|p| p.date <= day)
            .map_or(self.base_price, |p| p.price)
    }
}

/// Kind of device a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    /// Phone.
    Mobile,
    /// Laptop or desktop computer.
    Desktop,
    /// Tablet.
    Tablet,
    /// Not known: data that does not say (an imported clickstream).
    Unknown,
}

impl DeviceType {
    /// The known device types, in a fixed order.
    pub const ALL: [DeviceType; 3] = [DeviceType::Mobile, DeviceType::Desktop, DeviceType::Tablet];

    /// Every value, [`Unknown`](Self::Unknown) last: the order stores
    /// number them in (append only).
    pub const EVERY: [DeviceType; 4] = [
        DeviceType::Mobile,
        DeviceType::Desktop,
        DeviceType::Tablet,
        DeviceType::Unknown,
    ];

    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Mobile => "mobile",
            DeviceType::Desktop => "desktop",
            DeviceType::Tablet => "tablet",
            DeviceType::Unknown => "unknown",
        }
    }
}

/// The `device_info` family: what the session ran on and where from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device kind.
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// Operating system.
    pub os: String,
    /// Browser.
    pub browser: String,
    /// City the session came from.
    pub city: String,
    /// State the session came from.
    pub state: String,
    /// Client IPv4 address.
    pub ip: String,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversionStatus {
    /// Ended in a purchase.
    Converted,
    /// Put items in the cart and left.
    Abandoned,
    /// Only looked.
    Browsed,
}

impl ConversionStatus {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Converted => "converted",
            ConversionStatus::Abandoned => "abandoned",
            ConversionStatus::Browsed => "browsed",
        }
    }
}

/// An item in a session's cart, at the price shown that day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartItem {
    /// Product in the cart.
    pub product_id: String,
    /// Units.
    pub quantity: u32,
    /// Unit price shown.
    pub price: f64,
}

/// A browsing session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `sess_…`.
    pub session_id: String,
    /// Who browsed.
    pub user_id: String,
    /// When the session started (its event time).
    pub start_time: NaiveDateTime,
    /// Length in seconds.
    pub duration_seconds: u32,
    /// Where the visit came from (`google`, `direct`, …).
    pub referrer: String,
    /// Device and location.
    pub device_info: DeviceInfo,
    /// How it ended.
    pub conversion_status: ConversionStatus,
    /// Products viewed, in order, without repeats.
    pub viewed_products: Vec<String>,
    /// Cart at the end of the session.
    pub cart_contents: Vec<CartItem>,
}

/// One line of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    /// Product bought.
    pub product_id: String,
    /// Units.
    pub quantity: u32,
    /// Price per unit that day.
    pub unit_price: f64,
    /// `quantity * unit_price`, rounded to cents.
    pub subtotal: f64,
}

/// How a transaction was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Credit card.
    CreditCard,
    /// Debit card.
    DebitCard,
    /// PayPal.
    Paypal,
    /// Apple Pay or Google Pay.
    MobileWallet,
    /// Bank transfer.
    BankTransfer,
    /// Not known: data that does not say (an imported clickstream).
    Unknown,
}

/// A purchase, with its line items embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// `txn_…`.
    pub transaction_id: String,
    /// The converted session this purchase closed.
    pub session_id: String,
    /// Who paid.
    pub user_id: String,
    /// When it was paid (its event time).
    pub timestamp: NaiveDateTime,
    /// Line items; never empty.
    pub items: Vec<LineItem>,
    /// Coupon discount off the sum of subtotals.
    pub discount: f64,
    /// Amount paid: sum of subtotals minus discount.
    pub total: f64,
    /// Payment method.
    pub payment_method: PaymentMethod,
}

/// A user's value as the nightly batch last computed it, written back to
/// the user document so the serving side can read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerValue {
    /// `user_000042`.
    pub user_id: String,
    /// `VIP`, `High`, `Medium` or `Low`.
    pub segment: String,
    /// Spent so far plus predicted future value (the seed's formula).
    pub total_clv: f64,
    /// Sum of the user's transaction totals.
    pub total_spent: f64,
    /// Average order value x engagement score x 0.5.
    pub predicted_future_value: f64,
    /// Sessions x 0.3 + converted x 0.5 + viewed / 100 x 0.2.
    pub engagement_score: f64,
    /// Expected spend over the next 90 days from BG/NBD and Gamma-Gamma,
    /// when the models could be fitted.
    pub predicted_spend_90d: Option<f64>,
    /// Last day of data the batch saw.
    pub as_of: NaiveDate,
}

/// Rounds a money amount to cents.
pub fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_folds_transactions_in_any_order() {
        let at = |t: &str| crate::time::parse(t).expect("literal");
        let txn = |total: f64, time: &str| Transaction {
            transaction_id: "txn_1".into(),
            session_id: "sess_1".into(),
            user_id: "user_000001".into(),
            timestamp: at(time),
            items: Vec::new(),
            discount: 0.0,
            total,
            payment_method: PaymentMethod::Paypal,
        };
        let mut s = PurchaseSummary::default();
        s.add(&txn(10.10, "2025-01-05T10:00:00"));
        s.add(&txn(20.30, "2025-01-02T09:00:00"));
        // 10.10 + 20.30 = 30.40 over 2: 15.20; first is the earlier one.
        assert_eq!(
            s,
            PurchaseSummary {
                total_purchases: 2,
                total_spent: 30.4,
                avg_order_value: 15.2,
                first_purchase: Some(at("2025-01-02T09:00:00")),
                last_purchase: Some(at("2025-01-05T10:00:00")),
            }
        );
        assert_eq!(
            PurchaseSummary::from_totals(0, 0.0, None, None),
            PurchaseSummary::default()
        );
        // A server's sum with float noise is rounded to cents the same way.
        assert_eq!(
            PurchaseSummary::from_totals(3, 0.1 + 0.2 + 0.3, None, None).total_spent,
            0.6
        );
        assert_eq!(
            PurchaseSummary::from_totals(3, 0.1 + 0.2 + 0.3, None, None).avg_order_value,
            0.2
        );
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test literal")
    }

    #[test]
    fn price_on_uses_the_latest_change_not_after_the_day() {
        let p = Product {
            product_id: "prod_00123".into(),
            name: "x".into(),
            category_id: "cat_007".into(),
            base_price: 149.99,
            current_stock: 47,
            is_active: true,
            price_history: vec![
                PricePoint {
                    price: 149.99,
                    date: day("2024-12-20"),
                },
                PricePoint {
                    price: 129.99,
                    date: day("2025-02-15"),
                },
            ],
            creation_date: day("2024-12-20"),
        };
        assert_eq!(p.price_on(day("2024-12-01")), 149.99);
        assert_eq!(p.price_on(day("2025-02-14")), 149.99);
        assert_eq!(p.price_on(day("2025-02-15")), 129.99);
        assert_eq!(p.price_on(day("2025-03-31")), 129.99);
    }

    #[test]
    fn session_serialises_with_the_seed_field_names() {
        let s = serde_json::to_value(DeviceInfo {
            device_type: DeviceType::Mobile,
            os: "iOS".into(),
            browser: "Safari".into(),
            city: "Kigali".into(),
            state: "Kigali".into(),
            ip: "10.0.0.1".into(),
        })
        .expect("serialise");
        assert_eq!(s["type"], "mobile");
        assert_eq!(round_cents(2.0 * 129.99), 259.98);
    }
}
