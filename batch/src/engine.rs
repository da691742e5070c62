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
use crate::table::Table;
use crate::{BatchError, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
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

/// The query engine's memory pool.
pub const MEMORY_POOL_BYTES: usize = 512 << 20;

/// A DataFusion session over one snapshot directory. The calls into
/// DataFusion's SQL front end are in the `engine` crate (built at
/// opt-level 1); what runs per batch of rows is here.
pub struct Engine {
    session: engine::Session,
}

impl From<engine::EngineError> for BatchError {
    fn from(e: engine::EngineError) -> Self {
        match e {
            engine::EngineError::Plan(e) | engine::EngineError::Run(e) => BatchError::Query(e),
            engine::EngineError::Io { path, source } => BatchError::io(&path, source),
        }
    }
}

impl Engine {
    /// Opens the snapshot in `dir` (it must have been written by a batch
    /// run), checking each file's size and row count against the manifest
    /// (the batch, which has just written or fully checked them).
    pub fn open(dir: &Path) -> Result<Engine> {
        Engine::open_checked(dir, crate::snapshot::Check::Quick)
    }

    /// [`Engine::open`], checking the files as `check` says: `ecomflow sql`
    /// takes every file's SHA-256 ([`Check::Full`](crate::snapshot::Check)),
    /// so that a changed byte is an error, not a changed answer.
    pub fn open_checked(dir: &Path, check: crate::snapshot::Check) -> Result<Engine> {
        if !dir.join(crate::snapshot::MANIFEST).exists() {
            return Err(BatchError::NoSnapshot(dir.display().to_string()));
        }
        // Never answer from a partial snapshot: a deleted or truncated day,
        // a file the batch did not write, or a run that stopped midway is
        // an error, not fewer rows.
        let problems = crate::snapshot::verify(dir, check)?;
        if !problems.is_empty() {
            return Err(BatchError::Damaged {
                dir: dir.display().to_string(),
                problems,
            });
        }
        let sources = DAILY_TABLES
            .iter()
            .map(|t| (t, true))
            .chain(WHOLE_TABLES.iter().map(|t| (t, false)))
            .map(|(table, date_partitioned)| {
                Ok(engine::Source {
                    name: table.to_string(),
                    dir: dir.join(table),
                    schema: schema_of(table)
                        .ok_or_else(|| BatchError::Corrupt(format!("no schema for {table}")))?,
                    date_partitioned,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let session = engine::Session::open(
            &sources,
            vec![datafusion::logical_expr::ScalarUDF::new_from_impl(
                ListCardinality::default(),
            )],
            &VIEWS,
            engine::Limits {
                threads: 2,
                memory_pool_bytes: MEMORY_POOL_BYTES,
            },
        )?;
        Ok(Engine { session })
    }

    /// Runs one SQL statement and collects its result.
    pub fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.session.query(sql)?.1)
    }

    /// Runs one query and returns its result as a [`Table`], with its
    /// columns even when no row came back.
    pub fn table(&self, sql: &str) -> Result<Table> {
        let (columns, batches) = self.session.query(sql)?;
        let mut table = Table::from_batches(&batches)?;
        table.columns = columns;
        Ok(table)
    }

    /// Runs one query and hands its result to `f` a batch at a time, so a
    /// large result is never held whole.
    pub fn for_each_batch(
        &self,
        sql: &str,
        mut f: impl FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        use futures::StreamExt;
        let mut stream = self.session.stream(sql)?;
        self.session.block_on(async {
            while let Some(batch) = stream.next().await {
                f(&batch?)?;
            }
            Ok(())
        })
    }

    /// Runs one query and folds each of its partitions (the engine's two)
    /// on its own thread: `init()` makes a partition's state and `f` folds
    /// each of its batches into it. Returns the states, in partition order,
    /// for the caller to merge. A large result is never held whole, and the
    /// two cores decode and fold at once where [`Engine::for_each_batch`]
    /// folds on one.
    pub fn fold_partitions<S: Send>(
        &self,
        sql: &str,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, &RecordBatch) -> Result<()> + Sync,
    ) -> Result<Vec<S>> {
        use futures::StreamExt;
        let streams = self.session.partition_streams(sql)?;
        let (init, f, session) = (&init, &f, &self.session);
        std::thread::scope(|scope| {
            let folds: Vec<_> = streams
                .into_iter()
                .map(|mut stream| {
                    scope.spawn(move || {
                        let mut state = init();
                        session.block_on(async {
                            while let Some(batch) = stream.next().await {
                                f(&mut state, &batch?)?;
                            }
                            Ok::<_, BatchError>(())
                        })?;
                        Ok(state)
                    })
                })
                .collect();
            folds
                .into_iter()
                .map(|fold| {
                    fold.join().unwrap_or_else(|_| {
                        Err(BatchError::Corrupt(format!(
                            "a partition of `{sql}` panicked"
                        )))
                    })
                })
                .collect()
        })
    }

    /// Registers (or replaces) the table `product_views(product_id,
    /// sessions_viewed)`.
    pub fn register_product_views(&self, rows: &[(String, u64)]) -> Result<()> {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("product_id", DataType::Utf8, false),
            Field::new("sessions_viewed", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0))),
                std::sync::Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| i64::try_from(r.1).unwrap_or(i64::MAX)),
                )),
            ],
        )?;
        self.session.register_batch("product_views", batch)?;
        Ok(())
    }

    /// Runs one statement that cannot change anything: DDL (`CREATE`,
    /// `DROP`), DML (`INSERT`, `COPY ... TO`) and statements (`SET`,
    /// transactions) are refused before they run, so a query can neither
    /// add files to the snapshot nor write anywhere else. `ecomflow sql`
    /// runs user queries through this.
    pub fn query_read_only(&self, sql: &str) -> Result<QueryResult> {
        match self.session.query_read_only(sql) {
            Ok((schema, batches)) => Ok(QueryResult { schema, batches }),
            Err(engine::EngineError::Plan(e)) => {
                let message = e.to_string();
                // What SQLOptions refuses: "DDL not supported: ...",
                // "DML not supported: ...", "Statement not supported".
                let refused = [
                    "DDL not supported",
                    "DML not supported",
                    "Statement not supported",
                ]
                .iter()
                .any(|r| message.contains(r));
                Err(if refused {
                    BatchError::ReadOnly(format!(
                        "{message} (`ecomflow sql` only reads the snapshot; \
                         use --out FILE to save a result)"
                    ))
                } else {
                    BatchError::BadQuery {
                        message,
                        tables: self.table_names().join(", "),
                    }
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The tables and views of the default schema, sorted.
    pub fn table_names(&self) -> Vec<String> {
        self.session.table_names()
    }

    /// Runs one SQL statement and formats the result as a text table.
    pub fn query_text(&self, sql: &str) -> Result<String> {
        let batches = self.query(sql)?;
        format_text(&batches)
    }
}

/// What a query returned: its schema (kept even when no row came back)
/// and its rows.
#[derive(Debug)]
pub struct QueryResult {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

/// A result as a text table.
pub fn format_text(batches: &[RecordBatch]) -> Result<String> {
    let table = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
    Ok(table.to_string())
}

/// Writes a query result to `path`, as CSV (`.csv`) or Parquet
/// (`.parquet`), chosen by the extension. The file is written beside its
/// target under a temporary name and renamed over it, so an existing path
/// (or a symlink there) is replaced, never written through; returns the
/// number of rows.
pub fn write_result(result: &QueryResult, path: &Path) -> Result<usize> {
    let batches = &result.batches;
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => "csv",
        Some("parquet") => "parquet",
        _ => {
            return Err(BatchError::Corrupt(format!(
                "{}: --out takes a .csv or .parquet file",
                path.display()
            )))
        }
    };
    let (guard, file) = stage::fsio::Replace::begin(path).map_err(|e| BatchError::io(path, e))?;
    let file = match kind {
        "csv" => {
            let mut out = std::io::BufWriter::new(file);
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                for b in batches {
                    w.write(b)?;
                }
            }
            out.into_inner()
                .map_err(|e| BatchError::io(path, e.into_error()))?
        }
        _ => {
            let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(
                file,
                result.schema.clone(),
                None,
            )?;
            for b in batches {
                w.write(b)?;
            }
            w.into_inner()?
        }
    };
    guard
        .commit(file, stage::fsio::Durability::Process)
        .map_err(|e| BatchError::io(path, e))?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[test]
    fn write_result_refuses_other_extensions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = QueryResult {
            schema: std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            batches: Vec::new(),
        };
        let err = write_result(&empty, &dir.path().join("out.txt")).expect_err("txt");
        assert!(err.to_string().contains(".csv or .parquet"), "{err}");
    }

    /// The fast `cardinality` answers what the built-in does: lists of
    /// strings and of structs (with NULL and empty rows), and the nested
    /// lists it hands to the built-in. Hand-checked: 2, NULL, 0, 3, 4.
    #[test]
    fn the_fast_cardinality_equals_the_builtin() {
        let sql = "SELECT cardinality(a) AS a, cardinality(s) AS s, cardinality(n) AS n FROM (VALUES \
                   (make_array('x', 'y'), make_array(named_struct('p', 'x'), named_struct('p', 'y'), named_struct('p', 'z')), make_array(make_array(1, 2), make_array(3, 4))), \
                   (NULL, make_array(named_struct('p', 'w')), make_array(make_array(5))), \
                   (arrow_cast(make_array(), 'List(Utf8)'), NULL, NULL)) AS t(a, s, n)";
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let run = |ctx: SessionContext| {
            runtime.block_on(async {
                let batches = ctx
                    .sql(sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run");
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .expect("format")
                    .to_string()
            })
        };
        let builtin = run(SessionContext::new());
        let ctx = SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            ListCardinality::default(),
        ));
        assert_eq!(run(ctx), builtin);
        let lines: Vec<&str> = builtin.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            lines[1..],
            ["| 2 | 3 | 4 |", "|   | 1 | 1 |", "| 0 |   |   |"],
            "{builtin}"
        );
    }
}

