//! Command-line flags. Most flags have an `ECOMFLOW_*` environment variable
//! (docs/configuration.md, generated from these definitions by
//! [`configuration_markdown`], lists each flag with its variable, or none);
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
#[command(
    name = "ecomflow",
    version,
    long_version = crate::features::LONG_VERSION.as_str(),
    propagate_version = true,
    after_help = "Examples:\n  ecomflow replay                  the 90-day shop, on embedded engines\n  ecomflow replay --help           its flags\n  ecomflow serve --kafka-brokers b1:9092 --http 0.0.0.0:8080"
)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `ecomflow=debug,eventlog=trace`.
    #[arg(long, global = true, env = "ECOMFLOW_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as text or as one JSON object per line (for log shippers).
    #[arg(long, global = true, env = "ECOMFLOW_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,

    /// Without a terminal (Docker, systemd, CI), log a progress line every
    /// this many seconds instead of drawing a bar.
    #[arg(long, global = true, env = "ECOMFLOW_PROGRESS_EVERY", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_every: u64,

    /// Check the flags and environment variables (values, ranges, the
    /// Kafka properties file) and exit without doing anything.
    #[arg(long, global = true)]
    pub check_config: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every server flag of `command` is backed by a compiled-in backend.
pub(crate) fn check_backends(command: &Command) -> anyhow::Result<()> {
    let (log, stores): (Option<&LogArgs>, Option<&StoreArgs>) = match command {
        Command::Replay(a) => (Some(&a.log), Some(&a.stores)),
        Command::Ingest(a) => (Some(&a.log), Some(&a.stores)),
        Command::Serve(a) => {
            if a.hbase.hbase_thrift.is_some() && !cfg!(feature = "hbase") {
                return Err(crate::features::missing("hbase", "--hbase-thrift"));
            }
            (Some(&a.log), None)
        }
        Command::Batch(a) => (None, Some(&a.stores)),
        Command::Bench(a) => (None, Some(&a.stores)),
        Command::Query(a) => (None, Some(&a.stores)),
        Command::Generate(_) | Command::Import(_) | Command::Evaluate(_) | Command::Sql(_) => {
            (None, None)
        }
    };
    if let Some(log) = log {
        if log.kafka_brokers.is_some() && !cfg!(feature = "kafka") {
            return Err(crate::features::missing("kafka", "--kafka-brokers"));
        }
    }
    if let Some(stores) = stores {
        if stores.mongodb_uri.is_some() && !cfg!(feature = "mongodb") {
            return Err(crate::features::missing("mongodb", "--mongodb-uri"));
        }
        if stores.hbase.hbase_thrift.is_some() && !cfg!(feature = "hbase") {
            return Err(crate::features::missing("hbase", "--hbase-thrift"));
        }
    }
    Ok(())
}

impl Cli {
    /// Checks what can be checked of the command's settings without
    /// touching the data, the log or the stores.
    pub fn check(&self) -> anyhow::Result<()> {
        check_backends(&self.command)?;
        let log = |_l: &LogArgs| -> anyhow::Result<()> {
            #[cfg(feature = "kafka")]
            if let Some(brokers) = &_l.kafka_brokers {
                _l.kafka.settings(brokers)?;
            }
            Ok(())
        };
        match &self.command {
            Command::Generate(a) => a.shop.config().map(|_| ()),
            Command::Import(_) => Ok(()),
            Command::Evaluate(a) => a.shop.config().map(|_| ()),
            Command::Replay(a) => {
                if a.dataset.is_none() {
                    a.shop.config()?;
                }
                a.report.config(&a.log.data_dir)?;
                log(&a.log)
            }
            Command::Batch(a) => a.batch.config(&a.dir.data_dir).map(|_| ()),
            Command::Ingest(a) => log(&a.log),
            Command::Serve(a) => log(&a.log),
            Command::Bench(_) | Command::Query(_) => Ok(()),
            Command::Sql(_) => Ok(()),
        }
    }
}

