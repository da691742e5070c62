//! Metrics shared by every ecomflow stage.
//!
//! Each stage defines its own metrics in one module (`producer::metrics`,
//! `ingest::metrics`, `aggregator::metrics`, `batch::metrics`), named
//! `ecomflow_<stage>_<what>_<unit>` with labels of bounded cardinality only
//! (a topic, a reason code, a store, a segment; never a product or user id).
//! They all register in the process-wide Prometheus registry, so one
//! `/metrics` endpoint shows every stage that runs in the process: the
//! lookup API's in `replay` and `serve`, or [`serve`] on `--metrics ADDR`
//! for the services that have no API (`ingest`, `replay --publish-only`,
//! `batch --every`).
//!
//! # Layout
//!
//! - [`counter_vec`], [`gauge_vec`], [`histogram_vec`], ...: registration
//!   helpers used by the stages' metric modules.
//! - [`encode`]: the registry in Prometheus' text format.
//! - [`router`], [`serve`]: a minimal HTTP endpoint (`/metrics`, `/healthz`).

pub use prometheus;

use axum::routing::get;
use axum::Router;
use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, TextEncoder,
};

/// Registers `metric` in the process-wide registry. The stages keep their
/// handles in statics, so each is created and registered once per process.
fn register<C: Collector + Clone + 'static>(metric: C) -> C {
    if let Err(e) = prometheus::register(Box::new(metric.clone())) {
        tracing::debug!(error = %e, "Metric registered twice.");
    }
    metric
}

// The metric definitions are constants in the stages' modules; a name or
// label set that Prometheus refuses is a programming error, caught by the
// stages' tests (each metric module has one that touches every metric).
fn opts_ok<T>(r: prometheus::Result<T>, name: &str) -> T {
    r.unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"))
}

/// An integer counter with labels.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(opts_ok(
        IntCounterVec::new(Opts::new(name, help), labels),
        name,
    ))
}

/// A floating-point counter with labels (money, seconds).
pub fn float_counter_vec(name: &str, help: &str, labels: &[&str]) -> CounterVec {
    register(opts_ok(
        CounterVec::new(Opts::new(name, help), labels),
        name,
    ))
}

/// An integer gauge with labels.
pub fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(opts_ok(
        IntGaugeVec::new(Opts::new(name, help), labels),
        name,
    ))
}

/// A floating-point gauge with labels.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(opts_ok(GaugeVec::new(Opts::new(name, help), labels), name))
}

/// A histogram with labels and the given bucket bounds.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    register(opts_ok(
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels),
        name,
    ))
}

/// An integer gauge without labels.
pub fn int_gauge(name: &str, help: &str) -> IntGauge {
    register(opts_ok(IntGauge::new(name, help), name))
}

/// A floating-point gauge without labels.
pub fn gauge(name: &str, help: &str) -> Gauge {
    register(opts_ok(Gauge::new(name, help), name))
}

/// A floating-point counter without labels.
pub fn float_counter(name: &str, help: &str) -> Counter {
    register(opts_ok(Counter::new(name, help), name))
}

/// A histogram without labels.
pub fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    register(opts_ok(
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)),
        name,
    ))
}

/// Latency buckets from 50 us to 10 s.
pub fn latency_buckets() -> Vec<f64> {
    vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// Every metric of the process in Prometheus' text exposition format.
pub fn encode() -> String {
    let families = prometheus::gather();
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::warn!(error = %e, "Encoding metrics failed.");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Handler for `GET /metrics`.
pub async fn metrics_handler() -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], encode())
}

/// `/metrics` and `/healthz`, for processes without the lookup API.
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Serves [`router`] on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_appear_in_the_exposition() {
        let c = counter_vec(
            "ecomflow_test_things_total",
            "Things counted by a test.",
            &["kind"],
        );
        c.with_label_values(&["a"]).inc_by(3);
        c.with_label_values(&["b"]).inc();
        let h = histogram_vec(
            "ecomflow_test_wait_seconds",
            "Waits of a test.",
            &["step"],
            vec![0.1, 1.0],
        );
        h.with_label_values(&["x"]).observe(0.5);
        let text = encode();
        assert!(text.contains("# TYPE ecomflow_test_things_total counter"));
        assert!(
            text.contains("ecomflow_test_things_total{kind=\"a\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ecomflow_test_things_total{kind=\"b\"} 1"),
            "{text}"
        );
        // 0.5 s is above the 0.1 bucket and within the 1.0 bucket.
        assert!(text.contains("ecomflow_test_wait_seconds_bucket{step=\"x\",le=\"0.1\"} 0"));
        assert!(text.contains("ecomflow_test_wait_seconds_bucket{step=\"x\",le=\"1\"} 1"));
        assert!(text.contains("ecomflow_test_wait_seconds_sum{step=\"x\"} 0.5"));
    }
}
