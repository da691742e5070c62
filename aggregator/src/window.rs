//! Counts by event time over a sliding window, in buckets.
//!
//! A window of `w` buckets of `bucket_secs` seconds covers the `w` buckets
//! up to the one holding the newest event time it was advanced to. Each
//! count is added to its event's bucket and to the window's running total;
//! sliding drops whole buckets, subtracting their counts from the totals, so
//! the cost of a slide is the size of one bucket, not of the window, and
//! memory is bounded by the window, not by the length of the stream.
//! All-time totals are kept beside it.

use rustc_hash::FxHashMap as HashMap;
use schemas::codec::{DecodeError, Decoder, Encoder};
use std::collections::BTreeMap;
use std::hash::Hash;
use std::io::{self, Write};

/// Seconds in a day, the default bucket.
pub const DAY: i64 = 86_400;

/// Buckets of `T` by event time over a sliding window of `window_buckets`
/// buckets of `bucket_secs` seconds: which bucket a time falls in, whether
/// it is still in the window, and sliding. What the buckets hold is the
/// user's: per-key counts ([`WindowedCounts`]) or baskets
/// ([`crate::cooccur::CoOccurrence`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRing<T> {
    bucket_secs: i64,
    window_buckets: i64,
    /// Newest bucket the window was advanced to.
    head: Option<i64>,
    buckets: BTreeMap<i64, T>,
}

impl<T: Default> BucketRing<T> {
    /// A window of `window_buckets` buckets of `bucket_secs` seconds.
    pub fn new(bucket_secs: i64, window_buckets: i64) -> Self {
        BucketRing {
            bucket_secs: bucket_secs.max(1),
            window_buckets: window_buckets.max(1),
            head: None,
            buckets: BTreeMap::new(),
        }
    }

    /// Oldest bucket still in the window.
    fn tail(&self) -> Option<i64> {
        self.head.map(|h| h - self.window_buckets + 1)
    }

    /// Whether event time `t` falls in the window (or nothing slid yet).
    pub fn admits(&self, t: i64) -> bool {
        let b = t.div_euclid(self.bucket_secs);
        self.tail().is_none_or(|tail| b >= tail)
    }

    /// The bucket of event time `t`, made if absent; `None` when `t` is
    /// before the window.
    pub fn bucket_mut(&mut self, t: i64) -> Option<&mut T> {
        if !self.admits(t) {
            return None;
        }
        Some(
            self.buckets
                .entry(t.div_euclid(self.bucket_secs))
                .or_default(),
        )
    }

    /// Slides the window so that its newest bucket holds `t`, handing each
    /// bucket that falls out to `gone`, oldest first. Never moves back.
    pub fn slide_to(&mut self, t: i64, mut gone: impl FnMut(T)) {
        let b = t.div_euclid(self.bucket_secs);
        if self.head.is_some_and(|h| b <= h) {
            return;
        }
        self.head = Some(b);
        let tail = b - self.window_buckets + 1;
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= tail {
                break;
            }
            gone(entry.remove());
        }
    }

    /// `[start, end)` in seconds covered by the window, once it slid.
    pub fn covers(&self) -> Option<(i64, i64)> {
        let (head, tail) = (self.head?, self.tail()?);
        Some((tail * self.bucket_secs, (head + 1) * self.bucket_secs))
    }

    /// The buckets held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &T)> {
        self.buckets.iter().map(|(b, t)| (*b, t))
    }

    /// How many buckets are held (at most the window's length).
    pub fn held(&self) -> usize {
        self.buckets.len()
    }

    /// Writes the shape (bucket length, window length, head); the buckets
    /// are the owner's to write.
    pub fn encode_shape<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.i64(self.bucket_secs)?;
        e.i64(self.window_buckets)?;
        match self.head {
            None => e.u64(0),
            Some(h) => {
                e.u64(1)?;
                e.i64(h)
            }
        }
    }

    /// An empty ring of the shape [`encode_shape`](Self::encode_shape)
    /// wrote; [`restore`](Self::restore) puts the buckets back.
    pub fn decode_shape(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut ring = BucketRing::new(d.i64()?, d.i64()?);
        ring.head = match d.u64()? {
            0 => None,
            1 => Some(d.i64()?),
            _ => return Err(DecodeError("window: head".into())),
        };
        Ok(ring)
    }

    /// Puts a decoded bucket back.
    pub fn restore(&mut self, bucket: i64, content: T) {
        self.buckets.insert(bucket, content);
    }
}

