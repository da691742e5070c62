//! Counts of pairs of dense item indices `(a, b)`, `a < b`: one cell per
//! pair, holding its all-time and window counts side by side, so counting a
//! pair is one memory access, not three hash-map updates.
//!
//! The cells of `a` form its row. A row starts sparse (a small hash table
//! from partner to cell, `sparserow`) and turns dense (a flat array indexed by
//! `b - a - 1`) once that is no larger: on the default shop, where
//! the viewed-together graph holds most of the possible pairs, the dense
//! rows are an upper-triangular matrix of 8-byte cells, while the
//! bought-together rows (a few dozen partners each) stay sparse.
//!
//! An item's partners are its own row (the partners after it) and its
//! column in the rows before it. Dense rows are read directly; for sparse
//! ones each item keeps the rows that hold it (`lower`), so a lookup of a
//! rarely bought product touches its few dozen partners, not every row.
//! That is a list of row numbers while it is short, and a bit per row
//! before the item once the list would be larger. Lists alone (4 bytes a
//! pair plus growth slack, and rows that turned dense stay listed) make
//! the state about a sixth larger on the default and four-times shops, at
//! the same rate (docs/benchmarks.md, "The pair table's column index").

use crate::sparserow::{Probe, SparseRow};

/// The counts of one pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// Baskets ever holding both items.
    pub all_time: u32,
    /// Baskets in the window holding both items.
    pub window: u32,
}

#[derive(Debug, Clone)]
enum Row {
    /// Partner index to cell.
    Sparse(SparseRow),
    /// Cell of partner `b` at `b - a - 1`.
    Dense(Vec<Cell>),
}

/// The sparse rows before item `x` that hold it.
#[derive(Debug, Clone)]
enum Column {
    /// Row numbers, in the order added.
    List(Vec<u32>),
    /// Bit `a` set for row `a`; `x` bits.
    Bits(Vec<u64>),
}

impl Default for Column {
    fn default() -> Self {
        Column::List(Vec::new())
    }
}

impl Column {
    /// Adds row `a` (`a < x`, not yet added) to the column of `x`. A list
    /// of 4-byte numbers turns into bits once it would outgrow `x` bits.
    fn add(&mut self, x: usize, a: u32) {
        match self {
            Column::List(rows) if (rows.len() + 1) * 32 >= x => {
                let mut bits = vec![0u64; x.div_ceil(64)];
                for &r in rows.iter().chain([&a]) {
                    set_bit(&mut bits, r);
                }
                *self = Column::Bits(bits);
            }
            Column::List(rows) => rows.push(a),
            Column::Bits(bits) => set_bit(bits, a),
        }
    }

    /// Every row added: `f(row)`.
    fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            Column::List(rows) => rows.iter().for_each(|&r| f(r)),
            Column::Bits(bits) => {
                for (w, &word) in bits.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        f((w * 64) as u32 + word.trailing_zeros());
                        word &= word - 1;
                    }
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Column::List(rows) => rows.capacity() * 4,
            Column::Bits(bits) => bits.capacity() * 8,
        }
    }
}

fn set_bit(bits: &mut [u64], r: u32) {
    if let Some(w) = bits.get_mut(r as usize / 64) {
        *w |= 1u64 << (r % 64);
    }
}

/// Asks the CPU to fetch the cache line of `p` (a hint: nothing else
/// changes).
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch neither reads nor writes memory as the
        // program sees it, and `p` points into a live value anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A sparse row turns dense once its cells times `SPARSE_COST` reach its
/// span (the items after it) times `DENSE_COST`: a sparse cell costs about
/// 17 bytes (partner and cell, and the table's free slots), a dense one 8.
const SPARSE_COST: usize = 17;
const DENSE_COST: usize = 8;
/// Rows shorter than this stay sparse (not worth the switch).
const MIN_DENSE: usize = 16;