/// Subcommands.
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the shop as newline-delimited JSON files (one per record kind),
    /// with the planted complements and a manifest, and print its shape.
    #[command(
        after_help = "Examples:\n  ecomflow generate --out ./shop\n  ecomflow generate --users 500 --products 400 --sessions 40000 --transactions 10000 --out /tmp/small"
    )]
    Generate(GenerateArgs),
    /// Turn an event-level clickstream export (CSV, plain or gzip: one row
    /// per view, cart, remove_from_cart and purchase with event_time,
    /// event_type, product_id, category_id, category_code, brand, price,
    /// user_id, user_session) into a dataset that `replay --dataset`
    /// replays: catalog, users, sessions and transactions. Every dropped
    /// row is counted with its reason; the rules are in docs/data.md.
    #[command(after_help = "Examples:
  ecomflow import --out ./my-shop 2019-Oct.csv.gz 2019-Nov.csv.gz
  ecomflow replay --dataset ./my-shop")]
    Import(ImportArgs),
    /// Publish the shop's 90 days to the event log in event-time order,
    /// as fast as possible or at --speed, and ingest them into the stores
    /// in the same process. Resumes an interrupted replay.
    #[command(
        after_help = "Examples:\n  ecomflow replay\n  ecomflow replay --users 500 --products 400 --sessions 40000 --transactions 10000 --data-dir /tmp/small\n  ecomflow replay --speed 1d/s --keep-serving\n  ecomflow replay --dataset ./my-shop-export\n  ecomflow replay --publish-only --kafka-brokers b1:9093 --kafka-properties-file client.properties"
    )]
    Replay(ReplayArgs),
    /// Run ingest workers as a service: consume the event log, write the
    /// stores, dead-letter bad records. Stops on Ctrl-C (or --until-idle).
    #[command(
        after_help = "Example:\n  ecomflow ingest --kafka-brokers b1:9092 --mongodb-uri mongodb://db:27017 --hbase-thrift hbase:9090"
    )]
    Ingest(IngestArgs),
    /// Measure store lookups on ingested data: a user's last 10 sessions,
    /// a user's profile, a user's transactions (median, p99, max).
    #[command(after_help = "Example:\n  ecomflow bench --data-dir ./ecomflow-data --lookups 5000")]
    Bench(BenchArgs),
    /// Offline quality of "bought together": train on the first days, then
    /// for each later basket ask whether an item's top k holds another item
    /// of the basket; every ranking (count, LLR, cosine, Jaccard, LLR with
    /// minimum support) against best-sellers, and planted complements.
    #[command(after_help = "Example:\n  ecomflow evaluate --train-days 80 -k 10")]
    Evaluate(EvaluateArgs),
    /// The nightly batch: snapshot the stores into Parquet (only days not
    /// yet written), run the shop's analytics as SQL on DataFusion, compute
    /// CLV segments and BG/NBD + Gamma-Gamma predictions, write each user's
    /// segment and CLV back, and write `<data-dir>/report/report.md` with charts.
    #[command(
        after_help = "Examples:\n  ecomflow batch\n  ecomflow batch --mongodb-uri mongodb://db:27017 --hbase-thrift hbase:9090 --every 86400"
    )]
    Batch(BatchArgs),
    /// Run the aggregator as a service: consume sessions and transactions
    /// from the event log, keep the windows, serve the lookup API on --http,
    /// checkpoint; until Ctrl-C (or --until-idle).
    #[command(
        after_help = "Example:\n  ecomflow serve --kafka-brokers b1:9092 --http 0.0.0.0:8080"
    )]
    Serve(ServeArgs),
    /// Run one SQL query on the Parquet snapshot the batch wrote. Tables:
    /// transactions, sessions (both with a "date" column), users, products,
    /// categories, dead_letters; views transaction_items, session_views.
    #[command(
        after_help = "Examples:\n  ecomflow sql \"SELECT device_type, COUNT(*) AS sessions FROM sessions GROUP BY 1\"\n  ecomflow sql --out top.csv \"SELECT * FROM transactions ORDER BY total DESC LIMIT 10\""
    )]
    Sql(SqlArgs),
    /// Ask the document store one of the shop's daily questions: revenue by
    /// category and day, the top customers, the payment-method mix, or a
    /// user's purchase history with product names. On MongoDB each is an
    /// aggregation pipeline the server runs; on the embedded store the same
    /// rows are computed here.
    #[command(
        after_help = "Examples:\n  ecomflow query top-customers --limit 10\n  ecomflow query purchase-history --user user_000042 --json"
    )]
    Query(QueryArgs),
}

