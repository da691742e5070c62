//! The shop as newline-delimited JSON, one file per record kind: written
//! for people who want the raw data (dirty records included, as published),
//! and read back for `replay --dataset` ([`Dataset`]), which also takes a
//! user's own export in the same format.

use crate::catalog::Catalog;
use crate::config::ShopConfig;
use crate::events::{Event, EventStream, Stream};
use crate::shape::{ShapeCollector, ShapeReport};
use chrono::NaiveDateTime;
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

// --- Reading a dataset ------------------------------------------------------

/// What identifies a dataset in the replay's progress marker: where it is
/// and how long each file was. Replaying other files into the same log is
/// refused, as replaying another shop is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DatasetId {
    /// The directory, as given (made absolute).
    pub dir: String,
    /// Each file found, with its length in bytes.
    pub files: Vec<(String, u64)>,
}

/// A dataset directory opened for replay: the NDJSON files [`write()`] makes
/// (`categories.jsonl`, `products.jsonl`, `users.jsonl`, `sessions.jsonl`,
/// `transactions.jsonl`; any may be missing), or a user's export in the
/// same format. Each non-blank line is one record, published as it is,
/// broken or not: ingest validates it and dead-letters what fails.
#[derive(Debug, Clone)]
pub struct Dataset {
    dir: PathBuf,
    id: DatasetId,
    total: u64,
}

/// A line longer than this is published cut to this length plus one byte,
/// which every decoder refuses as oversized, without holding the rest.
const LINE_LIMIT: usize = schemas::envelope::MAX_RECORD_BYTES;

impl Dataset {
    /// Opens `dir` and counts its records.
    pub fn open(dir: &Path) -> std::io::Result<Dataset> {
        let meta = std::fs::metadata(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("dataset {}: {e}", dir.display()))
        })?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("dataset {} is not a directory", dir.display()),
            ));
        }
        let abs = std::path::absolute(dir)?;
        let mut files = Vec::new();
        let mut total = 0;
        for (_, name) in FILES {
            let path = abs.join(name);
            match std::fs::metadata(&path) {
                // A FIFO, a device or a directory under a dataset name
                // would block in open or read forever: refused by name.
                Ok(m) if !m.is_file() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "{} is not a regular file (a FIFO, a device or a directory): \
                             give the dataset's files as plain files",
                            path.display()
                        ),
                    ))
                }
                Ok(m) => {
                    files.push((name.to_string(), m.len()));
                    let mut lines = Lines::open(&path)?;
                    while lines.next_line()?.is_some() {
                        total += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", path.display()),
                    ))
                }
            }
        }
        if files.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no dataset in {}: expected one or more of {}",
                    dir.display(),
                    FILES.map(|(_, n)| n).join(", ")
                ),
            ));
        }
        Ok(Dataset {
            id: DatasetId {
                dir: abs.display().to_string(),
                files,
            },
            dir: abs,
            total,
        })
    }

    /// What identifies it.
    pub fn id(&self) -> &DatasetId {
        &self.id
    }

    /// Records in all its files.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The records in publishing order: categories, products, users, then
    /// sessions and transactions merged by event time (a transaction first
    /// at equal times, as the generator orders them). Each file is read in
    /// its own order; a record whose time cannot be read takes the time of
    /// the record before it in its file, so it is published where it stands.
    pub fn events(&self) -> std::io::Result<DatasetEvents> {
        let open = |kind: Kind| -> std::io::Result<Option<Lines>> {
            let name = FILES
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, n)| *n)
                .unwrap_or_default();
            let path = self.dir.join(name);
            if self.id.files.iter().any(|(n, _)| n == name) {
                Lines::open(&path).map(Some)
            } else {
                Ok(None)
            }
        };
        let mut catalog = Vec::new();
        for kind in [Kind::Category, Kind::Product, Kind::User] {
            if let Some(lines) = open(kind)? {
                catalog.push((kind, lines));
            }
        }
        let mut sessions = open(Kind::Session)?.map(|l| Timed::new(Kind::Session, l));
        let mut transactions = open(Kind::Transaction)?.map(|l| Timed::new(Kind::Transaction, l));
        // Catalog records are stamped with the day the events start.
        let mut first: Option<NaiveDateTime> = None;
        for t in [sessions.as_mut(), transactions.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(time) = t.first_time()? {
                first = Some(first.map_or(time, |f| f.min(time)));
            }
        }
        let start = first
            .map(|t| t.date().and_hms_opt(0, 0, 0).unwrap_or(t))
            .unwrap_or_default();
        for t in [sessions.as_mut(), transactions.as_mut()]
            .into_iter()
            .flatten()
        {
            t.last_time = start;
        }
        catalog.reverse();
        Ok(DatasetEvents {
            catalog,
            start,
            sessions,
            transactions,
        })
    }
}

