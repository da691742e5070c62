//! `ecomflow bench`: store lookups on ingested data.

use crate::cli::BenchArgs;
use crate::pipeline;
use std::time::Instant;

/// Times three lookups per user over `--lookups` users and prints their
/// latency figures.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let stores = pipeline::open_stores(&args.log, &args.stores)?;
    let users = args.users;
    // A fixed stride walks the users in a scattered, repeatable order.
    let pick = |i: usize| schemas::ids::user_id((i as u64 * 7_919 % u64::from(users)) as u32 + 1);
    let (mut sessions, mut profiles, mut txns) = (Vec::new(), Vec::new(), Vec::new());
    let mut found = 0usize;
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
        sessions.push(t.elapsed().as_micros());
        let t = Instant::now();
        stores.docs.user(&u)?;
        profiles.push(t.elapsed().as_micros());
        let t = Instant::now();
        stores.docs.user_transactions(&u, from, to)?;
        txns.push(t.elapsed().as_micros());
    }
    println!(
        "{} against the {} and the {}:",
        args.lookups,
        stores.sessions.inner().describe(),
        stores.docs.describe()
    );
    report_latencies("last 10 sessions of a user", sessions);
    report_latencies("user profile + summary", profiles);
    report_latencies("all transactions of a user", txns);
    println!("({} sessions returned in all)", found);
    Ok(())
}

/// Latency figures of one query kind.
fn report_latencies(what: &str, mut micros: Vec<u128>) {
    micros.sort_unstable();
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let total: u128 = micros.iter().sum();
    println!(
        "{what:<28} n={:<6} median {:>6} us  p99 {:>6} us  max {:>7} us  ({:.0} lookups/s on one thread)",
        micros.len(),
        at(0.5),
        at(0.99),
        micros.last().copied().unwrap_or(0),
        micros.len() as f64 / (total as f64 / 1e6).max(1e-9)
    );
}
