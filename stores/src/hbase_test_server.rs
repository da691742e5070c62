//! A small HBase Thrift (v1) server for tests: HBase's own Thrift
//! interface (`hbase-thrift`'s generated processor), implementing the calls
//! our client uses on top of the embedded wide-column store. It tests our
//! client (framing, batching, scanner paging, errors) over the real wire
//! protocol; it is not HBase. The contract tests start it in their process;
//! the end-to-end test runs it as a process of its own (the
//! `hbase_thrift_test_server` example), shared by several ecomflow
//! services.

use crate::wide::{Cell, Row, RowMutation, WideColumnStore};
use crate::wide_embedded::EmbeddedWideStore;
use crate::wide_hbase::{protocols, ThriftProtocol, ThriftTransport};
use hbase_thrift::hbase::*;
use std::collections::{BTreeMap, HashMap};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use thrift::server::TProcessor;

fn unsupported<T>(call: &str) -> thrift::Result<T> {
    Err(thrift::Error::Application(thrift::ApplicationError::new(
        thrift::ApplicationErrorKind::UnknownMethod,
        format!("{call} is not supported by the test server"),
    )))
}

fn io_error<T>(message: impl ToString) -> thrift::Result<T> {
    Err(thrift::Error::User(Box::new(IOError {
        message: Some(message.to_string()),
        can_retry: Some(false),
    })))
}