/// `ecomflow query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Which question.
    #[arg(value_enum)]
    pub name: QueryName,
    /// Where the embedded stores are.
    #[command(flatten)]
    pub dir: DataDirArgs,
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
    /// The wide-column store that `/v1/products/{id}/daily` reads.
    #[command(flatten)]
    pub hbase: HbaseArgs,
    /// Stop once everything is consumed and nothing new arrived for this
    /// many seconds (for batch-style runs and tests).
    #[arg(long, env = "ECOMFLOW_UNTIL_IDLE")]
    pub until_idle: Option<u64>,
}

/// `ecomflow batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Where the embedded stores, the snapshot and the report are.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Sync the embedded stores' writes (the write-back) to disk.
    #[arg(long, env = "ECOMFLOW_FSYNC")]
    pub fsync: bool,
    /// Serve Prometheus metrics (/metrics) on this address (host:port), for
    /// `--every`.
    #[arg(long, env = "ECOMFLOW_METRICS")]
    pub metrics: Option<String>,
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
    /// Where the embedded stores are.
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// The stores.
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Lookups per query kind (users are drawn from those stored).
    #[arg(long, env = "ECOMFLOW_BENCH_LOOKUPS", default_value_t = 5_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub lookups: usize,
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
        // A shop that ends in the future would be dead-lettered as
        // `future_timestamp` nearly whole: refused here, naming the flag.
        let end = cfg
            .start_date
            .checked_add_days(chrono::Days::new(u64::from(cfg.days)))
            .unwrap_or(chrono::NaiveDate::MAX);
        let latest = schemas::validate::latest_accepted().date();
        if end > latest {
            bail!(
                "--start-date {} with --days {} ends on {end}, after today ({}): \
                 its events would be refused as future_timestamp; start earlier",
                cfg.start_date,
                cfg.days,
                latest.pred_opt().unwrap_or(latest)
            );
        }
        Ok(cfg)
    }
}

/// The data directory alone, for commands that use neither the log nor
/// its flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Data directory")]
pub struct DataDirArgs {
    /// Directory where every embedded engine keeps its files.
    #[arg(long, env = "ECOMFLOW_DATA_DIR", default_value = "./ecomflow-data")]
    pub data_dir: PathBuf,
}

impl BatchArgs {
    /// How far the embedded stores' writes go towards the disk.
    pub fn durability(&self) -> stage::fsio::Durability {
        durability(self.fsync)
    }
}

