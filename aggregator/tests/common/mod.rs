//! Events for the aggregator tests, built from the schemas' types.
#![allow(dead_code)]

use aggregator::choices::Ranking;
use aggregator::http::{serve, ApiState};
use aggregator::processor::{Aggregator, AggregatorConfig};
use aggregator::RwLock;
use schemas::envelope::{encode, Kind};
use schemas::*;
use std::io::{Read, Write};
use std::sync::Arc;

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

/// Sends `head` (a whole request) and returns the raw response.
pub fn request(addr: &str, head: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(head.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw
}

/// A GET: the status and the body as JSON (as a JSON string when it is not JSON).
pub fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let raw = request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    );
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string())),
    )
}

/// Held by the tests of one binary that set or read process-wide state
/// (the checkpoint gauge readiness reads): they run one at a time, as the
/// test harness otherwise runs them side by side.
pub fn process_wide() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty model served on 127.0.0.1:0: (model, address, runtime).
pub fn server() -> (Arc<RwLock<Aggregator>>, String, tokio::runtime::Runtime) {
    let (model, _, addr, runtime) = server_with_state();
    (model, addr, runtime)
}

/// [`server`], with what the API serves from.
pub fn server_with_state() -> (
    Arc<RwLock<Aggregator>>,
    Arc<ApiState>,
    String,
    tokio::runtime::Runtime,
) {
    let model = Arc::new(RwLock::new(Aggregator::new(AggregatorConfig::default())));
    let state = Arc::new(ApiState::new(model.clone(), Ranking::Llr));
    let api = state.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    runtime.spawn(serve(listener, state));
    (model, api, addr, runtime)
}
