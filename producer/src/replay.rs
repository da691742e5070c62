//! Publishes the shop's events to the event log in event-time order, as fast
//! as possible or paced, and resumably.
//!
//! Progress is recorded as a marker written with each flushed batch (on the
//! embedded log, atomically with the batch), so a replay that was stopped or
//! killed continues after the last published event instead of starting over.
//! On Kafka the marker is written after the broker acknowledged the batch:
//! each record carries its run and number ([`eventlog::Sequence`]), and a
//! resumed run reads the topics' tails for the records its run sent after
//! the marker, and does not send them again.

use crate::catalog::Catalog;
use crate::config::ShopConfig;
use crate::dataset::{Dataset, DatasetId};
use crate::events::{Event, EventStream};
use chrono::NaiveDateTime;
use eventlog::{EventLog, LogError, Sequence};
use schemas::topics;
use serde::{Deserialize, Serialize};
use stage::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marker name under which the replay records its progress.
pub const MARKER: &str = "producer-replay";

/// How long a paced replay holds what it sent before flushing it: the
/// event log's `linger.ms`. Paced at 100k events/s, a flush every 20,000
/// events (the batch) made a record wait up to 200 ms before any consumer
/// could read it: freshness p50 194 ms, p99 490 ms at 88k events/s. With 5
/// ms the p50 was 17 ms (docs/benchmarks.md, "Freshness"). Each flush syncs
/// the partitions' files, so an unpaced replay flushes by the batch only.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Simulated seconds per wall-clock second; `None` is as fast as possible.
    pub speed: Option<f64>,
    /// Events per flushed batch.
    pub batch: usize,
    /// Paced, what was sent is flushed at least this often, so a record
    /// waits at most this long before consumers can read it (Kafka's
    /// `linger.ms`). Unpaced, only [`ReplayOptions::batch`] flushes.
    pub linger: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            speed: None,
            // Each flush syncs the partitions' files before committing
            // their ends (`eventlog::embedded`), and ingest takes what a
            // flush made visible: with 5,000 the publisher waited on a
            // sync for every 5,000 events and ingest polled small chunks.
            // The main job with 50,000 (and ingest chunks of 32,000),
            // alternated: ingest 122.7k and 123.4k events/s against
            // 105.0k and 101.0k, 47.6-47.8 s of user CPU against
            // 52.3-54.2 s. 20,000 against 50,000: ingest 140.8k and
            // 144.0k against 132.2k and 138.2k, less system CPU, and
            // publishing alone 5.1-5.7 s as with 5,000 where 50,000 took
            // 6.2-6.7 s (docs/benchmarks.md).
            batch: 20_000,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Where a replay stands, reported after every batch.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Events published so far (including earlier runs).
    pub published: u64,
    /// Events in the whole replay.
    pub total: u64,
    /// Event time of the latest published event.
    pub event_time: NaiveDateTime,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySummary {
    /// Events published by this run.
    pub published: u64,
    /// Events published by earlier runs that this one skipped.
    pub resumed_from: u64,
    /// Of the events this run counts as published, those an earlier run
    /// had sent after its last marker (found in the topics, not sent again).
    pub found_sent: u64,
    /// Events in the whole replay.
    pub total: u64,
    /// Whether the run stopped early (stop flag).
    pub interrupted: bool,
    /// Wall time of this run.
    pub elapsed: Duration,
}

/// The records of a [`Source`], in publishing order.
type Events = Box<dyn Iterator<Item = std::io::Result<Event>>>;

/// What a replay publishes: the generated shop, or a dataset directory.
#[derive(Debug, Clone)]
pub enum Source {
    /// The deterministic shop of this configuration.
    Shop(ShopConfig),
    /// The records of a dataset directory (`replay --dataset`).
    Dataset(Dataset),
}

impl Source {
    fn marker(&self, published: u64, run: u64) -> Marker {
        match self {
            Source::Shop(cfg) => Marker {
                config: Some(cfg.clone()),
                dataset: None,
                published,
                run,
            },
            Source::Dataset(d) => Marker {
                config: None,
                dataset: Some(d.id().clone()),
                published,
                run,
            },
        }
    }

    /// The events to publish and how many there are.
    /// The events after the first `skip` (published by an earlier run),
    /// and how many there are in all.
    fn events_after(&self, skip: u64) -> Result<(Events, u64), ReplayError> {
        let (mut stream, total) = self.events()?;
        if skip > 0 {
            tracing::info!(
                skip,
                total,
                "Resuming replay after events published by an earlier run."
            );
        }
        for _ in 0..skip {
            match stream.next() {
                None => break,
                Some(e) => {
                    e.map_err(ReplayError::Dataset)?;
                }
            }
        }
        Ok((stream, total))
    }

