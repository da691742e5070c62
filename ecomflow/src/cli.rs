//! Command-line flags. Every flag has an `ECOMFLOW_*` environment variable;
//! with no flags at all everything runs embedded, in `./ecomflow-data`.

use aggregator::processor::AggregatorConfig;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ingest::IngestConfig;
use producer::ShopConfig;
use std::path::PathBuf;

/// ecomflow: streaming analytics for e-commerce data.
///
/// Generates a deterministic 90-day shop (sessions and transactions),
/// streams it through an event log, and turns it into live and nightly
/// insight. With no flags everything runs in one process on embedded
/// engines under ./ecomflow-data; with --kafka-brokers the log is Kafka.
#[derive(Debug, Parser)]
#[command(name = "ecomflow", version, propagate_version = true)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `ecomflow=debug,eventlog=trace`.
    #[arg(long, global = true, env = "ECOMFLOW_LOG", default_value = "info")]
    pub log: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the shop as newline-delimited JSON files (one per record kind),
    /// with the planted complements and a manifest, and print its shape.
    Generate(GenerateArgs),
    /// Publish the shop's 90 days to the event log in event-time order,
    /// as fast as possible or at --speed, and ingest them into the stores
    /// in the same process. Resumes an interrupted replay.
    Replay(ReplayArgs),
    /// Run ingest workers as a service: consume the event log, write the
    /// stores, dead-letter bad records. Stops on Ctrl-C (or --until-idle).
    Ingest(IngestArgs),
    /// Measure store lookups on ingested data: a user's last 10 sessions,
    /// a user's profile, a user's transactions (median, p99, max).
    Bench(BenchArgs),
    /// Offline quality of "bought together": train on the first days, then
    /// for each later basket ask whether an item's top k holds another item
    /// of the basket; every ranking (count, LLR, cosine, Jaccard, LLR with
    /// minimum support) against best-sellers, and planted complements.
    Evaluate(EvaluateArgs),
    /// The nightly batch: snapshot the stores into Parquet (only days not
    /// yet written), run the shop's analytics as SQL on DataFusion, compute
    /// CLV segments and BG/NBD + Gamma-Gamma predictions, write each user's
    /// segment and CLV back, and write `<data-dir>/report/report.md` with charts.
    Batch(BatchArgs),
    /// Run the aggregator as a service: consume sessions and transactions
    /// from the event log, keep the windows, serve the lookup API on --http,
    /// checkpoint; until Ctrl-C (or --until-idle).
    Serve(ServeArgs),
    /// Run one SQL query on the Parquet snapshot the batch wrote. Tables:
    /// transactions, sessions (both with a "date" column), users, products,
    /// categories, dead_letters; views transaction_items, session_views.
    Sql(SqlArgs),
    /// Ask the document store one of the shop's daily questions: revenue by
    /// category and day, the top customers, the payment-method mix, or a
    /// user's purchase history with product names. On MongoDB each is an
    /// aggregation pipeline the server runs; on the embedded store the same
    /// rows are computed here.
    Query(QueryArgs),
}

/// `ecomflow query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Which question.
    #[arg(value_enum)]
    pub name: QueryName,
    /// Where the stores are (the embedded ones in --data-dir, or
    /// --mongodb-uri).
    #[command(flatten)]
    pub log: LogArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// First day (YYYY-MM-DD) for revenue-by-category; default the first
    /// day with transactions.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD) for revenue-by-category; default the last day
    /// with transactions.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Rows for top-customers, transactions for purchase-history.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
    /// The user of purchase-history (user_000042).
    #[arg(long)]
    pub user: Option<String>,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The questions of `ecomflow query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryName {
    /// Units and revenue (line subtotals, before discounts) per category
    /// and day.
    RevenueByCategory,
    /// The customers who spent most: orders, total spent, last purchase.
    TopCustomers,
    /// Transactions, revenue and share of revenue per payment method.
    PaymentMix,
    /// A user's latest transactions, one row per line item, with product
    /// names (--user).
    PurchaseHistory,
}

/// `ecomflow serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Event log (and --data-dir, where the checkpoint is kept).
    #[command(flatten)]
    pub log: LogArgs,
    /// Aggregator settings.
    #[command(flatten)]
    pub aggregator: AggregatorFlags,
    /// Stop once everything is consumed and nothing new arrived for this
    /// many seconds (for batch-style runs and tests).
    #[arg(long, env = "ECOMFLOW_UNTIL_IDLE")]
    pub until_idle: Option<u64>,
}

