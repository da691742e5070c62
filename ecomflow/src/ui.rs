//! What the commands print: progress (a bar on a terminal, a log line
//! every few seconds without one), counts and rates for people, and the
//! stages' summaries.

use crate::pipeline::{AggregatorHandle, Stores};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between progress lines when stderr is not a terminal
/// (`--progress-every`); set once at start.
static HEADLESS_EVERY_MS: AtomicU64 = AtomicU64::new(10_000);

/// Sets how often headless progress lines are logged.
pub fn set_progress_every(secs: u64) {
    HEADLESS_EVERY_MS.store(secs.saturating_mul(1_000), Ordering::Relaxed);
}

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second for people: `950/s`, `12.3k/s`, `1.25M/s`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        "-".to_string()
    } else if per_sec < 1_000.0 {
        format!("{per_sec:.0}/s")
    } else if per_sec < 1_000_000.0 {
        format!("{:.1}k/s", per_sec / 1_000.0)
    } else {
        format!("{:.2}M/s", per_sec / 1_000_000.0)
    }
}

/// Progress of a long piece of work: a bar when stderr is a terminal,
/// otherwise (Docker logs, systemd, CI) a `tracing` line every
/// `--progress-every` seconds with the count, the rate and the message.
pub struct Progress {
    bar: ProgressBar,
    what: String,
    headless: Option<Mutex<Headless>>,
}

struct Headless {
    started: Instant,
    last_line: Instant,
    last_pos: u64,
    pos: u64,
    len: u64,
    msg: String,
}

impl Progress {
    /// Progress over `total` `what`s (set the length later when unknown).
    pub fn new(total: u64, what: &str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        let template = format!(
            "{{elapsed_precise}} [{{bar:32}}] {{pos_sep}}/{{len_sep}} {what} ({{rate}}, eta {{eta}}) {{msg}}"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "pos_sep",
                    |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&count(s.pos()));
                    },
                )
                .with_key(
                    "len_sep",
                    |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&count(s.len().unwrap_or(0)));
                    },
                )
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate(s.per_sec()));
                })
                .progress_chars("=> "),
        );
        let now = Instant::now();
        Progress {
            bar,
            what: what.to_string(),
            headless: (!terminal).then(|| {
                Mutex::new(Headless {
                    started: now,
                    last_line: now,
                    last_pos: 0,
                    pos: 0,
                    len: total,
                    msg: String::new(),
                })
            }),
        }
    }

    /// A spinner for work of unknown length: on a terminal it turns; without
    /// one, `msg` is logged once.
    pub fn spinner(msg: &str) -> Self {
        let p = Progress::new(0, "");
        if p.headless.is_some() {
            tracing::info!("{msg}");
        } else {
            p.bar.set_style(ProgressStyle::default_spinner());
            p.bar.set_message(msg.to_string());
            p.bar.enable_steady_tick(Duration::from_millis(200));
        }
        p
    }

    /// Sets the total.
    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
        self.update(|h| h.len = len);
    }

    /// Sets how many are done.
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.update(|h| h.pos = pos);
    }

    /// Sets the text after the counts.
    pub fn set_message(&self, msg: impl Into<String>) {
        let msg: String = msg.into();
        self.update(|h| h.msg.clone_from(&msg));
        self.bar.set_message(msg);
    }

    /// Removes the bar (a terminal) or logs nothing more (headless).
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }

    fn update(&self, f: impl FnOnce(&mut Headless)) {
        let Some(h) = &self.headless else { return };
        let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut h);
        let every = Duration::from_millis(HEADLESS_EVERY_MS.load(Ordering::Relaxed));
        let now = Instant::now();
        let since = now.duration_since(h.last_line);
        if since < every {
            return;
        }
        let per_sec = h.pos.saturating_sub(h.last_pos) as f64 / since.as_secs_f64().max(1e-9);
        let percent = if h.len > 0 {
            format!(" ({:.1}%)", h.pos as f64 * 100.0 / h.len as f64)
        } else {
            String::new()
        };
        tracing::info!(
            done = h.pos,
            total = h.len,
            per_sec = per_sec.round(),
            elapsed_secs = h.started.elapsed().as_secs(),
            "progress: {}/{} {}{percent}, {}; {}",
            count(h.pos),
            count(h.len),
            self.what,
            rate(per_sec),
            h.msg
        );
        h.last_line = now;
        h.last_pos = h.pos;
    }
}

/// What ingest did in this run, and what the stores hold.
pub fn print_ingest_summary(s: &ingest::StatsSnapshot, stores: &Stores) -> anyhow::Result<()> {
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

/// What the aggregator applied, and the window's best-sellers with their
/// top partners as the API ranks them.
pub fn print_aggregator_summary(a: &AggregatorHandle) {
    use aggregator::choices::{Relation, Span};
    let m = a.model.read();
    let (bought, viewed) = m.window_pairs();
    println!(
        "Aggregator: {} events applied by this run, {} late; {} bought-together and {} viewed-together pairs in the window.",
        a.stats.applied.load(Ordering::Relaxed),
        a.stats.late.load(Ordering::Relaxed),
        bought,
        viewed
    );
    let fresh = &aggregator::metrics::FRESHNESS;
    if let (Some(p50), Some(p99)) = (
        telemetry::histogram_quantile(fresh, 0.5),
        telemetry::histogram_quantile(fresh, 0.99),
    ) {
        println!(
            "  Freshness, from publish to lookups: p50 {:.1} ms, p99 {:.1} ms over {} events (ecomflow_aggregator_freshness_seconds; estimated within its buckets).",
            p50 * 1e3,
            p99 * 1e3,
            count(fresh.get_sample_count())
        );
    }
    let (named_products, named_users) = m.named_ids();
    if named_products + named_users > 0 {
        println!(
            "  Ids of the shop's own form: {named_products} products and {named_users} users, numbered by name in the window (ecomflow_aggregator_named_ids)."
        );
    }
    for (relation, pairs, baskets) in [
        (Relation::Bought, bought, "transactions"),
        (Relation::Viewed, viewed, "viewing sessions"),
    ] {
        if pairs == 0 && m.holds_baskets(relation) {
            println!(
                "  warning: the window holds {baskets} but no {} pair: every basket held one product (the stores and the nightly report have the same baskets).",
                relation.together()
            );
        }
    }
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
                    m.product_id(x.item),
                    x.score.count,
                    x.score.llr
                )
            })
            .collect();
        println!(
            "  {} (in {} baskets): {}",
            m.product_id(p),
            n,
            partners.join(", ")
        );
    }
}
