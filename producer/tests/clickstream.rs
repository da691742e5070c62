//! The clickstream importer on files written here, each expectation worked
//! out by hand from the rows and the rules in `producer::clickstream`.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use producer::clickstream::{import, DropReason, ImportError, ImportReport};
use schemas::{ConversionStatus, Session, Transaction};
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn gzip(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).expect("create"),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("finish");
    path
}

fn lines<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Vec<T> {
    std::fs::read_to_string(dir.join(name))
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

fn run(files: &[PathBuf], out: &Path) -> ImportReport {
    import(files, out, |_, _, _| {}).expect("imports")
}

/// Session s1 spans midnight: viewed, carted, bought in two purchase rows
/// (quantity 2), the price quoted as text. Session s2: a cart row removed
/// again, and a purchase of another product with no cart row, missing
/// brand and category. Then one row of each drop reason.
const SHOP: &str = "\
2019-10-01 23:50:00 UTC,view,1001,2053,electronics.smartphone,samsung,100.50,u1,s1
2019-10-01 23:55:00 UTC,cart,1001,2053,electronics.smartphone,samsung,100.50,u1,s1
2019-10-02 00:05:00 UTC,purchase,1001,2053,electronics.smartphone,samsung,\"100.50\",u1,s1
2019-10-02 00:06:00 UTC,purchase,1001,2053,electronics.smartphone,samsung,100.50,u1,s1
2019-10-02 00:07:00 UTC,view,1002,,,,,u2,s2
2019-10-02 00:08:00 UTC,cart,1002,,,,12,u2,s2
2019-10-02 00:09:00 UTC,remove_from_cart,1002,,,,12,u2,s2
2019-10-02 00:10:00 UTC,purchase,1003,,,,5,u2,s2
2019-10-02 00:11:00 UTC,wishlist,1003,2054,,acme,5,u2,s2
2019-10-02 00:12:00 UTC,view,1003,2054
not a time,view,1003,2054,,acme,5,u2,s2
2019-10-02 00:13:00 UTC,cart,1003,2054,,acme,,u3,s3
2019-10-02 00:14:00 UTC,view,1003,2054,,acme,5,u3,s3
2019-10-02 00:15:00 UTC,view,1003,2054,,acme,5,u4,s3
2019-10-02 00:16:00 UTC,view,,2054,,acme,5,u4,s4
2019-10-02 00:17:00 UTC,cart,1001,2053,,samsung,abc,u4,s4
";

#[test]
fn rows_become_sessions_and_transactions_by_the_stated_rules() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(tmp.path(), "oct.csv", &format!("{HEADER}{SHOP}"));
    let out = tmp.path().join("out");
    let report = run(&[file], &out);

    assert_eq!(report.rows, 16);
    let taken: Vec<(&str, u64)> = report.taken.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        taken,
        [
            ("cart", 2),
            ("purchase", 3),
            ("remove_from_cart", 1),
            ("view", 3)
        ]
    );
    let dropped: Vec<(DropReason, u64)> = report.dropped.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        dropped,
        [
            (DropReason::BrokenLine, 1),
            (DropReason::BadTime, 1),
            (DropReason::UnknownEventType, 1),
            (DropReason::MissingProduct, 1),
            (DropReason::BadPrice, 2),
            (DropReason::SessionUserMismatch, 1),
        ]
    );
    assert_eq!(report.rows, 9 + report.dropped_rows());
    assert_eq!(
        (report.sessions, report.transactions, report.users),
        (3, 2, 3)
    );

    let sessions: Vec<Session> = lines(&out, "sessions.jsonl");
    let s1 = &sessions[0];
    assert_eq!((s1.session_id.as_str(), s1.user_id.as_str()), ("s1", "u1"));
    assert_eq!(s1.start_time.to_string(), "2019-10-01 23:50:00");
    // 23:50 to 00:06.
    assert_eq!(s1.duration_seconds, 16 * 60);
    assert_eq!(s1.conversion_status, ConversionStatus::Converted);
    assert_eq!(s1.viewed_products, ["1001"]);
    assert_eq!(s1.cart_contents.len(), 1);
    assert_eq!(
        (s1.cart_contents[0].quantity, s1.cart_contents[0].price),
        (2, 100.5)
    );
    assert_eq!(s1.device_info.device_type, schemas::DeviceType::Unknown);
    let s2 = &sessions[1];
    assert_eq!(s2.viewed_products, ["1002", "1003"]);
    assert_eq!(s2.conversion_status, ConversionStatus::Converted);
    // 1002 was removed again; 1003 was bought without a cart row.
    assert_eq!(s2.cart_contents.len(), 1);
    assert_eq!(s2.cart_contents[0].product_id, "1003");
    // s3: its cart row had no price, so only its view is left: browsed.
    let s3 = &sessions[2];
    assert_eq!(
        (s3.conversion_status, s3.duration_seconds),
        (ConversionStatus::Browsed, 0)
    );
    assert!(s3.cart_contents.is_empty());

    let txns: Vec<Transaction> = lines(&out, "transactions.jsonl");
    assert_eq!(txns[0].transaction_id, "t-s1");
    assert_eq!(txns[0].timestamp.to_string(), "2019-10-02 00:06:00");
    assert_eq!(
        (
            txns[0].items[0].quantity,
            txns[0].items[0].subtotal,
            txns[0].total
        ),
        (2, 201.0, 201.0)
    );
    assert_eq!(txns[0].payment_method, schemas::PaymentMethod::Unknown);
    assert_eq!((txns[1].session_id.as_str(), txns[1].total), ("s2", 5.0));

    let products: Vec<schemas::Product> = lines(&out, "products.jsonl");
    let names: Vec<(&str, &str, &str)> = products
        .iter()
        .map(|p| {
            (
                p.product_id.as_str(),
                p.name.as_str(),
                p.category_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("1001", "samsung smartphone", "2053"),
            ("1002", "1002", "unknown"),
            ("1003", "1003", "unknown"),
        ]
    );
    let users: Vec<schemas::User> = lines(&out, "users.jsonl");
    assert_eq!(users[0].purchase_summary.total_spent, 201.0);
    assert_eq!(users[0].registration_date.to_string(), "2019-10-01");
    assert_eq!(users[2].purchase_summary.total_purchases, 0);

    // Every record the importer wrote passes ingest's validators.
    for s in &sessions {
        let bytes = schemas::envelope::encode(schemas::envelope::Kind::Session, s);
        assert_eq!(schemas::decode_session(&bytes).as_ref(), Ok(s));
    }
    for t in &txns {
        let bytes = schemas::envelope::encode(schemas::envelope::Kind::Transaction, t);
        assert_eq!(schemas::decode_transaction(&bytes).as_ref(), Ok(t));
    }

    // A second import into the same directory is refused.
    let again = import(&[tmp.path().join("oct.csv")], &out, |_, _, _| {});
    assert!(
        matches!(again, Err(ImportError::OutputExists(_))),
        "{again:?}"
    );
}

