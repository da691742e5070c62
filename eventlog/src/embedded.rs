//! The embedded log: topics, partitions, consumer groups and committed
//! offsets in one local directory, on the fjall LSM storage engine.
//!
//! Storage layout (fjall keyspaces):
//! - `records:<topic>:<partition>`, one per partition: key `offset(u64 BE)`,
//!   value `timestamp_ms(i64 BE) key_len(u32 BE) key payload`. A partition's
//!   keys only grow, so each flushed table follows the one before it and
//!   compaction moves tables down without rewriting them. (In one keyspace
//!   for all partitions, every flush overlapped every table below it, and
//!   compacting rewrote the whole log again and again: 27% of the CPU of
//!   publishing.) Logs written before 2026-11-27 kept every partition in
//!   one `records` keyspace (key `topic NUL partition(u32 BE)
//!   offset(u64 BE)`); [`EmbeddedLog::open`] moves them.
//! - `meta`: `t NUL topic` → partition count; `o NUL group NUL topic NUL
//!   partition` → committed offset; `m NUL name` → producer marker.
//!
//! A producer's buffered records (and its marker) are written in one atomic
//! batch, so after a crash a partition holds a prefix of what was sent, and
//! the marker agrees with it. Group membership lives in memory: the log is
//! for one process (fjall locks the directory), and the members of a group
//! within it share the partitions round-robin, rebalancing when one joins or
//! leaves, as Kafka does.

use crate::{
    check_topic_name, EventLog, LogConsumer, LogError, LogProducer, Offsets, Record, Result,
    TopicSpec,
};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use schemas::fsio::Durability;

/// fjall's persist mode for a durability.
fn mode(durability: Durability) -> PersistMode {
    match durability {
        Durability::Process => PersistMode::Buffer,
        Durability::Machine => PersistMode::SyncData,
    }
}

/// Stable hash partitioner (FNV-1a), the same on every run and platform.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

#[derive(Default)]
struct Group {
    members: Vec<u64>,
    generation: u64,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, u32>,
    partitions: HashMap<(String, u32), Partition>,
    groups: HashMap<String, Group>,
    next_member: u64,
}

/// A partition: its keyspace and the offset its next record gets.
struct Partition {
    records: Keyspace,
    next: u64,
}

impl State {
    /// The offset a partition's next record gets (0 for one not known).
    fn end(&self, tp: &(String, u32)) -> u64 {
        self.partitions.get(tp).map_or(0, |p| p.next)
    }
}

struct Inner {
    path: PathBuf,
    db: Database,
    meta: Keyspace,
    durability: Durability,
    state: Mutex<State>,
    appended: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind,
        // still consistent with what was committed to disk.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write batch that goes as far towards the disk as the log was
    /// opened to.
    fn write_batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(mode(self.durability)))
    }
}

/// The keyspace of a partition's records.
fn records_name(topic: &str, partition: u32) -> String {
    format!("records:{topic}:{partition}")
}

/// Opens (or creates) a partition's keyspace.
fn open_records(db: &Database, topic: &str, partition: u32) -> Result<Keyspace> {
    let name = records_name(topic, partition);
    if name.len() > MAX_KEYSPACE_NAME {
        // `ensure_topics` refuses such topics; a log that holds one anyway
        // is damaged.
        return Err(LogError::Corrupt {
            topic: topic.to_string(),
            partition,
            offset: 0,
        });
    }
    Ok(db.keyspace(&name, || {
        KeyspaceCreateOptions::default()
            .max_memtable_size(PARTITION_MEMTABLE_BYTES)
            // Read by ranges only: no filters to build.
            .filter_policy(fjall::config::FilterPolicy::disabled())
    })?)
}

/// The longest keyspace name fjall takes.
const MAX_KEYSPACE_NAME: usize = 255;

/// The next offset of a partition: one past its last record.
fn next_offset(records: &Keyspace) -> Result<u64> {
    Ok(match records.last_key_value() {
        Some(kv) => be_u64(&kv.key()?).map_or(0, |o| o.saturating_add(1)),
        None => 0,
    })
}

