//! The aggregator's plain functions exported as Arroyo UDFs, so that the
//! same pairs and scores can be computed by an Arroyo cluster from the
//! Kafka topics (`sql/pipeline.sql`) when one aggregator process is not
//! enough.
//!
//! The functions themselves live in the `measures` crate (`pairs`, `llr`,
//! `formulas`), which the aggregator and the batch depend on too, so the
//! three can never disagree.
//! The plugin pins arrow 51 through `arroyo-udf-plugin` 0.2.0, which needs
//! a chrono older than DataFusion's, so it is a workspace of its own: build
//! it with `cargo build --release --manifest-path aggregator-udf/Cargo.toml`.
//!
//! Arroyo UDFs take and return scalars (a `Vec` argument would make an
//! aggregate), so baskets travel as JSON text in and as `a|b,c|d` text out;
//! the pipeline splits them with `unnest(string_to_array(..., ','))`.

pub use measures::{llr, pairs};

/// Product ids of a basket given as JSON: a whole ecomflow record as read
/// from Kafka (`{"v":1,"kind":"transaction","data":{"items":[...]}}` or a
/// session with `viewed_products`), or just the array: ids
/// (`["prod_00001", ...]`) or line items with a `product_id`. Anything else
/// is an empty basket.
pub fn basket_ids(json: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let list = match &value {
        serde_json::Value::Array(items) => Some(items),
        serde_json::Value::Object(o) => {
            let data = o.get("data").unwrap_or(&value);
            data.get("items")
                .or_else(|| data.get("viewed_products"))
                .and_then(|v| v.as_array())
        }
        _ => None,
    };
    let Some(items) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("product_id")?.as_str().map(str::to_string),
            _ => None,
        })
        .collect()
}

fn cap(max_items: i64) -> usize {
    if max_items <= 0 {
        pairs::DEFAULT_MAX_ITEMS
    } else {
        max_items as usize
    }
}

/// The basket's unordered pairs of distinct products, capped at
/// `max_items` items (0 for the default, 50), as `a|b` joined by commas.
pub fn basket_pairs(items_json: &str, max_items: i64) -> String {
    let ids = basket_ids(items_json);
    pairs::pairs(&ids, cap(max_items))
        .iter()
        .map(|(a, b)| format!("{a}|{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The basket's distinct products (after the same cap), joined by commas:
/// what item counts are counted from.
pub fn basket_items(items_json: &str, max_items: i64) -> String {
    let ids = basket_ids(items_json);
    pairs::distinct_capped(&ids, cap(max_items)).join(",")
}

/// How many distinct products the basket holds (after the cap).
pub fn basket_size(items_json: &str, max_items: i64) -> i64 {
    let ids = basket_ids(items_json);
    pairs::distinct_capped(&ids, cap(max_items)).len() as i64
}

fn counts(together: i64, count_a: i64, count_b: i64, baskets: i64) -> (u64, u64, u64, u64) {
    let c = |x: i64| x.max(0) as u64;
    (c(together), c(count_a), c(count_b), c(baskets))
}

/// Dunning's log-likelihood ratio of the pair (A, B): `together` baskets
/// with both, `count_a` with A, `count_b` with B, `baskets` in all.
pub fn pair_llr(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
    let (ab, a, b, n) = counts(together, count_a, count_b, baskets);
    llr::score(ab, a, b, n).llr
}

/// Lift of the pair: P(B | A) / P(B).
pub fn pair_lift(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
    let (ab, a, b, n) = counts(together, count_a, count_b, baskets);
    llr::score(ab, a, b, n).lift
}

/// Confidence of the pair: P(B | A).
pub fn pair_confidence(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
    let (ab, a, b, n) = counts(together, count_a, count_b, baskets);
    llr::score(ab, a, b, n).confidence
}

use measures::formulas;

/// The seed's engagement score: sessions x 0.3 + converted x 0.5 +
/// products viewed / 100 x 0.2 (`schemas::formulas::engagement_score`).
pub fn engagement_score(sessions: i64, converted: i64, viewed: i64) -> f64 {
    formulas::engagement_score(sessions as f64, converted as f64, viewed as f64)
}

// The Arroyo exports. The `#[udf]` macro exports one `__run` symbol and
// Arroyo loads one UDF per plugin, so each export is behind a feature of its
// own: build one plugin per UDF, e.g.
// `cargo build --release --features udf-pair-llr` (two at once do not link).
// Each only forwards to the plain function above.

/// [`basket_pairs`](crate::basket_pairs) as an Arroyo UDF (feature `udf-basket-pairs`).
#[cfg(feature = "udf-basket-pairs")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod basket_pairs_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::basket_pairs`].
    #[udf]
    pub fn basket_pairs(items_json: &str, max_items: i64) -> String {
        crate::basket_pairs(items_json, max_items)
    }
}

/// [`basket_items`](crate::basket_items) as an Arroyo UDF (feature `udf-basket-items`).
#[cfg(feature = "udf-basket-items")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod basket_items_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::basket_items`].
    #[udf]
    pub fn basket_items(items_json: &str, max_items: i64) -> String {
        crate::basket_items(items_json, max_items)
    }
}

/// [`basket_size`](crate::basket_size) as an Arroyo UDF (feature `udf-basket-size`).
#[cfg(feature = "udf-basket-size")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod basket_size_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::basket_size`].
    #[udf]
    pub fn basket_size(items_json: &str, max_items: i64) -> i64 {
        crate::basket_size(items_json, max_items)
    }
}

/// [`pair_llr`](crate::pair_llr) as an Arroyo UDF (feature `udf-pair-llr`).
#[cfg(feature = "udf-pair-llr")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod pair_llr_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::pair_llr`].
    #[udf]
    pub fn pair_llr(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
        crate::pair_llr(together, count_a, count_b, baskets)
    }
}

/// [`pair_lift`](crate::pair_lift) as an Arroyo UDF (feature `udf-pair-lift`).
#[cfg(feature = "udf-pair-lift")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod pair_lift_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::pair_lift`].
    #[udf]
    pub fn pair_lift(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
        crate::pair_lift(together, count_a, count_b, baskets)
    }
}

/// [`pair_confidence`](crate::pair_confidence) as an Arroyo UDF (feature `udf-pair-confidence`).
#[cfg(feature = "udf-pair-confidence")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod pair_confidence_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::pair_confidence`].
    #[udf]
    pub fn pair_confidence(together: i64, count_a: i64, count_b: i64, baskets: i64) -> f64 {
        crate::pair_confidence(together, count_a, count_b, baskets)
    }
}

/// [`engagement_score`](crate::engagement_score) as an Arroyo UDF (feature `udf-engagement-score`).
#[cfg(feature = "udf-engagement-score")]
// `#[udf]` generates exported glue functions without doc comments.
#[allow(missing_docs)]
pub mod engagement_score_udf {
    use arroyo_udf_plugin::udf;

    /// See [`crate::engagement_score`].
    #[udf]
    pub fn engagement_score(sessions: i64, converted: i64, viewed: i64) -> f64 {
        crate::engagement_score(sessions, converted, viewed)
    }
}
