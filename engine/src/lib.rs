//! The batch's SQL session: Apache DataFusion over Parquet directories,
//! with its own tokio runtime (the rest of ecomflow is synchronous).
//!
//! This crate holds every call into DataFusion's SQL front end (parsing,
//! planning, optimising) and nothing that runs per row, so that it builds
//! at opt-level 1 (Cargo.toml) while the batch's own operators (the pair
//! count, the CLV fits, the `cardinality` UDF) build at 3. A crate at
//! opt-level 3 instantiates the generic planner code it reaches for itself;
//! with the calls here the batch crate reaches none of it. What the batch
//! does with the answers, and the snapshot's layout and checks, are in the
//! `batch` crate.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};
use std::path::PathBuf;

/// Errors of the session.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A statement did not parse or plan, or was refused before it ran.
    #[error("{0}")]
    Plan(DataFusionError),
    /// A planned statement failed while it ran.
    #[error("{0}")]
    Run(DataFusionError),
    /// The runtime could not start, or a table's directory could not be
    /// made.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
}

/// Result of the session.
pub type Result<T> = std::result::Result<T, EngineError>;

/// A table of Parquet files in one directory.
#[derive(Debug, Clone)]
pub struct Source {
    /// The table's name in SQL.
    pub name: String,
    /// Its directory (made if missing: an empty table).
    pub dir: PathBuf,
    /// The files' schema.
    pub schema: SchemaRef,
    /// Whether the files sit in `date=YYYY-MM-DD` directories, read as the
    /// partition column `date` (`Utf8`).
    pub date_partitioned: bool,
}

/// How the session runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Threads of the runtime, and partitions of a plan (at least 1).
    pub threads: usize,
    /// The memory pool: operators that can spill (sorts, hash aggregates)
    /// do so to the OS temp dir past it, shared fairly between them.
    pub memory_pool_bytes: usize,
}

/// A DataFusion session over some Parquet tables.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
}