    fn events(&self) -> Result<(Events, u64), ReplayError> {
        match self {
            Source::Shop(cfg) => {
                let stream = EventStream::new(cfg, Arc::new(Catalog::generate(cfg)));
                let total = stream.total();
                Ok((Box::new(stream.map(Ok)), total))
            }
            Source::Dataset(d) => Ok((
                Box::new(d.events().map_err(ReplayError::Dataset)?),
                d.total(),
            )),
        }
    }

    fn describe(marker: &Marker) -> String {
        match (&marker.config, &marker.dataset) {
            (Some(c), _) => format!(
                "seed {}, {} users, {} sessions",
                c.seed, c.users, c.sessions
            ),
            (None, Some(d)) => format!("the dataset in {}", d.dir),
            (None, None) => "an unknown source".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Marker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<ShopConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset: Option<DatasetId>,
    published: u64,
    /// The run's number in its records' [`Sequence`]s: drawn when the
    /// replay starts, kept while it resumes (0 in markers written before
    /// records carried one).
    #[serde(default)]
    run: u64,
}

/// A number for a new run: nonzero, and unlike any other run's with all
/// likelihood (a random hash of the clock and the process id).
fn new_run() -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish().max(1)
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log holds a replay of another shop.
    #[error("the log already holds a replay of another shop ({0}); start over with --fresh or use another --data-dir")]
    OtherShop(String),
    /// The stored marker cannot be read.
    #[error("the replay marker in the log is unreadable: {0}")]
    BadMarker(String),
    /// The dataset could not be read.
    #[error("reading the dataset: {0}")]
    Dataset(std::io::Error),
}

/// Events already published by earlier runs of this replay.
pub fn published_before(log: &dyn EventLog, source: &Source) -> Result<u64, ReplayError> {
    Ok(stored_marker(log, source)?.map_or(0, |m| m.published))
}

/// The replay's marker, if a run stored one; an error if it is another
/// shop's.
fn stored_marker(log: &dyn EventLog, source: &Source) -> Result<Option<Marker>, ReplayError> {
    let Some(bytes) = log.marker(MARKER)? else {
        return Ok(None);
    };
    let m: Marker =
        serde_json::from_slice(&bytes).map_err(|e| ReplayError::BadMarker(e.to_string()))?;
    let ours = source.marker(m.published, m.run);
    if (&m.config, &m.dataset) != (&ours.config, &ours.dataset) {
        return Err(ReplayError::OtherShop(Source::describe(&m)));
    }
    Ok(Some(m))
}

/// The events sent since the last flush, and what a flush records and
/// reports: the marker of progress, the metrics, the caller's progress.
struct Batch<'a, P> {
    source: &'a Source,
    run: u64,
    total: u64,
    /// Events sent since the last flush.
    sent: usize,
    /// The same, per topic, for the metrics.
    pending: Vec<(&'static str, u64)>,
    /// The newest event's time.
    last_time: NaiveDateTime,
    progress: P,
}

impl<P: FnMut(&Progress)> Batch<'_, P> {
    /// Counts an event sent to `topic`.
    fn add(&mut self, topic: &'static str, time: NaiveDateTime) {
        self.sent += 1;
        match self.pending.last_mut() {
            Some((t, n)) if *t == topic => *n += 1,
            _ => self.pending.push((topic, 1)),
        }
        self.last_time = time;
    }

    /// Flushes what was sent with the marker of `published` events, then
    /// reports.
    fn flush(
        &mut self,
        producer: &mut Box<dyn eventlog::LogProducer>,
        published: u64,
    ) -> Result<(), LogError> {
        let marker =
            serde_json::to_vec(&self.source.marker(published, self.run)).unwrap_or_default();
        producer.flush_with_marker(MARKER, &marker)?;
        crate::metrics::flushed(&mut self.pending, self.last_time.and_utc().timestamp());
        tracing::debug!(published, "Published a batch.");
        (self.progress)(&Progress {
            published,
            total: self.total,
            event_time: self.last_time,
        });
        self.sent = 0;
        Ok(())
    }
}

/// A paced replay's clock: when each event is due, and when what was sent
/// has waited long enough ([`ReplayOptions::linger`]).
struct Pace {
    speed: f64,
    linger: Duration,
    /// The first event's time, and when it was due.
    origin: Option<(NaiveDateTime, Instant)>,
    /// When the batch's first record was sent.
    batch_since: Instant,
}

