//! The wide-column store on fjall: a few keyspaces per table
//! (`table:<name>` and its later generations, below), keyed by the row key
//! byte for byte, and **one value per row** holding all of the row's cells,
//! grouped by family (families by name, cells by qualifier within a
//! family).
//!
//! Scans read the same row ranges an HBase scan would and return only the
//! families asked for. A put merges its cells into what the row already
//! holds (a cell of the same family and qualifier is overwritten, the
//! others are kept), as HBase does; such puts are serialised so that two
//! writers never merge into the same row at once. Rows written whole
//! ([`WideColumnStore::put_whole_rows`]) skip the read.
//!
//! A session is one key here instead of one per cell (13, in three
//! families): the memtable, the journal and compaction see a thirteenth of
//! the keys. A row's value is a two-byte version mark, then lengths and
//! counts as varints, and each family and qualifier name that ecomflow's
//! own tables use as a one-byte reference to a fixed list ([`NAMES`])
//! instead of its text: 136 of a session row's bytes were names. Rows of
//! the two earlier encodings (names written out; four-byte lengths before
//! that) are still read.
//!
//! # Generations
//!
//! A table is a sequence of keyspaces, its **generations**: `table:<name>`,
//! then `table:<name>@1`, `table:<name>@2`, ... Writes go to the newest;
//! once [`GENERATION_BYTES`] of rows went into it, the next one is created.
//! Reads look at every generation, and where two hold the same row, the
//! newest wins: a get asks them newest first, a scan merges their ranges
//! in key order. Why: sessions' row keys (user, then time) are spread over
//! the whole key space, so in one growing tree every level-0 compaction
//! rewrites all of level 1 and the compaction work per event grows with
//! the table (docs/benchmarks.md). A generation is closed while small, and
//! a closed one is never compacted again: the work per event stays flat.

use crate::wide::{Cell, CellRef, Row, RowMutation, RowRef, WideColumnStore};
use crate::{Result, StoreError};
use fjall::{Keyspace, PersistMode};
use stage::fsio::Durability;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A table: its generations (oldest first, never empty) and families.
#[derive(Clone)]
struct Table {
    generations: Vec<Keyspace>,
    families: Vec<String>,
    /// Bytes (keys and values) in the newest generation: what it held on
    /// disk when the store was opened, plus what was written since.
    written: Arc<AtomicU64>,
}

impl Table {
    /// The generation writes go to.
    fn newest(&self) -> &Keyspace {
        // `ensure_table` always creates generation 0.
        &self.generations[self.generations.len() - 1]
    }

