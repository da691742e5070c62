//! Snapshots of the stores as Parquet, partitioned by day and written
//! incrementally.
//!
//! Layout under the snapshot directory:
//!
//! ```text
//! transactions/date=YYYY-MM-DD/part-0.parquet   one file per day
//! sessions/date=YYYY-MM-DD/part-0.parquet       one file per day
//! users/part-0.parquet                          whole table, every night
//! products/part-0.parquet                       whole table, every night
//! categories/part-0.parquet                     whole table, every night
//! dead_letters/part-0.parquet                   whole table, every night
//! _snapshot.json                                which days are written
//! ```
//!
//! A day is written once it is *complete* (a later day exists in the
//! stores, or the caller says so with `through`), and never rewritten after
//! that; the newest day, which may still be receiving events, is written
//! but marked open, and rewritten by the next run. Rows are sorted by time
//! and id and the writer settings are fixed, so the same data always gives
//! the same bytes: two nights give exactly the files of one full run.
//!
//! Every file is plain Parquet (zstd, nested lists for items, views and
//! carts) that pandas, DuckDB or Spark open as they are.

use crate::{BatchError, Result};
use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use schemas::{Category, DeadLetter, Product, Session, Transaction, User};
use serde::{Deserialize, Serialize};
use stage::fsio::{self, Durability};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stores::{DocumentStore, SessionStore};

/// Name of the manifest file in the snapshot directory.
pub const MANIFEST: &str = "_snapshot.json";
/// Tables partitioned by day.
pub const DAILY_TABLES: [&str; 2] = ["transactions", "sessions"];
/// Tables rewritten whole every night.
pub const WHOLE_TABLES: [&str; 4] = ["users", "products", "categories", "dead_letters"];

/// One written day partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayEntry {
    /// Rows in the partition.
    pub rows: u64,
    /// Whether the day is final (never rewritten again).
    pub complete: bool,
    /// Size of the file in bytes (0 in manifests of older versions, whose
    /// days are rewritten once to record it).
    #[serde(default)]
    pub bytes: u64,
    /// SHA-256 of the file, in hex (as `sha256sum` prints it).
    #[serde(default)]
    pub sha256: String,
}

/// How closely [`snapshot`] checks the day partitions it would skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The file is there, with the size and row count the manifest
    /// records (a stat and the Parquet footer per file).
    Quick,
    /// That, and its SHA-256 (reads every file).
    Full,
}

/// One whole table's file, rewritten every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WholeEntry {
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, in hex.
    pub sha256: String,
}

/// What has been written so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Table → day → entry.
    pub days: BTreeMap<String, BTreeMap<NaiveDate, DayEntry>>,
    /// Whole table → its file (absent in manifests of older versions: the
    /// next run records them).
    #[serde(default)]
    pub whole: BTreeMap<String, WholeEntry>,
    /// A run is under way, or stopped (failed, cancelled, killed) before it
    /// wrote the whole tables: the snapshot mixes two runs' data and is not
    /// queried until a run finishes.
    #[serde(default)]
    pub partial: bool,
}

impl Manifest {
    /// Reads the manifest of `dir` (empty when there is none yet).
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BatchError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(BatchError::io(&path, e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| BatchError::Corrupt(format!("manifest: {e}")))?;
        write_atomic(&dir.join(MANIFEST), &bytes)
    }

    /// The last day written as complete for `table`, if any.
    pub fn last_complete(&self, table: &str) -> Option<NaiveDate> {
        self.days
            .get(table)?
            .iter()
            .rev()
            .find(|(_, e)| e.complete)
            .map(|(d, _)| *d)
    }
}

/// What one snapshot run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotStats {
    /// Day partitions written (table, day, rows).
    pub written: Vec<(String, NaiveDate, u64)>,
    /// Day partitions already complete and left alone.
    pub skipped: u64,
    /// Complete days whose file did not match the manifest, written again
    /// (table, day, what was wrong).
    pub repaired: Vec<(String, NaiveDate, String)>,
    /// Rows written to the whole tables.
    pub whole_rows: u64,
    /// Last day included.
    pub through: Option<NaiveDate>,
}

