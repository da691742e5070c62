//! Co-purchase and co-view pairs as a dedicated operator instead of a SQL
//! self-join.
//!
//! The seed counts, for every unordered pair of products, the baskets
//! (transactions; sessions' viewed products) that hold both (sections
//! 4.2.1, 4.2.2): `SELECT DISTINCT basket, product`, self-join on the
//! basket with `a.product < b.product`, group and count. On the default shop
//! that join makes 113M rows to count 8.7M pairs. Here:
//!
//! 1. the products are numbered in string order, so that `a < b` on
//!    numbers is `a < b` on ids: the catalog's (`products`, a few thousand
//!    rows) when every basket's products are in it, which the counting
//!    pass finds out; otherwise the baskets are read once more for the
//!    products they hold (a dataset whose baskets name products it does
//!    not list). The basket ids that occur in more than one row are found
//!    from the id columns alone;
//! 2. one pass turns each basket into its distinct sorted numbers and
//!    counts each pair (`measures::pairs`: one definition of a
//!    pair) in a flat triangular array of `u16` cells, a count past
//!    65,535 kept aside ([`Dense`]; 25 MB for 5,000 products). Past
//!    [`DENSE_LIMIT_BYTES`] of array, the baskets' sorted
//!    numbers go to a temp file and are counted a block of the array's rows
//!    at a time, each block within the limit, in up to [`MAX_PASSES`]
//!    passes over the file; the bought and viewed tables' blocks are
//!    counted side by side on two threads and read in pair order, so no
//!    merge is needed. Past that many passes (about 46,000 products), the
//!    counts go to a hash map keyed by a `u64` pair, which writes itself,
//!    sorted, to a temp run file every [`SPILL_PAIRS`] pairs; reading merges
//!    the runs. On a shop of 20,000 products (`ecomflow replay --users 40000
//!    --products 20000 --sessions 8000000 --transactions 2000000`, then
//!    `ecomflow batch --log batch=debug`, the step "co-purchase and co-view
//!    pairs") the blocks took 6.5 s where the map and its runs took 16.9 s,
//!    and the whole batch 0.60 of the time (`scripts/ab.py -n 3`).
//!
//! Each pass folds DataFusion's two partitions on their own threads; the
//! partitions' tables are added up at the end. Rows that share a basket id
//! are merged into one basket first (the SQL's `DISTINCT` over the basket id
//! does that), so the counts are the SQL's, exactly; the test
//! `pairs_match_the_sql_self_join` checks it, through the array and through
//! the spilling map.

use measures::pairs;

use crate::engine::Engine;
use crate::{BatchError, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::collections::BinaryHeap;
use std::hash::Hasher;

/// The triangular array is used up to this size, up to three at once (the
/// bought table, and one viewed table per partition); past it (more than
/// about 11,500 products) the baskets are counted in blocks of rows of
/// `u32` cells of at most this size, two at once (a block of each table).
pub const DENSE_LIMIT_BYTES: usize = 128 << 20;

/// Past the array's limit, the baskets are counted a block of rows at a time
/// while that takes at most this many passes over them (each pass reads
/// every basket); past that, in the spilling hash map.
pub const MAX_PASSES: usize = 32;

/// Basket numbers a blocked table holds in memory before it appends them to
/// its temp file (4 MiB; fewer if [`Limits::spill_pairs`] is lower).
const BLOCKED_CHUNK: usize = 1 << 20;

/// Pairs a hash map holds before they are written, sorted, to a run file in
/// the temp dir and the map starts again: the memory stays bounded whatever
/// the shop's size, and the runs are merged in pair order when the table is
/// read. Just under 7/8 of 2^22, the load at which the map would double its
/// 2^22 buckets: about 70 MB of map, three at once at most.
pub const SPILL_PAIRS: usize = 3_500_000;

/// Where the counting switches representation and spills; the defaults are
/// [`DENSE_LIMIT_BYTES`], [`MAX_PASSES`] and [`SPILL_PAIRS`] (tests set them
/// low to reach the blocks and the map on a small shop).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest triangular array, or block of one.
    pub dense_bytes: usize,
    /// The most passes over the baskets a blocked count may take.
    pub max_passes: usize,
    /// Pairs a map holds before it spills (and, up to 2^20, basket
    /// numbers a blocked table holds before it writes them).
    pub spill_pairs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dense_bytes: DENSE_LIMIT_BYTES,
            max_passes: MAX_PASSES,
            spill_pairs: SPILL_PAIRS,
        }
    }
}

/// Which baskets: a query giving `(basket id, list of product ids)` rows,
/// and how to reach the product id in a list element.
#[derive(Debug, Clone, Copy)]
pub struct Baskets {
    /// `SELECT id, list FROM ...`.
    pub query: &'static str,
    /// `SELECT id FROM ...`: the basket ids alone.
    pub ids: &'static str,
    /// The list's elements are structs with this product-id field (`None`:
    /// the elements are the ids).
    pub field: Option<&'static str>,
}

/// Transactions: their line items' products.
pub const TRANSACTION_BASKETS: Baskets = Baskets {
    query: "SELECT transaction_id, items FROM transactions",
    ids: "SELECT transaction_id FROM transactions",
    field: Some("product_id"),
};

/// Sessions: their viewed products.
pub const SESSION_BASKETS: Baskets = Baskets {
    query: "SELECT session_id, viewed_products FROM sessions",
    ids: "SELECT session_id FROM sessions",
    field: None,
};