/// A count kept by [`WindowedCounts`]: one number, or several counted
/// together under one key (a user's sessions, conversions, products viewed
/// and abandonments: one hash lookup for the four).
pub trait Counter: Copy + Default + PartialEq + std::fmt::Debug {
    /// Adds `other`.
    fn add(&mut self, other: &Self);
    /// Takes `other` away (saturating at zero).
    fn sub(&mut self, other: &Self);
    /// Whether every part is zero.
    fn is_zero(&self) -> bool;
    /// Writes it.
    fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()>;
    /// Reads it back.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;
}

impl Counter for u64 {
    fn add(&mut self, other: &Self) {
        *self = self.saturating_add(*other);
    }
    fn sub(&mut self, other: &Self) {
        *self = self.saturating_sub(*other);
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
    fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.u64(*self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        d.u64()
    }
}

impl<const N: usize> Counter for [u64; N]
where
    [u64; N]: Default,
{
    fn add(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            *a = a.saturating_add(*b);
        }
    }
    fn sub(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            *a = a.saturating_sub(*b);
        }
    }
    fn is_zero(&self) -> bool {
        self.iter().all(|v| *v == 0)
    }
    fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        self.iter().try_for_each(|v| e.u64(*v))
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut out = [0u64; N];
        for v in &mut out {
            *v = d.u64()?;
        }
        Ok(out)
    }
}

/// Counts per key over a sliding window of buckets, plus all-time counts.
/// Checkpointed as its buckets and all-time counts; the window totals are
/// derived from the buckets on restore.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedCounts<K: Hash + Eq + Clone, V: Counter = u64> {
    ring: BucketRing<HashMap<K, V>>,
    window: HashMap<K, V>,
    all_time: HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V: Counter> WindowedCounts<K, V> {
    /// A window of `window_buckets` buckets of `bucket_secs` seconds each.
    pub fn new(bucket_secs: i64, window_buckets: i64) -> Self {
        WindowedCounts {
            ring: BucketRing::new(bucket_secs, window_buckets),
            window: HashMap::default(),
            all_time: HashMap::default(),
        }
    }

    /// Adds `n` to `key` at event time `t` (seconds). Returns `false` when
    /// `t` falls before the window (it then only counts all-time); callers
    /// screen such late events with a [`Watermark`] first. Adding does not
    /// slide the window: the caller does, with [`advance_to`](Self::advance_to)
    /// and the low watermark, so a partition read ahead of the others cannot
    /// push their events out.
    pub fn add(&mut self, key: K, t: i64, n: V) -> bool {
        self.all_time.entry(key.clone()).or_default().add(&n);
        let Some(bucket) = self.ring.bucket_mut(t) else {
            return false;
        };
        bucket.entry(key.clone()).or_default().add(&n);
        self.window.entry(key).or_default().add(&n);
        true
    }

    /// Slides the window so that its newest bucket holds `t`, dropping the
    /// buckets that fall out. Never moves backwards.
    pub fn advance_to(&mut self, t: i64) {
        let window = &mut self.window;
        self.ring.slide_to(t, |gone| {
            for (key, n) in gone {
                if let Some(total) = window.get_mut(&key) {
                    total.sub(&n);
                    if total.is_zero() {
                        window.remove(&key);
                    }
                }
            }
        });
    }

    /// Count of `key` in the window.
    pub fn window_count(&self, key: &K) -> V {
        self.window.get(key).copied().unwrap_or_default()
    }

    /// Count of `key` over all time.
    pub fn all_time_count(&self, key: &K) -> V {
        self.all_time.get(key).copied().unwrap_or_default()
    }

    /// Keys with a count in the window (the window's state size).
    #[cfg(test)]
    pub fn window_keys(&self) -> usize {
        self.window.len()
    }

    /// Buckets held (at most the window's length).
    #[cfg(test)]
    pub fn buckets(&self) -> usize {
        self.ring.held()
    }

    /// `[start, end)` in seconds covered by the window, once it has data.
    #[cfg(test)]
    pub fn covers(&self) -> Option<(i64, i64)> {
        self.ring.covers()
    }
}

