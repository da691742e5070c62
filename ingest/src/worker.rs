//! The ingest worker loop.

use crate::metrics;
use eventlog::{
    offsets_after, rewind_to_held, EventLog, LogConsumer, LogError, LogProducer, Offsets, Record,
    Rewound,
};
use schemas::envelope::{
    decode_catalog, decode_session, decode_transaction, CatalogRecord, DeadLetter,
};
use schemas::{topics, Rejection};
use schemas::{Session, Transaction};
use stage::shutdown::{consumer_done, Shutdown};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use stores::{DocumentStore, SessionStore, StoreError};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Consumer group shared by all ingest workers.
    pub group: String,
    /// Workers (threads) a process runs, members of the group.
    pub workers: usize,
    /// Records per batch (one store write and one commit each).
    pub batch: usize,
    /// How long a poll waits for records.
    pub poll_timeout: Duration,
    /// Partitions per topic (to know when every partition has been seen,
    /// for the stored-through event time).
    pub partitions: u32,
    /// Stop once the group has consumed everything and nothing new arrived
    /// for this long (`--until-idle`); see [`stage::shutdown::consumer_done`].
    pub until_idle: Option<Duration>,
}

/// Ingest workers (threads) a process runs unless told otherwise: two
/// keep one core decoding while the other writes, on the 2-core machine of
/// docs/benchmarks.md.
pub const DEFAULT_WORKERS: usize = 2;

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            group: "ingest".into(),
            workers: DEFAULT_WORKERS,
            // Fewer commits and dead-letter syncs, each user's summary
            // written once per chunk, and longer sorted runs into the
            // stores. 8,000 against 2,000, ingest alone on the default
            // shop, alternated: 155.5k and 158.6k events/s against 132.0k
            // and 145.0k; 32,000 against 8,000 in the main job, see
            // `producer::replay::ReplayOptions`'s chunk.
            batch: 32_000,
            poll_timeout: Duration::from_millis(200),
            partitions: topics::DEFAULT_PARTITIONS,
            until_idle: None,
        }
    }
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters shared by the workers of a process.
#[derive(Debug, Default)]
pub struct IngestStats {
    consumed: AtomicU64,
    sessions: AtomicU64,
    transactions: AtomicU64,
    new_transactions: AtomicU64,
    catalog: AtomicU64,
    dead: Mutex<BTreeMap<String, u64>>,
    /// Highest event time (ms) stored, per session/transaction partition.
    watermarks: Mutex<BTreeMap<(String, u32), i64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Records read from the log.
    pub consumed: u64,
    /// Valid sessions written.
    pub sessions: u64,
    /// Valid transactions written (including retried ones).
    pub transactions: u64,
    /// Transactions that were new to the store.
    pub new_transactions: u64,
    /// Catalog records written.
    pub catalog: u64,
    /// Dead letters sent, by reason code.
    pub dead_letters: BTreeMap<String, u64>,
}

impl StatsSnapshot {
    /// Dead letters of every reason.
    pub fn dead_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

impl IngestStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            consumed: self.consumed.load(Ordering::Relaxed),
            sessions: self.sessions.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            new_transactions: self.new_transactions.load(Ordering::Relaxed),
            catalog: self.catalog.load(Ordering::Relaxed),
            dead_letters: self.dead.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// The event time (ms) up to which everything has been stored: the
    /// lowest of the per-partition highs, once all `partitions` of both the
    /// session and the transaction topic have been seen. The producer
    /// publishes in event-time order, so each partition is in order.
    pub fn low_watermark_ms(&self, partitions: u32) -> Option<i64> {
        let w = self.watermarks.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() < 2 * partitions as usize {
            return None;
        }
        w.values().copied().min()
    }

