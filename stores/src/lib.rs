//! The stores ingest writes to and the serving and batch sides read from,
//! behind traits, with an embedded and a server implementation each.
//!
//! - The **document store** plays MongoDB's role: collections `users`,
//!   `products`, `categories`, `transactions`, shaped as in the seed report
//!   (transactions embed their items; products embed `price_history`; users
//!   embed `geo_data` and a `purchase_summary` kept current by ingest), and
//!   also `sessions` (by day: what the nightly snapshot reads),
//!   `dead_letters` (keyed by where the record came from) and each consumer
//!   group's progress.
//! - The **wide-column store** plays HBase's role. Its trait is HBase's own
//!   model (tables, column families, cells, row-range scans); the domain
//!   tables on top of it (`user_sessions`, a user's sessions newest first,
//!   which ingest writes; `product_daily`, a product's counts per day, which
//!   the nightly batch writes and the lookup API's
//!   `/v1/products/{id}/daily` reads) are one piece of code shared by every
//!   implementation, so row keys and cells are the same byte for byte
//!   whichever store is behind.
//!
//! # Layout
//!
//! - `error`: [`StoreError`], retryable or permanent.
//! - [`doc`]: the [`DocumentStore`] trait and the summary arithmetic.
//! - [`doc_embedded`]: the document store on fjall.
//! - `doc_mongo`: the document store on MongoDB (official driver), with
//!   the `mongodb` feature.
//! - [`queries`]: the four daily questions (revenue by category and day,
//!   top customers, payment mix, a user's history): defined over the
//!   store's reads, run as aggregation pipelines on MongoDB.
//! - [`wide`]: the [`WideColumnStore`] trait (cells, mutations, scans).
//! - [`wide_embedded`]: the wide-column store on fjall, a table in
//!   keyspaces of 256 MiB (its generations), one value per row.
//! - `wide_hbase`: the wide-column store on HBase's Thrift API, with the
//!   `hbase` feature.
//! - `hbase_test_server`: a stand-in HBase Thrift server over the embedded
//!   wide-column store, for the tests (with the `hbase` feature).
//! - `sessions`: `user_sessions` and `product_daily`: row keys, cells,
//!   and the queries (last N sessions, sessions between two times, a
//!   product's daily counts).

pub mod doc;
pub mod doc_embedded;
#[cfg(feature = "mongodb")]
pub mod doc_mongo;
mod error;
#[cfg(feature = "hbase")]
pub mod hbase_test_server;
pub mod queries;
pub mod redact;
mod sessions;
pub mod wide;
pub mod wide_embedded;
#[cfg(feature = "hbase")]
pub mod wide_hbase;

pub use doc::{DocCounts, DocumentStore, Progress, TransactionsPut};
pub use error::{Result, StoreError};
pub use sessions::{DailyCounts, SessionStore};
pub use wide::{Cell, CellRef, Row, RowMutation, RowRef, WideColumnStore};

/// Background threads (flush, compaction) per fjall database. With two or
/// more, fjall's worker 0 hands every compaction request back to the queue
/// so that it stays free for flushes (fjall 3.1 `worker_pool.rs`); when the
/// other worker is busy compacting, worker 0 spins re-queueing the same
/// request: a sixth of the replay's CPU in a profile. Each store is its own
/// database, so one worker each still flushes them in parallel.
pub const FJALL_WORKERS: usize = 1;

/// The size at which a keyspace's memtable is sealed and flushed. fjall's
/// default is 64 MiB, and it lets four sealed memtables queue per keyspace
/// behind the active one: the documents store writes four keyspaces at once
/// during ingest, so that default let memtables alone reach about 600 MB of
/// the replay's heap. 32 MiB took the replay's peak RSS from 1.57 GB to
/// 1.42 GB at the same wall time; 8 MiB took it from 1.07 GB to
/// 0.85-0.87 GB and ingest alone from 537-592 MiB to 309-348 MiB, again at
/// the same speed. Since ingest writes chunks of 32,000 records (about
/// 8 MB per store), 16 MiB is faster again: the main job's ingest ran at
/// 120.8k-128.5k events/s (median 125.1k) against 114.0k-122.4k (118.5k)
/// with 8 MiB, five runs each, alternated, at a peak RSS of 0.98-1.10 GB
/// against 0.94-1.03 GB (`ecomflow replay`, its stage table). It applies
/// to keyspaces created from then on: fjall keeps a keyspace's options.
pub const MEMTABLE_BYTES: u64 = 16 << 20;