/// A file's non-blank lines, each cut at [`LINE_LIMIT`] + 1 bytes.
struct Lines {
    reader: std::io::BufReader<File>,
    path: PathBuf,
}

impl Lines {
    fn open(path: &Path) -> std::io::Result<Lines> {
        let file = File::open(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Lines {
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
        })
    }

    /// The next non-blank line without its line end.
    fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::BufRead;
        loop {
            let mut line = Vec::new();
            let mut any = false;
            loop {
                let buf = self.reader.fill_buf().map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
                })?;
                if buf.is_empty() {
                    break;
                }
                any = true;
                let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], i + 1, true),
                    None => (buf, buf.len(), false),
                };
                let room = (LINE_LIMIT + 1).saturating_sub(line.len());
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                self.reader.consume(used);
                if done {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(line));
        }
    }
}

/// A session or transaction file, one record read ahead, with its time.
struct Timed {
    kind: Kind,
    lines: Lines,
    ahead: Option<(NaiveDateTime, Vec<u8>)>,
    last_time: NaiveDateTime,
}

impl Timed {
    fn new(kind: Kind, lines: Lines) -> Timed {
        Timed {
            kind,
            lines,
            ahead: None,
            last_time: NaiveDateTime::default(),
        }
    }

    fn time_field(&self) -> &'static str {
        if self.kind == Kind::Session {
            "start_time"
        } else {
            "timestamp"
        }
    }

    /// The first readable time in the file, without consuming it.
    fn first_time(&mut self) -> std::io::Result<Option<NaiveDateTime>> {
        let mut probe = Lines::open(&self.lines.path)?;
        while let Some(line) = probe.next_line()? {
            if let Some(t) =
                string_field(&line, self.time_field()).and_then(|s| schemas::time::parse(&s))
            {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// Reads the next record ahead, if none is.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.ahead.is_none() {
            if let Some(line) = self.lines.next_line()? {
                if let Some(t) =
                    string_field(&line, self.time_field()).and_then(|s| schemas::time::parse(&s))
                {
                    self.last_time = t;
                }
                self.ahead = Some((self.last_time, line));
            }
        }
        Ok(())
    }
}

/// The events of a [`Dataset`], in publishing order.
pub struct DatasetEvents {
    /// Catalog files still to read, last first.
    catalog: Vec<(Kind, Lines)>,
    start: NaiveDateTime,
    sessions: Option<Timed>,
    transactions: Option<Timed>,
}

impl DatasetEvents {
    fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        while let Some((kind, lines)) = self.catalog.last_mut() {
            if let Some(line) = lines.next_line()? {
                let field = match kind {
                    Kind::Category => "category_id",
                    Kind::Product => "product_id",
                    _ => "user_id",
                };
                return Ok(Some(event(Stream::Catalog, *kind, self.start, field, line)));
            }
            self.catalog.pop();
        }
        for t in [self.sessions.as_mut(), self.transactions.as_mut()]
            .into_iter()
            .flatten()
        {
            t.fill()?;
        }
        let time = |t: &Option<Timed>| t.as_ref().and_then(|t| t.ahead.as_ref().map(|a| a.0));
        let take_txn = match (time(&self.sessions), time(&self.transactions)) {
            (None, None) => return Ok(None),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(s), Some(t)) => t <= s,
        };
        let (stream, source) = if take_txn {
            (Stream::Transactions, self.transactions.as_mut())
        } else {
            (Stream::Sessions, self.sessions.as_mut())
        };
        Ok(source.and_then(|t| {
            let kind = t.kind;
            t.ahead
                .take()
                .map(|(time, line)| event(stream, kind, time, "user_id", line))
        }))
    }
}

