//! How fast sessions and transactions decode, with the plain-JSON reader
//! (`schemas::decode_session`, `decode_transaction`) and with serde's derived
//! reader alone (`..._serde`), on records of a generated shop shaped like the
//! default one (dirty records included).
//!
//! `cargo run --release -p ingest --example decode_rates [SESSIONS]`
//! (200,000 sessions and a quarter as many transactions unless given)
//! prints, per kind and reader, the median of five rounds in nanoseconds a
//! record, and checks that both readers gave the same answers.
// A measuring tool: a failed unwrap is a bad argument, reported by the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use producer::events::Stream;
use producer::{Catalog, EventStream, ShopConfig};
use schemas::envelope::{
    decode_session, decode_session_serde, decode_transaction, decode_transaction_serde,
};
use std::sync::Arc;
use std::time::Instant;

/// The allocator `ecomflow` runs with: decoding allocates every string.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let sessions: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("SESSIONS: a number"))
        .unwrap_or(200_000);
    let defaults = ShopConfig::default();
    let cfg = ShopConfig {
        sessions,
        transactions: sessions / 4,
        days: 10,
        ..defaults
    };
    let mut by_stream = [Vec::new(), Vec::new()];
    for e in EventStream::new(&cfg, Arc::new(Catalog::generate(&cfg))) {
        match e.stream {
            Stream::Sessions => by_stream[0].push(e.payload()),
            Stream::Transactions => by_stream[1].push(e.payload()),
            Stream::Catalog => {}
        }
    }
    let [sessions, transactions] = by_stream;
    type Decode = fn(&[u8]) -> bool;
    let runs: [(&str, &[Vec<u8>], Decode, Decode); 2] = [
        (
            "session",
            &sessions,
            |b| decode_session(b).is_ok(),
            |b| decode_session_serde(b).is_ok(),
        ),
        (
            "transaction",
            &transactions,
            |b| decode_transaction(b).is_ok(),
            |b| decode_transaction_serde(b).is_ok(),
        ),
    ];
    for (kind, records, fast, serde) in runs {
        let bytes: usize = records.iter().map(Vec::len).sum();
        let mut line = format!(
            "{kind:<12} {} records, {} bytes on average:",
            records.len(),
            bytes / records.len().max(1)
        );
        let mut accepted = Vec::new();
        for (reader, decode) in [("plain-JSON reader", fast), ("serde alone", serde)] {
            let mut rounds = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let ok = records.iter().filter(|r| decode(r)).count();
                rounds.push(t.elapsed().as_nanos() as f64 / records.len().max(1) as f64);
                accepted.push(ok);
            }
            rounds.sort_by(f64::total_cmp);
            line += &format!("  {reader} {:.0} ns", rounds[2]);
        }
        assert!(accepted.windows(2).all(|w| w[0] == w[1]));
        println!("{line} a record ({} accepted by both)", accepted[0]);
    }
}