/// The pair cells of items `0..n`.
#[derive(Debug, Clone, Default)]
pub struct PairTable {
    rows: Vec<Row>,
    /// For each item, the sparse rows before it that hold it.
    lower: Vec<Column>,
    /// Rows that are dense.
    dense: Vec<u32>,
    /// Pairs with a window count.
    window_pairs: usize,
}

impl PairTable {
    /// Makes room for items up to `n - 1`.
    pub fn grow(&mut self, n: usize) {
        while self.rows.len() < n {
            self.rows.push(Row::Sparse(SparseRow::default()));
            self.lower.push(Column::default());
        }
    }

    /// The cell of `(a, b)`, `a < b` < the items grown, made if absent. Returns
    /// `None` for indices out of order or range (never for the callers
    /// here, which sort and intern first).
    #[inline]
    fn cell_mut(&mut self, a: u32, b: u32) -> Option<&mut Cell> {
        let n = self.rows.len();
        let (ai, bi) = (a as usize, b as usize);
        if ai >= bi || bi >= n {
            return None;
        }
        let span = n - ai - 1;
        // A new partner of a sparse row: the row turns dense, or the
        // partner lists the row among those that hold it. A row turns
        // dense rather than grow its table past its flat array: before it
        // reaches `SPARSE_COST`'s average, a table just grown can be
        // larger than the array.
        let missing = match &self.rows[ai] {
            Row::Sparse(m) => match m.probe(b) {
                Probe::Found(i) => {
                    return match &mut self.rows[ai] {
                        Row::Sparse(m) => m.at_mut(i),
                        Row::Dense(_) => None,
                    }
                }
                Probe::Missing(i) => {
                    let len = m.len() + 1;
                    let flat = span * DENSE_COST;
                    let densify = len >= MIN_DENSE
                        && (len * SPARSE_COST >= flat || m.heap_bytes_holding(len) > flat);
                    Some((i, densify))
                }
            },
            Row::Dense(_) => None,
        };
        match missing {
            Some((_, true)) => {
                let mut cells = vec![Cell::default(); span];
                if let Row::Sparse(m) = &self.rows[ai] {
                    for (k, c) in m.iter() {
                        if let Some(slot) = cells.get_mut((k - a - 1) as usize) {
                            *slot = c;
                        }
                    }
                }
                self.rows[ai] = Row::Dense(cells);
                self.dense.push(a);
            }
            Some((slot, false)) => {
                if let Some(column) = self.lower.get_mut(bi) {
                    column.add(bi, a);
                }
                return match &mut self.rows[ai] {
                    Row::Sparse(m) => m.insert_missing(b, slot),
                    Row::Dense(_) => None,
                };
            }
            None => {}
        }
        match &mut self.rows[ai] {
            Row::Sparse(m) => m.get_mut(b),
            Row::Dense(cells) => {
                let i = bi - ai - 1;
                if i >= cells.len() {
                    // An eighth more than the span, not double the row:
                    // the slack would be state.
                    cells.reserve_exact((span - cells.len()).max(cells.len() / 8));
                    cells.resize(span, Cell::default());
                }
                cells.get_mut(i)
            }
        }
    }

    /// The cell of `(a, b)`, `a < b`.
    pub fn get(&self, a: u32, b: u32) -> Cell {
        let Some(row) = self.rows.get(a as usize) else {
            return Cell::default();
        };
        match row {
            Row::Sparse(m) => m.get(b).copied().unwrap_or_default(),
            Row::Dense(cells) => (b as usize)
                .checked_sub(a as usize + 1)
                .and_then(|i| cells.get(i))
                .copied()
                .unwrap_or_default(),
        }
    }

