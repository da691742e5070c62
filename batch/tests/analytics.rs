//! Every analytic on a tiny hand-made shop whose answers were worked out by
//! hand (the arithmetic is in the comments), plus the incremental snapshot.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use batch::{BatchConfig, SegmentCuts};
use chrono::{NaiveDate, NaiveDateTime};
use schemas::*;
use std::path::Path;
use std::sync::Arc;
use stores::doc_embedded::EmbeddedDocStore;
use stores::wide_embedded::EmbeddedWideStore;
use stores::{DocumentStore, SessionStore};

fn ts(s: &str) -> NaiveDateTime {
    schemas::time::parse(s).expect("test literal")
}

fn day(s: &str) -> NaiveDate {
    schemas::time::parse_date(s).expect("test literal")
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        name: format!("Name of {id}"),
        email: format!("{id}@example.com"),
        geo_data: GeoData {
            city: "Lyon".into(),
            state: "ARA".into(),
            country: "FR".into(),
        },
        registration_date: day("2024-12-01"),
        purchase_summary: PurchaseSummary::default(),
    }
}

fn product(id: &str, price: f64) -> Product {
    Product {
        product_id: id.into(),
        name: format!("Product {id}"),
        category_id: "cat_001".into(),
        base_price: price,
        current_stock: 10,
        is_active: true,
        price_history: vec![PricePoint {
            price,
            date: day("2024-12-01"),
        }],
        creation_date: day("2024-12-01"),
    }
}

/// Items as (product, quantity, unit price); total = sum of subtotals.
fn txn(id: &str, user: &str, at: &str, items: &[(&str, u32, f64)]) -> Transaction {
    let items: Vec<LineItem> = items
        .iter()
        .map(|(p, q, price)| LineItem {
            product_id: p.to_string(),
            quantity: *q,
            unit_price: *price,
            subtotal: f64::from(*q) * price,
        })
        .collect();
    Transaction {
        transaction_id: id.into(),
        session_id: format!("sess_for_{id}"),
        user_id: user.into(),
        timestamp: ts(at),
        total: items.iter().map(|i| i.subtotal).sum(),
        items,
        discount: 0.0,
        payment_method: PaymentMethod::CreditCard,
    }
}

fn session(
    id: &str,
    user: &str,
    at: &str,
    device: DeviceType,
    status: ConversionStatus,
    viewed: &[&str],
    cart: &[&str],
) -> Session {
    Session {
        session_id: id.into(),
        user_id: user.into(),
        start_time: ts(at),
        duration_seconds: 600,
        referrer: "direct".into(),
        device_info: DeviceInfo {
            device_type: device,
            os: "Linux".into(),
            browser: "Firefox".into(),
            city: "Lyon".into(),
            state: "ARA".into(),
            ip: "10.0.0.1".into(),
        },
        conversion_status: status,
        viewed_products: viewed.iter().map(|s| s.to_string()).collect(),
        cart_contents: cart
            .iter()
            .map(|p| CartItem {
                product_id: p.to_string(),
                quantity: 1,
                price: 1.0,
            })
            .collect(),
    }
}

fn dead(topic: &str, offset: u64, code: &str) -> DeadLetter {
    DeadLetter {
        source_topic: topic.into(),
        partition: 0,
        offset,
        reason_code: code.into(),
        reason: code.into(),
        payload: "{}".into(),
    }
}

struct Shop {
    docs: EmbeddedDocStore,
    sessions: SessionStore,
}

impl Shop {
    /// Stores sessions where ingest does: the wide-column store (a user's
    /// sessions) and the document store (the snapshot reads them by day).
    fn put_sessions(&self, sessions: &[Session]) {
        self.sessions.put_sessions(sessions).expect("sessions");
        self.docs.put_sessions(sessions).expect("session documents");
    }
}

/// Snapshots the shop (not `batch::run`: the metrics test counts its runs)
/// and opens the query engine on it.
fn snapshot_engine(shop: &Shop, dir: &Path) -> (BatchConfig, batch::Engine) {
    let cfg = BatchConfig::new(dir);
    batch::snapshot::snapshot_checked(
        &shop.docs,
        &shop.sessions,
        &cfg.snapshot_dir,
        None,
        batch::snapshot::Check::Full,
    )
    .expect("snapshot");
    let engine = batch::Engine::open(&cfg.snapshot_dir).expect("engine");
    (cfg, engine)
}

fn open(dir: &Path) -> Shop {
    let docs = EmbeddedDocStore::open(&dir.join("docs")).expect("docs");
    let wide = EmbeddedWideStore::open(&dir.join("wide")).expect("wide");
    let sessions = SessionStore::new(Arc::new(wide)).expect("sessions");
    Shop { docs, sessions }
}

