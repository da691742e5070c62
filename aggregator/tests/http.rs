//! The lookup API against a server on 127.0.0.1:0, answering while events
//! are applied, and refusing bad input with 400/404 and a JSON body.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aggregator::http::{DailySource, DayCounts};
use chrono::NaiveDate;
use common::{get, request, server, server_with_state, session, txn};
use schemas::{topics, ConversionStatus};
use std::sync::{Arc, Mutex};

#[test]
fn answers_while_events_stream_in_and_refuses_bad_ids() {
    // It sets the checkpoint gauge, which readiness below reads.
    let _alone = common::process_wide();
    let (model, addr, _runtime) = server();

    let apply = |offset: u64, payload: Vec<u8>, topic: &str| {
        model.write().apply(topic, 0, offset, &payload);
    };
    apply(
        0,
        txn(
            "txn_1",
            "2025-01-01T10:00:00",
            &["prod_00001", "prod_00002"],
        ),
        topics::TRANSACTIONS,
    );
    let (status, body) = get(&addr, "/v1/products/prod_00001/bought-together?k=5");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partners"][0]["product_id"], "prod_00002");
    assert_eq!(body["partners"][0]["count"], 1);
    assert_eq!(body["ranking"], "llr");
    assert_eq!(body["window"]["end"], "2025-01-02T00:00:00");

    // More events arrive; the next lookup sees them.
    apply(
        1,
        txn(
            "txn_2",
            "2025-01-01T11:00:00",
            &["prod_00001", "prod_00002"],
        ),
        topics::TRANSACTIONS,
    );
    apply(
        2,
        txn(
            "txn_3",
            "2025-01-01T12:00:00",
            &["prod_00001", "prod_00003"],
        ),
        topics::TRANSACTIONS,
    );
    // The same question as before: a fresh answer, not the one cached.
    let (_, body) = get(&addr, "/v1/products/prod_00001/bought-together?k=5");
    assert_eq!(body["partners"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["partners"][0]["product_id"], "prod_00002");
    assert_eq!(body["partners"][0]["count"], 2);
    let (_, again) = get(&addr, "/v1/products/prod_00001/bought-together?k=5");
    assert_eq!(again, body, "asked twice with nothing new: the same bytes");
    let (_, body) = get(
        &addr,
        "/v1/products/prod_00001/bought-together?ranking=count&k=1",
    );
    assert_eq!(body["partners"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["partners"][0]["count"], 2);
    assert_eq!(body["partners"][0]["score"], 2.0);

    apply(
        0,
        session(
            "2025-01-01T12:30:00",
            &["prod_00001", "prod_00003"],
            ConversionStatus::Browsed,
        ),
        topics::SESSIONS,
    );
    let (status, body) = get(
        &addr,
        "/v1/products/prod_00003/viewed-together?span=all-time",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partners"][0]["product_id"], "prod_00001");
    assert_eq!(body["window"], "all-time");
    let (status, body) = get(&addr, "/v1/users/user_000007/engagement");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"], 1);
    // 1 x 0.3 + 0 + 2 / 100 x 0.2 = 0.304.
    assert!((body["engagement_score"].as_f64().unwrap_or(0.0) - 0.304).abs() < 1e-12);

    // Refusals: malformed ids and parameters 400, unknown ids 404, JSON body.
    for (path, want) in [
        ("/v1/products/banana/bought-together", 404),
        ("/v1/products/prod_00001/bought-together?k=0", 400),
        ("/v1/products/prod_00001/bought-together?k=many", 400),
        ("/v1/products/prod_00001/bought-together?ranking=magic", 400),
        ("/v1/products/prod_00001/bought-together?colour=red", 400),
        ("/v1/top-pairs?relation=bought&colour=red", 400),
        // Endpoints without parameters refuse any.
        ("/v1/users/user_000007/engagement?window=all", 400),
        ("/healthz?verbose=1", 400),
        ("/metrics?name=x", 400),
        // Any id is taken; one with no event in the window is 404, also
        // another spelling of a known one.
        ("/v1/users/user_42/engagement", 404),
        ("/v1/products/prod_000001/bought-together", 404),
        ("/v1/users/user_0000007/engagement", 404),
        ("/v1/products/prod_09999/bought-together", 404),
        ("/v1/users/user_000001/engagement", 404),
        ("/v1/nothing", 404),
    ] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: JSON error body, got {body}"
        );
    }
    let long = format!("/v1/products/prod_{}1/viewed-together", "0".repeat(10_000));
    let (status, body) = get(&addr, &long);
    assert_eq!(status, 400, "{body}");
    // axum's own refusals are JSON too: a path that is not UTF-8 (400) and
    // a method other than GET (405, with Allow).
    let (status, body) = get(&addr, "/v1/products/%FF%FE/bought-together");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    let raw = request(
        &addr,
        "DELETE /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("allow: get,head"),
        "{raw}"
    );
    assert!(raw.contains("content-type: application/json"), "{raw}");
    assert!(raw.ends_with(r#"{"error":"Method Not Allowed"}"#), "{raw}");
    let (status, body) = get(&addr, "/healthz");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    // Failing checkpoints show on /healthz while lookups keep answering.
    aggregator::metrics::CHECKPOINT_FAILING.set(3);
    let (status, body) = get(&addr, "/healthz");
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("degraded")),
        "{body}"
    );
    assert_eq!(get(&addr, "/v1/users/user_000007/engagement").0, 200);
    aggregator::metrics::CHECKPOINT_FAILING.set(0);
    assert_eq!(get(&addr, "/healthz").0, 200);
    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    let text = body.as_str().unwrap_or_default();
    assert!(
        text.contains("ecomflow_aggregator_window_pairs{relation=\"bought\"} 2"),
        "{text}"
    );
    // Lookups are timed per endpoint and status class.
    assert!(
        text.contains(
            "ecomflow_aggregator_lookup_seconds_count{endpoint=\"bought_together\",status=\"ok\"} 4"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "ecomflow_aggregator_lookup_seconds_count{endpoint=\"engagement\",status=\"not_found\"} 3"
        ),
        "{text}"
    );
}

/// Liveness answers at once; readiness says why it is not ready while the
/// window is empty, then 200; the OpenAPI document is served and names
/// every route the server answers.
#[test]
fn liveness_readiness_and_the_openapi_document() {
    let _alone = common::process_wide();
    let (model, addr, _runtime) = server();
    assert_eq!(get(&addr, "/livez").0, 200);
    let (status, body) = get(&addr, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["reason"], "the live window holds no events yet");
    assert_eq!(get(&addr, "/healthz").0, 503, "/healthz is /readyz");
    model.write().apply(
        topics::TRANSACTIONS,
        0,
        0,
        &txn(
            "txn_1",
            "2025-01-01T10:00:00",
            &["prod_00001", "prod_00002"],
        ),
    );
    let (status, body) = get(&addr, "/readyz");
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    let (status, doc) = get(&addr, "/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/v1/products/{id}/bought-together",
        "/v1/products/{id}/viewed-together",
        "/v1/users/{id}/engagement",
        "/v1/top-pairs",
        "/livez",
        "/readyz",
        "/healthz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
}

#[test]
fn top_pairs_by_count() {
    let (model, addr, _runtime) = server();
    {
        let mut m = model.write();
        // (1,2) twice, (1,3) and (2,3) once.
        for (o, items) in [
            (0, &["prod_00001", "prod_00002", "prod_00003"][..]),
            (1, &["prod_00002", "prod_00001"][..]),
        ] {
            m.apply(
                topics::TRANSACTIONS,
                0,
                o,
                &txn(&format!("txn_{o}"), "2025-01-01T10:00:00", items),
            );
        }
    }
    let (status, body) = get(&addr, "/v1/top-pairs?relation=bought&k=2");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["relation"], "bought-together");
    let pairs = body["pairs"].as_array().cloned().unwrap_or_default();
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        (
            &pairs[0]["product_a"],
            &pairs[0]["product_b"],
            &pairs[0]["count"]
        ),
        (&"prod_00001".into(), &"prod_00002".into(), &2.into())
    );
    assert_eq!(
        (
            &pairs[1]["product_a"],
            &pairs[1]["product_b"],
            &pairs[1]["count"]
        ),
        (&"prod_00001".into(), &"prod_00003".into(), &1.into())
    );
    let (_, body) = get(&addr, "/v1/top-pairs?relation=viewed");
    assert_eq!(body["pairs"].as_array().map(Vec::len), Some(0));
    for path in ["/v1/top-pairs?relation=sold", "/v1/top-pairs?ranking=llr"] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 400, "{path}: {body}");
    }
}

