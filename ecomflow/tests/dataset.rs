//! `replay --dataset`: a dataset `generate` wrote replays to the same
//! answers as the generated shop, and a user's file with broken lines has
//! every line stored or dead-lettered with its reason.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{output_within, RUN_LIMIT};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use stores::doc_embedded::EmbeddedDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::{DocumentStore, SessionStore};

const SHOP: [&str; 12] = [
    "--users",
    "150",
    "--products",
    "120",
    "--categories",
    "8",
    "--sessions",
    "12000",
    "--transactions",
    "3000",
    "--days",
    "12",
];

/// The binary with none of the caller's `ECOMFLOW_*` settings.
fn ecomflow(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ECOMFLOW_") {
            cmd.env_remove(key);
        }
    }
    let out = output_within(cmd.args(args), RUN_LIMIT);
    assert!(
        out.status.success(),
        "ecomflow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn replay(data_dir: &Path, extra: &[&str]) -> String {
    let dir = data_dir.display().to_string();
    let mut args = vec!["replay", "--data-dir", &dir, "--http", "127.0.0.1:0"];
    args.extend_from_slice(&["--log", "warn"]);
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&ecomflow(&args).stdout).to_string()
}

/// The Parquet files of a snapshot with their bytes, but the dead letters
/// (they name the partition and offset a record had, which depend on its
/// key, and a broken record's key is not in its line).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("list") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                let rel = path
                    .strip_prefix(base)
                    .expect("prefix")
                    .display()
                    .to_string();
                if !rel.starts_with("dead_letters") {
                    out.insert(rel, std::fs::read(&path).expect("read"));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&dir.join("snapshot"), &dir.join("snapshot"), &mut out);
    out
}

fn line(stdout: &str, prefix: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_default()
        .to_string()
}

/// `ecomflow generate` of [`SHOP`] into `dir/dataset`: the path, and as text.
fn generate_shop(dir: &Path) -> (std::path::PathBuf, String) {
    let data = dir.join("dataset");
    let data_arg = data.display().to_string();
    let mut generate = vec!["generate", "--out", &data_arg];
    generate.extend_from_slice(&SHOP);
    ecomflow(&generate);
    (data, data_arg)
}

#[test]
fn a_generated_dataset_replays_to_the_answers_of_the_generated_shop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, data_arg) = generate_shop(tmp.path());
    let shop = replay(&tmp.path().join("shop"), &SHOP);
    let from_files = replay(&tmp.path().join("files"), &["--dataset", &data_arg]);
    for prefix in ["Replayed: ", "Aggregator: ", "Ingested", "  VIP", "  High"] {
        let (a, b) = (line(&shop, prefix), line(&from_files, prefix));
        let a = a.split(" by this run").next().unwrap_or_default();
        let b = b.split(" by this run").next().unwrap_or_default();
        assert_eq!(a, b, "{prefix}\n{shop}\n{from_files}");
    }
    assert_eq!(
        std::fs::read(tmp.path().join("shop/report/report.md")).expect("report"),
        std::fs::read(tmp.path().join("files/report/report.md")).expect("report"),
    );
    let (a, b) = (
        snapshot(&tmp.path().join("shop")),
        snapshot(&tmp.path().join("files")),
    );
    assert!(a.len() > 20, "{:?}", a.keys());
    assert!(a == b, "snapshot files differ");

    // Replaying it again resumes (nothing left); other files are refused.
    let again = replay(&tmp.path().join("files"), &["--dataset", &data_arg]);
    assert!(again.contains("(0 by this run"), "{again}");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::copy(data.join("users.jsonl"), other.join("users.jsonl")).expect("copy");
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_ecomflow"))
            .args(["replay", "--data-dir"])
            .arg(tmp.path().join("files"))
            .arg("--dataset")
            .arg(&other)
            .args(["--http", "127.0.0.1:0"])
            .env_remove("ECOMFLOW_KAFKA_BROKERS"),
        RUN_LIMIT,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds a replay of another shop"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A user's export with broken lines of every kind: each line is stored or