impl<V: Counter> WindowedCounts<u32, V> {
    /// Bytes held on the heap (hash tables with their control bytes).
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u32, V)>() + 1;
        let map = |m: &HashMap<u32, V>| m.capacity() * entry;
        self.ring.iter().map(|(_, m)| map(m)).sum::<usize>()
            + map(&self.window)
            + map(&self.all_time)
    }

    /// Writes the buckets and all-time counts, keys in order (so the same
    /// state always gives the same bytes).
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        fn entries<W: Write, V: Counter>(
            e: &mut Encoder<W>,
            m: &HashMap<u32, V>,
        ) -> io::Result<()> {
            let mut sorted: Vec<(u32, V)> = m.iter().map(|(k, n)| (*k, *n)).collect();
            sorted.sort_unstable_by_key(|(k, _)| *k);
            e.usize(sorted.len())?;
            for (k, n) in sorted {
                e.u64(u64::from(k))?;
                n.encode(e)?;
            }
            Ok(())
        }
        self.ring.encode_shape(e)?;
        e.usize(self.ring.held())?;
        for (b, m) in self.ring.iter() {
            e.i64(b)?;
            entries(e, m)?;
        }
        entries(e, &self.all_time)
    }

    /// Reads what [`encode`](Self::encode) wrote; the window totals are
    /// summed from the buckets.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        fn entries<V: Counter>(d: &mut Decoder<'_>) -> Result<HashMap<u32, V>, DecodeError> {
            let n = d.count()?;
            let mut m = HashMap::default();
            m.reserve(n);
            for _ in 0..n {
                let k = d.u32()?;
                m.insert(k, V::decode(d)?);
            }
            Ok(m)
        }
        let mut w: WindowedCounts<u32, V> = WindowedCounts {
            ring: BucketRing::decode_shape(d)?,
            window: HashMap::default(),
            all_time: HashMap::default(),
        };
        for _ in 0..d.count()? {
            let b = d.i64()?;
            let m: HashMap<u32, V> = entries(d)?;
            for (k, n) in &m {
                w.window.entry(*k).or_default().add(n);
            }
            w.ring.restore(b, m);
        }
        w.all_time = entries(d)?;
        Ok(w)
    }
}

/// Event-time watermarks per input partition. Within a partition events
/// arrive in event-time order (the producer publishes them so), so an event
/// is late when it is older than its own partition's newest event time
/// minus the allowed lateness. The windows slide by the low watermark, the
/// oldest of the partitions' newest event times, so a partition read ahead
/// of the others does not make their events late or expire them.
///
/// One event cannot move a partition's watermark by more than [`MAX_JUMP`]
/// on its own (a producer with a wrong clock would make every later event
/// of the partition late): such an event is on time and counted, and the
/// watermark follows only when the next event of the partition is that far
/// ahead too (a real gap in the stream), to the earlier of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    newest: BTreeMap<String, i64>,
    lateness: i64,
    /// Per partition, an event time past `newest + MAX_JUMP` waiting for a
    /// second one to confirm the jump.
    ahead: BTreeMap<String, i64>,
}

/// How far one event may move its partition's newest event time (a day).
pub const MAX_JUMP: i64 = 86_400;

/// Whether an event is on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    /// At or after its partition's watermark.
    OnTime,
    /// Before it by this many seconds.
    Late(i64),
}

impl Watermark {
    /// Watermarks allowing `lateness_secs` of disorder.
    pub fn new(lateness_secs: i64) -> Self {
        Watermark {
            newest: BTreeMap::new(),
            lateness: lateness_secs.max(0),
            ahead: BTreeMap::new(),
        }
    }

    /// A partition's watermark, once it delivered an event.
    pub fn current(&self, partition: &str) -> Option<i64> {
        self.newest.get(partition).map(|m| m - self.lateness)
    }

    /// The oldest of the partitions' newest event times.
    pub fn low(&self) -> Option<i64> {
        self.newest.values().min().copied()
    }

    /// The newest event time of any partition.
    pub fn high(&self) -> Option<i64> {
        self.newest.values().max().copied()
    }

