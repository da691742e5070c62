//! The `ecomflow` binary: thin wiring of the stage crates behind one CLI.

mod cli;
mod nightly;
mod pipeline;
mod query;
mod stages;

use anyhow::Context;
use clap::Parser;
use cli::{BenchArgs, Cli, Command, EvaluateArgs, GenerateArgs, IngestArgs, LogArgs, ReplayArgs};
use eventlog::embedded::EmbeddedLog;
use eventlog::kafka::KafkaLog;
use eventlog::EventLog;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

// glibc's malloc spent a fifth of ingest's CPU (`_int_malloc`, in a profile
// of the replay) once the batch's large allocations had fragmented its
// arenas; mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Generate(args) => generate(args),
        Command::Replay(args) => replay(args),
        Command::Ingest(args) => ingest_service(args),
        Command::Bench(args) => bench(args),
        Command::Evaluate(args) => evaluate(args),
        Command::Batch(args) => stop_flag().and_then(|stop| nightly::batch_command(args, stop)),
        Command::Sql(args) => nightly::sql_command(args),
        Command::Serve(args) => serve(args),
        Command::Query(args) => query::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{elapsed_precise}} [{{bar:32}}] {{human_pos}}/{{human_len}} {what} ({{per_sec}}, eta {{eta}}) {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let cfg = args.shop.config()?;
    let bar = progress_bar(0, "records");
    let started = Instant::now();
    let manifest = producer::dataset::write(&cfg, &args.out, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("writing the dataset to {}", args.out.display()))?;
    bar.finish_and_clear();
    println!(
        "Wrote {} records ({:.1} MiB) to {} in {:.1} s.",
        manifest.records,
        manifest.bytes as f64 / (1 << 20) as f64,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", manifest.shape);
    Ok(())
}

/// Opens the event log the flags ask for.
fn open_log(args: &LogArgs, fresh: bool) -> anyhow::Result<Arc<dyn EventLog>> {
    match &args.kafka_brokers {
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
            Ok(Arc::new(KafkaLog::new(brokers, markers)))
        }
        None => {
            let dir = args.data_dir.join("log");
            if fresh && dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
            Ok(Arc::new(EmbeddedLog::open_with(&dir, args.durability())?))
        }
    }
}

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: the user really wants out.
            std::process::exit(130);
        }
        eprintln!("\nStopping after the current batch (Ctrl-C again to quit at once)...");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let source = match &args.dataset {
        Some(dir) => producer::replay::Source::Dataset(
            producer::dataset::Dataset::open(dir)
                .with_context(|| format!("opening the dataset {}", dir.display()))?,
        ),
        None => producer::replay::Source::Shop(args.shop.config()?),
    };
    if args.fresh {
        // Everything embedded goes: a log started over with old stores or an
        // old aggregator checkpoint would skip or double-count events.
        pipeline::remove_embedded(&args.log)?;
    }
    // Opened on a background-priority thread: the log's store workers it
    // starts yield to lookups (see `pipeline::yield_to_lookups`).
    let log = pipeline::in_background(|| open_log(&args.log, args.fresh))??;
    match &source {
        producer::replay::Source::Shop(cfg) => {
            tracing::info!(log = %log.describe(), seed = cfg.seed, sessions = cfg.sessions, "Replaying the shop.")
        }
        producer::replay::Source::Dataset(d) => {
            tracing::info!(log = %log.describe(), dataset = %d.id().dir, records = d.total(), "Replaying a dataset.")
        }
    }
    let stop = stop_flag()?;
    let _metrics = pipeline::start_metrics(args.log.metrics.as_deref())?;
    // Topics exist before any consumer subscribes.
    log.ensure_topics(&producer::replay::topic_specs(args.log.partitions.max(1)))?;
    // The API binds first, so a taken --http address fails before any work.
    let aggregator_stop = Arc::new(AtomicBool::new(false));
    let mut aggregator = if args.publish_only {
        None
    } else {
        let handle = pipeline::start_aggregator(
            log.clone(),
            &args.log,
            &args.aggregator,
            aggregator_stop.clone(),
        )?;
        println!("Lookup API on http://{} (e.g. /v1/products/prod_00001/bought-together, /v1/users/user_000001/engagement, /metrics).", handle.addr);
        // Everything this thread does and starts from here on (publish,
        // ingest, the stores, the batch) gives way to lookups.
        pipeline::yield_to_lookups();
        Some(handle)
    };
    let ingest_stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(ingest::IngestStats::default());
    let (stores, workers) = if args.publish_only {
        (None, Vec::new())
    } else {
        let (stores, workers) = pipeline::start_ingest(
            log.clone(),
            &args.log,
            &args.ingest,
            stats.clone(),
            ingest_stop.clone(),
        )?;
        (Some(stores), workers)
    };
    // The nightly batch: after each simulated midnight whose events are all
    // stored, snapshot and report through that day.
    let batch_cfg = args.report.config(&args.log.data_dir)?;
    let nightly_day = Arc::new(std::sync::Mutex::new(None::<chrono::NaiveDate>));
    let nightly = match &stores {
        Some(s) if !args.no_batch && !args.no_nightly => {
            let stats = stats.clone();
            let partitions = args.log.partitions.max(1);
            let shown = nightly_day.clone();
            Some(nightly::Nightly::start(
                s.clone(),
                batch_cfg.clone(),
                move || {
                    let wm = stats.low_watermark_ms(partitions)?;
                    let t = chrono::DateTime::from_timestamp_millis(wm)?.naive_utc();
                    t.date().pred_opt()
                },
                move |o| {
                    *shown.lock().unwrap_or_else(|e| e.into_inner()) = o.through;
                },
            ))
        }
        _ => None,
    };
    let nightly_msg = move || match *nightly_day.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(d) => format!("; report through {d}"),
        None => String::new(),
    };
    let opts = producer::replay::ReplayOptions {
        speed: args.speed,
        batch: args.batch.max(1),
        partitions: args.log.partitions.max(1),
    };
    let bar = progress_bar(0, "events");
    // Per-stage rates for the summary: what was published, ingested and
    // aggregated, sampled as the replay runs.
    let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let resumed = producer::replay::published_before(log.as_ref(), &source).unwrap_or(0);
    let clock = {
        let (published, stats) = (published.clone(), stats.clone());
        let applied = aggregator.as_ref().map(|a| a.stats.clone());
        stages::StageClock::start(vec!["publish", "ingest", "aggregator"], move || {
            vec![
                published.load(Ordering::Relaxed),
                stats.snapshot().consumed,
                applied
                    .as_ref()
                    .map_or(0, |a| a.applied.load(Ordering::Relaxed)),
            ]
        })
    };
    // Day n of the shop's days; a dataset shows dates only.
    let days = match &source {
        producer::replay::Source::Shop(cfg) => Some((cfg.start_date, cfg.days)),
        producer::replay::Source::Dataset(_) => None,
    };
    let ingest_msg = |s: &ingest::StatsSnapshot| {
        format!(
            "ingested {}, dead letters {}{}",
            s.consumed,
            s.dead_total(),
            nightly_msg()
        )
    };
    let result = producer::replay::run(&source, log.as_ref(), &opts, &stop, |p| {
        bar.set_length(p.total);
        bar.set_position(p.published);
        published.store(p.published.saturating_sub(resumed), Ordering::Relaxed);
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
        bar.set_message(format!("{when}; {}", ingest_msg(&stats.snapshot())));
    });
    // Let ingest catch up unless stopping early; then stop it.
    if result.as_ref().is_ok_and(|s| !s.interrupted) && stores.is_some() {
        wait_caught_up(
            log.as_ref(),
            &args.ingest.ingest_group,
            &ingest::worker::INPUT_TOPICS,
            &stop,
            || workers.iter().all(|w| w.is_finished()),
            |lag| {
                bar.set_message(format!(
                    "catching up: {lag} left; {}",
                    ingest_msg(&stats.snapshot())
                ))
            },
        )?;
    }
    tracing::debug!("Ingest caught up.");
    ingest_stop.store(true, Ordering::SeqCst);
    let joined = pipeline::join_all(workers);
    tracing::debug!("Ingest workers stopped.");
    let nightly_result = nightly.map(|n| {
        bar.set_message("waiting for the nightly batch to finish its run");
        let r = n.finish();
        tracing::debug!("Nightly batch stopped.");
        r
    });
    // The aggregator catches up too, then checkpoints and stops.
    if let Some(a) = aggregator.as_mut() {
        if result.as_ref().is_ok_and(|s| !s.interrupted) {
            wait_caught_up(
                log.as_ref(),
                &args.aggregator.aggregator_group,
                &aggregator::runner::INPUT_TOPICS,
                &stop,
                || a.runner_finished(),
                |lag| bar.set_message(format!("aggregator catching up: {lag} left")),
            )?;
        }
        tracing::debug!("Aggregator caught up.");
        aggregator_stop.store(true, Ordering::SeqCst);
        a.join_runner()?;
        tracing::debug!("Aggregator stopped (final checkpoint written).");
    }
    bar.finish_and_clear();
    let summary = result?;
    joined?;
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let interrupted = summary.interrupted || stop.load(Ordering::Relaxed);
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
    if let Some(stores) = &stores {
        print_ingest_summary(&stats.snapshot(), stores)?;
    }
    if let Some(r) = nightly_result {
        r.context("the nightly batch")?;
    }
    // The last run covers everything stored, the final day included.
    let mut final_batch = None;
    if let (Some(stores), false, false) = (&stores, args.no_batch, interrupted) {
        let spinner = ProgressBar::new_spinner();
        spinner.set_message("final batch: snapshot, analytics, CLV, report");
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        let started = Instant::now();
        let outcome = batch::run(stores.docs.as_ref(), &stores.sessions, &batch_cfg);
        final_batch = Some(started.elapsed().as_secs_f64());
        spinner.finish_and_clear();
        nightly::print_outcome(&outcome.context("the final batch")?);
    }
    let rows = clock.finish();
    if !rows.is_empty() {
        print!("Stages (events from this run):\n{}", stages::format(&rows));
        if let Some(secs) = final_batch {
            println!(
                "  final batch {secs:.1} s; peak RSS of the run {} MiB.",
                stages::peak_rss_kb() / 1024
            );
        }
    }
    if let Some(a) = aggregator {
        print_aggregator_summary(&a);
        if args.aggregator.keep_serving && !interrupted {
            println!("Serving lookups on http://{} until Ctrl-C.", a.addr);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        a.shutdown();
    }
    if interrupted {
        println!("Run the same command again to resume where it stopped.");
    }
    Ok(())
}

