//! The UDFs on values worked out by hand, and the Arroyo pipeline parses.

use ecomflow_udf::*;

#[test]
fn pairs_from_a_transaction_record() {
    let record = r#"{"v":1,"kind":"transaction","data":{"transaction_id":"txn_1",
        "items":[{"product_id":"prod_b","quantity":1},{"product_id":"prod_a","quantity":2},
                 {"product_id":"prod_c","quantity":1},{"product_id":"prod_a","quantity":1}]}}"#;
    assert_eq!(
        basket_pairs(record, 50),
        "prod_a|prod_b,prod_a|prod_c,prod_b|prod_c"
    );
    // Distinct items in first-seen order.
    assert_eq!(basket_items(record, 50), "prod_b,prod_a,prod_c");
    assert_eq!(basket_size(record, 50), 3);
    // A cap of 2 keeps the first two distinct items: one pair.
    assert_eq!(basket_pairs(record, 2), "prod_a|prod_b");
}

#[test]
fn pairs_from_a_session_and_from_plain_arrays() {
    let session = r#"{"v":1,"kind":"session","data":{"viewed_products":["p2","p1","p3"]}}"#;
    assert_eq!(basket_pairs(session, 0), "p1|p2,p1|p3,p2|p3");
    assert_eq!(basket_pairs(r#"["x","y"]"#, 0), "x|y");
    assert_eq!(basket_pairs(r#"[{"product_id":"x"}]"#, 0), "");
    // Not JSON, or no basket in it: empty, never a panic.
    assert_eq!(basket_pairs("not json", 0), "");
    assert_eq!(basket_size(r#"{"data":{}}"#, 0), 0);
}

#[test]
fn the_default_cap_bounds_a_huge_basket() {
    let ids: Vec<String> = (0..300).map(|i| format!("\"p{i:03}\"")).collect();
    let json = format!("[{}]", ids.join(","));
    // 50 items: 50 * 49 / 2 = 1,225 pairs instead of 44,850.
    assert_eq!(basket_pairs(&json, 0).split(',').count(), 1_225);
    assert_eq!(basket_size(&json, 0), 50);
}

#[test]
fn scores_by_hand() {
    // Two baskets, {A, B} and {}: table (1, 0, 0, 1), LLR = 4 ln 2.
    assert!((pair_llr(1, 1, 1, 2) - 4.0 * 2f64.ln()).abs() < 1e-12);
    // P(B|A) = 1, P(B) = 1/2: lift 2.
    assert!((pair_confidence(1, 1, 1, 2) - 1.0).abs() < 1e-12);
    assert!((pair_lift(1, 1, 1, 2) - 2.0).abs() < 1e-12);
    // Independent items: A in 2 of 4, B in 2 of 4, both in 1: LLR 0, lift 1.
    assert!(pair_llr(1, 2, 2, 4).abs() < 1e-12);
    assert!((pair_lift(1, 2, 2, 4) - 1.0).abs() < 1e-12);
    // Negative counts (bad input) are clamped, not a panic.
    assert!(pair_llr(-1, -1, 5, 3).is_finite());
    // 2 sessions x 0.3 + 2 converted x 0.5 + 5 viewed / 100 x 0.2 = 1.61.
    assert!((engagement_score(2, 2, 5) - 1.61).abs() < 1e-12);
}

#[test]
fn the_arroyo_pipeline_parses_and_uses_the_udfs() {
    let sql = include_str!("../sql/pipeline.sql");
    let statements =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, sql)
            .unwrap_or_else(|e| panic!("sql/pipeline.sql: {e}"));
    // 4 tables, 4 views, 2 inserts.
    assert_eq!(statements.len(), 10);
    for f in [
        "basket_pairs(",
        "basket_items(",
        "pair_llr(",
        "pair_lift(",
        "pair_confidence(",
        "engagement_score(",
        "basket_size(",
    ] {
        assert!(sql.contains(f), "pipeline does not use {f}");
    }
}
