//! Wiring: opens the log and the stores the flags ask for, and runs the
//! ingest workers and the aggregator on threads, each stage under its own
//! [`Shutdown`] token.

use crate::cli::{AggregatorFlags, HbaseArgs, IngestFlags, LogArgs, StoreArgs};
use crate::servers::http_runtime;
use crate::threads::Threads;
use anyhow::Context;
use eventlog::embedded::EmbeddedLog;
use eventlog::EventLog;
use ingest::{IngestConfig, IngestError, IngestStats};
use stage::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use stores::doc_embedded::EmbeddedDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::{DocumentStore, SessionStore, WideColumnStore};

/// What a command's stages run on, opened from its flags in one place:
/// the event log with the shop's topics, and the stores when the command
/// writes them.
pub struct Pipeline {
    /// The event log, its topics created.
    pub log: Arc<dyn EventLog>,
    /// The stores, if the command asked for them.
    pub stores: Option<Stores>,
}

impl Pipeline {
    /// Opens the log (`fresh`: emptied first) and, given `stores`, the
    /// stores they name.
    pub fn open(log: &LogArgs, stores: Option<&StoreArgs>, fresh: bool) -> anyhow::Result<Self> {
        let opened = open_log(log, fresh)?;
        let stores = stores
            .map(|servers| open_stores(&log.data_dir, log.durability(), log.compress, servers))
            .transpose()?;
        Ok(Pipeline {
            log: opened,
            stores,
        })
    }

    /// The stores, which `open` was asked for.
    pub fn stores(&self) -> anyhow::Result<&Stores> {
        self.stores
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the stores were not opened"))
    }
}

/// The stores of one process.
#[derive(Clone)]
pub struct Stores {
    /// Document store (MongoDB's role).
    pub docs: Arc<dyn DocumentStore>,
    /// Wide-column tables (HBase's role).
    pub sessions: SessionStore,
}

/// Opens the stores the flags ask for: servers when given, otherwise the
/// embedded engines under `--data-dir`, whose new keyspaces compress
/// their blocks with `compress` (`--compress`).
pub fn open_stores(
    data_dir: &std::path::Path,
    durability: stage::fsio::Durability,
    compress: bool,
    servers: &StoreArgs,
) -> anyhow::Result<Stores> {
    if servers.mongodb_uri.is_none() || servers.hbase.hbase_thrift.is_none() {
        check_data_dir(data_dir)?;
    }
    let open_docs = || -> anyhow::Result<Arc<dyn DocumentStore>> {
        Ok(match &servers.mongodb_uri {
            #[cfg(feature = "mongodb")]
            Some(uri) => Arc::new(
                stores::doc_mongo::MongoDocStore::connect_with_prefix(
                    uri,
                    &servers.mongodb_database,
                    &servers.mongodb_collection_prefix,
                )
                .with_context(|| {
                    format!("connecting to MongoDB at {}", stores::redact::uri(uri))
                })?,
            ),
            #[cfg(not(feature = "mongodb"))]
            Some(_) => return Err(crate::features::missing("mongodb", "--mongodb-uri")),
            None => {
                let dir = data_dir.join("docs");
                Arc::new(
                    EmbeddedDocStore::open_compressed(&dir, durability, compress)
                        .with_context(|| opening("the document store", &dir))?,
                )
            }
        })
    };
    let open_wide = || open_wide(data_dir, durability, compress, &servers.hbase);
    // Opening an embedded store replays its journal (tens of MB after a
    // replay): the two open side by side.
    let (docs, wide) = std::thread::scope(|scope| {
        let wide = scope.spawn(open_wide);
        let docs = open_docs();
        let wide = wide
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("opening the wide-column store panicked")));
        (docs, wide)
    });
    Ok(Stores {
        docs: docs?,
        sessions: SessionStore::new(wide?)?,
    })
}

/// The context of an embedded engine's open error: which, where, and the
/// way out if it is damaged.
fn opening(what: &str, dir: &std::path::Path) -> String {
    format!(
        "opening {what} in {} (if it is damaged, start over with `replay --fresh`)",
        dir.display()
    )
}

/// Opens the wide-column store: the HBase Thrift server when given,
/// otherwise the embedded engine under `--data-dir`.
fn open_wide(
    data_dir: &std::path::Path,
    durability: stage::fsio::Durability,
    compress: bool,
    hbase: &HbaseArgs,
) -> anyhow::Result<Arc<dyn WideColumnStore>> {
    Ok(match &hbase.hbase_thrift {
        #[cfg(feature = "hbase")]
        Some(addr) => Arc::new(
            stores::wide_hbase::HbaseWideStore::connect_with(hbase.settings(addr))
                .with_context(|| format!("connecting to HBase Thrift at {addr}"))?,
        ),
        #[cfg(not(feature = "hbase"))]
        Some(_) => return Err(crate::features::missing("hbase", "--hbase-thrift")),
        None => {
            let dir = data_dir.join("wide");
            Arc::new(
                EmbeddedWideStore::open_compressed(&dir, durability, compress)
                    .with_context(|| opening("the wide-column store", &dir))?,
            )
        }
    })
}

