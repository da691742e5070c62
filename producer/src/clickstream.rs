//! The importer of event-level clickstream exports: CSV files with one row
//! per view, cart, remove-from-cart and purchase,
//!
//! ```text
//! event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
//! 2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c
//! ```
//!
//! (the layout of the public multi-category-store datasets; columns found
//! by their header, in any order, more ignored), plain or gzip, turned into
//! the dataset [`crate::dataset`] reads: catalog, users, sessions and
//! transactions, one NDJSON file each.
//!
//! # Rules
//!
//! - **Sessions** come from `user_session`: start and end are its first
//!   and last event time (duration the difference); its viewed products are
//!   the distinct products of all its rows, in the order first seen; its
//!   cart is the cart rows' products less the removed ones, with every
//!   purchased product in it at least as many times as it was bought. It is
//!   `converted` if it has a purchase, else `abandoned` if its cart is not
//!   empty, else `browsed`.
//! - **Transactions**: one per session with purchase rows, id `t-` and the
//!   session id, at the time of its last purchase row; each purchase row is
//!   one unit (a product bought in three rows is quantity 3) at the price of
//!   its last row; no discount.
//! - **What the layout lacks** is `unknown`: the device (type, OS,
//!   browser, place), the referrer, the payment method, the users' names,
//!   e-mails and places. A user's registration date is the day of their
//!   first row; products are named from brand and category code, in the
//!   category of their first row (`unknown` without one), priced at their
//!   first valid price with a history point each day the price changed.
//! - **Dropped rows**, each counted by reason ([`DropReason`]): a line
//!   that is not CSV of the header's width, a missing or unreadable time,
//!   an unknown event type, a missing product, user or session id, an id
//!   over [`MAX_ID_BYTES`], a cart or purchase row without a positive
//!   price, a row of a session whose user is another, and a row more than
//!   a day after its session's start (sessions are at most a day long, as
//!   ingest's validator takes them).
//!
//! # Memory
//!
//! Files are read as streams, in the order given, and are expected in time
//! order (the public exports are). A session is written out once the rows
//! have moved a day past its start, so what is held is a day of open
//! sessions, not the file; transactions wait only until no open session
//! can still precede them. The catalog and the users (a few numbers per
//! product and user) are held until the end and written last.

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use rustc_hash::{FxHashMap, FxHashSet};
use schemas::types::round_cents;
use schemas::validate::{MAX_ID_BYTES, MAX_SESSION_SECONDS};
use schemas::{
    CartItem, Category, ConversionStatus, DeviceInfo, DeviceType, GeoData, LineItem, PaymentMethod,
    PricePoint, Product, PurchaseSummary, Session, Transaction, User,
};
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Why a row was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Not CSV, or not as many fields as the header.
    BrokenLine,
    /// `event_time` empty or not a time.
    BadTime,
    /// `event_type` other than view, cart, remove_from_cart, purchase.
    UnknownEventType,
    /// `product_id` empty.
    MissingProduct,
    /// `user_id` empty.
    MissingUser,
    /// `user_session` empty.
    MissingSession,
    /// An id longer than [`MAX_ID_BYTES`].
    IdTooLong,
    /// A cart or purchase row whose price is empty, not a number, or not
    /// positive.
    BadPrice,
    /// A row whose session belongs to another user.
    SessionUserMismatch,
    /// A row more than a day after its session's first row, or one that
    /// came after the rows had moved a day past its session.
    SessionOverADay,
}

impl DropReason {
    /// The reason's name in the summary.
    pub fn code(self) -> &'static str {
        match self {
            DropReason::BrokenLine => "broken_line",
            DropReason::BadTime => "bad_time",
            DropReason::UnknownEventType => "unknown_event_type",
            DropReason::MissingProduct => "missing_product",
            DropReason::MissingUser => "missing_user",
            DropReason::MissingSession => "missing_session",
            DropReason::IdTooLong => "id_too_long",
            DropReason::BadPrice => "bad_price",
            DropReason::SessionUserMismatch => "session_user_mismatch",
            DropReason::SessionOverADay => "session_over_a_day",
        }
    }
}

