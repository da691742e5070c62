//! Per-stage rates of a replay: a thread samples each stage's event count
//! (and the process's peak RSS) every 50 ms; at the end each stage gets
//! its events, seconds, events/s, and the rate over its first and last
//! tenth of events, which shows whether it slowed down as the stores grew.

use stage::Shutdown;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(50);

/// One sample: seconds since the start, each stage's count, peak RSS.
#[derive(Debug, Clone)]
struct Sample {
    secs: f64,
    counts: Vec<u64>,
    peak_rss_kb: u64,
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    /// Stage name.
    pub name: &'static str,
    /// Events it handled.
    pub events: u64,
    /// Seconds from the clock's start (as the stages start) to its last
    /// event.
    pub secs: f64,
    /// Events per second over that time.
    pub rate: f64,
    /// Events per second over its first tenth of events.
    pub first_tenth: f64,
    /// Events per second over its last tenth of events; None when the
    /// last tenth arrived within one sample (too short to time).
    pub last_tenth: Option<f64>,
    /// The process's peak RSS when the stage finished, in MiB.
    pub peak_rss_mib: u64,
}

/// The process's peak resident set so far (`VmHWM`), in KiB; 0 where
/// `/proc` does not say.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples stage counters on a thread until [`StageClock::finish`].
pub struct StageClock {
    names: Vec<&'static str>,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Shutdown,
    handle: Option<JoinHandle<()>>,
}

impl StageClock {
    /// Starts sampling `read()` (one count per name) now.
    pub fn start(
        names: Vec<&'static str>,
        read: impl Fn() -> Vec<u64> + Send + 'static,
    ) -> StageClock {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop = Shutdown::new();
        let (s, flag) = (samples.clone(), stop.clone());
        let started = Instant::now();
        let take = move || Sample {
            secs: started.elapsed().as_secs_f64(),
            counts: read(),
            peak_rss_kb: peak_rss_kb(),
        };
        let handle = std::thread::Builder::new()
            .name("stage-clock".into())
            .spawn(move || loop {
                let done = flag.is_stopped();
                let sample = take();
                s.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
                if done {
                    return;
                }
                // A sample every EVERY; the last one at once on finish.
                flag.wait_timeout(EVERY);
            })
            .ok();
        StageClock {
            names,
            samples,
            stop,
            handle,
        }
    }

    /// Takes a last sample and returns each stage's figures (stages that
    /// handled no event are left out).
    pub fn finish(mut self) -> Vec<StageRow> {
        self.stop.stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| row(name, i, &samples))
            .collect()
    }
}

fn row(name: &'static str, i: usize, samples: &[Sample]) -> Option<StageRow> {
    let count = |s: &Sample| s.counts.get(i).copied().unwrap_or(0);
    let total = samples.last().map(count).filter(|n| *n > 0)?;
    // Every stage is timed from the clock's start (a sample's `secs`):
    // counts arrive a chunk at a time (a publisher's flush, an ingest
    // commit), so timing from the sample before a stage's first count would
    // leave out the work on its first chunk.
    let reach = |n: u64| samples.iter().find(|s| count(s) >= n);
    let end = reach(total)?;
    let tenth = reach(total.div_ceil(10))?;
    let nine = reach(total - total / 10)?;
    let rate = |events: u64, secs: f64| events as f64 / secs.max(EVERY.as_secs_f64());
    Some(StageRow {
        name,
        events: total,
        secs: end.secs,
        rate: rate(total, end.secs),
        first_tenth: rate(count(tenth), tenth.secs),
        last_tenth: (end.secs > nine.secs && total > count(nine))
            .then(|| rate(total - count(nine), end.secs - nine.secs)),
        peak_rss_mib: end.peak_rss_kb / 1024,
    })
}

/// The table of [`StageRow`]s as printed after a replay.
pub fn format(rows: &[StageRow]) -> String {
    let mut out = format!(
        "  {:<12} {:>10} {:>8} {:>10} {:>12} {:>11} {:>9}\n",
        "stage", "events", "seconds", "events/s", "first tenth", "last tenth", "peak RSS"
    );
    let per_sec = |r: f64| crate::ui::rate(r).trim_end_matches("/s").to_string();
    for r in rows {
        out.push_str(&format!(
            "  {:<12} {:>10} {:>8.1} {:>10} {:>12} {:>11} {:>6} MiB\n",
            r.name,
            crate::ui::count(r.events),
            r.secs,
            per_sec(r.rate),
            per_sec(r.first_tenth),
            r.last_tenth.map_or_else(|| "-".to_string(), per_sec),
            r.peak_rss_mib
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64, n: u64) -> Sample {
        Sample {
            secs,
            counts: vec![n],
            peak_rss_kb: 2048 * (1 + n / 100),
        }
    }

    #[test]
    fn rates_over_the_first_and_last_tenth() {
        // The first chunk of 10 counted at 2 s; 90 by 4 s, 100 by 9 s:
        // timed from the start, the wait for the first chunk included.
        let samples = vec![
            s(0.5, 0),
            s(1.0, 0),
            s(2.0, 10),
            s(3.0, 50),
            s(4.0, 90),
            s(9.0, 100),
        ];
        let r = row("ingest", 0, &samples).expect("a row");
        assert_eq!(r.events, 100);
        assert!((r.secs - 9.0).abs() < 1e-9);
        assert!((r.rate - 100.0 / 9.0).abs() < 1e-9);
        // 10 events in the first 2 s; the last 10 in 5 s.
        assert!((r.first_tenth - 5.0).abs() < 1e-9);
        assert!(r.last_tenth.is_some_and(|t| (t - 2.0).abs() < 1e-9));
        assert_eq!(r.peak_rss_mib, 4);
        assert!(row("idle", 0, &[s(1.0, 0)]).is_none());
        // A stage whose last tenth arrived within one sample: not timed ("-"),
        // never a rate of 0.
        let short = row("aggregator", 0, &[s(0.1, 0), s(0.2, 1_000)]).expect("a row");
        assert_eq!(short.last_tenth, None);
        let table = format(&[short, r]);
        assert!(table.contains("  aggregator        1,000"), "{table}");
        assert!(
            table.lines().nth(1).is_some_and(|l| l.contains(" - ")),
            "{table}"
        );
    }

    #[test]
    fn counts_and_rates_for_people() {
        use crate::ui::{count, rate};
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(2_515_025), "2,515,025");
        assert_eq!(rate(950.4), "950/s");
        assert_eq!(rate(12_345.0), "12.3k/s");
        assert_eq!(rate(1_250_000.0), "1.25M/s");
        assert_eq!(rate(f64::NAN), "-");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kb() > 0);
        }
    }
}
