//! The embedded log: topics, partitions, consumer groups and committed
//! offsets in one local directory: records in a file per partition, the
//! rest in a fjall database.
//!
//! Storage layout:
//! - `partitions/<topic>/<partition>.log`: the partition's records, one
//!   after the other, each a frame `length(u32 LE)` then `checksum(u32 LE)
//!   timestamp_ms(i64 BE) published_us(i64 BE) key_len(u32 BE) key
//!   payload`, the checksum being the low 32 bits of the XXH3-64 of what
//!   follows it (fjall checks its own blocks with XXH3 too), and
//!   `published_us` the wall-clock time the producer sent the record
//!   ([`Record::published_us`]). A record whose checksum does not match is
//!   an error that names it ([`LogError::Checksum`]), never a changed
//!   record. Logs of layout 4 have no `published_us`, and logs of layout 3
//!   and earlier no checksum either (meta has no `layout` key): they are
//!   read and appended to as they are ([`Frames`]). Appending
//!   is a write at the end of the file; reading is a read of a byte range.
//!   Only the first
//!   [`Partition::end`] bytes count: what lies beyond was written by a
//!   producer that did not get to commit, and is cut off when the log is
//!   opened.
//!
//!   In layout 6 (a log created with `--compress`,
//!   [`EmbeddedLog::open_compressed`]) the file is a sequence of
//!   **blocks** instead:
//!   `length(u32 LE)` of what follows, `checksum(u32 LE)`, the offset of
//!   the block's first record (u64 LE), its record count (u32 LE), the
//!   bytes of its frames uncompressed (u32 LE), then those frames
//!   (layout 5's, each with its own checksum) compressed with zstd. The
//!   checksum is the low 32 bits of the XXH3-64 of the header's fields
//!   after it and the compressed bytes: a damaged block is an error that
//!   names its first record before anything is decompressed. A flush
//!   writes a partition's records as blocks of up to [`BLOCK_RAW`] bytes
//!   of frames; a byte position in the log (the index, a committed end,
//!   a consumer's place) is then a block's, and an offset within it is
//!   found by walking the block's frame lengths. The default 90-day
//!   replay's log takes 217 MB instead of 1.3 GB, and the replay about 16%
//!   longer with the stores compressed too (docs/benchmarks.md
//!   "Footprint"). A consumer whose position lies inside a block keeps the
//!   block decompressed between polls.
//!
//!   A write that is taken back (below) may be written again as other
//!   blocks, at other byte positions: consumers forget what they read of
//!   a partition past its committed end when that happens
//!   ([`Partition::taken_back`]).
//! - fjall keyspace `meta`: `t NUL topic` → partition count; `e NUL topic
//!   NUL partition(u32 BE)` → the partition's end: its next offset (u64 BE)
//!   and its committed length in bytes (u64 BE); `x NUL topic NUL
//!   partition(u32 BE) k(u64 BE)` → the byte position of offset
//!   `k * INDEX_EVERY`, so that a consumer starting anywhere skips at most
//!   [`INDEX_EVERY`] records; `o NUL group NUL topic NUL partition` →
//!   committed offset; `m NUL name` → producer marker; `layout` → `6`
//!   (`5` in a log of frames without blocks, `4` in one whose frames carry
//!   checksums but no publish time).
//!
//! A producer's buffered records are written to their files first, then
//! the partitions' new ends (with the index entries and the producer's
//! marker) are committed in one atomic fjall batch. After a crash a
//! partition therefore holds a prefix of what was sent, and the marker
//! agrees with it, as when the records themselves were in fjall. (They were
//! in log layouts 1 and 2: in one `records` keyspace, then in a keyspace
//! per partition, `records:<topic>:<partition>`. Journaling each record,
//! then flushing it to a table, cost half of the CPU of publishing, and
//! every read went through the LSM's merge. [`EmbeddedLog::open`] moves
//! such logs to files, layout 3.)
//!
//! The files are synced (`fdatasync`) before that commit, with either
//! durability. A machine crash may keep any part of what was written but
//! not synced, in any order: with the records in fjall, its checksummed
//! journal kept records and marker together, and a journal cut anywhere
//! still agreed with itself. Here the commit is in fjall's journal and the
//! records are in other files, so only a sync between the two keeps the
//! commit from reaching the disk before the records it points at.
//! Publishing alone did not measurably slow down (8.4 s with the stores
//! and checkpoint synced too, `--fsync`, against 6.3-8.1 s without; a flush
//! per 5,000 events, `--publish-chunk`), but in the main job each flush
//! waits for its syncs beside ingest: with flushes of 5,000 the publisher
//! and ingest's dead-letter flushes spent a sixth to a fifth of their
//! time in `fdatasync`, hence flushes of 20,000 and ingest chunks of 32,000 by
//! default (docs/benchmarks.md). With
//! [`Durability::Machine`] the commit itself is synced as well.
//!
//! Consumers read a write's records as soon as they are in the files, while
//! the producer syncs and commits them ([`Durability::Process`]; with
//! [`Durability::Machine`] only once committed): a record that waits for
//! the sync before the live window can count it gives freshness a p99 of
//! 63-72 ms, against 44-48 ms read at once, at 66-82k events/s
//! (docs/benchmarks.md "Freshness"). A consumer's commit waits until the
//! producer has committed what it commits, so that a group's offsets
//! never pass what a crash keeps; a write whose sync or commit fails is
//! taken back (its records are not readable again until written again,
//! the same, at the same offsets), and a commit past it is an error. What
//! the stores and the aggregator's state took of records a crash then cut
//! off is taken again from the same records, sent again by the replay, as
//! after a machine crash (docs/operations.md "Guarantees").
//!
//! Group membership lives in memory: the log is for one process (fjall
//! locks the directory), and the members of a group within it share the
//! partitions round-robin, rebalancing when one joins or leaves, as Kafka
//! does.

use crate::{
    check_topic_name, EventLog, LogConsumer, LogError, LogProducer, Offsets, Record, Result,
    TopicSpec,
};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use stage::fsio::Durability;

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

/// A partition: its file, the offset its next record gets, and how much of
/// the file consumers may read; and what of it is committed.
struct Partition {
    file: Arc<File>,
    /// The offset after the last record consumers may read.
    next: u64,
    /// Bytes of `file` consumers may read: records past them are not
    /// there. Ahead of `committed` while a producer's records are written
    /// but not yet synced and committed (see the module's documentation).
    end: u64,
    /// The byte position of offset `k * INDEX_EVERY`, for each such offset
    /// below `next`.
    index: Vec<u64>,
    /// The committed `(next, end)`: where a producer writes its next
    /// records, and how far consumers may commit.
    committed: (u64, u64),
    /// How many writes were taken back ([`Inner::hide`]). The same records
    /// written again can lie at other byte positions (in a packed log
    /// their blocks differ), so a consumer forgets the positions and bytes
    /// it read of the partition when this changes.
    taken_back: u64,
}

/// A partition keeps the byte position of every this-many-th offset (in
/// memory, and in `meta` for the next open): a consumer that starts at an
/// offset reads at most this many frames' lengths to find it.
const INDEX_EVERY: u64 = 4096;

/// How many bytes a read asks the file for at once (at least one frame).
const READ_CHUNK: u64 = 1 << 20;

/// How many index entries a partition whose next offset is `next` has:
/// one per multiple of [`INDEX_EVERY`] below it.
fn index_len(next: u64) -> usize {
    usize::try_from(next.div_ceil(INDEX_EVERY)).unwrap_or(usize::MAX)
}

impl Partition {
    /// Makes a write's records readable, once.
    fn show(&mut self, w: &Written) {
        if self.next < w.next {
            self.next = w.next;
            self.end = w.end;
            self.index.extend_from_slice(&w.index);
        }
    }

    /// The nearest offset at or before `offset` whose byte position is
    /// known from the index, and that position.
    fn seek_from(&self, offset: u64) -> (u64, u64) {
        let k = offset / INDEX_EVERY;
        match usize::try_from(k).ok().and_then(|i| self.index.get(i)) {
            Some(&pos) => (k * INDEX_EVERY, pos),
            // Every multiple of INDEX_EVERY below `next` is indexed; offset 0
            // is always at byte 0.
            None => (0, 0),
        }
    }
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
    /// What the frames hold: see the module doc.
    frames: Frames,
    /// Whether the frames are in compressed blocks (layout 6).
    packed: bool,
    state: Mutex<State>,
    appended: Condvar,
    /// Held by a producer from reading its partitions' ends to publishing
    /// the new ones.
    writing: Mutex<()>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind,
        // still consistent with what was committed to disk.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to each partition of a write, then wakes the
    /// consumers and the commits waiting on the log.
    fn each_written(&self, written: &[Written], change: impl Fn(&mut Partition, &Written)) {
        let mut state = self.lock();
        for w in written {
            if let Some(part) = state.partitions.get_mut(&w.tp) {
                change(part, w);
            }
        }
        drop(state);
        self.appended.notify_all();
    }

    /// Makes written records readable by consumers before they are synced
    /// and committed.
    fn show(&self, written: &[Written]) {
        self.each_written(written, Partition::show);
    }

    /// Takes back what [`Inner::show`] showed of a write that then failed:
    /// its partitions are readable up to their committed ends again.
    fn hide(&self, written: &[Written]) {
        self.each_written(written, |part, _| {
            let (next, end) = part.committed;
            part.next = next;
            part.end = end;
            part.index.truncate(index_len(next));
            part.taken_back += 1;
        });
    }

    /// Records a commit: its records become readable if they were not yet,
    /// and committable.
    fn publish(&self, written: &[Written]) {
        self.each_written(written, |part, w| {
            part.show(w);
            part.committed = (w.next, w.end);
        });
    }