/// Snapshots the stores into `dir`, checking every complete day it skips
/// fully ([`Check::Full`]). Days after `through` are left for a later run;
/// `None` takes everything stored, the newest day left open.
pub fn snapshot(
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    dir: &Path,
    through: Option<NaiveDate>,
) -> Result<SnapshotStats> {
    snapshot_checked(docs, sessions, dir, through, Check::Full)
}

/// What is wrong with the file of a written day, if anything.
fn day_problem(path: &Path, entry: &DayEntry, check: Check) -> Result<Option<String>> {
    file_problem(path, entry.rows, entry.bytes, &entry.sha256, check)
}

/// What is wrong with a snapshot file that should have `rows` rows,
/// `bytes` bytes and the SHA-256 `sha256`, if anything.
fn file_problem(
    path: &Path,
    rows: u64,
    bytes: u64,
    sha256: &str,
    check: Check,
) -> Result<Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some("missing".into())),
        Err(e) => return Err(BatchError::io(path, e)),
    };
    if sha256.is_empty() {
        return Ok(Some(
            "no size or checksum in the manifest (older version)".into(),
        ));
    }
    if meta.len() != bytes {
        return Ok(Some(format!(
            "{} bytes, the manifest says {bytes}",
            meta.len(),
        )));
    }
    match parquet_rows(path) {
        Ok(found) if found == rows => {}
        Ok(found) => return Ok(Some(format!("{found} rows, the manifest says {rows}"))),
        Err(e) => return Ok(Some(format!("not readable as Parquet: {e}"))),
    }
    if check == Check::Full && file_sha256(path)? != sha256 {
        return Ok(Some("checksum differs from the manifest's".into()));
    }
    Ok(None)
}

/// Rows in a Parquet file, from its footer.
fn parquet_rows(path: &Path) -> Result<u64> {
    let file = std::fs::File::open(path).map_err(|e| BatchError::io(path, e))?;
    let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file)?;
    use datafusion::parquet::file::reader::FileReader;
    let rows = reader.metadata().file_metadata().num_rows();
    u64::try_from(rows).map_err(|_| BatchError::Corrupt(format!("{}: {rows} rows", path.display())))
}

/// SHA-256 of a file, in hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| BatchError::io(path, e))?;
    let mut hashing = Hashing::new(std::io::sink());
    std::io::copy(&mut file, &mut hashing).map_err(|e| BatchError::io(path, e))?;
    Ok(hashing.finish().1)
}

/// A writer that passes bytes through and takes their SHA-256 and count on
/// the way, so a file written through it needs no second read.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        use sha2::Digest;
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer and the hex digest.
    fn finish(self) -> (W, String) {
        use sha2::Digest;
        let hex = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.inner, hex)
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.bytes += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks the snapshot in `dir` against its manifest: every recorded day's
/// file is present with its size, row count and (with [`Check::Full`])
/// checksum, and no other Parquet file lies in the daily tables' folders
/// (a query would count it). Returns what is wrong, empty when nothing.
///
/// The whole tables are checked the same way, and a snapshot whose last
/// run did not finish ([`Manifest::partial`]) is a problem in itself.
pub fn verify(dir: &Path, check: Check) -> Result<Vec<String>> {
    let manifest = Manifest::load(dir)?;
    let mut problems = Vec::new();
    if manifest.partial {
        problems.push(format!(
            "{}: partial: a batch is writing it now, or the last one stopped before it finished",
            dir.display()
        ));
    }
    for (table, days) in &manifest.days {
        for (day, entry) in days {
            let path = day_path(dir, table, *day);
            if let Some(p) = day_problem(&path, entry, check)? {
                problems.push(format!("{}: {p}", path.display()));
            }
        }
    }
    for table in WHOLE_TABLES {
        let path = whole_path(dir, table);
        match manifest.whole.get(table) {
            Some(e) => {
                if let Some(p) = file_problem(&path, e.rows, e.bytes, &e.sha256, check)? {
                    problems.push(format!("{}: {p}", path.display()));
                }
            }
            None if !manifest.partial => problems.push(format!(
                "{}: not in the manifest (written by an older ecomflow)",
                path.display()
            )),
            None => {}
        }
    }
    problems.extend(foreign_files(dir, &manifest)?);
    Ok(problems)
}

