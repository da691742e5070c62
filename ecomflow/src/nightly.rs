//! The batch inside the replay, after each simulated midnight, and what a
//! batch run prints.

use crate::pipeline::Stores;
use batch::{BatchConfig, BatchOutcome};
use chrono::NaiveDate;
use schemas::Shutdown;
use std::thread::JoinHandle;
use std::time::Duration;

/// Prints what a batch run did: steps with timings, segments, the report.
pub fn print_outcome(o: &BatchOutcome) {
    let through = o
        .through
        .map_or("no data".to_string(), |d| d.format("%Y-%m-%d").to_string());
    println!(
        "Batch through {through}: {} day partitions written ({} rows), {} users' values written back.",
        o.partitions_written, o.rows_written, o.written_back
    );
    let steps: Vec<String> = o
        .steps
        .iter()
        .map(|(name, s)| format!("{name} {s:.1} s"))
        .collect();
    println!("  Steps: {}.", steps.join(", "));
    if !o.findings.segments.is_empty() {
        println!("  Segment   customers   share   avg CLV      revenue   of revenue");
        for s in &o.findings.segments {
            println!(
                "  {:<8} {:>10} {:>6.1}% {:>9.2} {:>12.2} {:>9.1}%",
                s.segment, s.customers, s.share_pct, s.avg_clv, s.revenue, s.revenue_share_pct
            );
        }
    }
    if let Some(p) = &o.prediction {
        for s in &p.scores {
            println!(
                "  Holdout ({} days): {:<40} MAE {:>8.2}, rank correlation {:.3}",
                p.holdout_days, s.model, s.mae, s.rank_correlation
            );
        }
    }
    println!(
        "  Report: {} (charts beside it); snapshot queryable with `ecomflow sql`.",
        o.report.display()
    );
}

/// After a nightly run of `d` seconds, the batch rests `NIGHTLY_REST * d`.
/// Each run repeats the whole analytics over everything snapshotted so far
/// (the snapshot itself only writes new days), so in the main job most of
/// a run beyond the first few is work the final batch does again a few
/// seconds later. With a third of the time (2) the default shop's replay
/// ran the batch four times beside ingest.
const NIGHTLY_REST: u32 = 4;

/// The batch running beside a replay.
pub struct Nightly {
    stop: Shutdown,
    handle: JoinHandle<anyhow::Result<Option<BatchOutcome>>>,
}

impl Nightly {
    /// Starts a thread that, each time the stores hold every event before a
    /// new simulated midnight (`complete_day` says which day that makes
    /// complete), runs the batch through that day. When it falls behind it
    /// runs through the latest complete day, not once per missed day, and
    /// after a run of `d` seconds it rests `2d` before the next, so it never
    /// takes more than a fifth of the time (the final batch covers the rest).
    /// Stopping `stop` cancels a run in progress ([`Nightly::finish`]).
    pub fn start(
        stores: Stores,
        cfg: BatchConfig,
        complete_day: impl Fn() -> Option<NaiveDate> + Send + 'static,
        on_run: impl Fn(&BatchOutcome) + Send + 'static,
        stop: Shutdown,
    ) -> Nightly {
        let flag = stop.clone();
        let mut cfg = cfg;
        cfg.cancel = Some(stop.clone());
        let handle = std::thread::Builder::new()
            .name("nightly-batch".into())
            .spawn(move || {
                let mut done: Option<NaiveDate> = None;
                let mut last = None;
                let mut rest_until = std::time::Instant::now();
                while !flag.is_stopped() {
                    match complete_day() {
                        Some(day)
                            if done.is_none_or(|d| day > d)
                                && std::time::Instant::now() >= rest_until =>
                        {
                            let started = std::time::Instant::now();
                            let mut c = cfg.clone();
                            c.through = Some(day);
                            // Sizes and row counts each night; the final
                            // batch of the replay checksums every day.
                            c.check = batch::snapshot::Check::Quick;
                            let outcome =
                                match batch::run(stores.docs.as_ref(), &stores.sessions, &c) {
                                    Err(batch::BatchError::Cancelled) => break,
                                    other => other?,
                                };
                            on_run(&outcome);
                            // At most a fifth of the time in the batch: a
                            // replay faster than the batch would otherwise
                            // keep a core busy recomputing the report.
                            rest_until =
                                std::time::Instant::now() + started.elapsed() * NIGHTLY_REST;
                            done = Some(day);
                            last = Some(outcome);
                        }
                        // The stored-through time moves with ingest's
                        // batches: looked at again in 250 ms, or at once
                        // when stopped.
                        _ => {
                            flag.wait_timeout(Duration::from_millis(250));
                        }
                    }
                }
                Ok(last)
            });
        let handle = match handle {
            Ok(h) => h,
            Err(e) => std::thread::spawn(move || Err(anyhow::anyhow!("starting the batch: {e}"))),
        };
        Nightly { stop, handle }
    }

    /// Stops: a run in progress stops after the day partitions it is
    /// writing (the final batch does the rest), or finishes its analytics
    /// if it is past the snapshot.
    pub fn finish(self) -> anyhow::Result<Option<BatchOutcome>> {
        self.stop.stop();
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the nightly batch thread panicked"))?
    }
}
