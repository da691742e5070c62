//! The Kafka log, through rdkafka (bundled librdkafka).
//!
//! Producer settings are chosen for an event pipeline, not for latency of a
//! single message: idempotent (no duplicates from internal retries, order
//! kept per partition), `acks=all`, lz4 compression (cheap on CPU, and the
//! `tansu` broker we test against cannot read snappy on sqlite), batches of
//! up to 10,000 messages or 1 MiB lingering 20 ms, and Java's murmur2
//! partitioner so that services in other languages put a user's events in
//! the same partition. Consumers join a group with auto-commit off: offsets
//! are committed only by [`LogConsumer::commit`], after the work is done.
//!
//! Everything a cluster needs beyond that comes in [`KafkaSettings`]: any
//! librdkafka property (TLS, SASL, timeouts, ...; applied after ours, so
//! they win), the codec, a topic prefix, replication, retention and
//! compaction of the catalog. librdkafka is built with OpenSSL (TLS, SASL
//! PLAIN and SCRAM), zlib and zstd, so topics written with any codec can be
//! read. Not built in: GSSAPI (Kerberos, needs libsasl2) and OAUTHBEARER's
//! OIDC method (needs libcurl).
//! Property values whose key names a secret are never printed
//! ([`KafkaSettings`]'s `Debug`, errors, logs).

use crate::{
    EventLog, LogConsumer, LogError, LogProducer, Offsets, Record, Result, Sequence, TopicSpec,
    CLOSE_TIMEOUT, PUBLISHED_HEADER, SEQUENCE_HEADER,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a flush may wait for the broker's acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How ecomflow talks to a Kafka cluster, beyond its address.
#[derive(Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// librdkafka properties (`security.protocol`, `sasl.mechanism`,
    /// `ssl.ca.location`, ...), applied after ecomflow's own settings.
    pub properties: Vec<(String, String)>,
    /// Prefix of every topic name (`shop1.` gives `shop1.sessions`).
    pub topic_prefix: String,
    /// Codec the producer compresses batches with: `lz4`, `zstd`, `gzip`,
    /// `snappy` or `none`.
    pub compression: String,
    /// Replication factor of the topics ecomflow creates; -1 takes the
    /// broker's default.
    pub replication_factor: i32,
    /// `retention.ms` of the event topics ecomflow creates (None: the
    /// broker's default).
    pub retention_ms: Option<i64>,
    /// Create the catalog topic with `cleanup.policy=compact`: the latest
    /// version of each category, product and user is kept for ever.
    pub compact_catalog: bool,
    /// How long to wait for the cluster when connecting and for admin
    /// operations.
    pub timeout: Duration,
    /// A stable name for this process in its consumer groups (Kafka's
    /// static membership, `group.instance.id`): the `n`-th consumer of a
    /// group that this log makes is the member `NAME-GROUP-n`. A service
    /// started again under the same name takes its partitions back from
    /// the committed offsets without the group rebalancing; one that does
    /// not come back is expired after `session.timeout.ms` (10 s) and its
    /// partitions go to the others. None: dynamic members, as before.
    pub group_instance: Option<String>,
}

impl KafkaSettings {
    /// Settings for `brokers` with ecomflow's defaults: lz4, no prefix,
    /// replication factor 1, the broker's retention, 10 s to connect.
    pub fn new(brokers: &str) -> Self {
        KafkaSettings {
            brokers: brokers.to_string(),
            properties: Vec::new(),
            topic_prefix: String::new(),
            compression: crate::kafka_defaults::COMPRESSION.to_string(),
            replication_factor: crate::kafka_defaults::REPLICATION_FACTOR,
            retention_ms: None,
            compact_catalog: false,
            timeout: Duration::from_secs(crate::kafka_defaults::TIMEOUT_SECS),
            group_instance: None,
        }
    }