/// Users 1-5 (4 and 5 never buy; 5 has one browsing session with no
/// views), products 1-3 at 10, 5 and 30, two days of activity.
fn tiny_shop(dir: &Path) -> Shop {
    use ConversionStatus::*;
    use DeviceType::*;
    let shop = open(dir);
    let d = &shop.docs;
    d.upsert_categories(&[Category {
        category_id: "cat_001".into(),
        name: "Things".into(),
    }])
    .expect("categories");
    d.upsert_products(&[product("p1", 10.0), product("p2", 5.0), product("p3", 30.0)])
        .expect("products");
    d.upsert_users(&["u1", "u2", "u3", "u4", "u5"].map(user))
        .expect("users");
    d.put_transactions(&[
        txn(
            "t1",
            "u1",
            "2025-01-01T10:00:00",
            &[("p1", 1, 10.0), ("p2", 2, 5.0)],
        ),
        txn(
            "t2",
            "u1",
            "2025-01-02T09:00:00",
            &[("p1", 1, 10.0), ("p3", 1, 30.0)],
        ),
        txn(
            "t3",
            "u2",
            "2025-01-01T12:00:00",
            &[("p1", 2, 10.0), ("p2", 1, 5.0)],
        ),
        txn("t4", "u3", "2025-01-02T15:00:00", &[("p3", 1, 30.0)]),
    ])
    .expect("transactions");
    shop.put_sessions(&[
        session(
            "s1",
            "u1",
            "2025-01-01T09:50:00",
            Desktop,
            Converted,
            &["p1", "p2", "p3"],
            &["p1", "p2"],
        ),
        session(
            "s2",
            "u1",
            "2025-01-02T08:50:00",
            Mobile,
            Converted,
            &["p1", "p3"],
            &["p1", "p3"],
        ),
        session(
            "s3",
            "u2",
            "2025-01-01T11:50:00",
            Desktop,
            Converted,
            &["p1", "p2"],
            &["p1", "p2"],
        ),
        session(
            "s4",
            "u2",
            "2025-01-02T10:00:00",
            Mobile,
            Abandoned,
            &["p2", "p3"],
            &["p3"],
        ),
        session(
            "s5",
            "u3",
            "2025-01-02T14:50:00",
            Tablet,
            Converted,
            &["p3"],
            &["p3"],
        ),
        session("s6", "u3", "2025-01-01T08:00:00", Mobile, Browsed, &[], &[]),
        session(
            "s7",
            "u5",
            "2025-01-01T18:00:00",
            Desktop,
            Browsed,
            &[],
            &[],
        ),
    ]);
    d.put_dead_letters(&[
        dead("transactions", 8, "empty_items"),
        dead("transactions", 9, "empty_items"),
        dead("sessions", 4, "bad_timestamp"),
    ])
    .expect("dead letters");
    shop
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}

