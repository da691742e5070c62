//! The `ecomflow` binary: thin wiring of the stage crates behind one CLI.

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, GenerateArgs, LogArgs, ReplayArgs};
use eventlog::embedded::{Durability, EmbeddedLog};
use eventlog::kafka::KafkaLog;
use eventlog::EventLog;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Generate(args) => generate(args),
        Command::Replay(args) => replay(args),
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
            let durability = if args.fsync {
                Durability::Machine
            } else {
                Durability::Process
            };
            Ok(Arc::new(EmbeddedLog::open_with(&dir, durability)?))
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
    let cfg = args.shop.config()?;
    let log = open_log(&args.log, args.fresh)?;
    tracing::info!(log = %log.describe(), seed = cfg.seed, sessions = cfg.sessions, "Replaying the shop.");
    let stop = stop_flag()?;
    let opts = producer::replay::ReplayOptions {
        speed: args.speed,
        batch: args.batch.max(1),
        partitions: args.log.partitions.max(1),
    };
    let bar = progress_bar(0, "events");
    let start_day = cfg.start_date;
    let days = cfg.days;
    let summary = producer::replay::run(&cfg, log.as_ref(), &opts, &stop, |p| {
        bar.set_length(p.total);
        bar.set_position(p.published);
        let day = (p.event_time.date() - start_day).num_days() + 1;
        bar.set_message(format!(
            "day {}/{} ({})",
            day.clamp(1, i64::from(days)),
            days,
            p.event_time.date()
        ));
    })?;
    bar.finish_and_clear();
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let state = if summary.interrupted {
        "Stopped"
    } else {
        "Replayed"
    };
    println!(
        "{state}: {} of {} events published ({} by this run in {:.1} s, {:.0} events/s) to the {}.",
        summary.resumed_from + summary.published,
        summary.total,
        summary.published,
        secs,
        summary.published as f64 / secs,
        log.describe()
    );
    if summary.interrupted {
        println!("Run the same command again to resume where it stopped.");
    }
    Ok(())
}