/// Parquet files in the daily tables' folders that `manifest` does not
/// list (a query would count them).
fn foreign_files(dir: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for table in DAILY_TABLES {
        let expected: std::collections::BTreeSet<PathBuf> = manifest
            .days
            .get(table)
            .map(|d| d.keys().map(|day| day_path(dir, table, *day)).collect())
            .unwrap_or_default();
        for path in parquet_files_under(&dir.join(table))? {
            if !expected.contains(&path) {
                problems.push(format!(
                    "{}: not written by the batch (not in {MANIFEST})",
                    path.display()
                ));
            }
        }
    }
    Ok(problems)
}

/// Every `.parquet` file below `root` (none if it does not exist).
fn parquet_files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BatchError::io(&d, e)),
        };
        for e in entries {
            let path = e.map_err(|e| BatchError::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// [`snapshot`], checking the complete days it would skip as `check` says;
/// a day whose file is missing, truncated or changed is written again from
/// the stores (and said in [`SnapshotStats::repaired`]). Afterwards the
/// snapshot must match its manifest, or this fails rather than let the
/// analytics count a partial or foreign file.
pub fn snapshot_checked(
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    dir: &Path,
    through: Option<NaiveDate>,
    check: Check,
) -> Result<SnapshotStats> {
    snapshot_cancellable(docs, sessions, dir, through, check, None)
}

/// [`snapshot_checked`] that stops taking day partitions once `cancel` is
/// set: the days written are recorded in the manifest, the whole tables and
/// the foreign-file check are left to the next run.
pub fn snapshot_cancellable(
    docs: &dyn DocumentStore,
    sessions: &SessionStore,
    dir: &Path,
    through: Option<NaiveDate>,
    check: Check,
    cancel: Option<&stage::Shutdown>,
) -> Result<SnapshotStats> {
    let cancelled = || cancel.is_some_and(stage::Shutdown::is_stopped);
    std::fs::create_dir_all(dir).map_err(|e| BatchError::io(dir, e))?;
    let mut manifest = Manifest::load(dir)?;
    let mut stats = SnapshotStats::default();
    // Until the whole tables are written below, the snapshot is partial:
    // queries refuse it rather than mix two runs' data.
    manifest.partial = true;
    manifest.save(dir)?;

    let txn_days = docs.transaction_days()?;
    let session_days = docs.session_days()?;
    let newest = txn_days.iter().chain(&session_days).max().copied();
    let limit = match (through, newest) {
        (Some(t), Some(n)) => Some(t.min(n)),
        (Some(t), None) => Some(t),
        (None, n) => n,
    };
    stats.through = limit;
    // A day is complete when the caller vouches for it or later data exists.
    let complete = |d: NaiveDate| through.is_some_and(|t| d <= t) || newest.is_some_and(|n| d < n);

    // The days to write: new ones, the open one, and complete ones whose
    // file no longer matches the manifest.
    let mut jobs: Vec<(&'static str, NaiveDate)> = Vec::new();
    let mut written: Vec<(&'static str, NaiveDate, &DayEntry)> = Vec::new();
    for (table, days) in [("transactions", &txn_days), ("sessions", &session_days)] {
        for &day in days.iter().filter(|d| limit.is_some_and(|l| **d <= l)) {
            match manifest.days.get(table).and_then(|e| e.get(&day)) {
                Some(entry) if entry.complete => written.push((table, day, entry)),
                _ => jobs.push((table, day)),
            }
        }
    }
    // The complete days' files are checked on two threads: with
    // `Check::Full`, each is read whole for its SHA-256 (the default
    // shop's 180 files, 113 MB, took 95 ms on one).
    let problems = in_parallel(&written, SNAPSHOT_THREADS, |&(table, day, entry)| {
        day_problem(&day_path(dir, table, day), entry, check)
    })?;
    for (&(table, day, _), problem) in written.iter().zip(problems) {
        match problem {
            None => stats.skipped += 1,
            Some(problem) => {
                tracing::warn!(
                    file = %day_path(dir, table, day).display(),
                    problem = %problem,
                    "Snapshot file does not match the manifest; writing it again from the stores."
                );
                stats.repaired.push((table.to_string(), day, problem));
                jobs.push((table, day));
            }
        }
    }
    jobs.sort_by_key(|&(table, day)| (table != "transactions", day));
    // Days are independent: two threads write them (a catching-up run has
    // dozens), and the manifest records each as it lands, so a crash re-does
    // at most the days in flight.
    let write_day = |table: &str, day: NaiveDate| -> Result<(u64, u64, String)> {
        let batch = match table {
            "transactions" => {
                let mut rows = docs.transactions_on(day)?;
                rows.sort_by(|a, b| {
                    (a.timestamp, &a.transaction_id).cmp(&(b.timestamp, &b.transaction_id))
                });
                transactions_batch(&rows)?
            }
            _ => {
                let mut rows = docs.sessions_on(day)?;
                rows.sort_by(|a, b| {
                    (a.start_time, &a.session_id).cmp(&(b.start_time, &b.session_id))
                });
                // A complete day's per-product counts, served from the
                // wide-column store; written before the manifest says the
                // day is done, so a crash re-does both.
                if complete(day) {
                    sessions.put_product_day(day, &rows)?;
                }
                sessions_batch(&rows)?
            }
        };
        let (bytes, sha256) = write_parquet(&day_path(dir, table, day), &batch)?;
        Ok((batch.num_rows() as u64, bytes, sha256))
    };
    // The whole tables, read from the document store and written beside
    // the days, on a thread of their own: a run has only the open day's
    // two files to write, of unequal size.
    let write_whole = || -> Result<Vec<(&'static str, WholeEntry)>> {
        let mut users = docs.all_users()?;
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let mut products = docs.all_products()?;
        products.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let mut categories = docs.all_categories()?;
        categories.sort_by(|a, b| a.category_id.cmp(&b.category_id));
        let mut dead = docs.dead_letters()?;
        dead.sort_by(|a, b| {
            (&a.source_topic, a.partition, a.offset).cmp(&(&b.source_topic, b.partition, b.offset))
        });
        let mut out = Vec::new();
        for (table, batch) in [
            ("users", users_batch(&users)?),
            ("products", products_batch(&products)?),
            ("categories", categories_batch(&categories)?),
            ("dead_letters", dead_letters_batch(&dead)?),
        ] {
            let rows = batch.num_rows() as u64;
            let (bytes, sha256) = write_parquet(&whole_path(dir, table), &batch)?;
            out.push((
                table,
                WholeEntry {
                    rows,
                    bytes,
                    sha256,
                },
            ));
        }
        Ok(out)
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let whole = std::thread::scope(|scope| -> Result<_> {
        let whole = scope.spawn(|| (!cancelled()).then(write_whole).transpose());
        for _ in 0..SNAPSHOT_THREADS.min(jobs.len()) {
            let (tx, next, jobs, write_day) = (tx.clone(), &next, &jobs, &write_day);
            let cancelled = &cancelled;
            scope.spawn(move || loop {
                if cancelled() {
                    return;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(table, day)) = jobs.get(i) else {
                    return;
                };
                let done = write_day(table, day);
                let failed = done.is_err();
                if tx.send((table, day, done)).is_err() || failed {
                    // Stop taking days; the others finish theirs.
                    next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            });
        }
        drop(tx);
        let mut first_error = None;
        for (table, day, done) in rx {
            match done {
                Ok((rows, bytes, sha256)) => {
                    manifest.days.entry(table.to_string()).or_default().insert(
                        day,
                        DayEntry {
                            rows,
                            complete: complete(day),
                            bytes,
                            sha256,
                        },
                    );
                    stats.written.push((table.to_string(), day, rows));
                    // Record progress as we go.
                    manifest.save(dir)?;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let whole = whole
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        first_error.map_or(whole, Err)
    })?;
    // In the order of the tables and days, whichever thread wrote them.
    stats.written.sort_by(|a, b| {
        let order = |t: &str| if t == "transactions" { 0 } else { 1 };
        (order(&a.0), a.1).cmp(&(order(&b.0), b.1))
    });

    let Some(whole) = whole.filter(|_| !cancelled()) else {
        manifest.save(dir)?;
        return Ok(stats);
    };
    for (table, entry) in whole {
        stats.whole_rows += entry.rows;
        manifest.whole.insert(table.to_string(), entry);
    }
    manifest.partial = false;
    manifest.save(dir)?;
    // Whatever was skipped was checked above and the rest was just written
    // (checksums taken as it was written): left to find are foreign files.
    let problems = foreign_files(dir, &manifest)?;
    if !problems.is_empty() {
        return Err(BatchError::Damaged {
            dir: dir.display().to_string(),
            problems,
        });
    }
    Ok(stats)
}

/// `f` of each item, on up to `threads` threads (each a contiguous share
/// of `items`), in the items' order; the first error, if any.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let share = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for part in parts {
            out.extend(
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            );
        }
        Ok(out)
    })
}

/// Threads that write day partitions.
const SNAPSHOT_THREADS: usize = 2;

/// `dir/table/date=YYYY-MM-DD/part-0.parquet`.
pub fn day_path(dir: &Path, table: &str, day: NaiveDate) -> PathBuf {
    dir.join(table)
        .join(format!("date={}", day.format("%Y-%m-%d")))
        .join("part-0.parquet")
}

/// `dir/table/part-0.parquet`.
pub fn whole_path(dir: &Path, table: &str) -> PathBuf {
    dir.join(table).join("part-0.parquet")
}

/// Writes `bytes` to `path` through a new temporary file beside it and a
/// rename over it ([`stage::fsio::Replace`]): a reader never sees half a
/// file, and an existing `path` (a symlink included) is replaced, never
/// written through. Synced, file and directory: the snapshot's manifest and
/// the report are written once a night, and a machine crash must not leave
/// a manifest that promises files the disk lost.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fsio::replace_with(path, bytes, Durability::Machine)
        .map(|_| ())
        .map_err(|e| BatchError::io(path, e))
}

/// Writes one batch as a Parquet file (through [`fsio::Replace`], synced
/// before the manifest that lists it); returns its size and SHA-256.
fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(u64, String)> {
    let (guard, file) = fsio::Replace::begin(path).map_err(|e| BatchError::io(path, e))?;
    let level = ZstdLevel::try_new(3).map_err(|e| BatchError::Corrupt(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(256 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(Hashing::new(file), batch.schema(), Some(props))?;
    writer.write(batch)?;
    let hashing = writer.into_inner()?;
    let bytes = hashing.bytes;
    let (file, sha256) = hashing.finish();
    guard
        .commit(file, Durability::Machine)
        .map_err(|e| BatchError::io(path, e))?;
    Ok((bytes, sha256))
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn f64s(v: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn i64s(v: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(v))
}

fn timestamps(v: impl Iterator<Item = NaiveDateTime>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(v.map(micros)))
}

/// A list column: `lengths[i]` children per row, children already flat.
fn list(item: Field, lengths: impl Iterator<Item = usize>, values: ArrayRef) -> ArrayRef {
    Arc::new(ListArray::new(
        Arc::new(item),
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    ))
}

fn line_item_fields() -> Fields {
    Fields::from(vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("unit_price", DataType::Float64, false),
        Field::new("subtotal", DataType::Float64, false),
    ])
}

fn cart_item_fields() -> Fields {
    Fields::from(vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("price", DataType::Float64, false),
    ])
}

fn price_point_fields() -> Fields {
    Fields::from(vec![
        Field::new("price", DataType::Float64, false),
        Field::new("date", DataType::Date32, false),
    ])
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true)))
}

/// Schema of `transactions` files (the `date` partition column is not in
/// the files; the query engine adds it from the directory name).
pub fn transactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("session_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("timestamp", ts_type(), false),
        Field::new("items", list_of(line_item_fields()), false),
        Field::new("discount", DataType::Float64, false),
        Field::new("total", DataType::Float64, false),
        Field::new("payment_method", DataType::Utf8, false),
    ]))
}