#[test]
fn every_analytic_matches_the_hand_computed_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let mut cfg = BatchConfig::new(dir.path());
    cfg.min_views = 1;
    // 5 users: cumulative cut-offs floor(0.2*5) = 1, floor(0.4*5) = 2,
    // floor(0.8*5) = 4.
    cfg.cuts = SegmentCuts {
        vip: 0.2,
        high: 0.2,
        medium: 0.4,
    };
    let out = batch::run(&shop.docs, &shop.sessions, &cfg).expect("batch");
    let f = &out.findings;
    assert_eq!(out.through, Some(day("2025-01-02")));
    assert_eq!(out.partitions_written, 4); // 2 days x (transactions, sessions)
    assert_eq!(out.rows_written, 4 + 7);

    // Cleaning: kept + removed = before; catalog = 5 users + 3 products + 1 category.
    let cleaning: Vec<(String, i64, i64, i64)> = (0..f.cleaning.rows.len())
        .map(|r| {
            (
                f.cleaning.text(r, "source").unwrap(),
                f.cleaning.i64(r, "before").unwrap(),
                f.cleaning.i64(r, "after").unwrap(),
                f.cleaning.i64(r, "removed").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cleaning,
        vec![
            ("catalog".to_string(), 9, 9, 0),
            ("sessions".to_string(), 8, 7, 1),
            ("transactions".to_string(), 6, 4, 2),
        ]
    );
    close(f.cleaning.f64(2, "removed_pct").unwrap(), 200.0 / 6.0);
    assert_eq!(f.cleaning_reasons.rows.len(), 2);
    assert_eq!(f.cleaning_reasons.text(1, "reason").unwrap(), "empty_items");
    assert_eq!(f.cleaning_reasons.i64(1, "removed").unwrap(), 2);

    // Bought together: t1 {p1,p2}, t2 {p1,p3}, t3 {p1,p2}, t4 single.
    assert_eq!(f.co_purchase.unique_pairs, 2);
    assert_eq!(f.co_purchase.total, 3);
    close(f.co_purchase.avg_per_pair, 1.5);
    assert_eq!(f.co_purchase.top[0], ("p1".into(), "p2".into(), 2));
    assert_eq!(f.co_purchase.top[1], ("p1".into(), "p3".into(), 1));
    // Viewed together: s1 gives 3 pairs, s2 (p1,p3), s3 (p1,p2), s4 (p2,p3):
    // each pair twice; (p2,p3) never bought together: 1 of 3.
    assert_eq!(f.co_view.unique_pairs, 3);
    assert_eq!(f.co_view.total, 6);
    close(f.co_view.avg_per_pair, 2.0);
    assert_eq!(f.co_view.top[0], ("p1".into(), "p2".into(), 2));
    close(f.viewed_never_bought_pct, 100.0 / 3.0);

    // Product performance: units p1 1+1+2 = 4, p2 2+1 = 3, p3 1+1 = 2;
    // viewing sessions p1 3, p2 3, p3 4; conversion 133.33, 100, 50.
    let tc = &f.top_converting;
    assert_eq!(
        (0..3)
            .map(|r| tc.text(r, "product_id").unwrap())
            .collect::<Vec<_>>(),
        ["p1", "p2", "p3"]
    );
    close(tc.f64(0, "conversion_rate").unwrap(), 400.0 / 3.0);
    assert_eq!(tc.i64(2, "sessions_viewed").unwrap(), 4);
    close(tc.f64(2, "total_revenue").unwrap(), 60.0);
    close(tc.f64(1, "total_revenue").unwrap(), 15.0);
    close(f.conversion_range.0, 50.0);
    close(f.conversion_range.1, 400.0 / 3.0);
    assert_eq!(f.top_selling.text(0, "product_id").unwrap(), "p1");
    assert_eq!(f.top_selling.i64(0, "units_sold").unwrap(), 4);

    // CLV, by hand:
    // u1: spent 60, AOV 30, 2 sessions, 2 converted, 5 viewed:
    //     engagement 0.6 + 1.0 + 0.01 = 1.61, future 30 x 1.61 x 0.5 = 24.15, CLV 84.15
    // u2: 25, AOV 25, 2 sessions, 1 converted, 4 viewed: 1.108, 13.85, 38.85
    // u3: 30, AOV 30, 2 sessions, 1 converted, 1 viewed: 1.102, 16.53, 46.53
    // u4: nothing at all; u5: one session, nothing viewed: both CLV 0.
    // Ranks: u1 1, u3 2, u2 3, u4 and u5 tied at 4. The Medium cut-off is 4,
    // but u4 and u5 never bought: a user who never bought is Low, whatever
    // the tie. Medium = u2; Low = u4, u5.
    let seg: Vec<(String, u64)> = f
        .segments
        .iter()
        .map(|s| (s.segment.clone(), s.customers))
        .collect();
    assert_eq!(
        seg,
        vec![
            ("VIP".to_string(), 1),
            ("High".to_string(), 1),
            ("Medium".to_string(), 1),
            ("Low".to_string(), 2)
        ]
    );
    close(f.segments[0].avg_clv, 84.15);
    close(f.segments[0].revenue, 60.0);
    close(f.segments[0].revenue_share_pct, 6000.0 / 115.0);
    close(f.segments[1].avg_clv, 46.53);
    close(f.segments[2].avg_clv, 38.85);
    close(f.segments[2].share_pct, 20.0);
    close(f.segments[3].avg_clv, 0.0);
    close(f.segments[3].share_pct, 40.0);
    assert_eq!(f.spending, vec![25.0, 30.0, 60.0]);

    // Engagement by segment: VIP u1 (1.61; 2 of 2 sessions bought; AOV 30),
    // High u3 (1.102; 1 of 2; 30), Medium u2 (1.108; 1 of 2; 25), Low u4 and
    // u5: (0 + 0.3) / 2, (0 + 1) / 2 sessions, 0 of 1 session bought, AOV 0.
    let e = &f.segment_engagement;
    assert_eq!(e.rows.len(), 4);
    for (r, (seg, eng, sessions, conv, aov)) in [
        ("VIP", 1.61, 2.0, 100.0, 30.0),
        ("High", 1.102, 2.0, 50.0, 30.0),
        ("Medium", 1.108, 2.0, 50.0, 25.0),
        ("Low", 0.15, 0.5, 0.0, 0.0),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(e.text(r, "segment").unwrap(), seg);
        close(e.f64(r, "avg_engagement").unwrap(), eng);
        close(e.f64(r, "avg_sessions").unwrap(), sessions);
        close(e.f64(r, "session_conversion_pct").unwrap(), conv);
        close(e.f64(r, "avg_order_value").unwrap(), aov);
    }

    // Gaps and niches among p1 (3 viewing sessions, 4 units: 133.3%), p2
    // (3, 3: 100%), p3 (4, 2: 50%). Percent ranks of views: p1 0, p2 0,
    // p3 1; of conversion: p3 0, p2 0.5, p1 1. The gap (views >= 0.9,
    // conversion < 0.25) is p3; the niche (views < 0.5, conversion >= 0.9)
    // is p1.
    let g = &f.conversion_gaps;
    assert_eq!(g.rows.len(), 1);
    assert_eq!(g.text(0, "product_id").unwrap(), "p3");
    assert_eq!(
        (
            g.i64(0, "sessions_viewed").unwrap(),
            g.i64(0, "units_sold").unwrap(),
            g.i64(0, "picked").unwrap()
        ),
        (4, 2, 1)
    );
    close(g.f64(0, "conversion_rate").unwrap(), 50.0);
    let n = &f.niche;
    assert_eq!(n.rows.len(), 1);
    assert_eq!(n.text(0, "product_id").unwrap(), "p1");
    close(n.f64(0, "conversion_rate").unwrap(), 400.0 / 3.0);

    // Funnel: 7 sessions, 5 with views, 5 with carts, 4 converted, 1 abandoned.
    assert_eq!(
        (
            f.funnel.sessions,
            f.funnel.with_views,
            f.funnel.with_cart,
            f.funnel.converted,
            f.funnel.abandoned
        ),
        (7, 5, 5, 4, 1)
    );
    // Devices: desktop s1 s3 s7 (2 converted), mobile s2 s4 s6 (1), tablet s5 (1).
    let dev = &f.by_device;
    assert_eq!(dev.text(0, "device_type").unwrap(), "desktop");
    close(dev.f64(0, "conversion_pct").unwrap(), 200.0 / 3.0);
    close(dev.f64(1, "conversion_pct").unwrap(), 100.0 / 3.0);
    close(dev.f64(2, "conversion_pct").unwrap(), 100.0);
    // Daily revenue: day 1 t1 20 + t3 25; day 2 t2 40 + t4 30.
    let dr = &f.daily_revenue;
    assert_eq!(dr.text(0, "date").unwrap(), "2025-01-01");
    close(dr.f64(0, "revenue").unwrap(), 45.0);
    close(dr.f64(1, "revenue").unwrap(), 70.0);
    assert_eq!(dr.i64(1, "transactions").unwrap(), 2);

    // Two days are too few to fit the CLV models.
    assert!(out.prediction.is_none());

    // The run is published in the metrics (the only run in this binary).
    let m = &batch::metrics::SEGMENT_CUSTOMERS;
    assert_eq!(m.with_label_values(&["VIP"]).get(), 1);
    assert_eq!(m.with_label_values(&["Medium"]).get(), 1);
    assert_eq!(m.with_label_values(&["Low"]).get(), 2);
    close(
        batch::metrics::SEGMENT_REVENUE
            .with_label_values(&["VIP"])
            .get(),
        60.0,
    );
    let rows = &batch::metrics::STEP_ROWS;
    assert_eq!(rows.with_label_values(&["snapshot"]).get(), 11);
    assert_eq!(rows.with_label_values(&["write-back"]).get(), 5);
    assert_eq!(
        batch::metrics::FUNNEL
            .with_label_values(&["converted"])
            .get(),
        4
    );
    // Through 2025-01-02: the next midnight is 2025-01-03T00:00:00Z.
    assert_eq!(batch::metrics::THROUGH.get(), 1_735_862_400);
    assert_eq!(batch::metrics::RUNS.with_label_values(&["ok"]).get(), 1);

    // Write-back: every user, with segment and CLV.
    assert_eq!(out.written_back, 5);
    let v = shop.docs.customer_value("u1").expect("read").expect("u1");
    assert_eq!(v.segment, "VIP");
    close(v.total_clv, 84.15);
    close(v.engagement_score, 1.61);
    assert_eq!(v.as_of, day("2025-01-02"));
    let v4 = shop.docs.customer_value("u4").expect("read").expect("u4");
    assert_eq!((v4.segment.as_str(), v4.total_clv), ("Low", 0.0));
    // The SQL's engagement (clv.sql) equals the one Rust definition the
    // aggregator and the UDF use, for every user, from the stored sessions.
    let mut per_user: std::collections::BTreeMap<String, [f64; 3]> = Default::default();
    for d in shop.docs.session_days().expect("days") {
        for s in shop.docs.sessions_on(d).expect("sessions") {
            let e = per_user.entry(s.user_id.clone()).or_default();
            e[0] += 1.0;
            e[1] += f64::from(u8::from(
                s.conversion_status == schemas::ConversionStatus::Converted,
            ));
            e[2] += s.viewed_products.len() as f64;
        }
    }
    assert!(per_user.len() >= 3, "{per_user:?}");
    for u in ["u1", "u2", "u3", "u4", "u5"] {
        let [s, c, v] = per_user.get(u).copied().unwrap_or_default();
        let stored = shop.docs.customer_value(u).expect("read").expect("user");
        close(
            stored.engagement_score,
            schemas::formulas::engagement_score(s, c, v),
        );
    }

    // The report and its five charts exist and say what was found.
    let report = std::fs::read_to_string(&out.report).expect("report");
    assert!(
        report.contains("| VIP | 1 | 20.0% | 84.15 | 60.00 | 52.2% |"),
        "{report}"
    );
    assert!(report.contains("33.3% of viewed-together pairs were never bought together"));
    assert!(
        report.contains("- **Conversion gaps:** 1 product is among the 10% most viewed but in the quarter that converts worst; first, p3"),
        "{report}"
    );
    assert!(
        // 1.102 / 1.108 = 0.99.
        report.contains("a High customer engages 1.0 times as much as a Medium one"),
        "{report}"
    );
    for chart in batch::report::CHARTS {
        let svg = std::fs::read_to_string(dir.path().join("report").join(chart)).expect("chart");
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{chart}");
    }

    // A symlink planted where a chart goes is replaced, never written
    // through: the file it points to is untouched.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").expect("victim");
    let chart = dir.path().join("report").join(batch::report::CHARTS[0]);
    std::fs::remove_file(&chart).expect("remove chart");
    std::os::unix::fs::symlink(&victim, &chart).expect("symlink");
    let again = batch::run(&shop.docs, &shop.sessions, &cfg).expect("batch again");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    assert!(std::fs::symlink_metadata(&chart).expect("chart").is_file());
    assert_eq!(
        std::fs::read_to_string(&again.report).expect("report"),
        report,
        "a second run on the same stores writes the same report"
    );

    // Ad-hoc SQL over the snapshot.
    let engine = batch::Engine::open(&dir.path().join("snapshot")).expect("engine");
    let text = engine
        .query_text("SELECT COUNT(*) AS n FROM sessions WHERE \"date\" = '2025-01-02'")
        .expect("sql");
    assert!(text.contains("| 3 |"), "{text}");
    assert!(engine.query("SELECT nope FROM sessions").is_err());
}

#[test]
fn user_sql_is_read_only_and_exports_only_where_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let snap = dir.path().join("snapshot");
    batch::snapshot::snapshot(&shop.docs, &shop.sessions, &snap, None).expect("snapshot");
    let before = parquet_files(&snap);
    let engine = batch::Engine::open(&snap).expect("engine");
    let elsewhere = dir.path().join("elsewhere.parquet");
    for statement in [
        "INSERT INTO transactions SELECT * FROM transactions".to_string(),
        format!("COPY (SELECT 1 AS x) TO '{}'", elsewhere.display()),
        "CREATE TABLE t AS SELECT 1 AS x".to_string(),
        "CREATE VIEW v AS SELECT 1 AS x".to_string(),
        "DROP VIEW session_views".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let err = engine
            .query_read_only(&statement)
            .expect_err("refused statement");
        assert!(
            err.to_string().starts_with("refused: "),
            "{statement}: {err}"
        );
    }
    assert!(!elsewhere.exists());
    assert!(parquet_files(&snap) == before, "the snapshot changed");
    // A typo or an unknown table is an error in the query, not a refusal,
    // and lists the tables there are.
    for bad in [
        "SELEC 1",
        "SELECT * FROM transaction",
        "SELECT nope FROM users",
    ] {
        let err = engine
            .query_read_only(bad)
            .expect_err("bad query")
            .to_string();
        assert!(err.starts_with("error in the query: "), "{bad}: {err}");
        assert!(!err.contains("refused"), "{bad}: {err}");
        assert!(
            err.contains("tables: ")
                && err.contains("transactions")
                && err.contains("session_views"),
            "{bad}: {err}"
        );
    }
    // Views still answer after the refused DROP.
    let r = engine
        .query_read_only("SELECT COUNT(*) AS n FROM session_views")
        .expect("select");
    assert_eq!(r.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);

    // Results go to a file only when named: CSV with a header, or Parquet
    // that reads back with the same rows.
    let r = engine
        .query_read_only(
            "SELECT \"date\", COUNT(*) AS n FROM sessions GROUP BY \"date\" ORDER BY \"date\"",
        )
        .expect("select");
    let csv = dir.path().join("out.csv");
    assert_eq!(batch::engine::write_result(&r, &csv).expect("csv"), 2);
    assert_eq!(
        std::fs::read_to_string(&csv).expect("read csv"),
        "date,n\n2025-01-01,4\n2025-01-02,3\n"
    );
    let pq = dir.path().join("out.parquet");
    assert_eq!(batch::engine::write_result(&r, &pq).expect("parquet"), 2);
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&pq).expect("open"),
        )
        .expect("parquet reader")
        .build()
        .expect("build");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 2);
    // An empty result keeps its columns.
    let empty = engine
        .query_read_only("SELECT session_id FROM sessions WHERE false")
        .expect("select");
    let e = dir.path().join("empty.csv");
    assert_eq!(batch::engine::write_result(&empty, &e).expect("empty"), 0);
}