#[test]
fn gzip_and_plain_give_the_same_dataset_and_files_read_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (first, second) = SHOP.split_at(SHOP.find("2019-10-02 00:07").expect("row"));
    let plain = write(tmp.path(), "all.csv", &format!("{HEADER}{SHOP}"));
    let gz_a = gzip(tmp.path(), "a.csv.gz", &format!("{HEADER}{first}"));
    // Columns in another order, one more ignored.
    let mut reordered = String::from("user_session,extra,user_id,price,brand,category_code,category_id,product_id,event_type,event_time\n");
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(second.as_bytes());
    for r in rdr.records() {
        let r = r.expect("csv");
        let f: Vec<&str> = r.iter().collect();
        if f.len() == 9 {
            let quoted: Vec<String> = [8, 9, 7, 6, 5, 4, 3, 2, 1, 0]
                .iter()
                .map(|&i| {
                    if i == 9 {
                        "x".to_string()
                    } else {
                        format!("\"{}\"", f[i])
                    }
                })
                .collect();
            reordered.push_str(&quoted.join(","));
        } else {
            reordered.push_str(&f.join(","));
        }
        reordered.push('\n');
    }
    let gz_b = gzip(tmp.path(), "b.csv.gz", &reordered);
    let a = run(&[plain], &tmp.path().join("plain"));
    let b = run(&[gz_a, gz_b], &tmp.path().join("gz"));
    assert_eq!(a, b);
    for name in [
        "sessions.jsonl",
        "transactions.jsonl",
        "products.jsonl",
        "users.jsonl",
        "categories.jsonl",
    ] {
        assert_eq!(
            std::fs::read(tmp.path().join("plain").join(name)).expect("read"),
            std::fs::read(tmp.path().join("gz").join(name)).expect("read"),
            "{name}"
        );
    }
}

/// Sessions are written once the rows are a day past their start: a row
/// more than a day after its session's start, or for a session written
/// already, is dropped; ids over 256 bytes too; transactions come out in
/// time order although their sessions close in start order.
#[test]
fn long_sessions_late_rows_and_long_ids_are_dropped_and_transactions_kept_in_time_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let long = "x".repeat(257);
    let text = format!(
        "{HEADER}\
2019-10-01 08:00:00 UTC,view,1,,,,5,u1,a
2019-10-01 09:00:00 UTC,view,2,,,,5,u2,b
2019-10-01 09:30:00 UTC,purchase,2,,,,5,u2,b
2019-10-01 12:00:00 UTC,purchase,1,,,,5,u1,a
2019-10-01 13:00:00 UTC,view,1,,,,5,{long},c
2019-10-02 08:00:01 UTC,view,2,,,,5,u1,a
2019-10-02 10:00:00 UTC,view,1,,,,5,u3,d
2019-10-03 10:00:01 UTC,view,1,,,,5,u1,a
"
    );
    let file = write(tmp.path(), "f.csv", &text);
    let out = tmp.path().join("out");
    let report = run(&[file], &out);
    let dropped: Vec<(DropReason, u64)> = report.dropped.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        dropped,
        [(DropReason::IdTooLong, 1), (DropReason::SessionOverADay, 2)]
    );
    let txns: Vec<Transaction> = lines(&out, "transactions.jsonl");
    let order: Vec<&str> = txns.iter().map(|t| t.session_id.as_str()).collect();
    // Session a started first but bought last.
    assert_eq!(order, ["b", "a"]);
    let sessions: Vec<Session> = lines(&out, "sessions.jsonl");
    let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "d"]);
    assert_eq!(sessions[0].duration_seconds, 4 * 3600);
}

#[test]
fn a_header_without_a_needed_column_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write(
        tmp.path(),
        "f.csv",
        "event_time,event_type,product_id,user_id\n2019-10-01 08:00:00 UTC,view,1,u1\n",
    );
    let err = import(&[file], &tmp.path().join("out"), |_, _, _| {}).expect_err("refused");
    assert!(err.to_string().contains("\"user_session\""), "{err}");
    assert!(!tmp.path().join("out/sessions.jsonl").exists());
}