/// Moves the records of a log written before 2026-11-27 (one `records`
/// keyspace for every partition) into a keyspace per partition, then
/// drops the old keyspace. Copying again what a crash interrupted writes
/// the same keys and values, so the move simply starts over.
fn move_legacy_records(db: &Database, topics: &BTreeMap<String, u32>) -> Result<()> {
    if !db.keyspace_exists(LEGACY_RECORDS) {
        return Ok(());
    }
    let legacy = db.keyspace(LEGACY_RECORDS, KeyspaceCreateOptions::default)?;
    tracing::info!(
        "Moving the log's records to a keyspace per partition, once (about 10 s for the default shop's 2.5M events)."
    );
    let mut moved = 0u64;
    for (topic, &partitions) in topics {
        for p in 0..partitions {
            let target = open_records(db, topic, p)?;
            let mut prefix = legacy_record_key(topic, p, 0);
            prefix.truncate(prefix.len() - 8);
            let mut batch = db.batch();
            let mut in_batch = 0usize;
            for kv in legacy.prefix(&prefix) {
                let (k, v) = kv.into_inner()?;
                let offset = k.get(prefix.len()..).ok_or(LogError::Corrupt {
                    topic: topic.clone(),
                    partition: p,
                    offset: 0,
                })?;
                batch.insert(&target, offset, v);
                in_batch += 1;
                if in_batch == 10_000 {
                    batch.commit()?;
                    batch = db.batch();
                    moved += in_batch as u64;
                    in_batch = 0;
                }
            }
            batch.commit()?;
            moved += in_batch as u64;
        }
    }
    db.persist(PersistMode::SyncAll)?;
    db.delete_keyspace(legacy)?;
    tracing::info!(
        records = moved,
        "Moved the log's records to a keyspace per partition (the layout since 2026-11-27)."
    );
    Ok(())
}

/// The one keyspace of every partition's records, before 2026-11-27.
const LEGACY_RECORDS: &str = "records";

/// A record's key in the [`LEGACY_RECORDS`] keyspace.
fn legacy_record_key(topic: &str, partition: u32, offset: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 13);
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

fn offset_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + topic.len() + 8);
    k.extend_from_slice(b"o\0");
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn topic_key(topic: &str) -> Vec<u8> {
    [b"t\0".as_slice(), topic.as_bytes()].concat()
}

fn marker_key(name: &str) -> Vec<u8> {
    [b"m\0".as_slice(), name.as_bytes()].concat()
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn encode_value(key: &[u8], payload: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + key.len() + payload.len());
    v.extend_from_slice(&timestamp_ms.to_be_bytes());
    v.extend_from_slice(&(key.len() as u32).to_be_bytes());
    v.extend_from_slice(key);
    v.extend_from_slice(payload);
    v
}

fn decode_value(topic: &str, partition: u32, offset: u64, v: &[u8]) -> Result<Record> {
    let corrupt = || LogError::Corrupt {
        topic: topic.to_string(),
        partition,
        offset,
    };
    let ts = i64::from_be_bytes(
        v.get(..8)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    );
    let key_len = be_u32(v.get(8..).ok_or_else(corrupt)?).ok_or_else(corrupt)? as usize;
    let key = v.get(12..12 + key_len).ok_or_else(corrupt)?;
    let payload = v.get(12 + key_len..).ok_or_else(corrupt)?;
    Ok(Record {
        topic: topic.to_string(),
        partition,
        offset,
        key: key.to_vec(),
        payload: payload.to_vec(),
        timestamp_ms: ts,
    })
}

/// The size at which a partition's memtable is sealed and flushed: an
/// eighth of fjall's default, as the default 3 topics of 4 partitions each
/// fill one (about 100 MiB in all, where one 32 MiB memtable held every
/// partition before).
pub const PARTITION_MEMTABLE_BYTES: u64 = 8 << 20;