    /// The properties as they may be printed: values of secret keys
    /// replaced by `***`.
    pub fn redacted_properties(&self) -> Vec<(String, String)> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_key(k) {
                    "***".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("properties", &self.redacted_properties())
            .field("topic_prefix", &self.topic_prefix)
            .field("compression", &self.compression)
            .field("replication_factor", &self.replication_factor)
            .field("retention_ms", &self.retention_ms)
            .field("compact_catalog", &self.compact_catalog)
            .field("timeout", &self.timeout)
            .field("group_instance", &self.group_instance)
            .finish()
    }
}

/// A librdkafka property whose value is a secret: passwords, keys, tokens,
/// JAAS configurations.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "private",
        "credential",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Reads a Java-style properties file: `key=value` (or `key: value`) per
/// line, `#` and `!` comments, blank lines ignored.
pub fn read_properties(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LogError::Io(std::io::Error::new(
            e.kind(),
            format!("reading Kafka properties file {}: {e}", path.display()),
        ))
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let at = line.find(['=', ':']).ok_or_else(|| {
            LogError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} line {}: expected key=value",
                    path.display(),
                    n.saturating_add(1)
                ),
            ))
        })?;
        let (k, v) = line.split_at(at);
        out.push((k.trim().to_string(), v[1..].trim().to_string()));
    }
    Ok(out)
}

/// A Kafka (or Kafka-protocol) cluster.
#[derive(Debug, Clone)]
pub struct KafkaLog {
    settings: KafkaSettings,
    marker_dir: PathBuf,
    /// Consumers made so far per group: the `n` of a static member's name
    /// ([`KafkaSettings::group_instance`]).
    members: Arc<Mutex<HashMap<String, u32>>>,
}

impl KafkaLog {
    /// A log on the cluster at `brokers` (`host:port,…`) with the default
    /// settings. Producer markers are kept as files in `marker_dir`, since
    /// Kafka has no place for them.
    pub fn new(brokers: &str, marker_dir: PathBuf) -> Self {
        Self::with_settings(KafkaSettings::new(brokers), marker_dir)
    }

    /// A log on the cluster `settings` describe.
    pub fn with_settings(settings: KafkaSettings, marker_dir: PathBuf) -> Self {
        KafkaLog {
            settings,
            marker_dir,
            members: Arc::default(),
        }
    }

    /// Checks that the cluster answers within the settings' timeout: an
    /// error names the brokers and librdkafka's reason (a TLS or SASL
    /// failure shows here too).
    pub fn check_reachable(&self) -> Result<()> {
        let client: BaseConsumer = self
            .base_config()
            .create()
            .map_err(|e| self.client_error(e))?;
        let result = client.fetch_metadata(None, self.settings.timeout);
        drop(client);
        result.map(|_| ()).map_err(|e| LogError::Unreachable {
            brokers: self.settings.brokers.clone(),
            secs: self.settings.timeout.as_secs_f64(),
            cause: e.to_string(),
        })
    }

    /// A client that could not be created: librdkafka's message names the
    /// property at fault and repeats its value, so secret values are
    /// replaced by `***` before it goes anywhere.
    fn client_error(&self, e: KafkaError) -> LogError {
        let mut message = e.to_string();
        let mut secrets: Vec<&str> = self
            .settings
            .properties
            .iter()
            .filter(|(k, v)| is_secret_key(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        // Longest first, so that a secret holding another goes whole.
        secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in secrets {
            message = message.replace(v, "***");
        }
        LogError::KafkaClient(message)
    }

    /// The broker's name of ecomflow's topic `name`.
    fn physical(&self, name: &str) -> String {
        format!("{}{name}", self.settings.topic_prefix)
    }

    /// ecomflow's name of the broker's topic `name`.
    fn logical(&self, name: &str) -> String {
        name.strip_prefix(self.settings.topic_prefix.as_str())
            .unwrap_or(name)
            .to_string()
    }

    /// A client of `group` that does not join it: reads and writes its
    /// committed offsets.
    fn group_client(&self, group: &str) -> Result<BaseConsumer> {
        self.base_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| self.client_error(e))
    }

    /// Every partition of those of `topics` that exist (broker names).
    fn partitions_of(&self, client: &BaseConsumer, topics: &[&str]) -> Result<TopicPartitionList> {
        let metadata = client.fetch_metadata(None, self.settings.timeout)?;
        let wanted: Vec<String> = topics.iter().map(|t| self.physical(t)).collect();
        let mut tpl = TopicPartitionList::new();
        for t in metadata
            .topics()
            .iter()
            .filter(|t| wanted.iter().any(|w| w == t.name()))
        {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
        Ok(tpl)
    }

    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.settings.brokers)
            .set("client.id", "ecomflow")
            .set("socket.nagle.disable", "true")
            .set("log_level", "4");
        self.user_properties(&mut c);
        c
    }

