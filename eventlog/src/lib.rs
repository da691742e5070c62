//! The event log every stage talks through: keyed, partitioned topics,
//! consumer groups and committed offsets, behind one trait.
//!
//! Two implementations:
//! - [`embedded::EmbeddedLog`], the default: a durable log in one local
//!   directory on the fjall storage engine, for one process.
//! - `kafka::KafkaLog`: Apache Kafka (or any Kafka-protocol broker) through
//!   rdkafka, with the `kafka` feature.
//!
//! Contract, the same for both:
//! - records with the same key land in the same partition, in send order;
//! - [`LogProducer::flush`] returns only when everything sent before it is
//!   durable (or returns an error);
//! - each partition of a subscribed topic is read by exactly one member of a
//!   consumer group at a time; a member starts at the group's committed
//!   offset (or at the beginning), and offsets are committed only when the
//!   caller says its work is done ([`LogConsumer::commit`]).
//!
//! # Layout
//!
//! - this file: the traits, [`Record`], [`TopicSpec`], [`LogError`].
//! - [`embedded`]: the fjall-backed log.
//! - `kafka`: the rdkafka-backed log (the `kafka` feature).

pub mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;

/// Kafka settings' defaults, here so that a build without the `kafka`
/// feature (whose flags still list them) takes them from the same place.
pub mod kafka_defaults {
    /// Codec of the batches ecomflow produces.
    pub const COMPRESSION: &str = "lz4";
    /// Replication factor of the topics ecomflow creates (1 suits one
    /// broker; a production cluster wants 3).
    pub const REPLICATION_FACTOR: i32 = 1;
    /// Seconds a request to the cluster may take.
    pub const TIMEOUT_SECS: u64 = 10;
}

use std::collections::BTreeMap;
use std::time::Duration;

/// One record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic it was read from.
    pub topic: String,
    /// Partition within the topic.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
    /// Partitioning key (a user id for events).
    pub key: Vec<u8>,
    /// The encoded event.
    pub payload: Vec<u8>,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// When the producer sent it: wall-clock microseconds since the Unix
    /// epoch, stamped by the log's producer (on Kafka in the record's one
    /// header: [`PUBLISHED_HEADER`], or after the [`Sequence`] in
    /// [`SEQUENCE_HEADER`]; a field of the embedded log's frames from
    /// layout 5). `None` for records written without one. The aggregator
    /// measures freshness from it.
    pub published_us: Option<i64>,
}

/// The Kafka header that holds when a record without a [`Sequence`] was
/// sent ([`Record::published_us`]): a big-endian i64 of microseconds since
/// the Unix epoch. A record carries one header, this or
/// [`SEQUENCE_HEADER`]: tansu, the broker the tests run, stalled its
/// consumers' fetches on records with two.
pub const PUBLISHED_HEADER: &str = "ecomflow-published";

/// Wall-clock microseconds since the Unix epoch (0 before it).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A record's place in its producer's run: the run that sent it (a number
/// drawn when the run began, kept in the run's marker) and the record's
/// number in that run. Kafka records carry it in the header
/// [`SEQUENCE_HEADER`], so that a producer resuming after a crash between
/// the broker's acknowledgement and its marker finds which of its records
/// the broker already holds ([`EventLog::sent_since`]) and sends them no
/// more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// The run.
    pub run: u64,
    /// The record's number in the run.
    pub number: u64,
}

/// The Kafka header that holds a record's [`Sequence`]: run, then number,
/// each a big-endian u64, then when it was sent, as in
/// [`PUBLISHED_HEADER`] (headers of 16 bytes, written before records
/// carried that, are read too).
pub const SEQUENCE_HEADER: &str = "ecomflow-sequence";

impl Sequence {
    /// The header value: the sequence, then `published_us`.
    pub fn to_header(self, published_us: i64) -> [u8; 24] {
        let mut b = [0; 24];
        b[..8].copy_from_slice(&self.run.to_be_bytes());
        b[8..16].copy_from_slice(&self.number.to_be_bytes());
        b[16..].copy_from_slice(&published_us.to_be_bytes());
        b
    }

    /// When a [`SEQUENCE_HEADER`] value says its record was sent; `None`
    /// for a 16-byte value.
    pub fn published_in(b: &[u8]) -> Option<i64> {
        Some(i64::from_be_bytes(*b.get(16..)?.first_chunk::<8>()?))
    }