/// `--fsync`: synced to survive a machine crash, or only a process crash.
fn durability(fsync: bool) -> stage::fsio::Durability {
    if fsync {
        stage::fsio::Durability::Machine
    } else {
        stage::fsio::Durability::Process
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
    /// in --data-dir is used. Needs a build with the `kafka` feature.
    #[arg(long, env = "ECOMFLOW_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Kafka client settings (TLS, SASL, topics, codec).
    #[command(flatten)]
    pub kafka: KafkaFlags,
    /// Partitions per event topic, when the topics are created.
    #[arg(long, env = "ECOMFLOW_PARTITIONS", default_value_t = schemas::topics::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,
    /// Survive a crash of the machine (power loss), not only of the process:
    /// the embedded log, the embedded stores and the aggregator checkpoint
    /// are synced to disk before the offsets that depend on them are
    /// committed. Slower. See docs/operations.md, "Guarantees".
    #[arg(long, env = "ECOMFLOW_FSYNC")]
    pub fsync: bool,
    /// Compress what the embedded engines create in --data-dir: the log's
    /// records (zstd) and the stores' tables (lz4). The default replay's
    /// data dir then takes 1.0 GiB instead of 2.6 GiB, and the replay about
    /// 15% longer (docs/benchmarks.md, "Footprint"). A log or store keeps
    /// how it was created: give it from the first run on (or with
    /// --fresh).
    #[arg(long, env = "ECOMFLOW_COMPRESS")]
    pub compress: bool,
    /// Serve Prometheus metrics (/metrics) of every stage in this process on
    /// this address (host:port), for services without the lookup API
    /// (`ingest`, `replay --publish-only`, `batch --every`). `replay` and
    /// `serve` also serve them on --http.
    #[arg(long, env = "ECOMFLOW_METRICS")]
    pub metrics: Option<String>,
}

/// How to talk to a Kafka cluster: librdkafka properties, topics, codec.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaFlags {
    /// A librdkafka property, KEY=VALUE, repeatable; applied after
    /// ecomflow's own settings and the properties file, so it wins. E.g.
    /// `security.protocol=SASL_SSL`, `sasl.mechanism=SCRAM-SHA-512`,
    /// `ssl.ca.location=/etc/ssl/ca.pem`. Secret values are never printed.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub kafka_property: Vec<(String, String)>,
    /// A file of librdkafka properties, one KEY=VALUE per line (`#`
    /// comments), as Kafka's own clients take them: the place for
    /// credentials (`sasl.password=...`).
    #[arg(long, env = "ECOMFLOW_KAFKA_PROPERTIES_FILE", value_name = "FILE")]
    pub kafka_properties_file: Option<PathBuf>,
    /// Prefix of every topic name: `shop1.` gives `shop1.sessions`, ...
    #[arg(long, env = "ECOMFLOW_KAFKA_TOPIC_PREFIX", default_value = "")]
    pub kafka_topic_prefix: String,
    /// Codec of the batches ecomflow produces (every codec is read).
    #[arg(long, env = "ECOMFLOW_KAFKA_COMPRESSION", default_value = eventlog::kafka_defaults::COMPRESSION,
          value_parser = ["lz4", "zstd", "gzip", "snappy", "none"])]
    pub kafka_compression: String,
    /// Replication factor of the topics ecomflow creates (3 on a
    /// production cluster; -1 for the broker's default).
    #[arg(long, env = "ECOMFLOW_KAFKA_REPLICATION_FACTOR",
          default_value_t = eventlog::kafka_defaults::REPLICATION_FACTOR,
          value_parser = parse_replication)]
    pub kafka_replication_factor: i32,
    /// Retention of the event topics ecomflow creates, in hours (default:
    /// the broker's).
    #[arg(long, env = "ECOMFLOW_KAFKA_RETENTION_HOURS",
          value_parser = clap::value_parser!(u32).range(1..=876_000))]
    pub kafka_retention_hours: Option<u32>,
    /// Create the catalog topic compacted (`cleanup.policy=compact`): the
    /// latest version of each category, product and user is kept.
    #[arg(long, env = "ECOMFLOW_KAFKA_COMPACT_CATALOG")]
    pub kafka_compact_catalog: bool,
    /// Seconds to wait for the cluster before an error naming the brokers.
    #[arg(long, env = "ECOMFLOW_KAFKA_TIMEOUT", default_value_t = eventlog::kafka_defaults::TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub kafka_timeout: u64,
    /// A stable name for this service in its consumer groups (Kafka's
    /// static membership, `group.instance.id`; one per service, e.g. its
    /// compose service name). Started again under the same name, the
    /// service takes its partitions back from the committed offsets
    /// without the group rebalancing; a member that does not come back is
    /// expired after 10 s and its partitions go to the others.
    #[arg(long, env = "ECOMFLOW_KAFKA_GROUP_INSTANCE", value_name = "NAME",
          value_parser = parse_instance)]
    pub kafka_group_instance: Option<String>,
}

#[cfg(feature = "kafka")]
impl KafkaFlags {
    /// The client settings for `brokers`.
    pub fn settings(&self, brokers: &str) -> anyhow::Result<eventlog::kafka::KafkaSettings> {
        let mut settings = eventlog::kafka::KafkaSettings::new(brokers);
        if let Some(path) = &self.kafka_properties_file {
            settings.properties = eventlog::kafka::read_properties(path)?;
        }
        settings
            .properties
            .extend(self.kafka_property.iter().cloned());
        settings.topic_prefix = self.kafka_topic_prefix.clone();
        settings.compression = self.kafka_compression.clone();
        settings.replication_factor = self.kafka_replication_factor;
        settings.retention_ms = self.kafka_retention_hours.map(|h| i64::from(h) * 3_600_000);
        settings.compact_catalog = self.kafka_compact_catalog;
        settings.timeout = std::time::Duration::from_secs(self.kafka_timeout);
        settings.group_instance = self.kafka_group_instance.clone();
        Ok(settings)
    }
}