    /// The user's properties, last, so that they override ours.
    /// The static member name of the next consumer of `group`, when the
    /// settings give this process a name: `NAME-GROUP-n`, `n` counting the
    /// consumers of the group made so far (ingest's workers start in
    /// order, so a restarted service gets the same names).
    fn member_name(&self, group: &str) -> Option<String> {
        let name = self.settings.group_instance.as_deref()?;
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let n = members.entry(group.to_string()).or_insert(0);
        let member = format!("{name}-{group}-{n}");
        *n = n.saturating_add(1);
        Some(member)
    }

    fn user_properties(&self, c: &mut ClientConfig) {
        for (k, v) in &self.settings.properties {
            c.set(k, v);
        }
    }

    fn marker_path(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.marker_dir.join(format!("{safe}.marker"))
    }
}

impl EventLog for KafkaLog {
    fn describe(&self) -> String {
        if self.settings.topic_prefix.is_empty() {
            format!("Kafka at {}", self.settings.brokers)
        } else {
            format!(
                "Kafka at {} (topics {}*)",
                self.settings.brokers, self.settings.topic_prefix
            )
        }
    }

    fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        let names: Vec<String> = topics.iter().map(|t| self.physical(&t.name)).collect();
        for name in &names {
            crate::check_topic_name(name)?;
        }
        // An unreachable cluster is named within the timeout, not after
        // the admin operation's own (longer) one.
        self.check_reachable()?;
        let admin: AdminClient<DefaultClientContext> = self
            .base_config()
            .create()
            .map_err(|e| self.client_error(e))?;
        let retention = self.settings.retention_ms.map(|ms| ms.to_string());
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .zip(&names)
            .map(|(t, name)| {
                let partitions = i32::try_from(t.partitions.max(1)).unwrap_or(i32::MAX);
                let mut topic = NewTopic::new(
                    name,
                    partitions,
                    TopicReplication::Fixed(self.settings.replication_factor),
                );
                if t.name == schemas::topics::CATALOG && self.settings.compact_catalog {
                    topic = topic.set("cleanup.policy", "compact");
                } else if let Some(ms) = &retention {
                    topic = topic.set("retention.ms", ms);
                }
                topic
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(self.settings.timeout))
            .request_timeout(Some(self.settings.timeout));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = runtime.block_on(admin.create_topics(new.iter(), &opts))?;
        for r in results {
            match r {
                Ok(name) => tracing::info!(topic = %name, "Created Kafka topic."),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(LogError::TopicCreation {
                        topic: name,
                        brokers: self.settings.brokers.clone(),
                        cause: KafkaError::AdminOp(code).to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    fn producer(&self) -> Result<Box<dyn LogProducer>> {
        let mut config = self.base_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &self.settings.compression)
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1048576")
            .set("queue.buffering.max.messages", "500000")
            .set("message.timeout.ms", "60000")
            .set("partitioner", "murmur2_random");
        self.user_properties(&mut config);
        let producer: ThreadedProducer<DeliveryTracker> = config
            .create_with_context(DeliveryTracker::default())
            .map_err(|e| self.client_error(e))?;
        Ok(Box::new(KafkaProducer {
            producer,
            log: self.clone(),
        }))
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<Box<dyn LogConsumer>> {
        let mut config = self.base_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("enable.partition.eof", "false");
        if let Some(instance) = self.member_name(group) {
            config.set("group.instance.id", instance);
        }
        self.user_properties(&mut config);
        let consumer: BaseConsumer = config.create().map_err(|e| self.client_error(e))?;
        let names: Vec<String> = topics.iter().map(|t| self.physical(t)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(Box::new(KafkaConsumer {
            consumer: Some(consumer),
            log: self.clone(),
        }))
    }

    fn sent_since(&self, topics: &[&str], run: u64, from: u64) -> Result<HashSet<u64>> {
        // Partitions are assigned, not subscribed: nothing is committed.
        let consumer: BaseConsumer = self
            .base_config()
            .set("group.id", "ecomflow-sent-since")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| self.client_error(e))?;
        let timeout = self.settings.timeout;
        let tpl = self.partitions_of(&consumer, topics)?;
        let mut found = HashSet::new();
        for e in tpl.elements() {
            let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
            // The run's records past its marker are the partition's last
            // ones: read back from the end, further while the first record
            // read is one of them.
            let mut window: i64 = 4096;
            loop {
                let start = high.saturating_sub(window).max(low);
                let (numbers, first_is_one) = read_tail(
                    &consumer,
                    (e.topic(), e.partition()),
                    (start, high),
                    timeout,
                    |s| s.run == run && s.number >= from,
                )?;
                found.extend(numbers);
                if !first_is_one || start == low {
                    break;
                }
                window = window.saturating_mul(4);
            }
        }
        close_bounded(Some(consumer))?;
        Ok(found)
    }

    fn lag(&self, group: &str, topics: &[&str]) -> Result<u64> {
        let consumer = self.group_client(group)?;
        let timeout = Duration::from_secs(10);
        let tpl = self.partitions_of(&consumer, topics)?;
        let mut ends = Vec::new();
        for e in tpl.elements() {
            let (_, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
            ends.push(((e.topic().to_string(), e.partition()), high.max(0) as u64));
        }
        let committed = consumer.committed_offsets(tpl, timeout)?;
        let mut lag = 0;
        for ((topic, partition), end) in ends {
            let done = committed
                .find_partition(&topic, partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o.max(0) as u64),
                    _ => None,
                })
                .unwrap_or(0);
            lag += end.saturating_sub(done);
        }
        close_bounded(Some(consumer))?;
        Ok(lag)
    }

    fn committed_offsets(&self, group: &str, topics: &[&str]) -> Result<Offsets> {
        let consumer = self.group_client(group)?;
        let tpl = self.partitions_of(&consumer, topics)?;
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
        let mut out = Offsets::new();
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                let partition = u32::try_from(e.partition()).unwrap_or(0);
                out.insert((self.logical(e.topic()), partition), o.max(0) as u64);
            }
        }
        close_bounded(Some(consumer))?;
        Ok(out)
    }

    fn reset_group(&self, group: &str, topics: &[&str]) -> Result<()> {
        let consumer = self.group_client(group)?;
        let mut tpl = self.partitions_of(&consumer, topics)?;
        tpl.set_all_offsets(Offset::Offset(0))?;
        if tpl.count() > 0 {
            consumer.commit(&tpl, CommitMode::Sync)?;
        }
        close_bounded(Some(consumer))?;
        Ok(())
    }

    fn set_group_offsets(&self, group: &str, offsets: &Offsets) -> Result<()> {
        let consumer = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            let offset = i64::try_from(*offset)
                .map_err(|_| out_of_range(format!("offset {offset} of {topic}/{partition}")))?;
            let partition = i32::try_from(*partition)
                .map_err(|_| out_of_range(format!("partition {partition} of {topic}")))?;
            tpl.add_partition_offset(&self.physical(topic), partition, Offset::Offset(offset))?;
        }
        if tpl.count() > 0 {
            consumer.commit(&tpl, CommitMode::Sync)?;
        }
        close_bounded(Some(consumer))?;
        Ok(())
    }

    fn marker(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.marker_path(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads a partition's records from offset `start` up to `high` (its end),
/// returning the numbers of those whose [`Sequence`] `wanted` accepts, and
/// whether the first record read was one of them.
fn read_tail(
    consumer: &BaseConsumer,
    (topic, partition): (&str, i32),
    (start, high): (i64, i64),
    timeout: Duration,
    wanted: impl Fn(Sequence) -> bool,
) -> Result<(Vec<u64>, bool)> {
    let mut numbers = Vec::new();
    if start >= high {
        return Ok((numbers, false));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut first: Option<bool> = None;
    loop {
        let Some(m) = consumer.poll(deadline.saturating_duration_since(Instant::now())) else {
            return Err(LogError::Timeout(format!(
                "reading {topic}/{partition} from offset {start} to {high}, to find what the last run sent"
            )));
        };
        let m = m?;
        let sequence = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == SEQUENCE_HEADER)
                .and_then(|h| h.value)
                .and_then(Sequence::from_bytes)
        });
        let ours = sequence.filter(|s| wanted(*s));
        first.get_or_insert(ours.is_some());
        if let Some(s) = ours {
            numbers.push(s.number);
        }
        if m.offset() >= high - 1 {
            break;
        }
    }
    Ok((numbers, first.unwrap_or(false)))
}

fn out_of_range(what: String) -> LogError {
    LogError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what} is out of Kafka's range"),
    ))
}

