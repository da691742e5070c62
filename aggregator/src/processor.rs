//! The aggregator's state machine: events in (by topic, partition and
//! offset), windows updated by event time, lookups out, and a checkpoint
//! that holds the state together with the offsets it reflects.
//!
//! Restoring a checkpoint and replaying the log from before it neither loses
//! nor double-counts an event: records at offsets the state already reflects
//! are skipped. Late events (older than the watermark) change nothing and
//! are reported, so the caller can dead-letter them with reason `late`.

use crate::choices::{Ranking, Relation, Span};
use crate::cooccur::{CoOccurrence, Engagement, Partner};
use crate::names::{IdKind, Names, UNNUMBERED};
use crate::window::{Lateness, Watermark, WindowedCounts, DAY};
use schemas::codec::{DecodeError, Decoder, Encoder};
use schemas::envelope::{decode_session, decode_transaction};
use schemas::{topics, ConversionStatus, Rejection};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Settings that shape the state (they are part of the checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregatorConfig {
    /// Days in the sliding window.
    pub window_days: i64,
    /// Allowed lateness behind the highest event time seen, in seconds.
    pub lateness_secs: i64,
    /// Items taken from one basket at most.
    pub max_items: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_days: 30,
            lateness_secs: 3_600,
            max_items: crate::pairs::DEFAULT_MAX_ITEMS,
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Counted.
    Applied,
    /// Already reflected in the state (an offset before the checkpoint's).
    AlreadyApplied,
    /// Behind the watermark: not counted; dead-letter it with reason `late`.
    Late(Rejection),
    /// Not a valid event (ingest dead-letters those; here they are skipped).
    Invalid(Rejection),
}

/// Per-user counters over the window, counted together under one key:
/// sessions, converted sessions, products viewed, cart abandonments.
type EngagementWindows = WindowedCounts<u32, [u64; 4]>;
const SESSIONS: usize = 0;
const CONVERTED: usize = 1;
const VIEWED: usize = 2;
const ABANDONED: usize = 3;

/// What the aggregator takes from a valid event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event time, seconds since the epoch.
    pub time: i64,
    /// Product numbers of the basket (bought or viewed), in the event's
    /// order: a generated-form id's own number, or [`UNNUMBERED`] for an id
    /// of another form, which the state numbers from [`named`](Self::named).
    pub items: Vec<u32>,
    /// The ids of the [`UNNUMBERED`] items, in order.
    pub named: Vec<String>,
    /// Transaction or session.
    pub kind: EventKind,
}

/// A session's user, as decoded: numbered already, or to be numbered by
/// the state.
#[derive(Debug, Clone, PartialEq)]
pub enum UserRef {
    /// A generated-form id's number.
    Number(u32),
    /// An id of another form.
    Named(String),
}

/// The kind of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A transaction's items.
    Basket,
    /// A session: its products viewed, and for engagement the user, the
    /// count of products viewed and how it ended.
    Session {
        /// The user.
        user: UserRef,
        /// Products viewed.
        viewed: u64,
        /// How it ended.
        status: ConversionStatus,
    },
}

impl Event {
    /// Decodes and validates a record of `topic` (sessions or
    /// transactions; other topics are invalid).
    pub fn decode(topic: &str, payload: &[u8]) -> Result<Event, Rejection> {
        match topic {
            topics::TRANSACTIONS => decode_transaction(payload).map(|t| {
                let (items, named) = product_numbers(t.items.into_iter().map(|i| i.product_id));
                Event {
                    time: t.timestamp.and_utc().timestamp(),
                    items,
                    named,
                    kind: EventKind::Basket,
                }
            }),
            topics::SESSIONS => decode_session(payload).map(|s| {
                let viewed = s.viewed_products.len() as u64;
                let (items, named) = product_numbers(s.viewed_products.into_iter());
                let user = match IdKind::User.generated_number(&s.user_id) {
                    Some(n) => UserRef::Number(n),
                    None => UserRef::Named(s.user_id),
                };
                Event {
                    time: s.start_time.and_utc().timestamp(),
                    items,
                    named,
                    kind: EventKind::Session {
                        user,
                        viewed,
                        status: s.conversion_status,
                    },
                }
            }),
            other => Err(Rejection::WrongKind {
                expected: "session or transaction",
                found: other.to_string(),
            }),
        }
    }
}