/// `--kafka-group-instance`: 1 to 200 letters, digits, `.`, `_` or `-`
/// (Kafka's limit on a member name is 249; the group and the worker's
/// number are added).
fn parse_instance(s: &str) -> anyhow::Result<String> {
    let ok = (1..=200).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        bail!("expected 1 to 200 letters, digits, '.', '_' or '-', e.g. ingest-1")
    }
}

/// `KEY=VALUE` of `--kafka-property`.
fn parse_property(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("expected KEY=VALUE, e.g. security.protocol=SSL"),
    }
}

/// `--kafka-replication-factor`: -1 (the broker's default) or 1 to 32767.
fn parse_replication(s: &str) -> anyhow::Result<i32> {
    let n: i32 = s
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not a whole number"))?;
    if n == -1 || (1..=32_767).contains(&n) {
        Ok(n)
    } else {
        bail!("use 1 to 32767, or -1 for the broker's default")
    }
}

/// Where the stores are: servers, or the embedded engines in --data-dir.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stores")]
pub struct StoreArgs {
    /// MongoDB connection string for the document store
    /// (`mongodb://` or `mongodb+srv://`). Without it the embedded document
    /// store in --data-dir is used. Its password is never printed. Needs a
    /// build with the `mongodb` feature.
    #[arg(long, env = "ECOMFLOW_MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: Option<String>,
    /// MongoDB database name.
    #[arg(long, env = "ECOMFLOW_MONGODB_DATABASE", default_value = "ecomflow")]
    pub mongodb_database: String,
    /// Prefix of every MongoDB collection name (`shop1_` gives
    /// `shop1_users`), for a database shared with other applications.
    #[arg(long, env = "ECOMFLOW_MONGODB_COLLECTION_PREFIX", default_value = "")]
    pub mongodb_collection_prefix: String,
    /// The wide-column store.
    #[command(flatten)]
    pub hbase: HbaseArgs,
}

/// Where the wide-column store is: an HBase Thrift server, or the embedded
/// engine in --data-dir.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stores")]
pub struct HbaseArgs {
    /// HBase Thrift server (host:port) for the wide-column store. Without it
    /// the embedded wide-column store in --data-dir is used. Needs a build
    /// with the `hbase` feature.
    #[arg(long, env = "ECOMFLOW_HBASE_THRIFT")]
    pub hbase_thrift: Option<String>,
    /// Thrift transport of the HBase Thrift server: `buffered` (HBase's
    /// default) or `framed` (`hbase thrift start -f`).
    #[arg(long, env = "ECOMFLOW_HBASE_TRANSPORT", default_value = "buffered",
          value_parser = ["buffered", "framed"])]
    pub hbase_transport: String,
    /// Thrift protocol of the HBase Thrift server: `binary` (HBase's
    /// default) or `compact` (`hbase thrift start -c`).
    #[arg(long, env = "ECOMFLOW_HBASE_PROTOCOL", default_value = "binary",
          value_parser = ["binary", "compact"])]
    pub hbase_protocol: String,
    /// Connections to the HBase Thrift server (one call at a time each).
    #[arg(long, env = "ECOMFLOW_HBASE_POOL_SIZE", default_value_t = stores::DEFAULT_HBASE_POOL_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub hbase_pool_size: usize,
    /// HBase namespace of ecomflow's tables (it must exist: `create_namespace`
    /// in the HBase shell). Default: HBase's `default` namespace.
    #[arg(long, env = "ECOMFLOW_HBASE_NAMESPACE")]
    pub hbase_namespace: Option<String>,
}