/// `ecomflow batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Where the stores are.
    #[command(flatten)]
    pub log: LogArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Batch settings.
    #[command(flatten)]
    pub batch: BatchFlags,
    /// Run again every this many seconds (a nightly schedule for services);
    /// without it, run once and exit.
    #[arg(long, env = "ECOMFLOW_BATCH_EVERY")]
    pub every: Option<u64>,
}

/// Settings of the batch job, shared by `batch` and `replay`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Batch (report)")]
pub struct BatchFlags {
    /// Last day to snapshot (YYYY-MM-DD). Default: everything stored; the
    /// newest day stays open and is rewritten by the next run.
    #[arg(long, env = "ECOMFLOW_THROUGH")]
    pub through: Option<String>,
    /// Share of customers in the VIP segment (highest CLV first).
    #[arg(long, env = "ECOMFLOW_VIP_SHARE", default_value_t = batch::SegmentCuts::default().vip)]
    pub vip_share: f64,
    /// Share of customers in the High segment, after VIP.
    #[arg(long, env = "ECOMFLOW_HIGH_SHARE", default_value_t = batch::SegmentCuts::default().high)]
    pub high_share: f64,
    /// Share of customers in the Medium segment, after High; the rest are Low.
    #[arg(long, env = "ECOMFLOW_MEDIUM_SHARE", default_value_t = batch::SegmentCuts::default().medium)]
    pub medium_share: f64,
    /// Viewing sessions a product needs before it is ranked by conversion.
    #[arg(long, env = "ECOMFLOW_MIN_VIEWS", default_value_t = batch_default().min_views)]
    pub min_views: u64,
    /// Days held out to check the CLV models against what happened.
    #[arg(long, env = "ECOMFLOW_HOLDOUT_DAYS", default_value_t = batch_default().holdout_days,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub holdout_days: i64,
    /// Count the batch's bought- and viewed-together pairs over at most N
    /// distinct products of each basket (the first seen), as the live
    /// aggregator does (it takes 50), so that both count the same pairs.
    /// Default: whole baskets, as the seed's SQL self-join counts them.
    #[arg(long, env = "ECOMFLOW_BASKET_CAP",
          value_parser = clap::value_parser!(u32).range(2..))]
    pub basket_cap: Option<u32>,
    /// Do not write segments and CLV back to the user documents.
    #[arg(long, env = "ECOMFLOW_NO_WRITE_BACK")]
    pub no_write_back: bool,
}

/// The batch's defaults (the directories are set from --data-dir later).
fn batch_default() -> batch::BatchConfig {
    batch::BatchConfig::new(std::path::Path::new(""))
}

impl BatchFlags {
    /// The batch configuration for stores under `data_dir`.
    pub fn config(&self, data_dir: &std::path::Path) -> anyhow::Result<batch::BatchConfig> {
        let mut cfg = batch::BatchConfig::new(data_dir);
        cfg.through =
            match &self.through {
                Some(t) => Some(schemas::time::parse_date(t).ok_or_else(|| {
                    anyhow::anyhow!("--through {t:?} is not a date like 2025-03-31")
                })?),
                None => None,
            };
        let shares = [self.vip_share, self.high_share, self.medium_share];
        if shares.iter().any(|s| !(0.0..=1.0).contains(s)) || shares.iter().sum::<f64>() > 1.0 {
            anyhow::bail!(
                "segment shares must be between 0 and 1 and add up to at most 1 \
                 (got VIP {}, High {}, Medium {})",
                self.vip_share,
                self.high_share,
                self.medium_share
            );
        }
        cfg.cuts = batch::SegmentCuts {
            vip: self.vip_share,
            high: self.high_share,
            medium: self.medium_share,
        };
        cfg.min_views = self.min_views;
        cfg.basket_cap = self.basket_cap.map(|n| n as usize);
        cfg.holdout_days = self.holdout_days;
        cfg.write_back = !self.no_write_back;
        Ok(cfg)
    }
}