/// Schema of `sessions` files.
pub fn sessions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("session_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("start_time", ts_type(), false),
        Field::new("duration_seconds", DataType::Int64, false),
        Field::new("referrer", DataType::Utf8, false),
        Field::new("device_type", DataType::Utf8, false),
        Field::new("os", DataType::Utf8, false),
        Field::new("browser", DataType::Utf8, false),
        Field::new("city", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("ip", DataType::Utf8, false),
        Field::new("conversion_status", DataType::Utf8, false),
        Field::new(
            "viewed_products",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("cart_contents", list_of(cart_item_fields()), false),
    ]))
}

/// Schema of `users`.
pub fn users_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, false),
        Field::new("city", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("registration_date", DataType::Date32, false),
        Field::new("total_purchases", DataType::Int64, false),
        Field::new("total_spent", DataType::Float64, false),
        Field::new("avg_order_value", DataType::Float64, false),
        Field::new("first_purchase", ts_type(), true),
        Field::new("last_purchase", ts_type(), true),
    ]))
}

/// Schema of `products`.
pub fn products_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("category_id", DataType::Utf8, false),
        Field::new("base_price", DataType::Float64, false),
        Field::new("current_stock", DataType::Int64, false),
        Field::new("is_active", DataType::Boolean, false),
        Field::new("creation_date", DataType::Date32, false),
        Field::new("price_history", list_of(price_point_fields()), false),
    ]))
}

