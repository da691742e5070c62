//! Writes the shop as newline-delimited JSON, one file per record kind,
//! for people who want the raw data (dirty records included, as published).

use crate::catalog::Catalog;
use crate::config::ShopConfig;
use crate::events::EventStream;
use crate::shape::{ShapeCollector, ShapeReport};
use schemas::envelope::Kind;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of a dataset, by record kind.
pub const FILES: [(Kind, &str); 5] = [
    (Kind::Category, "categories.jsonl"),
    (Kind::Product, "products.jsonl"),
    (Kind::User, "users.jsonl"),
    (Kind::Session, "sessions.jsonl"),
    (Kind::Transaction, "transactions.jsonl"),
];

/// Planted complements, one line per product: `complements.jsonl`.
pub const COMPLEMENTS_FILE: &str = "complements.jsonl";

/// Config, counts and shape: `manifest.json`.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The configuration that generated the data.
    pub config: ShopConfig,
    /// Total records written (all kinds).
    pub records: u64,
    /// Bytes written (all files).
    pub bytes: u64,
    /// Shape statistics of the data.
    pub shape: ShapeReport,
}

fn create(dir: &Path, name: &str) -> std::io::Result<BufWriter<File>> {
    let path: PathBuf = dir.join(name);
    File::create(&path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })
}

/// Writes the dataset for `cfg` into `dir` (created if missing), calling
/// `progress(done, total)` now and then.
pub fn write(
    cfg: &ShopConfig,
    dir: &Path,
    mut progress: impl FnMut(u64, u64),
) -> std::io::Result<Manifest> {
    std::fs::create_dir_all(dir)?;
    let catalog = Arc::new(Catalog::generate(cfg));
    let mut writers = Vec::new();
    for (kind, name) in FILES {
        writers.push((kind, create(dir, name)?));
    }
    let mut shape = ShapeCollector::new(&catalog);
    let stream = EventStream::new(cfg, catalog.clone());
    let total = stream.total();
    let (mut records, mut bytes) = (0u64, 0u64);
    for ev in stream {
        shape.observe(&ev);
        if let Some((_, w)) = writers.iter_mut().find(|(k, _)| *k == ev.kind) {
            w.write_all(&ev.data)?;
            w.write_all(b"\n")?;
        }
        records += 1;
        bytes += ev.data.len() as u64 + 1;
        if records % 50_000 == 0 {
            progress(records, total);
        }
    }
    progress(records, total);
    for (_, mut w) in writers {
        w.flush()?;
    }
    let mut w = create(dir, COMPLEMENTS_FILE)?;
    for (p, cs) in catalog.complements.iter().enumerate() {
        if cs.is_empty() {
            continue;
        }
        let line = serde_json::json!({
            "product_id": catalog.products[p].product_id,
            "complements": cs.iter().map(|&c| catalog.products[c as usize].product_id.as_str()).collect::<Vec<_>>(),
        });
        let text = line.to_string();
        bytes += text.len() as u64 + 1;
        writeln!(w, "{text}")?;
    }
    w.flush()?;
    let manifest = Manifest {
        config: cfg.clone(),
        records,
        bytes,
        shape: shape.report(),
    };
    let mut w = create(dir, MANIFEST_FILE)?;
    serde_json::to_writer_pretty(&mut w, &manifest).map_err(std::io::Error::other)?;
    w.flush()?;
    Ok(manifest)
}
