//! A stage's threads as one group: started together, failing together
//! (a flag set as soon as one errs or panics), joined together, and
//! finished by draining or stopping their [`Shutdown`] token.

use anyhow::Context;
use stage::Shutdown;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The threads of one stage, joined together. [`Threads::wait_timeout`]
/// returns as soon as the last of them ends (a condition variable, not a
/// poll of the handles).
pub struct Threads<E> {
    what: &'static str,
    handles: Vec<JoinHandle<Result<(), E>>>,
    running: Arc<(Mutex<usize>, Condvar)>,
    /// Set when a thread ended with an error or a panic.
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// Sets its flag when dropped armed: a thread disarms it when it ends
/// well, so an error or a panic sets it.
struct Failed {
    flag: Arc<std::sync::atomic::AtomicBool>,
    armed: bool,
}

impl Drop for Failed {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Counts its thread out when dropped, however the thread ends.
struct Running(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Running {
    fn drop(&mut self) {
        let (count, ended) = &*self.0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        ended.notify_all();
    }
}

impl<E: std::error::Error + Send + Sync + 'static> Threads<E> {
    /// No threads yet; `what` names them in errors ("an ingest thread").
    pub fn new(what: &'static str) -> Self {
        Threads {
            what,
            handles: Vec::new(),
            running: Arc::default(),
            failed: Arc::default(),
        }
    }

    /// A flag that turns true as soon as one of the threads ends with an
    /// error or a panic (before anyone joins it).
    pub fn failure_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.failed.clone()
    }

    /// Starts `f` on a thread called `name`.
    pub fn spawn(
        &mut self,
        name: String,
        f: impl FnOnce() -> Result<(), E> + Send + 'static,
    ) -> anyhow::Result<()> {
        *self.running.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let running = Running(self.running.clone());
        let failed = Failed {
            flag: self.failed.clone(),
            armed: true,
        };
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            let _running = running;
            // The whole guard moves in (a closure would capture only the
            // field it assigns, and the guard would drop here, armed).
            let mut failed = failed;
            let result = f();
            // A panic never gets here: `failed` drops armed.
            failed.armed = result.is_err();
            result
        });
        // A thread that did not start counted itself out as its closure
        // (and `_running` in it) was dropped.
        self.handles
            .push(handle.with_context(|| format!("starting {}", self.what))?);
        Ok(())
    }

    /// Waits until every thread has ended or `timeout` has passed; true
    /// if they all ended.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (count, ended) = &*self.running;
        let n = count.lock().unwrap_or_else(|e| e.into_inner());
        let (n, _) = ended
            .wait_timeout_while(n, timeout, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *n == 0
    }

    /// Joins every thread; the first error, if any.
    pub fn join(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for h in self.handles {
            let r = match h.join() {
                Ok(r) => r.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("{} panicked", self.what)),
            };
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// Lets a stage finish what the log holds (`drain`) or stop now, waits for
/// its threads, calling `tick` every 200 ms meanwhile (a progress line),
/// then stops its token so its helper threads (the lag gauge) end too.
pub fn finish_stage<E: std::error::Error + Send + Sync + 'static>(
    threads: &Threads<E>,
    token: &Shutdown,
    drain: bool,
    mut tick: impl FnMut(),
) {
    if drain {
        token.drain();
    } else {
        token.stop();
    }
    while !threads.wait_timeout(Duration::from_millis(200)) {
        tick();
    }
    token.stop();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[derive(Debug)]
    struct Broken;

    impl std::fmt::Display for Broken {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("broken")
        }
    }

    impl std::error::Error for Broken {}

    /// The failure flag turns true when a thread errs or panics, before
    /// anyone joins it, and stays false while every thread ends well.
    #[test]
    fn the_failure_flag_is_set_by_an_error_or_a_panic_only() {
        let mut good: Threads<Broken> = Threads::new("a test thread");
        let flag = good.failure_flag();
        for i in 0..3 {
            good.spawn(format!("ok-{i}"), || Ok(())).expect("spawn");
        }
        assert!(good.wait_timeout(Duration::from_secs(10)));
        assert!(!flag.load(Ordering::SeqCst));
        assert!(good.join().is_ok());

        for how in ["error", "panic"] {
            let mut t: Threads<Broken> = Threads::new("a test thread");
            let flag = t.failure_flag();
            t.spawn("ok".into(), || Ok(())).expect("spawn");
            t.spawn(how.into(), move || {
                if how == "panic" {
                    panic!("on purpose");
                }
                Err(Broken)
            })
            .expect("spawn");
            assert!(t.wait_timeout(Duration::from_secs(10)));
            assert!(flag.load(Ordering::SeqCst), "{how}");
            assert!(t.join().is_err(), "{how}");
        }
    }
}