/// The embedded, durable event log. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `path`, durable against process crashes.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Durability::default())
    }

    /// Opens (or creates) the log in `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        // One background worker: see `stores::FJALL_WORKERS` for why more
        // spin.
        let db = Database::builder(path)
            .worker_threads(1)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => LogError::Locked(path.display().to_string()),
                other => LogError::Storage(other),
            })?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let mut state = State::default();
        for kv in meta.prefix(b"t\0") {
            let (k, v) = kv.into_inner()?;
            let topic = String::from_utf8_lossy(&k[2..]).into_owned();
            let partitions = be_u32(&v).ok_or_else(|| LogError::Corrupt {
                topic: topic.clone(),
                partition: 0,
                offset: 0,
            })?;
            state.topics.insert(topic, partitions);
        }
        move_legacy_records(&db, &state.topics)?;
        for (topic, &partitions) in &state.topics {
            for p in 0..partitions {
                let records = open_records(&db, topic, p)?;
                let next = next_offset(&records)?;
                state
                    .partitions
                    .insert((topic.clone(), p), Partition { records, next });
            }
        }
        Ok(EmbeddedLog {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db,
                meta,
                durability,
                state: Mutex::new(state),
                appended: Condvar::new(),
            }),
        })
    }

    /// The offset the next record of a partition will get (its length).
    pub fn end_offset(&self, topic: &str, partition: u32) -> u64 {
        self.inner.lock().end(&(topic.to_string(), partition))
    }

    /// Partition count of a topic, if it exists.
    pub fn partitions(&self, topic: &str) -> Option<u32> {
        self.inner.lock().topics.get(topic).copied()
    }

    /// The committed offset of `group` on a partition, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        Ok(self
            .inner
            .meta
            .get(offset_key(group, topic, partition))?
            .and_then(|v| be_u64(&v)))
    }
}

impl EventLog for EmbeddedLog {
    fn describe(&self) -> String {
        format!("embedded log at {}", self.inner.path.display())
    }

    fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        let mut state = self.inner.lock();
        let mut batch = self.inner.write_batch();
        let mut created = Vec::new();
        let mut opened = Vec::new();
        for t in topics {
            check_topic_name(&t.name)?;
            let last = records_name(&t.name, t.partitions.max(1) - 1);
            if last.len() > MAX_KEYSPACE_NAME {
                return Err(LogError::TopicTooLong {
                    topic: t.name.clone(),
                    partitions: t.partitions,
                });
            }
        }
        for t in topics {
            if !state.topics.contains_key(&t.name) {
                // The partitions' keyspaces first: empty ones left by a
                // crash before the commit are opened again next time.
                for p in 0..t.partitions.max(1) {
                    let records = open_records(&self.inner.db, &t.name, p)?;
                    opened.push(((t.name.clone(), p), Partition { records, next: 0 }));
                }
                batch.insert(
                    &self.inner.meta,
                    topic_key(&t.name),
                    t.partitions.max(1).to_be_bytes(),
                );
                created.push(t);
            }
        }
        batch.commit()?;
        state.partitions.extend(opened);
        for t in created {
            state.topics.insert(t.name.clone(), t.partitions.max(1));
            tracing::debug!(topic = %t.name, partitions = t.partitions, "Created topic.");
        }
        Ok(())
    }

    fn producer(&self) -> Result<Box<dyn LogProducer>> {
        Ok(Box::new(EmbeddedProducer {
            inner: self.inner.clone(),
            topics: HashMap::new(),
            pending: Vec::new(),
        }))
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<Box<dyn LogConsumer>> {
        let mut state = self.inner.lock();
        for t in topics {
            if !state.topics.contains_key(*t) {
                return Err(LogError::UnknownTopic(t.to_string()));
            }
        }
        let member = state.next_member;
        state.next_member += 1;
        let g = state.groups.entry(group.to_string()).or_default();
        g.members.push(member);
        g.generation += 1;
        Ok(Box::new(EmbeddedConsumer {
            inner: self.inner.clone(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            member,
            generation: 0,
            assigned: Vec::new(),
            positions: HashMap::new(),
            cursor: 0,
        }))
    }

    fn marker(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.meta.get(marker_key(name))?.map(|v| v.to_vec()))
    }

    fn lag(&self, group: &str, topics: &[&str]) -> Result<u64> {
        let ends: Vec<(String, u32, u64)> = {
            let state = self.inner.lock();
            let mut v = Vec::new();
            for t in topics {
                let n = *state
                    .topics
                    .get(*t)
                    .ok_or_else(|| LogError::UnknownTopic(t.to_string()))?;
                for p in 0..n {
                    v.push((t.to_string(), p, state.end(&(t.to_string(), p))));
                }
            }
            v
        };
        let mut lag = 0;
        for (t, p, end) in ends {
            lag += end.saturating_sub(self.committed(group, &t, p)?.unwrap_or(0));
        }
        Ok(lag)
    }

    fn committed_offsets(&self, group: &str, topics: &[&str]) -> Result<Offsets> {
        let mut out = Offsets::new();
        for (topic, partition) in self.partitions_of(topics) {
            if let Some(o) = self.committed(group, &topic, partition)? {
                out.insert((topic, partition), o);
            }
        }
        Ok(out)
    }

    fn reset_group(&self, group: &str, topics: &[&str]) -> Result<()> {
        let mut batch = self.inner.write_batch();
        for (topic, partition) in self.partitions_of(topics) {
            batch.remove(&self.inner.meta, offset_key(group, &topic, partition));
        }
        batch.commit()?;
        Ok(())
    }

    fn set_group_offsets(&self, group: &str, offsets: &Offsets) -> Result<()> {
        let mut batch = self.inner.write_batch();
        for ((topic, partition), offset) in offsets {
            batch.insert(
                &self.inner.meta,
                offset_key(group, topic, *partition),
                offset.to_be_bytes(),
            );
        }
        batch.commit()?;
        Ok(())
    }
}