impl Session {
    /// Starts a session: its runtime, `udfs` registered (a UDF named as a
    /// built-in replaces it), each source as a table, then each of `views`
    /// (`CREATE VIEW` statements) run in order.
    pub fn open(
        sources: &[Source],
        udfs: Vec<ScalarUDF>,
        views: &[&str],
        limits: Limits,
    ) -> Result<Session> {
        // tokio refuses (panics on) a runtime of no threads.
        let threads = limits.threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            // DataFusion reads Parquet files on tokio's blocking pool (up to
            // 512 threads by default): the batch started about a hundred,
            // each with its own allocator heap, and its peak RSS was 1.5 to
            // 2 GB where two give 0.6 GB, faster (docs/benchmarks.md).
            .max_blocking_threads(threads)
            .thread_name("batch-sql")
            .enable_all()
            .build()
            .map_err(|source| EngineError::Io {
                path: sources.first().map(|s| s.dir.clone()).unwrap_or_default(),
                source,
            })?;
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(true);
        let runtime_env = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(std::sync::Arc::new(
                datafusion::execution::memory_pool::FairSpillPool::new(limits.memory_pool_bytes),
            ))
            .build_arc()
            .map_err(EngineError::Plan)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime_env);
        for udf in udfs {
            ctx.register_udf(udf);
        }
        runtime.block_on(async {
            for source in sources {
                std::fs::create_dir_all(&source.dir).map_err(|e| EngineError::Io {
                    path: source.dir.clone(),
                    source: e,
                })?;
                let mut options = ParquetReadOptions::default().schema(&source.schema);
                if source.date_partitioned {
                    options =
                        options.table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
                }
                let url = format!("{}/", source.dir.display());
                ctx.register_parquet(source.name.as_str(), &url, options)
                    .await
                    .map_err(EngineError::Plan)?;
            }
            for view in views {
                let df = ctx.sql(view).await.map_err(EngineError::Plan)?;
                df.collect().await.map_err(EngineError::Run)?;
            }
            Ok::<_, EngineError>(())
        })?;
        Ok(Session { runtime, ctx })
    }

    /// Runs `future` on the session's runtime (from any thread, and from
    /// several at once).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Parses and plans one statement.
    async fn plan(&self, sql: &str) -> Result<DataFrame> {
        self.ctx.sql(sql).await.map_err(EngineError::Plan)
    }

    /// Runs one statement and collects its result, with its column names
    /// (there even when no row came back).
    pub fn query(&self, sql: &str) -> Result<(Vec<String>, Vec<RecordBatch>)> {
        self.runtime.block_on(async {
            let df = self.plan(sql).await?;
            let columns = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let batches = df.collect().await.map_err(EngineError::Run)?;
            Ok((columns, batches))
        })
    }

    /// Plans one query and starts it as one stream of batches.
    pub fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        self.runtime.block_on(async {
            let df = self.plan(sql).await?;
            df.execute_stream().await.map_err(EngineError::Run)
        })
    }

    /// Plans one query and starts it as a stream per partition (the
    /// session's `threads`), to be drained on as many threads.
    pub fn partition_streams(&self, sql: &str) -> Result<Vec<SendableRecordBatchStream>> {
        self.runtime.block_on(async {
            let df = self.plan(sql).await?;
            df.execute_stream_partitioned()
                .await
                .map_err(EngineError::Run)
        })
    }

    /// Runs one statement that cannot change anything: DDL (`CREATE`,
    /// `DROP`), DML (`INSERT`, `COPY ... TO`) and statements (`SET`,
    /// transactions) are refused while it is planned ([`EngineError::Plan`]),
    /// so a query can neither add files to the tables nor write anywhere
    /// else. Returns the result's schema (kept even when no row came back)
    /// and its rows.
    pub fn query_read_only(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.runtime.block_on(async {
            let df = self
                .ctx
                .sql_with_options(sql, options)
                .await
                .map_err(EngineError::Plan)?;
            let schema = df.schema().inner().clone();
            let batches = df.collect().await.map_err(EngineError::Run)?;
            Ok((schema, batches))
        })
    }

    /// Registers `batch` as the table `name`, replacing any table of that
    /// name.
    pub fn register_batch(&self, name: &str, batch: RecordBatch) -> Result<()> {
        self.ctx.deregister_table(name).map_err(EngineError::Plan)?;
        self.ctx
            .register_batch(name, batch)
            .map_err(EngineError::Plan)?;
        Ok(())
    }

    /// The tables and views of the default schema, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array};

    fn session() -> Session {
        // No tables, and 0 threads: taken as 1, not a panic in tokio.
        Session::open(
            &[],
            Vec::new(),
            &["CREATE VIEW two AS SELECT 2 AS n"],
            Limits {
                threads: 0,
                memory_pool_bytes: 1 << 20,
            },
        )
        .expect("session")
    }

    #[test]
    fn a_query_answers_with_its_columns_and_a_view_is_read() {
        let s = session();
        let (columns, batches) = s.query("SELECT n + 1 AS three FROM two").expect("query");
        assert_eq!(columns, ["three"]);
        let column = batches[0].column(0);
        let values = column.as_any().downcast_ref::<Int64Array>().expect("Int64");
        assert_eq!(values.values(), &[3]);
    }

    #[test]
    fn read_only_refuses_ddl_and_dml_while_planning_and_tables_are_listed() {
        let s = session();
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "DROP VIEW two",
            "SET datafusion.execution.batch_size = 1",
        ] {
            match s.query_read_only(sql) {
                Err(EngineError::Plan(e)) => {
                    assert!(e.to_string().contains("not supported"), "{sql}: {e}")
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        // The view is still there; a replaced batch table is listed once.
        let batch = RecordBatch::try_from_iter([(
            "x",
            std::sync::Arc::new(Int64Array::from(vec![1, 2])) as _,
        )])
        .expect("batch");
        s.register_batch("t", batch.clone()).expect("register");
        s.register_batch("t", batch).expect("replace");
        assert_eq!(s.table_names(), ["t", "two"]);
        let (_, batches) = s.query_read_only("SELECT SUM(x) AS s FROM t").expect("sum");
        let sum = batches[0].column(0).as_any().downcast_ref::<Int64Array>();
        assert_eq!(sum.map(|a| a.values().to_vec()), Some(vec![3]));
    }
}