    /// Judges an event of `partition` and, if on time, takes it into account.
    pub fn observe(&mut self, partition: &str, t: i64) -> Lateness {
        if let Some(w) = self.current(partition) {
            if t < w {
                return Lateness::Late(w - t);
            }
        }
        match self.newest.get_mut(partition) {
            Some(newest) if t > newest.saturating_add(MAX_JUMP) => {
                match self.ahead.remove(partition) {
                    // Confirmed: a gap in the stream, not one bad clock.
                    Some(first) => *newest = first.min(t),
                    None => {
                        self.ahead.insert(partition.to_string(), t);
                    }
                }
            }
            Some(newest) => {
                *newest = (*newest).max(t);
                self.ahead.remove(partition);
            }
            None => {
                self.newest.insert(partition.to_string(), t);
            }
        }
        Lateness::OnTime
    }

    /// Writes the lateness, each partition's newest event time and the
    /// jumps waiting for confirmation.
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.i64(self.lateness)?;
        for map in [&self.newest, &self.ahead] {
            e.usize(map.len())?;
            for (p, t) in map {
                e.str(p)?;
                e.i64(*t)?;
            }
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote; `with_ahead: false` reads
    /// a checkpoint from before the jump guard (none waiting).
    pub fn decode(d: &mut Decoder<'_>, with_ahead: bool) -> Result<Self, DecodeError> {
        let mut w = Watermark::new(d.i64()?);
        let maps = if with_ahead { 2 } else { 1 };
        for map in [&mut w.newest, &mut w.ahead].into_iter().take(maps) {
            for _ in 0..d.count()? {
                let p = d.str()?;
                map.insert(p, d.i64()?);
            }
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_by_whole_buckets() {
        // Three one-day buckets.
        let mut w = WindowedCounts::new(DAY, 3);
        assert!(w.add("a", 0, 2)); // day 0
        assert!(w.add("a", DAY + 5, 1)); // day 1
        assert!(w.add("b", DAY + 6, 1)); // day 1
        assert_eq!(w.covers(), None, "adding does not slide the window");
        w.advance_to(DAY + 6);
        assert_eq!(w.window_count(&"a"), 3);
        assert_eq!(w.covers(), Some((-DAY, 2 * DAY)), "days -1, 0, 1");
        assert!(w.add("a", 3 * DAY, 1)); // day 3
        w.advance_to(3 * DAY); // day 0 falls out
        assert_eq!(w.window_count(&"a"), 2, "day 1 + day 3");
        assert_eq!(w.window_count(&"b"), 1);
        assert_eq!(w.buckets(), 2);
        assert_eq!(w.covers(), Some((DAY, 4 * DAY)));
        // An event for day 0 is before the window now: all-time only.
        assert!(!w.add("a", 10, 1));
        assert_eq!(w.window_count(&"a"), 2);
        assert_eq!(w.all_time_count(&"a"), 5);
    }

    #[test]
    fn expired_keys_free_their_memory() {
        let mut w = WindowedCounts::new(DAY, 2);
        for i in 0..1_000u32 {
            w.add(i, 0, 1);
        }
        assert_eq!(w.window_keys(), 1_000);
        w.advance_to(5 * DAY);
        assert_eq!(w.window_keys(), 0);
        assert_eq!(w.buckets(), 0);
        assert_eq!(w.all_time_count(&7), 1);
        // Advancing backwards does nothing.
        w.advance_to(0);
        assert_eq!(w.covers(), Some((4 * DAY, 6 * DAY)));
    }

    #[test]
    fn checkpoint_round_trip_keeps_window_and_all_time() {
        let mut w: WindowedCounts<u32> = WindowedCounts::new(DAY, 2);
        w.add(7, 0, 3);
        w.add(9, DAY, 1);
        w.add(7, 2 * DAY, 1);
        w.advance_to(2 * DAY);
        let mut e = Encoder::new(Vec::new());
        w.encode(&mut e).expect("encode");
        let bytes = e.finish().expect("bytes");
        let mut d = Decoder::new(&bytes);
        let back = WindowedCounts::decode(&mut d).expect("restore");
        assert!(d.done());
        assert_eq!(back, w);
        assert_eq!(back.window_count(&7), 1, "day 0 slid out");
        assert_eq!(back.window_count(&9), 1);
        assert_eq!(back.all_time_count(&7), 4);
        // Truncated: an error, not a panic.
        let cut = WindowedCounts::<u32>::decode(&mut Decoder::new(&bytes[..bytes.len() - 1]));
        assert!(cut.is_err());
    }

    #[test]
    fn several_counts_under_one_key_slide_together() {
        let mut w: WindowedCounts<u32, [u64; 2]> = WindowedCounts::new(DAY, 2);
        w.add(7, 0, [1, 5]);
        w.add(7, DAY, [1, 0]);
        w.advance_to(DAY);
        assert_eq!(w.window_count(&7), [2, 5]);
        w.advance_to(2 * DAY); // day 0 out
        assert_eq!(w.window_count(&7), [1, 0]);
        w.advance_to(3 * DAY); // day 1 out: the key leaves the window
        assert_eq!(w.window_keys(), 0);
        assert_eq!(w.all_time_count(&7), [2, 5]);
        let mut e = Encoder::new(Vec::new());
        w.encode(&mut e).expect("encode");
        let bytes = e.finish().expect("bytes");
        let back: WindowedCounts<u32, [u64; 2]> =
            WindowedCounts::decode(&mut Decoder::new(&bytes)).expect("decode");
        assert_eq!(back, w);
    }

    #[test]
    fn watermark_is_per_partition_and_windows_follow_the_low_one() {
        let mut m = Watermark::new(3_600);
        assert_eq!(m.current("p0"), None);
        assert_eq!(m.observe("p0", 10_000), Lateness::OnTime);
        assert_eq!(m.current("p0"), Some(6_400));
        // Out of order but within the lateness: fine, and no regression.
        assert_eq!(m.observe("p0", 7_000), Lateness::OnTime);
        assert_eq!(m.observe("p0", 6_400), Lateness::OnTime);
        assert_eq!(m.observe("p0", 6_000), Lateness::Late(400));
        // Another partition read behind p0 is not late: its own clock.
        assert_eq!(m.observe("p1", 1_000), Lateness::OnTime);
        assert_eq!(m.low(), Some(1_000));
        assert_eq!(m.observe("p1", 20_000), Lateness::OnTime);
        assert_eq!(m.low(), Some(10_000));
        assert_eq!(m.observe("p1", 16_000), Lateness::Late(400));
    }

    /// One event from a wrong clock (a year ahead) is counted but does not
    /// move the watermark: the events after it stay on time. A real gap
    /// (two events in a row more than a day ahead) moves it, to the earlier
    /// of the two. The pending jump survives a checkpoint.
    #[test]
    fn one_outlier_cannot_move_the_watermark_a_gap_can() {
        let year = 365 * DAY;
        let mut m = Watermark::new(3_600);
        assert_eq!(m.observe("p0", 10_000), Lateness::OnTime);
        assert_eq!(m.observe("p0", 10_000 + year), Lateness::OnTime);
        assert_eq!(m.high(), Some(10_000), "the outlier alone moved nothing");
        // The next event is normal: on time, and the outlier is forgotten.
        assert_eq!(m.observe("p0", 10_100), Lateness::OnTime);
        assert_eq!(m.current("p0"), Some(10_100 - 3_600));
        // A gap of three days, confirmed by the next event: the watermark
        // follows, to the earlier of the two.
        let gap = 10_100 + 3 * DAY;
        assert_eq!(m.observe("p0", gap + 50), Lateness::OnTime);
        assert_eq!(m.high(), Some(10_100));
        let mut bytes = Vec::new();
        let mut e = Encoder::new(&mut bytes);
        m.encode(&mut e).expect("encode");
        e.finish().expect("finish");
        let restored = Watermark::decode(&mut Decoder::new(&bytes), true).expect("decode");
        assert_eq!(restored, m, "the pending jump is in the checkpoint");
        m = restored;
        assert_eq!(m.observe("p0", gap), Lateness::OnTime);
        assert_eq!(m.high(), Some(gap));
        assert_eq!(m.observe("p0", gap - 4_000), Lateness::Late(400));
    }

    /// A checkpoint written before the jump guard (no pending jumps) reads.
    #[test]
    fn a_watermark_of_the_previous_format_reads() {
        let mut bytes = Vec::new();
        let mut e = Encoder::new(&mut bytes);
        e.i64(3_600).expect("lateness");
        e.usize(1).expect("count");
        e.str("sessions/0").expect("partition");
        e.i64(10_000).expect("time");
        e.finish().expect("finish");
        let m = Watermark::decode(&mut Decoder::new(&bytes), false).expect("decode");
        assert_eq!(m.current("sessions/0"), Some(6_400));
        assert!(m.ahead.is_empty());
    }
}
