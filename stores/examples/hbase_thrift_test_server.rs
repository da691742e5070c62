//! The stores' test HBase Thrift server as a process, for the end-to-end
//! test of the distributed services (`tests/e2e.py`): HBase's Thrift (v1)
//! interface over a fresh embedded wide-column store, on 127.0.0.1 (a free
//! port). It prints `ECOMFLOW_HBASE_THRIFT=127.0.0.1:PORT` and serves until
//! killed. It is not HBase; it lets several ecomflow processes share one
//! wide-column store over the same protocol they would use with HBase.
// A test server for the contract tests: a failed unwrap stops it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/support/hbase_server.rs"]
mod hbase_server;

fn main() {
    let server = hbase_server::start();
    println!("ECOMFLOW_HBASE_THRIFT={}", server.addr);
    loop {
        std::thread::park();
    }
}
