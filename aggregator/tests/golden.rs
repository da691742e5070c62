//! The processor on streams whose answers are known: a hand-made stream
//! (expected values worked out by hand, below), and a generated shop
//! processed with a checkpoint, a stop and a restore in the middle, which
//! must give exactly the state of an uninterrupted run.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aggregator::choices::{Ranking, Relation, Span};
use aggregator::processor::{Aggregator, AggregatorConfig, Outcome};
use common::{session, txn};
use producer::{Catalog, EventStream, ShopConfig};
use schemas::*;
use std::sync::Arc;

#[test]
fn hand_made_stream() {
    let mut a = Aggregator::new(AggregatorConfig::default());
    let t = topics::TRANSACTIONS;
    let s = topics::SESSIONS;
    assert_eq!(
        a.apply(
            t,
            0,
            0,
            &txn(
                "txn_1",
                "2025-01-01T10:00:00",
                &["prod_00001", "prod_00002"]
            )
        ),
        Outcome::Applied
    );
    let t2 = txn(
        "txn_2",
        "2025-01-01T11:00:00",
        &["prod_00001", "prod_00002", "prod_00003"],
    );
    assert_eq!(a.apply(t, 0, 1, &t2), Outcome::Applied);
    assert_eq!(
        a.apply(
            t,
            0,
            2,
            &txn(
                "txn_3",
                "2025-01-02T09:00:00",
                &["prod_00001", "prod_00003"]
            )
        ),
        Outcome::Applied
    );
    assert_eq!(
        a.apply(
            t,
            0,
            3,
            &txn("txn_4", "2025-01-02T10:00:00", &["prod_00004"])
        ),
        Outcome::Applied
    );
    // Re-reading an offset already counted changes nothing.
    assert_eq!(a.apply(t, 0, 1, &t2), Outcome::AlreadyApplied);
    // Watermark: 2025-01-02T10:00 - 1 h = 09:00 on the 2nd. An event at
    // 08:00 on the 1st is 25 h = 90,000 s behind it.
    assert_eq!(
        a.apply(
            t,
            0,
            4,
            &txn(
                "txn_5",
                "2025-01-01T08:00:00",
                &["prod_00001", "prod_00004"]
            )
        ),
        Outcome::Late(Rejection::Late {
            lag_seconds: 90_000
        })
    );
    assert_eq!(a.late_events(), 1);
    assert!(matches!(a.apply(t, 0, 5, b"garbage"), Outcome::Invalid(_)));
    // A basket dated far ahead of the clock is refused before it reaches
    // the watermark: the next on-time event is still on time.
    let watermark = a.watermark();
    assert_eq!(
        a.apply(
            t,
            0,
            6,
            &txn(
                "txn_6",
                "2999-01-01T00:00:00",
                &["prod_00001", "prod_00005"]
            )
        ),
        Outcome::Invalid(Rejection::FutureTimestamp("2999-01-01T00:00:00".into()))
    );
    assert_eq!(a.watermark(), watermark);

    // Baskets: 4; product 1 in 3, 2 in 2, 3 in 2. Pairs with 1: (1,2) x2,
    // (1,3) x2: the same 2x2 table (2,1,0,1), so the same LLR; the tie
    // breaks on count, then on the lower id.
    let top = a.bought_together(1, 10, Ranking::Llr, Span::Window);
    assert_eq!(
        top.iter()
            .map(|p| (p.item, p.score.count))
            .collect::<Vec<_>>(),
        vec![(2, 2), (3, 2)]
    );
    assert!((top[0].score.llr - aggregator::llr::llr(2, 1, 0, 1)).abs() < 1e-12);
    assert!((top[0].score.confidence - 2.0 / 3.0).abs() < 1e-12);
    // Lift of (1,2): P(2|1) / P(2) = (2/3) / (2/4) = 4/3.
    assert!((top[0].score.lift - 4.0 / 3.0).abs() < 1e-12);
    assert!(
        a.bought_together(4, 10, Ranking::Count, Span::Window)
            .is_empty(),
        "the late basket did not count"
    );

    // Sessions of user 7: viewed [1,2,3] converted, viewed [1,2] abandoned.
    assert_eq!(
        a.apply(
            s,
            1,
            0,
            &session(
                "2025-01-02T09:30:00",
                &["prod_00001", "prod_00002", "prod_00003"],
                ConversionStatus::Converted
            )
        ),
        Outcome::Applied
    );
    assert_eq!(
        a.apply(
            s,
            1,
            1,
            &session(
                "2025-01-02T09:45:00",
                &["prod_00001", "prod_00002"],
                ConversionStatus::Abandoned
            )
        ),
        Outcome::Applied
    );
    let e = a.engagement(7);
    assert_eq!(
        (e.sessions, e.converted, e.viewed, e.abandoned),
        (2, 1, 5, 1)
    );
    // 2 x 0.3 + 1 x 0.5 + 5 / 100 x 0.2 = 1.11.
    assert!((e.score() - 1.11).abs() < 1e-12);
    let v = a.together(Relation::Viewed, 1, 10, Ranking::Count, Span::Window);
    assert_eq!(
        v.iter()
            .map(|p| (p.item, p.score.count))
            .collect::<Vec<_>>(),
        vec![(2, 2), (3, 1)]
    );
    let offsets = a.offsets();
    assert_eq!(
        offsets.get(&(topics::TRANSACTIONS.to_string(), 0)),
        Some(&7),
        "offsets 0-6 read, the refused ones too"
    );
    assert_eq!(offsets.get(&(topics::SESSIONS.to_string(), 1)), Some(&2));
}