/// What an import read and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Data rows read (the header lines not counted).
    pub rows: u64,
    /// Rows taken, per event type (view, cart, remove_from_cart, purchase).
    pub taken: BTreeMap<&'static str, u64>,
    /// Rows dropped, per reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Records written.
    pub sessions: u64,
    /// Transactions written.
    pub transactions: u64,
    /// Products written.
    pub products: u64,
    /// Products seen in rows but never with a valid price: no catalog
    /// record (their sessions and baskets still name them).
    pub products_without_price: u64,
    /// Categories written.
    pub categories: u64,
    /// Users written.
    pub users: u64,
}

impl ImportReport {
    /// Rows dropped, all reasons.
    pub fn dropped_rows(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// A failure to read the input or write the dataset.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An input or output file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file whose header lacks a column the rows need.
    #[error("{path}: the header has no column {column:?} (it needs event_time, event_type, product_id, user_id and user_session; category_id, category_code, brand and price are read when present)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// The output directory holds a dataset already.
    #[error("{0} already holds a dataset: give another --out, or remove it first")]
    OutputExists(PathBuf),
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    View,
    Cart,
    Remove,
    Purchase,
}

impl EventType {
    fn parse(s: &str) -> Option<EventType> {
        match s.trim() {
            "view" => Some(EventType::View),
            "cart" => Some(EventType::Cart),
            "remove_from_cart" => Some(EventType::Remove),
            "purchase" => Some(EventType::Purchase),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            EventType::View => "view",
            EventType::Cart => "cart",
            EventType::Remove => "remove_from_cart",
            EventType::Purchase => "purchase",
        }
    }
}

/// A session still taking rows.
struct OpenSession {
    user: Box<str>,
    /// With the first row's time, its key in [`Importer::by_start`].
    seq: u64,
    first: NaiveDateTime,
    last: NaiveDateTime,
    viewed: Vec<Box<str>>,
    /// Product, units in the cart (added less removed), last price.
    cart: Vec<(Box<str>, u32, f64)>,
    /// Product, units bought, last price.
    bought: Vec<(Box<str>, u32, f64)>,
    last_purchase: Option<NaiveDateTime>,
}

impl OpenSession {
    fn new(row: &Row<'_>, seq: u64) -> OpenSession {
        OpenSession {
            user: row.user.into(),
            seq,
            first: row.time,
            last: row.time,
            viewed: Vec::new(),
            cart: Vec::new(),
            bought: Vec::new(),
            last_purchase: None,
        }
    }

    /// The key of [`Importer::by_start`]: first row's time (seconds), seq.
    fn start_key(&self) -> (i64, u64) {
        (self.first.and_utc().timestamp(), self.seq)
    }

    /// Adds a row of this session; `Some(old start key)` if it moved the
    /// start earlier, or why the row is dropped.
    fn add(&mut self, row: &Row<'_>) -> Result<Option<(i64, u64)>, DropReason> {
        if *self.user != *row.user {
            return Err(DropReason::SessionUserMismatch);
        }
        let (first, last) = (self.first.min(row.time), self.last.max(row.time));
        if (last - first).num_seconds() > MAX_SESSION_SECONDS {
            return Err(DropReason::SessionOverADay);
        }
        let moved = (row.time < self.first).then(|| self.start_key());
        (self.first, self.last) = (first, last);
        if !self.viewed.iter().any(|p| **p == *row.product) {
            self.viewed.push(row.product.into());
        }
        let price = row.price.unwrap_or(0.0);
        match row.kind {
            EventType::View => {}
            EventType::Cart | EventType::Remove => {
                let add = row.kind == EventType::Cart;
                match self.cart.iter_mut().find(|c| *c.0 == *row.product) {
                    Some(c) => {
                        c.1 = if add {
                            c.1.saturating_add(1)
                        } else {
                            c.1.saturating_sub(1)
                        };
                        if row.price.is_some() {
                            c.2 = price;
                        }
                    }
                    None if add => self.cart.push((row.product.into(), 1, price)),
                    None => {}
                }
            }
            EventType::Purchase => {
                match self.bought.iter_mut().find(|b| *b.0 == *row.product) {
                    Some(b) => {
                        b.1 = b.1.saturating_add(1);
                        b.2 = price;
                    }
                    None => self.bought.push((row.product.into(), 1, price)),
                }
                self.last_purchase = Some(self.last_purchase.map_or(row.time, |l| l.max(row.time)));
            }
        }
        Ok(moved)
    }