    /// Asks the CPU to fetch the cell of `(a, b)`, `a < b`, if it has one,
    /// or the slot where its row's table would look for it.
    #[inline]
    fn prefetch_cell(&self, a: u32, b: u32) {
        match self.rows.get(a as usize) {
            Some(Row::Sparse(m)) => m.prefetch(b),
            Some(Row::Dense(cells)) => {
                if let Some(c) = (b as usize)
                    .checked_sub(a as usize + 1)
                    .and_then(|i| cells.get(i))
                {
                    prefetch(c);
                }
            }
            None => {}
        }
    }

    /// Asks the CPU to fetch the rows and columns of a basket's items.
    #[inline]
    fn prefetch_items(&self, basket: &[u32]) {
        for &x in basket {
            if let Some(r) = self.rows.get(x as usize) {
                prefetch(r);
            }
            if let Some(c) = self.lower.get(x as usize) {
                prefetch(c);
            }
        }
    }

    /// `f(a, b)` for every pair `a < b` of `basket` (sorted, distinct), in
    /// the order of `pairs::for_each_pair`, fetching each row's cells for
    /// the basket before the first of them is touched: the cells of a
    /// large table are each a cache miss, and fetched together their
    /// misses overlap instead of waiting one after the other.
    #[inline]
    fn for_each_pair_fetched(&mut self, basket: &[u32], mut f: impl FnMut(&mut Self, u32, u32)) {
        self.prefetch_items(basket);
        for (i, &a) in basket.iter().enumerate() {
            let rest = basket.get(i + 1..).unwrap_or_default();
            for &b in rest {
                self.prefetch_cell(a, b);
            }
            for &b in rest {
                f(self, a, b);
            }
        }
    }

    /// Counts every pair of a basket (sorted, distinct item numbers): all
    /// time, and the window if `in_window`. The same as [`add`](Self::add)
    /// on each pair in turn.
    pub fn add_basket(&mut self, basket: &[u32], in_window: bool) {
        self.for_each_pair_fetched(basket, |t, a, b| t.add(a, b, in_window));
    }

    /// Takes one basket (sorted, distinct item numbers) out of the window:
    /// [`remove_window`](Self::remove_window) on each pair in turn.
    pub fn remove_basket_window(&mut self, basket: &[u32]) {
        self.for_each_pair_fetched(basket, |t, a, b| t.remove_window(a, b));
    }

    /// Counts one basket of `(a, b)`: all time, and the window if
    /// `in_window`.
    #[inline]
    pub fn add(&mut self, a: u32, b: u32, in_window: bool) {
        self.add_counts(a, b, 1, u32::from(in_window));
    }

    /// Adds one to the window count of `(a, b)` (restoring a checkpoint:
    /// the window comes back from its baskets). `false` for indices out of
    /// order or range.
    pub fn add_window(&mut self, a: u32, b: u32) -> bool {
        self.add_counts(a, b, 0, 1)
    }

    #[inline]
    fn add_counts(&mut self, a: u32, b: u32, all_time: u32, window: u32) -> bool {
        let Some(c) = self.cell_mut(a, b) else {
            return false;
        };
        let entered = c.window == 0 && window > 0;
        c.all_time = c.all_time.saturating_add(all_time);
        c.window = c.window.saturating_add(window);
        if entered {
            self.window_pairs += 1;
        }
        true
    }

    /// Sets the all-time count of a pair (restoring a checkpoint).
    pub fn set_all_time(&mut self, a: u32, b: u32, n: u32) -> bool {
        match self.cell_mut(a, b) {
            Some(c) => {
                c.all_time = n;
                true
            }
            None => false,
        }
    }

    /// Takes one basket of `(a, b)` out of the window.
    #[inline]
    pub fn remove_window(&mut self, a: u32, b: u32) {
        let n = self.rows.len();
        let (ai, bi) = (a as usize, b as usize);
        if ai >= bi || bi >= n {
            return;
        }
        let c = match &mut self.rows[ai] {
            Row::Sparse(m) => m.get_mut(b),
            Row::Dense(cells) => cells.get_mut(bi - ai - 1),
        };
        if let Some(c) = c {
            if c.window == 1 {
                self.window_pairs = self.window_pairs.saturating_sub(1);
            }
            c.window = c.window.saturating_sub(1);
        }
    }

