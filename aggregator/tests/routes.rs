//! Every lookup endpoint the `Endpoint` enum names is routed. A test
//! binary of its own: its lookups would change the latency counters that
//! `http.rs` asserts (they are process-wide).
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aggregator::cooccur::Ranking;
use aggregator::http::{serve, ApiState, Endpoint};
use aggregator::processor::{Aggregator, AggregatorConfig};
use std::io::{Read, Write};
use std::sync::{Arc, RwLock};

/// A plain HTTP/1.1 GET: (status, JSON body).
fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// Every endpoint the enum names is routed: on an empty model a product
/// or user lookup is a 404 that names the id ("no events for product"),
/// not the router's "no such endpoint", and top pairs answer 200.
#[test]
fn every_endpoint_of_the_enum_is_served() {
    let model = Arc::new(RwLock::new(Aggregator::new(AggregatorConfig::default())));
    let state = Arc::new(ApiState::new(model, Ranking::Count));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(serve(listener, state));
    for endpoint in Endpoint::ALL {
        let path = endpoint
            .route()
            .replace("/products/{id}", "/products/prod_00001")
            .replace("/users/{id}", "/users/user_000001");
        let (status, body) = get(&addr, &path);
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.contains("no such endpoint"), "{path}: {body}");
        match endpoint {
            Endpoint::TopPairs => assert_eq!(status, 200, "{path}: {body}"),
            _ => assert_eq!(status, 404, "{path}: {body}"),
        }
    }
    // The router's own 404 lists them all.
    let (status, body) = get(&addr, "/v1/nothing");
    assert_eq!(status, 404);
    for endpoint in Endpoint::ALL {
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains(endpoint.route()),
            "{body}"
        );
    }
}
