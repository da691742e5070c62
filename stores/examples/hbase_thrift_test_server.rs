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
    // Without --dir, a temporary one: a SIGKILL leaves it behind, for the
    // OS's cleaning of temporary files.
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let dir = value("--dir").map_or_else(|| temporary.path().to_path_buf(), Into::into);
    let addr = format!(
        "127.0.0.1:{}",
        value("--port").unwrap_or_else(|| "0".into())
    );
    let server = stores::hbase_test_server::start_on(&addr, &dir, transport, protocol)
        .expect("the HBase Thrift test server");
    println!("ECOMFLOW_HBASE_THRIFT={}", server.addr);
    loop {
        std::thread::park();
    }
}