/// dead-lettered with its reason, and the run ends cleanly.
#[test]
fn a_users_file_with_broken_lines_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("export");
    std::fs::create_dir_all(&data).expect("mkdir");
    let txn = |id: &str, user: &str, at: &str, qty: &str| {
        format!(
            r#"{{"transaction_id":"{id}","session_id":"sess_1","user_id":"{user}","timestamp":"{at}","items":[{{"product_id":"prod_00001","quantity":{qty},"unit_price":10.0,"subtotal":20.0}}],"discount":0.0,"total":20.0,"payment_method":"paypal"}}"#
        )
    };
    let mut lines: Vec<Vec<u8>> = vec![
        txn("txn_000000000001", "user_000001", "2025-01-01T10:00:00", "2").into_bytes(),
        txn("txn_000000000002", "user_000002", "2025-01-01T11:00:00", "2").into_bytes(),
        // The same id with other content: a conflict.
        txn("txn_000000000001", "user_000001", "2025-01-01T12:00:00", "2")
            .replace("paypal", "credit_card")
            .into_bytes(),
        txn("txn_000000000003", "user_000003", "2025-01-01T13:00:00", "-2").into_bytes(),
        txn("txn_000000000004", "user_000003", "2999-01-01T13:00:00", "2").into_bytes(),
        txn("txn_000000000005", "user_000003", "2025-01-01T14:00:00", "NaN").into_bytes(),
        txn("txn_000000000006", "user_000003", "2025-01-01T14:00:00", "1e400").into_bytes(),
        b"{\"transaction_id\": \"txn_\xff\xfe\"}".to_vec(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
        b"   ".to_vec(),
        txn("txn_000000000007", "user_000004", "2025-01-02T09:00:00", "2").as_bytes()[..60].to_vec(),
    ];
    let mut big = txn(
        "txn_000000000008",
        "user_000005",
        "2025-01-02T10:00:00",
        "2",
    )
    .into_bytes();
    big.splice(1..1, std::iter::repeat_n(b' ', 3 << 20));
    lines.push(big);
    let mut text = Vec::new();
    for l in &lines {
        text.extend_from_slice(l);
        text.extend_from_slice(b"\r\n");
    }
    std::fs::write(data.join("transactions.jsonl"), text).expect("write");

    let dir = tmp.path().join("run");
    let out = replay(
        &dir,
        &["--dataset", &data.display().to_string(), "--no-batch"],
    );
    // 12 lines, one blank.
    assert!(out.contains("Replayed: 11 of 11 events published"), "{out}");
    let docs = EmbeddedDocStore::open(&dir.join("docs")).expect("docs");
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for d in docs.dead_letters().expect("dead letters") {
        *reasons.entry(d.reason_code).or_default() += 1;
        assert!(d.payload.len() <= (64 << 10) + 64, "{}", d.payload.len());
    }
    let want: BTreeMap<String, u64> = [
        ("duplicate_conflict", 1),
        ("non_positive_quantity", 1),
        ("future_timestamp", 1),
        ("invalid_json", 5),
        ("oversized", 1),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(reasons, want, "{out}");
    assert_eq!(docs.counts().expect("counts").transactions, 2);
    let _sessions = SessionStore::new(Arc::new(
        EmbeddedWideStore::open(&dir.join("wide")).expect("wide"),
    ))
    .expect("tables");

    // Not a dataset: clear errors.
    for (arg, says) in [
        (tmp.path().join("nowhere"), "No such file or directory"),
        (data.join("transactions.jsonl"), "is not a directory"),
        (tmp.path().join("run"), "no dataset in"),
    ] {
        let out = output_within(
            Command::new(env!("CARGO_BIN_EXE_ecomflow"))
                .args(["replay", "--data-dir"])
                .arg(tmp.path().join("x"))
                .arg("--dataset")
                .arg(&arg),
            RUN_LIMIT,
        );
        assert_eq!(out.status.code(), Some(1), "{arg:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{arg:?}: {err}");
    }
    // The shop's flags do not mix with a dataset.
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_ecomflow"))
            .args(["replay", "--users", "5", "--dataset"])
            .arg(&data),
        RUN_LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `text` with every generated product and user id (`prod_` and exactly 5
/// digits, `user_` and exactly 6) replaced by a shop's own form: SKUs with
/// dashes, UUIDs, mixed case and non-ASCII letters.
fn rekeyed(text: &str) -> String {
    let product = |n: u32| match n % 4 {
        0 => format!("SKU-{n:05}"),
        1 => format!(
            "{:08x}-7d1c-4e2b-9a3f-{n:012x}",
            n.wrapping_mul(2_654_435_761)
        ),
        2 => format!("Prod{n}Red"),
        _ => format!("café-crème-{n}-ß"),
    };
    let user = |n: u32| {
        if n.is_multiple_of(2) {
            format!("cust-{n}")
        } else {
            format!("Kundin Ä{n}")
        }
    };
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (prefix, width, map) in [
            ("prod_", 5, &product as &dyn Fn(u32) -> String),
            ("user_", 6, &user),
        ] {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
                if digits == width {
                    out.push_str(&map(tail[..width].parse().expect("digits")));
                    rest = &tail[width..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The same shop with its ids re-keyed gives the same live pairs and
/// engagement, the same segments and the same report, ids aside.
#[test]
fn a_shop_with_its_own_ids_gets_the_same_answers_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, data_arg) = generate_shop(tmp.path());
    let own = tmp.path().join("own");
    std::fs::create_dir_all(&own).expect("mkdir");
    let mut files = 0;
    for e in std::fs::read_dir(&data).expect("list") {
        let path = e.expect("entry").path();
        let name = path.file_name().expect("name").to_owned();
        if path.extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(&path).expect("read");
            std::fs::write(own.join(&name), rekeyed(&text)).expect("write");
            files += 1;
        } else {
            std::fs::copy(&path, own.join(&name)).expect("copy");
        }
    }
    assert!(files >= 4, "{files} files");
    let own_arg = own.display().to_string();
    let generated = replay(&tmp.path().join("a"), &["--dataset", &data_arg]);
    let rekeyed_run = replay(&tmp.path().join("b"), &["--dataset", &own_arg]);
    assert!(
        rekeyed_run.contains("Ids of the shop's own form: 117 products and 142 users"),
        "{rekeyed_run}"
    );
    for prefix in [
        "Replayed: ",
        "Aggregator: ",
        "Ingested",
        "  VIP",
        "  High",
        "  Medium",
        "  Low",
    ] {
        // Without the run's timings and paths.
        let figures = |l: String| {
            let l = l
                .split(" by this run")
                .next()
                .unwrap_or_default()
                .to_string();
            l.split(" (").next().unwrap_or_default().to_string()
        };
        let (a, b) = (line(&generated, prefix), line(&rekeyed_run, prefix));
        assert!(!a.is_empty(), "{prefix}\n{generated}");
        assert_eq!(
            figures(a),
            figures(b),
            "{prefix}\n{generated}\n{rekeyed_run}"
        );
    }
    let report = |dir: &str| {
        std::fs::read_to_string(tmp.path().join(dir).join("report/report.md")).expect("report")
    };
    let (a, b) = (rekeyed(&report("a")), report("b"));
    assert!(a.len() > 2_000, "{a}");
    // Pairs are written in id order, which the new ids change: a line's
    // words are compared in any order.
    let words = |l: &str| {
        let mut w: Vec<String> = l
            .split([' ', '|'])
            .map(|w| w.trim_end_matches([',', ';', ':']).to_string())
            .filter(|w| !w.is_empty())
            .collect();
        w.sort();
        w
    };
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(words(x), words(y), "report line {}:\n{x}\n{y}", i + 1);
    }
    assert_eq!(a.lines().count(), b.lines().count());
}

/// A clickstream export imported with `ecomflow import` replays with no
/// dead letter: every record the importer writes passes ingest's rules,
/// and the live window and the report see its pairs.
#[test]
fn an_imported_clickstream_replays_without_dead_letters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from(
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n",
    );
    // 600 sessions over 6 days, 40 users, 30 products in 3 categories:
    // each views three products, every third carts two of them, every
    // sixth buys them (one purchase row each, the first twice).
    let start = chrono::NaiveDate::from_ymd_opt(2019, 10, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    for s in 0..600u32 {
        let t0 = start + chrono::TimeDelta::minutes(i64::from(s) * 14);
        let user = 1_000 + s % 40;
        let products = [s % 30, (s * 7 + 3) % 30, (s * 11 + 5) % 30];
        let mut rows: Vec<(i64, &str, u32)> = products.iter().map(|&p| (0, "view", p)).collect();
        if s % 3 == 0 {
            rows.push((1, "cart", products[0]));
            rows.push((2, "cart", products[1]));
        }
        if s % 6 == 0 {
            rows.push((3, "purchase", products[0]));
            rows.push((4, "purchase", products[0]));
            rows.push((5, "purchase", products[1]));
        }
        for (i, (offset, kind, p)) in rows.iter().enumerate() {
            let at = t0 + chrono::TimeDelta::seconds(i as i64 * 20 + offset);
            csv.push_str(&format!(
                "{} UTC,{kind},SKU-{p},{},cat.{},brand{},{}.99,{user},sess-{s}\n",
                at.format("%Y-%m-%d %H:%M:%S"),
                p % 3,
                p % 3,
                p % 5,
                p + 1
            ));
        }
    }
    let file = tmp.path().join("export.csv");
    std::fs::write(&file, csv).expect("write");
    let data = tmp.path().join("imported");
    let out = ecomflow(&[
        "import",
        "--out",
        &data.display().to_string(),
        &file.display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("taken 2,500 (cart 400, purchase 300, view 1,800), dropped 0."),
        "{text}"
    );
    assert!(
        text.contains(
            "Wrote 600 sessions, 100 transactions, 30 products, 3 categories and 40 users"
        ),
        "{text}"
    );
    let run = replay(
        &tmp.path().join("run"),
        &["--dataset", &data.display().to_string()],
    );
    assert!(run.contains("0 dead letters"), "{run}");
    assert!(
        run.contains("600 sessions, 100 transactions (100 new)"),
        "{run}"
    );
    assert!(
        run.contains("Ids of the shop's own form: 30 products and 40 users"),
        "{run}"
    );
    let report = std::fs::read_to_string(tmp.path().join("run/report/report.md")).expect("report");
    // Devices are unknown: no device finding is drawn.
    assert!(!report.contains("**Devices:**"), "{report}");
    assert!(report.contains("| unknown | 600 | 100 |"), "{report}");
}
