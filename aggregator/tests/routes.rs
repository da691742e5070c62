//! Every lookup endpoint the `Endpoint` enum names is routed. A test
//! binary of its own: its lookups would change the latency counters that
//! `http.rs` asserts (they are process-wide).
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aggregator::http::Endpoint;
use common::{get, server, session, txn};
use schemas::{topics, ConversionStatus};

/// Every endpoint the enum names is routed: on an empty model a product
/// or user lookup is a 404 that names the id ("no events for product"),
/// not the router's "no such endpoint", top pairs answer 200, and daily
/// counts without their store 503.
#[test]
fn every_endpoint_of_the_enum_is_served() {
    let (_model, addr, _rt) = server();
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
            // Served from a store this test's server has not opened.
            Endpoint::ProductDaily => assert_eq!(status, 503, "{path}: {body}"),
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

/// Ids of any form: a shop's SKUs with a slash and non-ASCII letters, a
/// user id with a space, all percent-encoded in the path; answers carry
/// them as given.
#[test]
fn any_id_is_looked_up_percent_encoded() {
    let (model, addr, _runtime) = server();
    let sku = "SKU/12 ä";
    model.write().apply(
        topics::TRANSACTIONS,
        0,
        0,
        &txn(
            "T-1",
            "2025-01-01T10:00:00",
            &[sku, "Café-Noir", "prod_00001"],
        ),
    );
    let browsed = session(
        "2025-01-01T09:00:00",
        &["Café-Noir", sku],
        ConversionStatus::Browsed,
    );
    let browsed = String::from_utf8(browsed)
        .expect("JSON")
        .replace("user_000007", "Kunde ß/7");
    model
        .write()
        .apply(topics::SESSIONS, 0, 0, browsed.as_bytes());

    let (status, body) = get(
        &addr,
        "/v1/products/SKU%2F12%20%C3%A4/bought-together?ranking=count",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["product_id"], sku);
    let mut partners: Vec<&str> = body["partners"]
        .as_array()
        .expect("partners")
        .iter()
        .filter_map(|p| p["product_id"].as_str())
        .collect();
    partners.sort_unstable();
    assert_eq!(partners, ["Café-Noir", "prod_00001"]);
    let (status, body) = get(&addr, "/v1/products/prod_00001/bought-together");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partners"].as_array().map(Vec::len), Some(2));
    let (status, body) = get(&addr, "/v1/products/Caf%C3%A9-Noir/viewed-together");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partners"][0]["product_id"], sku);
    let (status, body) = get(&addr, "/v1/top-pairs?relation=viewed");
    assert_eq!(status, 200, "{body}");
    let pair = [
        &body["pairs"][0]["product_a"],
        &body["pairs"][0]["product_b"],
    ];
    assert!(pair.contains(&&serde_json::json!(sku)), "{body}");
    let (status, body) = get(&addr, "/v1/users/Kunde%20%C3%9F%2F7/engagement");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["user_id"].as_str(), body["sessions"].as_u64()),
        (Some("Kunde ß/7"), Some(1))
    );

    // An id with no event in the window: 404, saying what the window covers.
    let (status, body) = get(&addr, "/v1/products/SKU%2F13/bought-together");
    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("SKU/13")
            && error.contains("live window covers 2024-12-03T00:00:00 to 2025-01-01T23:59:59"),
        "{error}"
    );
    // 256 bytes is an id; 257 is not.
    let (status, _) = get(
        &addr,
        &format!("/v1/products/{}/bought-together", "x".repeat(256)),
    );
    assert_eq!(status, 404);
    let (status, body) = get(
        &addr,
        &format!("/v1/products/{}/bought-together", "x".repeat(257)),
    );
    assert_eq!(status, 400, "{body}");
}