    /// A write batch that goes as far towards the disk as the log was
    /// opened to.
    fn write_batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(mode(self.durability)))
    }
}

/// `meta` key of the log's layout, present from layout 4 on.
const LAYOUT_KEY: &[u8] = b"layout";

/// [`LAYOUT_KEY`]'s value in a log whose frames carry checksums only.
const LAYOUT_CHECKED: &[u8] = b"4";

/// [`LAYOUT_KEY`]'s value in a log whose frames carry checksums and
/// publish times.
const LAYOUT_STAMPED: &[u8] = b"5";

/// [`LAYOUT_KEY`]'s value in a log whose stamped frames are in compressed
/// blocks.
const LAYOUT_PACKED: &[u8] = b"6";

/// The most bytes of frames a block holds (a frame larger than this is a
/// block of its own). Pieces of 1 MiB of the default replay's sessions
/// compress 5.8 times, of 256 KiB 5.7 times (`zstd -1` on each piece of
/// the first 100 MB of a partition, docs/benchmarks.md "Footprint"); a
/// consumer that starts inside a block walks at most this many bytes of
/// frame lengths to its record.
const BLOCK_RAW: usize = 1 << 20;

/// Bytes of a block's header: length, checksum, first offset, count,
/// frames' bytes.
const BLOCK_HEADER: usize = 24;

/// zstd's level for the log's blocks: its fastest regular level. On the
/// same pieces lz4 (`lz4 -1`) compresses 3.7 times against zstd's 5.7-5.8
/// (docs/benchmarks.md "Footprint").
const ZSTD_LEVEL: i32 = 1;

/// What a log's frames hold besides the record, by layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frames {
    /// Layouts 1 to 3: the record alone.
    Plain,
    /// Layout 4: a checksum.
    Checked,
    /// Layout 5: a checksum and the publish time.
    Stamped,
}

impl Frames {
    /// Bytes before the record's own fields.
    fn checksum_len(self) -> usize {
        if self == Frames::Plain {
            0
        } else {
            4
        }
    }

    /// Bytes of the fixed fields after the checksum: event time,
    /// publish time if any, key length.
    fn fields_len(self) -> usize {
        if self == Frames::Stamped {
            20
        } else {
            12
        }
    }
}

/// The file of a partition's records.
fn partition_path(root: &Path, topic: &str, partition: u32) -> PathBuf {
    root.join("partitions")
        .join(topic)
        .join(format!("{partition}.log"))
}

/// `meta` key of a partition's end (next offset, committed bytes).
fn end_key(topic: &str, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 7);
    k.extend_from_slice(b"e\0");
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// `meta` key of the byte position of a partition's offset
/// `k * INDEX_EVERY`; without `k`, the prefix of them all.
fn index_key(topic: &str, partition: u32, k: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(topic.len() + 15);
    key.extend_from_slice(b"x\0");
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    if let Some(k) = k {
        key.extend_from_slice(&k.to_be_bytes());
    }
    key
}

/// A partition's end as stored under [`end_key`].
fn encode_end(next: u64, end: u64) -> [u8; 16] {
    let mut v = [0; 16];
    v[..8].copy_from_slice(&next.to_be_bytes());
    v[8..].copy_from_slice(&end.to_be_bytes());
    v
}