#[cfg(feature = "hbase")]
impl HbaseArgs {
    /// The HBase client settings for the server at `addr`.
    pub fn settings(&self, addr: &str) -> stores::wide_hbase::HbaseSettings {
        use stores::wide_hbase::{HbaseSettings, ThriftProtocol, ThriftTransport};
        let mut settings = HbaseSettings::new(addr);
        settings.pool_size = self.hbase_pool_size;
        settings.transport = if self.hbase_transport == "framed" {
            ThriftTransport::Framed
        } else {
            ThriftTransport::Buffered
        };
        settings.protocol = if self.hbase_protocol == "compact" {
            ThriftProtocol::Compact
        } else {
            ThriftProtocol::Binary
        };
        settings.namespace = self.hbase_namespace.clone();
        settings
    }
}

impl LogArgs {
    /// How far writes go towards the disk (`--fsync`).
    pub fn durability(&self) -> stage::fsio::Durability {
        durability(self.fsync)
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

/// `ecomflow import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV files, plain or gzip, read in this order (each in time
    /// order, as the exports are).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Directory to write the dataset into (created if missing; refused if
    /// it holds a dataset already).
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
    /// docs/data.md). Each line is published as it is; ingest
    /// dead-letters the ones that fail validation, with the reason.
    #[arg(
        long,
        env = "ECOMFLOW_DATASET",
        value_name = "DIR",
        conflicts_with = "ShopArgs"
    )]
    pub dataset: Option<PathBuf>,
    /// Replay speed: simulated seconds per second (`86400`), or a rate like
    /// `1d/s`, `2h/s`, `30m/s`. Default (or an empty value): as fast as
    /// possible.
    #[arg(long, env = "ECOMFLOW_SPEED", value_parser = parse_speed_flag)]
    pub speed: Option<Speed>,
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
    #[arg(long, env = "ECOMFLOW_RANKING", default_value_t = aggregator::choices::Ranking::DEFAULT,
          value_parser = ranking_parser())]
    pub ranking: aggregator::choices::Ranking,
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
    #[arg(long, env = "ECOMFLOW_CHECKPOINT_EVERY", default_value_t = aggregator::runner::DEFAULT_CHECKPOINT_EVERY_SECS,
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
    /// thread answers sooner (docs/architecture.md).
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
    #[arg(long, env = "ECOMFLOW_INGEST_WORKERS", default_value_t = ingest::worker::DEFAULT_WORKERS,
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
fn ranking_parser() -> impl clap::builder::TypedValueParser<Value = aggregator::choices::Ranking> {
    use aggregator::choices::Ranking;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Ranking::ALL.map(Ranking::name))
        .try_map(|name| name.parse::<Ranking>())
}

/// A replay speed: as fast as possible, or simulated seconds per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible (an empty `--speed`, as compose passes an unset
    /// variable).
    Full,
    /// Simulated seconds per second.
    Paced(f64),
}

impl ReplayArgs {
    /// Simulated seconds per second, None for as fast as possible.
    pub fn speed(&self) -> Option<f64> {
        match self.speed {
            Some(Speed::Paced(v)) => Some(v),
            Some(Speed::Full) | None => None,
        }
    }
}

/// `--speed`: empty for full speed, otherwise [`parse_speed`].
fn parse_speed_flag(s: &str) -> anyhow::Result<Speed> {
    if s.trim().is_empty() {
        Ok(Speed::Full)
    } else {
        parse_speed(s).map(Speed::Paced)
    }
}

/// Slowest replay: a simulated second in 1,000 s.
const MIN_SPEED: f64 = 1e-3;
/// Fastest paced replay (faster is as fast as possible anyway).
const MAX_SPEED: f64 = 1e12;

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
    if !(MIN_SPEED..=MAX_SPEED).contains(&v) {
        bail!("speed {s:?} is out of range: use {MIN_SPEED} to {MAX_SPEED:e} simulated seconds per second (or leave it empty for full speed)");
    }
    Ok(v)
}

