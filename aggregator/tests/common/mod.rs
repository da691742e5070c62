//! Events for the aggregator tests, built from the schemas' types.
#![allow(dead_code)]

use schemas::envelope::{encode, Kind};
use schemas::*;

pub fn ts(s: &str) -> chrono::NaiveDateTime {
    schemas::time::parse(s).expect("test literal")
}

pub fn txn(id: &str, at: &str, products: &[&str]) -> Vec<u8> {
    let items: Vec<LineItem> = products
        .iter()
        .map(|p| LineItem {
            product_id: p.to_string(),
            quantity: 1,
            unit_price: 10.0,
            subtotal: 10.0,
        })
        .collect();
    let total = 10.0 * products.len() as f64;
    encode(
        Kind::Transaction,
        &Transaction {
            transaction_id: id.into(),
            session_id: "sess_x".into(),
            user_id: "user_000007".into(),
            timestamp: ts(at),
            items,
            discount: 0.0,
            total,
            payment_method: PaymentMethod::Paypal,
        },
    )
}

pub fn session(at: &str, viewed: &[&str], status: ConversionStatus) -> Vec<u8> {
    let cart = if status == ConversionStatus::Browsed {
        vec![]
    } else {
        vec![CartItem {
            product_id: viewed[0].to_string(),
            quantity: 1,
            price: 10.0,
        }]
    };
    encode(
        Kind::Session,
        &Session {
            session_id: format!("sess_{at}"),
            user_id: "user_000007".into(),
            start_time: ts(at),
            duration_seconds: 60,
            referrer: "direct".into(),
            device_info: DeviceInfo {
                device_type: DeviceType::Desktop,
                os: "Linux".into(),
                browser: "Firefox".into(),
                city: "Kigali".into(),
                state: "Kigali".into(),
                ip: "10.0.0.1".into(),
            },
            conversion_status: status,
            viewed_products: viewed.iter().map(|s| s.to_string()).collect(),
            cart_contents: cart,
        },
    )
}
