//! Wiring: opens the log and the stores the flags ask for, and runs ingest
//! workers on threads.

use crate::cli::{AggregatorFlags, IngestFlags, LogArgs};
use anyhow::Context;
use eventlog::EventLog;
use ingest::{IngestConfig, IngestError, IngestStats};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use stores::doc_embedded::EmbeddedDocStore;
use stores::doc_mongo::MongoDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::wide_hbase::HbaseWideStore;
use stores::{DocumentStore, SessionStore, WideColumnStore};

/// The stores of one process.
#[derive(Clone)]
pub struct Stores {
    /// Document store (MongoDB's role).
    pub docs: Arc<dyn DocumentStore>,
    /// Wide-column tables (HBase's role).
    pub sessions: SessionStore,
}

/// Opens the stores the flags ask for: servers when given, otherwise the
/// embedded engines under `--data-dir`.
pub fn open_stores(args: &LogArgs) -> anyhow::Result<Stores> {
    let durability = args.durability();
    let docs: Arc<dyn DocumentStore> = match &args.mongodb_uri {
        Some(uri) => Arc::new(
            MongoDocStore::connect(uri, &args.mongodb_database)
                .with_context(|| format!("connecting to MongoDB at {uri}"))?,
        ),
        None => Arc::new(
            EmbeddedDocStore::open_with(&args.data_dir.join("docs"), durability)
                .context("opening the document store")?,
        ),
    };
    let wide: Arc<dyn WideColumnStore> = match &args.hbase_thrift {
        Some(addr) => Arc::new(
            HbaseWideStore::connect(addr, 4)
                .with_context(|| format!("connecting to HBase Thrift at {addr}"))?,
        ),
        None => Arc::new(
            EmbeddedWideStore::open_with(&args.data_dir.join("wide"), durability)
                .context("opening the wide-column store")?,
        ),
    };
    Ok(Stores {
        docs,
        sessions: SessionStore::new(wide)?,
    })
}

