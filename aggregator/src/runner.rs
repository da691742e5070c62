//! The aggregator as a log consumer: reads sessions and transactions in its
//! own consumer group, applies them to the shared model, dead-letters late
//! events, and checkpoints the model with the offsets it reflects.
//!
//! Order of a checkpoint: late dead letters flushed, then the state written
//! to a temporary file and renamed over the checkpoint (atomic), then the
//! offsets committed. A crash before the rename keeps the older checkpoint
//! and older offsets; a crash after it leaves offsets behind the checkpoint,
//! and the records in between are skipped on restore (the state knows their
//! offsets), so nothing is lost or counted twice. Once caught up, periodic
//! checkpoints are written from a copy of the state on a thread of their
//! own when [`RunnerConfig::copy_checkpoints`] asks, so events are applied
//! while one is written; the others, and the last one, from the state
//! itself.

use crate::metrics;
use crate::processor::{Aggregator, AggregatorConfig, Event, Outcome};
use crate::RwLock;
use eventlog::{EventLog, LogError, Offsets, Record};
use schemas::envelope::DeadLetter;
use schemas::topics;
use schemas::Rejection;
use stage::fsio::{Durability, Replace};
use stage::shutdown::{consumer_done, Shutdown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consumer group of the aggregator.
pub const GROUP: &str = "aggregator";

/// Records applied under one hold of the model's write lock.
const APPLY_SLICE: usize = 256;

/// The topics the aggregator reads.
pub const INPUT_TOPICS: [&str; 2] = topics::AGGREGATOR_INPUTS;

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Consumer group.
    pub group: String,
    /// Checkpoint file.
    pub checkpoint: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// Records per poll.
    pub batch: usize,
    /// Called on the decoding thread as it starts (the binary lowers its
    /// CPU priority there: decoding is throughput work, lookups are not).
    pub on_decoder_start: Option<fn()>,
    /// With [`Durability::Machine`] a checkpoint is synced (file, then its
    /// directory after the rename) before its offsets are committed.
    pub durability: Durability,
    /// Stop once the group has consumed everything and nothing new arrived
    /// for this long (`--until-idle`); see [`stage::shutdown::consumer_done`].
    pub until_idle: Option<Duration>,
    /// Once caught up with the log, write periodic checkpoints from a copy
    /// of the state on a thread of their own, so that events are applied
    /// while one is written (see `Background`): fresher lookups, at the
    /// cost of the state's size again in memory while one is written.
    pub copy_checkpoints: bool,
}

/// Seconds between checkpoints unless set otherwise (`--checkpoint-every`).
pub const DEFAULT_CHECKPOINT_EVERY_SECS: u64 = 10;

/// Records per poll unless set otherwise.
pub const DEFAULT_BATCH: usize = 5_000;

impl RunnerConfig {
    /// The settings for `group` checkpointing to `checkpoint`, every
    /// [`DEFAULT_CHECKPOINT_EVERY_SECS`], [`DEFAULT_BATCH`] records per
    /// poll, checkpoints that survive the process (not the machine) and
    /// are copied once caught up, no decoder hook, running until stopped.
    pub fn new(group: impl Into<String>, checkpoint: PathBuf) -> Self {
        RunnerConfig {
            group: group.into(),
            checkpoint,
            every: Duration::from_secs(DEFAULT_CHECKPOINT_EVERY_SECS),
            batch: DEFAULT_BATCH,
            on_decoder_start: None,
            durability: Durability::Process,
            until_idle: None,
            copy_checkpoints: true,
        }
    }
}

/// Counters of a runner.
#[derive(Debug, Default)]
pub struct RunnerStats {
    /// Records applied.
    pub applied: AtomicU64,
    /// Late events dead-lettered.
    pub late: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Periodic checkpoints that failed in a row (0 after a success).
    pub checkpoint_failures: AtomicU64,
    /// Nanoseconds from the runner's start to the end of the last batch it
    /// applied: its busy time, without the idle wait that may follow.
    pub busy_nanos: AtomicU64,
}

impl RunnerStats {
    /// Time from the runner's start to the last batch it applied.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }
}