fn parquet_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let rel = p.strip_prefix(root).expect("prefix").display().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn two_nights_give_the_same_parquet_as_one_full_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let nightly = dir.path().join("nightly");
    let full = dir.path().join("full");

    // Night 1 sees day 1 only; night 2 adds day 2.
    let s1 = batch::snapshot::snapshot(
        &shop.docs,
        &shop.sessions,
        &nightly,
        Some(day("2025-01-01")),
    )
    .expect("night 1");
    assert_eq!(s1.written.len(), 2);
    let s2 =
        batch::snapshot::snapshot(&shop.docs, &shop.sessions, &nightly, None).expect("night 2");
    assert_eq!(
        s2.written
            .iter()
            .map(|w| (w.0.as_str(), w.1))
            .collect::<Vec<_>>(),
        vec![
            ("transactions", day("2025-01-02")),
            ("sessions", day("2025-01-02"))
        ]
    );
    assert_eq!(s2.skipped, 2);
    batch::snapshot::snapshot(&shop.docs, &shop.sessions, &full, None).expect("full");

    let a = parquet_files(&nightly);
    let b = parquet_files(&full);
    assert_eq!(a.len(), 8); // 2 x 2 day partitions + 4 whole tables
    assert_eq!(
        a.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
        b.iter().map(|f| f.0.clone()).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(x.1 == y.1, "{} differs", x.0);
    }
    assert_eq!(
        batch::snapshot::Manifest::load(&nightly).expect("manifest"),
        batch::snapshot::Manifest::load(&full).expect("manifest")
    );

    // The newest day was open; a late transaction on it is picked up by the
    // next night, and the complete day 1 is not rewritten.
    shop.docs
        .put_transactions(&[txn("t5", "u4", "2025-01-02T23:00:00", &[("p2", 1, 5.0)])])
        .expect("late");
    let s3 =
        batch::snapshot::snapshot(&shop.docs, &shop.sessions, &nightly, None).expect("night 3");
    assert_eq!(s3.written.len(), 2);
    assert!(s3.written.iter().all(|w| w.1 == day("2025-01-02")));
    assert_eq!(s3.written[0].2, 3);
    let engine = batch::Engine::open(&nightly).expect("engine");
    let t = batch::table::Table::from_batches(
        &engine
            .query("SELECT \"date\", COUNT(*) AS n FROM transactions GROUP BY \"date\" ORDER BY \"date\"")
            .expect("sql"),
    )
    .expect("table");
    assert_eq!((t.i64(0, "n").unwrap(), t.i64(1, "n").unwrap()), (2, 3));
}

