//! `ecomflow replay`: the main job. Publishes the shop's days to the event
//! log while, in the same process, ingest stores them, the aggregator
//! serves lookups and the nightly batch reports after each simulated
//! midnight; then everything finishes what the log holds and the final
//! batch writes the report.

use crate::cli::ReplayArgs;
use crate::nightly::{self, Nightly};
use crate::pipeline::{self, AggregatorHandle, Pipeline, Stores, Workers};
use crate::{priority, stages, ui};
use anyhow::Context;
use chrono::NaiveDate;
use eventlog::EventLog;

use producer::replay::{ReplaySummary, Source};
use stage::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Replays, then prints the summary and the report's figures. Any error,
/// whichever step met it (opening the log, publishing, a stage, the final
/// batch), says what to do when the disk under the data dir is full.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let data_dir = args.log.data_dir.clone();
    replay(args).map_err(|e| explain_failure(e, &data_dir))
}

/// What the replay publishes: `--dataset`, or the shop the flags describe.
fn source(args: &ReplayArgs) -> anyhow::Result<Source> {
    Ok(match &args.dataset {
        Some(dir) => Source::Dataset(
            producer::dataset::Dataset::open(dir)
                .with_context(|| format!("opening the dataset {}", dir.display()))?,
        ),
        None => Source::Shop(args.shop.config()?),
    })
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let source = source(&args)?;
    // Before anything in the data dir is opened or removed: a running
    // process keeps it, and `--fresh` is refused rather than deleting its
    // files from under it.
    let _lock = crate::lock::lock_data_dir(&args.log.data_dir)?;
    if args.fresh {
        // Everything embedded goes: a log started over with old stores or an
        // old aggregator checkpoint would skip or double-count events.
        pipeline::remove_embedded(&args.log)?;
    }
    // Opened on a background-priority thread: the log's and the stores'
    // workers it starts yield to lookups (see `priority::yield_to_lookups`).
    let stores = (!args.publish_only).then_some(&args.stores);
    let opened = priority::in_background(|| Pipeline::open(&args.log, stores, args.fresh))??;
    let log = &opened.log;
    match &source {
        Source::Shop(cfg) => {
            tracing::info!(log = %log.describe(), seed = cfg.seed, sessions = cfg.sessions, "Replaying the shop.")
        }
        Source::Dataset(d) => {
            tracing::info!(log = %log.describe(), dataset = %d.id().dir, records = d.total(), "Replaying a dataset.")
        }
    }
    let stop = super::ctrl_c()?;
    let _metrics = crate::servers::start_metrics(args.log.metrics.as_deref())?;
    // Topics exist before any consumer subscribes.
    let mut running = Running::start(&args, &opened, &stop)?;
    let watcher = running.watch(&stop);
    let bar = ui::Progress::new(0, "events");
    let published = Arc::new(AtomicU64::new(0));
    let clock = running.stage_clock(published.clone());
    let result = publish(
        &args,
        &source,
        log.as_ref(),
        &stop,
        &running,
        &published,
        &bar,
    );
    let complete = result.as_ref().is_ok_and(|s| !s.interrupted);
    let finished = running.finish(log.as_ref(), &args, complete, &bar);
    bar.finish_and_clear();
    let gave_up = watcher.end();
    if let Some(stage) = gave_up {
        // The stage's own error says why; without one, say which stage.
        finished?;
        anyhow::bail!("the replay stopped: {stage}");
    }
    let summary = result?;
    let ended = finished?;
    let interrupted = summary.interrupted || stop.is_stopped();
    print_publish_summary(&summary, interrupted, log.as_ref());
    if let Some(ingest) = &running.ingest {
        ui::print_ingest_summary(&ingest.stats.snapshot(), &ingest.stores)?;
    }
    if let Some(e) = ended.nightly_failed {
        return Err(e.context("the nightly batch"));
    }
    // The last run covers everything stored, the final day included.
    let final_batch = match &running.ingest {
        Some(ingest) if !args.no_batch && !interrupted => {
            Some(final_batch(&ingest.stores, &running.batch)?)
        }
        _ => None,
    };
    print_stages(&clock.finish(), final_batch);
    if let Some(a) = running.aggregator {
        ui::print_aggregator_summary(&a);
        if args.aggregator.keep_serving && !interrupted {
            println!("Serving lookups on http://{} until Ctrl-C.", a.addr);
            stop.wait();
        }
        a.shutdown();
    }
    if interrupted {
        println!("Run the same command again to resume where it stopped.");
    }
    Ok(())
}

/// Ingest in this process: its stores, workers, token and counters.
struct Ingest {
    stores: Stores,
    /// `None` once joined.
    workers: Option<Workers>,
    stop: Shutdown,
    stats: Arc<ingest::IngestStats>,
}