/// Counts messages the broker did not acknowledge.
#[derive(Default)]
struct DeliveryTracker {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

struct KafkaProducer {
    producer: ThreadedProducer<DeliveryTracker>,
    log: KafkaLog,
}

impl LogProducer for KafkaProducer {
    fn send(&mut self, topic: &str, key: &[u8], payload: &[u8], timestamp_ms: i64) -> Result<()> {
        self.send_record(topic, key, payload, timestamp_ms, None)
    }

    fn send_in_sequence(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        timestamp_ms: i64,
        sequence: Sequence,
    ) -> Result<()> {
        self.send_record(topic, key, payload, timestamp_ms, Some(sequence))
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_all()
    }

    fn flush_with_markers(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()> {
        self.flush_all()?;
        for (name, marker) in markers {
            let path = self.log.marker_path(name);
            stage::fsio::replace_with(&path, marker, stage::fsio::Durability::Process)?;
        }
        Ok(())
    }
}

impl KafkaProducer {
    fn send_record(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        timestamp_ms: i64,
        sequence: Option<Sequence>,
    ) -> Result<()> {
        let topic = self.log.physical(topic);
        let mut record = BaseRecord::to(&topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
        // One header per record (see `PUBLISHED_HEADER`).
        let now = crate::now_us();
        let (published, sequenced) = (now.to_be_bytes(), sequence.map(|s| s.to_header(now)));
        let header = match &sequenced {
            Some(bytes) => Header {
                key: SEQUENCE_HEADER,
                value: Some(&bytes[..]),
            },
            None => Header {
                key: PUBLISHED_HEADER,
                value: Some(&published[..]),
            },
        };
        record = record.headers(OwnedHeaders::new_with_capacity(1).insert(header));
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: librdkafka's queue is full until the
                    // broker acknowledges some batches.
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn flush_all(&mut self) -> Result<()> {
        self.producer.flush(FLUSH_TIMEOUT).map_err(|e| match e {
            KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut) => LogError::Timeout(format!(
                "broker did not acknowledge within {FLUSH_TIMEOUT:?}"
            )),
            other => other.into(),
        })?;
        let ctx = self.producer.context();
        let count = ctx.failed.swap(0, Ordering::Relaxed);
        if count > 0 {
            let first = ctx
                .first
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            return Err(LogError::Delivery { count, first });
        }
        Ok(())
    }
}

struct KafkaConsumer {
    consumer: Option<BaseConsumer>,
    log: KafkaLog,
}

impl LogConsumer for KafkaConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(Vec::new());
        };
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < max {
            let wait = if out.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => out.push(Record {
                    topic: self.log.logical(m.topic()),
                    partition: m.partition().max(0) as u32,
                    offset: m.offset().max(0) as u64,
                    key: m.key().unwrap_or_default().to_vec(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                    published_us: m.headers().and_then(|h| {
                        h.iter().find_map(|h| match (h.key, h.value) {
                            (PUBLISHED_HEADER, Some(v)) => {
                                v.first_chunk::<8>().map(|b| i64::from_be_bytes(*b))
                            }
                            (SEQUENCE_HEADER, Some(v)) => Sequence::published_in(v),
                            _ => None,
                        })
                    }),
                }),
                Some(Err(e)) if out.is_empty() => return Err(e.into()),
                Some(Err(e)) => {
                    // Hand over what we have; the error will show again.
                    tracing::warn!(error = %e, "Kafka poll failed after some records.");
                    break;
                }
            }
        }
        Ok(out)
    }

