//! The HTTP/1.1 accept loop that the lookup API and the metrics endpoint
//! run on.
//!
//! Hand-written on hyper rather than `axum::serve` for what
//! `axum::serve` lacks: a cap on open connections and a time limit on a
//! request's headers (without them, a client holding half-sent requests or
//! idle keep-alives holds file descriptors without end). It costs nothing
//! in speed: with `ecomflow serve --data-dir D --http 127.0.0.1:18080` on a
//! default-shop data dir pinned to one core and `wrk -t1 -c8 -d10s
//! --latency -s scripts/lookups.lua` on the other, five alternated pairs
//! gave this loop 82k-108k requests/s and `axum::serve` 79k-102k, a median
//! pair ratio of 1.06 (0.81-1.15).

use axum::Router;

/// What one HTTP server lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections open at once; past it new ones wait in the listen
    /// backlog until one closes, and file descriptors stay for the rest of
    /// the process (its checkpoints, its stores).
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from when
    /// the server starts waiting for them: a half-sent request and an idle
    /// keep-alive connection are closed after it.
    pub header_timeout: std::time::Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` with `limits` until the future is dropped:
/// HTTP/1.1 with keep-alive, each connection on its own task. An accept
/// error (out of file descriptors) is logged and retried after a pause,
/// never the end of the server.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
) -> std::io::Result<()> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return Ok(()); // The semaphore is never closed.
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "Accepting a connection failed; retrying.");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let served = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "Connection closed with an error.");
            }
        });
    }
}