/// Tables a keyspace's level 0 holds before they are compacted into level
/// 1: three times fjall's default. Ingest writes every keyspace all the
/// time, and fewer, larger compactions cost less CPU. Since a chunk of
/// sessions goes straight into a table of its own (`put_rows`), level 0
/// fills with tables of 2.5-8 MB rather than 16 MiB memtables, and 12 of
/// them (30-96 MB) are still fewer bytes than 8 full memtables (128 MiB):
/// ingest alone wrote 2.7 GB instead of 3.5 GB for the same 1.2 GB of stores
/// (`/usr/bin/time -f %O`), and the main job took 0.96 of the time and
/// CPU that it took with 8, alternated (docs/benchmarks.md, "Level 0 of
/// the stores").
/// Like the memtable size, it applies to keyspaces created from now on.
/// It must stay well below 20: fjall slows writes from 20 level-0 runs and
/// halts them at 30, so a threshold of 30 or more never compacts and
/// writers wait for ever (32 hung ingest); 16 was no faster than 12.
pub const L0_TABLES: u8 = 12;

/// Options of every keyspace of the embedded stores. With `compress`
/// (`--compress`), every level's blocks are compressed with lz4; without,
/// fjall's default: levels 0 and 1 are not, and they hold all of the
/// default replay's tables (the wide-column store's generations are never
/// compacted further). Compressed, the default replay's stores took 726 MB
/// instead of 1.24 GB, and the replay 8% longer (docs/benchmarks.md
/// "Footprint"). A keyspace keeps the options it was created with.
pub(crate) fn keyspace_options(compress: bool) -> fjall::KeyspaceCreateOptions {
    let options = fjall::KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .compaction_strategy(std::sync::Arc::new(
            fjall::compaction::Leveled::default().with_l0_threshold(L0_TABLES),
        ));
    if compress {
        options.data_block_compression_policy(fjall::config::CompressionPolicy::all(
            fjall::CompressionType::Lz4,
        ))
    } else {
        options
    }
}

/// Options of a keyspace whose values are documents, written once and
/// rarely read (the document store's sessions): values over 256 bytes are
/// kept apart from the keys (fjall's key-value separation), so compaction
/// rewrites keys, not documents. Measured on the main job when sessions
/// were 600-900 bytes of JSON (docs/architecture.md); tried on
/// every table of both stores, it did not measurably help more. Since
/// sessions are stored in binary (175 bytes on average), about one in ten
/// is over the threshold.
pub(crate) fn document_keyspace_options(compress: bool) -> fjall::KeyspaceCreateOptions {
    keyspace_options(compress).with_kv_separation(Some(
        fjall::KvSeparationOptions::default().separation_threshold(256),
    ))
}

/// A write of at least this many bytes (keys and values) into one keyspace
/// goes straight into a new table (fjall's ingestion, [`put_rows`]) instead
/// of through the journal and a memtable. Ingest's chunks of sessions while
/// it catches up (up to 32,000 records: 2.5-8 MB in each store in the main
/// job) are over it; a live replay's small chunks and the nightly batch's
/// `product_daily` rows are not, since each ingestion is a table of its
/// own, synced to disk.
pub(crate) const INGEST_MIN_BYTES: usize = 2 << 20;

/// Writes `rows` (one per key, as the stores build them) into `keyspace`
/// as one step. Past [`INGEST_MIN_BYTES`], the rows are sorted and written
/// straight into a table that fjall registers with a sequence number above
/// every write before it, and synced before this returns. That skips
/// writing each row to the journal, inserting it into a memtable (a skip
/// list), flushing that memtable to a table and freeing it: about a third
/// of ingest's CPU in a profile, for its two writes of every session. With
/// it, ingest alone took 0.89 of the CPU and the main job 0.93 of the time
/// (docs/benchmarks.md, "Sessions written straight into tables"). A crash
/// before it returns leaves at most table files that no version names,
/// which fjall deletes when the store opens next (lsm-tree's recovery of
/// orphaned tables), and the caller's retry writes the rows again. Smaller
/// writes go through an ordinary write batch.
pub(crate) fn put_rows<K, V>(
    db: &fjall::Database,
    keyspace: &fjall::Keyspace,
    mut rows: Vec<(K, V)>,
) -> fjall::Result<()>
where
    K: AsRef<[u8]> + Into<fjall::UserKey>,
    V: AsRef<[u8]> + Into<fjall::UserValue>,
{
    let bytes: usize = rows
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len())
        .sum();
    if bytes < INGEST_MIN_BYTES {
        let mut batch = db.batch().durability(Some(fjall::PersistMode::Buffer));
        for (k, v) in rows {
            batch.insert(keyspace, k, v);
        }
        return batch.commit();
    }
    // Ingestion takes keys in strictly ascending order and panics
    // otherwise: should a key repeat, the later row is kept (newest first,
    // a stable sort, then the first of each key).
    rows.reverse();
    rows.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    rows.dedup_by(|later, first| later.0.as_ref() == first.0.as_ref());
    let count = rows.len();
    let mut ingestion = keyspace.start_ingestion()?;
    for (k, v) in rows {
        ingestion.write(k, v)?;
    }
    ingestion.finish()?;
    tracing::debug!(keyspace = %keyspace.name(), rows = count, bytes, "Rows written straight into a table.");
    Ok(())
}