/// `ecomflow sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT device_type, COUNT(*) FROM sessions GROUP BY 1".
    /// Read-only: statements that would change the snapshot or write files
    /// (INSERT, COPY ... TO, CREATE, DROP, SET) are refused.
    pub query: String,
    /// Save the result to this file instead of printing it: CSV for a
    /// `.csv` name, Parquet for `.parquet`. An existing file is replaced.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Directory where the batch wrote its snapshot (`snapshot/` under it).
    #[arg(long, env = "ECOMFLOW_DATA_DIR", default_value = "./ecomflow-data")]
    pub data_dir: PathBuf,
}

/// `ecomflow evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Shop size and seed.
    #[command(flatten)]
    pub shop: ShopArgs,
    /// Days to train on; the rest are held out.
    #[arg(long, env = "ECOMFLOW_TRAIN_DAYS", default_value_t = 80)]
    pub train_days: u32,
    /// Recommendations per query.
    #[arg(long, short, env = "ECOMFLOW_K", default_value_t = 10)]
    pub k: usize,
}

/// `ecomflow bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where the stores are.
    #[command(flatten)]
    pub log: LogArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Lookups per query kind.
    #[arg(long, env = "ECOMFLOW_BENCH_LOOKUPS", default_value_t = 5_000)]
    pub lookups: usize,
    /// Users to draw from (user_000001 up to this).
    #[arg(long, env = "ECOMFLOW_USERS", default_value_t = ShopConfig::default().users,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
}

/// The shop to generate: the same flags for every subcommand that generates.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shop")]
pub struct ShopArgs {
    /// Seed of every random choice: same seed, same bytes.
    #[arg(long, env = "ECOMFLOW_SEED", default_value_t = ShopConfig::default().seed)]
    pub seed: u64,
    /// First simulated day (YYYY-MM-DD).
    #[arg(long, env = "ECOMFLOW_START_DATE", default_value_t = ShopConfig::default().start_date.to_string())]
    pub start_date: String,
    /// Number of simulated days.
    #[arg(long, env = "ECOMFLOW_DAYS", default_value_t = ShopConfig::default().days)]
    pub days: u32,
    /// Registered users.
    #[arg(long, env = "ECOMFLOW_USERS", default_value_t = ShopConfig::default().users)]
    pub users: u32,
    /// Products in the catalog.
    #[arg(long, env = "ECOMFLOW_PRODUCTS", default_value_t = ShopConfig::default().products)]
    pub products: u32,
    /// Product categories.
    #[arg(long, env = "ECOMFLOW_CATEGORIES", default_value_t = ShopConfig::default().categories)]
    pub categories: u32,
    /// Browsing sessions over the period.
    #[arg(long, env = "ECOMFLOW_SESSIONS", default_value_t = ShopConfig::default().sessions)]
    pub sessions: u64,
    /// Transactions over the period (one per converted session).
    #[arg(long, env = "ECOMFLOW_TRANSACTIONS", default_value_t = ShopConfig::default().transactions)]
    pub transactions: u64,
    /// Share of records made deliberately dirty (0..1).
    #[arg(long, env = "ECOMFLOW_DIRTY_SHARE", default_value_t = ShopConfig::default().dirty_share)]
    pub dirty_share: f64,
    /// Share of sessions that abandon a cart (0..1).
    #[arg(long, env = "ECOMFLOW_ABANDONMENT", default_value_t = ShopConfig::default().abandonment)]
    pub abandonment: f64,
}

