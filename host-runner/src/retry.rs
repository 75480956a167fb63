//! When a request is sent again, and after how long. Pure: the HTTP layer
//! ([`crate::http`]) applies it, with the clock and the randomness it owns.
//!
//! * Retried: 429, 502, 503, 504, 423 and a connection reset before any
//!   answer. Never a 401 (see [`crate::http`]: it stops the run).
//! * Exponential backoff with full jitter: the n-th retry (from 0) waits a
//!   uniformly random time up to `min(cap, base × factor^n)`.
//! * `Retry-After` (seconds or an HTTP date) replaces that wait, however long,
//!   as long as the total budget allows.
//! * At most `max_retries` retries, and no wait past `max_total` since the
//!   first attempt began: the last wait is cut to what is left.

use crate::config::Limits;
use std::time::{Duration, SystemTime};

/// The backoff schedule of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits up to this.
    pub base: Duration,
    /// Each further retry may wait this many times longer...
    pub factor: u32,
    /// ...but never more than this (a `Retry-After` is not held to it).
    pub cap: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// From the start of the first attempt to the start of the last.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            factor: 2,
            cap: Duration::from_secs(30),
            max_retries: 5,
            max_total: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The defaults, with `limits.max_retries` and `limits.max_retry_seconds`.
    pub fn from_limits(limits: &Limits) -> RetryPolicy {
        RetryPolicy {
            max_retries: limits.max_retries,
            max_total: Duration::from_secs(limits.max_retry_seconds),
            ..RetryPolicy::default()
        }
    }

    /// The longest the `retry`-th retry (from 0) may wait without a `Retry-After`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = self.factor.max(1).saturating_pow(retry);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How long to wait before the `retry`-th retry (from 0), or `None` to
    /// give up. `elapsed` is the time since the first attempt began; `unit`
    /// is a random number in `[0, 1)` for the jitter.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        elapsed: Duration,
        unit: f64,
    ) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        let left = self.max_total.checked_sub(elapsed)?;
        if left.is_zero() {
            return None;
        }
        let wait = match retry_after {
            Some(asked) => asked,
            None => self
                .backoff_ceiling(retry)
                .mul_f64(unit.clamp(0.0, 1.0 - f64::EPSILON)),
        };
        Some(wait.min(left))
    }
}

/// Why an answer is worth another attempt; `None` when it is final.
pub fn retry_reason(status: u16, headers: &[(String, String)]) -> Option<String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let reason = match status {
        429 => {
            "429 Too Many Requests: the server is throttling this address (if a wrong password was used from here, Nextcloud's brute-force protection blocks the address for up to 30 minutes)"
        }
        502 => "502 Bad Gateway",
        503 if header("x-nextcloud-maintenance-mode") == Some("1") => {
            "503 Service Unavailable: Nextcloud is in maintenance mode"
        }
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        423 => "423 Locked: the file is locked on the server (an upload in progress?)",
        _ => return None,
    };
    Some(reason.to_string())
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date in the past
/// means now). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    #[test]
    fn which_answers_are_retried() {
        for status in [429, 502, 503, 504, 423] {
            assert!(retry_reason(status, &[]).is_some(), "{status}");
        }
        for status in [
            200, 207, 301, 304, 400, 401, 403, 404, 405, 409, 412, 500, 501, 507,
        ] {
            assert_eq!(retry_reason(status, &[]), None, "{status}");
        }
        let m = retry_reason(503, &h("X-Nextcloud-Maintenance-Mode", "1")).unwrap();
        assert!(m.contains("maintenance mode"), "{m}");
        assert!(!retry_reason(503, &[]).unwrap().contains("maintenance"));
        assert!(retry_reason(423, &[]).unwrap().contains("locked"));
        assert!(retry_reason(429, &[]).unwrap().contains("brute-force"));
    }

    #[test]
    fn never_a_401() {
        assert_eq!(retry_reason(401, &h("Retry-After", "1")), None);
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(42))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for bad in ["", "soon", "-5", "1.5", "Tue, 99 Foo 2024"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_the_cap() {
        let p = RetryPolicy {
            max_retries: 20,
            max_total: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let ceilings: Vec<u64> = (0..8)
            .map(|n| p.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(p.backoff_ceiling(200), Duration::from_secs(30));
        // Full jitter: anywhere from zero to the ceiling.
        assert_eq!(p.delay(3, None, Duration::ZERO, 0.0), Some(Duration::ZERO));
        assert_eq!(
            p.delay(3, None, Duration::ZERO, 0.5),
            Some(Duration::from_secs(2))
        );
        let top = p.delay(3, None, Duration::ZERO, 1.0).unwrap();
        assert!(top <= Duration::from_secs(4) && top > Duration::from_millis(3999));
    }

    #[test]
    fn retries_are_bounded_in_count() {
        let p = RetryPolicy::default();
        for n in 0..5 {
            assert!(p.delay(n, None, Duration::ZERO, 0.5).is_some(), "{n}");
        }
        assert_eq!(p.delay(5, None, Duration::ZERO, 0.5), None);
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert_eq!(none.delay(0, None, Duration::ZERO, 0.5), None);
    }

    #[test]
    fn retries_are_bounded_in_total_time_and_retry_after_is_capped_by_it() {
        let p = RetryPolicy::default();
        // Honoured beyond the 30 s backoff cap...
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(100)), Duration::ZERO, 0.5),
            Some(Duration::from_secs(100))
        );
        // ...but not beyond what is left of the two minutes.
        assert_eq!(
            p.delay(
                1,
                Some(Duration::from_secs(100)),
                Duration::from_secs(100),
                0.5
            ),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            p.delay(1, None, Duration::from_millis(119_900), 0.99),
            Some(Duration::from_millis(100))
        );
        assert_eq!(p.delay(2, None, Duration::from_secs(120), 0.5), None);
        assert_eq!(p.delay(2, None, Duration::from_secs(500), 0.5), None);
    }

    #[test]
    fn limits_set_count_and_budget() {
        let limits = Limits {
            max_retries: 2,
            max_retry_seconds: 9,
            ..Limits::default()
        };
        let p = RetryPolicy::from_limits(&limits);
        assert_eq!(p.max_retries, 2);
        assert_eq!(p.max_total, Duration::from_secs(9));
        assert_eq!(p.base, Duration::from_millis(500));
        assert_eq!(
            RetryPolicy::from_limits(&Limits::default()),
            RetryPolicy::default()
        );
    }
}
