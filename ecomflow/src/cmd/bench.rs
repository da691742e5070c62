//! `ecomflow bench`: store lookups on ingested data.

use crate::cli::BenchArgs;
use crate::pipeline;
use std::time::Instant;

/// Times three lookups per user over `--lookups` users of the stored shop
/// and prints their latency figures.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let stores = pipeline::open_stores(
        &args.dir.data_dir,
        stage::fsio::Durability::Process,
        false,
        &args.stores,
    )?;
    // The shop it measures is the one stored: its users, not a flag's.
    let users = u32::try_from(stores.docs.counts()?.users).unwrap_or(u32::MAX);
    if users == 0 {
        anyhow::bail!(
            "no users in the {}: ingest a shop first (`ecomflow replay --data-dir {}`)",
            stores.docs.describe(),
            args.dir.data_dir.display()
        );
    }
    // A fixed stride walks the users in a scattered, repeatable order.
    let pick = |i: usize| schemas::ids::user_id((i as u64 * 7_919 % u64::from(users)) as u32 + 1);
    let (mut sessions, mut profiles, mut txns) = (Vec::new(), Vec::new(), Vec::new());
    let mut found = 0usize;
    let mut profiles_found = 0usize;
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
        chrono::NaiveDate::from_ymd_opt(2100, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
    );
    for i in 0..args.lookups {
        let u = pick(i);
        let t = Instant::now();
        found += stores.sessions.last_sessions(&u, 10)?.len();
        sessions.push(t.elapsed().as_nanos());
        let t = Instant::now();
        if stores.docs.user(&u)?.is_some() {
            profiles_found += 1;
        }
        profiles.push(t.elapsed().as_nanos());
        let t = Instant::now();
        stores.docs.user_transactions(&u, from, to)?;
        txns.push(t.elapsed().as_nanos());
    }
    println!(
        "{} lookups over the {} stored users, against the {} and the {}:",
        crate::ui::count(args.lookups as u64),
        crate::ui::count(u64::from(users)),
        stores.sessions.inner().describe(),
        stores.docs.describe()
    );
    report_latencies("last 10 sessions of a user", sessions);
    report_latencies("user profile + summary", profiles);
    report_latencies("all transactions of a user", txns);
    println!(
        "({} sessions and {} profiles returned in all)",
        crate::ui::count(found as u64),
        crate::ui::count(profiles_found as u64)
    );
    if profiles_found == 0 {
        eprintln!(
            "warning: none of the users drawn (user_000001 to {}) was found: the figures time misses, not lookups; \
             bench draws ids in the generated format",
            schemas::ids::user_id(users)
        );
    }
    Ok(())
}

/// Latency figures of one query kind.
fn report_latencies(what: &str, mut nanos: Vec<u128>) {
    nanos.sort_unstable();
    let at = |q: f64| {
        nanos
            .get(((nanos.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let us = |n: u128| n as f64 / 1e3;
    let total: u128 = nanos.iter().sum();
    println!(
        "{what:<28} n={:<6} median {:>8.1} us  p99 {:>8.1} us  max {:>9.1} us  ({} on one thread)",
        nanos.len(),
        us(at(0.5)),
        us(at(0.99)),
        us(nanos.last().copied().unwrap_or(0)),
        crate::ui::rate(nanos.len() as f64 / (total as f64 / 1e9).max(1e-12))
    );
}