    /// Adds a committed chunk: the counters, the stored-through event
    /// times, and the metrics, from the one [`Committed`] count.
    fn add(&self, c: &Committed<'_>, partitions: u32) {
        self.advance(c.records);
        self.consumed
            .fetch_add(c.records.len() as u64, Ordering::Relaxed);
        self.sessions
            .fetch_add(c.sessions.len() as u64, Ordering::Relaxed);
        self.transactions
            .fetch_add(c.transactions.len() as u64, Ordering::Relaxed);
        self.new_transactions
            .fetch_add(c.new_transactions, Ordering::Relaxed);
        self.catalog.fetch_add(c.catalog, Ordering::Relaxed);
        if !c.dead_letters.is_empty() {
            let mut d = self.dead.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &c.dead_letters {
                *d.entry(k.clone()).or_default() += v;
            }
        }
        record_metrics(c);
        if let Some(wm) = self.low_watermark_ms(partitions) {
            metrics::EVENT_TIME.set(wm / 1000);
        }
    }

    fn advance(&self, records: &[Record]) {
        let mut w = self.watermarks.lock().unwrap_or_else(|e| e.into_inner());
        for r in records {
            if r.topic == topics::SESSIONS || r.topic == topics::TRANSACTIONS {
                let e = w.entry((r.topic.clone(), r.partition)).or_insert(i64::MIN);
                *e = (*e).max(r.timestamp_ms);
            }
        }
    }
}

/// The topics ingest reads.
pub const INPUT_TOPICS: [&str; 3] = topics::INGEST_INPUTS;

/// Marker name for how far dead letters of a source partition were sent.
fn dlq_marker(group: &str, topic: &str, partition: u32) -> String {
    format!("dlq-{group}-{topic}-{partition}")
}

struct Worker<'a> {
    log: &'a dyn EventLog,
    consumer: Box<dyn LogConsumer>,
    producer: Box<dyn LogProducer>,
    docs: &'a dyn DocumentStore,
    sessions: &'a SessionStore,
    cfg: &'a IngestConfig,
    stats: &'a IngestStats,
    /// Next offset not yet dead-lettered, per source partition (cache of
    /// the markers).
    dlq_done: HashMap<(String, u32), u64>,
}