    /// The cart as the session record holds it: added less removed, and
    /// every bought product at least as many times as bought.
    fn cart_contents(&self) -> Vec<CartItem> {
        let mut cart: Vec<CartItem> = Vec::new();
        for (product, units, price) in &self.cart {
            let bought = self
                .bought
                .iter()
                .find(|b| b.0 == *product)
                .map_or(0, |b| b.1);
            let quantity = (*units).max(bought);
            if quantity > 0 {
                cart.push(CartItem {
                    product_id: product.to_string(),
                    quantity,
                    price: *price,
                });
            }
        }
        for (product, units, price) in &self.bought {
            if !cart.iter().any(|c| *c.product_id == **product) {
                cart.push(CartItem {
                    product_id: product.to_string(),
                    quantity: *units,
                    price: *price,
                });
            }
        }
        cart
    }

    /// The session's transaction, if it bought anything.
    fn transaction(&self, id: &str) -> Option<Transaction> {
        let at = self.last_purchase?;
        let items: Vec<LineItem> = self
            .bought
            .iter()
            .map(|(product, units, price)| LineItem {
                product_id: product.to_string(),
                quantity: *units,
                unit_price: *price,
                subtotal: round_cents(f64::from(*units) * price),
            })
            .collect();
        let total = round_cents(items.iter().map(|i| i.subtotal).sum());
        Some(Transaction {
            transaction_id: format!("t-{id}"),
            session_id: id.to_string(),
            user_id: self.user.to_string(),
            timestamp: at,
            items,
            discount: 0.0,
            total,
            payment_method: PaymentMethod::Unknown,
        })
    }
}

/// A product as the rows describe it.
struct ProductSeen {
    category: Box<str>,
    name: String,
    first_day: NaiveDate,
    history: Vec<PricePoint>,
}

/// A user: first day and what they bought.
struct UserSeen {
    first_day: NaiveDate,
    summary: PurchaseSummary,
}

/// A transaction waiting for its place in time order.
struct Pending(Transaction, u64);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: the heap's top is the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0.timestamp, other.1).cmp(&(self.0.timestamp, self.1))
    }
}

/// What every field the layout lacks holds.
const UNKNOWN: &str = "unknown";

/// The output files, written as `.partial` and renamed when complete.
const OUTPUTS: [&str; 5] = [
    "categories.jsonl",
    "products.jsonl",
    "users.jsonl",
    "sessions.jsonl",
    "transactions.jsonl",
];

struct Out {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Out {
    fn create(dir: &Path, name: &str) -> Result<Out, ImportError> {
        let path = dir.join(format!("{name}.partial"));
        let f = File::create(&path).map_err(io_at(&path))?;
        Ok(Out {
            w: BufWriter::with_capacity(1 << 20, f),
            path,
        })
    }

    fn line(&mut self, bytes: &[u8]) -> Result<(), ImportError> {
        self.w
            .write_all(bytes)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(io_at(&self.path))
    }

    fn json(&mut self, value: &impl serde::Serialize) -> Result<(), ImportError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ImportError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.line(&bytes)
    }