impl ShopArgs {
    /// The validated shop configuration.
    pub fn config(&self) -> anyhow::Result<ShopConfig> {
        let start_date = schemas::time::parse_date(&self.start_date).with_context(|| {
            format!(
                "--start-date {:?} is not a date like 2025-01-01",
                self.start_date
            )
        })?;
        let cfg = ShopConfig {
            seed: self.seed,
            start_date,
            days: self.days,
            users: self.users,
            products: self.products,
            categories: self.categories,
            sessions: self.sessions,
            transactions: self.transactions,
            dirty_share: self.dirty_share,
            abandonment: self.abandonment,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Where the event log is.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Event log and data directory")]
pub struct LogArgs {
    /// Directory where every embedded engine keeps its files.
    #[arg(long, env = "ECOMFLOW_DATA_DIR", default_value = "./ecomflow-data")]
    pub data_dir: PathBuf,
    /// Kafka bootstrap servers (host:port,...). Without it the embedded log
    /// in --data-dir is used.
    #[arg(long, env = "ECOMFLOW_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Partitions per event topic, when the topics are created.
    #[arg(long, env = "ECOMFLOW_PARTITIONS", default_value_t = schemas::topics::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
    /// Survive a crash of the machine (power loss), not only of the process:
    /// the embedded log, the embedded stores and the aggregator checkpoint
    /// are synced to disk before the offsets that depend on them are
    /// committed. Slower. See the README's "Guarantees".
    #[arg(long, env = "ECOMFLOW_FSYNC")]
    pub fsync: bool,
    /// Serve Prometheus metrics (/metrics) of every stage in this process on
    /// this address (host:port), for services without the lookup API
    /// (`ingest`, `replay --publish-only`, `batch --every`). `replay` and
    /// `serve` also serve them on --http.
    #[arg(long, env = "ECOMFLOW_METRICS")]
    pub metrics: Option<String>,
}

/// Where the stores are: servers, or the embedded engines in --data-dir.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stores")]
pub struct StoreArgs {
    /// MongoDB connection string for the document store. Without it the
    /// embedded document store in --data-dir is used.
    #[arg(long, env = "ECOMFLOW_MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    /// MongoDB database name.
    #[arg(long, env = "ECOMFLOW_MONGODB_DATABASE", default_value = "ecomflow")]
    pub mongodb_database: String,
    /// HBase Thrift server (host:port) for the wide-column store. Without it
    /// the embedded wide-column store in --data-dir is used.
    #[arg(long, env = "ECOMFLOW_HBASE_THRIFT")]
    pub hbase_thrift: Option<String>,
}

impl LogArgs {
    /// How far writes go towards the disk (`--fsync`).
    pub fn durability(&self) -> schemas::fsio::Durability {
        if self.fsync {
            schemas::fsio::Durability::Machine
        } else {
            schemas::fsio::Durability::Process
        }
    }
}

/// `ecomflow generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Shop size and seed.
    #[command(flatten)]
    pub shop: ShopArgs,
    /// Directory to write the dataset into (created if missing).
    #[arg(long, env = "ECOMFLOW_OUT", default_value = "./ecomflow-dataset")]
    pub out: PathBuf,
}

/// `ecomflow replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Replay the NDJSON files in this directory instead of the generated
    /// shop: `categories.jsonl`, `products.jsonl`, `users.jsonl`,
    /// `sessions.jsonl`, `transactions.jsonl` (any may be missing), one
    /// record per line in the format `ecomflow generate` writes (see the
    /// README, "Your own data"). Each line is published as it is; ingest
    /// dead-letters the ones that fail validation, with the reason.
    #[arg(
        long,
        env = "ECOMFLOW_DATASET",
        value_name = "DIR",
        conflicts_with = "ShopArgs"
    )]
    pub dataset: Option<PathBuf>,
    /// Replay speed: simulated seconds per second (`86400`), or a rate like
    /// `1d/s`, `2h/s`, `30m/s`. Default: as fast as possible.
    #[arg(long, env = "ECOMFLOW_SPEED", value_parser = parse_speed)]
    pub speed: Option<f64>,
    /// Forget earlier progress and start over (deletes the embedded log).
    #[arg(long, env = "ECOMFLOW_FRESH")]
    pub fresh: bool,
    /// Events per flush of the publisher (one marker of progress each).
    #[arg(long, visible_alias = "batch", env = "ECOMFLOW_PUBLISH_CHUNK",
          default_value_t = producer::replay::ReplayOptions::default().batch,
          value_parser = positive_usize())]
    pub publish_chunk: usize,
    /// Only publish; leave ingesting to `ecomflow ingest` services.
    #[arg(long, env = "ECOMFLOW_PUBLISH_ONLY")]
    pub publish_only: bool,
    /// Run the batch once at the end only, not after each simulated midnight.
    #[arg(long, env = "ECOMFLOW_NO_NIGHTLY")]
    pub no_nightly: bool,
    /// Do not run the batch (nightly or final) at all.
    #[arg(long, env = "ECOMFLOW_NO_BATCH")]
    pub no_batch: bool,
    /// Shop size and seed.
    #[command(flatten)]
    pub shop: ShopArgs,
    /// Event log.
    #[command(flatten)]
    pub log: LogArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Ingest settings.
    #[command(flatten)]
    pub ingest: IngestFlags,
    /// Aggregator settings.
    #[command(flatten)]
    pub aggregator: AggregatorFlags,
    /// Batch (report) settings.
    #[command(flatten)]
    pub report: BatchFlags,
}