impl Worker<'_> {
    fn dlq_done(&mut self, topic: &str, partition: u32) -> Result<u64, IngestError> {
        if let Some(v) = self.dlq_done.get(&(topic.to_string(), partition)) {
            return Ok(*v);
        }
        let v = self
            .log
            .marker(&dlq_marker(&self.cfg.group, topic, partition))?
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
            .unwrap_or(0);
        self.dlq_done.insert((topic.to_string(), partition), v);
        Ok(v)
    }
    /// Processes a batch, retrying what may pass later (a server down)
    /// with backoff until it passes or `stop`; what will not pass is
    /// handed back.
    fn process_retrying(&mut self, records: &[Record], stop: &Shutdown) -> Result<(), IngestError> {
        // An uncommitted batch is safe to process again: retry what may
        // pass later (a server down), stop on what will not.
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.process(records) {
                Err(e) if is_retryable(&e) && !stop.is_stopped() => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "Ingest batch failed; retrying.");
                    telemetry::health::set_unready(
                        "ingest",
                        format!("writing to the stores failed ({e}); retrying"),
                    );
                    stop.wait_timeout(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => {
                    if other.is_ok() {
                        telemetry::health::set_ready("ingest");
                    }
                    break other;
                }
            }
        }
    }

    fn process(&mut self, records: &[Record]) -> Result<(), IngestError> {
        let mut categories = Vec::new();
        let mut products = Vec::new();
        let mut users = Vec::new();
        let mut sessions = Vec::new();
        let mut transactions = Vec::new();
        // The record each transaction came from, to dead-letter conflicts.
        let mut transaction_records: Vec<&Record> = Vec::new();
        let mut session_records: Vec<&Record> = Vec::new();
        let mut dead: Vec<(&Record, Rejection)> = Vec::new();
        for r in records {
            let verdict = match r.topic.as_str() {
                topics::CATALOG => decode_catalog(&r.payload).map(|c| match c {
                    CatalogRecord::Category(c) => categories.push(c),
                    CatalogRecord::Product(p) => products.push(p),
                    CatalogRecord::User(u) => users.push(u),
                }),
                topics::SESSIONS => decode_session(&r.payload).map(|s| {
                    sessions.push(s);
                    session_records.push(r);
                }),
                topics::TRANSACTIONS => decode_transaction(&r.payload).map(|t| {
                    transactions.push(t);
                    transaction_records.push(r);
                }),
                other => Err(Rejection::WrongKind {
                    expected: "catalog, session or transaction",
                    found: other.to_string(),
                }),
            };
            if let Err(reason) = verdict {
                dead.push((r, reason));
            }
        }
        // 1. Good records into the stores (idempotent writes). An id stored
        // before with other content (a session or a transaction): the first
        // stands, this one is dead-lettered (and not counted as stored).
        // The document store decides for sessions, then the wide-column
        // store gets the ones it kept: a crash between the two stores them
        // there on the next read, as the same sessions are no conflict.
        //
        // The sessions (both stores) and the catalog and transactions are
        // independent, so they are written side by side: a full chunk's
        // sessions go straight into tables that are synced to disk
        // (`stores::put_rows`), and that wait overlaps the other writes.
        let (docs, wide) = (&self.docs, &self.sessions);
        let (session_writes, catalog_and_transactions) = stage::join(
            || -> Result<_, IngestError> {
                let timer = Instant::now();
                let conflicts = docs.put_sessions(&sessions)?;
                let mut dead = Vec::with_capacity(conflicts.len());
                for &i in &conflicts {
                    if let (Some(r), Some(s)) = (session_records.get(i), sessions.get(i)) {
                        dead.push((*r, Rejection::DuplicateConflict(s.session_id.clone())));
                    }
                }
                drop_positions(&mut sessions, &conflicts);
                let doc_secs = timer.elapsed().as_secs_f64();
                let timer = Instant::now();
                wide.put_sessions(&sessions)?;
                Ok((dead, doc_secs, timer.elapsed().as_secs_f64()))
            },
            || -> Result<_, IngestError> {
                let timer = Instant::now();
                docs.upsert_categories(&categories)?;
                docs.upsert_products(&products)?;
                docs.upsert_users(&users)?;
                let put = docs.put_transactions_checked(&transactions)?;
                Ok((put, timer.elapsed().as_secs_f64()))
            },
        );
        let (session_conflicts, mut doc_secs, wide_secs) = session_writes?;
        let (put, rest_secs) = catalog_and_transactions?;
        dead.extend(session_conflicts);
        let new = put.new;
        for &i in &put.conflicts {
            if let (Some(r), Some(t)) = (transaction_records.get(i), transactions.get(i)) {
                dead.push((r, Rejection::DuplicateConflict(t.transaction_id.clone())));
            }
        }
        drop_positions(&mut transactions, &put.conflicts);
        // Dead letters are kept in the document store too (keyed by source
        // position, so a replay stores each once): the nightly cleaning
        // statistics are computed from them.
        let timer = Instant::now();
        let letters: Vec<DeadLetter> = dead
            .iter()
            .map(|(r, reason)| DeadLetter::new(&r.topic, r.partition, r.offset, reason, &r.payload))
            .collect();
        docs.put_dead_letters(&letters)?;
        doc_secs += rest_secs + timer.elapsed().as_secs_f64();
        // What the stores now hold, after their data: a store that loses
        // its last writes loses this too (see `resume_from_stores`).
        let offsets = offsets_after(records);
        self.sessions.put_progress(&self.cfg.group, &offsets)?;
        self.docs.put_progress(&self.cfg.group, &offsets)?;
        // 2. Bad records to the dead-letter topic, each exactly once.
        let mut sent: BTreeMap<String, u64> = BTreeMap::new();
        for ((r, reason), letter) in dead.iter().zip(&letters) {
            if r.offset < self.dlq_done(&r.topic, r.partition)? {
                continue;
            }
            let body = letter.to_bytes();
            self.producer
                .send(topics::DEAD_LETTERS, &r.key, &body, r.timestamp_ms)?;
            *sent.entry(reason.code().to_string()).or_default() += 1;
            tracing::debug!(topic = %r.topic, partition = r.partition, offset = r.offset, reason = reason.code(), "Dead-lettered a record.");
        }
        // A marker never moves back: records read again (after a rewind,
        // or in other batches after a rebalance) were dead-lettered up to
        // the highest point reached, not just to this batch's end.
        let mut done = Vec::with_capacity(offsets.len());
        for ((t, p), next) in &offsets {
            done.push(((t.clone(), *p), (*next).max(self.dlq_done(t, *p)?)));
        }
        let markers: Vec<(String, Vec<u8>)> = done
            .iter()
            .map(|((t, p), next)| {
                (
                    dlq_marker(&self.cfg.group, t, *p),
                    next.to_string().into_bytes(),
                )
            })
            .collect();
        self.producer.flush_with_markers(&markers)?;
        self.dlq_done.extend(done);
        // 3. Only now is the batch done.
        self.consumer.commit(&offsets)?;
        self.stats.add(
            &Committed {
                records,
                sessions: &sessions,
                transactions: &transactions,
                new_transactions: new,
                catalog: (categories.len() + products.len() + users.len()) as u64,
                dead_letters: sent,
                write_secs: (doc_secs, wide_secs),
            },
            self.cfg.partitions,
        );
        Ok(())
    }
}