/// A store of daily counts: one product with two days, a product whose
/// read fails, and the ranges it was asked for.
#[derive(Default)]
struct Days {
    asked: Mutex<Vec<(String, NaiveDate, NaiveDate)>>,
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test literal")
}

impl DailySource for Days {
    fn product_daily(
        &self,
        product: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCounts>, String> {
        self.asked
            .lock()
            .expect("lock")
            .push((product.to_string(), from, to));
        match product {
            "prod_00001" => Ok(vec![
                DayCounts {
                    day: day("2025-03-01"),
                    views: 7,
                    cart_adds: 3,
                    purchases: 1,
                },
                DayCounts {
                    day: day("2025-03-02"),
                    views: 2,
                    cart_adds: 0,
                    purchases: 0,
                },
            ]
            .into_iter()
            .filter(|d| d.day >= from && d.day <= to)
            .collect()),
            "prod_broken" => Err("HBase Thrift at hbase:9090: connection refused".into()),
            _ => Ok(Vec::new()),
        }
    }
}

#[test]
fn daily_counts_come_from_the_store_with_their_defaults_and_refusals() {
    let (model, api, addr, _runtime) = server_with_state();
    let path = "/v1/products/prod_00001/daily?from=2025-03-01&to=2025-03-02";

    // No store yet (the API starts before the stores): 503, saying why.
    let (status, body) = get(&addr, path);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("wide-column store"),
        "{body}"
    );

