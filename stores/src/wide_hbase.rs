//! The wide-column store on HBase, through HBase's Thrift (v1) API with the
//! `hbase-thrift` client: the binary or compact protocol over a buffered or
//! framed transport, as the Thrift server was started (`hbase thrift start`
//! is binary and buffered; `-f` framed, `-c` compact), TCP_NODELAY (small
//! calls otherwise stall on Nagle's algorithm), batched `mutateRows`, and
//! scanners paged with `scannerGetList`. Tables can live in a namespace
//! (`ns:user_sessions`).
//!
//! The client is blocking; each call holds one connection from a pool
//! ([`HbaseSettings::pool_size`]), so worker threads can write in parallel.
//! A connection that failed is dropped and the next call reconnects.

use crate::wide::{Cell, Row, RowMutation, WideColumnStore};
use crate::{Result, StoreError};
use hbase_thrift::hbase::{
    BatchMutation, ColumnDescriptor, HbaseSyncClient, Mutation, THbaseSyncClient, TRowResult,
};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TInputProtocol, TOutputProtocol,
};
use thrift::transport::{
    TBufferedReadTransport, TBufferedWriteTransport, TFramedReadTransport, TFramedWriteTransport,
};

/// A Thrift input protocol over a connection, whichever kind.
pub type InputProtocol = Box<dyn TInputProtocol + Send>;
/// A Thrift output protocol over a connection, whichever kind.
pub type OutputProtocol = Box<dyn TOutputProtocol + Send>;

type Client = HbaseSyncClient<InputProtocol, OutputProtocol>;

/// The Thrift transport the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThriftTransport {
    /// Buffered (HBase's default).
    #[default]
    Buffered,
    /// Framed (`hbase thrift start -f`, or with the nonblocking servers).
    Framed,
}

/// The Thrift protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThriftProtocol {
    /// Binary (HBase's default).
    #[default]
    Binary,
    /// Compact (`hbase thrift start -c`).
    Compact,
}

/// Wraps a connected stream in the transport and protocol named, for a
/// client or a server (the test server uses it too).
pub fn protocols(
    stream: TcpStream,
    transport: ThriftTransport,
    protocol: ThriftProtocol,
) -> std::io::Result<(InputProtocol, OutputProtocol)> {
    let read = stream.try_clone()?;
    let (r, w): (
        Box<dyn std::io::Read + Send>,
        Box<dyn std::io::Write + Send>,
    ) = match transport {
        ThriftTransport::Buffered => (
            Box::new(TBufferedReadTransport::new(read)),
            Box::new(TBufferedWriteTransport::new(stream)),
        ),
        ThriftTransport::Framed => (
            Box::new(TFramedReadTransport::new(read)),
            Box::new(TFramedWriteTransport::new(stream)),
        ),
    };
    Ok(match protocol {
        ThriftProtocol::Binary => (
            Box::new(TBinaryInputProtocol::new(r, true)),
            Box::new(TBinaryOutputProtocol::new(w, true)),
        ),
        ThriftProtocol::Compact => (
            Box::new(TCompactInputProtocol::new(r)),
            Box::new(TCompactOutputProtocol::new(w)),
        ),
    })
}

/// Where and how to reach HBase's Thrift server.
#[derive(Debug, Clone)]
pub struct HbaseSettings {
    /// `host:port` of the Thrift server.
    pub addr: String,
    /// Pooled connections (one call at a time each).
    pub pool_size: usize,
    /// Transport: buffered (default) or framed.
    pub transport: ThriftTransport,
    /// Protocol: binary (default) or compact.
    pub protocol: ThriftProtocol,
    /// Namespace of ecomflow's tables (None: HBase's `default`).
    pub namespace: Option<String>,
}