/// Removes the items at `positions` (ascending, as the stores return them).
fn drop_positions<T>(items: &mut Vec<T>, positions: &[usize]) {
    if positions.is_empty() {
        return;
    }
    let mut i = 0;
    items.retain(|_| {
        i += 1;
        positions.binary_search(&(i - 1)).is_err()
    });
}

/// What a committed chunk held, counted once: [`IngestStats::add`] adds it
/// to the process's counters and to the Prometheus metrics.
struct Committed<'a> {
    records: &'a [Record],
    sessions: &'a [Session],
    transactions: &'a [Transaction],
    new_transactions: u64,
    catalog: u64,
    dead_letters: BTreeMap<String, u64>,
    write_secs: (f64, f64),
}

/// Adds a committed chunk to the Prometheus metrics.
fn record_metrics(c: &Committed<'_>) {
    let (records, sessions, transactions, catalog) =
        (c.records, c.sessions, c.transactions, c.catalog);
    let (dead_letters, (doc_secs, wide_secs)) = (&c.dead_letters, c.write_secs);
    let mut consumed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in records {
        *consumed.entry(r.topic.as_str()).or_default() += 1;
    }
    for (topic, n) in consumed {
        metrics::CONSUMED.with_label_values(&[topic]).inc_by(n);
    }
    for (topic, n) in [
        (topics::SESSIONS, sessions.len() as u64),
        (topics::TRANSACTIONS, transactions.len() as u64),
        (topics::CATALOG, catalog),
    ] {
        if n > 0 {
            metrics::STORED.with_label_values(&[topic]).inc_by(n);
        }
    }
    for (reason, n) in dead_letters {
        metrics::DEAD_LETTERS
            .with_label_values(&[reason])
            .inc_by(*n);
    }
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for s in sessions {
        *by_status.entry(s.conversion_status.as_str()).or_default() += 1;
    }
    for (status, n) in by_status {
        metrics::SESSIONS.with_label_values(&[status]).inc_by(n);
    }
    let revenue: f64 = transactions.iter().map(|t| t.total).sum();
    metrics::REVENUE.inc_by(revenue.max(0.0));
    metrics::BATCH_SIZE.observe(records.len() as f64);
    metrics::WRITE_SECONDS
        .with_label_values(&["document"])
        .observe(doc_secs);
    metrics::WRITE_SECONDS
        .with_label_values(&["wide_column"])
        .observe(wide_secs);
}

/// Sets `group` back to what both stores hold, where that is behind what
/// the group committed. The stores record their progress after each
/// batch's writes ([`DocumentStore::put_progress`]); a machine crash can
/// take a store's last writes with it (without `--fsync`, or a server
/// that acknowledged before its journal), and the group would then resume
/// past records the stores no longer have. Writes are idempotent, so
/// reading those again restores exactly what was there. A store with no
/// progress at all (new, or written by an older ecomflow) is read into from
/// the start. Call it before the group's workers start.
pub fn resume_from_stores(
    log: &dyn EventLog,
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    group: &str,
) -> Result<Vec<Rewound>, IngestError> {
    let in_docs = docs.progress(group)?;
    let in_sessions = sessions.progress(group)?;
    let held: Offsets = in_docs
        .iter()
        .filter_map(|(p, d)| Some((p.clone(), (*d).min(*in_sessions.get(p)?))))
        .collect();
    let rewound = rewind_to_held(log, group, &INPUT_TOPICS, &held, "The stores")?;
    for r in &rewound {
        metrics::REREAD
            .with_label_values(&[&r.partition.0])
            .inc_by(r.records());
    }
    Ok(rewound)
}