    /// A row's stored value: the newest generation's that has it.
    fn get(&self, key: &[u8]) -> Result<Option<fjall::Slice>> {
        for g in self.generations.iter().rev() {
            if let Some(v) = g.get(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// How many bytes of rows a table's newest generation takes before the next
/// one is started (see "Generations" above). Level 1 of a generation then stays
/// within about one compaction's reach (fjall's level 1 holds
/// [`crate::L0_TABLES`] tables of 64 MiB), and a user's sessions, spread
/// over the default 90-day replay's 620 MiB of them, are in three
/// generations.
/// Smaller generations compact less but give a read more of them to
/// merge: at 80 MiB (no generation ever compacted) ingest alone took 0.81
/// of the CPU, and a user's last ten sessions took four times as long
/// (`ecomflow bench`: median 551 against 139 us); at 112 MiB, 0.87-0.97 of
/// the CPU for a median of 164 us (docs/benchmarks.md, "Generations of the
/// wide-column store").
pub const GENERATION_BYTES: u64 = 256 << 20;

/// The embedded wide-column store.
pub struct EmbeddedWideStore {
    path: PathBuf,
    tables: RwLock<HashMap<String, Table>>,
    /// Puts that read, merge and write: one at a time.
    writer: Mutex<()>,
    /// What [`WideColumnStore::sync`] does.
    durability: Durability,
    /// [`GENERATION_BYTES`], or less in tests.
    generation_bytes: u64,
    /// Whether the generations it creates compress their blocks.
    compress: bool,
    /// Last: dropped after the keyspaces in `tables` ([`crate::Db`]).
    db: crate::Db,
}

/// The keyspace of a table's generation `g` (generation 0 keeps the name
/// tables had before there were generations).
fn keyspace_name(table: &str, g: u32) -> String {
    match g {
        0 => format!("table:{table}"),
        g => format!("table:{table}@{g}"),
    }
}

/// The generation a keyspace name is of `table`, if it is one.
fn generation_of(table: &str, keyspace: &str) -> Option<u32> {
    let rest = keyspace.strip_prefix("table:")?.strip_prefix(table)?;
    match rest.strip_prefix('@') {
        None if rest.is_empty() => Some(0),
        Some(g) if !g.starts_with('0') && g.bytes().all(|b| b.is_ascii_digit()) => g.parse().ok(),
        _ => None,
    }
}

/// A row's cells: families sorted by name, each with its cells sorted by
/// qualifier.
type RowCells = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

/// The first byte of a row of the second and third encodings. Rows of the
/// first encoding start with the four-byte length of
/// their first family's name, whose first byte is below this: family names
/// are shorter than 255 bytes ([`WideColumnStore::ensure_table`] refuses
/// longer ones).
const ROW_V2: u8 = 0xff;

/// The first two bytes of a row in the current (third) encoding. A row of
/// the second starts with [`ROW_V2`] and its first family's name length,
/// which is never 0: [`WideColumnStore::ensure_table`] refuses empty family
/// names (as HBase does).
const ROW_V3: [u8; 2] = [ROW_V2, 0];

/// Family and qualifier names the current encoding writes as a reference
/// (`2 * index + 1`) instead of as text (`2 * length`, then the bytes):
/// those of the tables ecomflow writes (the `sessions` module). Stored rows
/// refer to these by position, so the list only ever grows at its end;
/// `the_name_list_only_grows_at_its_end` pins it.
pub const NAMES: [&str; 21] = [
    "session_info",
    "device_info",
    "behavior",
    "session_id",
    "start_time",
    "duration",
    "referrer",
    "type",
    "os",
    "browser",
    "city",
    "state",
    "ip",
    "conversion_status",
    "viewed_products",
    "cart_contents",
    "views",
    "cart_adds",
    "purchases",
    "count",
    "next",
];

fn put_len(out: &mut Vec<u8>, n: usize) {
    schemas::codec::put_u64(out, n as u64);
}

/// A family or qualifier name in the current encoding: a reference to
/// [`NAMES`] when it is there, else its length (doubled) and its bytes.
fn put_name(out: &mut Vec<u8>, name: &[u8]) {
    match NAMES.iter().position(|n| n.as_bytes() == name) {
        Some(i) => put_len(out, 2 * i + 1),
        None => {
            put_len(out, 2 * name.len());
            out.extend_from_slice(name);
        }
    }
}

/// [`ROW_V3`], then per family `(name, cell count)` and per cell
/// `(qualifier, length, value)`, every length and count a varint
/// ([`schemas::codec`]) and every name as [`put_name`] writes it. A
/// session's row is 160-odd bytes smaller than with its names written out
/// (and those were a sixth smaller than with the four-byte lengths of the
/// first encoding).
fn encode_row(row: &RowCells) -> Vec<u8> {
    let cells: Vec<(&str, &[u8], &[u8])> = row
        .iter()
        .flat_map(|(f, cells)| {
            cells
                .iter()
                .map(move |(q, v)| (f.as_str(), q.as_slice(), v.as_slice()))
        })
        .collect();
    encode_refs(&cells)
}

/// A write's cells of one row, borrowed, in the order they were given.
type CellRefs<'a> = Vec<CellRef<'a>>;

/// Sorts a write's cells by family and qualifier, keeping the last of
/// cells named twice (as [`merge_cell`] replaces them). Cells already in
/// order, none named twice (a session's row), are left borrowed.
fn settle(cells: &mut Cow<'_, [CellRef<'_>]>) {
    if cells.is_sorted_by(|a, b| (a.0, a.1) < (b.0, b.1)) {
        return;
    }
    let cells = cells.to_mut();
    // Stable: of equal cells, the later one stays later.
    cells.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut keep: CellRefs<'_> = Vec::with_capacity(cells.len());
    for c in cells.drain(..) {
        match keep.last_mut() {
            Some(last) if (last.0, last.1) == (c.0, c.1) => *last = c,
            _ => keep.push(c),
        }
    }
    *cells = keep;
}

/// The encoding of [`encode_row`], from settled borrowed cells (sorted by
/// family and qualifier, none named twice).
fn encode_refs(cells: &[(&str, &[u8], &[u8])]) -> Vec<u8> {
    // At most: names written out, every varint 8 bytes.
    let len: usize = cells
        .iter()
        .map(|(f, q, v)| 24 + f.len() + q.len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(ROW_V3.len() + len);
    out.extend_from_slice(&ROW_V3);
    let mut rest = cells;
    while let Some(&(family, _, _)) = rest.first() {
        let n = rest.iter().take_while(|c| c.0 == family).count();
        put_name(&mut out, family.as_bytes());
        put_len(&mut out, n);
        for &(_, q, v) in &rest[..n] {
            put_name(&mut out, q);
            put_len(&mut out, v.len());
            out.extend_from_slice(v);
        }
        rest = &rest[n..];
    }
    out
}

fn decode_row(bytes: &[u8]) -> Result<RowCells> {
    match bytes {
        [0xff, 0, rest @ ..] => decode_row_v3(rest),
        [ROW_V2, rest @ ..] => decode_row_v2(rest),
        _ => decode_row_v1(bytes),
    }
}

type Decoder<'a> = schemas::codec::Decoder<'a>;

fn corrupt(e: schemas::codec::DecodeError) -> StoreError {
    StoreError::corrupt(format!("wide-column value: {e}"))
}

/// A row of the current encoding ([`encode_row`]), after [`ROW_V3`]: names
/// as [`put_name`] writes them.
fn decode_row_v3(bytes: &[u8]) -> Result<RowCells> {
    decode_varint_row(bytes, |d| {
        let n = d.u64().map_err(corrupt)?;
        if n % 2 == 1 {
            return usize::try_from(n / 2)
                .ok()
                .and_then(|i| NAMES.get(i))
                .map(|name| name.as_bytes().to_vec())
                .ok_or_else(|| {
                    StoreError::corrupt(format!("wide-column value: no name number {}", n / 2))
                });
        }
        // `raw` checks the length against what is left.
        let len = usize::try_from(n / 2)
            .map_err(|_| StoreError::corrupt("wide-column value: name too long"))?;
        Ok(d.raw(len).map_err(corrupt)?.to_vec())
    })
}

/// A row of the second encoding (names written out: length, then bytes),
/// after its first byte.
fn decode_row_v2(bytes: &[u8]) -> Result<RowCells> {
    decode_varint_row(bytes, |d| {
        let n = d.count().map_err(corrupt)?;
        Ok(d.raw(n).map_err(corrupt)?.to_vec())
    })
}

/// A row of the second or third encoding, after its mark: per family its
/// name (read by `name`) and cell count, per cell its qualifier (`name`)
/// and value, lengths and counts as varints.
fn decode_varint_row(
    bytes: &[u8],
    name: impl Fn(&mut Decoder<'_>) -> Result<Vec<u8>>,
) -> Result<RowCells> {
    let mut d = Decoder::new(bytes);
    let mut out = Vec::new();
    while !d.done() {
        let family = family_name(&name(&mut d)?)?;
        let n = d.count().map_err(corrupt)?;
        let mut cells = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let q = name(&mut d)?;
            let len = d.count().map_err(corrupt)?;
            let v = d.raw(len).map_err(corrupt)?.to_vec();
            cells.push((q, v));
        }
        out.push((family, cells));
    }
    Ok(out)
}

fn family_name(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| StoreError::corrupt("wide-column value: family is not UTF-8"))
}

/// A row of the first encoding: lengths and counts as four bytes, little
/// endian.
fn decode_row_v1(mut bytes: &[u8]) -> Result<RowCells> {
    let corrupt = || StoreError::corrupt("wide-column value: truncated row");
    fn len(bytes: &mut &[u8], corrupt: &dyn Fn() -> StoreError) -> Result<usize> {
        let n = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(corrupt)? as usize;
        *bytes = &bytes[4..];
        Ok(n)
    }
    fn part<'a>(bytes: &mut &'a [u8], corrupt: &dyn Fn() -> StoreError) -> Result<&'a [u8]> {
        let n = len(bytes, corrupt)?;
        let p = bytes.get(..n).ok_or_else(corrupt)?;
        *bytes = &bytes[n..];
        Ok(p)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let family = family_name(part(&mut bytes, &corrupt)?)?;
        let n = len(&mut bytes, &corrupt)?;
        let mut cells = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let q = part(&mut bytes, &corrupt)?.to_vec();
            let v = part(&mut bytes, &corrupt)?.to_vec();
            cells.push((q, v));
        }
        out.push((family, cells));
    }
    Ok(out)
}