/// The shop's sessions and transactions as (topic, offset, payload), with
/// offsets as a one-partition log per topic would give them.
fn shop_records(cfg: &ShopConfig) -> Vec<(String, u64, Vec<u8>)> {
    let mut next = std::collections::HashMap::new();
    EventStream::new(cfg, Arc::new(Catalog::generate(cfg)))
        .filter(|e| e.stream.topic() != topics::CATALOG)
        .map(|e| {
            let topic = e.stream.topic().to_string();
            let o = next.entry(topic.clone()).or_insert(0u64);
            *o += 1;
            (topic, *o - 1, e.payload())
        })
        .collect()
}

#[test]
fn checkpoint_stop_restore_equals_an_uninterrupted_run() {
    let cfg = ShopConfig {
        users: 120,
        products: 90,
        categories: 6,
        sessions: 6_000,
        transactions: 1_500,
        days: 40,
        ..ShopConfig::default()
    };
    let records = shop_records(&cfg);
    let config = AggregatorConfig {
        window_days: 14,
        ..AggregatorConfig::default()
    };

    let mut whole = Aggregator::new(config.clone());
    for (t, o, p) in &records {
        whole.apply(t, 0, *o, p);
    }

    let half = records.len() / 2;
    let mut first = Aggregator::new(config);
    for (t, o, p) in &records[..half] {
        first.apply(t, 0, *o, p);
    }
    let checkpoint = first.checkpoint();
    drop(first);
    // A flipped byte anywhere, or a cut, is refused: never a changed count.
    // Every 97th byte and the last 16 (the checksum and what it covers).
    let positions: Vec<usize> = (0..checkpoint.len())
        .step_by(97)
        .chain(checkpoint.len().saturating_sub(16)..checkpoint.len())
        .collect();
    for at in positions {
        let mut damaged = checkpoint.clone();
        damaged[at] ^= 0x10;
        let err = Aggregator::restore(&damaged).expect_err("a flipped byte is refused");
        assert!(
            err.to_string().contains("unreadable aggregator checkpoint"),
            "{err}"
        );
    }
    let cut = &checkpoint[..checkpoint.len() - 3];
    assert!(
        Aggregator::restore(cut).is_err(),
        "a cut checkpoint is refused"
    );
    let mut resumed = Aggregator::restore(&checkpoint).expect("restore");
    // The log resumes from an older commit: 500 records are read again.
    let mut again = 0;
    for (t, o, p) in &records[half - 500..] {
        if resumed.apply(t, 0, *o, p) == Outcome::AlreadyApplied {
            again += 1;
        }
    }
    assert_eq!(
        again, 500,
        "records before the checkpoint are not counted twice"
    );
    assert_eq!(resumed, whole, "same state as the uninterrupted run");
    for p in 1..=90 {
        for r in [Ranking::Llr, Ranking::Count] {
            assert_eq!(
                resumed.bought_together(p, 10, r, Span::Window),
                whole.bought_together(p, 10, r, Span::Window)
            );
            assert_eq!(
                resumed.together(Relation::Viewed, p, 10, r, Span::AllTime),
                whole.together(Relation::Viewed, p, 10, r, Span::AllTime)
            );
        }
    }
    // The 14-day window slid: it ends on the last day and spans 14 days.
    let (start, end) = whole.covers().expect("data");
    assert_eq!(end - start, 14 * 86_400);
    assert!(
        whole
            .bought_together(1, 10, Ranking::Count, Span::AllTime)
            .len()
            >= whole
                .bought_together(1, 10, Ranking::Count, Span::Window)
                .len()
    );
}

