//! Deadlines for the tests that run the binary: a run that hangs is killed
//! and fails the test with what it printed, instead of hanging the suite.

#![allow(dead_code, clippy::expect_used)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most one run of the binary may take in these tests (a small shop
/// replays in seconds; a slow CI machine under load in well under this).
pub const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs `cmd` to its end with its output captured, as `Command::output`
/// does, but kills it and fails after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ecomflow");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = r.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{cmd:?} did not finish within {} s: killed. Its stderr:\n{}",
                limit.as_secs(),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Kills a spawned child that is still running after `limit` (its output
/// pipes then close, so a test reading them sees the end and fails on its
/// own assertions); [`Watchdog::assert_not_fired`] says whether it had to.
pub struct Watchdog {
    done: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    limit: Duration,
}

impl Watchdog {
    /// Watches `child` (by pid, with `kill -9`).
    pub fn start(child: &Child, limit: Duration) -> Watchdog {
        let (done, fired) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let pid = child.id().to_string();
        let (d, f) = (done.clone(), fired.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !d.load(Ordering::SeqCst) {
                if started.elapsed() > limit {
                    f.store(true, Ordering::SeqCst);
                    let _ = Command::new("kill").args(["-9", &pid]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Watchdog { done, fired, limit }
    }

    /// Fails the test if the child had to be killed.
    pub fn assert_not_fired(&self) {
        assert!(
            !self.fired.load(Ordering::SeqCst),
            "the ecomflow run did not finish within {} s: killed",
            self.limit.as_secs()
        );
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}
