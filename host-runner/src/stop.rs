//! Stopping a run cleanly: a flag that SIGINT and SIGTERM set.
//!
//! The flag only asks; the HTTP layer ([`crate::http`]) acts on it: it sends
//! no further request, and once the connector has committed the batch it was
//! working on it hands out no further response bytes, so the connector's run
//! ends with everything up to its last commit durable. A second signal ends
//! the process at once (exit code [`SECOND_SIGNAL_EXIT`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The exit code when a second SIGINT or SIGTERM ends the process at once.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

/// How often a sleep looks at the flag.
const POLL: Duration = Duration::from_millis(50);

/// Set once a stop was asked for; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag nobody has set.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// Asks everything that watches this flag to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Makes SIGINT and SIGTERM set this flag; a second one (while the flag
    /// is set) ends the process at once with [`SECOND_SIGNAL_EXIT`].
    pub fn set_on_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                SECOND_SIGNAL_EXIT,
                self.0.clone(),
            )?;
            signal_hook::flag::register(signal, self.0.clone())?;
        }
        Ok(())
    }

    /// Sleeps for `duration`, or less when a stop is asked for meanwhile;
    /// returns whether it was.
    pub fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        loop {
            if self.is_requested() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_stop_is_seen_by_every_clone_and_ends_a_sleep() {
        let flag = StopFlag::new();
        let other = flag.clone();
        assert!(!other.is_requested());
        assert!(!flag.sleep(Duration::ZERO));
        flag.request();
        assert!(other.is_requested());
        // Returns at once, whatever the duration.
        assert!(other.sleep(Duration::from_secs(3600)));
    }

    #[test]
    fn a_sleep_is_woken_by_a_stop_from_another_thread() {
        let flag = StopFlag::new();
        let setter = flag.clone();
        let t = std::thread::spawn(move || setter.request());
        assert!(flag.sleep(Duration::from_secs(3600)));
        t.join().unwrap();
    }
}