impl EmbeddedLog {
    /// Every partition of those of `topics` that exist.
    fn partitions_of(&self, topics: &[&str]) -> Vec<(String, u32)> {
        let state = self.inner.lock();
        topics
            .iter()
            .filter_map(|t| state.topics.get(*t).map(|n| (t.to_string(), *n)))
            .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
            .collect()
    }
}

struct Pending {
    topic: Arc<str>,
    partition: u32,
    value: Vec<u8>,
}

/// Buffers records in memory and writes them in one atomic batch per flush.
struct EmbeddedProducer {
    inner: Arc<Inner>,
    topics: HashMap<String, (Arc<str>, u32)>,
    pending: Vec<Pending>,
}

impl EmbeddedProducer {
    fn write(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()> {
        if self.pending.is_empty() && markers.is_empty() {
            return Ok(());
        }
        let mut state = self.inner.lock();
        let mut batch = self.inner.write_batch();
        // Per partition: its keyspace and the next offset.
        let mut next: HashMap<(Arc<str>, u32), (Keyspace, u64)> = HashMap::new();
        for p in self.pending.drain(..) {
            let (records, offset) = match next.entry((p.topic.clone(), p.partition)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let tp = (p.topic.to_string(), p.partition);
                    let part = state
                        .partitions
                        .get(&tp)
                        .ok_or_else(|| LogError::UnknownTopic(tp.0.clone()))?;
                    e.insert((part.records.clone(), part.next))
                }
            };
            batch.insert(records, offset.to_be_bytes(), p.value);
            *offset += 1;
        }
        for (name, value) in markers {
            batch.insert(&self.inner.meta, marker_key(name), value.as_slice());
        }
        batch.commit()?;
        for ((topic, partition), (_, offset)) in next {
            if let Some(part) = state.partitions.get_mut(&(topic.to_string(), partition)) {
                part.next = offset;
            }
        }
        drop(state);
        self.inner.appended.notify_all();
        Ok(())
    }
}

