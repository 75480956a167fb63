//! How fast and how many: the one place that paces an account's requests.
//!
//! * A token bucket ([`governor`]'s GCRA) holds every attempt of a run,
//!   retries included, to `limits.requests_per_second`, with a burst of one
//!   second's worth.
//! * A counting semaphore holds requests in flight to
//!   `limits.max_concurrent_requests`. A request is in flight from the moment
//!   it is sent until its answer has been read to the end (or dropped); a
//!   streamed body keeps its [`Permit`] until then.
//!
//! Time comes from a [`Timekeeper`], so tests run on a [`ManualTime`] that
//! only moves when something sleeps.

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The clocks and the sleep the HTTP layer uses.
pub trait Timekeeper: Send + Sync + 'static {
    /// Monotonic time since some fixed start.
    fn now(&self) -> Duration;
    /// Wall-clock time, for `Retry-After` dates.
    fn wall(&self) -> SystemTime;
    fn sleep(&self, duration: Duration);
}

/// The real clocks and `thread::sleep`.
#[derive(Debug)]
pub struct RealTime {
    start: Instant,
}

impl RealTime {
    pub fn new() -> RealTime {
        RealTime {
            start: Instant::now(),
        }
    }
}

impl Default for RealTime {
    fn default() -> Self {
        RealTime::new()
    }
}

impl Timekeeper for RealTime {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock for tests: time moves only when something sleeps on it (or
/// [`ManualTime::advance`] is called), and every sleep is recorded.
#[derive(Debug)]
pub struct ManualTime {
    state: Mutex<(Duration, Vec<Duration>)>,
    wall_start: SystemTime,
}

impl ManualTime {
    /// Starts at monotonic zero and at `wall_start` on the wall clock.
    pub fn new(wall_start: SystemTime) -> ManualTime {
        ManualTime {
            state: Mutex::new((Duration::ZERO, Vec::new())),
            wall_start,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0 += by;
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

impl Timekeeper for ManualTime {
    fn now(&self) -> Duration {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn wall(&self) -> SystemTime {
        self.wall_start + self.now()
    }

    fn sleep(&self, duration: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += duration;
        state.1.push(duration);
    }
}

/// A [`Timekeeper`] as `governor` wants its clock.
#[derive(Clone)]
struct PaceClock(Arc<dyn Timekeeper>);

impl Clock for PaceClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.now()
    }
}

/// The in-flight slots.
#[derive(Debug)]
struct Slots {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
    peak: AtomicUsize,
}

impl Slots {
    fn take(self: &Arc<Self>, used: &mut usize) -> Permit {
        *used += 1;
        self.peak.fetch_max(*used, Ordering::SeqCst);
        Permit {
            slots: Arc::clone(self),
        }
    }
}

/// One request in flight; the slot frees when this drops.
#[derive(Debug)]
pub struct Permit {
    slots: Arc<Slots>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = self.slots.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(1);
        drop(used);
        self.slots.freed.notify_one();
    }
}

/// The rate limit and the in-flight cap of one account's run.
pub struct Pace {
    limiter: RateLimiter<NotKeyed, InMemoryState, PaceClock, NoOpMiddleware<Duration>>,
    time: Arc<dyn Timekeeper>,
    slots: Arc<Slots>,
    requests_per_second: u32,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace")
            .field("requests_per_second", &self.requests_per_second)
            .field("max_in_flight", &self.slots.max)
            .finish_non_exhaustive()
    }
}

impl Pace {
    /// `requests_per_second` tokens a second, a burst of as many; at most
    /// `max_in_flight` requests at once. Zeros count as one.
    pub fn new(requests_per_second: u32, max_in_flight: u32, time: Arc<dyn Timekeeper>) -> Pace {
        let rate = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct_with_clock(
            Quota::per_second(rate).allow_burst(rate),
            PaceClock(time.clone()),
        );
        Pace {
            limiter,
            time,
            slots: Arc::new(Slots {
                max: max_in_flight.max(1) as usize,
                used: Mutex::new(0),
                freed: Condvar::new(),
                peak: AtomicUsize::new(0),
            }),
            requests_per_second: rate.get(),
        }
    }

    /// Takes a token if one is there; otherwise how long until one is.
    pub fn take_token(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.time.now()))
    }

