//! The wide-column model, as in HBase: a table has column families; a row
//! (a byte-string key) has cells `family:qualifier = value`; rows are kept
//! sorted by key, and scans read a key range in order.

use crate::Result;
use std::borrow::Cow;

/// One cell of a row. Family and qualifier are borrowed when they are
/// names fixed in the code ([`Cell::named`]): a session's 13 cells then
/// allocate their values only, not 26 names as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Column family.
    pub family: Cow<'static, str>,
    /// Column qualifier within the family.
    pub qualifier: Cow<'static, [u8]>,
    /// Value.
    pub value: Vec<u8>,
}

impl Cell {
    /// A cell from string parts.
    pub fn new(family: &str, qualifier: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Cell {
            family: Cow::Owned(family.to_string()),
            qualifier: Cow::Owned(qualifier.into()),
            value: value.into(),
        }
    }

    /// A cell whose family and qualifier are names fixed in the code.
    pub fn named(family: &'static str, qualifier: &'static str, value: impl Into<Vec<u8>>) -> Self {
        Cell {
            family: Cow::Borrowed(family),
            qualifier: Cow::Borrowed(qualifier.as_bytes()),
            value: value.into(),
        }
    }
}

/// Cells to put into one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMutation {
    /// Row key.
    pub row: Vec<u8>,
    /// Cells to write (overwriting cells of the same family and qualifier).
    pub cells: Vec<Cell>,
}

/// A cell to write, borrowed: `(family, qualifier, value)`.
pub type CellRef<'a> = (&'a str, &'a [u8], &'a [u8]);

/// A row to write whole, borrowed (see
/// [`WideColumnStore::put_whole_rows_ref`]).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// Row key.
    pub row: &'a [u8],
    /// Cells to write.
    pub cells: &'a [CellRef<'a>],
}

/// A row read back: its key and cells, sorted by family then qualifier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Row key.
    pub key: Vec<u8>,
    /// Cells.
    pub cells: Vec<Cell>,
}

impl Row {
    /// The value of `family:qualifier`, if present.
    pub fn get(&self, family: &str, qualifier: &str) -> Option<&[u8]> {
        self.cells
            .iter()
            .find(|c| c.family == family && *c.qualifier == *qualifier.as_bytes())
            .map(|c| c.value.as_slice())
    }

    /// The cells of one family.
    pub fn family<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a Cell> + 'a {
        self.cells.iter().filter(move |c| c.family == family)
    }
}

/// A wide-column store. Writes of the same cell are idempotent (last write
/// wins), which is what makes replayed batches harmless.
pub trait WideColumnStore: Send + Sync {
    /// Which implementation this is, for logs.
    fn describe(&self) -> String;

    /// Creates the table with these families if it does not exist.
    fn ensure_table(&self, table: &str, families: &[&str]) -> Result<()>;

    /// Writes the mutations (batched; durable when this returns).
    fn put(&self, table: &str, mutations: &[RowMutation]) -> Result<()>;

    /// [`put`](Self::put) for rows written whole: the caller promises that
    /// each row's families named by its cells hold no other qualifiers in
    /// the store (a new row, or the same row written again with the same
    /// qualifiers). The result is then what `put` gives, and a store may
    /// skip reading the row to merge with it (the embedded store does: a
    /// fifth of ingest's CPU). HBase writes cells without reading anyway.
    fn put_whole_rows(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
        self.put(table, mutations)
    }

    /// [`put_whole_rows`](Self::put_whole_rows) with the rows borrowed, so
    /// that a caller holding the values already needs no owned copy of
    /// each (the embedded store writes from them directly; others get the
    /// rows as [`RowMutation`]s).
    fn put_whole_rows_ref(&self, table: &str, rows: &[RowRef<'_>]) -> Result<()> {
        let owned: Vec<RowMutation> = rows
            .iter()
            .map(|r| RowMutation {
                row: r.row.to_vec(),
                cells: r
                    .cells
                    .iter()
                    .map(|&(f, q, v)| Cell::new(f, q, v))
                    .collect(),
            })
            .collect();
        self.put_whole_rows(table, &owned)
    }

    /// Makes every write so far survive a machine crash, as far as the
    /// store was asked to: the embedded store syncs its journal when opened
    /// with `Durability::Machine` (`--fsync`) and does nothing otherwise; a
    /// server's durability is its own configuration.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Rows with `start <= key < stop` (an empty `stop` means no upper
    /// bound), in key order, at most `limit` rows, reading only `families`.
    fn scan(
        &self,
        table: &str,
        start: &[u8],
        stop: &[u8],
        families: &[&str],
        limit: usize,
    ) -> Result<Vec<Row>>;
}

/// The smallest key greater than every key starting with `prefix`, for
/// prefix scans; empty (a scan to the end of the table) when there is
/// none, i.e. when every byte is 0xff.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"user_000042_"), b"user_000042`".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), Vec::<u8>::new());
    }
}
