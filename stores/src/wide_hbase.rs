//! The wide-column store on HBase, through HBase's Thrift (v1) API with the
//! `hbase-thrift` client: binary protocol over buffered transport (the
//! Thrift server's default), TCP_NODELAY (small calls otherwise stall on
//! Nagle's algorithm), batched `mutateRows`, and scanners paged with
//! `scannerGetList`.
//!
//! The client is blocking; each call holds one connection from a small pool,
//! so worker threads can write in parallel. A connection that failed is
//! dropped and the next call reconnects.

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
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};

type Client = HbaseSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<TcpStream>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<TcpStream>>,
>;

/// Rows per `mutateRows` call and per scanner page.
const BATCH_ROWS: usize = 1_000;

/// The HBase (Thrift) wide-column store.
pub struct HbaseWideStore {
    addr: String,
    pool: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

fn thrift_error(e: thrift::Error) -> StoreError {
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
        message,
        retryable,
    }
}

fn connect(addr: &str) -> Result<Client> {
    let stream = TcpStream::connect(addr).map_err(|e| StoreError::Server {
        server: "HBase",
        message: format!("connecting to {addr}: {e}"),
        retryable: true,
    })?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let read = stream.try_clone()?;
    Ok(HbaseSyncClient::new(
        TBinaryInputProtocol::new(TBufferedReadTransport::new(read), true),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(stream), true),
    ))
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
        let first = connect(addr)?;
        let mut pool = vec![Mutex::new(Some(first))];
        pool.extend((1..connections.max(1)).map(|_| Mutex::new(None)));
        Ok(HbaseWideStore {
            addr: addr.to_string(),
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a pooled connection, reconnecting if needed.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> thrift::Result<T>) -> Result<T> {
        let slot = &self.pool[self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len()];
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(connect(&self.addr)?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(StoreError::corrupt("no HBase connection"));
        };
        let result = f(client);
        if let Err(thrift::Error::Transport(_) | thrift::Error::Protocol(_)) = &result {
            *guard = None;
        }
        result.map_err(thrift_error)
    }
}

impl WideColumnStore for HbaseWideStore {
    fn describe(&self) -> String {
        format!("HBase (Thrift) at {}", self.addr)
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
            |c| match c.create_table(table.as_bytes().to_vec(), descriptors) {
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
            self.with(|c| c.mutate_rows(table.as_bytes().to_vec(), batches, BTreeMap::new()))?;
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
                table.as_bytes().to_vec(),
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