/// DataFusion's `cardinality`, answered from the list's offsets when the
/// list's elements are not lists themselves (every list of the snapshot):
/// the built-in one slices each row into an array of its own to measure
/// it, about 0.3 s of CPU per query over the default shop's sessions.
/// Registered under the same name, so the SQL files (which Spark runs too)
/// stay as they are; anything else goes to the built-in.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct ListCardinality {
    builtin: datafusion::functions_nested::cardinality::Cardinality,
}

impl datafusion::logical_expr::ScalarUDFImpl for ListCardinality {
    fn name(&self) -> &str {
        "cardinality"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        self.builtin.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        self.builtin.return_type(arg_types)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, UInt64Array};
        use datafusion::logical_expr::ColumnarValue;
        if let [ColumnarValue::Array(array)] = args.args.as_slice() {
            if let DataType::List(field) = array.data_type() {
                // The built-in recurses into lists of lists only.
                if !matches!(
                    field.data_type(),
                    DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
                ) {
                    let lists = array.as_list::<i32>();
                    let lengths: UInt64Array = (0..lists.len())
                        .map(|i| lists.is_valid(i).then(|| lists.value_length(i) as u64))
                        .collect();
                    return Ok(ColumnarValue::Array(std::sync::Arc::new(lengths)));
                }
            }
        }
        self.builtin.invoke_with_args(args)
    }
}