/// Puts `family:q = v` into `row`, replacing a cell of the same family and
/// qualifier, keeping the order.
fn merge_cell(row: &mut RowCells, family: &str, q: &[u8], v: &[u8]) {
    let fi = match row.binary_search_by(|(f, _)| f.as_str().cmp(family)) {
        Ok(i) => i,
        Err(i) => {
            row.insert(i, (family.to_string(), Vec::new()));
            i
        }
    };
    let cells = &mut row[fi].1;
    match cells.binary_search_by(|(have, _)| have.as_slice().cmp(q)) {
        Ok(i) => cells[i].1 = v.to_vec(),
        Err(i) => cells.insert(i, (q.to_vec(), v.to_vec())),
    }
}

impl EmbeddedWideStore {
    /// Opens (or creates) the store in `path`, durable on a process crash.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Durability::Process)
    }

    /// Opens (or creates) the store in `path`; with [`Durability::Machine`]
    /// [`WideColumnStore::sync`] syncs the journal.
    ///
    /// A store written by an older ecomflow (one key per cell, keyspaces
    /// named `<table>__<family>`) is refused with a message saying how to
    /// start over, rather than read as empty.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self> {
        Self::open_compressed(path, durability, false)
    }

    /// [`EmbeddedWideStore::open_with`]; with `compress`, the generations
    /// it creates compress their blocks ([`crate::keyspace_options`]).
    pub fn open_compressed(path: &Path, durability: Durability, compress: bool) -> Result<Self> {
        let db = crate::open_fjall(path)?;
        if let Some(old) = db
            .list_keyspace_names()
            .iter()
            .find(|n| !n.starts_with("table:"))
        {
            return Err(StoreError::Layout(format!(
                "the wide-column store in {} was written by an older ecomflow \
                 (keyspace {:?}); start over with --fresh or use another --data-dir",
                path.display(),
                &**old
            )));
        }
        Ok(EmbeddedWideStore {
            path: path.to_path_buf(),
            db,
            tables: RwLock::new(HashMap::new()),
            writer: Mutex::new(()),
            durability,
            generation_bytes: GENERATION_BYTES,
            compress,
        })
    }

    /// Starts a table's next generation once `bytes` of rows went into its
    /// newest instead of [`GENERATION_BYTES`] (tests use a few bytes to get
    /// many generations).
    pub fn with_generation_bytes(mut self, bytes: u64) -> Self {
        self.generation_bytes = bytes;
        self
    }

    fn table(&self, table: &str) -> Result<Table> {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        tables
            .get(table)
            .cloned()
            .ok_or_else(|| StoreError::Unknown(table.to_string()))
    }

    fn write(&self, table: &str, mutations: &[RowMutation], merge: Merge) -> Result<()> {
        let cells: Vec<CellRefs<'_>> = mutations
            .iter()
            .map(|m| {
                m.cells
                    .iter()
                    .map(|c| (&*c.family, &*c.qualifier, c.value.as_slice()))
                    .collect()
            })
            .collect();
        let rows: Vec<RowRef<'_>> = mutations
            .iter()
            .zip(&cells)
            .map(|(m, c)| RowRef {
                row: &m.row,
                cells: c,
            })
            .collect();
        self.write_refs(table, &rows, merge)
    }

    fn write_refs(&self, table: &str, rows: &[RowRef<'_>], merge: Merge) -> Result<()> {
        // Reading, merging and writing a row is one step for the writers;
        // the generations are read under the lock, so a merge always sees
        // the generation the previous merge wrote to.
        let _w = matches!(merge, Merge::WithStored)
            .then(|| self.writer.lock().unwrap_or_else(|e| e.into_inner()));
        let t = self.table(table)?;
        // Each family is looked up in the table's once in a run of cells
        // naming it (a session's 13 cells name 3 families).
        let mut known: Option<&str> = None;
        for &(family, _, _) in rows.iter().flat_map(|r| r.cells) {
            if known != Some(family) {
                if !t.families.iter().any(|f| f == family) {
                    return Err(StoreError::Unknown(format!("{table}:{family}")));
                }
                known = Some(family);
            }
        }
        // Row -> the cells this put writes, in order: borrowed from the
        // caller unless the row is written twice in the put. Sorted by row
        // (stable, so a row's cells keep the order they were given in),
        // then each row's later cells joined to its first.
        let mut touched: Vec<(&[u8], Cow<'_, [CellRef<'_>]>)> = rows
            .iter()
            .map(|r| (r.row, Cow::Borrowed(r.cells)))
            .collect();
        touched.sort_by(|a, b| a.0.cmp(b.0));
        touched.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1.to_mut().extend_from_slice(&later.1);
            }
            same
        });
        let mut out = Vec::with_capacity(touched.len());
        let mut bytes = 0;
        for (key, mut new) in touched {
            settle(&mut new);
            let stored = match merge {
                Merge::WithStored => t.get(key)?,
                Merge::InBatchOnly => None,
            };
            let value = match stored {
                None => encode_refs(&new),
                Some(old) => {
                    let mut row = decode_row(&old)?;
                    for &(f, q, v) in new.iter() {
                        merge_cell(&mut row, f, q, v);
                    }
                    encode_row(&row)
                }
            };
            bytes += (key.len() + value.len()) as u64;
            out.push((key, value));
        }
        crate::put_rows(&self.db, t.newest(), out)?;
        if t.written.fetch_add(bytes, Ordering::Relaxed) + bytes >= self.generation_bytes {
            self.start_generation(table, t.generations.len())?;
        }
        Ok(())
    }

    /// Starts generation `g` of `table` unless another writer already did.
    fn start_generation(&self, table: &str, g: usize) -> Result<()> {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        let t = tables
            .get_mut(table)
            .ok_or_else(|| StoreError::Unknown(table.to_string()))?;
        if t.generations.len() != g {
            return Ok(());
        }
        t.generations.push(self.generation(table, g)?);
        t.written = Arc::new(AtomicU64::new(0));
        tracing::debug!(table, generation = g, "Wide-column table: new generation.");
        Ok(())
    }

    /// Opens (or creates) generation `g` of `table`.
    fn generation(&self, table: &str, g: usize) -> Result<Keyspace> {
        let n = u32::try_from(g)
            .map_err(|_| StoreError::corrupt(format!("{table}: too many generations")))?;
        Ok(self.db.keyspace(&keyspace_name(table, n), || {
            crate::keyspace_options(self.compress)
        })?)
    }
}