#[test]
fn sql_without_a_snapshot_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = batch::Engine::open(&dir.path().join("snapshot"))
        .err()
        .expect("no snapshot");
    assert!(
        err.to_string().contains("run `ecomflow batch` first"),
        "{err}"
    );
}

#[test]
fn a_damaged_snapshot_is_written_again_or_refused_never_counted() {
    use batch::snapshot::{snapshot, snapshot_checked, verify, Check};
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let snap = dir.path().join("snapshot");
    snapshot(&shop.docs, &shop.sessions, &snap, None).expect("first run");
    let reference = parquet_files(&snap);
    assert!(verify(&snap, Check::Full).expect("verify").is_empty());
    // Day 1 is complete (day 2 exists), so a later run skips it: damage
    // there is what a run would otherwise never notice.
    let day1 = batch::snapshot::day_path(&snap, "transactions", day("2025-01-01"));
    let original = std::fs::read(&day1).expect("day 1");

    for (damage, problem) in [
        ("deleted", "missing"),
        ("zero bytes", "bytes, the manifest says"),
        ("same size, one byte changed", "checksum differs"),
    ] {
        match damage {
            "deleted" => std::fs::remove_file(&day1).expect("delete"),
            "zero bytes" => std::fs::write(&day1, b"").expect("truncate"),
            _ => {
                let mut bytes = original.clone();
                bytes[8] ^= 0xff; // inside the first data page, not the footer
                std::fs::write(&day1, bytes).expect("flip");
            }
        }
        let found = verify(&snap, Check::Full).expect("verify");
        assert!(
            found.len() == 1 && found[0].contains(problem),
            "{damage}: {found:?}"
        );
        if damage != "same size, one byte changed" {
            // Queries refuse a snapshot that lost or truncated a day.
            let err = batch::Engine::open(&snap).err().expect("refused");
            assert!(
                err.to_string().contains("does not match its manifest"),
                "{damage}: {err}"
            );
        }
        // The next run writes the day again from the stores: the same bytes.
        let stats =
            snapshot_checked(&shop.docs, &shop.sessions, &snap, None, Check::Full).expect("run");
        assert_eq!(stats.repaired.len(), 1, "{damage}: {:?}", stats.repaired);
        assert!(stats.repaired[0].2.contains(problem), "{damage}");
        assert!(parquet_files(&snap) == reference, "{damage}: not repaired");
        assert!(verify(&snap, Check::Full).expect("verify").is_empty());
    }

    // A file the batch did not write (a copy of a day, as an INSERT would
    // add) is refused: counted, it would double the day.
    let foreign = day1.with_file_name("part-1.parquet");
    std::fs::copy(&day1, &foreign).expect("copy");
    let err = snapshot(&shop.docs, &shop.sessions, &snap, None).expect_err("foreign file");
    assert!(
        err.to_string().contains("not written by the batch"),
        "{err}"
    );
    assert!(batch::Engine::open(&snap).is_err());
    std::fs::remove_file(&foreign).expect("remove");
    assert!(batch::Engine::open(&snap).is_ok());
}