    /// Reads a header value; `None` unless it is 16 or 24 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 16 && b.len() != 24 {
            return None;
        }
        let (run, rest) = b.split_first_chunk::<8>()?;
        Some(Sequence {
            run: u64::from_be_bytes(*run),
            number: u64::from_be_bytes(*rest.first_chunk::<8>()?),
        })
    }
}

/// A topic to create, with its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name: ASCII letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
}

impl TopicSpec {
    /// A topic with `partitions` partitions.
    pub fn new(name: &str, partitions: u32) -> Self {
        TopicSpec {
            name: name.to_string(),
            partitions,
        }
    }

    /// The shop's topics ([`schemas::topics::shop`]), each event topic with
    /// `partitions` partitions.
    pub fn shop(partitions: u32) -> Vec<TopicSpec> {
        schemas::topics::shop(partitions)
            .into_iter()
            .map(|(name, partitions)| TopicSpec::new(name, partitions))
            .collect()
    }
}

/// Next offset to read, per (topic, partition).
pub type Offsets = BTreeMap<(String, u32), u64>;

/// The offsets to commit after `records` have been processed: one past the
/// highest offset seen per partition.
pub fn offsets_after(records: &[Record]) -> Offsets {
    let mut out = Offsets::new();
    for r in records {
        let next = out.entry((r.topic.clone(), r.partition)).or_insert(0);
        *next = (*next).max(r.offset + 1);
    }
    out
}

/// Errors from either implementation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The embedded storage engine failed.
    #[error("embedded log storage: {0}")]
    Storage(#[from] fjall::Error),
    /// Another process holds the embedded log directory.
    #[error("the log directory {0} is in use by another process (is another ecomflow running on this --data-dir?)")]
    Locked(String),
    /// A file-system error. Not a `source`: the message holds it once,
    /// rather than twice in an error chain.
    #[error("log I/O: {0}")]
    Io(std::io::Error),
    /// The Kafka client or broker failed.
    #[cfg(feature = "kafka")]
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Messages the broker did not acknowledge.
    #[error("{count} message(s) were not delivered; first error: {first}")]
    Delivery {
        /// How many failed.
        count: u64,
        /// The first failure.
        first: String,
    },
    /// A topic that was never created.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// A topic name the log cannot hold.
    #[error("invalid topic name {0:?}: use ASCII letters, digits, '.', '_' and '-'")]
    InvalidTopic(String),
    /// A stored record that cannot be decoded.
    #[error("corrupt record at {topic}/{partition}@{offset}")]
    Corrupt {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
    },
    /// A stored record whose checksum does not match its bytes.
    #[error("record {topic}/{partition}@{offset} (in partitions/{topic}/{partition}.log of the log's directory) fails its checksum: the log is damaged; restore the data dir from a backup, or start over with --fresh")]
    Checksum {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
    },
    /// A consumer's commit up to records whose producer did not commit
    /// them: its write failed, or did not finish within a minute.
    #[error("records of {topic}/{partition} below offset {offset} were read but their producer did not commit them (its write failed, or did not finish within a minute); the run stops here and starts again from the last commit")]
    Uncommitted {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// The offset the consumer asked to commit.
        offset: u64,
    },
    /// An operation that did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A Kafka client could not be created (a bad property): librdkafka's
    /// message, secrets replaced by `***`.
    #[error("kafka: {0}")]
    KafkaClient(String),
    /// The Kafka cluster did not answer.
    #[error("cannot reach the Kafka brokers {brokers} within {secs} s ({cause}); check --kafka-brokers, the network, and the TLS/SASL properties (--kafka-property)")]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// How long we waited.
        secs: f64,
        /// librdkafka's reason.
        cause: String,
    },
    /// The cluster refused to create a topic.
    #[error("creating the Kafka topic {topic} on {brokers}: {cause}")]
    TopicCreation {
        /// The topic (as the broker names it).
        topic: String,
        /// The bootstrap servers.
        brokers: String,
        /// The broker's reason.
        cause: String,
    },
}

impl From<std::io::Error> for LogError {
    fn from(e: std::io::Error) -> Self {
        LogError::Io(e)
    }
}

