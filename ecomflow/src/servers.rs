//! The process's HTTP servers: a runtime and listener for each, and the
//! `/metrics` endpoint of the services that have no lookup API.

use anyhow::Context;

/// A runtime of `threads` threads for an HTTP server and its listener on
/// `addr`.
pub fn http_runtime(
    thread: &str,
    threads: u16,
    addr: &str,
    what: &str,
) -> anyhow::Result<(tokio::runtime::Runtime, tokio::net::TcpListener)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(threads.max(1)))
        .thread_name(thread)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("binding {what} to {addr}"))?;
    Ok((runtime, listener))
}

/// A `/metrics` endpoint on its own address (`--metrics`), up while this
/// value lives.
pub struct MetricsServer {
    _runtime: tokio::runtime::Runtime,
}

/// Serves every stage's metrics on `addr`, if one is given.
pub fn start_metrics(addr: Option<&str>) -> anyhow::Result<Option<MetricsServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let (runtime, listener) = http_runtime("metrics", 1, addr, "the metrics endpoint (--metrics)")?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        if let Err(e) = telemetry::serve(listener).await {
            tracing::error!(error = %e, "Metrics endpoint stopped.");
        }
    });
    println!("Metrics on http://{addr}/metrics.");
    Ok(Some(MetricsServer { _runtime: runtime }))
}