    /// Flushes, syncs and renames to the final name.
    fn finish(self) -> Result<(), ImportError> {
        let Out { path, w } = self;
        let f = w.into_inner().map_err(|e| ImportError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_at(&path))?;
        let done = path.with_extension("");
        std::fs::rename(&path, &done).map_err(io_at(&path))
    }
}

/// The importer's state between rows.
struct Importer {
    report: ImportReport,
    open: FxHashMap<Box<str>, OpenSession>,
    by_start: BTreeMap<(i64, u64), Box<str>>,
    /// Hashes of the sessions written: a row for one of them is a session
    /// reopened more than a day after its start.
    closed: FxHashSet<u64>,
    next_seq: u64,
    /// The latest event time read (seconds).
    high: i64,
    pending: BinaryHeap<Pending>,
    products: FxHashMap<Box<str>, ProductSeen>,
    categories: FxHashMap<Box<str>, String>,
    users: FxHashMap<Box<str>, UserSeen>,
    sessions_out: Out,
    transactions_out: Out,
    buf: Vec<u8>,
}

/// A written session's id as 64 bits (XXH3): a few MB for millions of
/// sessions, where the ids themselves would take ten times that.
fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// One row's fields, borrowed from the CSV record.
struct Row<'a> {
    time: NaiveDateTime,
    kind: EventType,
    product: &'a str,
    category: &'a str,
    category_code: &'a str,
    brand: &'a str,
    price: Option<f64>,
    user: &'a str,
    session: &'a str,
}

/// `2019-10-01 00:00:00 UTC`, `2019-10-01T00:00:00Z`, or any form
/// [`schemas::time::parse`] reads; fractions of a second are dropped.
///
/// The exports' `YYYY-MM-DD HH:MM:SS` is read as the canonical
/// `YYYY-MM-DDTHH:MM:SS`, which [`schemas::time::parse`] reads by hand:
/// through chrono's format strings it was the slowest step of a row.
fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let s = s.strip_suffix(" UTC").unwrap_or(s);
    let b = s.as_bytes();
    if b.len() == 19 && b[10] == b' ' {
        let mut canonical = [0u8; 19];
        canonical.copy_from_slice(b);
        canonical[10] = b'T';
        if let Some(t) = std::str::from_utf8(&canonical)
            .ok()
            .and_then(schemas::time::parse)
        {
            return Some(t);
        }
    }
    schemas::time::parse(s).and_then(|t| t.with_nanosecond(0))
}

/// Column positions found in a header.
struct Columns {
    time: usize,
    kind: usize,
    product: usize,
    user: usize,
    session: usize,
    category: Option<usize>,
    category_code: Option<usize>,
    brand: Option<usize>,
    price: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord, path: &Path) -> Result<Columns, ImportError> {
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let need = |column: &'static str| {
            find(column).ok_or_else(|| ImportError::MissingColumn {
                path: path.to_path_buf(),
                column,
            })
        };
        Ok(Columns {
            time: need("event_time")?,
            kind: need("event_type")?,
            product: need("product_id")?,
            user: need("user_id")?,
            session: need("user_session")?,
            category: find("category_id"),
            category_code: find("category_code"),
            brand: find("brand"),
            price: find("price"),
        })
    }

    fn row<'a>(&self, r: &'a csv::StringRecord) -> Result<Row<'a>, DropReason> {
        let get = |i: usize| r.get(i).unwrap_or("").trim();
        let opt = |i: Option<usize>| i.map_or("", get);
        let time = parse_time(get(self.time)).ok_or(DropReason::BadTime)?;
        let kind = EventType::parse(get(self.kind)).ok_or(DropReason::UnknownEventType)?;
        let (product, user, session) = (get(self.product), get(self.user), get(self.session));
        for (id, missing) in [
            (product, DropReason::MissingProduct),
            (user, DropReason::MissingUser),
            (session, DropReason::MissingSession),
        ] {
            if id.is_empty() {
                return Err(missing);
            }
        }
        let category = opt(self.category);
        if [product, user, session, category]
            .iter()
            .any(|id| id.len() > MAX_ID_BYTES)
        {
            return Err(DropReason::IdTooLong);
        }
        let price = opt(self.price)
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(round_cents)
            .filter(|p| *p > 0.0);
        if price.is_none() && matches!(kind, EventType::Cart | EventType::Purchase) {
            return Err(DropReason::BadPrice);
        }
        Ok(Row {
            time,
            kind,
            product,
            category,
            category_code: opt(self.category_code),
            brand: opt(self.brand),
            price,
            user,
            session,
        })
    }
}

