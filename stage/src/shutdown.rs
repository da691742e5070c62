//! One way to stop every stage: a tree of [`Shutdown`] tokens.
//!
//! The process holds the root (Ctrl-C stops it); each stage gets a child,
//! which the process can stop or drain on its own. A token is
//!
//! - **running**,
//! - **draining**: a consumer finishes what is in the log, then stops
//!   (the replay's ingest and aggregator once everything is published), or
//! - **stopped**: finish the batch in hand and stop (Ctrl-C).
//!
//! A token is at least as far along as its parent: stopping the root stops
//! every stage. Waits ([`Shutdown::wait_timeout`]) wake at once when any
//! token of the tree changes, so a thread that rests between rounds of
//! work never sleeps through a stop, as mini-redis's `shutdown.rs` does
//! with a broadcast channel.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const STOPPED: u8 = 2;

/// A stop signal shared by the threads of one stage (cheap to clone;
/// clones are the same token).
#[derive(Clone, Default)]
pub struct Shutdown {
    node: Arc<Node>,
    tree: Arc<Tree>,
}

#[derive(Default)]
struct Node {
    state: AtomicU8,
    parent: Option<Arc<Node>>,
}

/// What every token of a tree waits on: a counter of changes.
#[derive(Default)]
struct Tree {
    changes: Mutex<u64>,
    changed: Condvar,
}

impl Node {
    fn state(&self) -> u8 {
        let own = self.state.load(Ordering::Acquire);
        match &self.parent {
            Some(p) if own < STOPPED => own.max(p.state()),
            _ => own,
        }
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.node.state() {
            RUNNING => "running",
            DRAINING => "draining",
            _ => "stopped",
        };
        f.debug_struct("Shutdown").field("state", &state).finish()
    }
}

impl Shutdown {
    /// A new root token, running.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A token that stops (or drains) with this one, and can be stopped
    /// or drained alone.
    pub fn child(&self) -> Shutdown {
        Shutdown {
            node: Arc::new(Node {
                state: AtomicU8::new(RUNNING),
                parent: Some(self.node.clone()),
            }),
            tree: self.tree.clone(),
        }
    }

    /// Stops this token and its children: finish the work in hand, then stop.
    pub fn stop(&self) {
        self.raise(STOPPED);
    }

    /// Asks consumers holding this token (or a child) to finish what the
    /// log holds, then stop. No effect on a stopped token.
    pub fn drain(&self) {
        self.raise(DRAINING);
    }

    fn raise(&self, to: u8) {
        self.node.state.fetch_max(to, Ordering::AcqRel);
        let mut changes = self.tree.changes.lock().unwrap_or_else(|e| e.into_inner());
        *changes = changes.wrapping_add(1);
        self.tree.changed.notify_all();
    }

    /// Whether this token (or an ancestor) is stopped.
    pub fn is_stopped(&self) -> bool {
        self.node.state() == STOPPED
    }

    /// Whether this token is draining or stopped.
    pub fn is_draining(&self) -> bool {
        self.node.state() >= DRAINING
    }

    /// Waits until this token is stopped or `timeout` has passed; true if
    /// stopped. For threads that rest between rounds of work.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut changes = self.tree.changes.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.is_stopped() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            changes = match self.tree.changed.wait_timeout(changes, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits until this token is stopped.
    pub fn wait(&self) {
        while !self.wait_timeout(Duration::from_secs(3_600)) {}
    }

    /// A deadline: stops this token once `limit` has passed, unless it was
    /// stopped before; the flag says whether the deadline did it (a test
    /// that drains a worker fails on it rather than hang).
    pub fn stop_after(&self, limit: Duration) -> Arc<std::sync::atomic::AtomicBool> {
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (token, flag) = (self.clone(), fired.clone());
        std::thread::spawn(move || {
            if !token.wait_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                token.stop();
            }
        });
        fired
    }
}

/// Whether a consumer that just found nothing new in the log is done: it
/// was told to drain, or `until_idle` is set and nothing arrived for that
/// long (`idle_since`), and `lag()` (its group's unconsumed records) is 0.
/// The one definition of `--until-idle` and of the replay's catch-up.
pub fn consumer_done<E>(
    token: &Shutdown,
    until_idle: Option<Duration>,
    idle_since: Instant,
    lag: impl FnOnce() -> Result<u64, E>,
) -> Result<bool, E> {
    let wants_out = token.is_draining() || until_idle.is_some_and(|d| idle_since.elapsed() >= d);
    Ok(wants_out && lag()? == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_after_stops_a_token_left_running_and_says_so() {
        let late = Shutdown::new();
        let fired = late.stop_after(Duration::from_millis(50));
        assert!(late.wait_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(fired.load(Ordering::SeqCst));

        let early = Shutdown::new();
        let fired = early.stop_after(Duration::from_secs(10));
        early.stop();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!fired.load(Ordering::SeqCst));
    }

    #[test]
    fn stopping_a_parent_stops_its_children_but_not_the_reverse() {
        let root = Shutdown::new();
        let (a, b) = (root.child(), root.child());
        let grandchild = a.child();
        a.stop();
        assert!(a.is_stopped() && grandchild.is_stopped());
        assert!(!root.is_stopped() && !b.is_stopped());
        root.stop();
        assert!(b.is_stopped() && root.is_draining());
    }

    #[test]
    fn draining_is_inherited_and_a_stop_is_not_undone_by_a_drain() {
        let root = Shutdown::new();
        let child = root.child();
        assert!(!child.is_draining());
        root.drain();
        assert!(child.is_draining() && !child.is_stopped());
        child.stop();
        child.drain();
        assert!(child.is_stopped());
        assert!(!root.is_stopped());
    }

    #[test]
    fn a_wait_wakes_when_an_ancestor_stops_not_at_its_timeout() {
        let root = Shutdown::new();
        let child = root.child().child();
        let started = Instant::now();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| child.wait_timeout(Duration::from_secs(30)));
            std::thread::sleep(Duration::from_millis(50));
            // A drain is not a stop: the waiter keeps waiting.
            root.drain();
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished());
            root.stop();
            assert!(waiter.join().expect("join"));
        });
        assert!(started.elapsed() < Duration::from_secs(10));
        // Not stopped: the timeout.
        let other = Shutdown::new();
        assert!(!other.wait_timeout(Duration::from_millis(20)));
    }

    #[test]
    fn a_consumer_is_done_only_when_asked_and_caught_up() {
        let token = Shutdown::new();
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(60))
            .expect("a minute after boot");
        let lag = |n: u64| move || Ok::<u64, ()>(n);
        // Neither draining nor idle long enough.
        assert_eq!(consumer_done(&token, None, long_ago, lag(0)), Ok(false));
        assert_eq!(
            consumer_done(&token, Some(Duration::from_secs(120)), long_ago, lag(0)),
            Ok(false)
        );
        // Idle long enough, but records left.
        let idle = Some(Duration::from_secs(30));
        assert_eq!(consumer_done(&token, idle, long_ago, lag(3)), Ok(false));
        assert_eq!(consumer_done(&token, idle, long_ago, lag(0)), Ok(true));
        // Draining: done as soon as nothing is left.
        token.drain();
        assert_eq!(
            consumer_done(&token, None, Instant::now(), lag(1)),
            Ok(false)
        );
        assert_eq!(
            consumer_done(&token, None, Instant::now(), lag(0)),
            Ok(true)
        );
        assert_eq!(
            consumer_done(&token, None, Instant::now(), || Err::<u64, _>("down")),
            Err("down")
        );
    }
}