/// docs/configuration.md: every command's flags with their environment
/// variable, default and help, from the definitions above (a test keeps
/// the file equal to this).
#[cfg(test)]
pub fn configuration_markdown() -> String {
    use clap::CommandFactory;
    use std::fmt::Write;
    let root = Cli::command();
    let mut out = String::from(
        "# Configuration\n\n\
         Every flag of every command, with its environment variable (flags\n\
         take precedence over variables), its default and its meaning.\n\
         Generated from the command-line definitions (`ecomflow/src/cli.rs`)\n\
         by `UPDATE_DOCS=1 cargo test -p ecomflow configuration_doc`; a test\n\
         fails when this file and the definitions differ. Check a\n\
         configuration without running anything with `--check-config`.\n",
    );
    let row = |out: &mut String, arg: &clap::Arg| {
        if arg.is_hide_set() {
            return;
        }
        let name = match arg.get_long() {
            Some(l) => format!("`--{l}`"),
            None => format!("`{}`", arg.get_id().as_str().to_uppercase()),
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "-".to_string());
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() || defaults.iter().all(|d| d.is_empty()) {
            "-".to_string()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replace('\n', " ")
            .replace('|', "\\|");
        let _ = writeln!(out, "| {name} | {env} | {default} | {help} |");
    };
    let _ = writeln!(out, "\n## Global flags (every command)\n");
    let _ = writeln!(
        out,
        "| flag | variable | default | meaning |\n|---|---|---|---|"
    );
    for arg in root.get_arguments().filter(|a| a.is_global_set()) {
        row(&mut out, arg);
    }
    for cmd in root.get_subcommands() {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        let _ = writeln!(out, "\n## `ecomflow {}`\n\n{about}\n", cmd.get_name());
        let _ = writeln!(
            out,
            "| flag | variable | default | meaning |\n|---|---|---|---|"
        );
        for arg in cmd.get_arguments().filter(|a| !a.is_global_set()) {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            row(&mut out, arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn member_names_are_kafka_safe() {
        assert_eq!(parse_instance("ingest-1").ok().as_deref(), Some("ingest-1"));
        assert_eq!(parse_instance("a.b_C-9").ok().as_deref(), Some("a.b_C-9"));
        for bad in ["", "ingest 1", "ingest/1", "é", &"x".repeat(201)] {
            assert!(parse_instance(bad).is_err(), "{bad:?} was accepted");
        }
    }

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
        // Too slow to be meant (and past what a sleep can hold): an error.
        assert!(parse_speed("1e-15").is_err());
        assert!(parse_speed("1e-300d/s").is_err());
        assert_eq!(parse_speed("0.001").ok(), Some(0.001));
        // Empty, as compose passes an unset variable: full speed.
        assert_eq!(parse_speed_flag("").ok(), Some(Speed::Full));
        assert_eq!(parse_speed_flag("1d/s").ok(), Some(Speed::Paced(86_400.0)));
        let cli = Cli::try_parse_from(["ecomflow", "replay", "--speed", ""]).expect("empty speed");
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        assert_eq!(args.speed(), None);
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
                format!("{e:#}").contains("--start-date must be between 1997-01-01"),
                "{e:#}"
            ),
        }
    }

    #[test]
    fn a_shop_that_ends_in_the_future_is_refused() {
        let cli = Cli::try_parse_from(["ecomflow", "replay", "--start-date", "2030-01-01"])
            .expect("parses");
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        let err = format!("{:#}", args.shop.config().expect_err("future shop"));
        assert!(
            err.contains("--start-date 2030-01-01 with --days 90"),
            "{err}"
        );
        assert!(err.contains("future_timestamp"), "{err}");
        let cli = Cli::try_parse_from(["ecomflow", "replay"]).expect("parses");
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        args.shop.config().expect("the default shop is in the past");
    }

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    /// docs/configuration.md is generated from these definitions and must
    /// not drift: `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn configuration_doc_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let want = configuration_markdown();
        if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&path, &want).expect("write docs/configuration.md");
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "docs/configuration.md differs from the flags: run UPDATE_DOCS=1 cargo test -p ecomflow configuration_doc"
        );
        for flag in [
            "--kafka-property",
            "--mongodb-uri",
            "--hbase-transport",
            "--log-format",
        ] {
            assert!(want.contains(flag), "{flag} missing");
        }
    }
}