/// The next offset not yet reflected of one input partition.
#[derive(Debug, Clone, PartialEq)]
struct PartitionOffset {
    topic: String,
    partition: u32,
    /// `topic/partition`: the partition's name for the watermark.
    name: String,
    next: u64,
}

/// The aggregator state.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregator {
    config: AggregatorConfig,
    bought: CoOccurrence,
    viewed: CoOccurrence,
    engagement: EngagementWindows,
    watermark: Watermark,
    /// Per input partition, ordered by name (a handful: searched, not
    /// hashed, and no string made per record).
    offsets: Vec<PartitionOffset>,
    late: u64,
    /// Numbers of product ids not of the generated form.
    products: Names,
    /// Numbers of user ids not of the generated form.
    users: Names,
}

/// The first bytes of a checkpoint: what it is and the format's version.
/// Version 6 ends with the names of the ids not of the generated form, then
/// (as version 5) with the XXH3-64 of every byte before it (little-endian),
/// so that a flipped byte is an error, never a changed count.
const MAGIC: &[u8] = b"ecomflow aggregator checkpoint v6\n";
/// The format before named ids: read, never written.
const MAGIC_V5: &[u8] = b"ecomflow aggregator checkpoint v5\n";
/// The format before the checksum: read, never written.
const MAGIC_V4: &[u8] = b"ecomflow aggregator checkpoint v4\n";
/// The format before the watermark's jump guard: read, never written.
const MAGIC_V3: &[u8] = b"ecomflow aggregator checkpoint v3\n";

/// A writer that hashes what passes through it.
struct Hashed<W> {
    inner: W,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl<W: std::io::Write> std::io::Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A checkpoint that cannot be restored.
#[derive(Debug, thiserror::Error)]
#[error("unreadable aggregator checkpoint: {0}")]
pub struct CheckpointError(String);

/// Product numbers of a basket's ids, [`UNNUMBERED`] for ids of other
/// forms than the generated one, and those ids in order.
fn product_numbers(ids: impl Iterator<Item = String>) -> (Vec<u32>, Vec<String>) {
    let mut named = Vec::new();
    let items = ids
        .map(|id| match IdKind::Product.generated_number(&id) {
            Some(n) => n,
            None => {
                named.push(id);
                UNNUMBERED
            }
        })
        .collect();
    (items, named)
}

impl Aggregator {
    /// An empty state.
    pub fn new(config: AggregatorConfig) -> Self {
        let w = config.window_days.max(1);
        Aggregator {
            bought: CoOccurrence::new(DAY, w, config.max_items),
            viewed: CoOccurrence::new(DAY, w, config.max_items),
            engagement: WindowedCounts::new(DAY, w),
            watermark: Watermark::new(config.lateness_secs),
            offsets: Vec::new(),
            late: 0,
            products: Names::new(IdKind::Product),
            users: Names::new(IdKind::User),
            config,
        }
    }

    /// Applies one record read from the log.
    pub fn apply(&mut self, topic: &str, partition: u32, offset: u64, payload: &[u8]) -> Outcome {
        let outcome = self.apply_decoded(topic, partition, offset, Event::decode(topic, payload));
        self.expire(usize::MAX);
        outcome
    }

    /// Applies one record already decoded with [`Event::decode`] (which
    /// needs no state, so the runner decodes on another thread). Baskets
    /// that slide out of the window are queued: [`expire`](Self::expire)
    /// takes them out of the counts.
    pub fn apply_decoded(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        event: Result<Event, Rejection>,
    ) -> Outcome {
        if !matches!(topic, topics::TRANSACTIONS | topics::SESSIONS) {
            // Not an input: no offset is kept for it, nothing is counted.
            return Outcome::Invalid(Rejection::WrongKind {
                expected: "session or transaction",
                found: topic.to_string(),
            });
        }
        let slot = self.offset_slot(topic, partition);
        let at = &mut self.offsets[slot];
        if offset < at.next {
            return Outcome::AlreadyApplied;
        }
        at.next = offset + 1;
        let event = match event {
            Ok(e) => e,
            Err(e) => return Outcome::Invalid(e),
        };
        if let Err(late) = self.admit(slot, event.time) {
            return late;
        }
        let time = event.time;
        let mut items = event.items;
        if !event.named.is_empty() {
            self.number_products(&mut items, event.named);
        }
        match event.kind {
            EventKind::Basket => self.bought.add_basket(&items, time),
            EventKind::Session {
                user,
                viewed,
                status,
            } => {
                self.viewed.add_basket(&items, time);
                let user = match user {
                    UserRef::Number(n) => Some(n),
                    UserRef::Named(id) => self.users.number_named(&id),
                };
                if let Some(u) = user {
                    let mut n = [0u64; 4];
                    n[SESSIONS] = 1;
                    n[VIEWED] = viewed;
                    n[CONVERTED] = u64::from(status == ConversionStatus::Converted);
                    n[ABANDONED] = u64::from(status == ConversionStatus::Abandoned);
                    self.engagement.add(u, time, n);
                }
            }
        }
        self.slide();
        Outcome::Applied
    }