/// The stages that run beside the publisher.
struct Running {
    aggregator: Option<AggregatorHandle>,
    ingest: Option<Ingest>,
    nightly: Option<Nightly>,
    /// The day the nightly batch last reported through, for the progress line.
    nightly_day: Arc<Mutex<Option<NaiveDate>>>,
    batch: batch::BatchConfig,
    /// Events this run publishes in all (known once publishing started):
    /// what ingest's time to the end is estimated from.
    to_publish: Arc<AtomicU64>,
}

impl Running {
    /// Starts the aggregator and its API (first, so a taken --http address
    /// fails before any record is read), ingest on the stores `opened`
    /// holds, and the nightly batch, unless `--publish-only`.
    fn start(args: &ReplayArgs, opened: &Pipeline, stop: &Shutdown) -> anyhow::Result<Self> {
        let log = &opened.log;
        let batch = args.report.config(&args.log.data_dir)?;
        let nightly_day = Arc::new(Mutex::new(None));
        if args.publish_only {
            return Ok(Running {
                aggregator: None,
                ingest: None,
                nightly: None,
                nightly_day,
                batch,
                to_publish: Arc::default(),
            });
        }
        let settings = pipeline::AggregatorSettings::new(
            &args.aggregator,
            &args.log,
            pipeline::AggregatorRun {
                until_idle: None,
                http_threads: args
                    .aggregator
                    .http_threads
                    .unwrap_or(pipeline::REPLAY_HTTP_THREADS),
                copy_checkpoints: args.speed().is_some(),
            },
        );
        let aggregator = pipeline::start_aggregator(log.clone(), settings, stop.child())?;
        let example = if args.dataset.is_some() {
            "/v1/products/{id}/bought-together, /v1/users/{id}/engagement"
        } else {
            "/v1/products/prod_00001/bought-together, /v1/users/user_000001/engagement"
        };
        println!(
            "Lookup API on http://{} (e.g. {example}, /metrics).",
            aggregator.addr
        );
        // Everything this thread does and starts from here on (publish,
        // ingest, the stores, the batch) gives way to lookups.
        priority::yield_to_lookups();
        let stats = Arc::new(ingest::IngestStats::default());
        let ingest_stop = stop.child();
        let stores = opened.stores()?.clone();
        let cfg = pipeline::ingest_config(&args.ingest, args.log.partitions, None);
        let workers = pipeline::start_ingest(log, &stores, &cfg, &stats, &ingest_stop)?;
        aggregator.serve_daily(&stores.sessions);
        let to_publish = Arc::new(AtomicU64::new(0));
        let nightly = (!args.no_batch && !args.no_nightly).then(|| {
            start_nightly(
                args,
                &stores,
                &batch,
                &stats,
                &to_publish,
                &nightly_day,
                stop,
            )
        });
        Ok(Running {
            aggregator: Some(aggregator),
            ingest: Some(Ingest {
                stores,
                workers: Some(workers),
                stop: ingest_stop,
                stats,
            }),
            nightly,
            nightly_day,
            batch,
            to_publish,
        })
    }

