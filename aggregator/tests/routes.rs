//! Every lookup endpoint the `Endpoint` enum names is routed. A test
//! binary of its own: its lookups would change the latency counters that
//! `http.rs` asserts (they are process-wide).
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aggregator::http::Endpoint;
use common::{get, server};

/// Every endpoint the enum names is routed: on an empty model a product
/// or user lookup is a 404 that names the id ("no events for product"),
/// not the router's "no such endpoint", and top pairs answer 200.
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
