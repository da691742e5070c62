//! The batch inside the replay, after each simulated midnight, and what a
//! batch run prints.

use crate::pipeline::Stores;
use batch::{BatchConfig, BatchOutcome};
use chrono::NaiveDate;
use stage::Shutdown;
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

/// Whether a nightly run through `day` is worth starting, `left` being
/// ingest's estimated time to the end of the replay: not if it is predicted
/// to take longer. Each run repeats the analytics over every day so far,
/// so its length is predicted from the last run's (`last`: its length and
/// day), scaled by the days covered since `first`. Without a last run or an
/// estimate, it is.
fn worth_running(
    day: NaiveDate,
    first: NaiveDate,
    last: Option<(Duration, NaiveDate)>,
    left: Option<Duration>,
) -> bool {
    let (Some((took, last_day)), Some(left)) = (last, left) else {
        return true;
    };
    let days = |to: NaiveDate| ((to - first).num_days() + 1).max(1) as f64;
    took.mul_f64(days(day) / days(last_day)) <= left
}

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
    /// after a run of `d` seconds it rests `4d` before the next, so it never
    /// takes more than a fifth of the time (the final batch covers the rest).
    /// Stopping `stop` cancels a run in progress ([`Nightly::finish`]).
    ///
    /// A run is also left out when it would end after ingest does
    /// (`time_left`: ingest's estimated time to the end of the replay, if
    /// known), as [`worth_running`] predicts: the final batch repeats it a
    /// few seconds later, and it would take CPU from ingest's last stretch.
    pub fn start(
        stores: Stores,
        cfg: BatchConfig,
        complete_day: impl Fn() -> Option<NaiveDate> + Send + 'static,
        time_left: impl Fn() -> Option<Duration> + Send + 'static,
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
                // The first complete day seen, and the last run's length
                // and day: what the next run's length is predicted from.
                let mut first: Option<NaiveDate> = None;
                let mut last_run: Option<(Duration, NaiveDate)> = None;
                while !flag.is_stopped() {
                    let day = complete_day();
                    if first.is_none() {
                        first = day;
                    }
                    match day {
                        Some(day)
                            if done.is_none_or(|d| day > d)
                                && std::time::Instant::now() >= rest_until
                                && worth_running(
                                    day,
                                    first.unwrap_or(day),
                                    last_run,
                                    time_left(),
                                ) =>
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
                            last_run = Some((started.elapsed(), day));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, d).expect("date")
    }

    #[test]
    fn a_run_that_would_outlast_ingest_is_left_to_the_final_batch() {
        let secs = Duration::from_secs;
        // The last run covered days 1-10 in 2 s: through day 30 (three
        // times the days) it is predicted to take 6 s.
        let last = Some((secs(2), day(10)));
        assert!(worth_running(day(30), day(1), last, Some(secs(6))));
        assert!(!worth_running(day(30), day(1), last, Some(secs(5))));
        // Through day 11: 2.2 s.
        assert!(worth_running(day(11), day(1), last, Some(secs(3))));
        assert!(!worth_running(day(11), day(1), last, Some(secs(2))));
        // No run yet, or no estimate of the time left: it runs.
        assert!(worth_running(day(30), day(1), None, Some(secs(0))));
        assert!(worth_running(day(30), day(1), last, None));
    }
}
