//! `ecomflow query`: the document store's four daily questions
//! (`stores::queries`), printed as a table or as JSON lines.

use crate::cli::{QueryArgs, QueryName};
use anyhow::Context;
use serde::Serialize;

/// Answers the question, as a table or as JSON lines.
pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    if args.user.is_some() && args.name != QueryName::PurchaseHistory {
        anyhow::bail!("--user is for purchase-history only");
    }
    if (args.from.is_some() || args.to.is_some()) && args.name != QueryName::RevenueByCategory {
        anyhow::bail!("--from and --to are for revenue-by-category only");
    }
    let stores = crate::pipeline::open_stores(
        &args.dir.data_dir,
        stage::fsio::Durability::Process,
        false,
        &args.stores,
    )?;
    let docs = stores.docs.as_ref();
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    match args.name {
        QueryName::RevenueByCategory => {
            let days = docs.transaction_days()?;
            let (Some(first), Some(last)) = (days.first(), days.last()) else {
                anyhow::bail!("no transactions stored in {}", docs.describe());
            };
            let (from, to) = (args.from.unwrap_or(*first), args.to.unwrap_or(*last));
            if from > to {
                anyhow::bail!("--from {from} is after --to {to}");
            }
            show(docs.revenue_by_category(from, to)?, args.json, docs)
        }
        QueryName::TopCustomers => show(docs.top_customers(limit)?, args.json, docs),
        QueryName::PaymentMix => show(docs.payment_mix()?, args.json, docs),
        QueryName::PurchaseHistory => {
            let user = args
                .user
                .as_deref()
                .context("purchase-history needs --user (e.g. --user user_000042)")?;
            show(docs.purchase_history(user, limit)?, args.json, docs)
        }
    }
}

/// A row of one of the questions: its columns, for the table.
trait Row: Serialize {
    /// Column headings.
    const HEADER: &'static [&'static str];
    /// The row's cells, formatted.
    fn cells(self) -> Vec<String>;
}

impl Row for stores::queries::CategoryDay {
    const HEADER: &'static [&'static str] = &["day", "category", "name", "units", "revenue"];
    fn cells(self) -> Vec<String> {
        vec![
            self.day.to_string(),
            self.category_id,
            self.category.unwrap_or_default(),
            self.units.to_string(),
            format!("{:.2}", self.revenue),
        ]
    }
}

impl Row for stores::queries::Customer {
    const HEADER: &'static [&'static str] = &["user", "name", "orders", "spent", "last purchase"];
    fn cells(self) -> Vec<String> {
        vec![
            self.user_id,
            self.name.unwrap_or_default(),
            self.orders.to_string(),
            format!("{:.2}", self.spent),
            schemas::time::format(self.last_purchase),
        ]
    }
}

impl Row for stores::queries::PaymentShare {
    const HEADER: &'static [&'static str] = &["method", "orders", "revenue", "share"];
    fn cells(self) -> Vec<String> {
        vec![
            self.method,
            self.orders.to_string(),
            format!("{:.2}", self.revenue),
            format!("{:.2}%", self.share * 100.0),
        ]
    }
}

impl Row for stores::queries::HistoryLine {
    const HEADER: &'static [&'static str] = &[
        "transaction",
        "time",
        "product",
        "name",
        "qty",
        "unit price",
        "subtotal",
    ];
    fn cells(self) -> Vec<String> {
        vec![
            self.transaction_id,
            schemas::time::format(self.timestamp),
            self.product_id,
            self.product.unwrap_or_default(),
            self.quantity.to_string(),
            format!("{:.2}", self.unit_price),
            format!("{:.2}", self.subtotal),
        ]
    }
}

/// Prints `rows` as JSON lines, or as a table with a count of rows.
fn show<R: Row>(rows: Vec<R>, json: bool, docs: &dyn stores::DocumentStore) -> anyhow::Result<()> {
    if json {
        return json_lines(&rows);
    }
    let n = rows.len();
    let cells: Vec<Vec<String>> = rows.into_iter().map(Row::cells).collect();
    print!("{}", table(R::HEADER, &cells));
    println!("({n} rows from the {})", docs.describe());
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

/// A table in the style `ecomflow sql` prints (arrow's, on the same
/// comfy-table); numbers (and dates) right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let numeric = |col: usize| {
        rows.iter().all(|r| {
            r.get(col).is_none_or(|c| {
                c.chars()
                    .all(|ch| ch.is_ascii_digit() || ".-%".contains(ch))
            })
        })
    };
    let mut t = comfy_table::Table::new();
    t.load_preset(ARROW_STYLE);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r.clone());
    }
    for (i, column) in t.column_iter_mut().enumerate() {
        if numeric(i) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    format!("{t}\n")
}

/// The borders arrow's `pretty_format_batches` draws (`ecomflow sql`).
const ARROW_STYLE: &str = "||--+-++|    ++++++";

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
            "+-------------+--------+\n\
             | method      | orders |\n\
             +-------------+--------+\n\
             | paypal      |      2 |\n\
             | credit_card |     12 |\n\
             +-------------+--------+\n"
        );
    }
}