/// Waits until `group` has consumed everything in `topics`, the user stops,
/// or its consumers have `ended`; `show` gets the lag each time round.
fn wait_caught_up(
    log: &dyn EventLog,
    group: &str,
    topics: &[&str],
    stop: &AtomicBool,
    ended: impl Fn() -> bool,
    mut show: impl FnMut(u64),
) -> anyhow::Result<()> {
    loop {
        let lag = log.lag(group, topics)?;
        show(lag);
        if lag == 0 || stop.load(Ordering::Relaxed) || ended() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn print_aggregator_summary(a: &pipeline::AggregatorHandle) {
    use aggregator::cooccur::Span;
    let m = a.model.read().unwrap_or_else(|e| e.into_inner());
    let (bought, viewed) = m.window_pairs();
    println!(
        "Aggregator: {} events applied by this run, {} late; {} bought-together and {} viewed-together pairs in the window.",
        a.stats.applied.load(Ordering::Relaxed),
        a.stats.late.load(Ordering::Relaxed),
        bought,
        viewed
    );
    println!(
        "Frequently bought together (best-sellers of the window, top partners by {}, as the API ranks them):",
        a.ranking.name()
    );
    for (p, n) in m.best_sellers(3, Span::Window) {
        let partners: Vec<String> = m
            .bought_together(p, 3, a.ranking, Span::Window)
            .iter()
            .map(|x| {
                format!(
                    "{} (x{}, LLR {:.0})",
                    schemas::ids::product_id(x.item),
                    x.score.count,
                    x.score.llr
                )
            })
            .collect();
        println!(
            "  {} (in {} baskets): {}",
            schemas::ids::product_id(p),
            n,
            partners.join(", ")
        );
    }
}

fn print_ingest_summary(
    s: &ingest::StatsSnapshot,
    stores: &pipeline::Stores,
) -> anyhow::Result<()> {
    println!(
        "Ingested by this run: {} records: {} sessions, {} transactions ({} new), {} catalog records; {} dead letters{}.",
        s.consumed,
        s.sessions,
        s.transactions,
        s.new_transactions,
        s.catalog,
        s.dead_total(),
        if s.dead_letters.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.dead_letters.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
        }
    );
    let c = stores.docs.counts()?;
    println!(
        "Stored: {} users, {} products, {} categories, {} transactions in the {}; sessions in the {}.",
        c.users,
        c.products,
        c.categories,
        c.transactions,
        stores.docs.describe(),
        stores.sessions.inner().describe()
    );
    Ok(())
}

fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    let log = open_log(&args.log, false)?;
    let stop = stop_flag()?;
    let _metrics = pipeline::start_metrics(args.log.metrics.as_deref())?;
    log.ensure_topics(&producer::replay::topic_specs(args.log.partitions.max(1)))?;
    let runner_stop = Arc::new(AtomicBool::new(false));
    let mut handle = pipeline::start_aggregator(
        log.clone(),
        &args.log,
        &args.aggregator,
        runner_stop.clone(),
    )?;
    println!(
        "Aggregator reading {}; lookup API on http://{} until Ctrl-C.",
        log.describe(),
        handle.addr
    );
    let started = Instant::now();
    // When the count of applied events last moved: the throughput below is
    // over the busy time, not the idle wait at the end.
    let (mut last_applied, mut busy_until) = (0u64, started);
    let mut idle_for = 0u64;
    // Ticks of 100 ms: the busy time below is measured to a tenth of a
    // second (the whole log takes a few seconds).
    while !stop.load(Ordering::Relaxed) && !handle.runner_finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let applied = handle.stats.applied.load(Ordering::Relaxed);
        if applied != last_applied {
            (last_applied, busy_until) = (applied, Instant::now());
        }
        if let Some(idle) = args.until_idle {
            let lag = log.lag(
                &args.aggregator.aggregator_group,
                &aggregator::runner::INPUT_TOPICS,
            )?;
            idle_for = if lag == 0 { idle_for + 1 } else { 0 };
            if idle_for >= idle.saturating_mul(10) {
                break;
            }
        }
    }
    runner_stop.store(true, Ordering::SeqCst);
    handle.join_runner()?;
    let applied = handle.stats.applied.load(Ordering::Relaxed);
    let busy = busy_until.duration_since(started).as_secs_f64().max(1e-3);
    println!(
        "Applied {applied} events in {busy:.1} s ({:.0} events/s); state {:.1} MiB, checkpoint {:.1} MiB.",
        applied as f64 / busy,
        aggregator::metrics::STATE_BYTES.get() as f64 / f64::from(1u32 << 20),
        aggregator::metrics::CHECKPOINT_BYTES.get() as f64 / f64::from(1u32 << 20)
    );
    print_aggregator_summary(&handle);
    handle.shutdown();
    Ok(())
}