/// A row as fjall gives it: key and value.
type KvPair = (fjall::Slice, fjall::Slice);

/// A scan's rows from every generation of a table, in key order; of a row
/// in several generations, the newest generation's.
struct Newest {
    /// Per generation, oldest first: its range and the row it is at.
    heads: Vec<(std::iter::Fuse<fjall::Iter>, Option<KvPair>)>,
}

impl Newest {
    fn new(generations: &[Keyspace], start: &[u8], stop: &[u8]) -> Self {
        let heads = generations
            .iter()
            .map(|g| {
                let iter = if stop.is_empty() {
                    g.range(start.to_vec()..)
                } else {
                    g.range(start.to_vec()..stop.to_vec())
                };
                (iter.fuse(), None)
            })
            .collect();
        Newest { heads }
    }
}

impl Iterator for Newest {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Self::Item> {
        // Fill the empty heads; an error ends the scan.
        for (iter, head) in &mut self.heads {
            if head.is_none() {
                match iter.next().map(|kv| kv.into_inner()) {
                    Some(Ok(kv)) => *head = Some(kv),
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {}
                }
            }
        }
        // The smallest key; of equal keys the newest generation's (the
        // last, as `<=` moves to it), and the others are passed over.
        let mut pick: Option<(usize, &fjall::Slice)> = None;
        for (i, (_, head)) in self.heads.iter().enumerate() {
            if let Some((k, _)) = head {
                if pick.is_none_or(|(_, best)| k <= best) {
                    pick = Some((i, k));
                }
            }
        }
        let (p, _) = pick?;
        let row = self.heads[p].1.take()?;
        for (_, head) in &mut self.heads {
            if head.as_ref().is_some_and(|(k, _)| *k == row.0) {
                *head = None;
            }
        }
        Some(Ok(row))
    }
}

/// Whether a write merges with what the store holds for the row.
#[derive(Clone, Copy)]
enum Merge {
    /// Read the row and keep the cells the write does not name.
    WithStored,
    /// The caller vouches the row holds nothing else
    /// ([`WideColumnStore::put_whole_rows`]).
    InBatchOnly,
}

impl WideColumnStore for EmbeddedWideStore {
    fn describe(&self) -> String {
        format!("embedded wide-column store at {}", self.path.display())
    }

