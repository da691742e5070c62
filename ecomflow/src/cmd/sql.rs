//! `ecomflow sql`: one read-only query on the batch's Parquet snapshot.

use crate::cli::SqlArgs;

/// Runs the query; prints the rows or writes them to `--out`.
pub fn run(args: SqlArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        refuse_inside(out, &args.data_dir)?;
    }
    // Every file's checksum, not only its size: a query must not answer
    // from a file changed since the batch wrote it (about 0.3 s for the
    // default shop's 113 MB).
    let engine = batch::Engine::open_checked(
        &args.data_dir.join("snapshot"),
        batch::snapshot::Check::Full,
    )?;
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

/// `--out` never writes inside the data directory (the snapshot, the
/// report, the stores): a result saved there could replace their files.
fn refuse_inside(out: &std::path::Path, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let absolute = |p: &std::path::Path| -> std::path::PathBuf {
        // The file may not exist yet: resolve its directory.
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = parent.unwrap_or_else(|| std::path::Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        match p.file_name() {
            Some(name) => dir.join(name),
            None => dir,
        }
    };
    let out = absolute(out);
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if out.starts_with(&data) {
        anyhow::bail!(
            "--out {} is inside the data directory {}: save results elsewhere",
            out.display(),
            data.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_inside_the_data_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("snapshot")).expect("mkdir");
        let inside = data.join("snapshot").join("_snapshot.json");
        let err = refuse_inside(&inside, &data)
            .expect_err("inside")
            .to_string();
        assert!(err.contains("is inside the data directory"), "{err}");
        // Through `..` too.
        let sneaky = data.join("snapshot").join("..").join("x.csv");
        assert!(refuse_inside(&sneaky, &data).is_err());
        refuse_inside(&dir.path().join("result.csv"), &data).expect("outside is fine");
    }
}