/// The wide-column store `serve` reads daily counts from: the HBase
/// Thrift server when given; otherwise, on an embedded data dir, the
/// embedded store a replay made there (`serve` holds the data dir's lock,
/// so no other process has it open). `None` when there is neither.
pub fn daily_sessions(log: &LogArgs, hbase: &HbaseArgs) -> anyhow::Result<Option<SessionStore>> {
    let embedded = log.kafka_brokers.is_none() && log.data_dir.join("wide").is_dir();
    if hbase.hbase_thrift.is_none() && !embedded {
        return Ok(None);
    }
    let wide = open_wide(&log.data_dir, log.durability(), log.compress, hbase)?;
    Ok(Some(SessionStore::new(wide)?))
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

/// `--data-dir` is a directory, or can be made one: an error naming the
/// path otherwise (not the bare "Not a directory" of the first file opened
/// under it).
pub fn check_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!(
            "--data-dir {} is a file, not a directory: give a directory (it is created if missing)",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --data-dir {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("reading --data-dir {}", dir.display())),
    }
}

/// Opens the event log the flags ask for, with the shop's topics
/// created if they are not there (`--partitions` each): every command
/// that reads or writes the log gets it from here, through [`Pipeline`].
fn open_log(args: &LogArgs, fresh: bool) -> anyhow::Result<Arc<dyn EventLog>> {
    check_data_dir(&args.data_dir)?;
    let log = connect_log(args, fresh)?;
    log.ensure_topics(&eventlog::TopicSpec::shop(args.partitions))
        .with_context(|| format!("creating the shop's topics on {}", log.describe()))?;
    Ok(log)
}

/// The event log the flags ask for, as it is.
fn connect_log(args: &LogArgs, fresh: bool) -> anyhow::Result<Arc<dyn EventLog>> {
    match &args.kafka_brokers {
        #[cfg(not(feature = "kafka"))]
        Some(_) => Err(crate::features::missing("kafka", "--kafka-brokers")),
        #[cfg(feature = "kafka")]
        Some(brokers) => {
            let markers = args.data_dir.join("markers");
            if fresh {
                match std::fs::remove_dir_all(&markers) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", markers.display()))
                    }
                    _ => {}
                }
                tracing::warn!(
                    "--fresh with Kafka forgets the replay's progress but cannot empty the topics."
                );
            }
            let settings = args.kafka.settings(brokers)?;
            Ok(Arc::new(eventlog::kafka::KafkaLog::with_settings(
                settings, markers,
            )))
        }
        None => {
            let dir = args.data_dir.join("log");
            if fresh && dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
            Ok(Arc::new(
                EmbeddedLog::open_compressed(&dir, args.durability(), args.compress)
                    .with_context(|| opening("the event log", &dir))?,
            ))
        }
    }
}

/// Ingest's settings from its flags: what `replay` and `ingest` build
/// once, at their start.
pub fn ingest_config(
    flags: &IngestFlags,
    partitions: u32,
    until_idle: Option<u64>,
) -> IngestConfig {
    IngestConfig {
        group: flags.ingest_group.clone(),
        workers: flags.ingest_workers,
        batch: flags.ingest_chunk,
        partitions,
        until_idle: until_idle.map(Duration::from_secs),
        ..IngestConfig::default()
    }
}

/// The ingest workers of one process.
pub type Workers = Threads<IngestError>;