/// The whole tables (users, products, categories, dead letters) are in the
/// manifest like the days: a changed byte in one (an edited email) is found
/// by the full check that `ecomflow sql` makes, and a run that stops before
/// it finishes leaves a snapshot that is refused until a run finishes.
#[test]
fn whole_tables_and_unfinished_runs_are_checked_too() {
    use batch::snapshot::{snapshot, snapshot_cancellable, verify, whole_path, Check, Manifest};
    use batch::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let snap = dir.path().join("snapshot");
    snapshot(&shop.docs, &shop.sessions, &snap, None).expect("first run");
    let manifest = Manifest::load(&snap).expect("manifest");
    assert!(!manifest.partial);
    let tables: Vec<&str> = manifest.whole.keys().map(String::as_str).collect();
    assert_eq!(tables, ["categories", "dead_letters", "products", "users"]);
    assert_eq!(manifest.whole["users"].rows, 5); // tiny_shop's u1..u5
    assert!(verify(&snap, Check::Full).expect("verify").is_empty());

    // One byte of the users' file changed, same size and row count: only
    // the checksum tells, and the full check refuses to query it.
    let users = whole_path(&snap, "users");
    let original = std::fs::read(&users).expect("users");
    let mut bytes = original.clone();
    bytes[8] ^= 0xff;
    std::fs::write(&users, &bytes).expect("flip");
    assert!(verify(&snap, Check::Quick).expect("quick").is_empty());
    let found = verify(&snap, Check::Full).expect("full");
    assert!(
        found.len() == 1 && found[0].contains("users") && found[0].contains("checksum differs"),
        "{found:?}"
    );
    let err = Engine::open_checked(&snap, Check::Full)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("does not match its manifest"),
        "{err}"
    );
    std::fs::write(&users, &original).expect("restore");
    assert!(Engine::open_checked(&snap, Check::Full).is_ok());

    // A run stopped before the whole tables (here: cancelled at once, as a
    // shutdown does; a crash or a failure leaves the same mark).
    let stop = stage::Shutdown::new();
    stop.stop();
    snapshot_cancellable(
        &shop.docs,
        &shop.sessions,
        &snap,
        None,
        Check::Full,
        Some(&stop),
    )
    .expect("cancelled run");
    assert!(Manifest::load(&snap).expect("manifest").partial);
    let found = verify(&snap, Check::Quick).expect("verify");
    assert!(
        found.len() == 1 && found[0].contains("partial: a batch is writing it now"),
        "{found:?}"
    );
    let err = Engine::open(&snap).err().expect("refused");
    assert!(err.to_string().contains("run `ecomflow batch`"), "{err}");
    // The next run finishes it.
    snapshot(&shop.docs, &shop.sessions, &snap, None).expect("next run");
    assert!(verify(&snap, Check::Full).expect("verify").is_empty());
    assert!(Engine::open(&snap).is_ok());

    // A manifest of an older version (no whole tables): refused with the
    // way out, then recorded by the next run.
    let mut old = Manifest::load(&snap).expect("manifest");
    old.whole.clear();
    std::fs::write(
        snap.join(batch::snapshot::MANIFEST),
        serde_json::to_vec(&old).expect("json"),
    )
    .expect("old manifest");
    let found = verify(&snap, Check::Quick).expect("verify");
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(
        found.iter().all(|p| p.contains("not in the manifest")),
        "{found:?}"
    );
    snapshot(&shop.docs, &shop.sessions, &snap, None).expect("run");
    assert!(verify(&snap, Check::Full).expect("verify").is_empty());
}

