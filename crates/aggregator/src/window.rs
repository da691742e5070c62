//! Counts by event time over a sliding window, in buckets.
//!
//! A window of `w` buckets of `bucket_secs` seconds covers the `w` buckets
//! up to the one holding the newest event time it was advanced to. Each
//! count is added to its event's bucket and to the window's running total;
//! sliding drops whole buckets, subtracting their counts from the totals, so
//! the cost of a slide is the size of one bucket, not of the window, and
//! memory is bounded by the window, not by the length of the stream.
//! All-time totals are kept beside it.

use crate::codec::{DecodeError, Decoder, Encoder};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::io::{self, Write};

/// Seconds in a day, the default bucket.
pub const DAY: i64 = 86_400;

/// Counts per key over a sliding window of buckets, plus all-time counts.
/// Checkpointed as its buckets and all-time counts; the window totals are
/// derived from the buckets on restore.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedCounts<K: Hash + Eq + Clone> {
    bucket_secs: i64,
    window_buckets: i64,
    buckets: BTreeMap<i64, HashMap<K, u64>>,
    window: HashMap<K, u64>,
    all_time: HashMap<K, u64>,
    /// Newest bucket the window was advanced to.
    head: Option<i64>,
}

impl<K: Hash + Eq + Clone> WindowedCounts<K> {
    /// A window of `window_buckets` buckets of `bucket_secs` seconds each.
    pub fn new(bucket_secs: i64, window_buckets: i64) -> Self {
        WindowedCounts {
            bucket_secs: bucket_secs.max(1),
            window_buckets: window_buckets.max(1),
            buckets: BTreeMap::new(),
            window: HashMap::default(),
            all_time: HashMap::default(),
            head: None,
        }
    }

    fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket_secs)
    }

    /// Oldest bucket still in the window.
    fn tail(&self) -> Option<i64> {
        self.head.map(|h| h - self.window_buckets + 1)
    }

    /// Adds `n` to `key` at event time `t` (seconds). Returns `false` when
    /// `t` falls before the window (it then only counts all-time); callers
    /// screen such late events with a [`Watermark`] first. Adding does not
    /// slide the window: the caller does, with [`advance_to`](Self::advance_to)
    /// and the low watermark, so a partition read ahead of the others cannot
    /// push their events out.
    pub fn add(&mut self, key: K, t: i64, n: u64) -> bool {
        self.add_counting_new(key, t, n).0
    }

    /// [`add`](Self::add), also saying whether `key` had no all-time count
    /// before: `(in the window, new)`.
    pub fn add_counting_new(&mut self, key: K, t: i64, n: u64) -> (bool, bool) {
        let total = self.all_time.entry(key.clone()).or_default();
        let new = *total == 0;
        *total += n;
        let b = self.bucket_of(t);
        if self.tail().is_some_and(|tail| b < tail) {
            return (false, new);
        }
        *self
            .buckets
            .entry(b)
            .or_default()
            .entry(key.clone())
            .or_default() += n;
        *self.window.entry(key).or_default() += n;
        (true, new)
    }

    /// Slides the window so that its newest bucket holds `t`, dropping the
    /// buckets that fall out. Never moves backwards.
    pub fn advance_to(&mut self, t: i64) {
        let b = self.bucket_of(t);
        if self.head.is_some_and(|h| b <= h) {
            return;
        }
        self.head = Some(b);
        let tail = b - self.window_buckets + 1;
        let expired: Vec<i64> = self.buckets.range(..tail).map(|(k, _)| *k).collect();
        for e in expired {
            if let Some(bucket) = self.buckets.remove(&e) {
                for (key, n) in bucket {
                    if let Some(total) = self.window.get_mut(&key) {
                        *total = total.saturating_sub(n);
                        if *total == 0 {
                            self.window.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// Count of `key` in the window.
    pub fn window_count(&self, key: &K) -> u64 {
        self.window.get(key).copied().unwrap_or(0)
    }

    /// Count of `key` over all time.
    pub fn all_time_count(&self, key: &K) -> u64 {
        self.all_time.get(key).copied().unwrap_or(0)
    }

    /// Keys with a count in the window (the window's state size).
    pub fn window_keys(&self) -> usize {
        self.window.len()
    }

    /// Buckets held (at most the window's length).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// `[start, end)` in seconds covered by the window, once it has data.
    pub fn covers(&self) -> Option<(i64, i64)> {
        let (head, tail) = (self.head?, self.tail()?);
        Some((tail * self.bucket_secs, (head + 1) * self.bucket_secs))
    }

    /// Keys and their window counts.
    pub fn iter_window(&self) -> impl Iterator<Item = (&K, u64)> {
        self.window.iter().map(|(k, n)| (k, *n))
    }

    /// Keys and their all-time counts.
    pub fn iter_all_time(&self) -> impl Iterator<Item = (&K, u64)> {
        self.all_time.iter().map(|(k, n)| (k, *n))
    }
}

impl WindowedCounts<u32> {
    /// Bytes held on the heap (hash tables with their control bytes).
    pub fn heap_bytes(&self) -> usize {
        let map = |m: &HashMap<u32, u64>| m.capacity() * 17;
        self.buckets.values().map(map).sum::<usize>() + map(&self.window) + map(&self.all_time)
    }

    /// Writes the buckets and all-time counts, keys in order (so the same
    /// state always gives the same bytes).
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        fn entries<W: Write>(e: &mut Encoder<W>, m: &HashMap<u32, u64>) -> io::Result<()> {
            let mut sorted: Vec<(u32, u64)> = m.iter().map(|(k, n)| (*k, *n)).collect();
            sorted.sort_unstable();
            e.usize(sorted.len())?;
            for (k, n) in sorted {
                e.u64(u64::from(k))?;
                e.u64(n)?;
            }
            Ok(())
        }
        e.i64(self.bucket_secs)?;
        e.i64(self.window_buckets)?;
        match self.head {
            None => e.u64(0)?,
            Some(h) => {
                e.u64(1)?;
                e.i64(h)?;
            }
        }
        e.usize(self.buckets.len())?;
        for (b, m) in &self.buckets {
            e.i64(*b)?;
            entries(e, m)?;
        }
        entries(e, &self.all_time)
    }

    /// Reads what [`encode`](Self::encode) wrote; the window totals are
    /// summed from the buckets.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        fn entries(d: &mut Decoder<'_>) -> Result<HashMap<u32, u64>, DecodeError> {
            let n = d.count()?;
            let mut m = HashMap::default();
            m.reserve(n);
            for _ in 0..n {
                let k = d.u32()?;
                m.insert(k, d.u64()?);
            }
            Ok(m)
        }
        let mut w = WindowedCounts::new(d.i64()?, d.i64()?);
        w.head = match d.u64()? {
            0 => None,
            1 => Some(d.i64()?),
            _ => return Err(DecodeError("windowed counts: head".into())),
        };
        for _ in 0..d.count()? {
            let b = d.i64()?;
            let m = entries(d)?;
            for (k, n) in &m {
                let total = w.window.entry(*k).or_default();
                *total = total.saturating_add(*n);
            }
            w.buckets.insert(b, m);
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    newest: BTreeMap<String, i64>,
    lateness: i64,
}

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
            Some(newest) => *newest = (*newest).max(t),
            None => {
                self.newest.insert(partition.to_string(), t);
            }
        }
        Lateness::OnTime
    }

    /// Writes the lateness and each partition's newest event time.
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.i64(self.lateness)?;
        e.usize(self.newest.len())?;
        for (p, t) in &self.newest {
            e.str(p)?;
            e.i64(*t)?;
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut w = Watermark::new(d.i64()?);
        for _ in 0..d.count()? {
            let p = d.str()?;
            w.newest.insert(p, d.i64()?);
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
        assert!(WindowedCounts::decode(&mut Decoder::new(&bytes[..bytes.len() - 1])).is_err());
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
}