/// Starts the ingest workers of `cfg` on `stores`, once the group is set
/// back to what the stores hold; they run until `stop` stops (or drains,
/// or `cfg.until_idle` passes without records, once all are consumed).
pub fn start_ingest(
    log: &Arc<dyn EventLog>,
    stores: &Stores,
    cfg: &IngestConfig,
    stats: &Arc<IngestStats>,
    stop: &Shutdown,
) -> anyhow::Result<Workers> {
    ingest::resume_from_stores(
        log.as_ref(),
        stores.docs.as_ref(),
        &stores.sessions,
        &cfg.group,
    )
    .with_context(|| {
        format!(
            "setting ingest group {:?} back to what the stores hold (stop the group's \
             other members and start again)",
            cfg.group
        )
    })?;
    watch_lag(
        log.clone(),
        cfg.group.clone(),
        &ingest::worker::INPUT_TOPICS,
        &ingest::metrics::LAG,
        stop.clone(),
    )?;
    // Every worker joins the group before any polls (see
    // `ingest::run_worker_on`): no partition changes hands under a batch.
    let consumers = (0..cfg.workers)
        .map(|_| log.consumer(&cfg.group, &ingest::worker::INPUT_TOPICS))
        .collect::<Result<Vec<_>, _>>()?;
    let mut workers = Threads::new("an ingest thread");
    for (i, consumer) in consumers.into_iter().enumerate() {
        let (log, stores, cfg, stats, stop) = (
            log.clone(),
            stores.clone(),
            cfg.clone(),
            stats.clone(),
            stop.clone(),
        );
        workers.spawn(format!("ingest-{i}"), move || {
            ingest::run_worker_on(
                consumer,
                log.as_ref(),
                stores.docs.as_ref(),
                &stores.sessions,
                &cfg,
                &stats,
                &stop,
            )
        })?;
    }
    Ok(workers)
}

/// Reads `group`'s lag into `gauge` every 2 s on a thread of its own until
/// `stop` stops: on Kafka a lag query is several round trips, which the
/// consumers should not wait on.
fn watch_lag(
    log: Arc<dyn EventLog>,
    group: String,
    topics: &'static [&'static str],
    gauge: &'static telemetry::prometheus::IntGauge,
    stop: Shutdown,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name(format!("lag-{group}"))
        .spawn(move || loop {
            match log.lag(&group, topics) {
                Ok(lag) => gauge.set(i64::try_from(lag).unwrap_or(i64::MAX)),
                Err(e) => tracing::debug!(%group, error = %e, "Could not read the lag."),
            }
            if stop.wait_timeout(Duration::from_secs(2)) {
                return;
            }
        })
        .context("starting the lag watcher")?;
    Ok(())
}

/// The aggregator of one process: its model, served over HTTP, fed by a
/// runner thread.
pub struct AggregatorHandle {
    /// The live model.
    pub model: aggregator::SharedModel,
    /// Address the API listens on.
    pub addr: std::net::SocketAddr,
    /// Runner counters.
    pub stats: Arc<aggregator::runner::RunnerStats>,
    /// The API's default ranking (the summary ranks the same way).
    pub ranking: aggregator::choices::Ranking,
    /// The runner's thread; `None` once joined.
    pub runner: Option<Threads<aggregator::runner::RunnerError>>,
    /// The runner's token: drain it to finish the log, stop it to stop.
    pub stop: Shutdown,
    /// What the lookup API serves from.
    api: Arc<aggregator::http::ApiState>,
    runtime: tokio::runtime::Runtime,
}

impl AggregatorHandle {
    /// Serves `/v1/products/{id}/daily` from the wide-column store's
    /// `product_daily` from now on.
    pub fn serve_daily(&self, sessions: &SessionStore) {
        self.api
            .serve_daily(Arc::new(DailyFromStore(sessions.clone())));
    }

    /// Waits for the runner to end (it ends when its token stops or
    /// drains, or at `--until-idle`), then stops its token.
    pub fn join_runner(&mut self) -> anyhow::Result<()> {
        let joined = self.runner.take().map_or(Ok(()), Threads::join);
        self.stop.stop();
        joined
    }

    /// Stops serving.
    pub fn shutdown(self) {
        self.runtime
            .shutdown_timeout(std::time::Duration::from_secs(2));
    }
}

/// Lookup API threads in `replay`. The pipeline's threads keep both cores
/// busy, and whichever thread answers lookups waits for a core now and
/// then; with one thread, every connection waits with it. Two halved p99
/// under `wrk` during the replay: 5.2-5.9 ms against 10.5-11.2 ms, with
/// three times the requests answered (docs/benchmarks.md).
pub const REPLAY_HTTP_THREADS: u16 = 2;

/// Lookup API threads in `serve`: with the cores free, one thread answers
/// sooner than two that hand connections to each other (idle, p99 0.5-1.1
/// ms against 3.5 ms, and more requests per second).
pub const SERVE_HTTP_THREADS: u16 = 1;

/// How a command runs its aggregator.
pub struct AggregatorRun {
    /// Stop when this many seconds pass without records, once all are
    /// consumed.
    pub until_idle: Option<u64>,
    /// Threads answering lookups.
    pub http_threads: u16,
    /// Periodic checkpoints from a copy of the state once caught up
    /// (`aggregator::runner::RunnerConfig::copy_checkpoints`): for a live
    /// stream, not for a replay at full speed, whose lookups wait for the
    /// backlog anyway.
    pub copy_checkpoints: bool,
}