impl LogError {
    /// Whether trying again later may succeed (broker down, timeout) as
    /// opposed to a permanent fault (bad configuration, corrupt data).
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(feature = "kafka")]
            LogError::Kafka(_) => true,
            LogError::Delivery { .. } | LogError::Timeout(_) => true,
            _ => false,
        }
    }
}

/// Result alias for log operations.
pub type Result<T> = std::result::Result<T, LogError>;

/// Checks a topic name (the embedded log uses a NUL separator in its keys).
pub fn check_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidTopic(name.to_string()))
    }
}

/// A log: creates topics and hands out producers and consumers.
pub trait EventLog: Send + Sync {
    /// Which implementation this is (`embedded`, `kafka`), for logs.
    fn describe(&self) -> String;

    /// Creates the topics that do not exist yet; existing ones are kept.
    fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()>;

    /// A new producer.
    fn producer(&self) -> Result<Box<dyn LogProducer>>;

    /// A new member of consumer group `group`, subscribed to `topics`.
    fn consumer(&self, group: &str, topics: &[&str]) -> Result<Box<dyn LogConsumer>>;

    /// The marker last stored with [`LogProducer::flush_with_markers`] under
    /// `name`, if any: how a producer finds where it left off.
    fn marker(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// The numbers, from `from` on, of the records that run `run` sent to
    /// `topics` and the log holds ([`Sequence`]). On the embedded log, none:
    /// a flush and its marker are one atomic write, so the marker tells
    /// everything. On Kafka, the records the broker acknowledged after the
    /// run's last marker (a crash between the two), found by reading each
    /// partition back from its end.
    fn sent_since(
        &self,
        topics: &[&str],
        run: u64,
        from: u64,
    ) -> Result<std::collections::HashSet<u64>> {
        let _ = (topics, run, from);
        Ok(std::collections::HashSet::new())
    }

    /// Records in `topics` that `group` has not committed yet (end offsets
    /// minus committed offsets, over all partitions).
    fn lag(&self, group: &str, topics: &[&str]) -> Result<u64>;

    /// The offsets `group` has committed in `topics` (next offset to read,
    /// per partition), only for partitions with a commit; topics that do
    /// not exist yet have none.
    fn committed_offsets(&self, group: &str, topics: &[&str]) -> Result<Offsets>;

    /// Sets `group`'s committed offsets in `topics` back to the start, so
    /// that its next consumer reads every partition from offset 0. Call it
    /// while no member of the group is running.
    fn reset_group(&self, group: &str, topics: &[&str]) -> Result<()>;

    /// Sets `group`'s committed offset of each partition in `offsets` to
    /// the value given (lower or higher). Call it while no member of the
    /// group is running.
    fn set_group_offsets(&self, group: &str, offsets: &Offsets) -> Result<()>;
}

/// Where a consumer's own state (a store's recorded progress, a checkpoint)
/// is behind what `group` committed in `topics`, which is what a machine
/// crash leaves when the state's last writes were not yet on disk: sets the
/// group back to `held` on those partitions (a partition missing from
/// `held` goes back to 0), so the records the state lost are read again.
/// Returns the partitions moved, each also logged as a warning naming
/// `state` (what holds the offsets, e.g. "the stores").
pub fn rewind_to_held(
    log: &dyn EventLog,
    group: &str,
    topics: &[&str],
    held: &Offsets,
    state: &str,
) -> Result<Vec<Rewound>> {
    let committed = log.committed_offsets(group, topics)?;
    let behind: Vec<Rewound> = committed
        .into_iter()
        .filter_map(|(partition, committed)| {
            let held = held.get(&partition).copied().unwrap_or(0);
            (held < committed).then_some(Rewound {
                partition,
                committed,
                held,
            })
        })
        .collect();
    if !behind.is_empty() {
        let to: Offsets = behind
            .iter()
            .map(|r| (r.partition.clone(), r.held))
            .collect();
        log.set_group_offsets(group, &to)?;
    }
    for r in &behind {
        tracing::warn!(
            group,
            topic = %r.partition.0,
            partition = r.partition.1,
            committed = r.committed,
            held = r.held,
            "{state} hold less than the group committed (a machine crash lost their last writes?); reading those records again."
        );
    }
    Ok(behind)
}

/// A partition [`rewind_to_held`] set back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewound {
    /// (topic, partition).
    pub partition: (String, u32),
    /// The offset the group had committed.
    pub committed: u64,
    /// The offset the state holds, where the group now resumes.
    pub held: u64,
}

