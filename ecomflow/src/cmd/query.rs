//! `ecomflow query`: the document store's four daily questions
//! (`stores::queries`), printed as a table or as JSON lines.

use crate::cli::{QueryArgs, QueryName};
use anyhow::Context;
use serde::Serialize;

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    if args.user.is_some() && args.name != QueryName::PurchaseHistory {
        anyhow::bail!("--user is for purchase-history only");
    }
    if (args.from.is_some() || args.to.is_some()) && args.name != QueryName::RevenueByCategory {
        anyhow::bail!("--from and --to are for revenue-by-category only");
    }
    let stores = crate::pipeline::open_stores(&args.log, &args.stores)?;
    let docs = stores.docs.as_ref();
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = match args.name {
        QueryName::RevenueByCategory => {
            let days = docs.transaction_days()?;
            let (Some(first), Some(last)) = (days.first(), days.last()) else {
                anyhow::bail!("no transactions stored in {}", docs.describe());
            };
            let (from, to) = (args.from.unwrap_or(*first), args.to.unwrap_or(*last));
            if from > to {
                anyhow::bail!("--from {from} is after --to {to}");
            }
            let rows = docs.revenue_by_category(from, to)?;
            if args.json {
                return json_lines(&rows);
            }
            (
                vec!["day", "category", "name", "units", "revenue"],
                rows.into_iter()
                    .map(|r| {
                        vec![
                            r.day.to_string(),
                            r.category_id,
                            r.category.unwrap_or_default(),
                            r.units.to_string(),
                            format!("{:.2}", r.revenue),
                        ]
                    })
                    .collect(),
            )
        }
        QueryName::TopCustomers => {
            let rows = docs.top_customers(limit)?;
            if args.json {
                return json_lines(&rows);
            }
            (
                vec!["user", "name", "orders", "spent", "last purchase"],
                rows.into_iter()
                    .map(|r| {
                        vec![
                            r.user_id,
                            r.name.unwrap_or_default(),
                            r.orders.to_string(),
                            format!("{:.2}", r.spent),
                            schemas::time::format(r.last_purchase),
                        ]
                    })
                    .collect(),
            )
        }
        QueryName::PaymentMix => {
            let rows = docs.payment_mix()?;
            if args.json {
                return json_lines(&rows);
            }
            (
                vec!["method", "orders", "revenue", "share"],
                rows.into_iter()
                    .map(|r| {
                        vec![
                            r.method,
                            r.orders.to_string(),
                            format!("{:.2}", r.revenue),
                            format!("{:.2}%", r.share * 100.0),
                        ]
                    })
                    .collect(),
            )
        }
        QueryName::PurchaseHistory => {
            let user = args
                .user
                .as_deref()
                .context("purchase-history needs --user (e.g. --user user_000042)")?;
            let rows = docs.purchase_history(user, limit)?;
            if args.json {
                return json_lines(&rows);
            }
            (
                vec![
                    "transaction",
                    "time",
                    "product",
                    "name",
                    "qty",
                    "unit price",
                    "subtotal",
                ],
                rows.into_iter()
                    .map(|r| {
                        vec![
                            r.transaction_id,
                            schemas::time::format(r.timestamp),
                            r.product_id,
                            r.product.unwrap_or_default(),
                            r.quantity.to_string(),
                            format!("{:.2}", r.unit_price),
                            format!("{:.2}", r.subtotal),
                        ]
                    })
                    .collect(),
            )
        }
    };
    print!("{}", table(&header, &rows));
    println!("({} rows from the {})", rows.len(), docs.describe());
    Ok(())
}

fn json_lines<T: Serialize>(rows: &[T]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Columns padded to their widest cell; numbers (and dates) right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = |col: usize| {
        rows.iter().all(|r| {
            r.get(col).is_none_or(|c| {
                c.chars()
                    .all(|ch| ch.is_ascii_digit() || ".-%".contains(ch))
            })
        })
    };
    let right: Vec<bool> = (0..header.len()).map(numeric).collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i].saturating_sub(c.chars().count());
                if right[i] {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_text_left_and_numbers_right() {
        let t = table(
            &["method", "orders"],
            &[
                vec!["paypal".into(), "2".into()],
                vec!["credit_card".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "method       orders\npaypal            2\ncredit_card      12\n"
        );
    }
}