    /// Bytes held on the heap (allocated capacity, hash tables with their
    /// control bytes): the state's size, as a gauge shows it.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let rows: usize = self
            .rows
            .iter()
            .map(|r| match r {
                Row::Sparse(m) => m.heap_bytes(),
                Row::Dense(c) => c.capacity() * size_of::<Cell>(),
            })
            .sum();
        let lower: usize = self.lower.iter().map(Column::heap_bytes).sum();
        rows + lower
            + self.rows.capacity() * size_of::<Row>()
            + self.lower.capacity() * size_of::<Column>()
            + self.dense.capacity() * 4
    }

    /// The sparse rows listed as holding `x`, in order.
    #[cfg(test)]
    fn rows_holding(&self, x: u32) -> Vec<u32> {
        let mut rows = Vec::new();
        if let Some(column) = self.lower.get(x as usize) {
            column.for_each(|r| rows.push(r));
        }
        rows.sort_unstable();
        rows
    }

    /// Rows laid out dense.
    #[cfg(test)]
    pub fn dense_rows(&self) -> usize {
        self.dense.len()
    }

    /// Pairs with a count in the window.
    pub fn window_pairs(&self) -> usize {
        self.window_pairs
    }

    /// Every partner of `x` with a non-empty cell: `f(partner, cell)`.
    pub fn for_each_partner(&self, x: u32, mut f: impl FnMut(u32, Cell)) {
        let Some(row) = self.rows.get(x as usize) else {
            return;
        };
        // Partners before x: dense rows read directly, sparse ones listed.
        for &j in &self.dense {
            if j < x {
                let c = self.get(j, x);
                if c.all_time > 0 {
                    f(j, c);
                }
            }
        }
        if let Some(column) = self.lower.get(x as usize) {
            column.for_each(|j| {
                if let Some(Row::Sparse(m)) = self.rows.get(j as usize) {
                    if let Some(c) = m.get(x) {
                        f(j, *c);
                    }
                }
            });
        }
        // Partners after x: its own row.
        self.for_each_in_row(x, row, &mut f);
    }

    fn for_each_in_row(&self, a: u32, row: &Row, f: &mut impl FnMut(u32, Cell)) {
        match row {
            Row::Sparse(m) => {
                for (b, c) in m.iter() {
                    f(b, c);
                }
            }
            Row::Dense(cells) => {
                for (i, &c) in cells.iter().enumerate() {
                    if c.all_time > 0 {
                        f(a + 1 + i as u32, c);
                    }
                }
            }
        }
    }

    /// Every non-empty cell, unordered: `f(a, b, cell)`.
    pub fn for_each(&self, mut f: impl FnMut(u32, u32, Cell)) {
        for (a, row) in self.rows.iter().enumerate() {
            let a = a as u32;
            self.for_each_in_row(a, row, &mut |b, c| f(a, b, c));
        }
    }

    /// The non-empty cells of row `a` in increasing partner order, into
    /// `out` (cleared first): the checkpoint's order.
    pub fn row_sorted(&self, a: u32, out: &mut Vec<(u32, Cell)>) {
        out.clear();
        if let Some(row) = self.rows.get(a as usize) {
            self.for_each_in_row(a, row, &mut |b, c| out.push((b, c)));
            if matches!(row, Row::Sparse(_)) {
                out.sort_unstable_by_key(|(b, _)| *b);
            }
        }
    }
}