/// The aggregator's settings, in its own types: what `replay` and `serve`
/// build once, at their start, from their flags.
pub struct AggregatorSettings {
    /// The windows and lateness of the live counts.
    pub model: aggregator::processor::AggregatorConfig,
    /// The consumer group member: group, checkpoint file and schedule,
    /// durability, when to stop.
    pub runner: aggregator::runner::RunnerConfig,
    /// Re-read the log from the start instead of restoring the checkpoint.
    pub rebuild: bool,
    /// The lookup API's address, threads and default ranking.
    pub http: String,
    /// Threads answering lookups.
    pub http_threads: u16,
    /// Ranking when a request names none.
    pub ranking: aggregator::choices::Ranking,
}

impl AggregatorSettings {
    /// The settings `flags` and `log` (its data dir and durability) ask
    /// for, run as `run` says.
    pub fn new(flags: &AggregatorFlags, log: &LogArgs, run: AggregatorRun) -> Self {
        use aggregator::runner::RunnerConfig;
        let checkpoint = flags.checkpoint_path(&log.data_dir);
        AggregatorSettings {
            model: aggregator::processor::AggregatorConfig {
                window_days: flags.window_days,
                lateness_secs: flags.lateness,
                ..Default::default()
            },
            runner: RunnerConfig {
                every: Duration::from_secs(flags.checkpoint_every),
                on_decoder_start: Some(crate::priority::yield_to_lookups),
                durability: log.durability(),
                until_idle: run.until_idle.map(Duration::from_secs),
                copy_checkpoints: run.copy_checkpoints,
                ..RunnerConfig::new(flags.aggregator_group.clone(), checkpoint)
            },
            rebuild: flags.rebuild_aggregator,
            http: flags.http.clone(),
            http_threads: run.http_threads,
            ranking: flags.ranking,
        }
    }
}

/// Restores (or creates) the aggregator, starts its runner and its API.
/// The runner runs until `stop` stops (or drains, or `until_idle` passes
/// without records, once all are consumed).
pub fn start_aggregator(
    log: Arc<dyn EventLog>,
    settings: AggregatorSettings,
    stop: Shutdown,
) -> anyhow::Result<AggregatorHandle> {
    use aggregator::{http, runner};
    let cfg = settings.runner;
    let (group, checkpoint) = (&cfg.group, &cfg.checkpoint);
    let model = if settings.rebuild {
        runner::rebuild(log.as_ref(), group, checkpoint, settings.model)?
    } else {
        let committed = log.committed_offsets(group, &runner::INPUT_TOPICS)?;
        let model = runner::restore_or_new(checkpoint, settings.model, &committed)?;
        runner::resume_from_checkpoint(log.as_ref(), group, &model).with_context(|| {
            format!("setting aggregator group {group:?} back to what its checkpoint holds")
        })?;
        model
    };
    let model = Arc::new(aggregator::RwLock::new(model));
    let (runtime, listener) = http_runtime(
        "http",
        settings.http_threads,
        &settings.http,
        "the lookup API (use --http to pick another address)",
    )?;
    let addr = listener.local_addr()?;
    let ranking = settings.ranking;
    let api = Arc::new(http::ApiState::new(model.clone(), ranking));
    let state = api.clone();
    runtime.spawn(async move {
        if let Err(e) = http::serve(listener, state).await {
            tracing::error!(error = %e, "Lookup API stopped.");
        }
    });
    let stats = Arc::new(runner::RunnerStats::default());
    watch_lag(
        log.clone(),
        cfg.group.clone(),
        &runner::INPUT_TOPICS,
        &aggregator::metrics::LAG,
        stop.clone(),
    )?;
    let (m, s, token) = (model.clone(), stats.clone(), stop.clone());
    let mut runner = Threads::new("the aggregator thread");
    runner.spawn("aggregator".into(), move || {
        crate::priority::for_the_aggregator();
        runner::run(log.as_ref(), &m, &cfg, &s, &token)
    })?;
    Ok(AggregatorHandle {
        model,
        addr,
        stats,
        ranking,
        runner: Some(runner),
        stop,
        api,
        runtime,
    })
}

/// The lookup API's daily counts, read from the wide-column store.
struct DailyFromStore(SessionStore);

impl aggregator::http::DailySource for DailyFromStore {
    fn product_daily(
        &self,
        product: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<aggregator::http::DayCounts>, String> {
        let days = self
            .0
            .product_daily(product, from, to)
            .map_err(|e| e.to_string())?;
        Ok(days
            .into_iter()
            .map(|c| aggregator::http::DayCounts {
                day: c.day,
                views: c.views,
                cart_adds: c.cart_adds,
                purchases: c.purchases,
            })
            .collect())
    }
}