impl Rewound {
    /// Records to read again.
    pub fn records(&self) -> u64 {
        self.committed - self.held
    }
}

/// Publishes records.
pub trait LogProducer: Send {
    /// Queues a record; partitioned by `key`. Not durable until a flush.
    fn send(&mut self, topic: &str, key: &[u8], payload: &[u8], timestamp_ms: i64) -> Result<()>;

    /// [`send`](Self::send), with the record's place in its producer's run
    /// where the log keeps one (a Kafka header; the embedded log needs none,
    /// see [`EventLog::sent_since`]).
    fn send_in_sequence(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        timestamp_ms: i64,
        sequence: Sequence,
    ) -> Result<()> {
        let _ = sequence;
        self.send(topic, key, payload, timestamp_ms)
    }

    /// Makes everything sent so far durable.
    fn flush(&mut self) -> Result<()>;

    /// Flushes, then records each `(name, value)` marker (see
    /// [`EventLog::marker`]). On the embedded log the records and the markers
    /// are written atomically, so a producer that resumes from its markers
    /// neither loses nor repeats a record. On Kafka the markers are written
    /// after the broker acknowledged the records, so a crash between the two
    /// leaves records past the marker: a producer that sent them with
    /// [`send_in_sequence`](Self::send_in_sequence) finds them with
    /// [`EventLog::sent_since`]; others repeat them (at least once).
    fn flush_with_markers(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()>;

    /// [`flush_with_markers`](Self::flush_with_markers) with one marker.
    fn flush_with_marker(&mut self, name: &str, marker: &[u8]) -> Result<()> {
        self.flush_with_markers(&[(name.to_string(), marker.to_vec())])
    }
}

/// Reads records as a member of a consumer group.
pub trait LogConsumer: Send {
    /// Up to `max` records from the assigned partitions, waiting at most
    /// `timeout` when none is available. An empty result is not an error.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>>;

    /// Commits `offsets` (next offset to read, per partition) for the group.
    fn commit(&mut self, offsets: &Offsets) -> Result<()>;

    /// The partitions this member currently reads, sorted. Assignment
    /// happens during [`poll`](Self::poll), as in Kafka.
    fn assignment(&self) -> Result<Vec<(String, u32)>>;

    /// Leaves the group; bounded in time even if the client misbehaves.
    fn close(self: Box<Self>) -> Result<()>;
}

/// How long Kafka clients may take to close before we give up on them.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, partition: u32, offset: u64) -> Record {
        Record {
            topic: topic.into(),
            partition,
            offset,
            key: vec![],
            payload: vec![],
            timestamp_ms: 0,
            published_us: None,
        }
    }

    #[test]
    fn sequence_headers_of_both_lengths_read_back() {
        let s = Sequence {
            run: 7,
            number: 1 << 40,
        };
        let h = s.to_header(1_700_000_000_123_456);
        assert_eq!(Sequence::from_bytes(&h), Some(s));
        assert_eq!(Sequence::published_in(&h), Some(1_700_000_000_123_456));
        // As records sent before the publish time was added carry it.
        assert_eq!(Sequence::from_bytes(&h[..16]), Some(s));
        assert_eq!(Sequence::published_in(&h[..16]), None);
        for len in [0, 8, 15, 17, 23, 25] {
            let mut b = h.to_vec();
            b.resize(len, 0);
            assert_eq!(Sequence::from_bytes(&b), None, "{len} bytes");
        }
    }

    #[test]
    fn offsets_after_takes_one_past_the_highest_per_partition() {
        let got = offsets_after(&[
            rec("a", 0, 4),
            rec("a", 0, 2),
            rec("a", 1, 0),
            rec("b", 0, 9),
        ]);
        let want: Offsets = [
            (("a".into(), 0), 5),
            (("a".into(), 1), 1),
            (("b".into(), 0), 10),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(check_topic_name("dead-letters").is_ok());
        assert!(check_topic_name("a.b_c").is_ok());
        assert!(check_topic_name("").is_err());
        assert!(check_topic_name("a\0b").is_err());
        assert!(check_topic_name("a/b").is_err());
    }
}
