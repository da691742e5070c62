//! Crash safety on the embedded stack: `ecomflow replay` (publish + ingest in
//! one process) is killed with SIGKILL mid-way and started again. Then every
//! valid event is stored exactly once, summaries equal a recomputation from
//! the stored transactions, and the dead-letter topic holds exactly the
//! dirty records.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{output_within, Watchdog, RUN_LIMIT};

use eventlog::embedded::EmbeddedLog;
use eventlog::EventLog;
use producer::events::Stream;
use producer::{Catalog, EventStream, ShopConfig};
use schemas::envelope::{
    decode_catalog, decode_session, decode_transaction, CatalogRecord, DeadLetter,
};
use schemas::{Session, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stores::doc::summarize;
use stores::doc_embedded::EmbeddedDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::{DocumentStore, SessionStore};

fn shop() -> ShopConfig {
    ShopConfig {
        users: 150,
        products: 120,
        categories: 8,
        sessions: 12_000,
        transactions: 3_000,
        days: 12,
        ..ShopConfig::default()
    }
}

fn args(dir: &std::path::Path) -> Vec<String> {
    let c = shop();
    [
        "replay",
        "--data-dir",
        &dir.display().to_string(),
        "--users",
        &c.users.to_string(),
        "--products",
        &c.products.to_string(),
        "--categories",
        &c.categories.to_string(),
        "--sessions",
        &c.sessions.to_string(),
        "--transactions",
        &c.transactions.to_string(),
        "--days",
        &c.days.to_string(),
        "--batch",
        "300",
        "--ingest-batch",
        "300",
        "--http",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The binary with none of the caller's `ECOMFLOW_*` settings: the test
/// script exports broker and database addresses for other tests, and this
/// one is about the embedded stack.
fn ecomflow() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ECOMFLOW_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn published(dir: &std::path::Path) -> u64 {
    let log = EmbeddedLog::open(&dir.join("log")).expect("open log");
    let m = log.marker(producer::replay::MARKER).expect("marker");
    m.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["published"].as_u64())
        .unwrap_or(0)
}

#[test]
fn sigkill_mid_replay_then_restart_loses_and_repeats_nothing() {
    sigkill_mid_replay_then_restart(&[]);
}

/// The same with `--compress`: the log's records in compressed blocks,
/// the stores' tables compressed.
#[test]
fn sigkill_mid_compressed_replay_then_restart_loses_and_repeats_nothing() {
    let dir = sigkill_mid_replay_then_restart(&["--compress"]);
    // Blocks, not frames: a block's header holds its first offset (0)
    // where a frame holds its event time, then a record count.
    let log = std::fs::read(dir.path().join("log/partitions/sessions/0.log")).expect("log");
    let first = u64::from_le_bytes(log[8..16].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(log[16..20].try_into().expect("4 bytes"));
    assert_eq!(first, 0, "the log is not in blocks");
    assert!(count > 0);
}

/// Kills a replay (with `extra` flags) a third of the way, runs it again
/// to the end, and checks the state; returns its data dir.
fn sigkill_mid_replay_then_restart(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = shop();
    let catalog = Arc::new(Catalog::generate(&cfg));
    let total = EventStream::new(&cfg, catalog.clone()).total();

    // Paced at 3 simulated days per second, 12 days take about 4 s. Kill it
    // once a third of the events are published, as its log says: progress,
    // not a clock, so a slow machine does not change what is tested.
    let mut child = ecomflow()
        .args(args(dir.path()))
        .args(["--speed", "3d/s", "--log", "warn,producer=debug"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let dog = Watchdog::start(&child, RUN_LIMIT);
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = 0;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.expect("read stderr");
        if let Some(n) = line
            .split("published=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        {
            seen = n;
            if n >= total / 3 {
                break;
            }
        }
    }
    assert!(
        seen >= total / 3,
        "the replay ended after {seen} of {total} events without reaching a third"
    );
    dog.assert_not_fired();
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    drop(dog);
    let before = published(dir.path());
    assert!(
        before > 0 && before < total,
        "killed mid-way: {before} of {total} published"
    );

    let started = Instant::now();
    let out = output_within(
        ecomflow()
            .args(args(dir.path()))
            .args(["--log", "warn"])
            .args(extra),
        RUN_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "restart failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{total} of {total} events published")),
        "{stdout}"
    );
    eprintln!(
        "killed after {before} of {total} events; restart finished in {:.1} s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(published(dir.path()), total);
    assert_state_is_complete(dir.path(), &cfg, catalog);
    dir
}

/// Every valid event of the shop `cfg` is stored exactly once in the
/// stores under `dir`, summaries equal a recomputation from the stored
/// transactions, the dead-letter topic and the stored dead letters are
/// exactly the dirty records, and the final batch's snapshot holds
/// everything once.
fn assert_state_is_complete(dir: &std::path::Path, cfg: &ShopConfig, catalog: Arc<Catalog>) {
    // What should be there, from the generator.
    let mut sessions: HashMap<String, Vec<Session>> = HashMap::new();
    let mut txns: Vec<Transaction> = Vec::new();
    let mut users = 0u64;
    let mut planted: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in EventStream::new(cfg, catalog) {
        let p = e.payload();
        match e.stream {
            Stream::Sessions => {
                if let Ok(s) = decode_session(&p) {
                    sessions.entry(s.user_id.clone()).or_default().push(s);
                }
            }
            Stream::Transactions => txns.extend(decode_transaction(&p).ok()),
            Stream::Catalog => {
                users += u64::from(matches!(decode_catalog(&p), Ok(CatalogRecord::User(_))))
            }
        }
        if let Some(code) = e.dirty {
            *planted
                .entry((e.stream.topic().to_string(), code.to_string()))
                .or_default() += 1;
        }
    }

    let docs = EmbeddedDocStore::open(&dir.join("docs")).expect("docs");
    let counts = docs.counts().expect("counts");
    assert_eq!(
        counts.transactions,
        txns.len() as u64,
        "every valid transaction stored once"
    );
    assert_eq!(counts.users, users);
    for t in &txns {
        assert_eq!(
            docs.transaction(&t.transaction_id).expect("get").as_ref(),
            Some(t)
        );
    }
    let mut by_user: HashMap<&str, u64> = HashMap::new();
    for t in &txns {
        *by_user.entry(t.user_id.as_str()).or_default() += 1;
    }
    let from = schemas::time::parse("2000-01-01T00:00:00").expect("t");
    let to = schemas::time::parse("2100-01-01T00:00:00").expect("t");
    for (u, n) in &by_user {
        let stored = docs.user_transactions(u, from, to).expect("range");
        assert_eq!(stored.len() as u64, *n);
        // Users published dirty have no profile; the others must agree.
        if let Some(user) = docs.user(u).expect("get") {
            assert_eq!(user.purchase_summary, summarize(&stored), "summary of {u}");
        }
    }

    let wide = SessionStore::new(Arc::new(
        EmbeddedWideStore::open(&dir.join("wide")).expect("wide"),
    ))
    .expect("tables");
    let mut stored_sessions = 0;
    for (u, mut want) in sessions {
        want.sort_by(|a, b| {
            b.start_time
                .cmp(&a.start_time)
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        let got = wide.last_sessions(&u, 100_000).expect("scan");
        stored_sessions += got.len();
        assert_eq!(got, want, "sessions of {u}, newest first, each once");
    }
    assert!(stored_sessions > 11_900, "{stored_sessions}");

    let log = EmbeddedLog::open(&dir.join("log")).expect("log");
    let mut c = log
        .consumer("check", &[schemas::topics::DEAD_LETTERS])
        .expect("consumer");
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    loop {
        let batch = c.poll(10_000, Duration::from_millis(200)).expect("poll");
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let d: DeadLetter = serde_json::from_slice(&r.payload).expect("dead letter json");
            assert!(
                seen.insert((d.source_topic.clone(), d.partition, d.offset)),
                "dead letter sent twice: {d:?}"
            );
            *got.entry((d.source_topic, d.reason_code)).or_default() += 1;
        }
    }
    assert_eq!(
        got, planted,
        "dead letters are exactly the planted dirty records"
    );

    // The document store keeps the same dead letters, each once.
    let mut kept: BTreeMap<(String, String), u64> = BTreeMap::new();
    for d in docs.dead_letters().expect("dead letters") {
        *kept.entry((d.source_topic, d.reason_code)).or_default() += 1;
    }
    assert_eq!(kept, planted, "stored dead letters");

    // The final batch ran over everything: the snapshot holds every stored
    // transaction and session once, and the report was written.
    let engine = batch::Engine::open(&dir.join("snapshot")).expect("snapshot");
    let n = |sql: &str| {
        batch::table::Table::from_batches(&engine.query(sql).expect("sql"))
            .expect("table")
            .i64(0, "n")
            .expect("n")
    };
    assert_eq!(
        n("SELECT COUNT(DISTINCT transaction_id) AS n FROM transactions") as usize,
        txns.len()
    );
    assert_eq!(
        n("SELECT COUNT(*) AS n FROM transactions") as usize,
        txns.len()
    );
    assert_eq!(
        n("SELECT COUNT(*) AS n FROM sessions") as usize,
        stored_sessions
    );
    assert!(dir.join("report").join("report.md").exists());
}

/// Replays the shop in `dir` to the end (with `--fsync`) and kills the
/// process while its stores are still open, as a power loss would; returns
/// what it logged.
fn run_then_lose_power(dir: &std::path::Path) -> String {
    use std::io::BufRead;
    let log = dir.join("replay.stderr");
    let mut child = ecomflow()
        .args(args(dir))
        .args(["--fsync", "--no-nightly", "--keep-serving", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("stderr file"))
        .spawn()
        .expect("run ecomflow");
    let dog = Watchdog::start(&child, RUN_LIMIT);
    let out = child.stdout.take().expect("stdout");
    let serving = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("Serving lookups on"));
    dog.assert_not_fired();
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    drop(dog);
    let stderr = std::fs::read_to_string(&log).expect("stderr");
    assert!(serving, "the replay ended before serving:\n{stderr}");
    stderr
}

/// A copy of a data dir, to open its stores without flushing the
/// original's memtables into tables.
fn copy_of(dir: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    let copy_dir = tempfile::tempdir().expect("tempdir");
    copy(dir, copy_dir.path());
    copy_dir
}

/// The newest journal file of a fjall database (`<dir>/<id>.jnl`).
fn newest_journal(db: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(db)
        .expect("list store")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let id: u64 = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jnl")?
                .parse()
                .ok()?;
            Some((id, path))
        })
        .max()
        .map(|(_, p)| p)
        .expect("a journal")
}

/// A machine crash without `--fsync` (or a disk that lied about a sync)
/// can take an arbitrary tail of each store's journal. The stores record
/// their progress after each batch's writes, so one that lost its tail
/// lost its progress too; the restart reads those records again from the
/// log. Three cuts at seeded random points of both stores' journals, after
/// a complete run (with `--fsync`, whose path this also runs).
///
/// A store that closes writes its memtables to tables (the journal is then
/// history), so each run is ended the way a power loss ends it: by SIGKILL
/// while it still has the stores open (`--keep-serving`, once its summary
/// is out), and the checks read copies of the data dir, whose stores flush
/// on close without touching the journals the next cut goes to.
#[test]
fn a_power_loss_that_cuts_the_stores_journals_is_repaired_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = shop();
    let catalog = Arc::new(Catalog::generate(&cfg));
    let run = || run_then_lose_power(dir.path());
    run();
    let consumed = || -> u64 {
        let copy = copy_of(dir.path());
        let docs = EmbeddedDocStore::open(&copy.path().join("docs")).expect("docs");
        let wide = SessionStore::new(Arc::new(
            EmbeddedWideStore::open(&copy.path().join("wide")).expect("wide"),
        ))
        .expect("tables");
        let held = |p: stores::Progress| p.values().sum::<u64>();
        held(docs.progress("ingest").expect("progress"))
            .min(held(wide.progress("ingest").expect("progress")))
    };
    let all = consumed();
    assert!(all > 15_000, "{all}");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rewinds = 0;
    for trial in 0..3 {
        for store in ["docs", "wide"] {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let journal = newest_journal(&dir.path().join(store));
            let len = std::fs::metadata(&journal).expect("journal").len();
            let cut = len * (2 + (seed >> 33) % 96) / 100;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&journal)
                .expect("open journal");
            file.set_len(cut).expect("truncate");
            eprintln!("trial {trial}: {store} journal cut from {len} to {cut} bytes");
        }
        let held = consumed();
        let stderr = run();
        let warned = stderr.contains("reading those records again");
        assert_eq!(
            warned,
            held < all,
            "trial {trial}: stores held {held} of {all}; warning: {warned}\n{stderr}"
        );
        rewinds += usize::from(warned);
        assert_eq!(consumed(), all, "trial {trial}");
        assert_state_is_complete(copy_of(dir.path()).path(), &cfg, catalog.clone());
    }
    assert!(
        rewinds > 0,
        "no cut took any progress: the test proved nothing"
    );
}

