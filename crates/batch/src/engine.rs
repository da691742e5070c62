//! The query engine: Apache DataFusion over the Parquet snapshot.
//!
//! Every snapshot table is registered under its own name (`transactions`,
//! `sessions`, `users`, `products`, `categories`, `dead_letters`); the
//! daily tables carry the partition column `date` (`'YYYY-MM-DD'`) taken
//! from their directory names, so `WHERE "date" >= '2025-03-01'` reads only
//! those days' files. Two views unnest the lists as the seed's "exploded"
//! tables: `transaction_items` (one row per line item, with `revenue`) and
//! `session_views` (one row per viewed product).

use crate::snapshot::{schema_of, DAILY_TABLES, WHOLE_TABLES};
use crate::{BatchError, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use std::path::Path;

/// Views used by several analytics: the seed's "exploded" tables.
pub const VIEWS: [&str; 2] = [
    "CREATE OR REPLACE VIEW transaction_items AS \
     SELECT transaction_id, user_id, \"date\", timestamp, \
            item['product_id'] AS product_id, item['quantity'] AS quantity, \
            item['unit_price'] AS unit_price, item['subtotal'] AS revenue \
     FROM (SELECT transaction_id, user_id, \"date\", timestamp, unnest(items) AS item \
           FROM transactions)",
    "CREATE OR REPLACE VIEW session_views AS \
     SELECT session_id, user_id, \"date\", device_type, product_id \
     FROM (SELECT session_id, user_id, \"date\", device_type, \
                  unnest(viewed_products) AS product_id FROM sessions)",
];

/// A DataFusion session over one snapshot directory, with its own runtime
/// (the rest of ecomflow is synchronous).
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
}

impl Engine {
    /// Opens the snapshot in `dir` (it must have been written by a batch run).
    pub fn open(dir: &Path) -> Result<Engine> {
        if !dir.join(crate::snapshot::MANIFEST).exists() {
            return Err(BatchError::NoSnapshot(dir.display().to_string()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("batch-sql")
            .enable_all()
            .build()
            .map_err(|e| BatchError::io(dir, e))?;
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        runtime.block_on(async {
            for table in DAILY_TABLES.iter().chain(&WHOLE_TABLES) {
                let path = dir.join(table);
                std::fs::create_dir_all(&path).map_err(|e| BatchError::io(&path, e))?;
                let schema = schema_of(table)
                    .ok_or_else(|| BatchError::Corrupt(format!("no schema for {table}")))?;
                let mut options = ParquetReadOptions::default().schema(&schema);
                if DAILY_TABLES.contains(table) {
                    options =
                        options.table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
                }
                let url = format!("{}/", path.display());
                ctx.register_parquet(*table, &url, options).await?;
            }
            for view in VIEWS {
                ctx.sql(view).await?.collect().await?;
            }
            Ok::<_, BatchError>(())
        })?;
        Ok(Engine { runtime, ctx })
    }

    /// Runs one SQL statement and collects its result.
    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(sql).await?;
            Ok(df.collect().await?)
        })
    }

    /// Runs one SQL statement and formats the result as a text table.
    pub fn query_text(&self, sql: &str) -> Result<String> {
        let batches = self.query(sql)?;
        let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
        Ok(table.to_string())
    }
}