fn strings(a: &ArrayRef) -> Result<StringArray> {
    let cast = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// Calls `f(basket id, product ids of the row)` for each row of `batch`,
/// a batch of `b.query`.
fn for_each_basket(
    b: Baskets,
    batch: &RecordBatch,
    mut f: impl FnMut(&str, &mut dyn Iterator<Item = &str>) -> Result<()>,
) -> Result<()> {
    if batch.num_columns() != 2 {
        return Err(BatchError::Corrupt(format!("{}: two columns", b.query)));
    }
    let ids = strings(batch.column(0))?;
    let lists = batch
        .column(1)
        .as_list_opt::<i32>()
        .ok_or_else(|| BatchError::Corrupt(format!("{}: not a list", b.query)))?;
    let values = match b.field {
        None => lists.values().clone(),
        Some(name) => lists
            .values()
            .as_struct_opt()
            .and_then(|s| s.column_by_name(name))
            .ok_or_else(|| BatchError::Corrupt(format!("{}: no {name}", b.query)))?
            .clone(),
    };
    let values = strings(&values)?;
    let offsets = lists.value_offsets();
    for row in 0..batch.num_rows() {
        if ids.is_null(row) || lists.is_null(row) {
            continue;
        }
        let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
        // A NULL product pairs with nothing (the SQL's `<` is never
        // true for NULL).
        let mut it = (lo..hi)
            .filter(|&i| values.is_valid(i))
            .map(|i| values.value(i));
        f(ids.value(row), &mut it)?;
    }
    Ok(())
}

fn id_hash(id: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

/// The triangular array's counts: a `u16` per cell, and what a cell counts
/// past `u16::MAX` kept aside. Half the bytes of `u32` cells: on the
/// default shop (5,000 products, 25 MB an array instead of 50 MB, four of
/// them per run) the count took 0.60-0.68 s instead of 0.76-1.00 s, the
/// kernel zeroing half the fresh pages and more of the array in the
/// cache (three runs each, `ecomflow batch`, the debug line "Pairs:
/// counted"). A pair past 65,535 baskets is rare (the default shop's most
/// frequent is in about 25,000): its count is the cell's plus its entry in
/// `over`, exactly.
struct Dense {
    n: usize,
    /// `a * (2n - a - 1) / 2 + (b - a - 1)` for `a < b`.
    cells: Vec<u16>,
    /// Per cell at `u16::MAX`, the count past it.
    over: FxHashMap<usize, u32>,
}

impl Dense {
    fn new(n: usize, cells: usize) -> Dense {
        Dense {
            n,
            cells: vec![0; cells],
            over: FxHashMap::default(),
        }
    }

    /// Counts one more at cell `i`.
    fn add(&mut self, i: usize) {
        let c = &mut self.cells[i];
        if *c < u16::MAX {
            *c += 1;
        } else {
            let o = self.over.entry(i).or_default();
            *o = o.saturating_add(1);
        }
    }

    /// Counts `k` more at cell `i`.
    fn add_n(&mut self, i: usize, k: u32) {
        let sum = u32::from(self.cells[i]).saturating_add(k);
        match u16::try_from(sum) {
            Ok(c) if c < u16::MAX => self.cells[i] = c,
            _ => {
                self.cells[i] = u16::MAX;
                let o = self.over.entry(i).or_default();
                *o = o.saturating_add(sum - u32::from(u16::MAX));
            }
        }
    }

    /// The count at cell `i`.
    fn get(&self, i: usize) -> u32 {
        let c = self.cells[i];
        if c < u16::MAX {
            u32::from(c)
        } else {
            u32::from(c).saturating_add(self.over.get(&i).copied().unwrap_or(0))
        }
    }

    /// Adds `other`'s counts (over the same products) to these: the two
    /// halves of the array on two threads, then the few cells whose sum
    /// reaches `u16::MAX` one by one.
    fn absorb(&mut self, other: Dense) {
        let add = |cells: &mut [u16], more: &[u16], from: usize| -> Vec<(usize, u16)> {
            let mut full = Vec::new();
            for (i, (c, &m)) in cells.iter_mut().zip(more).enumerate() {
                match c.checked_add(m) {
                    Some(sum) if sum < u16::MAX => *c = sum,
                    _ => full.push((from + i, m)),
                }
            }
            full
        };
        let mid = self.cells.len() / 2;
        let (low, high) = self.cells.split_at_mut(mid);
        let (more_low, more_high) = other.cells.split_at(mid.min(other.cells.len()));
        let (full_high, full_low) =
            stage::join(|| add(high, more_high, mid), || add(low, more_low, 0));
        for (i, m) in full_low.into_iter().chain(full_high) {
            self.add_n(i, u32::from(m));
        }
        for (i, extra) in other.over {
            let o = self.over.entry(i).or_default();
            *o = o.saturating_add(extra);
        }
    }
}

/// Pair counts over products numbered `0..n`.
enum Counts {
    /// The triangular array.
    Dense(Dense),
    /// The baskets, counted into the array a block of rows at a time.
    Blocked(Blocked),
    /// Keyed `a << 32 | b`.
    Sparse(Spilling),
}

/// Where row `a`'s cells start in the triangular array over `n` products:
/// `a * (2n - a - 1) / 2`, the cells of rows `0..a`.
fn row_start(n: usize, a: usize) -> usize {
    a * (2 * n - a - 1) / 2
}

/// The rows of the triangular array over `n` products cut into blocks of at
/// most `cells` cells (a row longer than that is a block of its own):
/// block `k` is rows `bounds[k]..bounds[k + 1]`. `None` past `max_blocks`.
fn row_blocks(n: usize, cells: usize, max_blocks: usize) -> Option<Vec<u32>> {
    let mut bounds = vec![0u32];
    let mut held = 0usize;
    for a in 0..n {
        let row = n - a - 1;
        if held > 0 && held + row > cells {
            if bounds.len() >= max_blocks {
                return None;
            }
            bounds.push(u32::try_from(a).ok()?);
            held = 0;
        }
        held += row;
    }
    bounds.push(u32::try_from(n).ok()?);
    Some(bounds)
}

/// Baskets kept as `len, weight, numbers...` (`u32`s; the numbers strictly
/// increasing), a chunk at a time appended to an unnamed temp file; the
/// pairs are counted from them one block of rows at a time
/// ([`Blocked::block`]), each pass reading every basket.
struct Blocked {
    n: usize,
    bounds: Vec<u32>,
    /// Baskets not yet written.
    pending: Vec<u32>,
    /// Basket numbers held before they are written.
    chunk: usize,
    /// The temp files: this table's own (created at its first chunk) and
    /// those of the tables it absorbed.
    files: Vec<std::fs::File>,
    /// The written chunks: file, byte position, `u32`s.
    chunks: Vec<(usize, u64, usize)>,
    /// This table's own file in `files`, and the bytes written to it.
    own: Option<(usize, u64)>,
}

impl Blocked {
    /// Adds a basket of strictly increasing numbers, `weight` times.
    fn push(&mut self, sorted_distinct: &[u32], weight: u32) {
        if sorted_distinct.len() < 2 || weight == 0 {
            return;
        }
        self.pending.push(sorted_distinct.len() as u32);
        self.pending.push(weight);
        self.pending.extend_from_slice(sorted_distinct);
    }

    /// Appends the pending baskets to the temp file once they fill a chunk.
    fn write_if_full(&mut self) -> Result<()> {
        if self.pending.len() < self.chunk {
            return Ok(());
        }
        use std::os::unix::fs::FileExt;
        let (file, at) = match self.own {
            Some(own) => own,
            None => {
                self.files.push(tempfile::tempfile().map_err(run_io)?);
                (self.files.len() - 1, 0)
            }
        };
        let bytes: Vec<u8> = self.pending.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.files[file].write_all_at(&bytes, at).map_err(run_io)?;
        self.chunks.push((file, at, self.pending.len()));
        self.own = Some((file, at + bytes.len() as u64));
        self.pending.clear();
        Ok(())
    }

    /// Takes `other`'s baskets (over the same products) into these.
    fn absorb(&mut self, other: Blocked) -> Result<()> {
        let shift = self.files.len();
        self.files.extend(other.files);
        self.chunks.extend(
            other
                .chunks
                .into_iter()
                .map(|(f, at, len)| (f + shift, at, len)),
        );
        self.pending.extend(other.pending);
        self.write_if_full()
    }

    /// Calls `f(weight, numbers)` for every basket: the written chunks, then
    /// the pending ones.
    fn for_each_basket(&self, mut f: impl FnMut(u32, &[u32])) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let mut bytes = Vec::new();
        let mut numbers = Vec::new();
        for &(file, at, len) in &self.chunks {
            bytes.resize(len * 4, 0);
            self.files[file]
                .read_exact_at(&mut bytes, at)
                .map_err(run_io)?;
            numbers.clear();
            numbers.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            self.walk(&numbers, &mut f)?;
        }
        self.walk(&self.pending, &mut f)
    }

    /// The baskets of one chunk, checked as they are read.
    fn walk(&self, mut rest: &[u32], f: &mut impl FnMut(u32, &[u32])) -> Result<()> {
        let bad = || BatchError::Corrupt("a pair-count temp file is damaged".into());
        while let [len, weight, tail @ ..] = rest {
            let len = *len as usize;
            let basket = tail.get(..len).ok_or_else(bad)?;
            let increasing = basket.windows(2).all(|w| w[0] < w[1]);
            if !increasing || basket.last().is_some_and(|&p| p as usize >= self.n) {
                return Err(bad());
            }
            f(*weight, basket);
            rest = &tail[len..];
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    }

    fn blocks(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Block `k`'s cells: rows `bounds[k]..bounds[k + 1]` of the triangular
    /// array, as in [`Counts::Dense`].
    fn block(&self, k: usize) -> Result<Vec<u32>> {
        let n = self.n;
        let (a0, a1) = (self.bounds[k], self.bounds[k + 1]);
        let base = row_start(n, a0 as usize);
        let mut cells = vec![0u32; row_start(n, a1 as usize) - base];
        self.for_each_basket(|weight, basket| {
            let first = basket.partition_point(|&p| p < a0);
            for (i, &a) in basket.iter().enumerate().skip(first) {
                if a >= a1 {
                    break;
                }
                // Cell of (a, b): the row's start plus b - a - 1, b > a
                // (`row` alone may wrap below zero for the block's first
                // row; `row + b` does not).
                let row = (row_start(n, a as usize) - base).wrapping_sub(a as usize + 1);
                for &b in &basket[i + 1..] {
                    let c = &mut cells[row.wrapping_add(b as usize)];
                    *c = c.saturating_add(weight);
                }
            }
        })?;
        Ok(cells)
    }

    /// The count of `(a, b)`, `a` a row of block `k`, from that block's cells.
    fn count_in(&self, k: usize, cells: &[u32], a: u32, b: u32) -> u32 {
        let base = row_start(self.n, self.bounds[k] as usize);
        cells[Counts::dense_index(self.n, a, b) - base]
    }

    /// Calls `f(a, b, count)` for the pairs of block `k` with a count, in
    /// pair order.
    fn each_in_block(
        &self,
        k: usize,
        cells: &[u32],
        f: impl FnMut(u32, u32, u32) -> Result<()>,
    ) -> Result<()> {
        each_cell(self.n, self.bounds[k]..self.bounds[k + 1], |i| cells[i], f)
    }
}

/// Calls `f(a, b, count)` for the cells with a count of rows `rows` of the
/// triangular array over `n` products, `cells` holding those rows alone,
/// in pair order.
fn each_cell(
    n: usize,
    rows: std::ops::Range<u32>,
    count: impl Fn(usize) -> u32,
    mut f: impl FnMut(u32, u32, u32) -> Result<()>,
) -> Result<()> {
    let mut i = 0;
    for a in rows.start as usize..rows.end as usize {
        for b in a + 1..n {
            let c = count(i);
            i += 1;
            if c > 0 {
                f(a as u32, b as u32, c)?;
            }
        }
    }
    Ok(())
}

/// A hash map of pair counts that writes itself to a sorted run file when
/// it holds `limit` pairs. A pair may be in several runs and in the map:
/// reading merges them.
struct Spilling {
    map: FxHashMap<u64, u32>,
    limit: usize,
    /// Unnamed temp files (gone when closed) of `(key u64, count u32)`
    /// little-endian entries, by key.
    runs: Vec<std::fs::File>,
}

const RUN_ENTRY: usize = 12;

/// An I/O error on a run file (in the OS temp dir).
fn run_io(e: std::io::Error) -> BatchError {
    BatchError::io(&std::env::temp_dir(), e)
}

impl Spilling {
    fn new(limit: usize) -> Spilling {
        Spilling {
            map: FxHashMap::default(),
            limit: limit.max(1),
            runs: Vec::new(),
        }
    }

    fn add_n(&mut self, key: u64, n: u32) {
        let c = self.map.entry(key).or_default();
        *c = c.saturating_add(n);
    }

    /// Writes the map to a run when it is full.
    fn spill_if_full(&mut self) -> Result<()> {
        if self.map.len() < self.limit {
            return Ok(());
        }
        use std::io::Write;
        let mut entries: Vec<(u64, u32)> = self.map.drain().collect();
        entries.sort_unstable_by_key(|e| e.0);
        let file = tempfile::tempfile().map_err(run_io)?;
        let mut w = std::io::BufWriter::new(&file);
        for (k, c) in entries {
            let mut entry = [0u8; RUN_ENTRY];
            entry[..8].copy_from_slice(&k.to_le_bytes());
            entry[8..].copy_from_slice(&c.to_le_bytes());
            w.write_all(&entry).map_err(run_io)?;
        }
        w.flush().map_err(run_io)?;
        drop(w);
        self.runs.push(file);
        Ok(())
    }

    /// The counts by key: the runs and the map merged, equal keys summed.
    fn sorted(&self) -> Result<Merge> {
        use std::io::{Seek, SeekFrom};
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for run in &self.runs {
            let mut file = run.try_clone().map_err(run_io)?;
            file.seek(SeekFrom::Start(0)).map_err(run_io)?;
            sources.push(Source::Run(std::io::BufReader::new(file)));
        }
        let mut entries: Vec<(u64, u32)> = self.map.iter().map(|(&k, &c)| (k, c)).collect();
        entries.sort_unstable_by_key(|e| e.0);
        sources.push(Source::Map(entries.into_iter()));
        Merge::new(sources)
    }
}

/// One sorted input of a [`Merge`].
enum Source {
    Run(std::io::BufReader<std::fs::File>),
    Map(std::vec::IntoIter<(u64, u32)>),
}

impl Source {
    fn next(&mut self) -> Result<Option<(u64, u32)>> {
        use std::io::Read;
        match self {
            Source::Map(it) => Ok(it.next()),
            Source::Run(r) => {
                use std::io::BufRead;
                // The end of the run only between entries; a cut entry is
                // an error, not the end.
                if r.fill_buf().map_err(run_io)?.is_empty() {
                    return Ok(None);
                }
                let mut entry = [0u8; RUN_ENTRY];
                r.read_exact(&mut entry).map_err(run_io)?;
                let mut k = [0u8; 8];
                let mut c = [0u8; 4];
                k.copy_from_slice(&entry[..8]);
                c.copy_from_slice(&entry[8..]);
                Ok(Some((u64::from_le_bytes(k), u32::from_le_bytes(c))))
            }
        }
    }
}

/// A k-way merge of sorted sources, summing the counts of equal keys.
struct Merge {
    sources: Vec<Source>,
    heads: BinaryHeap<std::cmp::Reverse<(u64, usize, u32)>>,
}

impl Merge {
    fn new(mut sources: Vec<Source>) -> Result<Merge> {
        let mut heads = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some((k, c)) = s.next()? {
                heads.push(std::cmp::Reverse((k, i, c)));
            }
        }
        Ok(Merge { sources, heads })
    }

    fn next(&mut self) -> Result<Option<(u64, u32)>> {
        let Some(std::cmp::Reverse((key, i, c))) = self.heads.pop() else {
            return Ok(None);
        };
        let mut count = c;
        self.advance(i)?;
        while let Some(std::cmp::Reverse((k, j, c))) = self.heads.peek().copied() {
            if k != key {
                break;
            }
            self.heads.pop();
            count = count.saturating_add(c);
            self.advance(j)?;
        }
        Ok(Some((key, count)))
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        if let Some((k, c)) = self.sources[i].next()? {
            self.heads.push(std::cmp::Reverse((k, i, c)));
        }
        Ok(())
    }
}

impl Counts {
    fn new(n: usize, limits: Limits) -> Counts {
        let cells = n.saturating_mul(n.saturating_sub(1)) / 2;
        if cells.saturating_mul(2) <= limits.dense_bytes {
            return Counts::Dense(Dense::new(n, cells));
        }
        match row_blocks(n, limits.dense_bytes / 4, limits.max_passes) {
            Some(bounds) => Counts::Blocked(Blocked {
                n,
                bounds,
                pending: Vec::new(),
                chunk: limits.spill_pairs.clamp(1, BLOCKED_CHUNK),
                files: Vec::new(),
                chunks: Vec::new(),
                own: None,
            }),
            None => Counts::Sparse(Spilling::new(limits.spill_pairs)),
        }
    }

    /// Counts the pairs of one basket, its numbers strictly increasing.
    /// The representation is matched once per basket, not per pair: the
    /// default shop counted its pairs 15% slower with a match per pair.
    fn add_basket(&mut self, sorted_distinct: &[u32]) -> Result<()> {
        match self {
            Counts::Dense(d) => pairs::for_each_pair(sorted_distinct, |a, b| {
                d.add(Self::dense_index(d.n, *a, *b));
            }),
            Counts::Blocked(blocked) => blocked.push(sorted_distinct, 1),
            Counts::Sparse(s) => pairs::for_each_pair(sorted_distinct, |a, b| {
                s.add_n(u64::from(*a) << 32 | u64::from(*b), 1);
            }),
        }
        self.settle()
    }

    /// Spills a full map or writes a full chunk of baskets (after each
    /// basket: a basket may take either past its limit, by at most its
    /// own size).
    fn settle(&mut self) -> Result<()> {
        match self {
            Counts::Dense(_) => Ok(()),
            Counts::Blocked(b) => b.write_if_full(),
            Counts::Sparse(s) => s.spill_if_full(),
        }
    }

    /// Calls `f(a, b, count)` for every pair with a count, in pair order:
    /// the array's cells in index order, or the map's runs merged.
    fn for_each(&self, mut f: impl FnMut(u32, u32, u32) -> Result<()>) -> Result<()> {
        match self {
            Counts::Dense(d) => {
                let rows = u32::try_from(d.n)
                    .map_err(|_| BatchError::Corrupt("more than 2^32 products".into()))?;
                each_cell(d.n, 0..rows, |i| d.get(i), &mut f)?;
            }
            Counts::Blocked(blocked) => {
                for k in 0..blocked.blocks() {
                    let cells = blocked.block(k)?;
                    blocked.each_in_block(k, &cells, &mut f)?;
                }
            }
            Counts::Sparse(s) => {
                let mut pairs = s.sorted()?;
                while let Some((k, c)) = pairs.next()? {
                    f((k >> 32) as u32, k as u32, c)?;
                }
            }
        }
        Ok(())
    }

    /// How many of `self`'s pairs `other` does not have.
    fn missing_from(&self, other: &Counts) -> Result<u64> {
        let mut missing = 0u64;
        match other {
            // Look each up in the array.
            Counts::Dense(d) => self.for_each(|a, b, _| {
                if d.cells[Self::dense_index(d.n, a, b)] == 0 {
                    missing += 1;
                }
                Ok(())
            })?,
            // A block of theirs at a time, as ours come in pair order.
            Counts::Blocked(theirs) => {
                let mut block: Option<(usize, Vec<u32>)> = None;
                self.for_each(|a, b, _| {
                    let k = theirs.bounds.partition_point(|&start| start <= a) - 1;
                    if block.as_ref().is_none_or(|(at, _)| *at != k) {
                        block = Some((k, theirs.block(k)?));
                    }
                    if let Some((_, cells)) = &block {
                        if theirs.count_in(k, cells, a, b) == 0 {
                            missing += 1;
                        }
                    }
                    Ok(())
                })?;
            }
            // Both in pair order, side by side.
            Counts::Sparse(s) => {
                let mut theirs = s.sorted()?;
                let mut next = theirs.next()?;
                self.for_each(|a, b, _| {
                    let key = u64::from(a) << 32 | u64::from(b);
                    while next.is_some_and(|(k, _)| k < key) {
                        next = theirs.next()?;
                    }
                    if next.is_none_or(|(k, _)| k != key) {
                        missing += 1;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(missing)
    }

    /// Where `(a, b)`, `a < b < n`, lives in the triangular array.
    fn dense_index(n: usize, a: u32, b: u32) -> usize {
        let (a, b) = (a as usize, b as usize);
        row_start(n, a) + (b - a - 1)
    }

    #[cfg(test)]
    fn add(&mut self, a: u32, b: u32) {
        self.add_n(a, b, 1);
    }

    fn add_n(&mut self, a: u32, b: u32, n: u32) {
        match self {
            Counts::Dense(d) => d.add_n(Self::dense_index(d.n, a, b), n),
            Counts::Blocked(blocked) => blocked.push(&[a, b], n),
            Counts::Sparse(s) => s.add_n(u64::from(a) << 32 | u64::from(b), n),
        }
    }

    /// Adds `other`'s counts (over the same products) to these.
    fn absorb(&mut self, other: Counts) -> Result<()> {
        match (self, other) {
            (Counts::Dense(this), Counts::Dense(more)) => this.absorb(more),
            (Counts::Blocked(this), Counts::Blocked(more)) => this.absorb(more)?,
            (Counts::Sparse(this), Counts::Sparse(more)) => {
                // Its runs join ours; its map's pairs go into ours.
                this.runs.extend(more.runs);
                for (k, m) in more.map {
                    this.add_n(k, m);
                    this.spill_if_full()?;
                }
            }
            // `Counts::new` picks the same kind for the same `n`; this is
            // the slow way that would do for any two.
            (this, other) => other.for_each(|a, b, c| {
                this.add_n(a, b, c);
                this.settle()
            })?,
        }
        Ok(())
    }
}

/// What the report needs of one pair table.
#[derive(Debug, Clone, PartialEq)]
pub struct PairTable {
    /// Distinct pairs.
    pub unique_pairs: u64,
    /// Sum of their counts.
    pub total: u64,
    /// The `top` most frequent: (a, b, count), by count descending, then a,
    /// then b.
    pub top: Vec<(String, String, u64)>,
}

/// Both pair tables and how many viewed-together pairs were never bought
/// together.
#[derive(Debug, Clone, PartialEq)]
pub struct CoOccurrence {
    /// Bought together (transactions).
    pub bought: PairTable,
    /// Viewed together (sessions).
    pub viewed: PairTable,
    /// Viewed-together pairs with no co-purchase.
    pub viewed_never_bought: u64,
    /// Per product (by id), the sessions that viewed it: the seed's
    /// `COUNT(DISTINCT session_id)` over the exploded views, which falls
    /// out of the same pass.
    pub sessions_viewed: Vec<(String, u64)>,
}

/// A basket id seen in more than one row: its rows' products, merged.
type Merged = FxHashMap<String, Vec<u32>>;

/// What one partition of pass 2 counts.
struct Partial {
    counts: Counts,
    /// Per product, the baskets holding it.
    holding: Vec<u64>,
    /// Rows whose basket id repeats, merged by id.
    merged: Merged,
    /// Scratch: the current basket's product numbers.
    basket: Vec<u32>,
    /// Scratch: its capped products.
    capped: Vec<u32>,
    /// A basket held a product without a number.
    unknown: bool,
    /// The hashes of the basket ids counted as whole baskets, when the
    /// pass is to find the ids that repeat (see [`count_over`]).
    ids: Vec<u64>,
}

impl Partial {
    fn new(n: usize, limits: Limits) -> Partial {
        Partial {
            counts: Counts::new(n, limits),
            holding: vec![0; n],
            merged: Merged::default(),
            basket: Vec::new(),
            capped: Vec::new(),
            unknown: false,
            ids: Vec::new(),
        }
    }

    /// Counts one basket (its products in the order seen): its distinct
    /// products, and the pairs of the first `cap` of them (all without a
    /// cap: `measures::pairs`, as the aggregator's).
    fn add_basket(
        counts: &mut Counts,
        holding: &mut [u64],
        basket: &mut Vec<u32>,
        cap: Option<usize>,
        capped: &mut Vec<u32>,
    ) -> Result<()> {
        let cap = cap.filter(|&max| basket.len() > max);
        if let Some(max) = cap {
            pairs::distinct_capped_into(basket, max, capped);
            capped.sort_unstable();
        }
        basket.sort_unstable();
        basket.dedup();
        for &p in basket.iter() {
            holding[p as usize] += 1;
        }
        let paired = if cap.is_some() { &*capped } else { &*basket };
        counts.add_basket(paired)
    }

    /// Merges the partitions: counts and holdings add up, and the rows of a
    /// repeated basket id (which may sit in different partitions) become
    /// one basket, counted once.
    fn merge(
        parts: Vec<Partial>,
        n: usize,
        cap: Option<usize>,
        limits: Limits,
    ) -> Result<(Counts, Vec<u64>)> {
        let mut parts = parts.into_iter();
        let mut all = parts.next().unwrap_or_else(|| Partial::new(n, limits));
        for part in parts {
            all.counts.absorb(part.counts)?;
            for (h, m) in all.holding.iter_mut().zip(part.holding) {
                *h += m;
            }
            for (id, products) in part.merged {
                all.merged.entry(id).or_default().extend(products);
            }
        }
        for (_, mut basket) in all.merged {
            Self::add_basket(
                &mut all.counts,
                &mut all.holding,
                &mut basket,
                cap,
                &mut all.capped,
            )?;
        }
        Ok((all.counts, all.holding))
    }
}

/// Counts the pairs of the snapshot's transactions and sessions, over
/// whole baskets as the seed's SQL does, or over the first `cap` distinct
/// products of each as the live aggregator does (it takes 50). A basket id
/// that repeats is one basket, its rows' products in partition and file
/// order. Each pass folds the engine's partitions on their own threads
/// and merges them.
pub fn count(engine: &Engine, top: usize, cap: Option<usize>) -> Result<CoOccurrence> {
    count_with(engine, top, cap, Limits::default())
}

/// [`count`] with other [`Limits`] (the answers are the same; tests use
/// low ones to count through the map and its run files).
pub fn count_with(
    engine: &Engine,
    top: usize,
    cap: Option<usize>,
    limits: Limits,
) -> Result<CoOccurrence> {
    let kinds = [TRANSACTION_BASKETS, SESSION_BASKETS];
    let started = std::time::Instant::now();
    // The products are numbered in string order. The catalog's numbers do
    // when every basket's products are in it (the ordinary case): then the
    // baskets are read once. Otherwise they are read once more for the
    // products they hold, and counted over those.
    let catalog = catalog_products(engine)?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        products = catalog.len(),
        "Pairs: the catalog read."
    );
    if let Some(out) = count_over(engine, &kinds, &catalog, top, cap, limits)? {
        return Ok(out);
    }
    let started = std::time::Instant::now();
    let held = basket_products(engine, &kinds)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), products = held.len(), "Pairs: a basket holds a product the catalog does not; counting over the baskets' products.");
    count_over(engine, &kinds, &held, top, cap, limits)?.ok_or_else(|| {
        BatchError::Corrupt("a basket's product was not among the baskets' products".into())
    })
}

/// The hashes that occur more than once among the partitions' `ids`,
/// which are sorted here, each partition's on its own thread, and then
/// walked in merged order.
fn repeated(parts: &mut [Partial]) -> FxHashSet<u64> {
    std::thread::scope(|scope| {
        for part in parts.iter_mut() {
            scope.spawn(move || part.ids.sort_unstable());
        }
    });
    let mut all: Vec<u64> = parts.iter().flat_map(|p| p.ids.iter().copied()).collect();
    // Sorted runs, one per partition: the standard sort merges them.
    all.sort();
    all.windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect()
}

/// The catalog's product ids, sorted.
fn catalog_products(engine: &Engine) -> Result<Vec<String>> {
    let parts = engine.fold_partitions(
        "SELECT DISTINCT product_id FROM products",
        Vec::<String>::new,
        |names, batch| {
            let ids = strings(batch.column(0))?;
            names.extend(ids.iter().flatten().map(str::to_string));
            Ok(())
        },
    )?;
    let mut names: Vec<String> = parts.into_iter().flatten().collect();
    names.sort_unstable();
    Ok(names)
}

/// Every product some basket holds, sorted.
fn basket_products(engine: &Engine, kinds: &[Baskets]) -> Result<Vec<String>> {
    let mut products_seen: FxHashSet<String> = FxHashSet::default();
    for &kind in kinds {
        let parts =
            engine.fold_partitions(kind.query, FxHashSet::<String>::default, |seen, batch| {
                for_each_basket(kind, batch, |_, products| {
                    for p in products {
                        if !seen.contains(p) {
                            seen.insert(p.to_string());
                        }
                    }
                    Ok(())
                })
            })?;
        for seen in parts {
            products_seen.extend(seen);
        }
    }
    if products_seen.len() > u32::MAX as usize {
        return Err(BatchError::Corrupt("more than 2^32 products".into()));
    }
    let mut names: Vec<String> = products_seen.into_iter().collect();
    names.sort_unstable();
    Ok(names)
}

/// Counts the pairs with the products numbered by their place in `names`
/// (sorted); `None` if a basket holds a product not in `names`.
fn count_over(
    engine: &Engine,
    kinds: &[Baskets],
    names: &[String],
    top: usize,
    cap: Option<usize>,
    limits: Limits,
) -> Result<Option<CoOccurrence>> {
    let started = std::time::Instant::now();
    let number: FxHashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    // Count the pairs, and the baskets holding each product. Each kind is
    // counted once taking every row for a whole basket, noting its id's
    // hash; an id that turns out to repeat (a basket in more than one row,
    // which the snapshot does not normally hold) has the kind counted
    // again, those ids' rows merged into one basket each. One pass in the
    // ordinary case, where reading the ids first took a pass of its own.
    let mut tables = Vec::new();
    for &kind in kinds {
        let none = FxHashSet::default();
        let parts = count_kind(engine, kind, &number, &none, names.len(), cap, limits)?;
        if parts.iter().any(|p| p.unknown) {
            return Ok(None);
        }
        let mut parts = parts;
        let dups = repeated(&mut parts);
        let parts = if dups.is_empty() {
            parts
        } else {
            drop(parts);
            count_kind(engine, kind, &number, &dups, names.len(), cap, limits)?
        };
        tables.push(Partial::merge(parts, names.len(), cap, limits)?);
    }
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Pairs: counted.");
    let started = std::time::Instant::now();
    let ((bought, _), (viewed, viewing_sessions)) = (&tables[0], &tables[1]);
    let (bought, viewed, viewed_never_bought) = summarise_both(bought, viewed, names, top)?;
    let sessions_viewed = names
        .iter()
        .zip(viewing_sessions)
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| (name.clone(), *n))
        .collect();
    let out = CoOccurrence {
        bought,
        viewed,
        viewed_never_bought,
        sessions_viewed,
    };
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "Pairs: summaries done."
    );
    Ok(Some(out))
}

/// One pass over the baskets of `kind`, a [`Partial`] per partition. The
/// rows of an id in `dups` are merged into one basket; with `dups` empty,
/// every row is a whole basket and its id's hash is kept (`Partial::ids`).
fn count_kind(
    engine: &Engine,
    kind: Baskets,
    number: &FxHashMap<&str, u32>,
    dups: &FxHashSet<u64>,
    n: usize,
    cap: Option<usize>,
    limits: Limits,
) -> Result<Vec<Partial>> {
    engine.fold_partitions(
        kind.query,
        || Partial::new(n, limits),
        |part, batch| {
            for_each_basket(kind, batch, |id, products| {
                part.basket.clear();
                for p in products {
                    match number.get(p) {
                        Some(&n) => part.basket.push(n),
                        None => part.unknown = true,
                    }
                }
                if part.unknown {
                    return Ok(());
                }
                if dups.is_empty() {
                    part.ids.push(id_hash(id));
                } else if dups.contains(&id_hash(id)) {
                    part.merged
                        .entry(id.to_string())
                        .or_default()
                        .extend_from_slice(&part.basket);
                    return Ok(());
                }
                Partial::add_basket(
                    &mut part.counts,
                    &mut part.holding,
                    &mut part.basket,
                    cap,
                    &mut part.capped,
                )
            })
        },
    )
}

/// A [`PairTable`] in the making, fed its pairs one at a time.
struct Summary {
    unique_pairs: u64,
    total: u64,
    top: usize,
    /// A max-heap of the best `top` so far, whose top is the worst of them:
    /// order by (count descending, a, b), so "worse" is greater.
    best: BinaryHeap<(std::cmp::Reverse<u32>, u32, u32)>,
}

impl Summary {
    fn new(top: usize) -> Summary {
        Summary {
            unique_pairs: 0,
            total: 0,
            top,
            best: BinaryHeap::new(),
        }
    }

    fn add(&mut self, a: u32, b: u32, c: u32) {
        self.unique_pairs += 1;
        self.total += u64::from(c);
        let item = (std::cmp::Reverse(c), a, b);
        if self.best.len() < self.top {
            self.best.push(item);
        } else if self.best.peek().is_some_and(|worst| item < *worst) {
            self.best.pop();
            self.best.push(item);
        }
    }

    /// Takes in another summary of other pairs: the same as adding its
    /// pairs here (the best `top` of a set of pairs, by count descending,
    /// then a, then b, is one set whatever the order they came in).
    fn merge(&mut self, other: Summary) {
        self.unique_pairs += other.unique_pairs;
        self.total += other.total;
        for item in other.best {
            if self.best.len() < self.top {
                self.best.push(item);
            } else if self.best.peek().is_some_and(|worst| item < *worst) {
                self.best.pop();
                self.best.push(item);
            }
        }
    }

    fn table(self, names: &[String]) -> PairTable {
        let top = self
            .best
            .into_sorted_vec()
            .into_iter()
            .map(|(std::cmp::Reverse(c), a, b)| {
                (
                    names[a as usize].clone(),
                    names[b as usize].clone(),
                    u64::from(c),
                )
            })
            .collect();
        PairTable {
            unique_pairs: self.unique_pairs,
            total: self.total,
            top,
        }
    }
}

fn summarise(counts: &Counts, names: &[String], top: usize) -> Result<PairTable> {
    let mut summary = Summary::new(top);
    counts.for_each(|a, b, c| {
        summary.add(a, b, c);
        Ok(())
    })?;
    Ok(summary.table(names))
}

/// Both tables' summaries and the viewed pairs never bought. Two blocked
/// tables over the same rows are read together, a block at a time, each
/// block of the two counted on its own thread: one pass over each table's
/// baskets per block instead of two.
fn summarise_both(
    bought: &Counts,
    viewed: &Counts,
    names: &[String],
    top: usize,
) -> Result<(PairTable, PairTable, u64)> {
    let (b, v) = match (bought, viewed) {
        (Counts::Blocked(b), Counts::Blocked(v)) if b.bounds == v.bounds => (b, v),
        (Counts::Dense(b), Counts::Dense(v)) if b.n == v.n => {
            return summarise_dense(b, v, names, top);
        }
        _ => {
            return Ok((
                summarise(bought, names, top)?,
                summarise(viewed, names, top)?,
                viewed.missing_from(bought)?,
            ))
        }
    };
    let (mut sb, mut sv, mut missing) = (Summary::new(top), Summary::new(top), 0u64);
    for k in 0..b.blocks() {
        let (bought_cells, viewed_cells) = std::thread::scope(|scope| {
            let other = scope.spawn(|| b.block(k));
            let viewed_cells = v.block(k);
            let bought_cells = other
                .join()
                .map_err(|_| BatchError::Corrupt("a pair-count thread panicked".into()))?;
            Ok::<_, BatchError>((bought_cells?, viewed_cells?))
        })?;
        b.each_in_block(k, &bought_cells, |a, bb, c| {
            sb.add(a, bb, c);
            Ok(())
        })?;
        v.each_in_block(k, &viewed_cells, |a, bb, c| {
            sv.add(a, bb, c);
            if b.count_in(k, &bought_cells, a, bb) == 0 {
                missing += 1;
            }
            Ok(())
        })?;
    }
    Ok((sb.table(names), sv.table(names), missing))
}

/// [`summarise_both`] for two arrays over the same products: one walk over
/// both, the rows cut in two halves of about as many cells, each half on
/// its own thread. Three walks on one thread (each table's summary, then
/// the viewed pairs looked up in the bought array) took 0.10 s of the
/// default shop's batch, with the other core idle.
fn summarise_dense(
    bought: &Dense,
    viewed: &Dense,
    names: &[String],
    top: usize,
) -> Result<(PairTable, PairTable, u64)> {
    let n = bought.n;
    let walk = |rows: std::ops::Range<usize>| {
        let (mut sb, mut sv, mut missing) = (Summary::new(top), Summary::new(top), 0u64);
        if rows.is_empty() {
            return (sb, sv, missing);
        }
        let mut i = row_start(n, rows.start);
        for a in rows {
            for b in a + 1..n {
                let (cb, cv) = (bought.get(i), viewed.get(i));
                i += 1;
                if cb > 0 {
                    sb.add(a as u32, b as u32, cb);
                }
                if cv > 0 {
                    sv.add(a as u32, b as u32, cv);
                    if cb == 0 {
                        missing += 1;
                    }
                }
            }
        }
        (sb, sv, missing)
    };
    // The first row whose cells start past half of them.
    let cells = bought.cells.len();
    let half = (0..n).find(|&a| row_start(n, a) * 2 >= cells).unwrap_or(n);
    let (second, (mut sb, mut sv, mut missing)) = stage::join(|| walk(half..n), || walk(0..half));
    sb.merge(second.0);
    sv.merge(second.1);
    missing += second.2;
    Ok((sb.table(names), sv.table(names), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(c: &Counts) -> Vec<(u32, u32, u32)> {
        let mut v = Vec::new();
        c.for_each(|a, b, n| {
            v.push((a, b, n));
            Ok(())
        })
        .expect("pairs");
        v
    }

    /// A repeatable stream of numbers below `n` from `seed` (a 64-bit LCG).
    fn numbers(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        }
    }

    const DENSE: Limits = Limits {
        dense_bytes: usize::MAX,
        max_passes: usize::MAX,
        spill_pairs: usize::MAX,
    };

    #[test]
    fn dense_and_sparse_counts_agree() {
        let mut dense = Counts::new(5, DENSE);
        let mut sparse = Counts::Sparse(Spilling::new(usize::MAX));
        assert!(matches!(dense, Counts::Dense(_)));
        for (a, b) in [(0, 1), (0, 4), (3, 4), (0, 1), (1, 2)] {
            dense.add(a, b);
            sparse.add(a, b);
        }
        // In pair order, both.
        assert_eq!(
            collect(&dense),
            vec![(0, 1, 2), (0, 4, 1), (1, 2, 1), (3, 4, 1)]
        );
        assert_eq!(collect(&dense), collect(&sparse));
        // Pairs of one missing from the other: by lookup in an array, by a
        // side-by-side walk of two maps.
        let mut fewer = Counts::Sparse(Spilling::new(usize::MAX));
        fewer.add(0, 4);
        fewer.add(2, 3);
        assert_eq!(sparse.missing_from(&fewer).expect("walk"), 3);
        assert_eq!(fewer.missing_from(&dense).expect("lookup"), 1);
        assert_eq!(dense.missing_from(&sparse).expect("walk"), 0);
        // 5 products: 10 cells, the last one is (3, 4).
        assert!(matches!(&dense, Counts::Dense(d) if d.cells.len() == 10 && d.cells[9] == 1));
    }

    /// The one walk over two arrays, cut in halves on two threads, gives
    /// what the three walks give: both summaries (their top pairs among
    /// many tied counts) and the viewed pairs never bought.
    #[test]
    fn two_arrays_summarised_in_one_walk_as_in_three() {
        let mut next = numbers(5);
        let (mut bought, mut viewed) = (Counts::new(40, DENSE), Counts::new(40, DENSE));
        for i in 0..900 {
            let a = next(39) as u32;
            let b = a + 1 + next(u64::from(39 - a)) as u32;
            if i % 3 == 0 {
                bought.add(a, b);
            }
            viewed.add(a, b);
        }
        let names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let (Counts::Dense(b), Counts::Dense(v)) = (&bought, &viewed) else {
            panic!("dense");
        };
        let one = summarise_dense(b, v, &names, 5).expect("one walk");
        let three = (
            summarise(&bought, &names, 5).expect("bought"),
            summarise(&viewed, &names, 5).expect("viewed"),
            viewed.missing_from(&bought).expect("missing"),
        );
        assert_eq!(one, three);
        assert!(one.2 > 100 && one.1.unique_pairs > 400, "{one:?}");
        assert_eq!(one.1.total, 900);
        assert_eq!(one.0.total, 300);
        // No products, and one: no pairs, no walk.
        for n in [0, 1] {
            let empty = Dense::new(n, 0);
            let (b, v, missing) = summarise_dense(&empty, &empty, &names, 5).expect("empty");
            assert_eq!((b.unique_pairs, v.total, missing), (0, 0, 0));
        }
    }

    /// A cell past `u16::MAX` counts on in `over`, exactly: by ones, by
    /// more at once, across the limit and at it, and when arrays past or
    /// near it are added together; the pairs are listed with those counts.
    #[test]
    fn dense_cells_count_past_u16() {
        // 3 products: cells (0, 1), (0, 2), (1, 2).
        let mut a = Dense::new(3, 3);
        for _ in 0..70_000 {
            a.add(0);
        }
        assert_eq!((a.cells[0], a.get(0)), (u16::MAX, 70_000));
        a.add_n(1, 65_534);
        assert_eq!((a.get(1), a.over.get(&1)), (65_534, None));
        a.add_n(1, 1);
        assert_eq!((a.cells[1], a.get(1)), (u16::MAX, 65_535));
        a.add_n(1, 10);
        a.add(1);
        assert_eq!(a.get(1), 65_546);
        let mut b = Dense::new(3, 3);
        b.add_n(0, 100_000);
        b.add_n(2, 40_000);
        let mut c = Dense::new(3, 3);
        c.add_n(2, 40_000);
        c.add(1);
        a.absorb(b);
        a.absorb(c);
        assert_eq!((a.get(0), a.get(1), a.get(2)), (170_000, 65_547, 80_000));
        assert_eq!(
            collect(&Counts::Dense(a)),
            vec![(0, 1, 170_000), (0, 2, 65_547), (1, 2, 80_000)]
        );
    }

    /// A map that spills every 3 pairs, and two of them absorbed into one,
    /// against a plain count: same pairs, same counts, in pair order.
    #[test]
    fn spilled_runs_merge_to_the_plain_count() {
        let limits = Limits {
            dense_bytes: 0,
            max_passes: 1,
            spill_pairs: 3,
        };
        let mut next = numbers(11);
        let mut plain: std::collections::BTreeMap<(u32, u32), u32> = Default::default();
        let mut parts = [Counts::new(40, limits), Counts::new(40, limits)];
        for i in 0..500 {
            let a = next(39) as u32;
            let b = a + 1 + next(u64::from(39 - a)) as u32;
            *plain.entry((a, b)).or_default() += 1;
            let part = &mut parts[i % 2];
            part.add(a, b);
            part.settle().expect("spill");
        }
        let [mut all, other] = parts;
        assert!(matches!(&all, Counts::Sparse(s) if s.runs.len() > 10));
        all.absorb(other).expect("absorb");
        let want: Vec<(u32, u32, u32)> = plain.iter().map(|(&(a, b), &c)| (a, b, c)).collect();
        assert!(want.len() > 100);
        assert_eq!(collect(&all), want);
        // Read twice: the runs are read from their start each time.
        assert_eq!(collect(&all), want);
        let names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let t = summarise(&all, &names, 3).expect("summary");
        assert_eq!(t.unique_pairs, want.len() as u64);
        assert_eq!(t.total, 500);
    }

    #[test]
    fn the_array_cut_into_row_blocks() {
        // 5 products: rows of 4, 3, 2, 1 and 0 cells.
        assert_eq!(row_blocks(5, 4, 9), Some(vec![0, 1, 2, 5]));
        assert_eq!(row_blocks(5, 6, 9), Some(vec![0, 1, 5]));
        assert_eq!(row_blocks(5, 10, 9), Some(vec![0, 5]));
        // A row longer than a block is a block of its own.
        assert_eq!(row_blocks(5, 1, 9), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(row_blocks(5, 1, 3), None);
        assert_eq!(row_start(5, 0), 0);
        assert_eq!(row_start(5, 2), 7);
        assert_eq!(row_start(5, 5), 10);
    }

    /// Baskets counted a block of rows at a time, from their temp files
    /// (every 7 numbers) and memory, two tables absorbed into one, against
    /// a plain count; and the viewed-never-bought count every way.
    #[test]
    fn blocked_counts_match_the_plain_count() {
        // Below the 20 bytes of a 5-product array; blocks of 4 cells.
        let limits = Limits {
            dense_bytes: 4 * 4 + 2,
            max_passes: usize::MAX,
            spill_pairs: 7,
        };
        let baskets: [&[u32]; 6] = [&[0, 1, 4], &[3, 4], &[0, 1], &[1, 2, 3, 4], &[2], &[0, 4]];
        let mut plain = Counts::new(5, DENSE);
        let mut parts = [Counts::new(5, limits), Counts::new(5, limits)];
        for (i, basket) in baskets.iter().enumerate() {
            plain.add_basket(basket).expect("plain");
            parts[i % 2].add_basket(basket).expect("blocked");
        }
        let [mut all, other] = parts;
        all.absorb(other).expect("absorb");
        all.add(2, 3);
        plain.add(2, 3);
        assert!(
            matches!(&all, Counts::Blocked(b) if b.bounds == vec![0, 1, 2, 5] && !b.chunks.is_empty() && !b.pending.is_empty())
        );
        let want = vec![
            (0, 1, 2),
            (0, 4, 2),
            (1, 2, 1),
            (1, 3, 1),
            (1, 4, 2),
            (2, 3, 2),
            (2, 4, 1),
            (3, 4, 2),
        ];
        assert_eq!(collect(&plain), want);
        assert_eq!(collect(&all), want);
        // Missing: (0, 2) and (1, 2) of `few` are not in `all` but for
        // (1, 2).
        let mut few = Counts::new(5, limits);
        few.add_basket(&[0, 1, 2]).expect("few");
        let mut few_dense = Counts::new(5, DENSE);
        few_dense.add_basket(&[0, 1, 2]).expect("few");
        assert_eq!(few.missing_from(&all).expect("blocked"), 1);
        assert_eq!(few_dense.missing_from(&all).expect("mixed"), 1);
        assert_eq!(all.missing_from(&few).expect("blocked"), 6);
        assert_eq!(all.missing_from(&few_dense).expect("lookup"), 6);
        // Both tables read together, block by block: the same as apart.
        let names: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        let together = summarise_both(&few, &all, &names, 3).expect("both");
        let apart = summarise_both(&few_dense, &plain, &names, 3).expect("apart");
        assert_eq!(together, apart);
        assert_eq!(together.2, 6);
        assert_eq!(together.1.unique_pairs, 8);
        assert_eq!(together.1.total, 13);
        assert_eq!(
            together.1.top,
            vec![
                ("p0".into(), "p1".into(), 2),
                ("p0".into(), "p4".into(), 2),
                ("p1".into(), "p4".into(), 2),
            ]
        );
    }

    #[test]
    fn the_top_pairs_break_ties_by_ids() {
        let mut c = Counts::new(4, DENSE);
        for (a, b) in [(2, 3), (2, 3), (0, 3), (0, 1), (1, 2)] {
            c.add(a, b);
        }
        let names: Vec<String> = ["p1", "p2", "p3", "p4"].map(String::from).to_vec();
        let t = summarise(&c, &names, 3).expect("summary");
        assert_eq!(t.unique_pairs, 4);
        assert_eq!(t.total, 5);
        assert_eq!(
            t.top,
            vec![
                ("p3".into(), "p4".into(), 2),
                ("p1".into(), "p2".into(), 1),
                ("p1".into(), "p4".into(), 1),
            ]
        );
    }
}