/// An embedded log in `dir` with the aggregator's topics, one partition each.
fn one_partition_log(dir: &std::path::Path) -> eventlog::embedded::EmbeddedLog {
    use eventlog::{EventLog, TopicSpec};
    let log = eventlog::embedded::EmbeddedLog::open(&dir.join("log")).expect("log");
    log.ensure_topics(&[
        TopicSpec::new(topics::SESSIONS, 1),
        TopicSpec::new(topics::TRANSACTIONS, 1),
        TopicSpec::new(topics::DEAD_LETTERS, 1),
    ])
    .expect("topics");
    log
}

#[test]
fn a_failing_checkpoint_is_retried_and_never_stops_the_runner() {
    use aggregator::runner::{self, RunnerConfig, RunnerStats};
    use eventlog::EventLog;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let log = one_partition_log(dir.path());
    let mut producer = log.producer().expect("producer");
    for i in 0..20 {
        let id = format!("txn_{i:012}");
        producer
            .send(
                topics::TRANSACTIONS,
                b"user_000007",
                &txn(&id, "2025-01-01T10:00:00", &["prod_00001", "prod_00002"]),
                0,
            )
            .expect("send");
    }
    producer.flush().expect("flush");

    // The checkpoint's folder cannot be made: a file stands in its place
    // (as a full disk or an exhausted descriptor table would fail it).
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"").expect("blocker");
    let cfg = RunnerConfig {
        every: Duration::from_millis(20),
        batch: 100,
        ..RunnerConfig::new("aggregator", blocker.join("checkpoint.bin"))
    };
    let model = Arc::new(aggregator::RwLock::new(Aggregator::new(
        AggregatorConfig::default(),
    )));
    let stats = Arc::new(RunnerStats::default());
    let stop = stage::Shutdown::new();
    let handle = {
        let (model, stats, stop, cfg) = (model.clone(), stats.clone(), stop.clone(), cfg.clone());
        std::thread::spawn(move || runner::run(&log, &model, &cfg, &stats, &stop))
    };
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("two failed checkpoints", &|| {
        stats.checkpoint_failures.load(Ordering::Relaxed) >= 2
    });
    assert!(
        !handle.is_finished(),
        "a failed checkpoint stopped the runner"
    );
    wait_for("every record applied", &|| {
        stats.applied.load(Ordering::Relaxed) == 20
    });
    assert_eq!(stats.checkpoints.load(Ordering::Relaxed), 0);

    // Once the cause is gone, the next try succeeds and the count resets.
    std::fs::remove_file(&blocker).expect("unblock");
    wait_for("a successful checkpoint", &|| {
        stats.checkpoints.load(Ordering::Relaxed) >= 1
    });
    assert_eq!(stats.checkpoint_failures.load(Ordering::Relaxed), 0);
    stop.stop();
    handle.join().expect("join").expect("runner ends cleanly");
    let saved = std::fs::read(&cfg.checkpoint).expect("checkpoint written");
    let restored = Aggregator::restore(&saved).expect("restore");
    assert_eq!(
        restored.bought_together(1, 10, Ranking::Count, Span::AllTime),
        model
            .read()
            .bought_together(1, 10, Ranking::Count, Span::AllTime)
    );
    assert_eq!(
        restored.bought_together(1, 10, Ranking::Count, Span::AllTime)[0]
            .score
            .count,
        20
    );
}

