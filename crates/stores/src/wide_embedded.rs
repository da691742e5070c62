//! The wide-column store on fjall: one keyspace per table and family
//! (`<table>:<family>`), keyed by the row key byte for byte, and **one value
//! per row and family** holding all of that family's cells of the row
//! (qualifiers and values encoded together, sorted by qualifier).
//!
//! Scans read the same row ranges an HBase scan would. A put merges its
//! cells into what the row already holds (a cell of the same qualifier is
//! overwritten, the others are kept), as HBase does; puts are serialised so
//! that two writers never merge into the same row at once.
//!
//! A session is three keys here (one per family) instead of one per cell:
//! the memtable, the journal and compaction see a seventh of the keys.

use crate::wide::{Cell, Row, RowMutation, WideColumnStore};
use crate::{Result, StoreError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// The embedded wide-column store.
pub struct EmbeddedWideStore {
    path: PathBuf,
    db: Database,
    tables: RwLock<HashMap<String, Vec<(String, Keyspace)>>>,
    /// Puts read, merge and write: one at a time.
    writer: Mutex<()>,
}

fn keyspace_name(table: &str, family: &str) -> String {
    format!("{table}:{family}")
}

/// The cells of one row and family, sorted by qualifier, as stored.
type Cells = Vec<(Vec<u8>, Vec<u8>)>;

/// `(u32 LE length, qualifier, u32 LE length, value)` per cell.
fn encode_cells(cells: &Cells) -> Vec<u8> {
    let len: usize = cells.iter().map(|(q, v)| 8 + q.len() + v.len()).sum();
    let mut out = Vec::with_capacity(len);
    for (q, v) in cells {
        // Cells beyond 4 GiB cannot reach here: fjall values are < 4 GiB.
        out.extend_from_slice(&(q.len() as u32).to_le_bytes());
        out.extend_from_slice(q);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn decode_cells(mut bytes: &[u8]) -> Result<Cells> {
    let mut out = Vec::new();
    let corrupt = || StoreError::corrupt("wide-column value: truncated cell");
    let take = |bytes: &mut &[u8]| -> Result<Vec<u8>> {
        let n = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(corrupt)? as usize;
        let part = bytes.get(4..4 + n).ok_or_else(corrupt)?.to_vec();
        *bytes = &bytes[4 + n..];
        Ok(part)
    };
    while !bytes.is_empty() {
        let q = take(&mut bytes)?;
        let v = take(&mut bytes)?;
        out.push((q, v));
    }
    Ok(out)
}

/// Puts `(q, v)` into sorted `cells`, replacing a cell of the same qualifier.
fn merge_cell(cells: &mut Cells, q: &[u8], v: &[u8]) {
    match cells.binary_search_by(|(have, _)| have.as_slice().cmp(q)) {
        Ok(i) => cells[i].1 = v.to_vec(),
        Err(i) => cells.insert(i, (q.to_vec(), v.to_vec())),
    }
}

impl EmbeddedWideStore {
    /// Opens (or creates) the store in `path`.
    ///
    /// A store written by an older ecomflow (one key per cell, keyspaces
    /// named `<table>__<family>`) is refused with a message saying how to
    /// start over, rather than read as empty.
    pub fn open(path: &Path) -> Result<Self> {
        let db = crate::open_fjall(path)?;
        if let Some(old) = db
            .list_keyspace_names()
            .iter()
            .find(|n| n.contains("__") && !n.contains(':'))
        {
            return Err(StoreError::Layout(format!(
                "the wide-column store in {} was written by an older ecomflow \
                 (one key per cell, e.g. keyspace {:?}); start over with --fresh \
                 or use another --data-dir",
                path.display(),
                &**old
            )));
        }
        Ok(EmbeddedWideStore {
            path: path.to_path_buf(),
            db,
            tables: RwLock::new(HashMap::new()),
            writer: Mutex::new(()),
        })
    }

    fn families(&self, table: &str) -> Result<Vec<(String, Keyspace)>> {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        tables
            .get(table)
            .cloned()
            .ok_or_else(|| StoreError::Unknown(table.to_string()))
    }
}

impl WideColumnStore for EmbeddedWideStore {
    fn describe(&self) -> String {
        format!("embedded wide-column store at {}", self.path.display())
    }

    fn ensure_table(&self, table: &str, families: &[&str]) -> Result<()> {
        let mut opened = Vec::new();
        for f in families {
            let ks = self
                .db
                .keyspace(&keyspace_name(table, f), KeyspaceCreateOptions::default)?;
            opened.push((f.to_string(), ks));
        }
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.to_string(), opened);
        Ok(())
    }

    fn put(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
        let families = self.families(table)?;
        // (family index, row) -> the cells this put writes, merged in order.
        let mut touched: BTreeMap<(usize, &[u8]), Cells> = BTreeMap::new();
        for m in mutations {
            for c in &m.cells {
                let fi = families
                    .iter()
                    .position(|(f, _)| *f == c.family)
                    .ok_or_else(|| StoreError::Unknown(format!("{table}:{}", c.family)))?;
                let cells = touched.entry((fi, m.row.as_slice())).or_default();
                merge_cell(cells, &c.qualifier, &c.value);
            }
        }
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for ((fi, row), new) in touched {
            let ks = &families[fi].1;
            let merged = match ks.get(row)? {
                None => new,
                Some(old) => {
                    let mut cells = decode_cells(&old)?;
                    for (q, v) in &new {
                        merge_cell(&mut cells, q, v);
                    }
                    cells
                }
            };
            batch.insert(ks, row, encode_cells(&merged));
        }
        batch.commit()?;
        Ok(())
    }

    fn scan(
        &self,
        table: &str,
        start: &[u8],
        stop: &[u8],
        families: &[&str],
        limit: usize,
    ) -> Result<Vec<Row>> {
        let all = self.families(table)?;
        let mut rows: BTreeMap<Vec<u8>, Vec<Cell>> = BTreeMap::new();
        // Families in the order asked, cells within a family by qualifier.
        for fam in families {
            let (_, ks) = all
                .iter()
                .find(|(f, _)| f == fam)
                .ok_or_else(|| StoreError::Unknown(format!("{table}:{fam}")))?;
            let iter = if stop.is_empty() {
                ks.range(start.to_vec()..)
            } else {
                ks.range(start.to_vec()..stop.to_vec())
            };
            // The first `limit` rows of the union are among the first
            // `limit` rows of each family, so each family stops there.
            for kv in iter.take(limit) {
                let (k, v) = kv.into_inner()?;
                let cells = rows.entry(k.to_vec()).or_default();
                for (q, v) in decode_cells(&v)? {
                    cells.push(Cell {
                        family: fam.to_string(),
                        qualifier: q,
                        value: v,
                    });
                }
            }
        }
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|(key, cells)| Row { key, cells })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_and_merge_by_qualifier() {
        let mut cells: Cells = Vec::new();
        merge_cell(&mut cells, b"type", b"mobile");
        merge_cell(&mut cells, b"os", b"iOS");
        merge_cell(&mut cells, b"type", b"desktop");
        merge_cell(&mut cells, b"", b"empty qualifier");
        assert_eq!(
            cells,
            vec![
                (b"".to_vec(), b"empty qualifier".to_vec()),
                (b"os".to_vec(), b"iOS".to_vec()),
                (b"type".to_vec(), b"desktop".to_vec()),
            ]
        );
        let bytes = encode_cells(&cells);
        // 3 cells: 8 bytes of lengths each, plus 0+15, 2+3, 4+7 bytes.
        assert_eq!(bytes.len(), 24 + 15 + 5 + 11);
        assert_eq!(decode_cells(&bytes).expect("decode"), cells);
        assert!(decode_cells(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_cells(&[1, 0]).is_err());
    }

    #[test]
    fn a_store_of_the_old_layout_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = crate::open_fjall(dir.path()).expect("open");
            db.keyspace("user_sessions__behavior", KeyspaceCreateOptions::default)
                .expect("keyspace");
        }
        let err = EmbeddedWideStore::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("older ecomflow"), "{err}");
        assert!(err.contains("--fresh"), "{err}");
    }
}