/// fjall's persist mode for a durability.
/// Connections to an HBase Thrift server unless told otherwise (each
/// carries one call at a time): as many as ingest's workers and the
/// nightly batch use at once.
pub const DEFAULT_HBASE_POOL_SIZE: usize = 4;

pub(crate) fn persist_mode(durability: stage::fsio::Durability) -> fjall::PersistMode {
    match durability {
        stage::fsio::Durability::Process => fjall::PersistMode::Buffer,
        stage::fsio::Durability::Machine => fjall::PersistMode::SyncData,
    }
}

/// How long closing a store waits for its memtables to reach disk.
const CLOSE_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long it waits without a single flush finishing: a flush that
/// cannot finish (a full disk) ends the wait then, not after
/// [`CLOSE_FLUSH_WAIT`].
const CLOSE_FLUSH_STALL: std::time::Duration = std::time::Duration::from_secs(8);

/// Writes every keyspace's memtable to a table and waits for the flushes,
/// as RocksDB does when a database closes: the next open then skips the
/// journal's entries (fjall replays only those newer than a keyspace's
/// tables) instead of inserting them all into a memtable again, and
/// [`JournalOnClose`] can then empty the journal. Flushing cost 0.14 s
/// and 0.09 s at the end of the replay. Nothing depends on it for
/// correctness: a store that is killed, or whose flush fails, recovers from
/// its journal as before. Errors are logged, not returned: it runs on drop.
/// `rotate_memtable` and `sealed_memtable_count` are fjall's test-facing
/// API (`doc(hidden)`), pinned by the lockfile and covered by
/// `closing_flushes_the_memtables_so_the_next_open_skips_the_journal`.
pub(crate) fn flush_on_close(db: &fjall::Database, path: &std::path::Path) {
    let started = std::time::Instant::now();
    let mut rotated = Vec::new();
    for name in db.list_keyspace_names() {
        let rotate = db
            .keyspace(&name, fjall::KeyspaceCreateOptions::default)
            .and_then(|k| Ok((k.rotate_memtable()?, k)));
        match rotate {
            Ok((true, keyspace)) => rotated.push(keyspace),
            Ok((false, _)) => {}
            Err(e) => {
                tracing::warn!(store = %path.display(), keyspace = &*name, error = %e, "Could not flush a keyspace on close; the next open replays its journal.");
            }
        }
    }
    let sealed = || -> usize { rotated.iter().map(|k| k.sealed_memtable_count()).sum() };
    let (mut left, mut progress) = (sealed(), std::time::Instant::now());
    while left > 0 {
        if started.elapsed() > CLOSE_FLUSH_WAIT || progress.elapsed() > CLOSE_FLUSH_STALL {
            tracing::warn!(store = %path.display(), seconds = started.elapsed().as_secs_f64(), "Memtables not flushed on close (is the disk full?); the next open replays the journal.");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        let now = sealed();
        if now < left {
            progress = std::time::Instant::now();
        }
        left = now;
    }
    if !rotated.is_empty() {
        tracing::debug!(store = %path.display(), keyspaces = rotated.len(), seconds = started.elapsed().as_secs_f64(), "Memtables flushed on close.");
    }
}

/// An embedded store's fjall database, flushed when it closes
/// ([`flush_on_close`]), its journal then emptied ([`JournalOnClose`]).
/// A store keeps this field last, so that its keyspace handles are
/// dropped before it and fjall lets go of the directory with it.
pub(crate) struct Db {
    db: fjall::Database,
    /// Dropped after `db`: empties the journal once fjall has closed.
    close: JournalOnClose,
}

impl std::ops::Deref for Db {
    type Target = fjall::Database;

    fn deref(&self) -> &fjall::Database {
        &self.db
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        flush_on_close(&self.db, &self.close.dir);
        self.close.settled = settled_journal(&self.db, &self.close.dir);
    }
}

/// Empties a closed store's journal when every entry in it is in tables.
///
/// fjall reads its whole active journal when it opens, even when every
/// entry is already in a table: it decodes each batch and looks each
/// entry's keyspace up (a read of its meta keyspace), then skips it.
/// It starts a new journal only once the active one passes 64 MB, at a
/// flush. So every open after a replay read up to 64 MB: 0.80-0.86 s for
/// the wide-column store's 57 MB and 0.33-0.35 s for the document store's
/// 48 MB, on the two threads that open them side by side, about a
/// quarter of `ecomflow batch` (`ECOMFLOW_LOG=debug`, "Store opened"). An
/// empty journal opens in 6-21 ms. An empty active journal is the state
/// fjall leaves after its own rotation; the sequence numbers then come
/// from the tables, as they do when every entry is skipped.
///
/// The journal is emptied only when all of these hold, else it is left
/// as it is (the next open reads it, as before):
/// - it is the directory's only journal (a sealed journal that the
///   flushes on close emptied is deleted by fjall just after them: closing
///   waits up to [`SEALED_JOURNAL_WAIT`] for that);
/// - after its length was read, a persist (which takes fjall's journal
///   lock, under which a write appends to the journal and inserts into a
///   memtable) was followed by every keyspace's memtables being empty, so
///   every entry up to that length was in a table (fjall writes and syncs
///   a table before it drops the memtable it came from);
/// - once the database is dropped, its lock file can be locked: every
///   keyspace handle holds that lock, so no handle is left in the process
///   to write with, and no other process has the store open. The stores
///   own their handles and lend them only within their own calls, so
///   their handles are gone once the store is dropped;
/// - the journal still has that length. This catches a write since for
///   a journal read at open (fjall cuts it to its last entry); one created
///   in this run keeps its preallocated 64 MiB, and the lock is then the
///   guard.
///
/// A kill at any point leaves the journal whole or empty (one truncate),
/// and either opens to the same data. The file names (`lock`, `N.jnl`)
/// are fjall 3.1's, pinned by the lockfile and covered by
/// `closing_empties_a_journal_whose_entries_are_in_tables`.
struct JournalOnClose {
    dir: std::path::PathBuf,
    /// The journal and its length, when everything in it was in tables.
    settled: Option<(std::path::PathBuf, u64)>,
}

impl Drop for JournalOnClose {
    fn drop(&mut self) {
        if let Some((journal, len)) = self.settled.take() {
            empty_journal(&self.dir, &journal, len);
        }
    }
}

/// The directory's only journal file (`N.jnl`), if it has exactly one.
fn only_journal(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut found = None;
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|e| e == "jnl") {
            if found.is_some() {
                return None;
            }
            found = Some(path);
        }
    }
    found
}

