//! A pair-table row's cells while the row is sparse: partner number to
//! cell, in one array of slots (partner and cell side by side, 12 bytes)
//! probed linearly from the partner's hash, grown by a quarter when four
//! in five slots are taken.
//!
//! Written by hand instead of a `HashMap<u32, Cell>` (hashbrown) for the
//! state's size and for its memory reads. hashbrown keeps a control byte
//! per bucket apart from the buckets, so a lookup that misses the cache
//! reads two lines; here a cell is found in the line its hash points at,
//! or the next. And hashbrown doubles a table (a power of two of buckets,
//! at most 7/8 full), about 20 bytes a cell on average; a quarter more
//! slots each time at most 4/5 full is about 17 (docs/benchmarks.md, "The
//! pair table's sparse rows", has the measured difference).

use crate::pairtable::Cell;

/// The partner of an empty slot: no item has this number (items are
/// numbered from 0 and fewer than `u32::MAX`).
const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    partner: u32,
    cell: Cell,
}

const VACANT: Slot = Slot {
    partner: EMPTY,
    cell: Cell {
        all_time: 0,
        window: 0,
    },
};

/// Bytes of a slot.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// A table holds at most `MAX_LOAD_NUM / MAX_LOAD_DEN` of its slots full:
/// past that, linear probes grow long.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;

/// Slots of the first table.
const FIRST_SLOTS: usize = 4;

/// Partner number to cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct SparseRow {
    slots: Box<[Slot]>,
    len: u32,
}

/// Where a partner is, or where it would go.
pub(crate) enum Probe {
    /// The slot holding the partner.
    Found(usize),
    /// Not held (the empty slot it would take, unless the table grows).
    Missing(usize),
}

/// Whether `len` cells fit in `slots` slots.
fn fits(len: usize, slots: usize) -> bool {
    len.saturating_mul(MAX_LOAD_DEN) <= slots.saturating_mul(MAX_LOAD_NUM)
}

/// Slots of the table after one of `slots` slots: a quarter more (at least
/// two more).
fn grown(slots: usize) -> usize {
    if slots == 0 {
        FIRST_SLOTS
    } else {
        slots.saturating_add((slots / 4).max(2))
    }
}

/// Slots of a table of `slots` slots once it holds `len` cells: as many,
/// or grown until they fit.
fn slots_holding(slots: usize, len: usize) -> usize {
    let mut n = slots;
    while !fits(len, n) {
        n = grown(n);
    }
    n
}

/// The first slot probed for `partner` in a table of `slots` slots (not
/// 0): Fibonacci hashing, then the high bits scaled to the table.
#[inline]
fn home(partner: u32, slots: usize) -> usize {
    let h = u64::from(partner.wrapping_mul(0x9E37_79B9));
    ((h * slots as u64) >> 32) as usize
}

impl SparseRow {
    /// Cells held.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Bytes on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// Bytes on the heap once the table holds `len` cells, growing from
    /// its size now.
    pub(crate) fn heap_bytes_holding(&self, len: usize) -> usize {
        slots_holding(self.slots.len(), len) * SLOT_BYTES
    }