fn illegal<T>(message: impl ToString) -> thrift::Result<T> {
    Err(thrift::Error::User(Box::new(IllegalArgument {
        message: Some(message.to_string()),
    })))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Handler state: the store, the tables' families, open scanners.
struct Handler {
    store: EmbeddedWideStore,
    tables: Mutex<BTreeMap<String, Vec<String>>>,
    /// Where the tables' families are kept, when the store outlives the
    /// process (a server restarted on the same directory).
    tables_file: Option<std::path::PathBuf>,
    scanners: Mutex<HashMap<i32, std::collections::VecDeque<Row>>>,
    next_scanner: AtomicI32,
}

fn families_of(columns: &[Vec<u8>]) -> Vec<String> {
    columns
        .iter()
        .map(|c| text(c.split(|b| *b == b':').next().unwrap_or_default()))
        .collect()
}

impl HbaseSyncHandler for Handler {
    fn handle_get_table_names(&self) -> thrift::Result<Vec<Text>> {
        Ok(self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|t| t.as_bytes().to_vec())
            .collect())
    }

    fn handle_is_table_enabled(&self, table_name: Bytes) -> thrift::Result<bool> {
        Ok(self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&text(&table_name)))
    }

    fn handle_create_table(
        &self,
        table_name: Text,
        column_families: Vec<ColumnDescriptor>,
    ) -> thrift::Result<()> {
        let table = text(&table_name);
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if tables.contains_key(&table) {
            return Err(thrift::Error::User(Box::new(AlreadyExists {
                message: Some(format!("table {table} exists")),
            })));
        }
        let names: Vec<Vec<u8>> = column_families
            .iter()
            .map(|c| c.name.clone().unwrap_or_default())
            .collect();
        let families = families_of(&names);
        if families.iter().any(|f| f.is_empty()) {
            return illegal("column family without a name");
        }
        let refs: Vec<&str> = families.iter().map(String::as_str).collect();
        if let Err(e) = self.store.ensure_table(&table, &refs) {
            return io_error(e);
        }
        if let Some(path) = &self.tables_file {
            use std::io::Write;
            let line = format!("{table}\t{}\n", families.join(","));
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_all()));
            if let Err(e) = written {
                return io_error(e);
            }
        }
        tables.insert(table, families);
        Ok(())
    }

    fn handle_mutate_rows(
        &self,
        table_name: Text,
        row_batches: Vec<BatchMutation>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        let table = text(&table_name);
        let families = match self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&table)
        {
            Some(f) => f.clone(),
            None => return io_error(format!("table {table} was not found")),
        };
        let mut rows = Vec::with_capacity(row_batches.len());
        for b in row_batches {
            let mut cells = Vec::new();
            for m in b.mutations.unwrap_or_default() {
                let col = m.column.unwrap_or_default();
                let Some(split) = col.iter().position(|c| *c == b':') else {
                    return illegal(format!("column {} lacks a family", text(&col)));
                };
                let family = text(&col[..split]);
                if !families.contains(&family) {
                    return io_error(format!(
                        "column family {family} does not exist in table {table}"
                    ));
                }
                cells.push(Cell {
                    family: family.into(),
                    qualifier: col[split + 1..].to_vec().into(),
                    value: m.value.unwrap_or_default(),
                });
            }
            rows.push(RowMutation {
                row: b.row.unwrap_or_default(),
                cells,
            });
        }
        self.store.put(&table, &rows).or_else(io_error)
    }

    fn handle_scanner_open_with_stop(
        &self,
        table_name: Text,
        start_row: Text,
        stop_row: Text,
        columns: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        let table = text(&table_name);
        let families = match self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&table)
        {
            Some(f) => {
                if columns.is_empty() {
                    f.clone()
                } else {
                    families_of(&columns)
                }
            }
            None => return io_error(format!("table {table} was not found")),
        };
        let refs: Vec<&str> = families.iter().map(String::as_str).collect();
        let rows = self
            .store
            .scan(&table, &start_row, &stop_row, &refs, usize::MAX)
            .or_else(io_error)?;
        let id = self.next_scanner.fetch_add(1, Ordering::Relaxed);
        self.scanners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, rows.into());
        Ok(id)
    }

    fn handle_scanner_get_list(
        &self,
        id: ScannerID,
        nb_rows: i32,
    ) -> thrift::Result<Vec<TRowResult>> {
        let mut scanners = self.scanners.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rows) = scanners.get_mut(&id) else {
            return illegal(format!("scanner {id} is not open"));
        };
        let n = nb_rows.max(0) as usize;
        Ok(rows
            .drain(..n.min(rows.len()))
            .map(|r| {
                let columns: BTreeMap<Text, TCell> = r
                    .cells
                    .into_iter()
                    .map(|c| {
                        let mut col = c.family.into_owned().into_bytes();
                        col.push(b':');
                        col.extend_from_slice(&c.qualifier);
                        (
                            col,
                            TCell {
                                value: Some(c.value),
                                timestamp: Some(0),
                            },
                        )
                    })
                    .collect();
                TRowResult {
                    row: Some(r.key),
                    columns: Some(columns),
                    sorted_columns: None,
                }
            })
            .collect())
    }

    fn handle_scanner_close(&self, id: ScannerID) -> thrift::Result<()> {
        match self
            .scanners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            Some(_) => Ok(()),
            None => illegal(format!("scanner {id} is not open")),
        }
    }

    fn handle_enable_table(&self, _table_name: Bytes) -> thrift::Result<()> {
        unsupported("enable_table")
    }

    fn handle_disable_table(&self, _table_name: Bytes) -> thrift::Result<()> {
        unsupported("disable_table")
    }

    fn handle_compact(&self, _table_name_or_region_name: Bytes) -> thrift::Result<()> {
        unsupported("compact")
    }

    fn handle_major_compact(&self, _table_name_or_region_name: Bytes) -> thrift::Result<()> {
        unsupported("major_compact")
    }

    fn handle_get_table_names_with_is_table_enabled(&self) -> thrift::Result<BTreeMap<Text, bool>> {
        unsupported("get_table_names_with_is_table_enabled")
    }

    fn handle_get_column_descriptors(
        &self,
        _table_name: Text,
    ) -> thrift::Result<BTreeMap<Text, ColumnDescriptor>> {
        unsupported("get_column_descriptors")
    }

    fn handle_get_table_regions(&self, _table_name: Text) -> thrift::Result<Vec<TRegionInfo>> {
        unsupported("get_table_regions")
    }

    fn handle_delete_table(&self, _table_name: Text) -> thrift::Result<()> {
        unsupported("delete_table")
    }

    fn handle_get(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TCell>> {
        unsupported("get")
    }

    fn handle_get_ver(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _num_versions: i32,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TCell>> {
        unsupported("get_ver")
    }

    fn handle_get_ver_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _timestamp: i64,
        _num_versions: i32,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TCell>> {
        unsupported("get_ver_ts")
    }

    fn handle_get_row(
        &self,
        _table_name: Text,
        _row: Text,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_row")
    }

    fn handle_get_row_with_columns(
        &self,
        _table_name: Text,
        _row: Text,
        _columns: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_row_with_columns")
    }

    fn handle_get_row_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_row_ts")
    }

    fn handle_get_row_with_columns_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _columns: Vec<Text>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_row_with_columns_ts")
    }

    fn handle_get_rows(
        &self,
        _table_name: Text,
        _rows: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_rows")
    }

    fn handle_get_rows_with_columns(
        &self,
        _table_name: Text,
        _rows: Vec<Text>,
        _columns: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_rows_with_columns")
    }

    fn handle_get_rows_ts(
        &self,
        _table_name: Text,
        _rows: Vec<Text>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_rows_ts")
    }

    fn handle_get_rows_with_columns_ts(
        &self,
        _table_name: Text,
        _rows: Vec<Text>,
        _columns: Vec<Text>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<Vec<TRowResult>> {
        unsupported("get_rows_with_columns_ts")
    }

    fn handle_mutate_row(
        &self,
        _table_name: Text,
        _row: Text,
        _mutations: Vec<Mutation>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("mutate_row")
    }

    fn handle_mutate_row_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _mutations: Vec<Mutation>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("mutate_row_ts")
    }

    fn handle_mutate_rows_ts(
        &self,
        _table_name: Text,
        _row_batches: Vec<BatchMutation>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("mutate_rows_ts")
    }

    fn handle_atomic_increment(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _value: i64,
    ) -> thrift::Result<i64> {
        unsupported("atomic_increment")
    }

    fn handle_delete_all(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("delete_all")
    }

    fn handle_delete_all_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("delete_all_ts")
    }

    fn handle_delete_all_row(
        &self,
        _table_name: Text,
        _row: Text,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("delete_all_row")
    }

    fn handle_increment(&self, _increment: TIncrement) -> thrift::Result<()> {
        unsupported("increment")
    }

    fn handle_increment_rows(&self, _increments: Vec<TIncrement>) -> thrift::Result<()> {
        unsupported("increment_rows")
    }

    fn handle_delete_all_row_ts(
        &self,
        _table_name: Text,
        _row: Text,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<()> {
        unsupported("delete_all_row_ts")
    }

    fn handle_scanner_open_with_scan(
        &self,
        _table_name: Text,
        _scan: TScan,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        unsupported("scanner_open_with_scan")
    }

    fn handle_scanner_open(
        &self,
        _table_name: Text,
        _start_row: Text,
        _columns: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        unsupported("scanner_open")
    }

    fn handle_scanner_open_with_prefix(
        &self,
        _table_name: Text,
        _start_and_prefix: Text,
        _columns: Vec<Text>,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        unsupported("scanner_open_with_prefix")
    }

    fn handle_scanner_open_ts(
        &self,
        _table_name: Text,
        _start_row: Text,
        _columns: Vec<Text>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        unsupported("scanner_open_ts")
    }

    fn handle_scanner_open_with_stop_ts(
        &self,
        _table_name: Text,
        _start_row: Text,
        _stop_row: Text,
        _columns: Vec<Text>,
        _timestamp: i64,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<ScannerID> {
        unsupported("scanner_open_with_stop_ts")
    }

    fn handle_scanner_get(&self, _id: ScannerID) -> thrift::Result<Vec<TRowResult>> {
        unsupported("scanner_get")
    }

    fn handle_get_region_info(&self, _row: Text) -> thrift::Result<TRegionInfo> {
        unsupported("get_region_info")
    }

    fn handle_append(&self, _append: TAppend) -> thrift::Result<Vec<TCell>> {
        unsupported("append")
    }

    fn handle_check_and_put(
        &self,
        _table_name: Text,
        _row: Text,
        _column: Text,
        _value: Text,
        _mput: Mutation,
        _attributes: BTreeMap<Text, Text>,
    ) -> thrift::Result<bool> {
        unsupported("check_and_put")
    }

    fn handle_get_thrift_server_type(&self) -> thrift::Result<TThriftServerType> {
        unsupported("get_thrift_server_type")
    }

    fn handle_get_cluster_id(&self) -> thrift::Result<String> {
        unsupported("get_cluster_id")
    }

    fn handle_grant(&self, _info: TAccessControlEntity) -> thrift::Result<bool> {
        unsupported("grant")
    }

    fn handle_revoke(&self, _info: TAccessControlEntity) -> thrift::Result<bool> {
        unsupported("revoke")
    }
}

/// A running test server.
pub struct TestServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

fn serve(
    processor: Arc<HbaseSyncProcessor<Handler>>,
    stream: TcpStream,
    transport: ThriftTransport,
    protocol: ThriftProtocol,
) {
    let _ = stream.set_nodelay(true);
    let Ok((mut input, mut output)) = protocols(stream, transport, protocol) else {
        return;
    };
    // Until the client hangs up (an error reading the next call).
    while processor.process(&mut input, &mut output).is_ok() {}
}

/// Starts a server on `addr` (`127.0.0.1:0` for a free port) over the
/// store in `dir`, speaking `protocol` over `transport` (as `hbase thrift
/// start` does with `-f`, framed, and `-c`, compact), and keeping its
/// tables there too: a server started again on the same directory (after a
/// kill) serves the same tables and rows, as an HBase that restarts does.
/// It serves until the process ends.
pub fn start_on(
    addr: &str,
    dir: &std::path::Path,
    transport: ThriftTransport,
    protocol: ThriftProtocol,
) -> crate::Result<TestServer> {
    let tables_file = dir.join("tables.tsv");
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&tables_file) {
        for line in text.lines() {
            if let Some((table, families)) = line.split_once('\t') {
                tables.insert(
                    table.to_string(),
                    families.split(',').map(str::to_string).collect(),
                );
            }
        }
    }
    let store = EmbeddedWideStore::open(&dir.join("store"))?;
    for (table, families) in &tables {
        let refs: Vec<&str> = families.iter().map(String::as_str).collect();
        store.ensure_table(table, &refs)?;
    }
    let handler = Handler {
        store,
        tables: Mutex::new(tables),
        tables_file: Some(tables_file),
        scanners: Mutex::new(HashMap::new()),
        next_scanner: AtomicI32::new(1),
    };
    let processor = Arc::new(HbaseSyncProcessor::new(handler));
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let p = processor.clone();
            std::thread::spawn(move || serve(p, stream, transport, protocol));
        }
    });
    Ok(TestServer { addr })
}