fn is_retryable(e: &IngestError) -> bool {
    match e {
        IngestError::Log(e) => e.is_retryable(),
        IngestError::Store(e) => e.is_retryable(),
    }
}

/// Runs one worker until `stop` is stopped, then returns after finishing
/// and committing its current batch; when `stop` drains (or after
/// [`IngestConfig::until_idle`]), once the group has consumed everything.
/// Several workers with the same [`IngestConfig::group`] share the
/// partitions.
pub fn run_worker(
    log: &dyn EventLog,
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    cfg: &IngestConfig,
    stats: &IngestStats,
    stop: &Shutdown,
) -> Result<(), IngestError> {
    let consumer = log.consumer(&cfg.group, &INPUT_TOPICS)?;
    run_worker_on(consumer, log, docs, sessions, cfg, stats, stop)
}

/// [`run_worker`] on `consumer`, a member of `cfg.group` already subscribed
/// to [`INPUT_TOPICS`]. A process that runs several workers creates all
/// their consumers before any polls: a member that joins after another
/// polled takes over some of its partitions and reads, from the committed
/// offsets, records the first is still storing. They are stored twice
/// (harmlessly: writes are idempotent) but counted twice, and MongoDB
/// counted such transactions as new twice (seen in `ecomflow ingest` with
/// two workers: 30,735 records consumed of 26,525, 5,459 transactions "new"
/// of 4,985).
pub fn run_worker_on(
    consumer: Box<dyn eventlog::LogConsumer>,
    log: &dyn EventLog,
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    cfg: &IngestConfig,
    stats: &IngestStats,
    stop: &Shutdown,
) -> Result<(), IngestError> {
    let mut worker = Worker {
        log,
        consumer,
        producer: log.producer()?,
        docs,
        sessions,
        cfg,
        stats,
        dlq_done: HashMap::new(),
    };
    metrics::init();
    let mut idle_since = Instant::now();
    let result = loop {
        if stop.is_stopped() {
            break Ok(());
        }
        let records = match worker.consumer.poll(cfg.batch, cfg.poll_timeout) {
            Ok(r) => {
                telemetry::health::set_ready("event log");
                r
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "Poll failed; retrying.");
                telemetry::health::set_unready("event log", format!("{e}; retrying"));
                stop.wait_timeout(Duration::from_millis(500));
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        if records.is_empty() {
            match consumer_done(stop, cfg.until_idle, idle_since, || {
                log.lag(&cfg.group, &INPUT_TOPICS)
            }) {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "Could not read the group's lag."),
            }
            continue;
        }
        idle_since = Instant::now();
        let outcome = worker.process_retrying(&records, stop);
        if let Err(e) = outcome {
            // Not committed: read again after a restart, or by another
            // member after a rebalance.
            tracing::error!(error = %e, records = records.len(), "Ingest batch failed; stopping this worker.");
            break Err(e);
        }
    };
    let consumer = worker.consumer;
    if let Err(e) = consumer.close() {
        tracing::warn!(error = %e, "Consumer did not close cleanly.");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::embedded::EmbeddedLog;
    use eventlog::TopicSpec;
    use schemas::envelope::{encode, Kind};
    use schemas::{LineItem, PaymentMethod};
    use std::sync::Arc;
    use stores::doc_embedded::EmbeddedDocStore;
    use stores::wide_embedded::EmbeddedWideStore;

    fn txn(total: f64) -> Transaction {
        Transaction {
            transaction_id: "txn_000000000001".into(),
            session_id: "sess_1".into(),
            user_id: "user_000001".into(),
            timestamp: schemas::time::parse("2025-01-01T10:00:00").expect("literal"),
            items: vec![LineItem {
                product_id: "prod_00001".into(),
                quantity: 1,
                unit_price: total,
                subtotal: total,
            }],
            discount: 0.0,
            total,
            payment_method: PaymentMethod::Paypal,
        }
    }

    /// An embedded log in `dir/log` with the input topics and the
    /// dead-letter topic, `partitions` each.
    fn log_with_topics(dir: &std::path::Path, partitions: u32) -> EmbeddedLog {
        let log = EmbeddedLog::open(&dir.join("log")).expect("log");
        let specs: Vec<TopicSpec> = INPUT_TOPICS
            .iter()
            .chain(&[topics::DEAD_LETTERS])
            .map(|t| TopicSpec::new(t, partitions))
            .collect();
        log.ensure_topics(&specs).expect("topics");
        log
    }

    /// Publishes `txns` to the transactions topic, keyed by user, and
    /// flushes.
    fn send_transactions(log: &EmbeddedLog, txns: impl IntoIterator<Item = Transaction>) {
        let mut p = log.producer().expect("producer");
        for t in txns {
            p.send(
                topics::TRANSACTIONS,
                t.user_id.as_bytes(),
                &encode(Kind::Transaction, &t),
                0,
            )
            .expect("send");
        }
        p.flush().expect("flush");
    }

    /// Embedded stores in `dir/docs` and `dir/wide`.
    fn stores(dir: &std::path::Path) -> (EmbeddedDocStore, SessionStore) {
        let docs = EmbeddedDocStore::open(&dir.join("docs")).expect("docs");
        let wide = EmbeddedWideStore::open(&dir.join("wide")).expect("wide");
        (docs, SessionStore::new(Arc::new(wide)).expect("sessions"))
    }

    /// Runs one worker over everything in `log`, two records a batch, one
    /// partition, until the group has consumed it all (300 s at most), and
    /// returns what it counted.
    fn drain_in_twos(
        log: &EmbeddedLog,
        docs: &EmbeddedDocStore,
        sessions: &SessionStore,
    ) -> super::StatsSnapshot {
        let cfg = IngestConfig {
            batch: 2,
            partitions: 1,
            ..IngestConfig::default()
        };
        let stats = IngestStats::default();
        let stop = Shutdown::new();
        stop.drain();
        let late = stop.stop_after(std::time::Duration::from_secs(300));
        run_worker(log, docs, sessions, &cfg, &stats, &stop).expect("worker");
        assert!(
            !late.load(std::sync::atomic::Ordering::SeqCst),
            "no drain within 300 s"
        );
        stats.snapshot()
    }

    #[test]
    fn a_transaction_id_seen_again_with_other_content_is_dead_lettered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_with_topics(dir.path(), 1);
        // The same transaction twice (a producer's retry), then its id with
        // another total, in a later batch.
        send_transactions(&log, [10.0, 10.0, 99.0].map(txn));
        let (docs, sessions) = stores(dir.path());
        let snap = drain_in_twos(&log, &docs, &sessions);
        assert_eq!(
            (snap.transactions, snap.new_transactions),
            (2, 1),
            "{snap:?}"
        );
        assert_eq!(
            snap.dead_letters,
            BTreeMap::from([("duplicate_conflict".to_string(), 1)])
        );
        assert_eq!(
            docs.transaction("txn_000000000001").expect("get"),
            Some(txn(10.0))
        );
        let letters = docs.dead_letters().expect("dead letters");
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].reason_code.as_str(), letters[0].offset),
            ("duplicate_conflict", 2)
        );
        let user = docs.user("user_000001").expect("user");
        assert!(user.is_none_or(|u| u.purchase_summary.total_spent == 10.0));
    }

    #[test]
    fn a_session_id_seen_again_with_other_content_is_dead_lettered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_with_topics(dir.path(), 1);
        let at = |start: &str| Session {
            session_id: "sess_1".into(),
            user_id: "user_000001".into(),
            start_time: schemas::time::parse(start).expect("literal"),
            duration_seconds: 60,
            referrer: "direct".into(),
            device_info: schemas::DeviceInfo {
                device_type: schemas::DeviceType::Mobile,
                os: "iOS".into(),
                browser: "Safari".into(),
                city: "Austin".into(),
                state: "TX".into(),
                ip: "10.0.0.1".into(),
            },
            conversion_status: schemas::ConversionStatus::Browsed,
            viewed_products: vec!["prod_00001".into()],
            cart_contents: vec![],
        };
        // The same session twice (a retry), then its id with another start
        // time, which would be another row in either store.
        let mut p = log.producer().expect("producer");
        for s in [
            at("2025-01-01T10:00:00"),
            at("2025-01-01T10:00:00"),
            at("2025-01-02T11:00:00"),
        ] {
            p.send(
                topics::SESSIONS,
                s.user_id.as_bytes(),
                &encode(Kind::Session, &s),
                0,
            )
            .expect("send");
        }
        p.flush().expect("flush");
        let (docs, sessions) = stores(dir.path());
        let snap = drain_in_twos(&log, &docs, &sessions);
        assert_eq!(snap.sessions, 2, "{snap:?}");
        assert_eq!(
            snap.dead_letters,
            BTreeMap::from([("duplicate_conflict".to_string(), 1)])
        );
        let first = at("2025-01-01T10:00:00");
        assert_eq!(
            sessions.last_sessions("user_000001", 10).expect("wide"),
            vec![first.clone()]
        );
        let other_day = at("2025-01-02T11:00:00").start_time.date();
        assert_eq!(
            docs.sessions_on(first.start_time.date()).expect("day"),
            vec![first]
        );
        assert_eq!(docs.sessions_on(other_day).expect("day"), vec![]);
        let letters = docs.dead_letters().expect("dead letters");
        assert_eq!(
            letters
                .iter()
                .map(|l| (l.reason_code.as_str(), l.offset))
                .collect::<Vec<_>>(),
            vec![("duplicate_conflict", 2)]
        );
    }

    /// Why a process's workers join the group before any polls: a member
    /// that joins after another polled is given some of its partitions and
    /// reads, from the committed offsets, records the first still holds.
    /// Joined first, two workers read every record once, and every
    /// transaction counts as new once.
    #[test]
    fn workers_that_join_before_polling_read_every_record_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_with_topics(dir.path(), 2);
        send_transactions(
            &log,
            (0..400u32).map(|i| {
                let mut t = txn(10.0);
                t.transaction_id = format!("txn_{i:012}");
                t.user_id = schemas::ids::user_id(i % 40 + 1);
                t
            }),
        );

        // Joined late: the second member re-reads what the first polled.
        let mut first = log.consumer("late", &INPUT_TOPICS).expect("first");
        let held = first.poll(400, Duration::from_secs(1)).expect("poll");
        assert_eq!(held.len(), 400);
        let mut second = log.consumer("late", &INPUT_TOPICS).expect("second");
        let again = second.poll(400, Duration::from_secs(1)).expect("poll");
        assert!(!again.is_empty() && again.len() < 400, "{}", again.len());

        // Joined first: each record once.
        let (docs, sessions) = stores(dir.path());
        let cfg = IngestConfig {
            batch: 50,
            partitions: 2,
            ..IngestConfig::default()
        };
        let stats = IngestStats::default();
        let stop = Shutdown::new();
        stop.drain();
        let late = stop.stop_after(std::time::Duration::from_secs(300));
        let consumers: Vec<_> = (0..2)
            .map(|_| log.consumer(&cfg.group, &INPUT_TOPICS).expect("consumer"))
            .collect();
        std::thread::scope(|scope| {
            for consumer in consumers {
                let (log, docs, sessions, cfg, stats, stop) =
                    (&log, &docs, &sessions, &cfg, &stats, &stop);
                scope.spawn(move || {
                    run_worker_on(consumer, log, docs, sessions, cfg, stats, stop).expect("worker");
                });
            }
        });
        assert!(
            !late.load(std::sync::atomic::Ordering::SeqCst),
            "no drain within 300 s"
        );
        let snap = stats.snapshot();
        assert_eq!(
            (snap.consumed, snap.transactions, snap.new_transactions),
            (400, 400, 400),
            "{snap:?}"
        );
    }
}
