//! The aggregator's metrics (one place; names in dashboards and docs agree).

use crate::choices::Relation;
use crate::endpoint::Endpoint;
use crate::processor::Aggregator;
use std::sync::LazyLock;
use telemetry::prometheus::{Histogram, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec};

/// Records applied to the windows, per topic.
pub static APPLIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_aggregator_events_applied_total",
        "Sessions and transactions applied to the windows, per topic.",
        &["topic"],
    )
});

/// Events behind the watermark, dead-lettered with reason `late`.
pub static LATE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_aggregator_late_events_total",
        "Events behind their partition's watermark, sent to the dead-letter topic with reason late.",
        &["topic"],
    )
});

/// Ids the window holds by name (not of the generated form), per kind.
pub static NAMED_IDS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    telemetry::int_gauge_vec(
        "ecomflow_aggregator_named_ids",
        "Product and user ids the live window numbers from a table because they are not of the form prod_00001 / user_000001 (kind: product, user).",
        &["kind"],
    )
});

/// Pairs in the sliding window, per relation.
pub static WINDOW_PAIRS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    telemetry::int_gauge_vec(
        "ecomflow_aggregator_window_pairs",
        "Distinct product pairs counted in the sliding window (state size), per relation (bought, viewed).",
        &["relation"],
    )
});

/// Size of the last checkpoint.
pub static CHECKPOINT_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_checkpoint_bytes",
        "Size of the last checkpoint written (the whole state, serialised).",
    )
});

/// Heap bytes of the state, as of the last checkpoint.
pub static STATE_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_state_bytes",
        "Heap bytes the aggregator's state holds (pair tables, the window's baskets, engagement), measured at each checkpoint.",
    )
});

/// Checkpoints that failed, in a row (0 once one succeeds again).
pub static CHECKPOINT_FAILING: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_checkpoint_failures",
        "Periodic checkpoints that failed in a row (retried with backoff; 0 when the last succeeded).",
    )
});

/// Checkpoint durations.
pub static CHECKPOINT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    telemetry::histogram(
        "ecomflow_aggregator_checkpoint_seconds",
        "Time to write a checkpoint and commit its offsets.",
        telemetry::latency_buckets(),
    )
});

/// The low watermark.
pub static WATERMARK: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_watermark_seconds",
        "Low watermark: the oldest input partition's newest event time, seconds since the epoch.",
    )
});

/// How far the slowest partition is behind the fastest, in event time.
pub static WATERMARK_DELAY: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_watermark_delay_seconds",
        "Newest event time seen minus the low watermark, in event-time seconds (how far the windows trail the newest event).",
    )
});

/// Records not yet consumed by the aggregator group.
pub static LAG: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_aggregator_consumer_lag_records",
        "Records in sessions and transactions not yet committed by the aggregator consumer group.",
    )
});

/// Freshness: from when the producer sent an event to when the window that
/// answers lookups holds it.
pub static FRESHNESS: LazyLock<Histogram> = LazyLock::new(|| {
    telemetry::histogram(
        "ecomflow_aggregator_freshness_seconds",
        "Seconds from an event's publish time (stamped by the log's producer) to the moment lookups see it in the live window.",
        vec![
            0.001, 0.002_5, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0, 30.0, 60.0, 300.0,
        ],
    )
});

/// Lookup latency, per endpoint.
pub static LOOKUP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    telemetry::histogram_vec(
        "ecomflow_aggregator_lookup_seconds",
        &format!(
            "Time to answer a lookup, per endpoint ({}) and status class.",
            Endpoint::ALL.map(Endpoint::name).join(", ")
        ),
        &["endpoint", "status"],
        telemetry::latency_buckets(),
    )
});

/// Creates every labelled series at zero, so that dashboards show zeros
/// instead of "no data" before the first event, late event or lookup.
pub fn init() {
    for topic in schemas::topics::AGGREGATOR_INPUTS {
        APPLIED.with_label_values(&[topic]);
        LATE.with_label_values(&[topic]);
    }
    for endpoint in Endpoint::ALL {
        LOOKUP_SECONDS.with_label_values(&[endpoint.name(), "ok"]);
    }
    for relation in Relation::ALL {
        WINDOW_PAIRS.with_label_values(&[relation.name()]);
    }
    LazyLock::force(&LAG);
    LazyLock::force(&CHECKPOINT_SECONDS);
    LazyLock::force(&FRESHNESS);
    LazyLock::force(&CHECKPOINT_BYTES);
    LazyLock::force(&STATE_BYTES);
    LazyLock::force(&CHECKPOINT_FAILING);
}

/// Updates the state gauges from the model.
pub fn observe_state(model: &Aggregator) {
    let (bought, viewed) = model.window_pairs();
    for (relation, pairs) in [(Relation::Bought, bought), (Relation::Viewed, viewed)] {
        WINDOW_PAIRS
            .with_label_values(&[relation.name()])
            .set(i64::try_from(pairs).unwrap_or(i64::MAX));
    }
    let (products, users) = model.named_ids();
    for (kind, n) in [("product", products), ("user", users)] {
        NAMED_IDS
            .with_label_values(&[kind])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let (Some(low), Some(high)) = (model.watermark(), model.newest_event()) {
        WATERMARK.set(low);
        WATERMARK_DELAY.set(high - low);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::AggregatorConfig;

    #[test]
    fn state_gauges_follow_the_model() {
        let mut m = Aggregator::new(AggregatorConfig::default());
        let t = crate::testing::transaction;
        // Three items: three pairs. Partition 0 at 10:00, partition 1 at 12:00.
        let a = t(
            "txn_a",
            "2025-01-01T10:00:00",
            &["prod_00001", "prod_00002", "prod_00003"],
        );
        let b = t(
            "txn_b",
            "2025-01-01T12:00:00",
            &["prod_00001", "prod_00002"],
        );
        let _ = m.apply("transactions", 0, 0, &a);
        let _ = m.apply("transactions", 1, 0, &b);
        observe_state(&m);
        assert_eq!(WINDOW_PAIRS.with_label_values(&["bought"]).get(), 3);
        assert_eq!(WINDOW_PAIRS.with_label_values(&["viewed"]).get(), 0);
        // 2025-01-01T10:00:00Z is 1735725600; the fastest partition is 2 h ahead.
        assert_eq!(WATERMARK.get(), 1_735_725_600);
        assert_eq!(WATERMARK_DELAY.get(), 7_200);
    }
}