    fn sync(&self) -> Result<()> {
        if self.durability == Durability::Machine {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn ensure_table(&self, table: &str, families: &[&str]) -> Result<()> {
        if let Some(f) = families
            .iter()
            .find(|f| f.is_empty() || f.len() >= usize::from(ROW_V2))
        {
            return Err(StoreError::Unknown(format!(
                "{table}:{f} (family names are 1 to 254 bytes)"
            )));
        }
        if table.contains('@') {
            return Err(StoreError::Unknown(format!(
                "{table} (table names cannot contain '@')"
            )));
        }
        // Generation 0, and the later ones there are, in order; a gap
        // would mean a lost keyspace, and the rows in it lost with it.
        let mut found: Vec<u32> = self
            .db
            .list_keyspace_names()
            .iter()
            .filter_map(|n| generation_of(table, n))
            .collect();
        found.sort_unstable();
        if found.iter().zip(0..).any(|(&g, i)| g != i) {
            return Err(StoreError::corrupt(format!(
                "{table}: generations {found:?} of {} are not 0, 1, 2, ...",
                self.path.display()
            )));
        }
        let count = found.len().max(1);
        let generations = (0..count)
            .map(|g| self.generation(table, g))
            .collect::<Result<Vec<_>>>()?;
        let written = generations.last().map_or(0, Keyspace::disk_space);
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                table.to_string(),
                Table {
                    written: Arc::new(AtomicU64::new(written)),
                    generations,
                    families: families.iter().map(|f| f.to_string()).collect(),
                },
            );
        Ok(())
    }

    fn put(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
        self.write(table, mutations, Merge::WithStored)
    }

    fn put_whole_rows(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
        self.write(table, mutations, Merge::InBatchOnly)
    }

    fn put_whole_rows_ref(&self, table: &str, rows: &[RowRef<'_>]) -> Result<()> {
        self.write_refs(table, rows, Merge::InBatchOnly)
    }

    fn scan(
        &self,
        table: &str,
        start: &[u8],
        stop: &[u8],
        families: &[&str],
        limit: usize,
    ) -> Result<Vec<Row>> {
        let t = self.table(table)?;
        if let Some(f) = families
            .iter()
            .find(|f| !t.families.iter().any(|h| h == *f))
        {
            return Err(StoreError::Unknown(format!("{table}:{f}")));
        }
        let mut rows = Vec::new();
        for kv in Newest::new(&t.generations, start, stop) {
            if rows.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            let mut stored = decode_row(&v)?;
            // Families in the order asked, cells by qualifier.
            let mut cells = Vec::new();
            for fam in families {
                if let Some(i) = stored.iter().position(|(f, _)| f == fam) {
                    let (f, fcells) = std::mem::take(&mut stored[i]);
                    cells.extend(fcells.into_iter().map(|(q, v)| Cell {
                        family: f.clone().into(),
                        qualifier: q.into(),
                        value: v,
                    }));
                }
            }
            // A row with none of the families asked for is not returned.
            if !cells.is_empty() {
                rows.push(Row {
                    key: k.to_vec(),
                    cells,
                });
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_cells_encode_as_the_merged_row_does() {
        // Cells out of order, a family split in two, a cell named twice.
        let given: Vec<(&str, &[u8], &[u8])> = vec![
            ("device", b"type", b"mobile"),
            ("behavior", b"status", b"browsed"),
            ("device", b"os", b"iOS"),
            ("behavior", b"duration", b"30"),
            ("device", b"type", b"desktop"),
        ];
        let mut row: RowCells = Vec::new();
        for &(f, q, v) in &given {
            merge_cell(&mut row, f, q, v);
        }
        let mut cells = Cow::Borrowed(&given[..]);
        settle(&mut cells);
        assert!(matches!(cells, Cow::Owned(_)), "out of order: sorted");
        assert_eq!(cells.len(), 4, "the type named twice: the later kept");
        assert_eq!(cells[3], ("device", &b"type"[..], &b"desktop"[..]));
        assert_eq!(encode_refs(&cells), encode_row(&row));
        assert_eq!(decode_row(&encode_refs(&cells)).expect("decode"), row);
        assert_eq!(encode_refs(&[]), ROW_V3.to_vec());
        assert!(decode_row(&ROW_V3).expect("empty").is_empty());
        assert!(decode_row(&[ROW_V2]).expect("empty").is_empty());
        // In order but a cell named twice: still one, the later.
        let twice: CellRefs<'_> = vec![
            ("behavior", b"duration", b"30"),
            ("device", b"os", b"iOS"),
            ("device", b"os", b"Android"),
        ];
        let mut twice = Cow::Borrowed(&twice[..]);
        settle(&mut twice);
        assert_eq!(
            twice.into_owned(),
            vec![
                ("behavior", &b"duration"[..], &b"30"[..]),
                ("device", &b"os"[..], &b"Android"[..]),
            ]
        );
    }

    #[test]
    fn rows_round_trip_and_merge_by_family_and_qualifier() {
        let mut row: RowCells = Vec::new();
        merge_cell(&mut row, "device", b"type", b"mobile");
        merge_cell(&mut row, "device", b"os", b"iOS");
        merge_cell(&mut row, "behavior", b"status", b"converted");
        merge_cell(&mut row, "device", b"type", b"desktop");
        assert_eq!(
            row,
            vec![
                (
                    "behavior".to_string(),
                    vec![(b"status".to_vec(), b"converted".to_vec())]
                ),
                (
                    "device".to_string(),
                    vec![
                        (b"os".to_vec(), b"iOS".to_vec()),
                        (b"type".to_vec(), b"desktop".to_vec())
                    ]
                ),
            ]
        );
        let bytes = encode_row(&row);
        // The version mark. "behavior" is name 2 (a reference, 5), with one
        // cell: "status" is no name of the list (written out: 12, then its
        // 6 bytes), "converted" 1 + 9 bytes. "device" is written out too
        // (12, then 6 bytes), with two cells: "os" is name 8 (17), "iOS"
        // 1 + 3 bytes; "type" is name 7 (15), "desktop" 1 + 7 bytes.
        assert_eq!(
            bytes,
            b"\xff\x00\x05\x01\x0cstatus\x09converted\x0cdevice\x02\x11\x03iOS\x0f\x07desktop"
        );
        assert_eq!(decode_row(&bytes).expect("decode"), row);
        assert!(decode_row(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_row(&[1, 0]).is_err());
        // A length past the end, a family that is not UTF-8, a name number
        // past the list's end (21: 2 * 21 + 1 = 43).
        assert!(decode_row(&[ROW_V2, 9, b'a']).is_err());
        assert!(decode_row(&[ROW_V2, 1, 0xc3, 0]).is_err());
        assert!(decode_row(&[0xff, 0, 18, b'a']).is_err());
        assert!(decode_row(&[0xff, 0, 2, 0xc3, 0]).is_err());
        assert!(decode_row(&[0xff, 0, 43, 0]).is_err());
        assert!(decode_row(&[0xff, 0, 41, 0]).is_ok(), "name 20 is the last");
    }

    /// A row of an earlier encoding, with its names written out: `head`,
    /// then per family its name and cell count and per cell its qualifier
    /// and value, each length written by `len`.
    fn encode_row_written_out(
        row: &RowCells,
        head: &[u8],
        len: fn(&mut Vec<u8>, usize),
    ) -> Vec<u8> {
        let mut out = head.to_vec();
        for (f, cells) in row {
            len(&mut out, f.len());
            out.extend_from_slice(f.as_bytes());
            len(&mut out, cells.len());
            for (q, v) in cells {
                len(&mut out, q.len());
                out.extend_from_slice(q);
                len(&mut out, v.len());
                out.extend_from_slice(v);
            }
        }
        out
    }

    /// The second encoding: a version byte, then names written out, every
    /// length a varint.
    fn encode_row_v2(row: &RowCells) -> Vec<u8> {
        encode_row_written_out(row, &[ROW_V2], put_len)
    }

    #[test]
    fn rows_of_the_second_encoding_are_read_as_before() {
        let row: RowCells = vec![
            (
                "behavior".to_string(),
                vec![(b"status".to_vec(), b"converted".to_vec())],
            ),
            (
                "device".to_string(),
                vec![
                    (b"os".to_vec(), b"iOS".to_vec()),
                    (b"type".to_vec(), b"desktop".to_vec()),
                ],
            ),
        ];
        let v2 = encode_row_v2(&row);
        // The version byte; families 1 + 8 + 1 and 1 + 6 + 1 bytes; cells
        // 1 + 6 + 1 + 9, 1 + 2 + 1 + 3, 1 + 4 + 1 + 7.
        assert_eq!(v2.len(), 1 + 10 + 8 + 17 + 7 + 13);
        assert_eq!(&v2[..11], b"\xff\x08behavior\x01");
        assert_eq!(decode_row(&v2).expect("v2"), row);
        assert!(encode_row(&row).len() < v2.len());
    }

    #[test]
    fn the_name_list_only_grows_at_its_end() {
        // Stored rows refer to names by position: these must never move.
        assert_eq!(NAMES[..3], crate::sessions::SESSION_FAMILIES);
        assert_eq!(NAMES[16..19], crate::sessions::DAILY_FAMILIES);
        assert_eq!(
            (NAMES[3], NAMES[12], NAMES[15], NAMES[19], NAMES[20]),
            ("session_id", "ip", "cart_contents", "count", "next")
        );
        let mut sorted = NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), NAMES.len(), "no name twice");
    }

    #[test]
    fn a_sessions_names_are_one_byte_each() {
        let s = schemas::Session {
            session_id: "sess_0000001".into(),
            user_id: "user_000042".into(),
            start_time: chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
                .and_then(|d| d.and_hms_opt(3, 4, 5))
                .expect("time"),
            duration_seconds: 61,
            referrer: "google".into(),
            device_info: schemas::DeviceInfo {
                device_type: schemas::DeviceType::Mobile,
                os: "iOS".into(),
                browser: "Safari".into(),
                city: "Austin".into(),
                state: "TX".into(),
                ip: "10.0.0.1".into(),
            },
            conversion_status: schemas::ConversionStatus::Browsed,
            viewed_products: vec!["prod_00001".into()],
            cart_contents: vec![],
        };
        let m = crate::sessions::session_mutation(&s);
        let cells: CellRefs<'_> = m
            .cells
            .iter()
            .map(|c| (&*c.family, &*c.qualifier, c.value.as_slice()))
            .collect();
        let mut cells = Cow::Borrowed(&cells[..]);
        settle(&mut cells);
        assert!(
            matches!(cells, Cow::Borrowed(_)),
            "a session's cells come sorted"
        );
        let values: usize = cells.iter().map(|c| 1 + c.2.len()).sum();
        // The mark, then 3 families of name and count, then 13 cells of
        // a name and their value (with its length).
        assert_eq!(encode_refs(&cells).len(), 2 + 3 * 2 + 13 + values);
    }

    /// The first encoding: lengths and counts as four bytes, little endian.
    fn encode_row_v1(row: &RowCells) -> Vec<u8> {
        encode_row_written_out(row, &[], |out, n| {
            out.extend_from_slice(&(n as u32).to_le_bytes())
        })
    }

    #[test]
    fn rows_of_the_first_encoding_are_read_and_merged_into_the_current_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old: RowCells = vec![
            (
                "behavior".to_string(),
                vec![(b"status".to_vec(), b"browsed".to_vec())],
            ),
            (
                "device".to_string(),
                vec![(b"os".to_vec(), b"iOS".to_vec())],
            ),
        ];
        let v1 = encode_row_v1(&old);
        assert_eq!(&v1[..5], b"\x08\0\0\0b");
        assert_eq!(decode_row(&v1).expect("v1"), old);
        let store = EmbeddedWideStore::open(dir.path()).expect("open");
        store
            .ensure_table("t", &["behavior", "device"])
            .expect("table");
        // What an older ecomflow wrote under the row.
        store
            .table("t")
            .expect("t")
            .newest()
            .insert("u1", v1)
            .expect("insert");
        let rows = store.scan("t", b"", b"", &["device"], 10).expect("scan");
        assert_eq!(rows[0].get("device", "os"), Some(&b"iOS"[..]));
        // A put merges into it and writes the current encoding.
        store
            .put(
                "t",
                &[RowMutation {
                    row: b"u1".to_vec(),
                    cells: vec![Cell::new("behavior", "status", "converted")],
                }],
            )
            .expect("put");
        let stored = store
            .table("t")
            .expect("t")
            .newest()
            .get("u1")
            .expect("get")
            .expect("row");
        assert_eq!(stored[..2], ROW_V3);
        let rows = store
            .scan("t", b"", b"", &["behavior", "device"], 10)
            .expect("scan");
        assert_eq!(rows[0].get("behavior", "status"), Some(&b"converted"[..]));
        assert_eq!(rows[0].get("device", "os"), Some(&b"iOS"[..]));
        // Family names the first byte could be mistaken for: refused.
        let long = "f".repeat(255);
        assert!(store.ensure_table("u", &[long.as_str()]).is_err());
        assert!(store.ensure_table("u", &[&long[..254]]).is_ok());
        // And an empty one, which the current encoding's mark relies on.
        assert!(store.ensure_table("e", &[""]).is_err());
    }

    #[test]
    fn closing_flushes_the_memtables_so_the_next_open_skips_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let row = RowMutation {
            row: b"u1".to_vec(),
            cells: vec![Cell::new("behavior", "status", "converted")],
        };
        {
            let store = EmbeddedWideStore::open(dir.path()).expect("open");
            store.ensure_table("t", &["behavior"]).expect("table");
            store.put("t", std::slice::from_ref(&row)).expect("put");
        }
        // Every entry was in a table, and the store let go of its
        // keyspaces before the database: the journal is emptied.
        assert_eq!(crate::journal_bytes(dir.path()), 0);
        {
            // Under the store: the row is in a table, not in a memtable
            // rebuilt from the journal.
            let db = crate::open_fjall(dir.path()).expect("reopen");
            let ks = db
                .keyspace(
                    &keyspace_name("t", 0),
                    fjall::KeyspaceCreateOptions::default,
                )
                .expect("keyspace");
            assert_eq!(ks.table_count(), 1);
            assert_eq!(ks.len().expect("len"), 1);
        }
        // Closing a store with nothing new writes no table.
        drop(EmbeddedWideStore::open(dir.path()).expect("open"));
        {
            let db = crate::open_fjall(dir.path()).expect("reopen");
            let ks = db
                .keyspace(
                    &keyspace_name("t", 0),
                    fjall::KeyspaceCreateOptions::default,
                )
                .expect("keyspace");
            assert_eq!(ks.table_count(), 1);
        }
        let store = EmbeddedWideStore::open(dir.path()).expect("open");
        store.ensure_table("t", &["behavior"]).expect("table");
        let rows = store.scan("t", b"", b"", &["behavior"], 10).expect("scan");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get("behavior", "status"), Some(&b"converted"[..]));
    }

