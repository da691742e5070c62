//! The stores' test HBase Thrift server as a process, for the end-to-end
//! test of the distributed services (`tests/e2e.py`): HBase's Thrift (v1)
//! interface over a fresh embedded wide-column store, on 127.0.0.1 (a free
//! port). It prints `ECOMFLOW_HBASE_THRIFT=127.0.0.1:PORT` and serves until
//! killed. It is not HBase; it lets several ecomflow processes share one
//! wide-column store over the same protocol they would use with HBase.
//!
//! `hbase_thrift_test_server [--port PORT] [--dir DIR] [--framed] [--compact]`:
//! with `--dir` the rows and tables are kept in DIR, so that a server killed
//! and started again on the same port and directory serves them again.
// A test server for the contract tests: a failed unwrap stops it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/support/hbase_server.rs"]
mod hbase_server;

fn main() {
    use stores::wide_hbase::{ThriftProtocol, ThriftTransport};
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let transport = if args.iter().any(|a| a == "--framed") {
        ThriftTransport::Framed
    } else {
        ThriftTransport::Buffered
    };
    let protocol = if args.iter().any(|a| a == "--compact") {
        ThriftProtocol::Compact
    } else {
        ThriftProtocol::Binary
    };
    let server = match value("--dir") {
        Some(dir) => {
            let addr = format!(
                "127.0.0.1:{}",
                value("--port").unwrap_or_else(|| "0".into())
            );
            hbase_server::start_on(&addr, std::path::Path::new(&dir), transport, protocol)
        }
        None => hbase_server::start_with(transport, protocol),
    };
    println!("ECOMFLOW_HBASE_THRIFT={}", server.addr);
    loop {
        std::thread::park();
    }
}