    /// Where `partner` is, or the empty slot it would take.
    #[inline]
    pub(crate) fn probe(&self, partner: u32) -> Probe {
        let n = self.slots.len();
        if n == 0 || partner == EMPTY {
            return Probe::Missing(0);
        }
        let mut i = home(partner, n);
        // Never full (at most 4/5 of the slots), so an empty slot ends the
        // loop; the count bounds it all the same.
        for _ in 0..n {
            match self.slots.get(i) {
                Some(s) if s.partner == partner => return Probe::Found(i),
                Some(s) if s.partner == EMPTY => return Probe::Missing(i),
                _ => {}
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        Probe::Missing(n)
    }

    /// Asks the CPU to fetch the slot where a probe for `partner` starts.
    #[inline]
    pub(crate) fn prefetch(&self, partner: u32) {
        let n = self.slots.len();
        if n > 0 {
            if let Some(s) = self.slots.get(home(partner, n)) {
                crate::pairtable::prefetch(s);
            }
        }
    }

    /// The cell of `partner`, if held.
    #[inline]
    pub(crate) fn get(&self, partner: u32) -> Option<&Cell> {
        match self.probe(partner) {
            Probe::Found(i) => self.slots.get(i).map(|s| &s.cell),
            Probe::Missing(_) => None,
        }
    }

    /// The cell of `partner`, if held.
    #[inline]
    pub(crate) fn get_mut(&mut self, partner: u32) -> Option<&mut Cell> {
        match self.probe(partner) {
            Probe::Found(i) => self.slots.get_mut(i).map(|s| &mut s.cell),
            Probe::Missing(_) => None,
        }
    }

    /// The cell at a slot [`probe`](Self::probe) found.
    #[inline]
    pub(crate) fn at_mut(&mut self, slot: usize) -> Option<&mut Cell> {
        self.slots.get_mut(slot).map(|s| &mut s.cell)
    }

    /// A new, empty cell for `partner`, which [`probe`](Self::probe) found
    /// missing at `slot`: there, unless the table grows first. `None` for
    /// the one number no item has.
    pub(crate) fn insert_missing(&mut self, partner: u32, slot: usize) -> Option<&mut Cell> {
        if partner == EMPTY {
            return None;
        }
        let len = self.len() + 1;
        let slot = if fits(len, self.slots.len()) {
            slot
        } else {
            self.grow(len);
            match self.probe(partner) {
                Probe::Missing(i) => i,
                Probe::Found(i) => i,
            }
        };
        let s = self.slots.get_mut(slot)?;
        *s = Slot {
            partner,
            cell: Cell::default(),
        };
        self.len += 1;
        Some(&mut s.cell)
    }

    /// Re-lays the cells in a table large enough for `len`.
    fn grow(&mut self, len: usize) {
        let n = slots_holding(self.slots.len(), len);
        let old = std::mem::replace(&mut self.slots, vec![VACANT; n].into_boxed_slice());
        for s in old.iter().filter(|s| s.partner != EMPTY) {
            if let Probe::Missing(i) = self.probe(s.partner) {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = *s;
                }
            }
        }
    }

    /// Every cell held, in the table's order: `(partner, cell)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, Cell)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.partner != EMPTY)
            .map(|s| (s.partner, s.cell))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(row: &mut SparseRow, partner: u32) -> &mut Cell {
        match row.probe(partner) {
            Probe::Found(i) => row.at_mut(i).expect("found"),
            Probe::Missing(i) => row.insert_missing(partner, i).expect("inserted"),
        }
    }

    /// Cells survive every growth, and the table's sizes are as the
    /// module says: 4 slots hold 3 cells, then a quarter more (at least
    /// two) at most 4/5 full.
    #[test]
    fn cells_survive_growth() {
        let mut row = SparseRow::default();
        assert_eq!(row.heap_bytes(), 0);
        assert!(row.get(7).is_none());
        let mut sizes = Vec::new();
        for p in 0..1_000u32 {
            let c = add(&mut row, p * 7 + 1);
            c.all_time += p + 1;
            c.window += 1;
            if sizes.last() != Some(&row.slots.len()) {
                sizes.push(row.slots.len());
            }
        }
        assert_eq!(&sizes[..8], &[4, 6, 8, 10, 12, 15, 18, 22]);
        assert_eq!(row.len(), 1_000);
        // 1,000 cells at most 4/5 full: at least 1,250 slots.
        assert!(row.slots.len() >= 1_250 && row.slots.len() < 1_250 * 5 / 4 + 2);
        for p in 0..1_000u32 {
            assert_eq!(
                row.get(p * 7 + 1),
                Some(&Cell {
                    all_time: p + 1,
                    window: 1
                })
            );
            assert!(row.get(p * 7 + 2).is_none());
        }
        // Counting a held partner again finds its cell, not a new one.
        add(&mut row, 8).all_time += 10;
        assert_eq!(row.len(), 1_000);
        assert_eq!(row.get(8).map(|c| c.all_time), Some(12));
        let mut all: Vec<u32> = row.iter().map(|(p, _)| p).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1_000).map(|p| p * 7 + 1).collect::<Vec<_>>());
    }

    #[test]
    fn bytes_holding_follow_the_growth() {
        let mut row = SparseRow::default();
        assert_eq!(row.heap_bytes_holding(3), 4 * SLOT_BYTES);
        assert_eq!(row.heap_bytes_holding(4), 6 * SLOT_BYTES);
        for p in 0..4 {
            add(&mut row, p);
        }
        assert_eq!(row.heap_bytes(), 6 * SLOT_BYTES);
        assert_eq!(row.heap_bytes_holding(5), 8 * SLOT_BYTES);
        assert_eq!(SLOT_BYTES, 12);
    }

    #[test]
    fn the_empty_number_is_refused() {
        let mut row = SparseRow::default();
        assert!(row.insert_missing(EMPTY, 0).is_none());
        add(&mut row, 3);
        // The table's empty slots are not a cell of it.
        assert!(row.get(EMPTY).is_none());
        assert!(row.get_mut(EMPTY).is_none());
        assert!(row.insert_missing(EMPTY, 1).is_none());
        assert_eq!(row.len(), 1);
    }
}
