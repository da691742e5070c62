//! The producer's metrics (one place; names in dashboards and docs agree).

use std::sync::LazyLock;
use telemetry::prometheus::{IntCounterVec, IntGauge};

/// Events published, per topic, counted once their batch is flushed.
pub static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_producer_events_total",
        "Events published to the event log (acknowledged batches), per topic.",
        &["topic"],
    )
});

/// Event time of the newest published event (the simulated clock).
pub static EVENT_TIME: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_producer_event_time_seconds",
        "Event time of the newest published event, seconds since the epoch (the simulated clock).",
    )
});

/// Events this replay will have published when done (earlier runs included).
pub static EVENTS_PLANNED: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_producer_events_planned",
        "Events of the whole replay, for progress.",
    )
});

/// Creates the per-topic series at zero.
pub fn init() {
    for topic in [
        schemas::topics::CATALOG,
        schemas::topics::SESSIONS,
        schemas::topics::TRANSACTIONS,
    ] {
        EVENTS.with_label_values(&[topic]);
    }
    LazyLock::force(&EVENT_TIME);
}

/// Adds a flushed batch: `pending` counts per topic, emptied here.
pub(crate) fn flushed(pending: &mut Vec<(&'static str, u64)>, event_time_secs: i64) {
    for (topic, n) in pending.drain(..) {
        EVENTS.with_label_values(&[topic]).inc_by(n);
    }
    EVENT_TIME.set(event_time_secs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flushed_batch_is_counted_per_topic() {
        let before = EVENTS.with_label_values(&["test-topic"]).get();
        let mut pending = vec![("test-topic", 3), ("test-topic", 2)];
        flushed(&mut pending, 1_735_689_600);
        assert!(pending.is_empty());
        assert_eq!(EVENTS.with_label_values(&["test-topic"]).get() - before, 5);
        assert_eq!(EVENT_TIME.get(), 1_735_689_600);
        EVENTS_PLANNED.set(7);
        assert!(telemetry::encode().contains("ecomflow_producer_events_planned 7"));
    }
}