/// How long closing waits for fjall to delete a sealed journal whose
/// entries its last flushes put in tables (it does so just after each
/// flush, once the memtables are already empty).
const SEALED_JOURNAL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The journal and its length, if every entry up to that length is in a
/// table (see [`JournalOnClose`] for the order of the checks).
fn settled_journal(
    db: &fjall::Database,
    dir: &std::path::Path,
) -> Option<(std::path::PathBuf, u64)> {
    use fjall::AbstractTree;
    let kept = |why: &str| {
        tracing::debug!(store = %dir.display(), why, "Journal kept on close.");
        None
    };
    let flushed = || {
        db.list_keyspace_names().iter().all(|name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .is_ok_and(|k| {
                    k.sealed_memtable_count() == 0 && k.tree.active_memtable().is_empty()
                })
        })
    };
    // Not worth waiting for fjall below when a flush on close failed.
    if !flushed() {
        return kept("a memtable holds entries that are not in tables");
    }
    let started = std::time::Instant::now();
    let journal = loop {
        match only_journal(dir) {
            Some(journal) => break journal,
            None if started.elapsed() < SEALED_JOURNAL_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            None => return kept("not the directory's only journal"),
        }
    };
    db.persist(fjall::PersistMode::Buffer).ok()?;
    let len = std::fs::metadata(&journal).ok()?.len();
    if len == 0 {
        return None;
    }
    db.persist(fjall::PersistMode::Buffer).ok()?;
    if !flushed() {
        return kept("a memtable holds entries that are not in tables");
    }
    Some((journal, len))
}

