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

use crate::{
    EventLog, LogConsumer, LogError, LogProducer, Offsets, Record, Result, TopicSpec, CLOSE_TIMEOUT,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How long a flush may wait for the broker's acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// A Kafka (or Kafka-protocol) cluster.
#[derive(Debug, Clone)]
pub struct KafkaLog {
    brokers: String,
    marker_dir: PathBuf,
}

impl KafkaLog {
    /// A log on the cluster at `brokers` (`host:port,…`). Producer markers
    /// are kept as files in `marker_dir`, since Kafka has no place for them.
    pub fn new(brokers: &str, marker_dir: PathBuf) -> Self {
        KafkaLog {
            brokers: brokers.to_string(),
            marker_dir,
        }
    }

    /// A client of `group` that does not join it: reads and writes its
    /// committed offsets.
    fn group_client(&self, group: &str) -> Result<BaseConsumer> {
        Ok(self
            .base_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?)
    }

    /// Every partition of those of `topics` that exist.
    fn partitions_of(&self, client: &BaseConsumer, topics: &[&str]) -> Result<TopicPartitionList> {
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata
            .topics()
            .iter()
            .filter(|t| topics.contains(&t.name()))
        {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
        Ok(tpl)
    }

    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "ecomflow")
            .set("socket.nagle.disable", "true")
            .set("log_level", "4");
        c
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
        format!("Kafka at {}", self.brokers)
    }

    fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        for t in topics {
            crate::check_topic_name(&t.name)?;
        }
        let admin: AdminClient<DefaultClientContext> = self.base_config().create()?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                NewTopic::new(
                    &t.name,
                    t.partitions.max(1) as i32,
                    TopicReplication::Fixed(1),
                )
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = runtime.block_on(admin.create_topics(new.iter(), &opts))?;
        for r in results {
            match r {
                Ok(name) => tracing::info!(topic = %name, "Created Kafka topic."),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(LogError::Kafka(KafkaError::AdminOp(code))).inspect_err(|e| {
                        tracing::error!(topic = %name, error = %e, "Topic creation failed.");
                    })
                }
            }
        }
        Ok(())
    }

    fn producer(&self) -> Result<Box<dyn LogProducer>> {
        let producer: ThreadedProducer<DeliveryTracker> = self
            .base_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1048576")
            .set("queue.buffering.max.messages", "500000")
            .set("message.timeout.ms", "60000")
            .set("partitioner", "murmur2_random")
            .create_with_context(DeliveryTracker::default())?;
        Ok(Box::new(KafkaProducer {
            producer,
            log: self.clone(),
        }))
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<Box<dyn LogConsumer>> {
        let consumer: BaseConsumer = self
            .base_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("enable.partition.eof", "false")
            .create()?;
        consumer.subscribe(topics)?;
        Ok(Box::new(KafkaConsumer {
            consumer: Some(consumer),
        }))
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
                out.insert((e.topic().to_string(), partition), o.max(0) as u64);
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
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
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
        let mut record = BaseRecord::to(topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
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

    fn flush(&mut self) -> Result<()> {
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

    fn flush_with_markers(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()> {
        self.flush()?;
        for (name, marker) in markers {
            let path = self.log.marker_path(name);
            schemas::fsio::replace_with(&path, marker, schemas::fsio::Durability::Process)?;
        }
        Ok(())
    }
}

struct KafkaConsumer {
    consumer: Option<BaseConsumer>,
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
                    topic: m.topic().to_string(),
                    partition: m.partition().max(0) as u32,
                    offset: m.offset().max(0) as u64,
                    key: m.key().unwrap_or_default().to_vec(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
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
            tpl.add_partition_offset(topic, *partition as i32, Offset::Offset(*offset as i64))?;
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
            .map(|e| (e.topic().to_string(), e.partition().max(0) as u32))
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