impl Pace {
    /// The clock of `opts.speed`; none when unpaced.
    fn new(opts: &ReplayOptions) -> Option<Pace> {
        opts.speed.filter(|s| *s > 0.0).map(|speed| Pace {
            speed,
            linger: opts.linger,
            origin: None,
            batch_since: Instant::now(),
        })
    }

    /// When an event of time `t` is due: the first at once, each other as
    /// far after it as its time, divided by the speed.
    fn due(&mut self, t: NaiveDateTime) -> Instant {
        let (t0, w0) = *self.origin.get_or_insert((t, Instant::now()));
        w0 + Duration::from_secs_f64(
            ((t - t0).num_milliseconds().max(0) as f64 / 1000.0) / self.speed,
        )
    }

    /// Called after each send with the batch's size: whether its first
    /// record has waited the linger.
    fn lingered(&mut self, in_batch: usize) -> bool {
        if in_batch == 1 {
            self.batch_since = Instant::now();
        }
        self.batch_since.elapsed() >= self.linger
    }
}

/// Where a replay resumes: the events an earlier run published (by its
/// marker), this run's number (stored before its first record is sent),
/// and the numbers of the events this run sent after its marker, on a log
/// that can tell.
fn resume(
    log: &dyn EventLog,
    source: &Source,
    producer: &mut Box<dyn eventlog::LogProducer>,
) -> Result<(u64, u64, std::collections::HashSet<u64>), ReplayError> {
    let (skip, run) = match stored_marker(log, source)? {
        Some(m) if m.run != 0 => (m.published, m.run),
        // No run yet (or a marker from before runs were numbered).
        stored => {
            let (published, run) = (stored.map_or(0, |m| m.published), new_run());
            let marker = serde_json::to_vec(&source.marker(published, run)).unwrap_or_default();
            producer.flush_with_marker(MARKER, &marker)?;
            (published, run)
        }
    };
    let found = log.sent_since(
        &[topics::CATALOG, topics::SESSIONS, topics::TRANSACTIONS],
        run,
        skip,
    )?;
    if !found.is_empty() {
        tracing::info!(
            events = found.len(),
            "Found events an earlier run sent after its last marker: not sending them again."
        );
    }
    Ok((skip, run, found))
}

/// Publishes `source` to `log`, whose topics exist
/// ([`eventlog::TopicSpec::shop`]), resuming after what earlier runs
/// published. Checks `stop` between batches; calls `progress` after each.
pub fn run(
    source: &Source,
    log: &dyn EventLog,
    opts: &ReplayOptions,
    stop: &Shutdown,
    progress: impl FnMut(&Progress),
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let mut producer = log.producer()?;
    let (skip, run, mut found) = resume(log, source, &mut producer)?;
    let mut found_sent = 0u64;
    let (mut stream, total) = source.events_after(skip)?;
    let mut published = skip;
    let mut pace = Pace::new(opts);
    let mut interrupted = false;
    crate::metrics::init();
    crate::metrics::EVENTS_PLANNED.set(i64::try_from(total).unwrap_or(i64::MAX));
    let mut batch = Batch {
        source,
        run,
        total,
        sent: 0,
        pending: Vec::new(),
        last_time: NaiveDateTime::default(),
        progress,
    };
    for ev in stream.by_ref() {
        let ev = ev.map_err(ReplayError::Dataset)?;
        if let Some(pace) = pace.as_mut() {
            let due = pace.due(ev.time);
            if due > Instant::now() && batch.sent > 0 {
                // Make what is due visible before waiting for what is not.
                batch.flush(&mut producer, published)?;
            }
            // Woken at once by a stop.
            stop.wait_timeout(due.saturating_duration_since(Instant::now()));
        }
        if stop.is_stopped() {
            interrupted = true;
            break;
        }
        if !found.is_empty() && found.remove(&published) {
            found_sent += 1;
        } else {
            producer.send_in_sequence(
                ev.stream.topic(),
                ev.key.as_bytes(),
                &ev.payload(),
                ev.timestamp_ms(),
                Sequence {
                    run,
                    number: published,
                },
            )?;
        }
        published += 1;
        batch.add(ev.stream.topic(), ev.time);
        let lingered = pace.as_mut().is_some_and(|p| p.lingered(batch.sent));
        if batch.sent >= opts.batch || lingered {
            batch.flush(&mut producer, published)?;
        }
    }
    batch.flush(&mut producer, published)?;
    Ok(ReplaySummary {
        published: published - skip,
        resumed_from: skip,
        found_sent,
        total,
        interrupted,
        elapsed: started.elapsed(),
    })
}
