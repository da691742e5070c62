//! Fuzzing the decoders and validators with what a hostile or broken
//! producer sends: real records of every kind (from the generator), cut,
//! flipped, padded, nested deep, with non-UTF-8 bytes and extreme numbers.
//! No input panics; every refusal has a reason code; every record accepted
//! reads back the same once re-encoded. Then a corpus goes through the
//! ingest worker: each record is stored or dead-lettered with its reason,
//! none lost.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use eventlog::embedded::EmbeddedLog;
use eventlog::{EventLog, TopicSpec};
use ingest::{run_worker, IngestConfig, IngestStats};
use producer::events::Stream;
use producer::{Catalog, EventStream, ShopConfig};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use schemas::envelope::{
    decode_catalog, decode_session, decode_transaction, encode, CatalogRecord, Kind,
    MAX_RECORD_BYTES,
};
use schemas::{topics, Rejection};
use std::sync::{Arc, LazyLock};
use stores::doc_embedded::EmbeddedDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::{DocumentStore, SessionStore};

/// Clean records of a small shop: (topic, payload).
static SEEDS: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
    let cfg = ShopConfig {
        users: 40,
        products: 30,
        categories: 4,
        sessions: 400,
        transactions: 100,
        days: 5,
        dirty_share: 0.0,
        ..ShopConfig::default()
    };
    let mut per_topic = std::collections::BTreeMap::<&str, usize>::new();
    EventStream::new(&cfg, Arc::new(Catalog::generate(&cfg)))
        .filter(|e| {
            let n = per_topic.entry(e.stream.topic()).or_default();
            *n += 1;
            *n <= 40 || e.stream == Stream::Catalog
        })
        .map(|e| (e.stream.topic(), e.payload()))
        .collect()
});

/// What ingest does with a record of `topic`: Ok, or the reason code. The
/// decoders' fast readers and serde's agree on every input.
fn verdict(topic: &str, bytes: &[u8]) -> Result<(), Rejection> {
    match topic {
        topics::SESSIONS => {
            assert_eq!(
                decode_session(bytes),
                schemas::envelope::decode_session_serde(bytes)
            );
            let s = decode_session(bytes)?;
            assert_eq!(decode_session(&encode(Kind::Session, &s)), Ok(s));
        }
        topics::TRANSACTIONS => {
            assert_eq!(
                decode_transaction(bytes),
                schemas::envelope::decode_transaction_serde(bytes)
            );
            let t = decode_transaction(bytes)?;
            assert_eq!(decode_transaction(&encode(Kind::Transaction, &t)), Ok(t));
        }
        _ => {
            let again = match decode_catalog(bytes)? {
                CatalogRecord::Category(c) => (
                    CatalogRecord::Category(c.clone()),
                    encode(Kind::Category, &c),
                ),
                CatalogRecord::Product(p) => {
                    (CatalogRecord::Product(p.clone()), encode(Kind::Product, &p))
                }
                CatalogRecord::User(u) => (CatalogRecord::User(u.clone()), encode(Kind::User, &u)),
            };
            assert_eq!(decode_catalog(&again.1), Ok(again.0));
        }
    }
    Ok(())
}

/// Ways to break a record.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the first `at` (per mille of the length) bytes.
    Cut(u16),
    /// Set the byte at `at` to `to`.
    Flip(u16, u8),
    /// Insert raw bytes (often not UTF-8) at `at`.
    Insert(u16, Vec<u8>),
    /// Replace the n-th number with an extreme one.
    Number(u8, &'static str),
    /// Replace the n-th string value with an array nested `depth` deep.
    Nest(u8, u32),
    /// Pad the record with spaces past the size limit.
    Oversize,
}

const EXTREMES: [&str; 12] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "-0",
    "0.0000000000000000000001",
    "123456789012345678901234567890",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u16..1000).prop_map(Mutation::Cut),
        (0u16..1000, any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (0u16..1000, proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<u8>(), proptest::sample::select(&EXTREMES[..]))
            .prop_map(|(n, x)| Mutation::Number(n, x)),
        (any::<u8>(), prop_oneof![1u32..200, Just(100_000u32)])
            .prop_map(|(n, d)| Mutation::Nest(n, d)),
        Just(Mutation::Oversize),
    ]
}

/// Byte ranges of JSON numbers (outside strings) in `b`.
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let (mut out, mut in_str, mut i) = (Vec::new(), false, 0);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                i += 1;
            }
            out.push((start, i));
            continue;
        }
        i += 1;
    }
    out
}

/// Byte ranges of string values (after a `:`) in `b`.
fn string_values(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b':' && b[i + 1] == b'"' {
            let start = i + 1;
            let mut j = start + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push((start, (j + 1).min(b.len())));
            i = j;
        }
        i += 1;
    }
    out
}

fn apply(seed: &[u8], m: &Mutation) -> Vec<u8> {
    let at = |per_mille: u16| seed.len() * usize::from(per_mille) / 1000;
    let mut b = seed.to_vec();
    match m {
        Mutation::Cut(p) => b.truncate(at(*p)),
        Mutation::Flip(p, v) => {
            if let Some(x) = b.get_mut(at(*p)) {
                *x = *v;
            }
        }
        Mutation::Insert(p, bytes) => {
            let i = at(*p);
            b.splice(i..i, bytes.iter().copied());
        }
        Mutation::Number(n, x) => {
            let found = numbers(&b);
            if !found.is_empty() {
                let (s, e) = found[usize::from(*n) % found.len()];
                b.splice(s..e, x.bytes());
            }
        }
        Mutation::Nest(n, depth) => {
            let found = string_values(&b);
            if !found.is_empty() {
                let (s, e) = found[usize::from(*n) % found.len()];
                let d = *depth as usize;
                let nested: Vec<u8> = std::iter::repeat_n(b'[', d)
                    .chain(std::iter::repeat_n(b']', d))
                    .collect();
                b.splice(s..e, nested);
            }
        }
        Mutation::Oversize => {
            let i = b.len().saturating_sub(1);
            b.splice(i..i, std::iter::repeat_n(b' ', MAX_RECORD_BYTES));
        }
    }
    b
}