/// The batch's pair operator against the seed's SQL self-join on a shop
/// built to hit the corners: ids that sort differently as text and as
/// numbers (`p10` < `p9`), a product twice in one basket, empty baskets, a
/// session id used by two rows (two days), 60 products and 400 baskets.
#[test]
fn pairs_match_the_sql_self_join() {
    use ConversionStatus::*;
    use DeviceType::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = open(dir.path());
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let names: Vec<String> = (1..=60).map(|i| format!("p{i}")).collect();
    let mut basket = |size: u64| -> Vec<String> {
        (0..size)
            .map(|_| names[next(60) as usize].clone())
            .collect()
    };
    let mut sessions = Vec::new();
    let mut txns = Vec::new();
    for i in 0..400u32 {
        let at = format!("2025-01-0{}T{:02}:00:00", 1 + i % 3, i % 24);
        let viewed = basket(u64::from(i % 9));
        let refs: Vec<&str> = viewed.iter().map(String::as_str).collect();
        sessions.push(session(
            &format!("s{i}"),
            "u1",
            &at,
            Desktop,
            Browsed,
            &refs,
            &[],
        ));
        let items = basket(1 + u64::from(i % 5));
        let items: Vec<(&str, u32, f64)> = items.iter().map(|p| (p.as_str(), 1, 1.0)).collect();
        txns.push(txn(&format!("t{i}"), "u1", &at, &items));
    }
    // One session id on two days (s5's first row is on the 3rd): one
    // basket for the SQL's DISTINCT, whose rows may sit in different
    // partitions of the parallel count.
    sessions.push(session(
        "s5",
        "u1",
        "2025-01-01T23:00:00",
        Mobile,
        Browsed,
        &["p9", "p10", "p11"],
        &[],
    ));
    shop.docs.upsert_users(&[user("u1")]).expect("users");
    shop.docs.put_transactions(&txns).expect("transactions");
    shop.put_sessions(&sessions);
    let (cfg, engine) = snapshot_engine(&shop, dir.path());
    let out = batch::analytics::run(&engine, cfg.cuts, cfg.min_views, None).expect("analytics");
    let (bought, viewed, pct) = batch::analytics::co_occurrence_by_sql(&engine).expect("sql");
    assert!(
        bought.unique_pairs > 100 && viewed.unique_pairs > 500,
        "{bought:?} {viewed:?}"
    );
    assert_eq!(out.co_purchase, bought);
    assert_eq!(out.co_view, viewed);
    assert_eq!(out.viewed_never_bought_pct, pct);
    // Sessions per viewed product, from the same pass, against the SQL.
    let by_sql = batch::table::Table::from_batches(
        &engine
            .query(&format!(
                "{} ORDER BY product_id",
                batch::analytics::sql::PRODUCT_VIEWS
            ))
            .expect("sql"),
    )
    .expect("table");
    let by_sql: Vec<(String, u64)> = (0..by_sql.rows.len())
        .map(|r| {
            (
                by_sql.text(r, "product_id").expect("id"),
                by_sql.i64(r, "sessions_viewed").expect("n") as u64,
            )
        })
        .collect();
    let co = batch::cooccur::count(&engine, 10, None).expect("count");
    assert_eq!(co.sessions_viewed.len(), 60);
    assert_eq!(co.sessions_viewed, by_sql);
    // Through the hash map, spilling to run files every 50 pairs (as a shop
    // past the blocks' limit does): the same answers.
    let limits = batch::cooccur::Limits {
        dense_bytes: 0,
        max_passes: 1,
        spill_pairs: 50,
    };
    let spilled = batch::cooccur::count_with(&engine, 10, None, limits).expect("count");
    assert_eq!(spilled, co);
    // Through blocks of 30 cells (a row or two of the 60 products' array:
    // dozens of passes), the baskets written to their files every 50
    // numbers (as a shop past the array's limit does): the same answers.
    let blocked = batch::cooccur::Limits {
        dense_bytes: 120,
        max_passes: usize::MAX,
        spill_pairs: 50,
    };
    assert_eq!(
        batch::cooccur::count_with(&engine, 10, None, blocked).expect("count"),
        co
    );
    // Above, no basket's product was in the (empty) catalog: the baskets
    // were read for their products. With a catalog that lacks one of them
    // (p60), the same; with all of them and one no basket holds (p61), the
    // baskets are numbered by the catalog and read once: the same answers
    // every way.
    for last in [59, 61] {
        let catalog: Vec<Product> = (1..=last).map(|i| product(&format!("p{i}"), 1.0)).collect();
        shop.docs.upsert_products(&catalog).expect("products");
        let (_, engine) = snapshot_engine(&shop, dir.path());
        assert_eq!(
            batch::cooccur::count(&engine, 10, None).expect("count"),
            co,
            "catalog of {last}"
        );
        let spilled = batch::cooccur::count_with(&engine, 10, None, limits).expect("count");
        assert_eq!(spilled, co, "catalog of {last}, spilled");
        let by_blocks = batch::cooccur::count_with(&engine, 10, None, blocked).expect("count");
        assert_eq!(by_blocks, co, "catalog of {last}, blocked");
    }
}