/// Truncates `journal` if the closed database's lock can be taken and the
/// journal still has `len` bytes.
fn empty_journal(dir: &std::path::Path, journal: &std::path::Path, len: u64) {
    let emptied = || -> std::io::Result<bool> {
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("lock"))?;
        if lock.try_lock().is_err() {
            return Ok(false);
        }
        if only_journal(dir).as_deref() != Some(journal) || std::fs::metadata(journal)?.len() != len
        {
            return Ok(false);
        }
        let file = std::fs::OpenOptions::new().write(true).open(journal)?;
        file.set_len(0)?;
        file.sync_all()?;
        Ok(true)
    };
    match emptied() {
        Ok(true) => {
            tracing::debug!(store = %dir.display(), bytes = len, "Journal emptied on close: every entry was in tables.");
        }
        Ok(false) => {
            tracing::debug!(store = %dir.display(), "Journal kept on close: the store was still open, or written since its flush.");
        }
        Err(e) => {
            tracing::warn!(store = %dir.display(), error = %e, "Could not empty the journal on close; the next open reads it.");
        }
    }
}

/// Opens an embedded store's database (logging how long replaying its
/// journal took); maps fjall's "directory is locked" to a message that
/// names the cause.
pub(crate) fn open_fjall(path: &std::path::Path) -> Result<Db> {
    std::fs::create_dir_all(path)?;
    let started = std::time::Instant::now();
    let db = fjall::Database::builder(path)
        .worker_threads(FJALL_WORKERS)
        .open()
        .map_err(|e| match e {
            fjall::Error::Locked => StoreError::Locked(path.display().to_string()),
            other => StoreError::Storage(other),
        })?;
    tracing::debug!(store = %path.display(), seconds = started.elapsed().as_secs_f64(), "Store opened (journal replayed).");
    Ok(Db {
        db,
        close: JournalOnClose {
            dir: path.to_path_buf(),
            settled: None,
        },
    })
}

