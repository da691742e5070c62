//! How an ecomflow stage runs, whatever it does: the parts every stage
//! shares that are not about the shop's records (those are in `schemas`)
//! nor about its metrics (`telemetry`).
//!
//! # Layout
//!
//! - [`shutdown`]: the one stop signal of every stage ([`Shutdown`]), and
//!   when a consumer is done.
//! - [`fsio`]: files replaced whole (temporary file and rename) and
//!   [`fsio::Durability`], how far a write goes towards the disk.
//! - [`http`]: the HTTP/1.1 accept loop of the lookup API and the metrics
//!   endpoint, with its limits.
//! - [`join`]: two independent halves of a piece of work on two threads.

pub mod fsio;
pub mod http;
pub mod shutdown;

pub use shutdown::Shutdown;

/// Runs `a` on a thread of its own and `b` on this one, and returns both
/// results: two independent halves of a piece of work (the batch's fits
/// and pair counts, ingest's sessions beside its other writes) kept on
/// both cores. A panic in `a` is raised again here.
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        let a = a
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}