/// A reader that adds the bytes it reads to a shared count (the file's
/// bytes, before any decompression: progress against the files' sizes).
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Opens `path`, through a gzip decoder if it starts with gzip's magic;
/// the file's bytes read are added to `read`.
fn open_input(
    path: &Path,
    read: &std::rc::Rc<std::cell::Cell<u64>>,
) -> Result<Box<dyn Read>, ImportError> {
    let f = Counted {
        inner: File::open(path).map_err(io_at(path))?,
        read: read.clone(),
    };
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().map_err(io_at(path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// Imports `files` (in that order) into a dataset in `out` (created if
/// missing; refused if it holds a dataset), calling `progress(bytes read,
/// bytes in all, rows read)` every 100,000 rows.
pub fn import(
    files: &[PathBuf],
    out: &Path,
    mut progress: impl FnMut(u64, u64, u64),
) -> Result<ImportReport, ImportError> {
    std::fs::create_dir_all(out).map_err(io_at(out))?;
    if OUTPUTS.iter().any(|name| out.join(name).exists()) {
        return Err(ImportError::OutputExists(out.to_path_buf()));
    }
    // Check every file's header before writing anything.
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut total = 0u64;
    for path in files {
        total += std::fs::metadata(path).map_err(io_at(path))?.len();
        open_csv(path, &read)?;
    }
    let mut im = Importer {
        report: ImportReport::default(),
        open: FxHashMap::default(),
        by_start: BTreeMap::new(),
        closed: FxHashSet::default(),
        next_seq: 0,
        high: i64::MIN,
        pending: BinaryHeap::new(),
        products: FxHashMap::default(),
        categories: FxHashMap::default(),
        users: FxHashMap::default(),
        sessions_out: Out::create(out, "sessions.jsonl")?,
        transactions_out: Out::create(out, "transactions.jsonl")?,
        buf: Vec::with_capacity(4096),
    };
    read.set(0);
    for path in files {
        let (r, header, columns) = open_csv(path, &read)?;
        im.read_file(path, r, &header, &columns, &mut |rows| {
            progress(read.get(), total, rows)
        })?;
    }
    progress(total, total, im.report.rows);
    im.finish(out)
}

type CsvReader = csv::Reader<Box<dyn Read>>;

/// A CSV reader on `path` with its header and the columns found in it.
fn open_csv(
    path: &Path,
    read: &std::rc::Rc<std::cell::Cell<u64>>,
) -> Result<(CsvReader, csv::StringRecord, Columns), ImportError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open_input(path, read)?);
    let header = r
        .headers()
        .map_err(|e| ImportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?
        .clone();
    let columns = Columns::of(&header, path)?;
    Ok((r, header, columns))
}

impl Importer {
    /// Takes or drops every row of one file, calling `progress` every
    /// 100,000 rows.
    fn read_file(
        &mut self,
        path: &Path,
        mut r: CsvReader,
        header: &csv::StringRecord,
        columns: &Columns,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ImportError> {
        let mut record = csv::StringRecord::new();
        loop {
            match r.read_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    self.report.rows += 1;
                    let row = if record.len() == header.len() {
                        columns.row(&record)
                    } else {
                        Err(DropReason::BrokenLine)
                    };
                    match row {
                        Ok(row) => self.take(row)?,
                        Err(reason) => self.drop_row(reason),
                    }
                }
                // An I/O error (a cut gzip stream, a disk error) ends the
                // import; a line that is not CSV (bad UTF-8) is dropped.
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                    return Err(ImportError::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(e),
                    });
                }
                Err(_) => {
                    self.report.rows += 1;
                    self.drop_row(DropReason::BrokenLine);
                }
            }
            if self.report.rows.is_multiple_of(100_000) {
                progress(self.report.rows);
            }
        }
    }

    fn drop_row(&mut self, reason: DropReason) {
        *self.report.dropped.entry(reason).or_default() += 1;
    }

    fn take(&mut self, row: Row<'_>) -> Result<(), ImportError> {
        let t = row.time.and_utc().timestamp();
        self.high = self.high.max(t);
        self.close_before(self.high.saturating_sub(MAX_SESSION_SECONDS))?;
        if !self.open.contains_key(row.session) {
            if self.closed.contains(&id_hash(row.session)) {
                self.drop_row(DropReason::SessionOverADay);
                return Ok(());
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.by_start.insert((t, seq), row.session.into());
            self.open
                .insert(row.session.into(), OpenSession::new(&row, seq));
        }
        let Some(session) = self.open.get_mut(row.session) else {
            return Ok(());
        };
        let moved = match session.add(&row) {
            Ok(moved) => moved,
            Err(reason) => {
                self.drop_row(reason);
                return Ok(());
            }
        };
        if let Some(from) = moved {
            // A row earlier than the session's first (a file slightly out
            // of order): the session starts there.
            if let Some(id) = self.by_start.remove(&from) {
                self.by_start.insert(session.start_key(), id);
            }
        }
        *self.report.taken.entry(row.kind.name()).or_default() += 1;
        self.see_catalog(&row);
        let day = row.time.date();
        self.users
            .entry(row.user.into())
            .and_modify(|u| u.first_day = u.first_day.min(day))
            .or_insert(UserSeen {
                first_day: day,
                summary: PurchaseSummary::default(),
            });
        Ok(())
    }

    fn see_catalog(&mut self, row: &Row<'_>) {
        let day = row.time.date();
        let p = self.products.entry(row.product.into()).or_insert_with(|| {
            let category: &str = if row.category.is_empty() {
                UNKNOWN
            } else {
                row.category
            };
            let kind = row.category_code.rsplit('.').next().unwrap_or("");
            let name = match (row.brand, kind) {
                ("", "") => row.product.to_string(),
                (b, "") => format!("{b} {}", row.product),
                ("", k) => format!("{k} {}", row.product),
                (b, k) => format!("{b} {k}"),
            };
            ProductSeen {
                category: category.into(),
                name,
                first_day: day,
                history: Vec::new(),
            }
        });
        p.first_day = p.first_day.min(day);
        if let Some(price) = row.price {
            match p.history.last_mut() {
                Some(last) if last.price == price => {}
                Some(last) if last.date == day => last.price = price,
                _ => p.history.push(PricePoint { price, date: day }),
            }
        }
        if !self.categories.contains_key(&*p.category) {
            let name = if row.category_code.is_empty() || row.category.is_empty() {
                p.category.to_string()
            } else {
                row.category_code.to_string()
            };
            self.categories.insert(p.category.clone(), name);
        }
    }

    /// Writes out, oldest first, the sessions that started before `limit`
    /// (seconds), then the transactions no open session can precede.
    fn close_before(&mut self, limit: i64) -> Result<(), ImportError> {
        while let Some(entry) = self.by_start.first_entry() {
            if entry.key().0 >= limit {
                break;
            }
            let id = entry.remove();
            if let Some(s) = self.open.remove(&id) {
                self.closed.insert(id_hash(&id));
                self.write_session(&id, s)?;
            }
        }
        let frontier = self
            .by_start
            .first_key_value()
            .map_or(i64::MAX, |(k, _)| k.0);
        while self
            .pending
            .peek()
            .is_some_and(|p| p.0.timestamp.and_utc().timestamp() < frontier)
        {
            if let Some(Pending(t, _)) = self.pending.pop() {
                self.buf.clear();
                schemas::json_write::transaction(&t, &mut self.buf);
                self.transactions_out.line(&self.buf)?;
                self.report.transactions += 1;
            }
        }
        Ok(())
    }

    fn write_session(&mut self, id: &str, s: OpenSession) -> Result<(), ImportError> {
        let cart = s.cart_contents();
        let status = if !s.bought.is_empty() {
            ConversionStatus::Converted
        } else if !cart.is_empty() {
            ConversionStatus::Abandoned
        } else {
            ConversionStatus::Browsed
        };
        let unknown = || UNKNOWN.to_string();
        let session = Session {
            session_id: id.to_string(),
            user_id: s.user.to_string(),
            start_time: s.first,
            duration_seconds: u32::try_from((s.last - s.first).num_seconds()).unwrap_or(0),
            referrer: unknown(),
            device_info: DeviceInfo {
                device_type: DeviceType::Unknown,
                os: unknown(),
                browser: unknown(),
                city: unknown(),
                state: unknown(),
                ip: unknown(),
            },
            conversion_status: status,
            viewed_products: s.viewed.iter().map(|p| p.to_string()).collect(),
            cart_contents: cart,
        };
        self.buf.clear();
        schemas::json_write::session(&session, &mut self.buf);
        self.sessions_out.line(&self.buf)?;
        self.report.sessions += 1;
        if let Some(t) = s.transaction(id) {
            if let Some(u) = self.users.get_mut(&s.user) {
                u.summary.add(&t);
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pending.push(Pending(t, seq));
        }
        Ok(())
    }

    fn finish(mut self, out: &Path) -> Result<ImportReport, ImportError> {
        self.close_before(i64::MAX)?;
        let mut categories = Out::create(out, "categories.jsonl")?;
        for (id, name) in sorted(&self.categories) {
            categories.json(&Category {
                category_id: id.to_string(),
                name: name.clone(),
            })?;
            self.report.categories += 1;
        }
        let mut products = Out::create(out, "products.jsonl")?;
        for (id, p) in sorted(&self.products) {
            let Some(first) = p.history.first() else {
                self.report.products_without_price += 1;
                continue;
            };
            products.json(&Product {
                product_id: id.to_string(),
                name: p.name.clone(),
                category_id: p.category.to_string(),
                base_price: first.price,
                current_stock: 0,
                is_active: true,
                price_history: p.history.clone(),
                creation_date: p.first_day,
            })?;
            self.report.products += 1;
        }
        let mut users = Out::create(out, "users.jsonl")?;
        for (id, u) in sorted(&self.users) {
            users.json(&User {
                user_id: id.to_string(),
                name: UNKNOWN.into(),
                email: UNKNOWN.into(),
                geo_data: GeoData {
                    city: UNKNOWN.into(),
                    state: UNKNOWN.into(),
                    country: UNKNOWN.into(),
                },
                registration_date: u.first_day,
                purchase_summary: u.summary.clone(),
            })?;
            self.report.users += 1;
        }
        for f in [
            categories,
            products,
            users,
            self.sessions_out,
            self.transactions_out,
        ] {
            f.finish()?;
        }
        Ok(self.report)
    }
}

/// A map's entries in key order (the catalog files are written sorted).
fn sorted<V>(map: &FxHashMap<Box<str>, V>) -> Vec<(&str, &V)> {
    let mut entries: Vec<(&str, &V)> = map.iter().map(|(k, v)| (&**k, v)).collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}
