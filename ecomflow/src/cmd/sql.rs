//! `ecomflow sql`: one read-only query on the batch's Parquet snapshot.

use crate::cli::SqlArgs;

/// Runs the query; prints the rows or writes them to `--out`.
pub fn run(args: SqlArgs) -> anyhow::Result<()> {
    let engine = batch::Engine::open(&args.data_dir.join("snapshot"))?;
    let result = engine.query_read_only(&args.query)?;
    match &args.out {
        Some(path) => {
            let rows = batch::engine::write_result(&result, path)?;
            println!("{rows} rows written to {}", path.display());
        }
        None => println!("{}", batch::engine::format_text(&result.batches)?),
    }
    Ok(())
}