    /// Numbers the [`UNNUMBERED`] items from `named`, in order (an id past
    /// the last free number, some two billion names on, is left out).
    fn number_products(&mut self, items: &mut Vec<u32>, named: Vec<String>) {
        let mut named = named.into_iter();
        items.retain_mut(|n| {
            if *n != UNNUMBERED {
                return true;
            }
            match named.next().and_then(|id| self.products.number_named(&id)) {
                Some(number) => {
                    *n = number;
                    true
                }
                None => false,
            }
        });
    }

    /// The number of a product id the state has seen (or of any
    /// generated-form id).
    pub fn product_number(&self, id: &str) -> Option<u32> {
        self.products.number(id)
    }

    /// The number of a user id the state has seen (or of any
    /// generated-form id).
    pub fn user_number(&self, id: &str) -> Option<u32> {
        self.users.number(id)
    }

    /// The id of product number `n`.
    pub fn product_id(&self, n: u32) -> Cow<'_, str> {
        self.products.id(n)
    }

    /// The id of user number `n`.
    pub fn user_id(&self, n: u32) -> Cow<'_, str> {
        self.users.id(n)
    }

    /// Product and user ids held by name (not of the generated form).
    pub fn named_ids(&self) -> (usize, usize) {
        (self.products.len(), self.users.len())
    }

    /// Takes up to about `budget` pairs of baskets that slid out of the
    /// window out of its counts (each relation); returns whether some are
    /// left. The runner calls it in pieces, between which lookups get in.
    pub fn expire(&mut self, budget: usize) -> bool {
        let bought = self.bought.expire(budget);
        let viewed = self.viewed.expire(budget);
        bought || viewed
    }

    /// Slides every window to the low watermark.
    fn slide(&mut self) {
        if let Some(low) = self.watermark.low() {
            self.bought.slide_to(low);
            self.viewed.slide_to(low);
            self.engagement.advance_to(low);
        }
    }

    /// The index of a partition's offset, added if new.
    fn offset_slot(&mut self, topic: &str, partition: u32) -> usize {
        if let Some(i) = self
            .offsets
            .iter()
            .position(|o| o.partition == partition && o.topic == topic)
        {
            return i;
        }
        let name = format!("{topic}/{partition}");
        let i = self.offsets.partition_point(|o| o.name < name);
        self.offsets.insert(
            i,
            PartitionOffset {
                topic: topic.to_string(),
                partition,
                name,
                next: 0,
            },
        );
        i
    }

    fn admit(&mut self, slot: usize, time: i64) -> Result<(), Outcome> {
        match self.watermark.observe(&self.offsets[slot].name, time) {
            Lateness::OnTime => Ok(()),
            Lateness::Late(lag) => {
                self.late += 1;
                Err(Outcome::Late(Rejection::Late { lag_seconds: lag }))
            }
        }
    }

    /// Top `k` "bought together" partners of a product ([`together`](Self::together)
    /// with [`Relation::Bought`]).
    pub fn bought_together(
        &self,
        product: u32,
        k: usize,
        ranking: Ranking,
        span: Span,
    ) -> Vec<Partner> {
        self.bought.top_partners(product, k, ranking, span)
    }

    /// Whether the window holds a basket of `relation` with a product
    /// (pairs or not).
    pub fn holds_baskets(&self, relation: Relation) -> bool {
        let model = match relation {
            Relation::Bought => &self.bought,
            Relation::Viewed => &self.viewed,
        };
        !model.top_items(1, Span::Window).is_empty()
    }

    /// The `k` products in the most transactions over `span`.
    pub fn best_sellers(&self, k: usize, span: Span) -> Vec<(u32, u64)> {
        self.bought.top_items(k, span)
    }

    /// A user's engagement over the window.
    pub fn engagement(&self, user: u32) -> Engagement {
        let e = self.engagement.window_count(&user);
        Engagement {
            sessions: e[SESSIONS],
            converted: e[CONVERTED],
            viewed: e[VIEWED],
            abandoned: e[ABANDONED],
        }
    }

    /// Whether a product was ever bought or viewed.
    pub fn knows_product(&self, product: u32) -> bool {
        self.bought.knows(product) || self.viewed.knows(product)
    }

    /// Whether a user ever had a session.
    pub fn knows_user(&self, user: u32) -> bool {
        self.engagement.all_time_count(&user)[SESSIONS] > 0
    }

    /// The `k` most frequent pairs, bought together or viewed together.
    pub fn top_pairs(&self, relation: Relation, k: usize, span: Span) -> Vec<(u32, u32, u64)> {
        match relation {
            Relation::Viewed => self.viewed.top_pairs(k, span),
            Relation::Bought => self.bought.top_pairs(k, span),
        }
    }

    /// An item's partners by `relation`: [`bought_together`](Self::bought_together)
    /// or the viewed-together partners.
    pub fn together(
        &self,
        relation: Relation,
        item: u32,
        k: usize,
        ranking: Ranking,
        span: Span,
    ) -> Vec<Partner> {
        match relation {
            Relation::Bought => self.bought.top_partners(item, k, ranking, span),
            Relation::Viewed => self.viewed.top_partners(item, k, ranking, span),
        }
    }

    /// Bytes the state holds on the heap (an estimate from allocated
    /// capacities: the co-occurrence tables, the window's baskets, the
    /// engagement windows).
    pub fn heap_bytes(&self) -> usize {
        self.bought.heap_bytes()
            + self.viewed.heap_bytes()
            + self.engagement.heap_bytes()
            + self.products.heap_bytes()
            + self.users.heap_bytes()
    }

    /// Pairs in the bought-together and viewed-together windows.
    pub fn window_pairs(&self) -> (usize, usize) {
        (self.bought.window_pairs(), self.viewed.window_pairs())
    }

    /// The low watermark (seconds since the epoch): the oldest of the
    /// input partitions' newest event times, once events arrived.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark.low()
    }

    /// The newest event time seen on any input partition (seconds).
    pub fn newest_event(&self) -> Option<i64> {
        self.watermark.high()
    }

    /// The settings the state was made with.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// Late events seen.
    pub fn late_events(&self) -> u64 {
        self.late
    }

    /// A number that changes whenever the state does: the sum of the next
    /// offsets (every record that can change the state moves one), so an
    /// answer made at one version is the answer until the version moves.
    pub fn version(&self) -> u64 {
        self.offsets
            .iter()
            .fold(0u64, |v, o| v.wrapping_add(o.next))
    }

    /// Next offset to read per (topic, partition), as the state reflects.
    pub fn offsets(&self) -> BTreeMap<(String, u32), u64> {
        self.offsets
            .iter()
            .map(|o| ((o.topic.clone(), o.partition), o.next))
            .collect()
    }

    /// The `[start, end)` seconds the bought-together window covers.
    pub fn covers(&self) -> Option<(i64, i64)> {
        self.bought.covers()
    }

    /// The state and its offsets, as bytes.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.write_checkpoint(&mut out) {
            Ok(()) => out,
            // Writing to memory does not fail.
            Err(_) => Vec::new(),
        }
    }

    /// Writes [`checkpoint`](Self::checkpoint)'s bytes to `w` as they are
    /// made: a header, the settings, both co-occurrence models (all-time
    /// counts and the window's baskets, see [`CoOccurrence::encode`]), the
    /// engagement windows, the watermark and the offsets, in the compact
    /// encoding of `crate::codec`.
    pub fn write_checkpoint(&self, w: impl std::io::Write) -> std::io::Result<()> {
        let mut hashed = Hashed {
            inner: w,
            hash: xxhash_rust::xxh3::Xxh3::new(),
        };
        self.write_body(&mut hashed)?;
        let sum = hashed.hash.digest();
        hashed.inner.write_all(&sum.to_le_bytes())?;
        hashed.inner.flush()
    }

    fn write_body(&self, w: impl std::io::Write) -> std::io::Result<()> {
        let mut e = Encoder::new(w);
        e.raw(MAGIC)?;
        e.i64(self.config.window_days)?;
        e.i64(self.config.lateness_secs)?;
        e.usize(self.config.max_items)?;
        self.bought.encode(&mut e)?;
        self.viewed.encode(&mut e)?;
        self.engagement.encode(&mut e)?;
        self.watermark.encode(&mut e)?;
        e.usize(self.offsets.len())?;
        for o in &self.offsets {
            e.str(&o.topic)?;
            e.u64(u64::from(o.partition))?;
            e.u64(o.next)?;
        }
        e.u64(self.late)?;
        self.products.encode(&mut e)?;
        self.users.encode(&mut e)?;
        e.finish()?;
        Ok(())
    }

    /// A state from [`checkpoint`](Self::checkpoint) bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, CheckpointError> {
        if bytes.first() == Some(&b'{') {
            return Err(CheckpointError(
                "written by an older ecomflow (JSON); rebuild the state from the log \
                 with --rebuild-aggregator"
                    .into(),
            ));
        }
        let summed = [(MAGIC, 6), (MAGIC_V5, 5)]
            .into_iter()
            .find(|(magic, _)| bytes.starts_with(magic));
        let (body, version) = if let Some((magic, version)) = summed {
            let Some(at) = bytes.len().checked_sub(8).filter(|&at| at >= magic.len()) else {
                return Err(CheckpointError("cut short: no checksum".into()));
            };
            let (covered, sum) = bytes.split_at(at);
            let mut want = [0u8; 8];
            want.copy_from_slice(sum);
            if xxhash_rust::xxh3::xxh3_64(covered) != u64::from_le_bytes(want) {
                return Err(CheckpointError(
                    "checksum mismatch: the file is damaged; rebuild the state from the log \
                     with --rebuild-aggregator"
                        .into(),
                ));
            }
            (&covered[magic.len()..], version)
        } else if let Some(body) = bytes.strip_prefix(MAGIC_V4) {
            (body, 4)
        } else if let Some(body) = bytes.strip_prefix(MAGIC_V3) {
            (body, 3)
        } else {
            return Err(CheckpointError(
                "not an aggregator checkpoint of this version".into(),
            ));
        };
        let mut d = Decoder::new(body);
        let model = Self::decode(&mut d, version).map_err(|e| CheckpointError(e.to_string()))?;
        if !d.done() {
            return Err(CheckpointError("bytes after the end of the state".into()));
        }
        Ok(model)
    }

    /// Decodes a body of format `version` (3 to 6).
    fn decode(d: &mut Decoder<'_>, version: u32) -> Result<Self, DecodeError> {
        let config = AggregatorConfig {
            window_days: d.i64()?,
            lateness_secs: d.i64()?,
            max_items: usize::try_from(d.u64()?)
                .map_err(|_| DecodeError("basket cap out of range".into()))?,
        };
        let bought = CoOccurrence::decode(d)?;
        let viewed = CoOccurrence::decode(d)?;
        let engagement = WindowedCounts::decode(d)?;
        let watermark = Watermark::decode(d, version >= 4)?;
        let mut offsets: Vec<PartitionOffset> = Vec::new();
        for _ in 0..d.count()? {
            let topic = d.str()?;
            let partition = d.u32()?;
            let next = d.u64()?;
            let name = format!("{topic}/{partition}");
            offsets.push(PartitionOffset {
                topic,
                partition,
                name,
                next,
            });
        }
        offsets.sort_by(|a, b| a.name.cmp(&b.name));
        let late = d.u64()?;
        let (products, users) = if version >= 6 {
            (
                Names::decode(IdKind::Product, d)?,
                Names::decode(IdKind::User, d)?,
            )
        } else {
            (Names::new(IdKind::Product), Names::new(IdKind::User))
        };
        Ok(Aggregator {
            products,
            users,
            config,
            bought,
            viewed,
            engagement,
            watermark,
            offsets,
            late,
        })
    }
}