/// Appends one record's frame to `buf`: its length, then its value
/// ([`encode_value`]'s layout) with what `frames` adds: the checksum, the
/// publish time.
fn put_frame(
    buf: &mut Vec<u8>,
    (key, payload): (&[u8], &[u8]),
    timestamp_ms: i64,
    published_us: i64,
    frames: Frames,
) -> Result<()> {
    let checked = frames != Frames::Plain;
    let len =
        u32::try_from(frames.checksum_len() + frames.fields_len() + key.len() + payload.len())
            .map_err(|_| LogError::Io(std::io::Error::other("a record of 4 GiB or more")))?;
    let key_len = u32::try_from(key.len())
        .map_err(|_| LogError::Io(std::io::Error::other("a key of 4 GiB or more")))?;
    buf.extend_from_slice(&len.to_le_bytes());
    let check_at = buf.len();
    if checked {
        buf.extend_from_slice(&[0; 4]);
    }
    let value_at = buf.len();
    buf.extend_from_slice(&timestamp_ms.to_be_bytes());
    if frames == Frames::Stamped {
        buf.extend_from_slice(&published_us.to_be_bytes());
    }
    buf.extend_from_slice(&key_len.to_be_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(payload);
    if checked {
        let sum = checksum(buf.get(value_at..).unwrap_or_default());
        if let Some(slot) = buf.get_mut(check_at..value_at) {
            slot.copy_from_slice(&sum.to_le_bytes());
        }
    }
    Ok(())
}

/// A frame's checksum: the low 32 bits of the XXH3-64 of its value.
fn checksum(value: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(value) as u32
}

/// A consumer's bytes of one partition's file, read ahead: `bytes` holds
/// the file from byte `start` on. A read asks the file for [`READ_CHUNK`]
/// bytes (or the whole next frame if it is longer), and a poll usually
/// takes fewer frames than that, so the next poll starts from what is
/// already here instead of reading it again. Committed bytes never change
/// while the log is open (only opening it cuts off an uncommitted tail),
/// so what is here stays valid. Reads sized to the frames wanted (their
/// average size past `pos`) made ingest alone slower, 143-151k events/s
/// against 152-156k, alternated.
#[derive(Default)]
struct ReadWindow {
    start: u64,
    bytes: Vec<u8>,
}

/// A consumer's reading of one partition: where its last read stopped,
/// its bytes read ahead, and in a packed log the block last read,
/// decompressed.
#[derive(Default)]
struct PartitionRead {
    /// The offset after the last record read and its byte position, so
    /// that the next read starts there without a search.
    read_to: Option<(u64, u64)>,
    window: ReadWindow,
    block: Unpacked,
    /// The partition's [`Partition::taken_back`] when these were read.
    taken_back: u64,
}

/// A block of a packed log, decompressed, and where a read in it stopped.
#[derive(Default)]
struct Unpacked {
    /// The block's byte position; `None` before the first block.
    pos: Option<u64>,
    /// Its frames.
    frames: Vec<u8>,
    /// An offset in it and the index of its frame in `frames`: where the
    /// last read stopped, so that the next starts there without walking
    /// the frames before it again.
    cursor: (u64, usize),
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

/// A block's header fields (see the module doc).
struct BlockHeader {
    /// Bytes after the length field: the rest of the header and the
    /// compressed frames.
    len: u64,
    first: u64,
    count: u64,
    raw_len: usize,
}

impl BlockHeader {
    fn parse(bytes: &[u8]) -> Option<BlockHeader> {
        let h = bytes.get(..BLOCK_HEADER)?;
        let le32 =
            |at: usize| -> Option<u32> { Some(u32::from_le_bytes(*h.get(at..)?.first_chunk()?)) };
        let len = u64::from(le32(0)?);
        let first = u64::from_le_bytes(*h.get(8..)?.first_chunk()?);
        (len >= (BLOCK_HEADER - 4) as u64).then_some(BlockHeader {
            len,
            first,
            count: u64::from(le32(16)?),
            raw_len: le32(20)? as usize,
        })
    }
}

impl ReadWindow {
    /// The file's bytes from `pos` on, at least `need` of them unless
    /// `end` (the committed end) comes first: from the window when it
    /// holds them, otherwise read, keeping what it holds past `pos`.
    fn at(&mut self, file: &File, pos: u64, need: u64, end: u64) -> Result<&[u8]> {
        let held_from = pos
            .checked_sub(self.start)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d <= self.bytes.len());
        let held = held_from.map_or(0, |d| self.bytes.len() - d);
        let need = need.min(end.saturating_sub(pos));
        if held as u64 >= need {
            let from = held_from.unwrap_or(self.bytes.len());
            return Ok(self.bytes.get(from..).unwrap_or_default());
        }
        // Keep the held tail at the front, then read what follows it.
        match held_from {
            Some(d) => {
                self.bytes.copy_within(d.., 0);
                self.bytes.truncate(held);
            }
            None => self.bytes.clear(),
        }
        self.start = pos;
        let want = need.max(READ_CHUNK).min(end.saturating_sub(pos));
        let more = usize::try_from(want - held as u64)
            .map_err(|_| LogError::Io(std::io::Error::other("a frame larger than memory")))?;
        self.bytes.resize(held + more, 0);
        let tail = self.bytes.get_mut(held..).unwrap_or_default();
        if let Err(e) = file.read_exact_at(tail, pos + held as u64) {
            // What was not read must not be taken for the file's bytes.
            self.bytes.clear();
            return Err(e.into());
        }
        Ok(&self.bytes)
    }
}

/// The error for a record of `topic`/`partition` at `offset` that cannot
/// be read as written.
fn corrupt_at(topic: &str, partition: u32, offset: u64) -> LogError {
    LogError::Corrupt {
        topic: topic.to_string(),
        partition,
        offset,
    }
}

/// Reads up to `max` frames of `file` from `(offset, pos)` (an offset and
/// its byte position) without passing `end` (committed bytes), passing each
/// frame's value and offset to `f`, through the consumer's read-ahead
/// `window`. Returns the offset and position after the last frame read.
fn read_frames(
    file: &File,
    (topic, partition): (&str, u32),
    (mut offset, mut pos): (u64, u64),
    end: u64,
    max: u64,
    window: &mut ReadWindow,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(u64, u64)> {
    let corrupt = |offset| corrupt_at(topic, partition, offset);
    let mut read = 0u64;
    while read < max && pos < end {
        let Some(&[a, b, c, d]) = window.at(file, pos, 4, end)?.get(..4) else {
            return Err(corrupt(offset));
        };
        let len = 4 + u64::from(u32::from_le_bytes([a, b, c, d]));
        if pos.checked_add(len).is_none_or(|e| e > end) {
            return Err(corrupt(offset));
        }
        // At least the whole frame at `pos`, and whatever follows it.
        let buf = window.at(file, pos, len, end)?;
        let mut at = 0usize;
        while read < max {
            let Some(head) = buf.get(at..at + 4) else {
                break;
            };
            let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let Some(value) = buf.get(at + 4..at + 4 + n) else {
                break;
            };
            f(offset, value)?;
            offset += 1;
            read += 1;
            at += 4 + n;
        }
        if at == 0 {
            return Err(corrupt(offset));
        }
        pos += at as u64;
    }
    Ok((offset, pos))
}

/// [`read_frames`] for a packed log (layout 6): `(offset, pos)` is an
/// offset and the byte position of the block that holds it (or of the
/// block after it, when it is the first offset past a block). Blocks
/// before `offset` are passed over by their headers; the block holding it
/// is checked against its checksum, decompressed (once: the window keeps
/// it) and walked to `offset`. Returns the offset after the last frame
/// read and the position of its block.
fn read_blocks(
    file: &File,
    (topic, partition): (&str, u32),
    (mut offset, mut pos): (u64, u64),
    end: u64,
    max: u64,
    PartitionRead { window, block, .. }: &mut PartitionRead,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(u64, u64)> {
    let corrupt = |offset| corrupt_at(topic, partition, offset);
    let stop = offset.saturating_add(max);
    // The first offset the next block must have, once a block was passed.
    let mut chained: Option<u64> = None;
    while offset < stop && pos < end {
        // Named in errors: the block's first record when known, else the
        // one wanted (a block is read from the one holding it).
        let named = chained.unwrap_or(offset);
        let head = window.at(file, pos, BLOCK_HEADER as u64, end)?;
        let h = BlockHeader::parse(head).ok_or_else(|| corrupt(named))?;
        let after = pos
            .checked_add(4 + h.len)
            .filter(|&a| a <= end)
            .ok_or_else(|| corrupt(named))?;
        // The header's fields after the length and the compressed frames,
        // checked before any field after the length is trusted; a block
        // held decompressed was checked when it was read.
        let sealed = if block.pos == Some(pos) {
            None
        } else {
            let bytes = window.at(file, pos, 4 + h.len, end)?;
            let sealed = bytes
                .get(8..4 + h.len as usize)
                .ok_or_else(|| corrupt(named))?;
            let sum = bytes.get(4..8).and_then(|s| s.first_chunk::<4>());
            if sum.map(|s| u32::from_le_bytes(*s)) != Some(checksum(sealed)) {
                return Err(LogError::Checksum {
                    topic: topic.to_string(),
                    partition,
                    offset: named,
                });
            }
            Some(sealed)
        };
        let last = h.first.checked_add(h.count).ok_or_else(|| corrupt(named))?;
        if h.first > offset || chained.is_some_and(|c| c != h.first) {
            return Err(corrupt(named));
        }
        chained = Some(last);
        if offset >= last {
            pos = after;
            continue;
        }
        if let Some(sealed) = sealed {
            block.pos = None;
            block.frames.clear();
            block.frames.reserve(h.raw_len);
            let z = match &mut block.decompressor {
                Some(z) => z,
                none => none.insert(zstd::bulk::Decompressor::new()?),
            };
            let compressed = sealed.get(BLOCK_HEADER - 8..).unwrap_or_default();
            let n = z
                .decompress_to_buffer(compressed, &mut block.frames)
                .map_err(|_| corrupt(h.first))?;
            if n != h.raw_len {
                return Err(corrupt(h.first));
            }
            block.pos = Some(pos);
            block.cursor = (h.first, 0);
        }
        let (mut at_offset, mut at) = if block.cursor.0 <= offset {
            block.cursor
        } else {
            (h.first, 0)
        };
        while at_offset < offset {
            at += frame_len(&block.frames, at).ok_or_else(|| corrupt(at_offset))?;
            at_offset += 1;
        }
        while offset < stop && offset < last {
            let len = frame_len(&block.frames, at).ok_or_else(|| corrupt(offset))?;
            f(
                offset,
                block.frames.get(at + 4..at + len).unwrap_or_default(),
            )?;
            offset += 1;
            at += len;
        }
        block.cursor = (offset, at);
        if offset == last {
            if at != block.frames.len() {
                return Err(corrupt(offset));
            }
            pos = after;
        }
    }
    Ok((offset, pos))
}

/// [`read_blocks`] in a packed log, [`read_frames`] in the others.
#[expect(
    clippy::too_many_arguments,
    reason = "the two readers' arguments and which one"
)]
fn read_records(
    packed: bool,
    file: &File,
    tp: (&str, u32),
    from: (u64, u64),
    end: u64,
    max: u64,
    read: &mut PartitionRead,
    f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(u64, u64)> {
    if packed {
        read_blocks(file, tp, from, end, max, read, f)
    } else {
        read_frames(file, tp, from, end, max, &mut read.window, f)
    }
}

/// The topics in `meta` and their partition counts.
fn read_topics(meta: &Keyspace) -> Result<BTreeMap<String, u32>> {
    let mut topics = BTreeMap::new();
    for kv in meta.prefix(b"t\0") {
        let (k, v) = kv.into_inner()?;
        let topic = String::from_utf8_lossy(&k[2..]).into_owned();
        let partitions = be_u32(&v).ok_or_else(|| LogError::Corrupt {
            topic: topic.clone(),
            partition: 0,
            offset: 0,
        })?;
        topics.insert(topic, partitions);
    }
    Ok(topics)
}

/// How the frames of the log in `path` are laid out, from its `layout`
/// key, and whether they are in compressed blocks; a new (`empty`) log
/// gets layout 6 if asked to `compress`, else 5.
fn frames_of(meta: &Keyspace, path: &Path, empty: bool, compress: bool) -> Result<(Frames, bool)> {
    Ok(match meta.get(LAYOUT_KEY)? {
        Some(v) if v.as_ref() == LAYOUT_PACKED => (Frames::Stamped, true),
        Some(v) if v.as_ref() == LAYOUT_STAMPED => {
            if compress {
                tracing::warn!(
                    log = %path.display(),
                    "This log was created without --compress and stays uncompressed; start over with --fresh to compress it."
                );
            }
            (Frames::Stamped, false)
        }
        Some(v) if v.as_ref() == LAYOUT_CHECKED => {
            tracing::warn!(
                log = %path.display(),
                "This log's records carry no publish time (log layout 4): the aggregator cannot measure freshness. Start over with --fresh to get it."
            );
            (Frames::Checked, false)
        }
        Some(v) => {
            return Err(LogError::Io(std::io::Error::other(format!(
                "{} holds a log of layout {:?}, which this ecomflow does not know \
                 (written by a newer version?)",
                path.display(),
                String::from_utf8_lossy(&v)
            ))))
        }
        None if empty && compress => {
            meta.insert(LAYOUT_KEY, LAYOUT_PACKED)?;
            (Frames::Stamped, true)
        }
        None if empty => {
            meta.insert(LAYOUT_KEY, LAYOUT_STAMPED)?;
            (Frames::Stamped, false)
        }
        None => {
            tracing::warn!(
                log = %path.display(),
                "This log was written before records carried checksums: a damaged record cannot be told from a good one. Start over with --fresh to get them."
            );
            (Frames::Plain, false)
        }
    })
}

/// Opens a partition's file and reads its end and index from `meta`,
/// cutting off what lies past the committed end. A partition whose records
/// are still in fjall (`oldest`, the one keyspace of every partition of
/// layout 1, or a keyspace of its own, layout 2) is copied to its file
/// first.
fn open_partition(
    db: &Database,
    meta: &Keyspace,
    root: &Path,
    (topic, partition): (&str, u32),
    oldest: Option<&Keyspace>,
) -> Result<Partition> {
    let path = partition_path(root, topic, partition);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let own = db
        .keyspace_exists(&records_name(topic, partition))
        .then(|| {
            db.keyspace(
                &records_name(topic, partition),
                KeyspaceCreateOptions::default,
            )
        })
        .transpose()?;
    let (next, end) = partition_end(db, meta, &file, (topic, partition), own.as_ref(), oldest)?;
    if let Some(own) = own {
        // Copied now, or before a crash that came ahead of the drop.
        db.delete_keyspace(own)?;
    }
    let len = file.metadata()?.len();
    if len < end {
        return Err(LogError::Io(std::io::Error::other(format!(
            "{} holds {len} bytes, but {end} were committed: the log is damaged \
             (start over with --fresh, or use another --data-dir)",
            path.display()
        ))));
    }
    if len > end {
        // Written, never committed: a producer crashed before its commit.
        file.set_len(end)?;
    }
    let index = read_index(meta, (topic, partition), next, end)?;
    Ok(Partition {
        file: Arc::new(file),
        next,
        end,
        index,
        committed: (next, end),
        taken_back: 0,
    })
}

/// A partition's next offset and committed end, from `meta`; a partition
/// whose records are still in fjall (`own`, or `oldest`) is copied to its
/// file first.
fn partition_end(
    db: &Database,
    meta: &Keyspace,
    file: &File,
    (topic, partition): (&str, u32),
    own: Option<&Keyspace>,
    oldest: Option<&Keyspace>,
) -> Result<(u64, u64)> {
    let stored = meta.get(end_key(topic, partition))?;
    Ok(match (&stored, own, oldest) {
        (None, Some(records), _) => {
            let records = records.iter().map(|kv| {
                let (k, v) = kv.into_inner()?;
                Ok((be_u64(&k), v))
            });
            copy_to_file(db, meta, file, (topic, partition), records)?
        }
        (None, None, Some(oldest)) => {
            let prefix = legacy_partition_prefix(topic, partition);
            let records = oldest.prefix(&prefix).map(|kv| {
                let (k, v) = kv.into_inner()?;
                Ok((k.get(prefix.len()..).and_then(be_u64), v))
            });
            copy_to_file(db, meta, file, (topic, partition), records)?
        }
        (None, None, None) => (0, 0),
        (Some(v), _, _) => match (be_u64(v), v.get(8..).and_then(be_u64)) {
            (Some(next), Some(end)) => (next, end),
            _ => return Err(corrupt_at(topic, partition, 0)),
        },
    })
}

/// A partition's index from `meta`: one byte position per
/// [`INDEX_EVERY`] offsets below `next`, each within `end`.
fn read_index(
    meta: &Keyspace,
    (topic, partition): (&str, u32),
    next: u64,
    end: u64,
) -> Result<Vec<u64>> {
    let mut index = Vec::new();
    let prefix = index_key(topic, partition, None);
    for kv in meta.prefix(&prefix) {
        let (k, v) = kv.into_inner()?;
        let at = k.get(prefix.len()..).and_then(be_u64);
        match (at, be_u64(&v)) {
            (Some(k), Some(pos)) if k == index.len() as u64 && pos <= end => index.push(pos),
            _ => {
                return Err(corrupt_at(
                    topic,
                    partition,
                    at.unwrap_or(0).saturating_mul(INDEX_EVERY),
                ))
            }
        }
    }
    if (index.len() as u64) < next.div_ceil(INDEX_EVERY) {
        return Err(corrupt_at(
            topic,
            partition,
            index.len() as u64 * INDEX_EVERY,
        ));
    }
    Ok(index)
}

/// Copies a partition's records out of fjall (`records`: each one's
/// offset, if its key holds one, and its value, in offset order) into its
/// file, then commits its end and index. A crash before the commit leaves
/// the records where they were, and the next open copies again from the
/// start; the caller drops them from fjall after the commit.
fn copy_to_file(
    db: &Database,
    meta: &Keyspace,
    file: &File,
    (topic, partition): (&str, u32),
    records: impl Iterator<Item = Result<(Option<u64>, fjall::Slice)>>,
) -> Result<(u64, u64)> {
    file.set_len(0)?;
    let corrupt = |offset| corrupt_at(topic, partition, offset);
    let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
    let (mut next, mut end) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(1 << 20);
    for record in records {
        let (offset, v) = record?;
        if offset != Some(next) {
            return Err(corrupt(next));
        }
        if next % INDEX_EVERY == 0 {
            let at = end + buf.len() as u64;
            batch.insert(
                meta,
                index_key(topic, partition, Some(next / INDEX_EVERY)),
                at.to_be_bytes(),
            );
        }
        let len = u32::try_from(v.len()).map_err(|_| corrupt(next))?;
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&v);
        next += 1;
        if buf.len() >= 1 << 20 {
            file.write_all_at(&buf, end)?;
            end += buf.len() as u64;
            buf.clear();
        }
    }
    file.write_all_at(&buf, end)?;
    end += buf.len() as u64;
    file.sync_all()?;
    batch.insert(meta, end_key(topic, partition), encode_end(next, end));
    batch.commit()?;
    Ok((next, end))
}

/// The keyspace of a partition's records in log layout 2.
fn records_name(topic: &str, partition: u32) -> String {
    format!("records:{topic}:{partition}")
}

/// The one keyspace of every partition's records, in log layout 1.
const LEGACY_RECORDS: &str = "records";

/// The prefix of a partition's records' keys in the [`LEGACY_RECORDS`]
/// keyspace (each key goes on with the record's offset, u64 BE).
fn legacy_partition_prefix(topic: &str, partition: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(topic.len() + 13);
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
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

/// A record's value as a frame holds it (the frame without its length), as
/// the keyspaces of the earlier layouts held it.
#[cfg(test)]
fn encode_value(key: &[u8], payload: &[u8], timestamp_ms: i64, frames: Frames) -> Vec<u8> {
    let mut frame = Vec::new();
    put_frame(
        &mut frame,
        (key, payload),
        timestamp_ms,
        1_700_000_000_123_456,
        frames,
    )
    .expect("small");
    frame.split_off(4)
}

/// Decodes a frame's value; in frames with a checksum, checks it first.
fn decode_value(
    (topic, partition): (&str, u32),
    offset: u64,
    v: &[u8],
    frames: Frames,
) -> Result<Record> {
    let corrupt = || corrupt_at(topic, partition, offset);
    let v = if frames != Frames::Plain {
        let (sum, rest) = v.split_first_chunk::<4>().ok_or_else(corrupt)?;
        if u32::from_le_bytes(*sum) != checksum(rest) {
            return Err(LogError::Checksum {
                topic: topic.to_string(),
                partition,
                offset,
            });
        }
        rest
    } else {
        v
    };
    let ts = i64::from_be_bytes(*v.first_chunk::<8>().ok_or_else(corrupt)?);
    let (published_us, v) = match frames {
        Frames::Stamped => {
            let rest = v.get(8..).ok_or_else(corrupt)?;
            let at = i64::from_be_bytes(*rest.first_chunk::<8>().ok_or_else(corrupt)?);
            (Some(at), rest)
        }
        Frames::Plain | Frames::Checked => (None, v),
    };
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
        published_us,
    })
}

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
        Self::open_compressed(path, durability, false)
    }

    /// [`EmbeddedLog::open_with`]; a log it creates with `compress` keeps
    /// its records in compressed blocks (layout 6, see the module doc),
    /// and one it finds keeps the layout it was created with.
    pub fn open_compressed(path: &Path, durability: Durability, compress: bool) -> Result<Self> {
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
        let mut state = State {
            topics: read_topics(&meta)?,
            ..State::default()
        };
        let (frames, packed) = frames_of(&meta, path, state.topics.is_empty(), compress)?;
        let oldest = db
            .keyspace_exists(LEGACY_RECORDS)
            .then(|| db.keyspace(LEGACY_RECORDS, KeyspaceCreateOptions::default))
            .transpose()?;
        let moving = oldest.is_some()
            || state
                .topics
                .iter()
                .any(|(t, n)| (0..*n).any(|p| db.keyspace_exists(&records_name(t, p))));
        if moving {
            tracing::info!("Moving the log's records from fjall to a file per partition, once (about 5 s for the default shop's 1.4 GB).");
        }
        for (topic, &partitions) in &state.topics {
            for p in 0..partitions {
                let part = open_partition(&db, &meta, path, (topic, p), oldest.as_ref())?;
                state.partitions.insert((topic.clone(), p), part);
            }
        }
        if let Some(oldest) = oldest {
            // Every partition's end is committed (synced) by now.
            db.delete_keyspace(oldest)?;
        }
        if moving {
            tracing::info!("Moved the log's records to a file per partition (log layout 3).");
        }
        Ok(EmbeddedLog {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db,
                meta,
                durability,
                frames,
                packed,
                state: Mutex::new(state),
                appended: Condvar::new(),
                writing: Mutex::new(()),
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
        }
        for t in topics {
            if !state.topics.contains_key(&t.name) {
                // The partitions' files first: empty ones left by a crash
                // before the commit are opened again next time.
                for p in 0..t.partitions.max(1) {
                    let part = open_partition(
                        &self.inner.db,
                        &self.inner.meta,
                        &self.inner.path,
                        (&t.name, p),
                        None,
                    )?;
                    opened.push(((t.name.clone(), p), part));
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
            pending: HashMap::new(),
            compressor: None,
            packed: (Vec::new(), Vec::new()),
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
            windows: HashMap::new(),
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

/// A partition's records sent since the last flush, framed as the file
/// holds them.
#[derive(Default)]
struct Pending {
    frames: Vec<u8>,
    count: u64,
}

/// Buffers records in memory and writes them, and their partitions' new
/// ends, per flush (see the module's documentation).
struct EmbeddedProducer {
    inner: Arc<Inner>,
    topics: HashMap<String, (Arc<str>, u32)>,
    pending: HashMap<(Arc<str>, u32), Pending>,
    /// zstd's context for the blocks of a packed log, made at the first
    /// write and kept (a context holds about a megabyte of tables).
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// A partition's blocks as written, and zstd's output for one block:
    /// kept from write to write, so that each flush does not fault in
    /// fresh pages for them.
    packed: (Vec<u8>, Vec<u8>),
}

/// A partition's state after a write, applied once the commit succeeded.
struct Written {
    tp: (String, u32),
    next: u64,
    end: u64,
    index: Vec<u64>,
}

impl EmbeddedProducer {
    fn write(&mut self, markers: &[(String, Vec<u8>)]) -> Result<()> {
        if self.pending.values().all(|p| p.count == 0) && markers.is_empty() {
            return Ok(());
        }
        // One write at a time: the ends read here stay ours until the
        // commit. The state's lock is only held to read and to publish
        // them, so consumers do not wait for the writes and syncs.
        let inner = self.inner.clone();
        let _writing = inner.writing.lock().unwrap_or_else(|e| e.into_inner());
        let staged = self.stage()?;
        // Readable now, while they are synced and committed: what a
        // consumer reads of them before a crash is cut off with them and
        // sent again the same by the producer, as after a machine crash;
        // consumers commit no further than the committed ends
        // (`EmbeddedConsumer::commit`). With `Durability::Machine` records
        // are read only once on disk.
        let early = inner.durability == Durability::Process;
        if early {
            inner.show(&staged.written);
        }
        self.commit_staged(staged, markers, early)
    }

    /// Writes the pending records past their partitions' committed ends,
    /// and prepares the commit of the new ends (with index entries).
    fn stage(&mut self) -> Result<Staged> {
        // Each partition written to: its file, next offset and end.
        let targets = {
            let state = self.inner.lock();
            self.pending
                .iter()
                .filter(|(_, p)| p.count > 0)
                .map(|((topic, partition), p)| {
                    let tp = (topic.to_string(), *partition);
                    let part = state
                        .partitions
                        .get(&tp)
                        .ok_or_else(|| LogError::UnknownTopic(tp.0.clone()))?;
                    let (next, end) = part.committed;
                    Ok((tp, p, part.file.clone(), next, end))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let mut batch = self.inner.write_batch();
        let mut written = Vec::new();
        let mut files = Vec::new();
        let (blocks, scratch) = &mut self.packed;
        for (tp, p, file, next, end) in targets {
            let (topic, partition) = (tp.0.as_str(), tp.1);
            // Past the committed end: a crash before the commit leaves it
            // to be cut off.
            let (bytes, index) = if self.inner.packed {
                let z = match &mut self.compressor {
                    Some(z) => z,
                    none => none.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                };
                let index = pack(z, &tp, p, next, end, (blocks, scratch))?;
                (&blocks[..], index)
            } else {
                (&p.frames[..], index_positions(&tp, p, next, end)?)
            };
            file.write_all_at(bytes, end)?;
            let written_bytes = bytes.len() as u64;
            for (k, pos) in index.iter().enumerate() {
                batch.insert(
                    &self.inner.meta,
                    index_key(
                        topic,
                        partition,
                        Some(next.div_ceil(INDEX_EVERY) + k as u64),
                    ),
                    pos.to_be_bytes(),
                );
            }
            let (next, end) = (next + p.count, end + written_bytes);
            batch.insert(
                &self.inner.meta,
                end_key(topic, partition),
                encode_end(next, end),
            );
            files.push(file);
            written.push(Written {
                tp,
                next,
                end,
                index,
            });
        }
        Ok(Staged {
            batch,
            written,
            files,
        })
    }

    /// Syncs the staged files, then commits their ends with `markers`;
    /// takes back what was shown (`shown`) if either fails.
    fn commit_staged(
        &mut self,
        staged: Staged,
        markers: &[(String, Vec<u8>)],
        shown: bool,
    ) -> Result<()> {
        let Staged {
            mut batch,
            written,
            files,
        } = staged;
        // On disk before the commit that points at them, with either
        // durability (see the module's documentation); side by side, as
        // each sync mostly waits for the file system's journal.
        let committed = sync_all_data(&files).and_then(|()| {
            for (name, value) in markers {
                batch.insert(&self.inner.meta, marker_key(name), value.as_slice());
            }
            Ok(batch.commit()?)
        });
        if let Err(e) = committed {
            if shown {
                self.inner.hide(&written);
            }
            return Err(e);
        }
        for p in self.pending.values_mut() {
            p.frames.clear();
            p.count = 0;
        }
        self.inner.publish(&written);
        Ok(())
    }
}

/// A producer's records written to their files, not yet synced or
/// committed.
struct Staged {
    batch: fjall::OwnedWriteBatch,
    written: Vec<Written>,
    files: Vec<Arc<File>>,
}

/// The byte positions of the offsets to index (every [`INDEX_EVERY`]-th)
/// among a partition's new frames, written from offset `next` at byte
/// `end`.
fn index_positions(tp: &(String, u32), p: &Pending, next: u64, end: u64) -> Result<Vec<u64>> {
    let mut index = Vec::new();
    let mut k = next.div_ceil(INDEX_EVERY);
    let (mut offset, mut at) = (next, 0usize);
    while k * INDEX_EVERY < next + p.count {
        while offset < k * INDEX_EVERY {
            at += frame_len(&p.frames, at).ok_or_else(|| corrupt_at(&tp.0, tp.1, offset))?;
            offset += 1;
        }
        index.push(end + at as u64);
        k += 1;
    }
    Ok(index)
}

/// The length of the frame at `at` in `frames` (its length field and
/// value), if it is there whole.
fn frame_len(frames: &[u8], at: usize) -> Option<usize> {
    let head = frames.get(at..at.checked_add(4)?)?;
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let len = n.checked_add(4)?;
    (at.checked_add(len)? <= frames.len()).then_some(len)
}

/// Packs a partition's new frames, written from offset `next` at byte
/// `end`, into compressed blocks of at most [`BLOCK_RAW`] bytes of frames
/// each (see the module doc) in `out`; returns the byte positions of the
/// blocks that hold the offsets to index (every [`INDEX_EVERY`]-th).
fn pack(
    z: &mut zstd::bulk::Compressor<'static>,
    tp: &(String, u32),
    p: &Pending,
    next: u64,
    end: u64,
    (out, scratch): (&mut Vec<u8>, &mut Vec<u8>),
) -> Result<Vec<u64>> {
    let corrupt = |offset| corrupt_at(&tp.0, tp.1, offset);
    let too_large = || LogError::Io(std::io::Error::other("a block of 4 GiB or more"));
    out.clear();
    let mut index = Vec::new();
    let mut k = next.div_ceil(INDEX_EVERY);
    let (mut offset, mut at) = (next, 0usize);
    while at < p.frames.len() {
        let (start, first) = (at, offset);
        while let Some(len) = frame_len(&p.frames, at) {
            if at > start && at - start + len > BLOCK_RAW {
                break;
            }
            at += len;
            offset += 1;
        }
        if at == start {
            return Err(corrupt(offset));
        }
        let raw = p.frames.get(start..at).unwrap_or_default();
        let pos = end + out.len() as u64;
        while k * INDEX_EVERY < offset {
            index.push(pos);
            k += 1;
        }
        let head = out.len();
        out.extend_from_slice(&[0; BLOCK_HEADER]);
        // Into the spare capacity of `scratch` (zstd writes a Vec from its
        // start), then appended: no zero-filling of a bound's worth of
        // bytes per block.
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let packed = z.compress_to_buffer(raw, scratch)?;
        out.extend_from_slice(scratch.get(..packed).unwrap_or_default());
        let len = u32::try_from(BLOCK_HEADER - 4 + packed).map_err(|_| too_large())?;
        let count = u32::try_from(offset - first).map_err(|_| too_large())?;
        let raw_len = u32::try_from(raw.len()).map_err(|_| too_large())?;
        let Some(header) = out.get_mut(head..head + BLOCK_HEADER) else {
            return Err(corrupt(first));
        };
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[8..16].copy_from_slice(&first.to_le_bytes());
        header[16..20].copy_from_slice(&count.to_le_bytes());
        header[20..24].copy_from_slice(&raw_len.to_le_bytes());
        let sum = checksum(out.get(head + 8..).unwrap_or_default());
        if let Some(slot) = out.get_mut(head + 4..head + 8) {
            slot.copy_from_slice(&sum.to_le_bytes());
        }
    }
    if offset != next + p.count {
        return Err(corrupt(offset));
    }
    Ok(index)
}

/// `fdatasync`s the files, each on a thread of its own when there are
/// several; the first error wins.
fn sync_all_data(files: &[Arc<File>]) -> Result<()> {
    match files {
        [] => Ok(()),
        [one] => Ok(one.sync_data()?),
        many => std::thread::scope(|s| {
            let syncs: Vec<_> = many.iter().map(|f| s.spawn(|| f.sync_data())).collect();
            for sync in syncs {
                sync.join()
                    .map_err(|_| std::io::Error::other("a sync thread panicked"))??;
            }
            Ok(())
        }),
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
        let p = self
            .pending
            .entry((name, partition_for(key, partitions)))
            .or_default();
        put_frame(
            &mut p.frames,
            (key, payload),
            timestamp_ms,
            crate::now_us(),
            self.inner.frames,
        )?;
        p.count += 1;
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
    /// Per partition: where the last read stopped, and what it read ahead.
    windows: HashMap<(String, u32), PartitionRead>,
    cursor: usize,
}

/// How long a consumer's commit waits for the producer's commit of records
/// it read before they were committed (a sync, normally milliseconds).
const COMMIT_WAIT: Duration = Duration::from_secs(60);

impl EmbeddedConsumer {
    /// Waits until the log has committed every record below `offsets`:
    /// records are readable once written, before the producer's sync and
    /// commit, and a group's offset never passes what a crash keeps. An
    /// error if the producer's write failed (the records are taken back)
    /// or did not commit within [`COMMIT_WAIT`].
    fn wait_committed(&self, offsets: &Offsets) -> Result<()> {
        let deadline = Instant::now() + COMMIT_WAIT;
        let mut state = self.inner.lock();
        for ((topic, partition), &offset) in offsets {
            let tp = (topic.clone(), *partition);
            while let Some(part) = state.partitions.get(&tp) {
                if part.committed.0 >= offset {
                    break;
                }
                let now = Instant::now();
                if part.next < offset || now >= deadline {
                    return Err(LogError::Uncommitted {
                        topic: topic.clone(),
                        partition: *partition,
                        offset,
                    });
                }
                state = self
                    .inner
                    .appended
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        Ok(())
    }

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
        let assigned = &self.assigned;
        self.windows.retain(|tp, _| assigned.contains(tp));
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

    /// Partitions with records past our position: where to start reading
    /// (the offset and byte position of our position, or of the nearest
    /// indexed offset before it) and where the committed records end.
    fn readable(&self, state: &State) -> Vec<Readable> {
        let n = self.assigned.len();
        (0..n)
            .map(|i| &self.assigned[(self.cursor + i) % n])
            .filter_map(|tp| {
                let pos = self.positions.get(tp).copied().unwrap_or(0);
                let part = state.partitions.get(tp)?;
                let read = self.windows.get(tp);
                let from = match read.and_then(|r| Some((r.read_to?, r.taken_back))) {
                    Some(((offset, at), taken_back))
                        if offset == pos && taken_back == part.taken_back =>
                    {
                        (offset, at)
                    }
                    _ => part.seek_from(pos),
                };
                (part.next > pos).then(|| Readable {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    pos,
                    end: part.next,
                    from,
                    end_bytes: part.end,
                    file: part.file.clone(),
                    taken_back: part.taken_back,
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
    /// An offset at or before `pos` and its byte position.
    from: (u64, u64),
    /// The partition's committed bytes.
    end_bytes: u64,
    file: Arc<File>,
    /// Its [`Partition::taken_back`].
    taken_back: u64,
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
            let (topic, partition) = (r.topic.as_str(), r.partition);
            let window = self
                .windows
                .entry((r.topic.clone(), partition))
                .or_default();
            if window.taken_back != r.taken_back {
                // Bytes read of a write taken back may differ from the
                // same records written again.
                *window = PartitionRead {
                    taken_back: r.taken_back,
                    ..PartitionRead::default()
                };
            }
            // From the known position up to ours: lengths only.
            let start = read_records(
                inner.packed,
                &r.file,
                (topic, partition),
                r.from,
                r.end_bytes,
                r.pos - r.from.0,
                window,
                |_, _| Ok(()),
            )?;
            let before = out.len();
            let after = read_records(
                inner.packed,
                &r.file,
                (topic, partition),
                start,
                r.end_bytes,
                take as u64,
                window,
                |offset, value| {
                    out.push(decode_value(
                        (topic, partition),
                        offset,
                        value,
                        inner.frames,
                    )?);
                    Ok(())
                },
            )?;
            if out.len() - before != take || start.0 != r.pos {
                // The committed bytes hold fewer records than the end says.
                return Err(LogError::Corrupt {
                    topic: r.topic,
                    partition,
                    offset: after.0,
                });
            }
            window.read_to = Some(after);
            // Only this partition's records move its position.
            self.positions.insert((r.topic, partition), after.0);
        }
        if !self.assigned.is_empty() {
            self.cursor = (self.cursor + 1) % self.assigned.len();
        }
        Ok(out)
    }

    fn commit(&mut self, offsets: &Offsets) -> Result<()> {
        self.wait_committed(offsets)?;
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
    fn a_log_with_one_records_keyspace_is_moved_to_files() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            // Log layout 1, written by hand: topic "t" with
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
            for (p, o, payload) in [(0, 0u64, "a"), (0, 1, "b"), (0, 2, "c"), (1, 0, "d")] {
                legacy
                    .insert(
                        [legacy_partition_prefix("t", p), o.to_be_bytes().to_vec()].concat(),
                        encode_value(b"k", payload.as_bytes(), 7, Frames::Plain),
                    )
                    .expect("record");
            }
            db.persist(PersistMode::SyncAll).expect("persist");
        }
        let log = EmbeddedLog::open(dir.path()).expect("open");
        assert!(!log.inner.db.keyspace_exists(LEGACY_RECORDS));
        assert!(!log.inner.db.keyspace_exists(&records_name("t", 0)));
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

    /// A log in layout 2 (a keyspace per partition),
    /// written by hand: topic "t" with two partitions.
    fn keyspace_per_partition_log(dir: &Path, records: &[(u32, u64, &str)]) {
        let db = Database::builder(dir).open().expect("db");
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .expect("meta");
        meta.insert(topic_key("t"), 2u32.to_be_bytes())
            .expect("topic");
        for &(p, o, payload) in records {
            db.keyspace(&records_name("t", p), KeyspaceCreateOptions::default)
                .expect("keyspace")
                .insert(
                    o.to_be_bytes(),
                    encode_value(b"k", payload.as_bytes(), 7, Frames::Plain),
                )
                .expect("record");
        }
        db.persist(PersistMode::SyncAll).expect("persist");
    }

    #[test]
    fn a_log_with_a_keyspace_per_partition_is_moved_to_files() {
        let dir = tempfile::tempdir().expect("tmp");
        keyspace_per_partition_log(dir.path(), &[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
        let log = EmbeddedLog::open(dir.path()).expect("open");
        assert!(!log.inner.db.keyspace_exists(&records_name("t", 0)));
        assert!(!log.inner.db.keyspace_exists(&records_name("t", 1)));
        assert_eq!((log.end_offset("t", 0), log.end_offset("t", 1)), (2, 1));
        // Two frames of 4 + 8 + 4 + 1 + 1 bytes in partition 0's file.
        let len = |p| {
            std::fs::metadata(partition_path(dir.path(), "t", p))
                .expect("file")
                .len()
        };
        assert_eq!((len(0), len(1)), (36, 18));
        let mut c = log.consumer("g", &["t"]).expect("consumer");
        let mut got: Vec<(u32, u64, Vec<u8>)> = c
            .poll(10, Duration::from_millis(100))
            .expect("poll")
            .into_iter()
            .map(|r| (r.partition, r.offset, r.payload))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (0, 0, b"a".to_vec()),
                (0, 1, b"b".to_vec()),
                (1, 0, b"c".to_vec())
            ]
        );
    }

    #[test]
    fn a_move_interrupted_after_its_commit_only_drops_the_keyspace() {
        let dir = tempfile::tempdir().expect("tmp");
        keyspace_per_partition_log(dir.path(), &[(0, 0, "a")]);
        {
            // The state a crash between the commit and the drop leaves:
            // the file and its end are there, and so is the keyspace.
            let db = Database::builder(dir.path()).open().expect("db");
            let meta = db
                .keyspace("meta", KeyspaceCreateOptions::default)
                .expect("meta");
            let path = partition_path(dir.path(), "t", 0);
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            let mut frame = Vec::new();
            put_frame(&mut frame, (b"k", b"a"), 7, 0, Frames::Plain).expect("frame");
            std::fs::write(&path, &frame).expect("write");
            meta.insert(end_key("t", 0), encode_end(1, frame.len() as u64))
                .expect("end");
            meta.insert(index_key("t", 0, Some(0)), 0u64.to_be_bytes())
                .expect("index");
            db.persist(PersistMode::SyncAll).expect("persist");
        }
        let log = EmbeddedLog::open(dir.path()).expect("open");
        assert!(!log.inner.db.keyspace_exists(&records_name("t", 0)));
        assert_eq!(log.end_offset("t", 0), 1, "copied once, not twice");
    }

    /// A log with topic `t` of one partition, and a producer on it.
    /// The log in `dir`, compressed (`packed`, layout 6) or not.
    fn open_log(dir: &Path, packed: bool) -> Result<EmbeddedLog> {
        EmbeddedLog::open_compressed(dir, Durability::default(), packed)
    }

    fn one_partition_log(dir: &Path, packed: bool) -> (EmbeddedLog, EmbeddedProducer) {
        let log = open_log(dir, packed).expect("open");
        log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
        let producer = EmbeddedProducer {
            inner: log.inner.clone(),
            topics: HashMap::new(),
            pending: HashMap::new(),
            compressor: None,
            packed: (Vec::new(), Vec::new()),
        };
        (log, producer)
    }

    /// A write of `payloads` to `t`, staged and shown, not committed.
    fn shown(log: &EmbeddedLog, producer: &mut EmbeddedProducer, payloads: &[&[u8]]) -> Staged {
        for (i, p) in payloads.iter().enumerate() {
            producer.send("t", b"k", p, i as i64).expect("send");
        }
        let staged = producer.stage().expect("stage");
        log.inner.show(&staged.written);
        staged
    }

    fn payloads(records: Vec<Record>) -> Vec<(u64, Vec<u8>)> {
        records.into_iter().map(|r| (r.offset, r.payload)).collect()
    }

    /// Written records are readable before their sync and commit, so that
    /// the live window does not wait for the disk; a consumer's commit up
    /// to them waits for the producer's commit.
    #[test]
    fn records_are_read_before_their_commit_and_committed_after_it() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let (log, mut producer) = one_partition_log(dir.path(), packed);
            let staged = shown(&log, &mut producer, &[b"a", b"b"]);
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let got = payloads(c.poll(10, Duration::from_millis(100)).expect("poll"));
            assert_eq!(got, vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
            assert_eq!(log.end_offset("t", 0), 2);
            let offsets: Offsets = [(("t".to_string(), 0), 2)].into_iter().collect();
            std::thread::scope(|s| {
                let commit = s.spawn(|| c.commit(&offsets));
                std::thread::sleep(Duration::from_millis(200));
                assert!(!commit.is_finished(), "the commit did not wait");
                assert_eq!(log.committed("g", "t", 0).expect("read"), None);
                producer
                    .commit_staged(staged, &[], true)
                    .expect("producer's commit");
                commit.join().expect("thread").expect("commit");
            });
            assert_eq!(log.committed("g", "t", 0).expect("read"), Some(2));
        }
    }

    /// A write whose sync or commit fails is taken back: a consumer that
    /// read it cannot commit it, and the producer's retry writes the same
    /// records at the same offsets.
    #[test]
    fn a_failed_write_is_taken_back_and_written_again_the_same() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let (log, mut producer) = one_partition_log(dir.path(), packed);
            producer.send("t", b"k", b"a", 1).expect("send");
            producer.flush().expect("flush");
            let staged = shown(&log, &mut producer, &[b"b"]);
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let got = payloads(c.poll(10, Duration::from_millis(100)).expect("poll"));
            assert_eq!(got, vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
            // The sync failed: what was shown is taken back.
            log.inner.hide(&staged.written);
            drop(staged);
            assert_eq!(log.end_offset("t", 0), 1);
            let offsets: Offsets = [(("t".to_string(), 0), 2)].into_iter().collect();
            let err = c.commit(&offsets).expect_err("committed past the log");
            assert!(
                matches!(err, LogError::Uncommitted { offset: 2, .. }),
                "{err}"
            );
            // Up to the committed end is fine.
            c.commit(&[(("t".to_string(), 0), 1)].into_iter().collect())
                .expect("commit");
            // The retry: the same record at the same offset, then more.
            producer.send("t", b"k", b"c", 3).expect("send");
            producer.flush().expect("retry");
            c.commit(&offsets).expect("commit after the retry");
            let got = payloads(c.poll(10, Duration::from_millis(100)).expect("poll"));
            assert_eq!(got, vec![(2, b"c".to_vec())]);
            let mut fresh = log.consumer("other", &["t"]).expect("consumer");
            let got = payloads(fresh.poll(10, Duration::from_millis(100)).expect("poll"));
            assert_eq!(
                got,
                vec![(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())]
            );
        }
    }

    #[test]
    fn what_was_written_but_not_committed_is_cut_off_on_open() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let path = partition_path(dir.path(), "t", 0);
            {
                let log = open_log(dir.path(), packed).expect("open");
                log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
                let mut producer = log.producer().expect("producer");
                producer.send("t", b"k", b"one", 1).expect("send");
                producer.flush().expect("flush");
            }
            let committed = std::fs::metadata(&path).expect("file").len();
            // The record's frame: 4 + 4 + 20 + 1 + 3 bytes; packed, in a
            // block of its own.
            if packed {
                let bytes = std::fs::read(&path).expect("read");
                let h = BlockHeader::parse(&bytes).expect("a block");
                assert_eq!(
                    (h.len + 4, h.first, h.count, h.raw_len),
                    (committed, 0, 1, 32)
                );
            } else {
                assert_eq!(committed, 32);
            }
            // A producer that wrote a frame and a half, then died before its
            // commit.
            let mut torn = Vec::new();
            put_frame(&mut torn, (b"k", b"lost"), 2, 0, Frames::Stamped).expect("frame");
            put_frame(&mut torn, (b"k", b"half"), 3, 0, Frames::Stamped).expect("frame");
            torn.truncate(torn.len() - 3);
            let mut bytes = std::fs::read(&path).expect("read");
            bytes.extend_from_slice(&torn);
            std::fs::write(&path, &bytes).expect("write");
            let log = open_log(dir.path(), packed).expect("reopen");
            assert_eq!(log.end_offset("t", 0), 1);
            assert_eq!(std::fs::metadata(&path).expect("file").len(), committed);
            let mut producer = log.producer().expect("producer");
            producer.send("t", b"k", b"two", 4).expect("send");
            producer.flush().expect("flush");
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let got: Vec<(u64, Vec<u8>, i64)> = c
                .poll(10, Duration::from_millis(100))
                .expect("poll")
                .into_iter()
                .map(|r| (r.offset, r.payload, r.timestamp_ms))
                .collect();
            assert_eq!(got, vec![(0, b"one".to_vec(), 1), (1, b"two".to_vec(), 4)]);
            // A file shorter than its committed end: refused, not read.
            drop((c, producer, log));
            std::fs::write(&path, &bytes[..10]).expect("write");
            assert!(open_log(dir.path(), packed).is_err());
        }
    }

    #[test]
    fn frames_of_mixed_sizes_and_larger_than_a_read_come_back_whole() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let log = open_log(dir.path(), packed).expect("open");
            log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
            // Small frames, then one of 3 MiB (three times READ_CHUNK), then
            // small again: a frame longer than a read is read whole.
            let big = vec![b'x'; 3 << 20];
            let payloads: Vec<Vec<u8>> = (0..20u8)
                .map(|i| {
                    if i == 10 {
                        big.clone()
                    } else {
                        vec![i; 1 + usize::from(i)]
                    }
                })
                .collect();
            let mut producer = log.producer().expect("producer");
            for p in &payloads {
                producer.send("t", b"k", p, 0).expect("send");
            }
            producer.flush().expect("flush");
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let mut got = Vec::new();
            for take in [3, 8, 1, 100] {
                let polled = c.poll(take, Duration::from_millis(100)).expect("poll");
                got.extend(polled.into_iter().map(|r| (r.offset, r.payload)));
            }
            let want: Vec<(u64, Vec<u8>)> = (0..).zip(payloads).collect();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "every frame whole and in order");
        }
    }

    #[test]
    fn a_read_window_serves_what_it_holds_and_forgets_a_failed_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..100u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let file = File::open(&path).expect("open");
        let mut w = ReadWindow::default();
        // An end past the file's length: the read fails, and the part
        // that was not read is not kept as if it were the file's.
        assert!(w.at(&file, 0, 4, 200).is_err());
        assert_eq!(w.at(&file, 0, 4, 100).expect("read"), &bytes[..]);
        // What the window holds is served from memory: bytes changed in
        // the file since are not seen (committed bytes never change).
        std::fs::write(&path, vec![7u8; 150]).expect("rewrite");
        assert_eq!(w.at(&file, 40, 10, 100).expect("held"), &bytes[40..]);
        // Past what it holds: the held tail, then what the file has after.
        let mut want = bytes[90..].to_vec();
        want.extend_from_slice(&[7u8; 50]);
        assert_eq!(w.at(&file, 90, 20, 150).expect("read"), &want[..]);
        // Before the window: read from the file.
        assert_eq!(w.at(&file, 0, 1, 150).expect("read"), &[7u8; 150][..]);
    }

    #[test]
    fn polls_resume_from_bytes_read_ahead_as_the_log_grows() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let log = open_log(dir.path(), packed).expect("open");
            log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
            // Frames of 1 byte to 390 KB: some straddle the end of a read
            // (READ_CHUNK), so a frame is partly held and partly read again.
            let payloads: Vec<Vec<u8>> = (0..60u32)
                .map(|i| vec![i as u8; 1 + (i as usize * 97_003) % 390_000])
                .collect();
            let mut producer = log.producer().expect("producer");
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let mut got = Vec::new();
            let mut sent = 0;
            // Appends between polls that take fewer frames than were read.
            for (i, take) in [2usize, 1, 5, 3, 1, 7, 2, 4, 100, 100]
                .into_iter()
                .enumerate()
            {
                let upto = ((i + 1) * 8).min(payloads.len());
                for p in payloads.get(sent..upto).unwrap_or_default() {
                    producer.send("t", b"k", p, 0).expect("send");
                }
                producer.flush().expect("flush");
                sent = upto;
                let polled = c.poll(take, Duration::from_millis(100)).expect("poll");
                assert!(polled.len() <= take);
                got.extend(polled.into_iter().map(|r| (r.offset, r.payload)));
            }
            while got.len() < payloads.len() {
                let polled = c.poll(100, Duration::from_millis(100)).expect("poll");
                assert!(
                    !polled.is_empty(),
                    "{} of {} read",
                    got.len(),
                    payloads.len()
                );
                got.extend(polled.into_iter().map(|r| (r.offset, r.payload)));
            }
            let want: Vec<(u64, Vec<u8>)> = (0..).zip(payloads).collect();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "every frame whole, once and in order");
        }
    }

    #[test]
    fn a_consumer_starts_anywhere_through_the_index() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let n = 2 * INDEX_EVERY + 100;
            {
                let log = open_log(dir.path(), packed).expect("open");
                log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
                let mut producer = log.producer().expect("producer");
                // Flushes of 1,000 records: index entries fall inside batches.
                for i in 0..n {
                    producer
                        .send("t", b"k", i.to_string().as_bytes(), i as i64)
                        .expect("send");
                    if i % 1000 == 999 {
                        producer.flush().expect("flush");
                    }
                }
                producer.flush().expect("flush");
                assert_eq!(
                    log.inner.lock().partitions[&("t".to_string(), 0)]
                        .index
                        .len(),
                    3
                );
            }
            // Reopened: the index comes from `meta`.
            let log = open_log(dir.path(), packed).expect("reopen");
            let part_index = log.inner.lock().partitions[&("t".to_string(), 0)]
                .index
                .clone();
            assert_eq!(part_index.len(), 3);
            assert_eq!(part_index[0], 0);
            for start in [0, 1, INDEX_EVERY - 1, INDEX_EVERY, INDEX_EVERY + 7, n - 1] {
                let mut offsets = Offsets::new();
                offsets.insert(("t".to_string(), 0), start);
                let group = format!("g{start}");
                log.set_group_offsets(&group, &offsets).expect("offsets");
                let mut c = log.consumer(&group, &["t"]).expect("consumer");
                let got = c.poll(3, Duration::from_millis(100)).expect("poll");
                let want: Vec<(u64, Vec<u8>)> = (start..n.min(start + 3))
                    .map(|o| (o, o.to_string().into_bytes()))
                    .collect();
                let got: Vec<(u64, Vec<u8>)> =
                    got.into_iter().map(|r| (r.offset, r.payload)).collect();
                assert_eq!(got, want, "from {start}");
            }
        }
    }

    #[test]
    fn value_encoding_round_trips_and_detects_truncation() {
        for (frames, published) in [
            (Frames::Plain, None),
            (Frames::Checked, None),
            (Frames::Stamped, Some(1_700_000_000_123_456)),
        ] {
            let v = encode_value(b"user_000042", b"{}", -5, frames);
            // 11 bytes of key, 2 of payload.
            assert_eq!(v.len(), frames.checksum_len() + frames.fields_len() + 13);
            let r = decode_value(("t", 1), 9, &v, frames).expect("decode");
            assert_eq!(
                (r.key.as_slice(), r.payload.as_slice(), r.timestamp_ms),
                (b"user_000042".as_slice(), b"{}".as_slice(), -5)
            );
            assert_eq!(r.published_us, published, "{frames:?}");
            // Cut anywhere before the payload: an error naming the
            // offset, never a record.
            for cut in 0..v.len() - 2 {
                let got = decode_value(("t", 1), 9, &v[..cut], frames);
                assert!(
                    matches!(
                        got,
                        Err(LogError::Corrupt { offset: 9, .. }
                            | LogError::Checksum { offset: 9, .. })
                    ),
                    "{frames:?} cut at {cut}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn any_flipped_bit_of_a_committed_record_is_an_error_that_names_it() {
        // Both layouts: frames (5) and compressed blocks (6).
        for packed in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let path = partition_path(dir.path(), "t", 0);
            let frames = {
                let log = open_log(dir.path(), packed).expect("open");
                log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
                let mut producer = log.producer().expect("producer");
                producer.send("t", b"k", b"prod_00001", 1).expect("send");
                producer.flush().expect("flush");
                producer.send("t", b"k", b"prod_00002", 2).expect("send");
                producer.flush().expect("flush");
                std::fs::read(&path).expect("read")
            };
            // Two frames, or two blocks of a frame each (two flushes): the
            // second starts after the first's length field and what it
            // counts, 4 + 4 + 20 + 1 + 10 bytes for a frame.
            let first = u32::from_le_bytes(*frames.first_chunk().expect("length"));
            let second = 4 + first as usize;
            if packed {
                let h = BlockHeader::parse(&frames[second..]).expect("second block");
                assert_eq!(
                    (h.first, h.count, second + 4 + h.len as usize),
                    (1, 1, frames.len())
                );
            } else {
                assert_eq!((second, frames.len()), (39, 78));
            }
            for at in second + 4..frames.len() {
                for bit in [0x01u8, 0x80] {
                    let mut bytes = frames.clone();
                    bytes[at] ^= bit;
                    std::fs::write(&path, &bytes).expect("write");
                    let log = open_log(dir.path(), packed).expect("open");
                    let mut c = log.consumer("g", &["t"]).expect("consumer");
                    let err = c.poll(10, Duration::from_millis(100)).map(|r| r.len());
                    assert!(
                        matches!(err, Err(LogError::Checksum { offset: 1, .. })),
                        "byte {at} ^ {bit:#x}: {err:?}"
                    );
                    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
                    assert!(msg.contains("t/0@1") && msg.contains("--fresh"), "{msg}");
                }
            }
            // Undamaged, both come back.
            std::fs::write(&path, &frames).expect("write");
            let log = open_log(dir.path(), packed).expect("open");
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let got = c.poll(10, Duration::from_millis(100)).expect("poll");
            assert_eq!(got[1].payload, b"prod_00002");
        }
    }

    /// A flush larger than a block is packed into blocks of whole frames,
    /// each at most `BLOCK_RAW` bytes of them, chained by their first
    /// offsets; a consumer starting in the last block gets its records.
    #[test]
    fn a_flush_larger_than_a_block_is_split_at_frame_boundaries() {
        let dir = tempfile::tempdir().expect("tmp");
        let (log, _) = one_partition_log(dir.path(), true);
        let mut producer = log.producer().expect("producer");
        let payload = |i: u32| -> Vec<u8> {
            let mut p = vec![(i % 251) as u8; 1000];
            p[..4].copy_from_slice(&i.to_le_bytes());
            p
        };
        for i in 0..3000 {
            producer.send("t", b"k", &payload(i), 0).expect("send");
        }
        producer.flush().expect("flush");
        // Frames of 4 + 4 + 20 + 1 + 1000 = 1029 bytes: 1,019 fit in
        // 1 MiB, so 1019, 1019 and 962.
        let bytes = std::fs::read(partition_path(dir.path(), "t", 0)).expect("read");
        let mut blocks = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let h = BlockHeader::parse(&bytes[at..]).expect("block");
            blocks.push((h.first, h.count, h.raw_len));
            at += 4 + h.len as usize;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(
            blocks,
            vec![
                (0, 1019, 1019 * 1029),
                (1019, 1019, 1019 * 1029),
                (2038, 962, 962 * 1029)
            ]
        );
        assert!(bytes.len() < 3000 * 1029 / 10, "{} bytes", bytes.len());
        let offsets: Offsets = [(("t".to_string(), 0), 2500)].into_iter().collect();
        log.set_group_offsets("g", &offsets).expect("offsets");
        let mut c = log.consumer("g", &["t"]).expect("consumer");
        let got = payloads(c.poll(600, Duration::from_millis(100)).expect("poll"));
        let want: Vec<(u64, Vec<u8>)> = (2500..3000).map(|i| (u64::from(i), payload(i))).collect();
        assert!(got == want, "records 2500 to 2999, whole");
    }

    #[test]
    fn a_log_of_frames_without_blocks_is_read_and_appended_as_frames() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let log = EmbeddedLog::open(dir.path()).expect("open");
            log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
            let mut producer = log.producer().expect("producer");
            producer.send("t", b"k", b"new", 1).expect("send");
            producer.flush().expect("flush");
        }
        // The same log as layout 5 wrote it: stamped frames, no blocks.
        let path = partition_path(dir.path(), "t", 0);
        let old_len = as_older_layout(dir.path(), Frames::Stamped, Some(LAYOUT_STAMPED));
        let got: Vec<Vec<u8>> = reopen_append_and_read(dir.path())
            .into_iter()
            .map(|r| r.payload)
            .collect();
        assert_eq!(got, vec![b"old".to_vec(), b"more".to_vec()]);
        // Appended as a frame: 4 + 4 + 20 + 1 + 4 bytes.
        assert_eq!(std::fs::metadata(&path).expect("file").len(), old_len + 33);
    }

    /// Rewrites topic `t` (one partition) of the closed log in `dir` as an
    /// older layout would hold it: one record `old` in `frames`, and the
    /// `layout` key set to `layout` (or absent). The file's length.
    fn as_older_layout(dir: &Path, frames: Frames, layout: Option<&[u8]>) -> u64 {
        let mut old = Vec::new();
        put_frame(&mut old, (b"k", b"old"), 1, 0, frames).expect("frame");
        std::fs::write(partition_path(dir, "t", 0), &old).expect("write");
        let db = Database::builder(dir).open().expect("db");
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .expect("meta");
        match layout {
            Some(v) => meta.insert(LAYOUT_KEY, v).expect("layout"),
            None => meta.remove(LAYOUT_KEY).expect("remove"),
        }
        meta.insert(end_key("t", 0), encode_end(1, old.len() as u64))
            .expect("end");
        db.persist(PersistMode::SyncAll).expect("persist");
        old.len() as u64
    }

    /// Opens the log in `dir` again, appends a record `more` to topic `t`,
    /// and reads the topic from the start.
    fn reopen_append_and_read(dir: &Path) -> Vec<Record> {
        let log = EmbeddedLog::open(dir).expect("open");
        let mut producer = log.producer().expect("producer");
        producer.send("t", b"k", b"more", 2).expect("send");
        producer.flush().expect("flush");
        let mut c = log.consumer("g", &["t"]).expect("consumer");
        c.poll(10, Duration::from_millis(100)).expect("poll")
    }

    #[test]
    fn a_log_written_before_checksums_is_read_and_appended_without_them() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let log = EmbeddedLog::open(dir.path()).expect("open");
            log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
            let mut producer = log.producer().expect("producer");
            producer.send("t", b"k", b"new", 1).expect("send");
            producer.flush().expect("flush");
        }
        // The same log as layout 3 wrote it: no layout key, frames
        // without checksums.
        as_older_layout(dir.path(), Frames::Plain, None);
        let got: Vec<Vec<u8>> = reopen_append_and_read(dir.path())
            .into_iter()
            .map(|r| r.payload)
            .collect();
        assert_eq!(got, vec![b"old".to_vec(), b"more".to_vec()]);
    }

    #[test]
    fn records_carry_when_they_were_sent_and_layout_4_logs_none() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let log = EmbeddedLog::open(dir.path()).expect("open");
            log.ensure_topics(&[TopicSpec::new("t", 1)]).expect("topic");
            let mut producer = log.producer().expect("producer");
            let before = crate::now_us();
            producer.send("t", b"k", b"new", 1).expect("send");
            let after = crate::now_us();
            producer.flush().expect("flush");
            let mut c = log.consumer("g", &["t"]).expect("consumer");
            let got = c.poll(10, Duration::from_millis(100)).expect("poll");
            let at = got[0].published_us.expect("stamped");
            assert!(
                (before..=after).contains(&at),
                "{before} <= {at} <= {after}"
            );
        }
        // The same log as layout 4 wrote it: checksums, no publish time.
        let path = partition_path(dir.path(), "t", 0);
        let old_len = as_older_layout(dir.path(), Frames::Checked, Some(LAYOUT_CHECKED));
        let got: Vec<(Vec<u8>, Option<i64>)> = reopen_append_and_read(dir.path())
            .into_iter()
            .map(|r| (r.payload, r.published_us))
            .collect();
        assert_eq!(got, vec![(b"old".to_vec(), None), (b"more".to_vec(), None)]);
        // Appended as layout 4 frames: 4 + 4 + 12 + 1 + 4 bytes.
        assert_eq!(std::fs::metadata(&path).expect("file").len(), old_len + 25);
    }
}