/// `--basket-cap N` counts the pairs of a basket's first N distinct
/// products, as the live aggregator does (`measures::pairs`), while the sessions
/// per product still count every product viewed.
#[test]
fn a_basket_cap_pairs_the_first_distinct_products_only() {
    use ConversionStatus::*;
    use DeviceType::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = open(dir.path());
    let at = "2025-01-01T10:00:00";
    let items: Vec<(&str, u32, f64)> = ["p3", "p1", "p3", "p2", "p4"]
        .iter()
        .map(|p| (*p, 1, 1.0))
        .collect();
    shop.docs.upsert_users(&[user("u1")]).expect("users");
    shop.docs
        .put_transactions(&[txn("t1", "u1", at, &items)])
        .expect("transactions");
    shop.put_sessions(&[session(
        "s1",
        "u1",
        at,
        Desktop,
        Browsed,
        &["p2", "p2", "p4", "p1"],
        &[],
    )]);
    let (_, engine) = snapshot_engine(&shop, dir.path());
    let pairs = |t: &batch::cooccur::PairTable| -> Vec<(String, String, u64)> {
        let mut v = t.top.clone();
        v.sort();
        v
    };
    let p = |a: &str, b: &str| (a.to_string(), b.to_string(), 1u64);

    // Whole baskets: {p1, p2, p3, p4} bought (6 pairs), {p1, p2, p4} viewed.
    let whole = batch::cooccur::count(&engine, 10, None).expect("count");
    assert_eq!(whole.bought.unique_pairs, 6);
    assert_eq!(whole.viewed.unique_pairs, 3);
    assert_eq!(
        pairs(&whole.viewed),
        vec![p("p1", "p2"), p("p1", "p4"), p("p2", "p4")]
    );

    // Cap 2: the first two distinct products seen, p3 and p1 bought, p2 and
    // p4 viewed; one pair each.
    let capped = batch::cooccur::count(&engine, 10, Some(2)).expect("count");
    assert_eq!(pairs(&capped.bought), vec![p("p1", "p3")]);
    assert_eq!(pairs(&capped.viewed), vec![p("p2", "p4")]);
    assert_eq!((capped.bought.total, capped.viewed.total), (1, 1));
    // p2 + p4 viewed and never bought together under the cap.
    assert_eq!(capped.viewed_never_bought, 1);
    // Every viewed product still counts its session.
    assert_eq!(capped.sessions_viewed, whole.sessions_viewed);
    assert_eq!(capped.sessions_viewed.len(), 3);

    // A cap at or above the basket's distinct products changes nothing,
    // and the report says which way the pairs were counted.
    assert_eq!(
        batch::cooccur::count(&engine, 10, Some(4)).expect("count"),
        whole
    );
    assert!(batch::report::counted_over(None).contains("whole baskets"));
    assert!(batch::report::counted_over(Some(50)).contains("first 50 distinct products"));
}

/// A cancelled run (the replay's nightly batch when the replay ends) stops
/// before the analytics and leaves nothing half-done: the next run writes
/// the same files as one that was never interrupted.
#[test]
fn a_cancelled_run_leaves_the_next_one_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = tiny_shop(dir.path());
    let mut cfg = BatchConfig::new(dir.path());
    let cancel = stage::Shutdown::new();
    cancel.stop();
    cfg.cancel = Some(cancel);
    assert!(matches!(
        batch::run(&shop.docs, &shop.sessions, &cfg),
        Err(batch::BatchError::Cancelled)
    ));
    assert!(!dir.path().join("report").join("report.md").exists());
    // Then the snapshot alone (batch::run would add to the metrics the
    // test above counts).
    let snap = |shop: &Shop, dir: &Path| {
        batch::snapshot::snapshot_checked(
            &shop.docs,
            &shop.sessions,
            &dir.join("snapshot"),
            None,
            batch::snapshot::Check::Full,
        )
        .expect("snapshot")
    };
    assert_eq!(snap(&shop, dir.path()).written.len(), 4);
    let other = tempfile::tempdir().expect("tempdir");
    let shop2 = tiny_shop(other.path());
    snap(&shop2, other.path());
    assert_eq!(
        parquet_files(&dir.path().join("snapshot")),
        parquet_files(&other.path().join("snapshot"))
    );
}