    /// With `compress` the tables' blocks are lz4'd, whatever their level:
    /// the same 2,000 rows of repeated text take a fraction of the disk,
    /// and read back the same after a reopen.
    #[test]
    fn a_compressed_store_writes_smaller_tables_and_reads_the_same_rows() {
        let rows: Vec<RowMutation> = (0..2000)
            .map(|i| RowMutation {
                row: format!("user_{i:06}").into_bytes(),
                cells: vec![Cell::new(
                    "behavior",
                    "status",
                    format!(
                        "converted after viewing prod_{:05} {}",
                        i % 7,
                        "and more ".repeat(20)
                    ),
                )],
            })
            .collect();
        let mut sizes = Vec::new();
        for compress in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            {
                let store =
                    EmbeddedWideStore::open_compressed(dir.path(), Durability::Process, compress)
                        .expect("open");
                store.ensure_table("t", &["behavior"]).expect("table");
                store.put_whole_rows("t", &rows).expect("put");
            }
            // Closing flushed the memtable to a level-0 table.
            let tables = dir.path().join("keyspaces");
            let mut bytes = 0u64;
            for ks in std::fs::read_dir(&tables).expect("keyspaces") {
                let t = ks.expect("entry").path().join("tables");
                for f in std::fs::read_dir(&t).into_iter().flatten() {
                    bytes += f.expect("table").metadata().expect("meta").len();
                }
            }
            sizes.push(bytes);
            // Opened again without the flag: the keyspace keeps its options.
            let store = EmbeddedWideStore::open(dir.path()).expect("reopen");
            store.ensure_table("t", &["behavior"]).expect("table");
            let got = store
                .scan("t", b"", b"", &["behavior"], 5000)
                .expect("scan");
            assert_eq!(got.len(), 2000);
            assert_eq!(
                got[1999].get("behavior", "status"),
                rows[1999].cells[0].value.as_slice().into()
            );
        }
        assert!(sizes[1] * 4 < sizes[0], "tables of {sizes:?} bytes");
    }

    #[test]
    fn generations_are_named_after_their_table() {
        assert_eq!(keyspace_name("t", 0), "table:t");
        assert_eq!(keyspace_name("t", 12), "table:t@12");
        assert_eq!(generation_of("t", "table:t"), Some(0));
        assert_eq!(generation_of("t", "table:t@12"), Some(12));
        assert_eq!(generation_of("user", "table:user@1"), Some(1));
        // Another table's, or not a generation's name.
        assert_eq!(generation_of("user", "table:user_sessions"), None);
        assert_eq!(generation_of("user_sessions", "table:user@1"), None);
        assert_eq!(generation_of("t", "table:t@"), None);
        assert_eq!(generation_of("t", "table:t@01"), None);
        assert_eq!(generation_of("t", "table:t@1x"), None);
        assert_eq!(generation_of("t", "t"), None);
    }

    fn put_row(store: &EmbeddedWideStore, key: &str, cells: &[(&str, &str, &str)], whole: bool) {
        let m = [RowMutation {
            row: key.as_bytes().to_vec(),
            cells: cells.iter().map(|&(f, q, v)| Cell::new(f, q, v)).collect(),
        }];
        if whole {
            store.put_whole_rows("t", &m).expect("put whole");
        } else {
            store.put("t", &m).expect("put");
        }
    }

    /// `(row, family:qualifier=value, ...)` of a scan, to compare at a glance.
    fn scan_text(store: &EmbeddedWideStore, start: &str, stop: &str, limit: usize) -> Vec<String> {
        let rows = store
            .scan("t", start.as_bytes(), stop.as_bytes(), &["a", "b"], limit)
            .expect("scan");
        rows.iter()
            .map(|r| {
                let cells: Vec<String> = r
                    .cells
                    .iter()
                    .map(|c| {
                        let q = String::from_utf8_lossy(&c.qualifier);
                        let v = String::from_utf8_lossy(&c.value);
                        format!("{}:{q}={v}", c.family)
                    })
                    .collect();
                format!("{} {}", String::from_utf8_lossy(&r.key), cells.join(" "))
            })
            .collect()
    }

    #[test]
    fn a_table_spreads_over_generations_and_reads_see_each_rows_newest_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let want = vec![
            "r1 a:x=1".to_string(),
            "r2 a:x=2 b:y=20".to_string(),
            "r3 a:x=3-again".to_string(),
            "r4 a:x=4".to_string(),
            "r5 a:x=5".to_string(),
        ];
        {
            // One byte per generation: every write starts the next one.
            let store = EmbeddedWideStore::open(dir.path())
                .expect("open")
                .with_generation_bytes(1);
            store.ensure_table("t", &["a", "b"]).expect("table");
            // Written out of key order, one generation each (0 to 4).
            for (k, v) in [
                ("r3", "3"),
                ("r1", "1"),
                ("r5", "5"),
                ("r2", "2"),
                ("r4", "4"),
            ] {
                put_row(&store, k, &[("a", "x", v)], true);
            }
            // r3 again, whole, in generation 5; a cell merged into r2 (in
            // generation 3), written with the rest of r2 to generation 6.
            put_row(&store, "r3", &[("a", "x", "3-again")], true);
            put_row(&store, "r2", &[("b", "y", "20")], false);
            assert_eq!(store.table("t").expect("t").generations.len(), 8);
            assert_eq!(scan_text(&store, "", "", 10), want);
            // Limits and ranges count rows, not copies.
            assert_eq!(scan_text(&store, "", "", 2), want[..2]);
            assert_eq!(scan_text(&store, "r2", "r4", 10), want[1..3]);
            assert_eq!(scan_text(&store, "r3", "", 1), want[2..3]);
            // r3's first copy is still in generation 0, unread.
            let t = store.table("t").expect("t");
            let old = t.generations[0].get("r3").expect("get").expect("r3");
            assert_eq!(decode_row(&old).expect("row")[0].1[0].1, b"3");
        }
        // Reopened (with the usual threshold): the same generations, the
        // same rows, and writes go on into the newest.
        let store = EmbeddedWideStore::open(dir.path()).expect("open");
        store.ensure_table("t", &["a", "b"]).expect("table");
        assert_eq!(store.table("t").expect("t").generations.len(), 8);
        assert_eq!(scan_text(&store, "", "", 10), want);
        put_row(&store, "r1", &[("b", "y", "10")], false);
        assert_eq!(store.table("t").expect("t").generations.len(), 8);
        assert_eq!(scan_text(&store, "r1", "r2", 10), vec!["r1 a:x=1 b:y=10"]);
        drop(store);
        // A missing generation is refused, not read past.
        {
            let db = crate::open_fjall(dir.path()).expect("open");
            db.keyspace(&keyspace_name("t", 9), || crate::keyspace_options(false))
                .expect("keyspace");
        }
        let store = EmbeddedWideStore::open(dir.path()).expect("open");
        let err = store.ensure_table("t", &["a", "b"]).expect_err("gap");
        assert!(err.to_string().contains("not 0, 1, 2"), "{err}");
        assert!(store.ensure_table("t@1", &["a"]).is_err());
    }

    #[test]
    fn a_store_of_the_old_layout_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = crate::open_fjall(dir.path()).expect("open");
            db.keyspace(
                "user_sessions__behavior",
                fjall::KeyspaceCreateOptions::default,
            )
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
