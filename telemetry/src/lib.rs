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
//! - [`router`], [`serve`]: a minimal HTTP endpoint (`/metrics`, `/livez`,
//!   `/readyz` and its alias `/healthz`) for processes without the lookup
//!   API, on the accept loop of `stage::http`, which the lookup API runs
//!   on too.
//! - [`health`]: what is not ready, and why.

pub use prometheus;

pub mod health;

use axum::routing::get;
use axum::Router;
use prometheus::core::{Collector, Metric};
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

/// Sets `ecomflow_build_info{version,revision} 1`, the build a process
/// runs (the process metrics, `process_*`, come with the registry on Linux).
pub fn build_info(version: &str, revision: &str) {
    let info = int_gauge_vec(
        "ecomflow_build_info",
        "The ecomflow build this process runs: its version and git revision (1).",
        &["version", "revision"],
    );
    info.with_label_values(&[version, revision]).set(1);
    if let Some(limit) = memory_limit() {
        gauge(
            "ecomflow_process_memory_limit_bytes",
            "Memory this process may use: its cgroup's limit, or the machine's memory when none is set.",
        )
        .set(limit as f64);
    }
}

/// The cgroup's memory limit (v2, then v1), or the machine's memory.
fn memory_limit() -> Option<u64> {
    let read = |path: &str| -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    // cgroup v1 reports "no limit" as a number near u64::MAX.
    read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .filter(|&l| l < (1 << 60))
        .or_else(|| {
            let info = std::fs::read_to_string("/proc/meminfo").ok()?;
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
}

/// Latency buckets from 50 us to 10 s.
pub fn latency_buckets() -> Vec<f64> {
    vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// The `q` quantile (0..1) of what `h` observed, estimated as Prometheus'
/// `histogram_quantile` does: linearly within the bucket it falls in (the
/// first bucket from 0). `None` before any observation; the highest finite
/// bound when it falls in the `+Inf` bucket.
pub fn histogram_quantile(h: &Histogram, q: f64) -> Option<f64> {
    let metric = h.metric();
    let hist = metric.get_histogram();
    let total = hist.get_sample_count();
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for b in hist.get_bucket() {
        let (upper, count) = (b.upper_bound(), b.cumulative_count());
        if count as f64 >= rank && count > below {
            let within = (rank - below as f64) / (count - below) as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        (lower, below) = (upper, count);
    }
    Some(lower)
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
        .route(
            "/livez",
            get(|| async { json(200, r#"{"status":"ok"}"#.to_string()) }),
        )
        .route("/readyz", get(|| async { ready() }))
        .route("/healthz", get(|| async { ready() }))
}

fn ready() -> axum::response::Response {
    let (status, body) = health::readiness();
    json(status, body)
}

fn json(status: u16, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Serves [`router`] on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    stage::http::serve_router(listener, router(), stage::http::ServerLimits::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_their_bucket_as_prometheus_does() {
        let h = Histogram::with_opts(HistogramOpts::new("q", "q").buckets(vec![0.01, 0.05, 0.1]))
            .expect("histogram");
        assert_eq!(histogram_quantile(&h, 0.5), None);
        for (v, n) in [(0.005, 50), (0.03, 40), (0.2, 10)] {
            for _ in 0..n {
                h.observe(v);
            }
        }
        let q = |q| histogram_quantile(&h, q).expect("observed");
        // 50 of 100 in (0, 0.01]: the 50th is at its top.
        assert!((q(0.5) - 0.01).abs() < 1e-12, "{}", q(0.5));
        // The 70th is half way through the 40 in (0.01, 0.05].
        assert!((q(0.7) - 0.03).abs() < 1e-12, "{}", q(0.7));
        assert!((q(0.9) - 0.05).abs() < 1e-12, "{}", q(0.9));
        // Past the last bound: the last bound.
        assert_eq!(q(0.99), 0.1);
        assert_eq!(histogram_quantile(&h, 1.5), None);
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    /// A one-thread runtime and a listener on a free port of 127.0.0.1.
    fn runtime_and_listener() -> (
        tokio::runtime::Runtime,
        tokio::net::TcpListener,
        std::net::SocketAddr,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (runtime, listener, addr)
    }

    /// Readiness says what is not ready while it lasts; liveness does not
    /// change.
    #[test]
    fn readiness_follows_what_is_unready() {
        let (runtime, listener, addr) = runtime_and_listener();
        runtime.spawn(serve(listener));
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));
        health::set_unready("document store", "MongoDB at db:27017: connection refused");
        let answer = get(addr, "/readyz");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains(r#""status":"not_ready""#), "{answer}");
        assert!(
            answer
                .contains(r#""reason":"document store: MongoDB at db:27017: connection refused""#),
            "{answer}"
        );
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 503"));
        assert!(get(addr, "/livez").starts_with("HTTP/1.1 200"));
        health::set_ready("document store");
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));
    }

    /// A server capped at two connections whose clients get 400 ms to send
    /// their headers: two idle connections hold it; a third, complete
    /// request waits (not answered while they are open) and is answered
    /// once the idle ones are closed for their silence, as is a half-sent
    /// request.
    #[test]
    fn idle_connections_time_out_and_the_cap_holds_new_ones_back() {
        use std::io::{Read, Write};
        use std::time::Duration;
        let (runtime, listener, addr) = runtime_and_listener();
        let limits = stage::http::ServerLimits {
            max_connections: 2,
            header_timeout: Duration::from_millis(400),
        };
        runtime.spawn(stage::http::serve_router(listener, router(), limits));

        let connect = || std::net::TcpStream::connect(addr).expect("connect");
        let mut idle = connect();
        let mut half = connect();
        // /livez: readiness is process-wide, and another test changes it.
        half.write_all(b"GET /livez HTTP/1.1\r\nHo").expect("write");
        let mut waiting = connect();
        waiting
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        // Held back: nothing within a quarter of the timeout.
        waiting
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        assert!(
            waiting.read(&mut buf).is_err(),
            "answered past the connection cap"
        );
        // The silent and the half-sent connections are closed (EOF)...
        for stream in [&mut idle, &mut half] {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            assert_eq!(stream.read(&mut buf).expect("closed, not reset"), 0);
        }
        // ...and the waiting request is served.
        waiting
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = String::new();
        waiting.read_to_string(&mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    }

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