/// Two tables are equal when they hold the same cells, however the rows
/// happen to be laid out.
impl PartialEq for PairTable {
    fn eq(&self, other: &Self) -> bool {
        if self.rows.len() != other.rows.len() || self.window_pairs != other.window_pairs {
            return false;
        }
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        (0..self.rows.len() as u32).all(|a| {
            self.row_sorted(a, &mut mine);
            other.row_sorted(a, &mut theirs);
            mine == theirs
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next number of a linear congruential generator (Knuth's MMIX
    /// constants): repeatable test data without a dependency.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed
    }

    /// Counting pairs here against a `DashMap` of the same cells (the
    /// concurrent map the project card suggested), on 3,000,000 pairs of
    /// 5,000 items drawn with a skew like the shop's, and reading one
    /// popular item's partners back. A benchmark that prints; run it with
    /// `cargo test -p aggregator --release --lib pair_table_against_dashmap
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures, asserts only that both count the same"]
    fn pair_table_against_dashmap() {
        use std::time::Instant;
        const ITEMS: u64 = 5_000;
        let mut seed = 7u64;
        let mut item = || {
            let seed = lcg(&mut seed);
            // Squared: low numbers are far more popular, as in the shop.
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            (u * u * ITEMS as f64) as u32
        };
        let pairs: Vec<(u32, u32)> = (0..3_000_000)
            .filter_map(|_| {
                let (a, b) = (item(), item());
                (a != b).then(|| (a.min(b), a.max(b)))
            })
            .collect();
        let per = |t: std::time::Duration, n: usize| t.as_secs_f64() * 1e9 / n as f64;

        let started = Instant::now();
        let mut table = PairTable::default();
        table.grow(ITEMS as usize);
        for &(a, b) in &pairs {
            table.add(a, b, true);
        }
        let table_add = started.elapsed();

        let started = Instant::now();
        let map: dashmap::DashMap<(u32, u32), Cell> = dashmap::DashMap::new();
        for &(a, b) in &pairs {
            let mut cell = map.entry((a, b)).or_default();
            cell.all_time += 1;
            cell.window += 1;
        }
        let map_add = started.elapsed();

        let started = Instant::now();
        let mut from_table = 0u64;
        table.for_each_partner(1, |_, c| from_table += u64::from(c.all_time));
        let table_read = started.elapsed();
        let started = Instant::now();
        // A map keyed by pair has no rows: an item's partners are a scan.
        let from_map: u64 = map
            .iter()
            .filter(|e| e.key().0 == 1 || e.key().1 == 1)
            .map(|e| u64::from(e.value().all_time))
            .sum();
        let map_read = started.elapsed();

        println!(
            "counting {} pairs: PairTable {:.1} ns per pair, DashMap {:.1} ns",
            pairs.len(),
            per(table_add, pairs.len()),
            per(map_add, pairs.len())
        );
        println!(
            "one item's partners ({} baskets): PairTable {:.0} us, DashMap {:.0} us",
            from_table,
            table_read.as_secs_f64() * 1e6,
            map_read.as_secs_f64() * 1e6
        );
        assert_eq!(from_table, from_map);
        assert_eq!(map.len(), {
            let mut n = 0;
            table.for_each(|_, _, _| n += 1);
            n
        });
    }

    /// The table against a map of every pair's counts, under a stream of
    /// baskets counted and taken out of the window at random, over item
    /// counts whose rows stay sparse, turn dense, or grow with the items:
    /// every cell, every item's partners and the window's pair count agree.
    #[test]
    fn the_table_counts_as_a_map_of_pairs_does() {
        use std::collections::BTreeMap;
        let mut seed = 11u64;
        let mut next = move |n: u64| (lcg(&mut seed) >> 33) % n;
        for items in [30u32, 300, 3_000] {
            let mut t = PairTable::default();
            t.grow(items as usize / 2);
            let mut want: BTreeMap<(u32, u32), Cell> = BTreeMap::new();
            let mut counted: Vec<Vec<u32>> = Vec::new();
            for step in 0..20_000 {
                if step == 10_000 {
                    t.grow(items as usize);
                }
                let live = if step < 10_000 { items / 2 } else { items };
                if !counted.is_empty() && next(4) == 0 {
                    // Take out of the window a basket counted in it.
                    let basket = counted.swap_remove(next(counted.len() as u64) as usize);
                    t.remove_basket_window(&basket);
                    for_each_pair_in(&basket, |a, b| {
                        if let Some(c) = want.get_mut(&(a, b)) {
                            c.window -= 1;
                        }
                    });
                    continue;
                }
                // Low numbers are far more popular, as in the shop.
                let mut basket: Vec<u32> = (0..2 + next(6))
                    .map(|_| {
                        let u = next(live as u64) as u32;
                        u * u / live
                    })
                    .collect();
                basket.sort_unstable();
                basket.dedup();
                let in_window = next(3) > 0;
                t.add_basket(&basket, in_window);
                for_each_pair_in(&basket, |a, b| {
                    let c = want.entry((a, b)).or_default();
                    c.all_time += 1;
                    c.window += u32::from(in_window);
                });
                if in_window {
                    counted.push(basket);
                }
            }
            for (&(a, b), &c) in &want {
                assert_eq!(t.get(a, b), c, "{items} items, pair ({a}, {b})");
            }
            let window_pairs = want.values().filter(|c| c.window > 0).count();
            assert_eq!(t.window_pairs(), window_pairs, "{items} items");
            let mut partners: Vec<Vec<(u32, Cell)>> = vec![Vec::new(); items as usize];
            for (&(a, b), &c) in &want {
                partners[a as usize].push((b, c));
                partners[b as usize].push((a, c));
            }
            for (x, expected) in partners.iter_mut().enumerate() {
                expected.sort_unstable_by_key(|(p, _)| *p);
                let mut got = Vec::new();
                t.for_each_partner(x as u32, |p, c| got.push((p, c)));
                got.sort_unstable_by_key(|(p, _)| *p);
                assert_eq!(&got, expected, "{items} items, partners of {x}");
            }
            // Both kinds of row were exercised.
            let dense = t.dense_rows();
            let sparse = t
                .rows
                .iter()
                .filter(|r| matches!(r, Row::Sparse(m) if m.len() > 0))
                .count();
            assert!(
                dense > 0 && sparse > 0,
                "{items} items: {dense} dense, {sparse} sparse"
            );
        }
    }

    fn for_each_pair_in(basket: &[u32], mut f: impl FnMut(u32, u32)) {
        for (i, &a) in basket.iter().enumerate() {
            for &b in &basket[i + 1..] {
                f(a, b);
            }
        }
    }

    #[test]
    fn rows_turn_dense_and_keep_their_cells() {
        let mut t = PairTable::default();
        t.grow(40);
        // Row 0: partners 1..=20 out of 39 after it: 20 x 20 >= 39 x 8.
        for b in 1..=20 {
            t.add(0, b, true);
        }
        t.add(0, 5, false);
        assert!(matches!(t.rows[0], Row::Dense(_)));
        assert_eq!(t.dense, vec![0]);
        assert_eq!(
            t.get(0, 5),
            Cell {
                all_time: 2,
                window: 1
            }
        );
        assert_eq!(t.get(0, 21), Cell::default());
        // Row 3: two partners, stays sparse and is listed under them.
        t.add(3, 7, true);
        t.add(3, 30, true);
        t.add(3, 30, false);
        assert!(matches!(t.rows[3], Row::Sparse(_)));
        // Listed once, however often the pair is counted: as a bit, since
        // a list of one row (4 bytes) is not smaller than 30 bits.
        assert_eq!(t.rows_holding(30), vec![3]);
        assert!(matches!(t.lower[30], Column::Bits(_)));
        assert_eq!(
            t.get(3, 30),
            Cell {
                all_time: 2,
                window: 1
            }
        );
        let mut of_7 = Vec::new();
        t.for_each_partner(7, |p, c| of_7.push((p, c.all_time)));
        of_7.sort();
        assert_eq!(of_7, vec![(0, 1), (3, 1)]);
        assert_eq!(t.window_pairs(), 22);
        t.remove_window(0, 5);
        t.remove_window(3, 30);
        assert_eq!(t.window_pairs(), 20);
        let mut row = Vec::new();
        t.row_sorted(0, &mut row);
        assert_eq!(row.len(), 20);
        // Out of order or range: ignored.
        t.add(5, 5, true);
        t.add(7, 3, true);
        t.add(1, 99, true);
        assert_eq!(t.get(7, 3), Cell::default());
    }

    /// Rows holding a late item: listed while 4 bytes a row is less than a
    /// bit per row before it (200 / 32: up to 6 rows), bits after that, and
    /// every partner found either way.
    #[test]
    fn a_column_turns_from_a_list_into_bits() {
        let mut t = PairTable::default();
        t.grow(201);
        let rows = [170, 3, 64, 0, 199, 63, 128, 7];
        for (k, &a) in rows.iter().enumerate() {
            t.add(a, 200, true);
            t.add(a, 200, k % 2 == 0);
            let is_list = matches!(t.lower[200], Column::List(_));
            assert_eq!(is_list, k + 1 < 7, "after {} rows", k + 1);
        }
        assert_eq!(t.rows_holding(200), vec![0, 3, 7, 63, 64, 128, 170, 199]);
        let mut partners = Vec::new();
        t.for_each_partner(200, |p, c| partners.push((p, c.all_time, c.window)));
        partners.sort();
        let want: Vec<_> = [0, 3, 7, 63, 64, 128, 170, 199]
            .into_iter()
            .map(|a| {
                let k = rows.iter().position(|&r| r == a).expect("added");
                (a, 2, if k % 2 == 0 { 2 } else { 1 })
            })
            .collect();
        assert_eq!(partners, want);
        // A short column of an early item stays a list.
        t.add(1, 150, true);
        assert!(matches!(t.lower[150], Column::List(_)));
        assert_eq!(t.rows_holding(150), vec![1]);
    }

    /// A row of 650 partners: its flat array is 5,200 bytes. Its table
    /// holds 292 cells in 366 slots (4,392 bytes); the 293rd would grow it
    /// to 457 slots (5,484 bytes), so the row turns dense there, at 45%
    /// full, before the average cost (17 bytes a cell) would say so at 306.
    #[test]
    fn a_row_turns_dense_rather_than_outgrow_its_array() {
        let mut t = PairTable::default();
        t.grow(651);
        for b in 1..=292 {
            t.add(0, b, true);
        }
        assert!(matches!(&t.rows[0], Row::Sparse(m) if m.heap_bytes() == 366 * 12));
        t.add(0, 293, true);
        assert!(matches!(t.rows[0], Row::Dense(_)));
        assert_eq!(t.get(0, 292).all_time, 1);
        assert_eq!(t.get(0, 293).all_time, 1);
        let mut row = Vec::new();
        t.row_sorted(0, &mut row);
        assert_eq!(row.len(), 293);
    }

    #[test]
    fn a_dense_row_grows_with_the_items() {
        let mut t = PairTable::default();
        t.grow(20);
        for b in 1..20 {
            t.add(0, b, true);
        }
        assert!(matches!(t.rows[0], Row::Dense(_)));
        t.grow(100);
        t.add(0, 99, true);
        assert_eq!(t.get(0, 99).all_time, 1);
        // One item more: room for an eighth more (99 + 12), not double.
        t.grow(101);
        t.add(0, 100, true);
        assert!(matches!(&t.rows[0], Row::Dense(c) if c.len() == 100 && c.capacity() == 111));
        let mut row = Vec::new();
        t.row_sorted(0, &mut row);
        assert_eq!(row.len(), 21);
        assert_eq!(row[19].0, 99);
    }
}