impl HbaseSettings {
    /// The server at `addr`, buffered binary, 4 connections, no namespace.
    pub fn new(addr: &str) -> Self {
        HbaseSettings {
            addr: addr.to_string(),
            pool_size: crate::DEFAULT_HBASE_POOL_SIZE,
            transport: ThriftTransport::default(),
            protocol: ThriftProtocol::default(),
            namespace: None,
        }
    }
}

/// Rows per `mutateRows` call and per scanner page.
const BATCH_ROWS: usize = 1_000;

/// The HBase (Thrift) wide-column store.
pub struct HbaseWideStore {
    settings: HbaseSettings,
    pool: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

fn thrift_error(e: thrift::Error, addr: &str) -> StoreError {
    let retryable = matches!(e, thrift::Error::Transport(_));
    let message = match &e {
        thrift::Error::User(inner) => {
            if let Some(io) = inner.downcast_ref::<hbase_thrift::hbase::IOError>() {
                format!("IOError: {}", io.message.clone().unwrap_or_default())
            } else if let Some(arg) = inner.downcast_ref::<hbase_thrift::hbase::IllegalArgument>() {
                format!(
                    "IllegalArgument: {}",
                    arg.message.clone().unwrap_or_default()
                )
            } else {
                inner.to_string()
            }
        }
        other => other.to_string(),
    };
    StoreError::Server {
        server: "HBase",
        message: format!("Thrift server at {addr}: {message}"),
        retryable,
    }
}

fn connect(settings: &HbaseSettings) -> Result<Client> {
    let addr = &settings.addr;
    let stream = TcpStream::connect(addr).map_err(|e| StoreError::Server {
        server: "HBase",
        message: format!("connecting to the Thrift server at {addr}: {e}"),
        retryable: true,
    })?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (input, output) = protocols(stream, settings.transport, settings.protocol)?;
    Ok(HbaseSyncClient::new(input, output))
}

fn column(family: &str, qualifier: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(family.len() + 1 + qualifier.len());
    c.extend_from_slice(family.as_bytes());
    c.push(b':');
    c.extend_from_slice(qualifier);
    c
}

fn to_row(r: TRowResult) -> Row {
    let mut cells: Vec<Cell> = r
        .columns
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(col, cell)| {
            let split = col.iter().position(|b| *b == b':')?;
            Some(Cell {
                family: String::from_utf8_lossy(&col[..split]).into_owned().into(),
                qualifier: col[split + 1..].to_vec().into(),
                value: cell.value.unwrap_or_default(),
            })
        })
        .collect();
    cells.sort_by(|a, b| (&a.family, &a.qualifier).cmp(&(&b.family, &b.qualifier)));
    Row {
        key: r.row.unwrap_or_default(),
        cells,
    }
}

impl HbaseWideStore {
    /// A store talking to the Thrift server at `addr` (`host:port`), with
    /// `connections` pooled connections. Connects once to check the address.
    pub fn connect(addr: &str, connections: usize) -> Result<Self> {
        let mut settings = HbaseSettings::new(addr);
        settings.pool_size = connections;
        Self::connect_with(settings)
    }