    fn commit(&mut self, offsets: &Offsets) -> Result<()> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(());
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            let partition = i32::try_from(*partition)
                .map_err(|_| out_of_range(format!("partition {partition} of {topic}")))?;
            let offset = i64::try_from(*offset)
                .map_err(|_| out_of_range(format!("offset {offset} of {topic}")))?;
            tpl.add_partition_offset(&self.log.physical(topic), partition, Offset::Offset(offset))?;
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<(String, u32)>> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(Vec::new());
        };
        let mut a: Vec<(String, u32)> = consumer
            .assignment()?
            .elements()
            .iter()
            .map(|e| (self.log.logical(e.topic()), e.partition().max(0) as u32))
            .collect();
        a.sort();
        Ok(a)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        close_bounded(self.consumer.take())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        if let Err(e) = close_bounded(self.consumer.take()) {
            tracing::warn!(error = %e, "Kafka consumer did not close cleanly.");
        }
    }
}

/// librdkafka's destroy was seen to hang after heavy consuming; close on a
/// helper thread and give up waiting after [`CLOSE_TIMEOUT`].
fn close_bounded(consumer: Option<BaseConsumer>) -> Result<()> {
    let Some(consumer) = consumer else {
        return Ok(());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            consumer.unsubscribe();
            drop(consumer);
            let _ = tx.send(());
        })?;
    rx.recv_timeout(CLOSE_TIMEOUT).map_err(|_| {
        LogError::Timeout(format!(
            "Kafka consumer did not close within {CLOSE_TIMEOUT:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(properties: &[(&str, &str)]) -> KafkaLog {
        let mut settings = KafkaSettings::new("127.0.0.1:9");
        settings.properties = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings.timeout = Duration::from_secs(2);
        KafkaLog::with_settings(settings, std::env::temp_dir())
    }

    /// A named process's consumers are static members `NAME-GROUP-n`,
    /// counted per group in the order they are made, so that a restarted
    /// service with the same workers gets the same names; an unnamed one
    /// makes dynamic members.
    #[test]
    fn static_member_names_count_per_group() {
        let unnamed = log_with(&[]);
        assert_eq!(unnamed.member_name("ingest"), None);
        let mut settings = KafkaSettings::new("127.0.0.1:9");
        settings.group_instance = Some("ingest-2".into());
        let named = KafkaLog::with_settings(settings, std::env::temp_dir());
        let names: Vec<_> = ["ingest", "ingest", "aggregator", "ingest"]
            .iter()
            .map(|g| named.member_name(g))
            .collect();
        assert_eq!(
            names,
            [
                Some("ingest-2-ingest-0".to_string()),
                Some("ingest-2-ingest-1".to_string()),
                Some("ingest-2-aggregator-0".to_string()),
                Some("ingest-2-ingest-2".to_string()),
            ]
        );
        // A clone (each stage gets one) counts on from the same numbers.
        assert_eq!(
            named.clone().member_name("ingest").as_deref(),
            Some("ingest-2-ingest-3")
        );
    }

    /// SASL and TLS settings reach librdkafka: no local broker here speaks
    /// SASL, so a wrong mechanism shows that librdkafka itself read them
    /// (its own error names the value), and the real mechanisms are
    /// accepted (librdkafka was built with SSL and SCRAM).
    #[test]
    fn properties_reach_librdkafka() {
        let err = log_with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "BOGUS-MECH"),
        ])
        .producer()
        .err()
        .expect("a wrong mechanism is refused")
        .to_string();
        assert!(
            err.contains("BOGUS-MECH") || err.contains("sasl.mechanism"),
            "{err}"
        );
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let props = [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
            ];
            log_with(&props)
                .producer()
                .unwrap_or_else(|e| panic!("{mechanism} refused: {e}"));
        }
        // A property this build lacks: librdkafka's error repeats the value,
        // which is a secret here; it never reaches the message.
        let err = log_with(&[("sasl.oauthbearer.client.secret", "hunter2-s3cret")])
            .producer()
            .err()
            .expect("not in this build")
            .to_string();
        assert!(err.contains("sasl.oauthbearer.client.secret"), "{err}");
        assert!(!err.contains("hunter2-s3cret"), "{err}");
        let err = log_with(&[("no.such.property", "1")])
            .producer()
            .err()
            .expect("an unknown property is refused")
            .to_string();
        assert!(err.contains("no.such.property"), "{err}");
    }

    /// Compression codecs librdkafka was built with: every one a producer
    /// may be asked for (consumers decode what they were built for).
    #[test]
    fn every_codec_is_built_in() {
        for codec in ["lz4", "zstd", "gzip", "snappy", "none"] {
            let mut settings = KafkaSettings::new("127.0.0.1:9");
            settings.compression = codec.to_string();
            KafkaLog::with_settings(settings, std::env::temp_dir())
                .producer()
                .unwrap_or_else(|e| panic!("{codec}: {e}"));
        }
    }

    /// A broker that does not answer is an error naming it within the
    /// timeout, not a minute of retries.
    #[test]
    fn an_unreachable_broker_is_named_within_the_timeout() {
        let log = log_with(&[]);
        let started = std::time::Instant::now();
        let err = log
            .ensure_topics(&[TopicSpec::new("sessions", 1)])
            .expect_err("nothing listens on port 9")
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.contains("cannot reach the Kafka brokers 127.0.0.1:9"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_and_properties_files_read() {
        let mut settings = KafkaSettings::new("b:9093");
        settings.properties = vec![
            ("sasl.password".into(), "hunter2".into()),
            ("sasl.jaas.config".into(), "x password=\"hunter2\"".into()),
            ("ssl.key.password".into(), "hunter2".into()),
            ("sasl.oauthbearer.client.secret".into(), "hunter2".into()),
            ("security.protocol".into(), "SASL_SSL".into()),
        ];
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SASL_SSL"), "{shown}");
        let dir = std::env::temp_dir().join(format!("ecomflow-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("client.properties");
        std::fs::write(
            &file,
            "# a comment\n! another\n\nsecurity.protocol = SASL_SSL\nsasl.mechanism: PLAIN\nsasl.password=a=b\n",
        )
        .expect("write");
        let props = read_properties(&file).expect("read");
        assert_eq!(
            props,
            vec![
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanism".to_string(), "PLAIN".to_string()),
                ("sasl.password".to_string(), "a=b".to_string()),
            ]
        );
        std::fs::write(&file, "just words\n").expect("write");
        let err = read_properties(&file).expect_err("no =").to_string();
        assert!(err.contains("line 1: expected key=value"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
