//! Ingest's metrics (one place; names in dashboards and docs agree).

use std::sync::LazyLock;
use telemetry::prometheus::{Counter, Histogram, HistogramVec, IntCounterVec, IntGauge};

/// Records read from the log, per topic.
pub static CONSUMED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_ingest_events_consumed_total",
        "Records read from the event log and committed, per topic.",
        &["topic"],
    )
});

/// Valid records written to the stores, per topic.
pub static STORED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_ingest_events_stored_total",
        "Valid records written to the stores, per topic.",
        &["topic"],
    )
});

/// Dead letters sent, per reason code.
pub static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_ingest_dead_letters_total",
        "Records sent to the dead-letter topic, per reason code.",
        &["reason"],
    )
});

/// Records read again because the stores held less than the group had
/// committed (see `worker::resume_from_stores`).
pub static REREAD: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_ingest_reread_records_total",
        "Records read again at start because the stores held less than the ingest group had committed (a machine crash lost their last writes), per topic.",
        &["topic"],
    )
});

/// Records per batch.
pub static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    telemetry::histogram(
        "ecomflow_ingest_batch_size_records",
        "Records per ingest batch (one store write and one commit each).",
        // Up to past the default chunk (32,000, `--ingest-chunk`), so that
        // the p50 of a default run falls inside a bucket.
        vec![
            1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 32000.0, 50000.0,
            100000.0,
        ],
    )
});

/// Time of one batch's write, per store.
pub static WRITE_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    telemetry::histogram_vec(
        "ecomflow_ingest_store_write_seconds",
        "Time to write one batch to a store (document: catalog, transactions, summaries, dead letters; wide_column: sessions).",
        &["store"],
        telemetry::latency_buckets(),
    )
});

/// Records in the log not yet consumed by the ingest group.
pub static LAG: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_ingest_consumer_lag_records",
        "Records in the input topics not yet committed by the ingest consumer group.",
    )
});

/// Revenue of the transactions written (the shop's currency).
pub static REVENUE: LazyLock<Counter> = LazyLock::new(|| {
    telemetry::float_counter(
        "ecomflow_ingest_revenue_total",
        "Sum of the totals of the transactions written by this process.",
    )
});

/// Sessions written, per conversion status.
pub static SESSIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_ingest_sessions_total",
        "Sessions written, per conversion status (converted, abandoned, browsed).",
        &["status"],
    )
});

/// Event time up to which everything is stored.
pub static EVENT_TIME: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_ingest_event_time_seconds",
        "Event time up to which every session and transaction partition is stored, seconds since the epoch (the simulated clock).",
    )
});

/// Creates every labelled series at zero, so that dashboards show zeros
/// instead of "no data" before the first batch (and before the first dead
/// letter of a reason).
pub fn init() {
    for topic in schemas::topics::INGEST_INPUTS {
        CONSUMED.with_label_values(&[topic]);
        STORED.with_label_values(&[topic]);
        REREAD.with_label_values(&[topic]);
    }
    for &reason in schemas::Rejection::CODES {
        if reason != "late" {
            DEAD_LETTERS.with_label_values(&[reason]);
        }
    }
    for status in ["converted", "abandoned", "browsed"] {
        SESSIONS.with_label_values(&[status]);
    }
    for store in ["document", "wide_column"] {
        WRITE_SECONDS.with_label_values(&[store]);
    }
    LazyLock::force(&BATCH_SIZE);
    LazyLock::force(&REVENUE);
    LazyLock::force(&LAG);
    LazyLock::force(&EVENT_TIME);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_under_its_name() {
        CONSUMED.with_label_values(&["t"]).inc();
        STORED.with_label_values(&["t"]).inc();
        DEAD_LETTERS.with_label_values(&["r"]).inc();
        BATCH_SIZE.observe(3.0);
        WRITE_SECONDS.with_label_values(&["s"]).observe(0.01);
        LAG.set(4);
        REVENUE.inc_by(2.5);
        SESSIONS.with_label_values(&["converted"]).inc();
        EVENT_TIME.set(5);
        let text = telemetry::encode();
        for name in [
            "ecomflow_ingest_events_consumed_total{topic=\"t\"}",
            "ecomflow_ingest_events_stored_total{topic=\"t\"}",
            "ecomflow_ingest_dead_letters_total{reason=\"r\"}",
            "ecomflow_ingest_batch_size_records_count",
            "ecomflow_ingest_store_write_seconds_count{store=\"s\"}",
            "ecomflow_ingest_consumer_lag_records 4",
            "ecomflow_ingest_revenue_total",
            "ecomflow_ingest_sessions_total{status=\"converted\"}",
            "ecomflow_ingest_event_time_seconds 5",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