/// A machine crash can lose a checkpoint's rename but keep the commit made
/// after it: the group is then ahead of the state it restores. The records
/// in between are read again instead of skipped.
#[test]
fn a_checkpoint_older_than_the_commit_sets_the_group_back_to_it() {
    use aggregator::runner::{self, RunnerConfig, RunnerStats};
    use eventlog::{EventLog, Offsets, Rewound};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let log = one_partition_log(dir.path());
    let mut producer = log.producer().expect("producer");
    let basket = |i: u32| {
        txn(
            &format!("txn_{i:012}"),
            "2025-01-01T10:00:00",
            &["prod_00001", "prod_00002"],
        )
    };
    for i in 0..30 {
        producer
            .send(topics::TRANSACTIONS, b"user_000007", &basket(i), 0)
            .expect("send");
    }
    producer.flush().expect("flush");

    // The surviving checkpoint reflects 10 records; the commit, 30.
    let mut old = Aggregator::new(AggregatorConfig::default());
    for i in 0..10 {
        assert_eq!(
            old.apply(topics::TRANSACTIONS, 0, u64::from(i), &basket(i)),
            Outcome::Applied
        );
    }
    let saved = old.checkpoint();
    let partition = (topics::TRANSACTIONS.to_string(), 0);
    log.set_group_offsets("aggregator", &Offsets::from([(partition.clone(), 30)]))
        .expect("commit");

    let model = Aggregator::restore(&saved).expect("restore");
    let rewound = runner::resume_from_checkpoint(&log, "aggregator", &model).expect("resume");
    assert_eq!(
        rewound,
        vec![Rewound {
            partition: partition.clone(),
            committed: 30,
            held: 10
        }]
    );
    assert_eq!(
        log.committed_offsets("aggregator", &runner::INPUT_TOPICS)
            .expect("committed"),
        Offsets::from([(partition, 10)])
    );
    // Nothing to do a second time.
    assert!(runner::resume_from_checkpoint(&log, "aggregator", &model)
        .expect("resume")
        .is_empty());

    let cfg = RunnerConfig {
        every: Duration::from_secs(60),
        batch: 100,
        durability: stage::fsio::Durability::Machine,
        ..RunnerConfig::new("aggregator", dir.path().join("checkpoint.bin"))
    };
    let model = Arc::new(aggregator::RwLock::new(model));
    let stats = Arc::new(RunnerStats::default());
    let stop = stage::Shutdown::new();
    let handle = {
        let (model, stats, stop, cfg) = (model.clone(), stats.clone(), stop.clone(), cfg.clone());
        std::thread::spawn(move || runner::run(&log, &model, &cfg, &stats, &stop))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.applied.load(Ordering::Relaxed) < 20 {
        assert!(
            Instant::now() < deadline,
            "the 20 records were not read again"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.stop();
    handle.join().expect("join").expect("runner ends cleanly");
    let count = |m: &Aggregator| {
        m.bought_together(1, 10, Ranking::Count, Span::AllTime)[0]
            .score
            .count
    };
    assert_eq!(count(&model.read()), 30);
    // The final checkpoint (synced) holds all 30.
    let saved = std::fs::read(&cfg.checkpoint).expect("checkpoint written");
    assert_eq!(count(&Aggregator::restore(&saved).expect("restore")), 30);
}

/// The same shop with its ids re-keyed to other forms: SKUs with dashes,
/// UUIDs, mixed case, non-ASCII (and a generated-looking spelling with one
/// zero too many, which is a name, not a number).
fn rekeyed_product(id: &str) -> String {
    let n: u32 = id
        .trim_start_matches("prod_")
        .parse()
        .expect("generated id");
    match n % 5 {
        0 => format!("SKU-{n:05}"),
        1 => format!(
            "{:08x}-7d1c-4e2b-9a3f-{n:012x}",
            n.wrapping_mul(2_654_435_761)
        ),
        2 => format!("Prod{n}Red"),
        3 => format!("café-crème-{n}-ß"),
        _ => format!("prod_0{n:05}"),
    }
}

fn rekeyed_user(id: &str) -> String {
    let n: u32 = id
        .trim_start_matches("user_")
        .parse()
        .expect("generated id");
    if n.is_multiple_of(2) {
        format!("cust-{n}")
    } else {
        format!("Kundin Ä{n}")
    }
}

fn rekeyed(topic: &str, payload: &[u8]) -> Vec<u8> {
    use schemas::envelope::{encode, Kind};
    match topic {
        topics::TRANSACTIONS => {
            // Dirty records (the producer makes some) stay as they are.
            let Ok(mut t) = decode_transaction(payload) else {
                return payload.to_vec();
            };
            t.user_id = rekeyed_user(&t.user_id);
            for i in &mut t.items {
                i.product_id = rekeyed_product(&i.product_id);
            }
            encode(Kind::Transaction, &t)
        }
        _ => {
            let Ok(mut s) = decode_session(payload) else {
                return payload.to_vec();
            };
            s.user_id = rekeyed_user(&s.user_id);
            for p in &mut s.viewed_products {
                *p = rekeyed_product(p);
            }
            for c in &mut s.cart_contents {
                c.product_id = rekeyed_product(&c.product_id);
            }
            encode(Kind::Session, &s)
        }
    }
}

/// A shop's own ids give the live window the same pairs, partners and
/// engagement as the generated ids they stand for, also through a
/// checkpoint and restore half-way.
#[test]
fn a_shop_with_its_own_ids_gets_the_same_answers() {
    let cfg = ShopConfig {
        users: 80,
        products: 60,
        categories: 5,
        sessions: 3_000,
        transactions: 900,
        days: 30,
        ..ShopConfig::default()
    };
    let records = shop_records(&cfg);
    let config = AggregatorConfig {
        window_days: 10,
        ..AggregatorConfig::default()
    };
    let mut generated = Aggregator::new(config.clone());
    let mut own = Aggregator::new(config);
    let half = records.len() / 2;
    for (i, (t, o, p)) in records.iter().enumerate() {
        let outcome = generated.apply(t, 0, *o, p);
        assert_eq!(own.apply(t, 0, *o, &rekeyed(t, p)), outcome);
        if i == half {
            own = Aggregator::restore(&own.checkpoint()).expect("restores");
        }
    }
    let known_products = (1..=60).filter(|&p| generated.knows_product(p)).count();
    let known_users = (1..=80).filter(|&u| generated.knows_user(u)).count();
    assert!(known_products > 50 && known_users > 60);
    assert_eq!(
        own.named_ids(),
        (known_products, known_users),
        "all by name"
    );
    assert_eq!(generated.named_ids(), (0, 0));
    assert_eq!(own.window_pairs(), generated.window_pairs());
    assert!(
        generated.window_pairs().0 > 100,
        "{:?}",
        generated.window_pairs()
    );

    for relation in [Relation::Bought, Relation::Viewed] {
        for span in [Span::Window, Span::AllTime] {
            let pairs = |m: &Aggregator, rekey: bool| {
                let mut out: Vec<(String, String, u64)> = m
                    .top_pairs(relation, usize::MAX, span)
                    .into_iter()
                    .map(|(a, b, n)| {
                        let (a, b) = (m.product_id(a), m.product_id(b));
                        let (mut a, mut b) = (a.to_string(), b.to_string());
                        if rekey {
                            (a, b) = (rekeyed_product(&a), rekeyed_product(&b));
                        }
                        (a.clone().min(b.clone()), a.max(b), n)
                    })
                    .collect();
                out.sort();
                out
            };
            assert_eq!(pairs(&generated, true), pairs(&own, false));
        }
        for p in 1..=60u32 {
            let id = schemas::ids::product_id(p);
            let partners = |m: &Aggregator, id: &str, rekey: bool| {
                let Some(n) = m.product_number(id) else {
                    return Vec::new();
                };
                let mut out: Vec<(String, u64, u64)> = m
                    .together(relation, n, usize::MAX, Ranking::Llr, Span::Window)
                    .iter()
                    .map(|x| {
                        let partner = m.product_id(x.item).to_string();
                        let partner = if rekey {
                            rekeyed_product(&partner)
                        } else {
                            partner
                        };
                        (partner, x.score.count, x.score.llr.to_bits())
                    })
                    .collect();
                out.sort();
                out
            };
            assert_eq!(
                partners(&generated, &id, true),
                partners(&own, &rekeyed_product(&id), false),
                "{id}"
            );
        }
    }
    for u in 1..=80u32 {
        let id = schemas::ids::user_id(u);
        let of = |m: &Aggregator, id: &str| {
            m.user_number(id)
                .filter(|&n| m.knows_user(n))
                .map(|n| m.engagement(n))
        };
        assert_eq!(of(&generated, &id), of(&own, &rekeyed_user(&id)), "{id}");
    }
    // The id with one zero too many is a name, never product 4.
    let named = own.product_number("prod_000004").expect("seen");
    assert!(named >= aggregator::names::FIRST_NAMED, "{named}");
    assert!(!own.knows_product(4));
}

/// Baskets of one product make no pair: the window says it holds baskets
/// (the run's summary then warns), and no pairs.
#[test]
fn single_product_baskets_are_held_without_pairs() {
    let mut m = Aggregator::new(AggregatorConfig::default());
    assert!(!m.holds_baskets(Relation::Bought));
    m.apply(
        topics::TRANSACTIONS,
        0,
        0,
        &txn("t1", "2025-01-01T10:00:00", &["SKU-1"]),
    );
    assert!(m.holds_baskets(Relation::Bought));
    assert!(!m.holds_baskets(Relation::Viewed));
    assert_eq!(m.window_pairs(), (0, 0));
}

/// A record of a topic the aggregator does not read is refused as of the
/// wrong kind, and leaves no offset behind.
#[test]
fn a_topic_that_is_not_an_input_is_refused() {
    let mut m = Aggregator::new(AggregatorConfig::default());
    let t = txn("t1", "2025-01-01T10:00:00", &["prod_00001", "prod_00002"]);
    assert_eq!(
        m.apply(topics::CATALOG, 0, 0, &t),
        Outcome::Invalid(Rejection::WrongKind {
            expected: "session or transaction",
            found: "catalog".into()
        })
    );
    assert!(m.offsets().is_empty());
    assert_eq!(m.window_pairs(), (0, 0));
}