    /// Watches the stages beside the publisher and stops the whole run
    /// (`stop`) as soon as one cannot go on: an ingest worker that failed
    /// (the others would only pile up lag), or an aggregator whose
    /// checkpoint failed twice in a row (20 s apart; a full disk does not
    /// empty itself, and the replay would wait for it forever).
    fn watch(&self, stop: &Shutdown) -> Watcher {
        let ingest = self
            .ingest
            .as_ref()
            .and_then(|i| i.workers.as_ref())
            .map(crate::threads::Threads::failure_flag);
        let aggregator = self.aggregator.as_ref().map(|a| a.stats.clone());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let why: Arc<Mutex<Option<&'static str>>> = Arc::default();
        let (stop, d, w) = (stop.clone(), done.clone(), why.clone());
        let thread = std::thread::Builder::new()
            .name("replay-watch".into())
            .spawn(move || {
                while !d.load(Ordering::SeqCst) {
                    let stage = if ingest.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                        Some("an ingest worker failed")
                    } else if aggregator
                        .as_ref()
                        .is_some_and(|a| a.checkpoint_failures.load(Ordering::Relaxed) >= 2)
                    {
                        Some("the aggregator's checkpoint failed twice in a row")
                    } else {
                        None
                    };
                    if let Some(stage) = stage {
                        tracing::error!("{stage}: stopping the replay; run the same command again to resume once the cause is fixed.");
                        *w.lock().unwrap_or_else(|e| e.into_inner()) = Some(stage);
                        stop.stop();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        Watcher { thread, done, why }
    }

    /// Samples each stage's event count for the summary's per-stage rates.
    fn stage_clock(&self, published: Arc<AtomicU64>) -> stages::StageClock {
        let stats = self.ingest.as_ref().map(|i| i.stats.clone());
        let applied = self.aggregator.as_ref().map(|a| a.stats.clone());
        stages::StageClock::start(vec!["publish", "ingest", "aggregator"], move || {
            vec![
                published.load(Ordering::Relaxed),
                stats.as_ref().map_or(0, |s| s.snapshot().consumed),
                applied
                    .as_ref()
                    .map_or(0, |a| a.applied.load(Ordering::Relaxed)),
            ]
        })
    }

    /// What the progress line says about ingest and the nightly batch.
    fn ingest_message(&self, published: u64) -> String {
        let Some(ingest) = &self.ingest else {
            return String::new();
        };
        let s = ingest.stats.snapshot();
        let night = match *self.nightly_day.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(d) => format!("; report through {d}"),
            None => String::new(),
        };
        format!(
            "ingested {} (lag {}), dead letters {}{night}",
            ui::count(s.consumed),
            ui::count(published.saturating_sub(s.consumed)),
            ui::count(s.dead_total())
        )
    }

    /// Ingest, then the aggregator, finish what the log holds when the
    /// publisher got to the end (`complete`), or stop at once; the nightly
    /// batch stops in between. Returns how the nightly batch ended, or the
    /// first error of ingest or the aggregator.
    fn finish(
        &mut self,
        log: &dyn EventLog,
        args: &ReplayArgs,
        complete: bool,
        bar: &ui::Progress,
    ) -> anyhow::Result<Ended> {
        let lag = |group: &str, topics: &[&str]| {
            log.lag(group, topics)
                .map_or_else(|_| "?".to_string(), |n| n.to_string())
        };
        let workers = self.ingest.as_mut().and_then(|i| i.workers.take());
        let joined = match (workers, &self.ingest) {
            (Some(workers), Some(ingest)) => {
                crate::threads::finish_stage(&workers, &ingest.stop, complete, || {
                    let left = lag(&args.ingest.ingest_group, &ingest::worker::INPUT_TOPICS);
                    bar.set_message(format!(
                        "catching up: {left} left; {}",
                        self.ingest_message(self.to_publish.load(Ordering::Relaxed))
                    ));
                });
                workers.join()
            }
            _ => Ok(()),
        };
        tracing::debug!("Ingest stopped.");
        let nightly = self.nightly.take().map(|n| {
            bar.set_message("waiting for the nightly batch to finish its run");
            n.finish()
        });
        tracing::debug!("Nightly batch stopped.");
        let mut aggregator = Ok(());
        if let Some(a) = self.aggregator.as_mut() {
            if let Some(runner) = &a.runner {
                crate::threads::finish_stage(runner, &a.stop, complete, || {
                    let left = lag(
                        &args.aggregator.aggregator_group,
                        &aggregator::runner::INPUT_TOPICS,
                    );
                    bar.set_message(format!("aggregator catching up: {left} left"));
                });
            }
            aggregator = a.join_runner();
            tracing::debug!("Aggregator stopped.");
        }
        // Ingest's error first: when it failed, the aggregator's (a last
        // checkpoint on the same full disk, say) is a consequence.
        joined.context("ingest")?;
        aggregator.context("the aggregator")?;
        Ok(Ended {
            nightly_failed: nightly.and_then(Result::err),
        })
    }
}

/// What the stages beside the publisher leave when they end well.
struct Ended {
    /// The nightly batch's error, if its last run failed: raised once the
    /// summaries are printed, since what was stored is still worth showing.
    nightly_failed: Option<anyhow::Error>,
}

/// The stage table of this run, with the final batch's time.
fn print_stages(rows: &[stages::StageRow], final_batch: Option<f64>) {
    if rows.is_empty() {
        return;
    }
    print!("Stages (events from this run):\n{}", stages::format(rows));
    if let Some(secs) = final_batch {
        println!(
            "  final batch {secs:.1} s; peak RSS of the run {} MiB.",
            stages::peak_rss_kb() / 1024
        );
    }
}

/// The nightly batch of a replay: after each simulated midnight whose
/// events are all stored, snapshot and report through that day; `shown`
/// gets the day each run reported through, for the progress line.
fn start_nightly(
    args: &ReplayArgs,
    stores: &Stores,
    batch: &batch::BatchConfig,
    stats: &Arc<ingest::IngestStats>,
    to_publish: &Arc<AtomicU64>,
    shown: &Arc<Mutex<Option<NaiveDate>>>,
    stop: &Shutdown,
) -> Nightly {
    let stats = stats.clone();
    let ingested = stats.clone();
    let to_ingest = to_publish.clone();
    let started = Instant::now();
    let partitions = args.log.partitions;
    let shown = shown.clone();
    Nightly::start(
        stores.clone(),
        batch.clone(),
        move || {
            let wm = stats.low_watermark_ms(partitions)?;
            let t = chrono::DateTime::from_timestamp_millis(wm)?.naive_utc();
            t.date().pred_opt()
        },
        // Ingest's time to the end of what this run publishes, at
        // its rate so far.
        move || {
            let done = ingested.snapshot().consumed;
            let all = to_ingest.load(Ordering::Relaxed);
            (done > 0 && all > 0).then(|| {
                started
                    .elapsed()
                    .mul_f64(all.saturating_sub(done) as f64 / done as f64)
            })
        },
        move |o| {
            *shown.lock().unwrap_or_else(|e| e.into_inner()) = o.through;
        },
        stop.child(),
    )
}

/// Publishes `source`, showing progress on `bar` and counting into
/// `published` what this run published.
fn publish(
    args: &ReplayArgs,
    source: &Source,
    log: &dyn EventLog,
    stop: &Shutdown,
    running: &Running,
    published: &AtomicU64,
    bar: &ui::Progress,
) -> Result<ReplaySummary, producer::replay::ReplayError> {
    let opts = producer::replay::ReplayOptions {
        speed: args.speed(),
        batch: args.publish_chunk,
        ..producer::replay::ReplayOptions::default()
    };
    let resumed = producer::replay::published_before(log, source).unwrap_or(0);
    // Day n of the shop's days; a dataset shows dates only.
    let days = match source {
        Source::Shop(cfg) => Some((cfg.start_date, cfg.days)),
        Source::Dataset(_) => None,
    };
    producer::replay::run(source, log, &opts, stop, |p| {
        bar.set_length(p.total);
        bar.set_position(p.published);
        published.store(p.published.saturating_sub(resumed), Ordering::Relaxed);
        running
            .to_publish
            .store(p.total.saturating_sub(resumed), Ordering::Relaxed);
        let when = match days {
            Some((start_day, days)) => {
                let day = (p.event_time.date() - start_day).num_days() + 1;
                format!(
                    "day {}/{} ({})",
                    day.clamp(1, i64::from(days)),
                    days,
                    p.event_time.date()
                )
            }
            None => p.event_time.date().to_string(),
        };
        bar.set_message(format!(
            "{when}; {}",
            running.ingest_message(p.published.saturating_sub(resumed))
        ));
    })
}

/// The publisher's line of the summary.
fn print_publish_summary(summary: &ReplaySummary, interrupted: bool, log: &dyn EventLog) {
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let state = if interrupted { "Stopped" } else { "Replayed" };
    println!(
        "{state}: {} of {} events published ({} by this run in {:.1} s, {:.0} events/s) to the {}.",
        summary.resumed_from + summary.published,
        summary.total,
        summary.published,
        secs,
        summary.published as f64 / secs,
        log.describe()
    );
    if summary.found_sent > 0 {
        println!(
            "  {} of them had been sent by the run before, after its last marker (found in the topics by their sequence headers; not sent again).",
            summary.found_sent
        );
    }
}

/// Runs the final batch under a spinner and prints what it did; its time
/// in seconds.
fn final_batch(stores: &Stores, cfg: &batch::BatchConfig) -> anyhow::Result<f64> {
    let spinner = ui::Progress::spinner("final batch: snapshot, analytics, CLV, report");
    let started = Instant::now();
    let outcome = batch::run(stores.docs.as_ref(), &stores.sessions, cfg);
    let secs = started.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    nightly::print_outcome(&outcome.context("the final batch")?);
    Ok(secs)
}

/// The thread of [`Running::watch`].
struct Watcher {
    thread: Option<std::thread::JoinHandle<()>>,
    done: Arc<std::sync::atomic::AtomicBool>,
    why: Arc<Mutex<Option<&'static str>>>,
}

impl Watcher {
    /// Ends the watch; which stage stopped the run, if one did.
    fn end(self) -> Option<&'static str> {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread {
            let _ = t.join();
        }
        *self.why.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Says what to do about a stage's error when the cause is a full disk:
/// the error says so (ENOSPC), or the disk has almost nothing left (a
/// store that failed a write in the background reports itself only as
/// "poisoned").
fn explain_failure(e: anyhow::Error, data_dir: &std::path::Path) -> anyhow::Error {
    if disk_full(&e) || free_bytes(data_dir).is_some_and(|free| free < 64 << 20) {
        let dir = data_dir.display();
        e.context(format!(
            "the disk under --data-dir {dir} is full: free space there (`df -h {dir}`), then run the same command again to resume where it stopped"
        ))
    } else {
        e
    }
}

/// Bytes free for us on the file system holding `dir` (`statvfs`).
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes the struct we pass, which is plain data
    // (all-zero is a valid value), and reads the NUL-terminated path.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; both pointers are valid for the call.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stats) };
    (rc == 0).then(|| stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Whether `e` comes from a full disk (ENOSPC), however deep the cause.
fn disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            || c.to_string().contains("No space left on device")
    })
}