/// Aggregator and lookup API settings.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Aggregator and lookup API")]
pub struct AggregatorFlags {
    /// Address of the lookup API (use 127.0.0.1:0 for any free port).
    #[arg(long, env = "ECOMFLOW_HTTP", default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Keep the lookup API up after the replay until Ctrl-C.
    #[arg(long, env = "ECOMFLOW_KEEP_SERVING")]
    pub keep_serving: bool,
    /// Default ranking of partners (a request's `ranking=` overrides it):
    /// `count` (the best hit rate on held-out days, see
    /// scripts/ranking-study.sh), `llr` (significance), `cosine`, `jaccard`
    /// or `llr-min-support` (LLR among pairs seen 3+ times).
    #[arg(long, env = "ECOMFLOW_RANKING", default_value = "count", value_parser = ranking_parser())]
    pub ranking: aggregator::cooccur::Ranking,
    /// Days in the sliding window of the live counts.
    #[arg(long, env = "ECOMFLOW_WINDOW_DAYS", default_value_t = AggregatorConfig::default().window_days,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub window_days: i64,
    /// Allowed lateness behind the newest event time, in seconds.
    #[arg(long, env = "ECOMFLOW_LATENESS", default_value_t = AggregatorConfig::default().lateness_secs,
          value_parser = clap::value_parser!(i64).range(0..=31_536_000))]
    pub lateness: i64,
    /// Seconds between aggregator checkpoints (at least 20 times as long
    /// as the last one took, so a large state is not written all the time).
    #[arg(long, env = "ECOMFLOW_CHECKPOINT_EVERY", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub checkpoint_every: u64,
    /// Consumer group of the aggregator. Another group (with its own
    /// checkpoint, `<data-dir>/aggregator-<group>/`) reads the same log
    /// independently, e.g. with other window settings or for a benchmark.
    #[arg(long, env = "ECOMFLOW_AGGREGATOR_GROUP", default_value = aggregator::runner::GROUP)]
    pub aggregator_group: String,
    /// Rebuild the aggregator from the start of the log: drop its
    /// checkpoint, reset its group's offsets and re-read every event. For a
    /// lost or damaged checkpoint, which is otherwise an error (starting
    /// empty while the group resumes would lose the window for good).
    #[arg(long, env = "ECOMFLOW_REBUILD_AGGREGATOR")]
    pub rebuild_aggregator: bool,
    /// Threads answering lookups. Default: 2 in `replay`, where the
    /// pipeline's threads take the cores by turns and a second thread
    /// answers while the first waits for one; 1 in `serve`, where one
    /// thread answers sooner (see the README, "The lookup API").
    #[arg(long, env = "ECOMFLOW_HTTP_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: Option<u16>,
}

impl AggregatorFlags {
    /// Where this group's checkpoint lives under `data_dir`.
    pub fn checkpoint_path(&self, data_dir: &std::path::Path) -> PathBuf {
        let dir = if self.aggregator_group == aggregator::runner::GROUP {
            "aggregator".to_string()
        } else {
            format!("aggregator-{}", self.aggregator_group)
        };
        data_dir.join(dir).join("checkpoint.bin")
    }
}