impl Iterator for DatasetEvents {
    type Item = std::io::Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

fn event(stream: Stream, kind: Kind, time: NaiveDateTime, key_field: &str, data: Vec<u8>) -> Event {
    Event {
        stream,
        kind,
        time,
        key: string_field(&data, key_field).unwrap_or_default(),
        data,
        dirty: None,
    }
}

/// The string value of the first `"field": "..."` in a JSON line, read
/// without parsing the record (for the partition key and the event time;
/// validation is ingest's). `None` when absent or not a plain string.
fn string_field(line: &[u8], field: &str) -> Option<String> {
    let needle = format!("\"{field}\"");
    let at = line
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?;
    let rest = &line[at + needle.len()..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] == b'\\' {
        return None;
    }
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO under a dataset name is an error naming it, at once, not an
    /// open that blocks until a writer comes.
    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("sessions.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Dataset::open(&path).map(|_| ()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("Dataset::open answered within 10 s");
        let err = result.expect_err("a FIFO is refused").to_string();
        assert!(
            err.contains("sessions.jsonl is not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn a_field_is_read_without_parsing_the_line() {
        let f = |line: &str, field: &str| string_field(line.as_bytes(), field);
        assert_eq!(
            f(r#"{"user_id":"user_000001","x":1}"#, "user_id").as_deref(),
            Some("user_000001")
        );
        assert_eq!(
            f(r#"{ "user_id" :  "u 2" }"#, "user_id").as_deref(),
            Some("u 2")
        );
        // Not a plain string: no key (the record still goes out, to be judged).
        assert_eq!(f(r#"{"user_id":null}"#, "user_id"), None);
        assert_eq!(f(r#"{"user_id":"a\"b"}"#, "user_id"), None);
        assert_eq!(f(r#"{"user_id":"cut"#, "user_id"), None);
        assert_eq!(f(r#"{"other":"x"}"#, "user_id"), None);
    }

    #[test]
    fn records_come_catalog_first_then_by_time_with_a_transaction_first_at_a_tie() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w =
            |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        w(
            "users.jsonl",
            "{\"user_id\":\"u1\"}\n\n{\"user_id\":\"u2\"}",
        );
        w(
            "sessions.jsonl",
            "{\"user_id\":\"u1\",\"start_time\":\"2025-01-02T10:00:00\"}\r\n\
             {\"user_id\":\"u2\",\"start_time\":\"N/A\"}\n\
             {\"user_id\":\"u1\",\"start_time\":\"2025-01-02T12:00:00\"}\n",
        );
        w(
            "transactions.jsonl",
            "{\"user_id\":\"u1\",\"timestamp\":\"2025-01-02T10:00:00\"}\n\
             {\"user_id\":\"u2\",\"timestamp\":\"2025-01-02T11:00:00\"}\n",
        );
        let d = Dataset::open(dir.path()).expect("open");
        assert_eq!(d.total(), 7);
        let events: Vec<Event> = d
            .events()
            .expect("events")
            .map(|e| e.expect("read"))
            .collect();
        let got: Vec<(Stream, &str, String)> = events
            .iter()
            .map(|e| (e.stream, e.key.as_str(), e.time.to_string()))
            .collect();
        let day = "2025-01-02 00:00:00".to_string();
        assert_eq!(
            got,
            vec![
                (Stream::Catalog, "u1", day.clone()),
                (Stream::Catalog, "u2", day),
                (Stream::Transactions, "u1", "2025-01-02 10:00:00".into()),
                (Stream::Sessions, "u1", "2025-01-02 10:00:00".into()),
                // "N/A" keeps its place: the time of the line before it.
                (Stream::Sessions, "u2", "2025-01-02 10:00:00".into()),
                (Stream::Transactions, "u2", "2025-01-02 11:00:00".into()),
                (Stream::Sessions, "u1", "2025-01-02 12:00:00".into()),
            ]
        );
        assert!(events.iter().all(|e| !e.data.ends_with(b"\r")));
    }
}