/// Schema of `categories`.
pub fn categories_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("category_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
    ]))
}

/// Schema of `dead_letters`.
pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int64, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("reason_code", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
    ]))
}

/// The schema of a snapshot table by name.
pub fn schema_of(table: &str) -> Option<SchemaRef> {
    Some(match table {
        "transactions" => transactions_schema(),
        "sessions" => sessions_schema(),
        "users" => users_schema(),
        "products" => products_schema(),
        "categories" => categories_schema(),
        "dead_letters" => dead_letters_schema(),
        _ => return None,
    })
}

fn transactions_batch(rows: &[Transaction]) -> Result<RecordBatch> {
    let items: Vec<_> = rows.iter().flat_map(|t| &t.items).collect();
    let items_struct = StructArray::new(
        line_item_fields(),
        vec![
            strings(items.iter().map(|i| i.product_id.as_str())),
            i64s(items.iter().map(|i| i64::from(i.quantity))),
            f64s(items.iter().map(|i| i.unit_price)),
            f64s(items.iter().map(|i| i.subtotal)),
        ],
        None,
    );
    let payment = |t: &Transaction| {
        serde_json::to_value(t.payment_method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let payments: Vec<String> = rows.iter().map(payment).collect();
    Ok(RecordBatch::try_new(
        transactions_schema(),
        vec![
            strings(rows.iter().map(|t| t.transaction_id.as_str())),
            strings(rows.iter().map(|t| t.session_id.as_str())),
            strings(rows.iter().map(|t| t.user_id.as_str())),
            timestamps(rows.iter().map(|t| t.timestamp)),
            list(
                Field::new("item", DataType::Struct(line_item_fields()), true),
                rows.iter().map(|t| t.items.len()),
                Arc::new(items_struct),
            ),
            f64s(rows.iter().map(|t| t.discount)),
            f64s(rows.iter().map(|t| t.total)),
            strings(payments.iter().map(String::as_str)),
        ],
    )?)
}

fn sessions_batch(rows: &[Session]) -> Result<RecordBatch> {
    let views: Vec<&str> = rows
        .iter()
        .flat_map(|s| s.viewed_products.iter().map(String::as_str))
        .collect();
    let cart: Vec<_> = rows.iter().flat_map(|s| &s.cart_contents).collect();
    let cart_struct = StructArray::new(
        cart_item_fields(),
        vec![
            strings(cart.iter().map(|c| c.product_id.as_str())),
            i64s(cart.iter().map(|c| i64::from(c.quantity))),
            f64s(cart.iter().map(|c| c.price)),
        ],
        None,
    );
    let d = |f: fn(&Session) -> &str| strings(rows.iter().map(f));
    Ok(RecordBatch::try_new(
        sessions_schema(),
        vec![
            d(|s| &s.session_id),
            d(|s| &s.user_id),
            timestamps(rows.iter().map(|s| s.start_time)),
            i64s(rows.iter().map(|s| i64::from(s.duration_seconds))),
            d(|s| &s.referrer),
            d(|s| s.device_info.device_type.as_str()),
            d(|s| &s.device_info.os),
            d(|s| &s.device_info.browser),
            d(|s| &s.device_info.city),
            d(|s| &s.device_info.state),
            d(|s| &s.device_info.ip),
            d(|s| s.conversion_status.as_str()),
            list(
                Field::new("item", DataType::Utf8, true),
                rows.iter().map(|s| s.viewed_products.len()),
                strings(views.into_iter()),
            ),
            list(
                Field::new("item", DataType::Struct(cart_item_fields()), true),
                rows.iter().map(|s| s.cart_contents.len()),
                Arc::new(cart_struct),
            ),
        ],
    )?)
}

fn users_batch(rows: &[User]) -> Result<RecordBatch> {
    let d = |f: fn(&User) -> &str| strings(rows.iter().map(f));
    let opt_ts = |f: fn(&User) -> Option<NaiveDateTime>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(
            rows.iter().map(|u| f(u).map(micros)).collect::<Vec<_>>(),
        ))
    };
    Ok(RecordBatch::try_new(
        users_schema(),
        vec![
            d(|u| &u.user_id),
            d(|u| &u.name),
            d(|u| &u.email),
            d(|u| &u.geo_data.city),
            d(|u| &u.geo_data.state),
            d(|u| &u.geo_data.country),
            Arc::new(Date32Array::from_iter_values(
                rows.iter().map(|u| days_since_epoch(u.registration_date)),
            )),
            i64s(
                rows.iter()
                    .map(|u| u.purchase_summary.total_purchases as i64),
            ),
            f64s(rows.iter().map(|u| u.purchase_summary.total_spent)),
            f64s(rows.iter().map(|u| u.purchase_summary.avg_order_value)),
            opt_ts(|u| u.purchase_summary.first_purchase),
            opt_ts(|u| u.purchase_summary.last_purchase),
        ],
    )?)
}