fn ingest_service(args: IngestArgs) -> anyhow::Result<()> {
    let log = open_log(&args.log, false)?;
    let stop = stop_flag()?;
    let _metrics = pipeline::start_metrics(args.log.metrics.as_deref())?;
    let stats = Arc::new(ingest::IngestStats::default());
    let (stores, workers) = pipeline::start_ingest(
        log.clone(),
        &args.log,
        &args.ingest,
        stats.clone(),
        stop.clone(),
    )?;
    tracing::info!(log = %log.describe(), docs = %stores.docs.describe(), workers = args.ingest.ingest_workers, "Ingest started.");
    let mut idle_since = Instant::now();
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let consumed = stats.snapshot().consumed;
        if consumed != last {
            last = consumed;
            idle_since = Instant::now();
        }
        if let Some(idle) = args.until_idle {
            let inputs = ingest::worker::INPUT_TOPICS;
            if idle_since.elapsed().as_secs() >= idle
                && log.lag(&args.ingest.ingest_group, &inputs)? == 0
            {
                break;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    pipeline::join_all(workers)?;
    print_ingest_summary(&stats.snapshot(), &stores)
}

/// Latency figures of one query kind.
fn report_latencies(what: &str, mut micros: Vec<u128>) {
    micros.sort_unstable();
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let total: u128 = micros.iter().sum();
    println!(
        "{what:<28} n={:<6} median {:>6} us  p99 {:>6} us  max {:>7} us  ({:.0} lookups/s on one thread)",
        micros.len(),
        at(0.5),
        at(0.99),
        micros.last().copied().unwrap_or(0),
        micros.len() as f64 / (total as f64 / 1e6).max(1e-9)
    );
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let stores = pipeline::open_stores(&args.log)?;
    let users = args.users.max(1);
    // A fixed stride walks the users in a scattered, repeatable order.
    let pick = |i: usize| schemas::ids::user_id((i as u64 * 7_919 % u64::from(users)) as u32 + 1);
    let (mut sessions, mut profiles, mut txns) = (Vec::new(), Vec::new(), Vec::new());
    let mut found = 0usize;
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
        chrono::NaiveDate::from_ymd_opt(2100, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
    );
    for i in 0..args.lookups {
        let u = pick(i);
        let t = Instant::now();
        found += stores.sessions.last_sessions(&u, 10)?.len();
        sessions.push(t.elapsed().as_micros());
        let t = Instant::now();
        stores.docs.user(&u)?;
        profiles.push(t.elapsed().as_micros());
        let t = Instant::now();
        stores.docs.user_transactions(&u, from, to)?;
        txns.push(t.elapsed().as_micros());
    }
    println!(
        "{} against the {} and the {}:",
        args.lookups,
        stores.sessions.inner().describe(),
        stores.docs.describe()
    );
    report_latencies("last 10 sessions of a user", sessions);
    report_latencies("user profile + summary", profiles);
    report_latencies("all transactions of a user", txns);
    println!("({} sessions returned in all)", found);
    Ok(())
}

fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    use aggregator::processor::{Aggregator, AggregatorConfig};
    let cfg = args.shop.config()?;
    if args.train_days == 0 || args.train_days >= cfg.days {
        anyhow::bail!(
            "--train-days must be between 1 and --days - 1 ({})",
            cfg.days - 1
        );
    }
    let started = Instant::now();
    let catalog = std::sync::Arc::new(producer::Catalog::generate(&cfg));
    let split = cfg.start_date.and_hms_opt(0, 0, 0).unwrap_or_default()
        + chrono::Duration::days(i64::from(args.train_days));
    let mut model = Aggregator::new(AggregatorConfig {
        window_days: i64::from(cfg.days),
        ..AggregatorConfig::default()
    });
    let mut test: Vec<Vec<u32>> = Vec::new();
    let mut offsets: std::collections::HashMap<&'static str, u64> =
        std::collections::HashMap::new();
    let stream = producer::EventStream::new(&cfg, catalog.clone());
    let bar = progress_bar(stream.total(), "events");
    for (i, ev) in stream.enumerate() {
        if i % 50_000 == 0 {
            bar.set_position(i as u64);
        }
        if ev.stream == producer::Stream::Catalog {
            continue;
        }
        let topic = ev.stream.topic();
        if ev.time < split {
            let o = offsets.entry(topic).or_insert(0);
            model.apply(topic, 0, *o, &ev.payload());
            *o += 1;
        } else if ev.stream == producer::Stream::Transactions {
            if let Ok(t) = schemas::decode_transaction(&ev.payload()) {
                test.push(
                    t.items
                        .iter()
                        .filter_map(|i| schemas::ids::parse_product_id(&i.product_id))
                        .collect(),
                );
            }
        }
    }
    bar.finish_and_clear();
    let complements: std::collections::HashMap<u32, Vec<u32>> = catalog
        .complements
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .map(|(p, c)| (p as u32 + 1, c.iter().map(|x| x + 1).collect()))
        .collect();
    let multi = test
        .iter()
        .filter(|b| b.iter().collect::<std::collections::HashSet<_>>().len() >= 2)
        .count();
    let results = aggregator::evaluate::evaluate(&model, &test, &complements, args.k);
    println!(
        "Trained on days 1-{} ({} sessions and transactions); tested on {} held-out baskets with 2+ items from days {}-{} ({:.1} s).",
        args.train_days,
        offsets.values().sum::<u64>(),
        multi,
        args.train_days + 1,
        cfg.days,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<16} {:>16} {:>34}",
        "ranking",
        format!("hit rate @{}", args.k),
        format!("planted complements in top {}", args.k)
    );
    for q in results {
        println!(
            "{:<16} {:>15.1}% {:>33.1}%",
            q.name,
            q.hit_rate * 100.0,
            q.planted_recall * 100.0
        );
    }
    Ok(())
}