/// Removes the embedded engines' directories (for `--fresh`).
pub fn remove_embedded(args: &LogArgs) -> anyhow::Result<()> {
    for sub in [
        "log",
        "docs",
        "wide",
        "markers",
        "aggregator",
        "snapshot",
        "report",
    ]
    .into_iter()
    .map(String::from)
    .chain(other_aggregator_groups(&args.data_dir))
    {
        let dir = args.data_dir.join(sub);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", dir.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checkpoint directories of aggregator groups other than the default.
fn other_aggregator_groups(data_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with("aggregator-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Ingest settings from flags.
fn ingest_config(flags: &IngestFlags, partitions: u32) -> IngestConfig {
    IngestConfig {
        group: flags.ingest_group.clone(),
        batch: flags.ingest_batch.max(1),
        partitions: partitions.max(1),
        ..IngestConfig::default()
    }
}

/// Worker threads of one process.
pub type Workers = Vec<JoinHandle<Result<(), IngestError>>>;

/// Creates the topics, opens the stores and starts the ingest workers the
/// flags ask for; they run until `stop` is set.
pub fn start_ingest(
    log: Arc<dyn EventLog>,
    args: &LogArgs,
    flags: &IngestFlags,
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Stores, Workers)> {
    // Topics must exist before consumers subscribe.
    log.ensure_topics(&producer::replay::topic_specs(args.partitions.max(1)))?;
    let stores = open_stores(args)?;
    ingest::resume_from_stores(
        log.as_ref(),
        stores.docs.as_ref(),
        &stores.sessions,
        &flags.ingest_group,
    )
    .with_context(|| {
        format!(
            "setting ingest group {:?} back to what the stores hold (stop the group's \
             other members and start again)",
            flags.ingest_group
        )
    })?;
    watch_lag(
        log.clone(),
        flags.ingest_group.clone(),
        &ingest::worker::INPUT_TOPICS,
        &ingest::metrics::LAG,
        stop.clone(),
    )?;
    let workers = spawn_ingest(
        log,
        stores.clone(),
        ingest_config(flags, args.partitions),
        flags.ingest_workers,
        stats,
        stop,
    )?;
    Ok((stores, workers))
}

/// Reads `group`'s lag into `gauge` every 2 s on a thread of its own until
/// `stop` is set: on Kafka a lag query is several round trips, which the
/// consumers should not wait on.
fn watch_lag(
    log: Arc<dyn EventLog>,
    group: String,
    topics: &'static [&'static str],
    gauge: &'static telemetry::prometheus::IntGauge,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    std::thread::Builder::new()
        .name(format!("lag-{group}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match log.lag(&group, topics) {
                    Ok(lag) => gauge.set(i64::try_from(lag).unwrap_or(i64::MAX)),
                    Err(e) => tracing::debug!(%group, error = %e, "Could not read the lag."),
                }
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        })
        .context("starting the lag watcher")?;
    Ok(())
}

/// Starts `workers` ingest threads; they run until `stop` is set.
fn spawn_ingest(
    log: Arc<dyn EventLog>,
    stores: Stores,
    cfg: IngestConfig,
    workers: usize,
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Workers> {
    (0..workers.max(1))
        .map(|i| {
            let (log, stores, cfg, stats, stop) = (
                log.clone(),
                stores.clone(),
                cfg.clone(),
                stats.clone(),
                stop.clone(),
            );
            std::thread::Builder::new()
                .name(format!("ingest-{i}"))
                .spawn(move || {
                    ingest::run_worker(
                        log.as_ref(),
                        stores.docs.as_ref(),
                        &stores.sessions,
                        &cfg,
                        &stats,
                        &stop,
                    )
                })
                .context("starting an ingest thread")
        })
        .collect()
}

/// Joins worker threads and returns the first error.
pub fn join_all(handles: Workers) -> anyhow::Result<()> {
    let mut first = Ok(());
    for h in handles {
        let r = match h.join() {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!("an ingest thread panicked")),
        };
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// The aggregator of one process: its model, served over HTTP, fed by a
/// runner thread.
pub struct AggregatorHandle {
    /// The live model.
    pub model: Arc<std::sync::RwLock<aggregator::processor::Aggregator>>,
    /// Address the API listens on.
    pub addr: std::net::SocketAddr,
    /// Runner counters.
    pub stats: Arc<aggregator::runner::RunnerStats>,
    /// The API's default ranking (the summary ranks the same way).
    pub ranking: aggregator::cooccur::Ranking,
    runner: JoinHandle<Result<(), aggregator::runner::RunnerError>>,
    runtime: tokio::runtime::Runtime,
}

impl AggregatorHandle {
    /// Waits for the runner (after its stop flag is set).
    pub fn join_runner(&mut self) -> anyhow::Result<()> {
        let runner = std::mem::replace(&mut self.runner, std::thread::spawn(|| Ok(())));
        match runner.join() {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(_) => Err(anyhow::anyhow!("the aggregator thread panicked")),
        }
    }

    /// Whether the runner has stopped.
    pub fn runner_finished(&self) -> bool {
        self.runner.is_finished()
    }

    /// Stops serving.
    pub fn shutdown(self) {
        self.runtime
            .shutdown_timeout(std::time::Duration::from_secs(2));
    }
}

/// A one-thread runtime for an HTTP server and its listener on `addr`.
fn http_runtime(
    thread: &str,
    addr: &str,
    what: &str,
) -> anyhow::Result<(tokio::runtime::Runtime, tokio::net::TcpListener)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(thread)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("binding {what} to {addr}"))?;
    Ok((runtime, listener))
}

/// Restores (or creates) the aggregator, starts its runner and its API.
pub fn start_aggregator(
    log: Arc<dyn EventLog>,
    args: &LogArgs,
    flags: &AggregatorFlags,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<AggregatorHandle> {
    use aggregator::{http, processor::AggregatorConfig, runner};
    let checkpoint = flags.checkpoint_path(&args.data_dir);
    let config = AggregatorConfig {
        window_days: flags.window_days.max(1),
        lateness_secs: flags.lateness.max(0),
        ..AggregatorConfig::default()
    };
    let group = &flags.aggregator_group;
    let model = if flags.rebuild_aggregator {
        runner::rebuild(log.as_ref(), group, &checkpoint, config)?
    } else {
        let committed = log.committed_offsets(group, &runner::INPUT_TOPICS)?;
        let model = runner::restore_or_new(&checkpoint, config, &committed)?;
        runner::resume_from_checkpoint(log.as_ref(), group, &model).with_context(|| {
            format!("setting aggregator group {group:?} back to what its checkpoint holds")
        })?;
        model
    };
    let model = Arc::new(std::sync::RwLock::new(model));
    let (runtime, listener) = http_runtime(
        "http",
        &flags.http,
        "the lookup API (use --http to pick another address)",
    )?;
    let addr = listener.local_addr()?;
    let ranking = flags.ranking;
    let state = Arc::new(http::ApiState::new(model.clone(), ranking));
    runtime.spawn(async move {
        if let Err(e) = http::serve(listener, state).await {
            tracing::error!(error = %e, "Lookup API stopped.");
        }
    });
    let stats = Arc::new(runner::RunnerStats::default());
    let cfg = runner::RunnerConfig {
        group: flags.aggregator_group.clone(),
        checkpoint,
        every: std::time::Duration::from_secs(flags.checkpoint_every.max(1)),
        batch: 5_000,
        on_decoder_start: Some(yield_to_lookups),
        durability: args.durability(),
    };
    watch_lag(
        log.clone(),
        flags.aggregator_group.clone(),
        &runner::INPUT_TOPICS,
        &aggregator::metrics::LAG,
        stop.clone(),
    )?;
    let (m, s) = (model.clone(), stats.clone());
    let runner = std::thread::Builder::new()
        .name("aggregator".into())
        .spawn(move || {
            lower_priority(AGGREGATOR_NICE);
            runner::run(log.as_ref(), &m, &cfg, &s, &stop)
        })
        .context("starting the aggregator thread")?;
    Ok(AggregatorHandle {
        model,
        addr,
        stats,
        ranking,
        runner,
        runtime,
    })
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
    let (runtime, listener) = http_runtime("metrics", addr, "the metrics endpoint (--metrics)")?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        if let Err(e) = telemetry::serve(listener).await {
            tracing::error!(error = %e, "Metrics endpoint stopped.");
        }
    });
    println!("Metrics on http://{addr}/metrics.");
    Ok(Some(MetricsServer { _runtime: runtime }))
}

/// Nice value of the throughput stages when the lookup API shares their
/// process: the lowest priority, so that lookups get a core at once.
const BACKGROUND_NICE: i32 = 19;

/// Nice value of the aggregator's thread: below the lookups, so they get
/// a core first, but well above the other stages, because lookups wait for
/// its write lock and it must keep up with the log.
const AGGREGATOR_NICE: i32 = 5;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`], and
/// with it that of every thread it starts from now on (Linux threads
/// inherit it). `replay` opens the log on such a thread (so the log's
/// store workers inherit it) and calls it once the lookup API and the
/// aggregator run: publishing, ingest, their stores, the nightly batch and
/// the aggregator's decoding thread then yield the cores to lookups, and
/// the aggregator's own thread runs at [`AGGREGATOR_NICE`]. Under `wrk`
/// during a replay, p99 went from 52 ms to about 12-16 ms with the nice
/// value, and to 11-12 ms (a third more lookups served) with `SCHED_IDLE`
/// as well.
pub fn yield_to_lookups() {
    lower_priority(BACKGROUND_NICE);
    idle_policy();
}

/// Puts the calling thread (and the threads it starts) under Linux's
/// `SCHED_IDLE` policy: it runs when no normal thread wants the core, and a
/// normal thread that wakes (a lookup) takes the core at once instead of
/// waiting for the end of a time slice. Needs no privileges. A no-op
/// elsewhere, and a debug line if refused.
fn idle_policy() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param that outlives the call;
        // pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "Could not put a thread under SCHED_IDLE."
            );
        }
    }
}

/// Sets the calling thread's nice value (Linux: per thread, inherited by
/// the threads it starts). A no-op elsewhere, and a debug line if refused
/// (raising a priority needs privileges; lowering it never does).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory.
        // On Linux, PRIO_PROCESS with who = 0 is the calling thread only.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::debug!(
                nice,
                error = %std::io::Error::last_os_error(),
                "Could not lower a thread's priority."
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Runs `f` on a thread at background priority ([`yield_to_lookups`]) and
/// returns what it returns: threads `f` starts (a store's workers) run at
/// that priority for good, while the caller keeps its own.
pub fn in_background<T: Send>(f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("background-open".into())
            .spawn_scoped(s, || {
                yield_to_lookups();
                f()
            })
            .context("starting a thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("a background thread panicked"))
    })
}