/// The "Aggregator: …" line of a run's summary and the best-sellers'
/// partners after it.
fn aggregator_summary(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Aggregator: "))
        .unwrap_or_default()
        .to_string();
    let partners = stdout
        .split("Frequently bought together")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take(4)
        .collect::<Vec<_>>()
        .join("\n");
    (line, partners)
}

#[test]
fn a_lost_aggregator_checkpoint_is_an_error_and_rebuild_restores_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run =
        |extra: &[&str]| output_within(ecomflow().args(args(dir.path())).args(extra), RUN_LIMIT);
    let first = run(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let (line, partners) = aggregator_summary(&String::from_utf8_lossy(&first.stdout));
    assert!(
        line.contains(" 0 late;") && !partners.is_empty(),
        "{line}\n{partners}"
    );

    // Without its checkpoint the group's committed offsets would skip every
    // event already counted: an error that says what to do, not 0 pairs.
    std::fs::remove_file(dir.path().join("aggregator").join("checkpoint.bin"))
        .expect("remove checkpoint");
    let lost = run(&[]);
    let err = String::from_utf8_lossy(&lost.stderr);
    assert!(!lost.status.success(), "exit 0 with a lost checkpoint");
    assert!(
        err.contains("missing, but the consumer group has committed")
            && err.contains("--rebuild-aggregator"),
        "{err}"
    );

    // Rebuilding re-reads the log: the same window, pairs and partners.
    let rebuilt = run(&["--rebuild-aggregator"]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let (line2, partners2) = aggregator_summary(&String::from_utf8_lossy(&rebuilt.stdout));
    let applied = |l: &str| {
        l.split(" events applied")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let window = |l: &str| l.split("; ").nth(1).unwrap_or_default().to_string();
    assert_eq!(applied(&line2), applied(&line), "{line2} vs {line}");
    assert_eq!(window(&line2), window(&line), "{line2} vs {line}");
    assert_eq!(partners2, partners);
}