fn products_batch(rows: &[Product]) -> Result<RecordBatch> {
    let points: Vec<_> = rows.iter().flat_map(|p| &p.price_history).collect();
    let points_struct = StructArray::new(
        price_point_fields(),
        vec![
            f64s(points.iter().map(|p| p.price)),
            Arc::new(Date32Array::from_iter_values(
                points.iter().map(|p| days_since_epoch(p.date)),
            )),
        ],
        None,
    );
    Ok(RecordBatch::try_new(
        products_schema(),
        vec![
            strings(rows.iter().map(|p| p.product_id.as_str())),
            strings(rows.iter().map(|p| p.name.as_str())),
            strings(rows.iter().map(|p| p.category_id.as_str())),
            f64s(rows.iter().map(|p| p.base_price)),
            i64s(rows.iter().map(|p| i64::from(p.current_stock))),
            Arc::new(BooleanArray::from(
                rows.iter().map(|p| p.is_active).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from_iter_values(
                rows.iter().map(|p| days_since_epoch(p.creation_date)),
            )),
            list(
                Field::new("item", DataType::Struct(price_point_fields()), true),
                rows.iter().map(|p| p.price_history.len()),
                Arc::new(points_struct),
            ),
        ],
    )?)
}

fn categories_batch(rows: &[Category]) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        categories_schema(),
        vec![
            strings(rows.iter().map(|c| c.category_id.as_str())),
            strings(rows.iter().map(|c| c.name.as_str())),
        ],
    )?)
}

fn dead_letters_batch(rows: &[DeadLetter]) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        dead_letters_schema(),
        vec![
            strings(rows.iter().map(|d| d.source_topic.as_str())),
            i64s(rows.iter().map(|d| i64::from(d.partition))),
            i64s(rows.iter().map(|d| d.offset as i64)),
            strings(rows.iter().map(|d| d.reason_code.as_str())),
            strings(rows.iter().map(|d| d.reason.as_str())),
            strings(rows.iter().map(|d| d.payload.as_str())),
        ],
    )?)
}