/// The longest wait between two tries of a failing checkpoint.
const MAX_CHECKPOINT_BACKOFF: Duration = Duration::from_secs(300);

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The thread that decodes records stopped or could not start.
    #[error("aggregator decoder: {0}")]
    Decoder(String),
    /// The checkpoint could not be written or read.
    #[error("aggregator checkpoint {path}: {message}")]
    Checkpoint {
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// The model from the checkpoint at `path`, or a new one if there is none
/// and the group has never committed (`committed`: its committed offsets).
/// A checkpoint made with other settings is refused, and so is a missing
/// one when the group has committed offsets: the consumer would resume past
/// records the new, empty window never counted, and they would be lost
/// without a word. [`rebuild`] is the way out.
pub fn restore_or_new(
    path: &Path,
    config: AggregatorConfig,
    committed: &Offsets,
) -> Result<Aggregator, RunnerError> {
    let err = |message: String| RunnerError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let model = Aggregator::restore(&bytes).map_err(|e| err(e.to_string()))?;
            if *model.config() != config {
                return Err(err(
                    "made with other aggregator settings; start over with --fresh".into(),
                ));
            }
            tracing::info!(path = %path.display(), "Restored the aggregator checkpoint.");
            Ok(model)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if path.with_extension("json").exists() {
                return Err(err(format!(
                    "missing; {} was written by an older ecomflow in a format this one \
                     does not read. Rebuild the state from the log with --rebuild-aggregator",
                    path.with_extension("json").display()
                )));
            }
            let past: u64 = committed.values().sum();
            if past > 0 {
                return Err(err(format!(
                    "missing, but the consumer group has committed {past} records: \
                     starting empty would lose them for good. Put the checkpoint back, \
                     or run with --rebuild-aggregator to re-read the log from the start"
                )));
            }
            Ok(Aggregator::new(config))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Starts the aggregator of `group` over: its checkpoint is removed and the
/// group's offsets reset, so the runner re-reads the whole log into a new
/// model (for a lost or damaged checkpoint). Call before the runner starts.
pub fn rebuild(
    log: &dyn EventLog,
    group: &str,
    path: &Path,
    config: AggregatorConfig,
) -> Result<Aggregator, RunnerError> {
    // The checkpoint, and one an older ecomflow left in its JSON format.
    for file in [path.to_path_buf(), path.with_extension("json")] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RunnerError::Checkpoint {
                    path: file.display().to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
    log.reset_group(group, &INPUT_TOPICS)?;
    tracing::warn!(
        group,
        "Rebuilding the aggregator from the start of the log."
    );
    Ok(Aggregator::new(config))
}

/// Where the group committed more than the restored `model` reflects (the
/// checkpoint was older than its commit: a machine crash without
/// `--fsync` can lose a rename), sets the group back to the model's
/// offsets, so the records in between are read and counted. Call it
/// before the runner starts.
pub fn resume_from_checkpoint(
    log: &dyn EventLog,
    group: &str,
    model: &Aggregator,
) -> Result<Vec<eventlog::Rewound>, RunnerError> {
    let held: Offsets = model.offsets().into_iter().collect();
    Ok(eventlog::rewind_to_held(
        log,
        group,
        &INPUT_TOPICS,
        &held,
        "The aggregator checkpoint's offsets",
    )?)
}

/// Writes the model's checkpoint to a temporary file, streamed, then
/// renames it over `path`; returns its size.
fn write_checkpoint(
    path: &Path,
    model: &Aggregator,
    durability: Durability,
) -> std::io::Result<u64> {
    let (guard, mut file) = Replace::begin(path)?;
    // The encoder buffers its writes itself.
    model.write_checkpoint(&mut file)?;
    guard.commit(file, durability)
}

/// Checkpoints at most take this share of the runner's time: after one
/// that took `d`, the next waits `max(every, d * CHECKPOINT_SPACING)`. The
/// full shop's state takes a second or two to write, which every 10 s was
/// a sixth of the aggregator's time during a replay. A longer wait loses
/// nothing on a crash (the offsets are committed with the checkpoint, so
/// the log is re-read from there); it only makes the re-read longer.
pub const CHECKPOINT_SPACING: u32 = 20;

/// How long to wait after a checkpoint that took `took`.
pub fn next_checkpoint_wait(every: Duration, took: Duration) -> Duration {
    every.max(took.saturating_mul(CHECKPOINT_SPACING))
}

/// A checkpoint error naming the file.
fn checkpoint_error(path: &Path, e: std::io::Error) -> RunnerError {
    RunnerError::Checkpoint {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Counts a failed periodic checkpoint and doubles the wait before the
/// next try.
fn checkpoint_failed(stats: &RunnerStats, wait: &mut Duration, e: &RunnerError) {
    let failures = stats.checkpoint_failures.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::CHECKPOINT_FAILING.set(i64::try_from(failures).unwrap_or(i64::MAX));
    *wait = wait.saturating_mul(2).min(MAX_CHECKPOINT_BACKOFF);
    tracing::warn!(
        error = %e,
        failures,
        retry_in_secs = wait.as_secs_f64(),
        "Aggregator checkpoint failed; retrying."
    );
}

/// What a checkpoint thread hands back: the file's size, or why it was
/// not written.
type Written = Result<u64, RunnerError>;

/// Periodic checkpoints, written on a thread of their own from a copy of
/// the state, so that events are applied meanwhile. Encoding the default
/// shop's state and writing it held the read lock for 130-200 ms, and
/// every event published meanwhile waited for it: paced at 100k events/s,
/// with checkpoints every 3 s, freshness p99 was 133-265 ms, against
/// 50-61 ms without checkpoints. Copying holds the lock for 30-50 ms
/// (docs/benchmarks.md, "Freshness"). The copy is as large as the state
/// ([`Aggregator::heap_bytes`]) while it is written: `serve` reading the
/// default shop's log peaked at 388 MiB, against 245 MiB writing the state
/// as it is. So it is made only when [`RunnerConfig::copy_checkpoints`]
/// asks, and once the runner has caught up with the log: with a backlog,
/// events wait for the next poll anyway.
struct Background {
    copies: std::sync::mpsc::SyncSender<Aggregator>,
    written: std::sync::mpsc::Receiver<Written>,
    /// The offsets of the copy being written, and when it was taken.
    pending: Option<(Offsets, Instant)>,
}

impl Background {
    /// Starts the thread that writes the copies to `cfg.checkpoint`.
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        cfg: &'scope RunnerConfig,
    ) -> Result<Self, RunnerError> {
        let (copies, copies_rx) = std::sync::mpsc::sync_channel::<Aggregator>(1);
        let (written_tx, written) = std::sync::mpsc::sync_channel::<Written>(1);
        std::thread::Builder::new()
            .name("aggregator-checkpoint".into())
            .spawn_scoped(scope, move || {
                for copy in copies_rx {
                    let result = write_checkpoint(&cfg.checkpoint, &copy, cfg.durability)
                        .map_err(|e| checkpoint_error(&cfg.checkpoint, e));
                    drop(copy);
                    if written_tx.send(result).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| checkpoint_error(&cfg.checkpoint, e))?;
        Ok(Background {
            copies,
            written,
            pending: None,
        })
    }

    /// Whether a checkpoint is being written.
    fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Flushes the late events' dead letters (before any offset that
    /// passed them is committed), copies the state under the read lock
    /// and hands the copy to the thread.
    fn start(
        &mut self,
        model: &RwLock<Aggregator>,
        producer: &mut Box<dyn eventlog::LogProducer>,
    ) -> Result<(), RunnerError> {
        let taken = Instant::now();
        producer.flush()?;
        let (copy, offsets) = {
            let m = model.read();
            metrics::STATE_BYTES.set(i64::try_from(m.heap_bytes()).unwrap_or(i64::MAX));
            (m.clone(), m.offsets().into_iter().collect::<Offsets>())
        };
        self.copies
            .send(copy)
            .map_err(|_| RunnerError::Checkpoint {
                path: "(the checkpoint thread)".into(),
                message: "stopped".into(),
            })?;
        self.pending = Some((offsets, taken));
        Ok(())
    }

    /// The checkpoint started last, once written (waited for if `wait`):
    /// its outcome, its offsets and how long it took from the copy.
    fn finished(&mut self, wait: bool) -> Option<(Written, Offsets, Duration)> {
        use std::sync::mpsc::TryRecvError;
        self.pending.as_ref()?;
        let received = if wait {
            self.written.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.written.try_recv()
        };
        let outcome = match received {
            Ok(written) => written,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Err(RunnerError::Checkpoint {
                path: "(the checkpoint thread)".into(),
                message: "stopped".into(),
            }),
        };
        let (offsets, taken) = self.pending.take()?;
        Some((outcome, offsets, taken.elapsed()))
    }
}

/// Consumes until `stop` is stopped, or, when it drains (or after
/// [`RunnerConfig::until_idle`]), until the group has consumed everything;
/// then checkpoints one last time.
pub fn run(
    log: &dyn EventLog,
    model: &RwLock<Aggregator>,
    cfg: &RunnerConfig,
    stats: &RunnerStats,
    stop: &Shutdown,
) -> Result<(), RunnerError> {
    metrics::init();
    let started = Instant::now();
    let mut consumer = log.consumer(&cfg.group, &INPUT_TOPICS)?;
    let mut producer = log.producer()?;
    // Records are decoded on a second thread while this one polls and
    // applies: batch N+1 is decoded while batch N is applied. Decoding
    // needs no state, and batches come back in order (one decoder, FIFO
    // channels). A batch still in flight when the runner stops is simply
    // not applied: its offsets are not in the state, so not committed, and
    // it is read again next time.
    std::thread::scope(|scope| -> Result<(), RunnerError> {
        let (raw_tx, decoded_rx) = spawn_decoder(scope, cfg)?;
        let mut checkpoints = Checkpoints::new(scope, cfg)?;
        // How many batches are being decoded.
        let mut in_flight = 0usize;
        let mut idle_since = Instant::now();
        while !stop.is_stopped() {
            let records = poll(&mut consumer, cfg.batch, in_flight > 0, stop)?;
            let polled = !records.is_empty();
            if polled {
                idle_since = Instant::now();
                raw_tx
                    .send(records)
                    .map_err(|_| RunnerError::Decoder("the decoder stopped".into()))?;
                in_flight += 1;
            }
            // One batch stays in flight while the log has more; nothing new
            // polled: everything decoded is applied.
            while in_flight > usize::from(polled) {
                let batch = decoded_rx
                    .recv()
                    .map_err(|_| RunnerError::Decoder("the decoder stopped".into()))?;
                in_flight -= 1;
                checkpoints.dirty |= !batch.is_empty();
                apply_batch(model, stats, &mut producer, batch)?;
                let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                stats.busy_nanos.store(busy, Ordering::Relaxed);
            }
            let drained = !polled && in_flight == 0;
            // Told to finish what the log holds (or idle for --until-idle).
            let leaving = drained
                && (stop.is_draining()
                    || cfg.until_idle.is_some_and(|d| idle_since.elapsed() >= d));
            checkpoints.tick(
                drained,
                leaving,
                (model, stats, cfg),
                &mut producer,
                &mut consumer,
            );
            // Everything applied is committed: done if nothing is left.
            if leaving
                && !checkpoints.dirty
                && !checkpoints.background.busy()
                && nothing_left(log, cfg, stop, idle_since)?
            {
                break;
            }
        }
        drop(raw_tx);
        // The last checkpoint below supersedes one still being written,
        // which uses the same temporary file: it is waited for.
        checkpoints.background.finished(true);
        Ok(())
    })?;
    // The last checkpoint, from the state itself: nothing is applied any
    // more.
    checkpoint_now(model, cfg, stats, &mut producer, &mut consumer)?;
    consumer.close()?;
    Ok(())
}

/// Writes a checkpoint from the state itself, under its read lock, and
/// commits its offsets: the late events' dead letters are flushed first.
fn checkpoint_now(
    model: &RwLock<Aggregator>,
    cfg: &RunnerConfig,
    stats: &RunnerStats,
    producer: &mut Box<dyn eventlog::LogProducer>,
    consumer: &mut Box<dyn eventlog::LogConsumer>,
) -> Result<Duration, RunnerError> {
    let timer = Instant::now();
    producer.flush()?;
    let (size, offsets) = {
        let m = model.read();
        let size = write_checkpoint(&cfg.checkpoint, &m, cfg.durability)
            .map_err(|e| checkpoint_error(&cfg.checkpoint, e))?;
        metrics::STATE_BYTES.set(i64::try_from(m.heap_bytes()).unwrap_or(i64::MAX));
        (size, m.offsets().into_iter().collect::<Offsets>())
    };
    let took = timer.elapsed();
    committed(consumer, stats, &offsets, size, took)?;
    Ok(took)
}

/// Starts the decoding thread: raw batches in, decoded batches out.
fn spawn_decoder<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    cfg: &'scope RunnerConfig,
) -> Result<
    (
        std::sync::mpsc::SyncSender<Vec<Record>>,
        std::sync::mpsc::Receiver<Decoded>,
    ),
    RunnerError,
> {
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(1);
    let (decoded_tx, decoded_rx) = std::sync::mpsc::sync_channel::<Decoded>(1);
    std::thread::Builder::new()
        .name("aggregator-decode".into())
        .spawn_scoped(scope, move || {
            if let Some(start) = cfg.on_decoder_start {
                start();
            }
            for batch in raw_rx {
                let decoded: Decoded = batch
                    .into_iter()
                    .map(|r| {
                        let e = Event::decode(&r.topic, &r.payload);
                        (r, e)
                    })
                    .collect();
                if decoded_tx.send(decoded).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| RunnerError::Decoder(e.to_string()))?;
    Ok((raw_tx, decoded_rx))
}

/// One poll. A broker that is down (restarting, unreachable) is waited
/// for, as ingest does: the state stays in memory, nothing is lost.
///
/// With a batch `in_flight` the poll does not wait: what the log holds now
/// is taken, and if it holds nothing the batch in flight is applied at
/// once, not when the next records come: a flush later, which would add to
/// every batch's freshness (`ecomflow_aggregator_freshness_seconds`) when
/// paced.
fn poll(
    consumer: &mut Box<dyn eventlog::LogConsumer>,
    max: usize,
    in_flight: bool,
    stop: &Shutdown,
) -> Result<Vec<Record>, RunnerError> {
    let wait = if in_flight {
        Duration::ZERO
    } else {
        Duration::from_millis(200)
    };
    match consumer.poll(max, wait) {
        Ok(r) => {
            telemetry::health::set_ready("event log");
            Ok(r)
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "Poll failed; retrying.");
            telemetry::health::set_unready("event log", format!("{e}; retrying"));
            stop.wait_timeout(Duration::from_millis(500));
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the group has consumed everything (see
/// [`consumer_done`]); a lag that cannot be read now is read next time.
fn nothing_left(
    log: &dyn EventLog,
    cfg: &RunnerConfig,
    stop: &Shutdown,
    idle_since: Instant,
) -> Result<bool, RunnerError> {
    match consumer_done(stop, cfg.until_idle, idle_since, || {
        log.lag(&cfg.group, &INPUT_TOPICS)
    }) {
        Ok(done) => Ok(done),
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "Could not read the group's lag; retrying.");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The offsets of a written checkpoint committed, and counted.
fn committed(
    consumer: &mut Box<dyn eventlog::LogConsumer>,
    stats: &RunnerStats,
    offsets: &Offsets,
    size: u64,
    took: Duration,
) -> Result<(), RunnerError> {
    consumer.commit(offsets)?;
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    metrics::CHECKPOINT_BYTES.set(i64::try_from(size).unwrap_or(i64::MAX));
    let seconds = took.as_secs_f64();
    metrics::CHECKPOINT_SECONDS.observe(seconds);
    tracing::debug!(bytes = size, seconds, "Aggregator checkpoint written.");
    Ok(())
}

/// When the periodic checkpoints are written, and the one being written.
struct Checkpoints {
    background: Background,
    /// When the last one ended.
    last: Instant,
    /// How long after it the next is due.
    wait: Duration,
    /// How long the last one took.
    took_last: Duration,
    /// Whether records were applied since the last one was copied.
    dirty: bool,
}

impl Checkpoints {
    /// The schedule of a runner that starts now, with its thread.
    fn new<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        cfg: &'scope RunnerConfig,
    ) -> Result<Self, RunnerError> {
        Ok(Checkpoints {
            background: Background::spawn(scope, cfg)?,
            last: Instant::now(),
            wait: cfg.every,
            took_last: Duration::ZERO,
            dirty: false,
        })
    }

    /// Commits the offsets of a checkpoint written meanwhile, and starts
    /// the next one when it is due: every `wait`, or as soon as the log is
    /// `drained` so that a consumer group's lag reads 0 once the aggregator
    /// has applied everything (spaced like the periodic ones, so a trickle
    /// of events cannot make it write all the time, unless it is
    /// `leaving`; failing ones wait for their backoff).
    fn tick(
        &mut self,
        drained: bool,
        leaving: bool,
        (model, stats, cfg): (&RwLock<Aggregator>, &RunnerStats, &RunnerConfig),
        producer: &mut Box<dyn eventlog::LogProducer>,
        consumer: &mut Box<dyn eventlog::LogConsumer>,
    ) {
        let caught_up = drained
            && self.dirty
            && stats.checkpoint_failures.load(Ordering::Relaxed) == 0
            && (leaving
                || self.last.elapsed() >= self.took_last.saturating_mul(CHECKPOINT_SPACING));
        if let Some((written, offsets, took)) = self.background.finished(leaving) {
            let outcome = written
                .and_then(|size| committed(consumer, stats, &offsets, size, took))
                .map(|()| took);
            self.ended(outcome, stats, cfg);
        }
        if !self.background.busy() && (caught_up || self.last.elapsed() >= self.wait) {
            // A periodic checkpoint that fails (disk full, no descriptors
            // left) does not stop the service: the state is still in
            // memory and the offsets stay uncommitted, so nothing is lost.
            // It is retried with a doubling backoff, counted in
            // `ecomflow_aggregator_checkpoint_failures` and on /healthz.
            // Caught up, events arrive as they are published, and are
            // applied while a copy is written; with a backlog (or when
            // leaving) they wait anyway, and the state is written without
            // a copy.
            if drained && !leaving && cfg.copy_checkpoints {
                match self.background.start(model, producer) {
                    Ok(()) => self.dirty = false,
                    Err(e) => self.ended(Err(e), stats, cfg),
                }
            } else {
                self.dirty = false;
                let outcome = checkpoint_now(model, cfg, stats, producer, consumer);
                self.ended(outcome, stats, cfg);
            }
        }
    }

    /// Counts a checkpoint that ended, and schedules the next.
    fn ended(
        &mut self,
        outcome: Result<Duration, RunnerError>,
        stats: &RunnerStats,
        cfg: &RunnerConfig,
    ) {
        match outcome {
            Ok(took) => {
                stats.checkpoint_failures.store(0, Ordering::Relaxed);
                metrics::CHECKPOINT_FAILING.set(0);
                self.took_last = took;
                self.wait = next_checkpoint_wait(cfg.every, took);
            }
            Err(e) => {
                self.dirty = true;
                checkpoint_failed(stats, &mut self.wait, &e);
            }
        }
        self.last = Instant::now();
    }
}

/// Records with what decoding them gave.
type Decoded = Vec<(Record, Result<Event, Rejection>)>;

/// Applies a decoded batch, taking the write lock per slice so lookups
/// wait for at most [`APPLY_SLICE`] records, not a whole poll; late events
/// are dead-lettered.
fn apply_batch(
    model: &RwLock<Aggregator>,
    stats: &RunnerStats,
    producer: &mut Box<dyn eventlog::LogProducer>,
    batch: Decoded,
) -> Result<(), RunnerError> {
    let mut batch = batch.into_iter().peekable();
    // Publish times of the slice's applied events, for the freshness
    // histogram once lookups can see them.
    let mut published: Vec<i64> = Vec::new();
    let freshness = metrics::FRESHNESS.local();
    while batch.peek().is_some() {
        published.clear();
        let mut m = model.write();
        // Per topic, added to the counter once per slice.
        let mut applied: Vec<(String, u64)> = Vec::new();
        for (r, event) in batch.by_ref().take(APPLY_SLICE) {
            match m.apply_decoded(&r.topic, r.partition, r.offset, event) {
                Outcome::Applied => {
                    stats.applied.fetch_add(1, Ordering::Relaxed);
                    if let Some(at) = r.published_us {
                        published.push(at);
                    }
                    match applied.iter_mut().find(|(t, _)| *t == r.topic) {
                        Some((_, n)) => *n += 1,
                        None => applied.push((r.topic.clone(), 1)),
                    }
                }
                Outcome::Late(reason) => {
                    stats.late.fetch_add(1, Ordering::Relaxed);
                    metrics::LATE.with_label_values(&[&r.topic]).inc();
                    let letter =
                        DeadLetter::new(&r.topic, r.partition, r.offset, &reason, &r.payload);
                    producer.send(
                        topics::DEAD_LETTERS,
                        &r.key,
                        &letter.to_bytes(),
                        r.timestamp_ms,
                    )?;
                }
                // Invalid records are ingest's to dead-letter.
                Outcome::Invalid(_) | Outcome::AlreadyApplied => {}
            }
        }
        metrics::observe_state(&m);
        // Lookups that waited for this slice get the lock before the next.
        parking_lot::RwLockWriteGuard::unlock_fair(m);
        if !published.is_empty() {
            let now = eventlog::now_us();
            for at in &published {
                // A clock that stepped back between two hosts reads 0.
                freshness.observe(now.saturating_sub(*at).max(0) as f64 / 1e6);
            }
        }
        for (topic, n) in applied {
            metrics::APPLIED.with_label_values(&[&topic]).inc_by(n);
        }
        // A day that slid out of the window is taken out of its counts in
        // pieces, the lock released in between.
        loop {
            let mut m = model.write();
            let more = m.expire(EXPIRE_SLICE);
            parking_lot::RwLockWriteGuard::unlock_fair(m);
            if !more {
                break;
            }
        }
    }
    Ok(())
}

/// Pairs taken out of the window under one hold of the write lock (a
/// fraction of a millisecond; a whole day of viewing sessions held lookups
/// for 10 ms and more).
const EXPIRE_SLICE: usize = 20_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction of `products`, as the log carries it.
    fn basket(id: &str, products: &[&str]) -> Vec<u8> {
        crate::testing::transaction(id, "2025-01-01T10:00:00", products)
    }

    #[test]
    fn a_background_checkpoint_holds_the_state_it_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = eventlog::embedded::EmbeddedLog::open(&dir.path().join("log")).expect("log");
        log.ensure_topics(&[eventlog::TopicSpec::new(topics::DEAD_LETTERS, 1)])
            .expect("topics");
        let mut producer = log.producer().expect("producer");
        let cfg = RunnerConfig::new("aggregator", dir.path().join("checkpoint.bin"));
        let model = RwLock::new(Aggregator::new(AggregatorConfig::default()));
        let pair = ["prod_00001", "prod_00002"];
        for offset in 0..10 {
            let payload = basket(&format!("txn_{offset:012}"), &pair);
            model
                .write()
                .apply(topics::TRANSACTIONS, 0, offset, &payload);
        }
        let copied = model.read().clone();
        std::thread::scope(|scope| {
            let mut background = Background::spawn(scope, &cfg).expect("spawn");
            assert!(background.finished(false).is_none(), "nothing started");
            background.start(&model, &mut producer).expect("start");
            assert!(background.busy());
            // Applied while the copy is written: not in this checkpoint.
            for offset in 10..15 {
                let payload = basket(&format!("txn_{offset:012}"), &pair);
                model
                    .write()
                    .apply(topics::TRANSACTIONS, 0, offset, &payload);
            }
            let (written, offsets, _) = background.finished(true).expect("started");
            assert!(written.expect("written") > 0);
            assert!(!background.busy());
            let want: Offsets = copied.offsets().into_iter().collect();
            assert_eq!(offsets, want, "the copy's offsets, to commit");
        });
        let saved = std::fs::read(&cfg.checkpoint).expect("checkpoint");
        let restored = Aggregator::restore(&saved).expect("restore");
        assert_eq!(restored, copied, "the state when it was copied");
        assert_ne!(
            restored,
            *model.read(),
            "the five applied later are not in it"
        );
    }

    #[test]
    fn slow_checkpoints_are_spaced_out() {
        let s = Duration::from_secs;
        // A quick checkpoint: the configured interval.
        assert_eq!(
            next_checkpoint_wait(s(10), Duration::from_millis(100)),
            s(10)
        );
        // 1.5 s to write: 30 s until the next, a twentieth of the time.
        assert_eq!(
            next_checkpoint_wait(s(10), Duration::from_millis(1_500)),
            s(30)
        );
    }
}