    /// A slot, if one is free now.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut used = self.slots.used.lock().unwrap_or_else(|p| p.into_inner());
        (*used < self.slots.max).then(|| self.slots.take(&mut used))
    }

    /// A slot, waiting for one to free.
    pub fn acquire(&self) -> Permit {
        let mut used = self.slots.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= self.slots.max {
            used = self
                .slots
                .freed
                .wait(used)
                .unwrap_or_else(|p| p.into_inner());
        }
        self.slots.take(&mut used)
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        let used = *self.slots.used.lock().unwrap_or_else(|p| p.into_inner());
        self.slots.max.saturating_sub(used)
    }

    pub fn max_in_flight(&self) -> usize {
        self.slots.max
    }

    /// The most requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.slots.peak.load(Ordering::SeqCst)
    }

    pub fn requests_per_second(&self) -> u32 {
        self.requests_per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual() -> Arc<ManualTime> {
        Arc::new(ManualTime::new(SystemTime::UNIX_EPOCH))
    }

    /// Takes a token the way the HTTP layer does: sleep until one is there.
    fn take(pace: &Pace, time: &ManualTime) {
        while let Err(wait) = pace.take_token() {
            time.sleep(wait);
        }
    }

    #[test]
    fn a_burst_goes_at_once_then_one_token_per_period() {
        let time = manual();
        let pace = Pace::new(10, 5, time.clone());
        for _ in 0..10 {
            assert_eq!(pace.take_token(), Ok(()));
        }
        assert_eq!(pace.take_token(), Err(Duration::from_millis(100)));
        time.advance(Duration::from_millis(99));
        assert_eq!(pace.take_token(), Err(Duration::from_millis(1)));
        time.advance(Duration::from_millis(1));
        assert_eq!(pace.take_token(), Ok(()));
        assert!(pace.take_token().is_err());
    }

    #[test]
    fn m_requests_take_at_least_m_minus_burst_over_rate() {
        for (rate, m) in [(10u32, 35u32), (50, 120), (1, 4)] {
            let time = manual();
            let pace = Pace::new(rate, 5, time.clone());
            for _ in 0..m {
                take(&pace, &time);
            }
            let want = Duration::from_secs_f64(f64::from(m - rate.min(m)) / f64::from(rate));
            let took = time.now();
            assert!(took >= want, "{rate}/s, {m}: {took:?} < {want:?}");
            // And no slower than that (to the clock's rounding).
            assert!(took <= want + Duration::from_millis(1), "{took:?}");
        }
    }

    #[test]
    fn an_idle_bucket_refills_only_to_the_burst() {
        let time = manual();
        let pace = Pace::new(5, 5, time.clone());
        time.advance(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(pace.take_token(), Ok(()));
        }
        assert!(pace.take_token().is_err());
    }

    #[test]
    fn slots_cap_what_is_in_flight() {
        let pace = Pace::new(50, 3, manual());
        let a = pace.try_acquire().unwrap();
        let _b = pace.try_acquire().unwrap();
        let _c = pace.acquire();
        assert_eq!(pace.available(), 0);
        assert!(pace.try_acquire().is_none());
        drop(a);
        assert_eq!(pace.available(), 1);
        assert!(pace.try_acquire().is_some());
        assert_eq!(pace.peak_in_flight(), 3);
    }

    #[test]
    fn a_waiting_acquire_gets_the_slot_that_frees() {
        let pace = Arc::new(Pace::new(50, 1, manual()));
        let held = pace.acquire();
        let waiter = {
            let pace = pace.clone();
            std::thread::spawn(move || {
                let _p = pace.acquire();
            })
        };
        drop(held);
        waiter.join().unwrap();
        assert_eq!(pace.available(), 1);
    }

    #[test]
    fn many_threads_never_exceed_the_cap() {
        let pace = Arc::new(Pace::new(50, 3, manual()));
        let current = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (pace, current, most) = (pace.clone(), current.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let permit = pace.acquire();
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        current.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert!(pace.peak_in_flight() <= 3);
        assert_eq!(pace.available(), 3);
    }
}