    let days = Arc::new(Days::default());
    api.serve_daily(days.clone());
    let (status, body) = get(&addr, path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({
            "product_id": "prod_00001", "from": "2025-03-01", "to": "2025-03-02",
            "days": [
                {"day": "2025-03-01", "views": 7, "cart_adds": 3, "purchases": 1},
                {"day": "2025-03-02", "views": 2, "cart_adds": 0, "purchases": 0}
            ]
        })
    );
    let (_, body) = get(
        &addr,
        "/v1/products/prod_00001/daily?from=2025-03-02&to=2025-03-02",
    );
    assert_eq!(body["days"].as_array().map(Vec::len), Some(1), "{body}");

    // Without `to`, nothing seen yet: nothing to take it from.
    let (status, body) = get(&addr, "/v1/products/prod_00001/daily");
    assert_eq!(status, 400, "{body}");
    // With events, `to` is the newest event's day and `from` 29 days
    // before it (30 days in all).
    model.write().apply(
        topics::SESSIONS,
        0,
        0,
        &session(
            "2025-03-12T10:00:00",
            &["prod_00001"],
            ConversionStatus::Browsed,
        ),
    );
    let (status, body) = get(&addr, "/v1/products/prod_00009/daily");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["from"], &body["to"]),
        (&"2025-02-11".into(), &"2025-03-12".into())
    );
    assert_eq!(body["days"], serde_json::json!([]));
    assert_eq!(
        days.asked.lock().expect("lock").last(),
        Some(&(
            "prod_00009".to_string(),
            day("2025-02-11"),
            day("2025-03-12")
        ))
    );

    for (query, says) in [
        ("from=2025-03-02&to=2025-03-01", "from must not be after to"),
        ("from=2024-01-01&to=2025-03-01", "at most 366 days"),
        (
            "from=2025-13-01",
            "from: must be a day, YYYY-MM-DD, got \"2025-13-01\"",
        ),
        ("day=2025-03-01", "unknown field `day`"),
    ] {
        let (status, body) = get(&addr, &format!("/v1/products/prod_00001/daily?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{query}: {error}");
    }
    // A store that cannot answer: 503 with its reason.
    let (status, body) = get(&addr, "/v1/products/prod_broken/daily?to=2025-03-01");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("connection refused"),
        "{body}"
    );
}