impl LogProducer for EmbeddedProducer {
    fn send(&mut self, topic: &str, key: &[u8], payload: &[u8], timestamp_ms: i64) -> Result<()> {
        let (name, partitions) = match self.topics.get(topic) {
            Some(t) => t.clone(),
            None => {
                let partitions = *self
                    .inner
                    .lock()
                    .topics
                    .get(topic)
                    .ok_or_else(|| LogError::UnknownTopic(topic.to_string()))?;
                let entry = (Arc::<str>::from(topic), partitions);
                self.topics.insert(topic.to_string(), entry.clone());
                entry
            }
        };
        self.pending.push(Pending {
            topic: name,
            partition: partition_for(key, partitions),
            value: encode_value(key, payload, timestamp_ms),
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.write(&[])
    }

    fn flush_with_markers(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()> {
        self.write(markers)
    }
}

/// A member of a consumer group on the embedded log.
struct EmbeddedConsumer {
    inner: Arc<Inner>,
    group: String,
    topics: Vec<String>,
    member: u64,
    generation: u64,
    assigned: Vec<(String, u32)>,
    positions: HashMap<(String, u32), u64>,
    cursor: usize,
}

impl EmbeddedConsumer {
    /// Recomputes this member's partitions after a join or leave, and
    /// restarts each from the group's committed offset, as Kafka does.
    fn rebalance(&mut self, state: &State) -> Result<()> {
        let Some(group) = state.groups.get(&self.group) else {
            return Ok(());
        };
        if group.generation == self.generation {
            return Ok(());
        }
        let members = group.members.len().max(1);
        let rank = group
            .members
            .iter()
            .position(|m| *m == self.member)
            .unwrap_or(0);
        let mut all = Vec::new();
        for t in &self.topics {
            for p in 0..state.topics.get(t).copied().unwrap_or(0) {
                all.push((t.clone(), p));
            }
        }
        self.assigned = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % members == rank)
            .map(|(_, tp)| tp)
            .collect();
        self.positions.clear();
        for (t, p) in &self.assigned {
            let start = self
                .inner
                .meta
                .get(offset_key(&self.group, t, *p))?
                .and_then(|v| be_u64(&v))
                .unwrap_or(0);
            self.positions.insert((t.clone(), *p), start);
        }
        self.generation = group.generation;
        self.cursor = 0;
        Ok(())
    }

    /// Partitions with records past our position, with their end offsets
    /// and keyspaces.
    fn readable(&self, state: &State) -> Vec<Readable> {
        let n = self.assigned.len();
        (0..n)
            .map(|i| &self.assigned[(self.cursor + i) % n])
            .filter_map(|tp| {
                let pos = self.positions.get(tp).copied().unwrap_or(0);
                let part = state.partitions.get(tp)?;
                (part.next > pos).then(|| Readable {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    pos,
                    end: part.next,
                    records: part.records.clone(),
                })
            })
            .collect()
    }
}

/// A partition with records past a consumer's position.
struct Readable {
    topic: String,
    partition: u32,
    /// The consumer's position.
    pos: u64,
    /// The partition's end offset.
    end: u64,
    records: Keyspace,
}

/// How many of `max` records to read from each partition, given what each
/// holds past the consumer's position (`backlogs`, in the order the
/// partitions take turns): shares in proportion to the backlogs, so that a
/// consumer catching up reads its partitions side by side and they end
/// together. Reading one partition at a time instead drained the small
/// transactions topic in the first half of a catch-up and left the
/// sessions alone for the second: the document store then held weeks of
/// transactions ahead of their sessions, and ingest ran at one mix of work
/// and then another. The rounding remainder goes to the partitions in turn
/// order (the turn moves on each poll), so a small backlog is not starved.
fn shares(max: usize, backlogs: &[u64]) -> Vec<usize> {
    let total: u128 = backlogs.iter().map(|b| u128::from(*b)).sum();
    let max_u = max as u128;
    if total <= max_u {
        // Everything fits: each backlog is at most `max`.
        return backlogs.iter().map(|b| *b as usize).collect();
    }
    // total > max >= 0, so the division is defined; each share is at most
    // its backlog and at most `max`.
    let mut out: Vec<usize> = backlogs
        .iter()
        .map(|b| (u128::from(*b) * max_u / total) as usize)
        .collect();
    let mut left = max.saturating_sub(out.iter().sum::<usize>());
    for (share, backlog) in out.iter_mut().zip(backlogs) {
        if left == 0 {
            break;
        }
        if (*share as u64) < *backlog {
            *share += 1;
            left -= 1;
        }
    }
    out
}

impl LogConsumer for EmbeddedConsumer {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        let deadline = Instant::now() + timeout;
        let inner = self.inner.clone();
        let ready = {
            let mut state = inner.lock();
            loop {
                self.rebalance(&state)?;
                let ready = self.readable(&state);
                let now = Instant::now();
                if !ready.is_empty() || now >= deadline {
                    break ready;
                }
                state = inner
                    .appended
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        let backlogs: Vec<u64> = ready.iter().map(|r| r.end.saturating_sub(r.pos)).collect();
        let takes = shares(max, &backlogs);
        // Sized once: growing it by doubling copied every record again and
        // faulted in fresh pages at each step.
        let mut out = Vec::with_capacity(takes.iter().sum());
        for (r, take) in ready.into_iter().zip(takes) {
            if take == 0 {
                continue;
            }
            let (topic, partition) = (r.topic, r.partition);
            let before = out.len();
            for kv in r
                .records
                .range(r.pos.to_be_bytes()..r.end.to_be_bytes())
                .take(take)
            {
                let (k, v) = kv.into_inner()?;
                let offset = be_u64(&k).ok_or_else(|| LogError::Corrupt {
                    topic: topic.clone(),
                    partition,
                    offset: r.pos,
                })?;
                out.push(decode_value(&topic, partition, offset, &v)?);
            }
            // Only this partition's records move its position.
            if let Some(last) = out.get(before..).and_then(<[Record]>::last) {
                self.positions
                    .insert((topic, partition), last.offset.saturating_add(1));
            }
        }
        if !self.assigned.is_empty() {
            self.cursor = (self.cursor + 1) % self.assigned.len();
        }
        Ok(out)
    }

    fn commit(&mut self, offsets: &Offsets) -> Result<()> {
        let mut batch = self.inner.write_batch();
        let mut any = false;
        for ((topic, partition), offset) in offsets {
            if !self
                .assigned
                .iter()
                .any(|(t, p)| t == topic && p == partition)
            {
                // Kafka refuses commits for partitions a member lost in a
                // rebalance; the new owner re-reads from the last commit.
                tracing::debug!(%topic, partition, "Skipped commit for a partition no longer assigned.");
                continue;
            }
            batch.insert(
                &self.inner.meta,
                offset_key(&self.group, topic, *partition),
                offset.to_be_bytes(),
            );
            any = true;
        }
        if any {
            batch.commit()?;
        }
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<(String, u32)>> {
        let mut a = self.assigned.clone();
        a.sort();
        Ok(a)
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if let Some(g) = state.groups.get_mut(&self.group) {
            g.members.retain(|m| *m != self.member);
            g.generation += 1;
        }
        drop(state);
        self.inner.appended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioner_is_stable_and_in_range() {
        // FNV-1a of the empty input is the offset basis.
        assert_eq!(partition_for(b"", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as u32);
        for k in [b"user_000001".as_slice(), b"user_009999", b"x"] {
            let p = partition_for(k, 4);
            assert!(p < 4);
            assert_eq!(p, partition_for(k, 4));
        }
    }

    #[test]
    fn shares_follow_the_backlogs_and_hand_out_the_remainder_in_turn() {
        // 30 and 10 waiting, 10 to read: 7.5 and 2.5, the odd one to the first.
        assert_eq!(shares(10, &[30, 10]), vec![8, 2]);
        // Everything fits.
        assert_eq!(shares(10, &[3, 4]), vec![3, 4]);
        // Fewer records than partitions: one each, in turn order.
        assert_eq!(shares(3, &[1, 1, 1, 1]), vec![1, 1, 1, 0]);
        assert_eq!(shares(0, &[5]), vec![0]);
        // Backlogs near u64::MAX do not overflow.
        assert_eq!(shares(4, &[u64::MAX, u64::MAX]), vec![2, 2]);
    }

    #[test]
    fn a_log_with_one_records_keyspace_is_moved_to_a_keyspace_per_partition() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            // The layout before 2026-11-27, written by hand: topic "t" with
            // two partitions, four records, a group's committed offset.
            let db = Database::builder(dir.path()).open().expect("db");
            let meta = db
                .keyspace("meta", KeyspaceCreateOptions::default)
                .expect("meta");
            let legacy = db
                .keyspace(LEGACY_RECORDS, KeyspaceCreateOptions::default)
                .expect("records");
            meta.insert(topic_key("t"), 2u32.to_be_bytes())
                .expect("topic");
            meta.insert(offset_key("g", "t", 0), 1u64.to_be_bytes())
                .expect("offset");
            for (p, o, payload) in [(0, 0, "a"), (0, 1, "b"), (0, 2, "c"), (1, 0, "d")] {
                legacy
                    .insert(
                        legacy_record_key("t", p, o),
                        encode_value(b"k", payload.as_bytes(), 7),
                    )
                    .expect("record");
            }
            db.persist(PersistMode::SyncAll).expect("persist");
        }
        let log = EmbeddedLog::open(dir.path()).expect("open");
        assert!(!log.inner.db.keyspace_exists(LEGACY_RECORDS));
        assert_eq!((log.end_offset("t", 0), log.end_offset("t", 1)), (3, 1));
        // Appends go on from the moved records' end.
        let mut producer = log.producer().expect("producer");
        producer.send("t", b"k", b"e", 8).expect("send");
        producer.flush().expect("flush");
        let p = partition_for(b"k", 2);
        assert_eq!(log.end_offset("t", p), if p == 0 { 4 } else { 2 });
        let mut consumer = log.consumer("g", &["t"]).expect("consumer");
        let mut got: Vec<(u32, u64, String, i64)> = consumer
            .poll(100, Duration::from_millis(100))
            .expect("poll")
            .into_iter()
            .map(|r| {
                let payload = String::from_utf8(r.payload).expect("utf8");
                (r.partition, r.offset, payload, r.timestamp_ms)
            })
            .collect();
        got.sort();
        let mut want = vec![
            (0, 1, "b".to_string(), 7),
            (0, 2, "c".to_string(), 7),
            (1, 0, "d".to_string(), 7),
        ];
        want.push((p, if p == 0 { 3 } else { 1 }, "e".to_string(), 8));
        want.sort();
        assert_eq!(got, want);
        drop((consumer, producer, log));
        // Opened again: nothing left to move, the same records.
        let log = EmbeddedLog::open(dir.path()).expect("reopen");
        assert_eq!(
            log.end_offset("t", 0) + log.end_offset("t", 1),
            5,
            "four moved records and one appended"
        );
    }

    #[test]
    fn a_topic_name_too_long_for_a_keyspace_name_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = EmbeddedLog::open(dir.path()).expect("open");
        // "records:" + 245 + ":9" is 255 bytes: the longest name fjall takes.
        let longest = "x".repeat(245);
        log.ensure_topics(&[TopicSpec::new(&longest, 10)])
            .expect("fits");
        assert_eq!(log.partitions(&longest), Some(10));
        // With eleven partitions, "records:<245 bytes>:10" is 256.
        let long = "y".repeat(245);
        assert!(matches!(
            log.ensure_topics(&[TopicSpec::new("fine", 1), TopicSpec::new(&long, 11)]),
            Err(LogError::TopicTooLong { partitions: 11, .. })
        ));
        assert_eq!(log.partitions("fine"), None, "nothing half created");
        assert_eq!(log.partitions(&long), None);
    }

    #[test]
    fn value_encoding_round_trips_and_detects_truncation() {
        let v = encode_value(b"user_000042", b"{}", -5);
        let r = decode_value("t", 1, 9, &v).expect("decode");
        assert_eq!(
            (r.key.as_slice(), r.payload.as_slice(), r.timestamp_ms),
            (b"user_000042".as_slice(), b"{}".as_slice(), -5)
        );
        assert!(matches!(
            decode_value("t", 1, 9, &v[..10]),
            Err(LogError::Corrupt { offset: 9, .. })
        ));
    }
}