fn any_record() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    (0..SEEDS.len(), proptest::collection::vec(mutation(), 1..4)).prop_map(|(i, ms)| {
        let (topic, seed) = &SEEDS[i];
        let bytes = ms.iter().fold(seed.clone(), |b, m| apply(&b, m));
        (*topic, bytes)
    })
}

#[test]
fn the_clean_seeds_are_accepted() {
    assert!(SEEDS.len() > 100);
    for (topic, bytes) in SEEDS.iter() {
        assert_eq!(
            verdict(topic, bytes),
            Ok(()),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_record_panics_and_every_refusal_has_a_reason((topic, bytes) in any_record()) {
        if let Err(reason) = verdict(topic, &bytes) {
            prop_assert!(Rejection::CODES.contains(&reason.code()), "{reason:?}");
            prop_assert!(!reason.to_string().is_empty());
            if bytes.len() > MAX_RECORD_BYTES {
                prop_assert_eq!(reason, Rejection::Oversized(bytes.len()));
            }
        }
    }

    /// A record cut short is never valid JSON: always `invalid_json`.
    #[test]
    fn a_cut_record_is_invalid_json(i in 0..SEEDS.len(), per_mille in 0u16..1000) {
        let (topic, seed) = &SEEDS[i];
        let cut = apply(seed, &Mutation::Cut(per_mille));
        prop_assert!(cut.len() < seed.len());
        prop_assert_eq!(verdict(topic, &cut).map_err(|r| r.code()), Err("invalid_json"));
    }

    /// A string value replaced by arrays nested 128 levels or deeper is
    /// `invalid_json`, whichever value it replaced and however deep: the
    /// envelope is at least one level more (a string of the envelope
    /// itself, such as `kind`, sits at level 1), so the whole is past 128.
    #[test]
    fn nesting_past_the_limit_is_invalid_json(i in 0..SEEDS.len(), n in any::<u8>(), depth in 128u32..5_000) {
        let (topic, seed) = &SEEDS[i];
        let nested = apply(seed, &Mutation::Nest(n, depth));
        prop_assume!(nested != *seed);
        prop_assert_eq!(verdict(topic, &nested).map_err(|r| r.code()), Err("invalid_json"));
    }

    #[test]
    fn random_bytes_are_refused_with_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for topic in [topics::SESSIONS, topics::TRANSACTIONS, topics::CATALOG] {
            if let Err(reason) = verdict(topic, &bytes) {
                prop_assert!(Rejection::CODES.contains(&reason.code()));
            }
        }
    }
}

/// A fuzzed corpus through the worker: every record is stored or
/// dead-lettered with a reason, the counts add up, the worker does not stop.
#[test]
fn a_fuzzed_corpus_through_ingest_loses_nothing() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(any_record(), 600);
    let corpus = strategy.new_tree(&mut runner).expect("corpus").current();
    // What the decoders say of each record, to compare with the worker.
    let mut want_dead = std::collections::BTreeMap::<String, u64>::new();
    for (topic, bytes) in &corpus {
        if let Err(r) = verdict(topic, bytes) {
            *want_dead.entry(r.code().to_string()).or_default() += 1;
        }
    }
    assert!(want_dead.values().sum::<u64>() > 300, "{want_dead:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(&dir.path().join("log")).expect("log");
    let specs: Vec<TopicSpec> = ingest::worker::INPUT_TOPICS
        .iter()
        .chain(&[topics::DEAD_LETTERS])
        .map(|t| TopicSpec::new(t, 2))
        .collect();
    log.ensure_topics(&specs).expect("topics");
    let mut p = log.producer().expect("producer");
    for (i, (topic, bytes)) in corpus.iter().enumerate() {
        p.send(topic, format!("k{i}").as_bytes(), bytes, 0)
            .expect("send");
    }
    p.flush().expect("flush");
    let docs = EmbeddedDocStore::open(&dir.path().join("docs")).expect("docs");
    let sessions = SessionStore::new(Arc::new(
        EmbeddedWideStore::open(&dir.path().join("wide")).expect("wide"),
    ))
    .expect("sessions");
    let cfg = IngestConfig {
        batch: 50,
        partitions: 2,
        ..IngestConfig::default()
    };
    let stats = IngestStats::default();
    // Drained: the worker returns once its group has consumed everything.
    let stop = stage::Shutdown::new();
    stop.drain();
    let late = stop.stop_after(std::time::Duration::from_secs(300));
    run_worker(&log, &docs, &sessions, &cfg, &stats, &stop).expect("worker");
    assert!(
        !late.load(std::sync::atomic::Ordering::SeqCst),
        "the worker did not drain the corpus within 300 s"
    );
    let snap = stats.snapshot();
    assert_eq!(snap.consumed, corpus.len() as u64);
    // Two different fuzzed records can share a transaction id: the second
    // is a conflict, which only the store can tell.
    let mut dead = snap.dead_letters.clone();
    let conflicts = dead.remove("duplicate_conflict").unwrap_or(0);
    assert_eq!(dead, want_dead);
    assert_eq!(
        snap.sessions + snap.transactions + snap.catalog + snap.dead_total(),
        corpus.len() as u64,
        "every record stored or dead-lettered ({conflicts} conflicts)"
    );
    assert_eq!(
        docs.dead_letters().expect("dead letters").len() as u64,
        snap.dead_total()
    );
}