/// Ingest worker settings, shared by `replay` and `ingest`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ingest")]
pub struct IngestFlags {
    /// Ingest workers (threads), members of one consumer group.
    #[arg(long, env = "ECOMFLOW_INGEST_WORKERS", default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub ingest_workers: usize,
    /// Records per ingest chunk (one store write and one offset commit).
    #[arg(long, visible_alias = "ingest-batch", env = "ECOMFLOW_INGEST_CHUNK",
          default_value_t = IngestConfig::default().batch,
          value_parser = positive_usize())]
    pub ingest_chunk: usize,
    /// Consumer group of the ingest workers.
    #[arg(long, env = "ECOMFLOW_INGEST_GROUP", default_value_t = IngestConfig::default().group)]
    pub ingest_group: String,
}

/// `ecomflow ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Event log.
    #[command(flatten)]
    pub log: LogArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Ingest settings.
    #[command(flatten)]
    pub ingest: IngestFlags,
    /// Stop once the group has consumed everything and nothing new arrived
    /// for this many seconds (for batch-style runs and tests).
    #[arg(long, env = "ECOMFLOW_UNTIL_IDLE")]
    pub until_idle: Option<u64>,
}

/// A count of records: 1 to a million.
fn positive_usize() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
}

/// `--ranking`: one of the names `Ranking` defines (listed in `--help`),
/// parsed once, into the type.
fn ranking_parser() -> impl clap::builder::TypedValueParser<Value = aggregator::cooccur::Ranking> {
    use aggregator::cooccur::Ranking;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Ranking::ALL.map(Ranking::name))
        .try_map(|name| name.parse::<Ranking>())
}

/// Parses `86400`, `1d/s`, `2h/s`, `30m/s`, `10s/s`.
pub fn parse_speed(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let v = if let Some(rate) = t.strip_suffix("/s") {
        // The unit is the last character, whatever its width in bytes.
        let at = rate.char_indices().last().map_or(0, |(i, _)| i);
        let (num, unit) = rate.split_at(at);
        let mult = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            _ => bail!("speed {s:?}: use a number of simulated seconds per second, or N followed by s, m, h or d and '/s' (e.g. 1d/s)"),
        };
        num.parse::<f64>()
            .with_context(|| format!("speed {s:?}: {num:?} is not a number"))?
            * mult
    } else {
        t.parse::<f64>()
            .with_context(|| format!("speed {s:?} is not a number; try 86400 or 1d/s"))?
    };
    if !(v.is_finite() && v > 0.0) {
        bail!("speed must be positive, got {s:?}");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn speeds_parse() {
        assert_eq!(parse_speed("86400").ok(), Some(86_400.0));
        assert_eq!(parse_speed("1d/s").ok(), Some(86_400.0));
        assert_eq!(parse_speed("2h/s").ok(), Some(7_200.0));
        assert_eq!(parse_speed("0.5m/s").ok(), Some(30.0));
        assert!(parse_speed("fast").is_err());
        assert!(parse_speed("1w/s").is_err());
        assert!(parse_speed("-3").is_err());
        assert!(parse_speed("0").is_err());
        // A multi-byte last character is a bad unit, not a panic.
        assert!(parse_speed("1é/s").is_err());
        assert!(parse_speed("é/s").is_err());
        assert!(parse_speed("/s").is_err());
    }

    #[test]
    fn out_of_range_flags_are_parse_errors_not_panics() {
        let err = Cli::try_parse_from(["ecomflow", "batch", "--holdout-days", "1000000000"])
            .expect_err("holdout too long");
        assert!(err.to_string().contains("1..=3650"), "{err}");
        assert!(Cli::try_parse_from(["ecomflow", "batch", "--holdout-days", "0"]).is_err());
        let cli = Cli::try_parse_from(["ecomflow", "generate", "--start-date=+262142-12-01"])
            .expect("parses as a string");
        let Command::Generate(args) = cli.command else {
            panic!("not generate");
        };
        match args.shop.config() {
            Ok(_) => panic!("a start date in year 262142 was accepted"),
            Err(e) => assert!(
                format!("{e:#}").contains("--start-date must be between 1972-01-01"),
                "{e:#}"
            ),
        }
    }

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }
}