    /// A store talking to the Thrift server `settings` describe. Connects
    /// once and asks for the table list, so that a wrong transport or
    /// protocol is an error here, naming the server.
    pub fn connect_with(settings: HbaseSettings) -> Result<Self> {
        if let Some(ns) = &settings.namespace {
            if ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(StoreError::corrupt(format!(
                    "HBase namespace {ns:?}: use ASCII letters, digits and '_'"
                )));
            }
        }
        let mut first = connect(&settings)?;
        first.get_table_names().map_err(|e| StoreError::Server {
            server: "HBase",
            message: format!(
                "the Thrift server at {} did not answer with the {:?} protocol over the {:?} transport \
                 (check --hbase-protocol and --hbase-transport against how it was started): {e}",
                settings.addr, settings.protocol, settings.transport
            ),
            retryable: false,
        })?;
        let mut pool = vec![Mutex::new(Some(first))];
        pool.extend((1..settings.pool_size.max(1)).map(|_| Mutex::new(None)));
        Ok(HbaseWideStore {
            settings,
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// HBase's name of ecomflow's table `table` (with the namespace).
    fn table_name(&self, table: &str) -> Vec<u8> {
        match &self.settings.namespace {
            Some(ns) => format!("{ns}:{table}").into_bytes(),
            None => table.as_bytes().to_vec(),
        }
    }

    /// Runs `f` on a pooled connection, reconnecting if needed.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> thrift::Result<T>) -> Result<T> {
        let slot = &self.pool[self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len()];
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(connect(&self.settings)?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(StoreError::corrupt("no HBase connection"));
        };
        let result = f(client);
        if let Err(thrift::Error::Transport(_) | thrift::Error::Protocol(_)) = &result {
            *guard = None;
        }
        result.map_err(|e| thrift_error(e, &self.settings.addr))
    }
}

impl WideColumnStore for HbaseWideStore {
    fn describe(&self) -> String {
        match &self.settings.namespace {
            Some(ns) => format!("HBase (Thrift) at {}, namespace {ns}", self.settings.addr),
            None => format!("HBase (Thrift) at {}", self.settings.addr),
        }
    }

    fn ensure_table(&self, table: &str, families: &[&str]) -> Result<()> {
        // Create and take AlreadyExists as done, rather than list and then
        // create: services starting together (two ingest workers, the batch)
        // would race between the two calls.
        let descriptors: Vec<ColumnDescriptor> = families
            .iter()
            .map(|f| ColumnDescriptor {
                name: Some(column(f, b"")),
                max_versions: Some(1),
                ..ColumnDescriptor::default()
            })
            .collect();
        self.with(
            |c| match c.create_table(self.table_name(table), descriptors) {
                Ok(()) => {
                    tracing::info!(table, ?families, "Created HBase table.");
                    Ok(())
                }
                Err(thrift::Error::User(e))
                    if e.downcast_ref::<hbase_thrift::hbase::AlreadyExists>()
                        .is_some() =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            },
        )
    }

    fn put(&self, table: &str, mutations: &[RowMutation]) -> Result<()> {
        for chunk in mutations.chunks(BATCH_ROWS) {
            let batches: Vec<BatchMutation> = chunk
                .iter()
                .map(|m| BatchMutation {
                    row: Some(m.row.clone()),
                    mutations: Some(
                        m.cells
                            .iter()
                            .map(|c| Mutation {
                                is_delete: Some(false),
                                column: Some(column(&c.family, &c.qualifier)),
                                value: Some(c.value.clone()),
                                write_to_w_a_l: Some(true),
                            })
                            .collect(),
                    ),
                })
                .collect();
            self.with(|c| c.mutate_rows(self.table_name(table), batches, BTreeMap::new()))?;
        }
        Ok(())
    }

    fn scan(
        &self,
        table: &str,
        start: &[u8],
        stop: &[u8],
        families: &[&str],
        limit: usize,
    ) -> Result<Vec<Row>> {
        let columns: Vec<Vec<u8>> = families.iter().map(|f| column(f, b"")).collect();
        // One connection for the scanner's whole life: scanner ids belong
        // to the connection that opened them.
        self.with(|client| {
            let id = client.scanner_open_with_stop(
                self.table_name(table),
                start.to_vec(),
                stop.to_vec(),
                columns,
                BTreeMap::new(),
            )?;
            let mut rows = Vec::new();
            let outcome = loop {
                if rows.len() >= limit {
                    break Ok(());
                }
                let page = (limit - rows.len()).min(BATCH_ROWS) as i32;
                match client.scanner_get_list(id, page) {
                    Ok(list) if list.is_empty() => break Ok(()),
                    Ok(list) => rows.extend(list.into_iter().map(to_row)),
                    Err(e) => break Err(e),
                }
            };
            let closed = client.scanner_close(id);
            outcome.and(closed).map(|()| rows)
        })
    }
}
