//! The wide-column store on fjall: one keyspace per table and family
//! (`<table>__<family>`), each cell stored under `row NUL qualifier`.
//!
//! Keys are the row keys byte for byte, so scans read the same ranges an
//! HBase scan would. Row keys must not contain NUL (ours are ASCII).

use crate::wide::{Cell, Row, RowMutation, WideColumnStore};
use crate::{Result, StoreError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The embedded wide-column store.
pub struct EmbeddedWideStore {
    path: PathBuf,
    db: Database,
    tables: RwLock<HashMap<String, Vec<(String, Keyspace)>>>,
}

fn keyspace_name(table: &str, family: &str) -> String {
    format!("{table}__{family}")
}

impl EmbeddedWideStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(EmbeddedWideStore {
            path: path.to_path_buf(),
            db: crate::open_fjall(path)?,
            tables: RwLock::new(HashMap::new()),
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
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        for m in mutations {
            for c in &m.cells {
                let (_, ks) = families
                    .iter()
                    .find(|(f, _)| *f == c.family)
                    .ok_or_else(|| StoreError::Unknown(format!("{table}:{}", c.family)))?;
                let mut key = Vec::with_capacity(m.row.len() + 1 + c.qualifier.len());
                key.extend_from_slice(&m.row);
                key.push(0);
                key.extend_from_slice(&c.qualifier);
                batch.insert(ks, key, c.value.as_slice());
            }
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
            let mut distinct = 0usize;
            let mut last_row: Option<Vec<u8>> = None;
            for kv in iter {
                let (k, v) = kv.into_inner()?;
                let split = k
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or_else(|| StoreError::corrupt("cell key without separator"))?;
                let row = &k[..split];
                if last_row.as_deref() != Some(row) {
                    distinct += 1;
                    if distinct > limit {
                        break;
                    }
                    last_row = Some(row.to_vec());
                }
                rows.entry(row.to_vec()).or_default().push(Cell {
                    family: fam.to_string(),
                    qualifier: k[split + 1..].to_vec(),
                    value: v.to_vec(),
                });
            }
        }
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|(key, cells)| Row { key, cells })
            .collect())
    }
}