/// The bytes of a store directory's journal files, all together.
#[cfg(test)]
pub(crate) fn journal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("store dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .map(|p| std::fs::metadata(p).expect("journal").len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace(db: &fjall::Database) -> fjall::Keyspace {
        db.keyspace("k", || keyspace_options(false))
            .expect("keyspace")
    }

    fn value_of(db: &fjall::Database, key: &str) -> Option<Vec<u8>> {
        keyspace(db).get(key).expect("get").map(|v| v.to_vec())
    }

    /// Closing empties the journal once its entries are in tables, and the
    /// store opens to the same data: a key written after that (a new
    /// sequence number, counted on from the tables') replaces the old
    /// value, and a removed key stays removed, over two more reopens.
    #[test]
    fn closing_empties_a_journal_whose_entries_are_in_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open_fjall(dir.path()).expect("open");
            let k = keyspace(&db);
            k.insert("a", "1").expect("insert");
            k.insert("b", "1").expect("insert");
        }
        assert_eq!(journal_bytes(dir.path()), 0);
        {
            let db = open_fjall(dir.path()).expect("reopen");
            assert_eq!(value_of(&db, "a").as_deref(), Some(&b"1"[..]));
            assert_eq!(value_of(&db, "b").as_deref(), Some(&b"1"[..]));
            let k = keyspace(&db);
            k.insert("a", "2").expect("insert");
            k.remove("b").expect("remove");
        }
        assert_eq!(journal_bytes(dir.path()), 0);
        for _ in 0..2 {
            let db = open_fjall(dir.path()).expect("reopen");
            assert_eq!(value_of(&db, "a").as_deref(), Some(&b"2"[..]));
            assert_eq!(value_of(&db, "b"), None);
        }
    }

    /// Rows past [`INGEST_MIN_BYTES`] go straight into a table, on disk
    /// when the write returns; the later of two rows of a key wins, and a
    /// row already in the memtable is replaced. A small write after them
    /// stays in the memtable and replaces its key. All of it reads back in
    /// key order, and again after a reopen.
    #[test]
    fn a_large_write_goes_straight_into_a_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = vec![b'v'; 1000];
        let expect = |db: &fjall::Database| {
            assert_eq!(value_of(db, "key00007").as_deref(), Some(&b"last"[..]));
            assert_eq!(value_of(db, "key00008").as_deref(), Some(&b"after"[..]));
            assert_eq!(value_of(db, "key02999"), Some(big.clone()));
            assert_eq!(value_of(db, "small").as_deref(), Some(&b"ingested"[..]));
            let keys: Vec<Vec<u8>> = keyspace(db)
                .iter()
                .map(|kv| kv.key().expect("key").to_vec())
                .collect();
            assert_eq!(keys.len(), 3001);
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
        };
        {
            let db = open_fjall(dir.path()).expect("open");
            let k = keyspace(&db);
            k.insert("small", "before").expect("insert");
            assert_eq!(k.table_count(), 0);
            // 3,000 rows of 1 KB in descending order, key 7 twice.
            let mut rows: Vec<(Vec<u8>, Vec<u8>)> = (0..3000u32)
                .rev()
                .map(|i| (format!("key{i:05}").into_bytes(), big.clone()))
                .collect();
            rows.push((b"key00007".to_vec(), b"last".to_vec()));
            rows.push((b"small".to_vec(), b"ingested".to_vec()));
            assert!(rows.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() >= INGEST_MIN_BYTES);
            put_rows(&db, &k, rows).expect("ingest");
            // On disk as soon as it returns: the rows' table and the
            // memtable's ("small" before), with no memtable flush queued.
            let tables = k.table_count();
            assert!(tables >= 2, "{tables} tables");
            assert!(k.disk_space() >= 3_000_000, "{} bytes", k.disk_space());
            assert_eq!(k.sealed_memtable_count(), 0);
            put_rows(&db, &k, vec![(b"key00008".to_vec(), b"after".to_vec())]).expect("put");
            assert_eq!(k.table_count(), tables);
            expect(&db);
        }
        let db = open_fjall(dir.path()).expect("reopen");
        expect(&db);
    }

    /// A sealed journal that is deleted while the store closes (as fjall
    /// deletes one just after the flushes that emptied it) is waited for,
    /// then the active journal is emptied; one that stays past
    /// [`SEALED_JOURNAL_WAIT`] leaves the active journal as it is.
    #[test]
    fn closing_waits_for_a_sealed_journal_to_go() {
        for stays in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let sealed = dir.path().join("sealed.jnl");
            {
                let db = open_fjall(dir.path()).expect("open");
                keyspace(&db).insert("a", "1").expect("insert");
                std::fs::write(&sealed, b"").expect("sealed journal");
                if !stays {
                    let sealed = sealed.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        std::fs::remove_file(sealed).expect("remove");
                    });
                }
            }
            assert_eq!(sealed.exists(), stays);
            let _ = std::fs::remove_file(&sealed);
            assert_eq!(journal_bytes(dir.path()) > 0, stays, "stays: {stays}");
            let db = open_fjall(dir.path()).expect("reopen");
            assert_eq!(value_of(&db, "a").as_deref(), Some(&b"1"[..]));
        }
    }

    /// A keyspace handle kept past the store's close keeps fjall's lock:
    /// the journal is left whole, and what was written after the flush
    /// through that handle is there on the next open.
    #[test]
    fn a_journal_is_kept_while_a_keyspace_is_still_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = {
            let db = open_fjall(dir.path()).expect("open");
            let k = keyspace(&db);
            k.insert("a", "1").expect("insert");
            k
        };
        kept.insert("b", "2").expect("insert after the close");
        drop(kept);
        // Not emptied: "b", written after the flush, is only in the
        // journal, and is there on the next open.
        assert!(journal_bytes(dir.path()) > 0);
        let db = open_fjall(dir.path()).expect("reopen");
        assert_eq!(value_of(&db, "a").as_deref(), Some(&b"1"[..]));
        assert_eq!(value_of(&db, "b").as_deref(), Some(&b"2"[..]));
    }

    /// A journal is not emptied while a memtable holds entries that are
    /// only in it: with the flush on close skipped (its memtable is still
    /// full), [`settled_journal`] finds nothing to empty.
    #[test]
    fn a_journal_with_entries_not_in_tables_is_not_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_fjall(dir.path()).expect("open");
        keyspace(&db).insert("a", "1").expect("insert");
        assert_eq!(settled_journal(&db, dir.path()), None);
        flush_on_close(&db, dir.path());
        let settled = settled_journal(&db, dir.path()).expect("settled after the flush");
        assert_eq!(settled.1, journal_bytes(dir.path()));
    }
}
