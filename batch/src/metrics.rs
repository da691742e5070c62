//! The batch job's metrics (one place; names in dashboards and docs agree).

use crate::BatchOutcome;
use std::sync::LazyLock;
use telemetry::prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec};

/// Runs, per outcome.
pub static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    telemetry::counter_vec(
        "ecomflow_batch_runs_total",
        "Batch runs, per outcome (ok, error).",
        &["outcome"],
    )
});

/// Seconds of each step of the last run.
pub static STEP_SECONDS: LazyLock<GaugeVec> = LazyLock::new(|| {
    telemetry::gauge_vec(
        "ecomflow_batch_step_duration_seconds",
        "Seconds each step of the last batch run took (snapshot, each analytic, predictive CLV, write-back, report).",
        &["step"],
    )
});

/// Wall-clock time of the last run that succeeded (for "has not succeeded
/// in 26 hours").
pub static LAST_SUCCESS: LazyLock<Gauge> = LazyLock::new(|| {
    telemetry::gauge(
        "ecomflow_batch_last_success_timestamp_seconds",
        "Unix time at which the last successful batch run ended.",
    )
});

/// Seconds of the whole last run.
pub static DURATION: LazyLock<Gauge> = LazyLock::new(|| {
    telemetry::gauge(
        "ecomflow_batch_duration_seconds",
        "Seconds the last batch run took, all steps.",
    )
});

/// Rows of each step of the last run.
pub static STEP_ROWS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    telemetry::int_gauge_vec(
        "ecomflow_batch_step_rows",
        "Rows the last run's steps produced: snapshot (rows written to day partitions), clv (users scored), write-back (user documents updated).",
        &["step"],
    )
});

/// Customers per segment.
pub static SEGMENT_CUSTOMERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    telemetry::int_gauge_vec(
        "ecomflow_batch_segment_customers",
        "Customers per CLV segment (VIP, High, Medium, Low) after the last run.",
        &["segment"],
    )
});

/// Revenue per segment.
pub static SEGMENT_REVENUE: LazyLock<GaugeVec> = LazyLock::new(|| {
    telemetry::gauge_vec(
        "ecomflow_batch_segment_revenue",
        "Revenue (sum of total spent) per CLV segment after the last run.",
        &["segment"],
    )
});

/// Sessions per funnel stage.
pub static FUNNEL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    telemetry::int_gauge_vec(
        "ecomflow_batch_funnel_sessions",
        "Sessions per funnel stage (all, with_views, with_cart, converted, abandoned) in the snapshot.",
        &["stage"],
    )
});

/// Last day the report covers.
pub static THROUGH: LazyLock<IntGauge> = LazyLock::new(|| {
    telemetry::int_gauge(
        "ecomflow_batch_through_day_seconds",
        "Midnight after the last day the last run covered, seconds since the epoch.",
    )
});

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Publishes a finished run.
pub fn observe(outcome: &BatchOutcome) {
    init();
    RUNS.with_label_values(&["ok"]).inc();
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        LAST_SUCCESS.set(now.as_secs_f64());
    }
    let mut total = 0.0;
    for (step, secs) in &outcome.steps {
        STEP_SECONDS.with_label_values(&[step]).set(*secs);
        total += secs;
    }
    DURATION.set(total);
    STEP_ROWS
        .with_label_values(&["snapshot"])
        .set(int(outcome.rows_written));
    STEP_ROWS
        .with_label_values(&["write-back"])
        .set(int(outcome.written_back as u64));
    let f = &outcome.findings;
    STEP_ROWS
        .with_label_values(&["clv"])
        .set(int(f.segments.iter().map(|s| s.customers).sum()));
    for s in &f.segments {
        SEGMENT_CUSTOMERS
            .with_label_values(&[&s.segment])
            .set(int(s.customers));
        SEGMENT_REVENUE
            .with_label_values(&[&s.segment])
            .set(s.revenue);
    }
    for (stage, n) in [
        ("all", f.funnel.sessions),
        ("with_views", f.funnel.with_views),
        ("with_cart", f.funnel.with_cart),
        ("converted", f.funnel.converted),
        ("abandoned", f.funnel.abandoned),
    ] {
        FUNNEL.with_label_values(&[stage]).set(int(n));
    }
    if let Some(day) = outcome.through.and_then(|d| d.succ_opt()) {
        THROUGH.set(
            day.and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp()),
        );
    }
}

/// Creates the run counters at zero.
pub fn init() {
    for outcome in ["ok", "error"] {
        RUNS.with_label_values(&[outcome]);
    }
}

/// Counts a failed run.
pub fn failed() {
    init();
    RUNS.with_label_values(&["error"]).inc();
}
