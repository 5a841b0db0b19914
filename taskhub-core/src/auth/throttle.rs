//! Throttling of authentication: a per-client-address rate limit (in the process) and the
//! per-username back-off after failed logins (in the database, so every instance agrees).

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins in a row before the back-off starts.
pub const FREE_FAILURES: i32 = 5;
/// The longest back-off.
pub const MAX_BACKOFF: chrono::Duration = chrono::Duration::minutes(15);

/// How long a username is blocked after `failures` failures in a row: none for the first
/// five, then 1 s, 2 s, 4 s… up to 15 minutes. It never locks the real user out for good.
pub fn backoff(failures: i32) -> Option<chrono::Duration> {
    let over = failures - FREE_FAILURES;
    if over < 0 {
        return None;
    }
    let secs = 1i64.checked_shl(u32::try_from(over.min(20)).unwrap_or(20)).unwrap_or(i64::MAX);
    Some(chrono::Duration::seconds(secs).min(MAX_BACKOFF))
}

/// A fixed-window limit of requests per client address per minute.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// `per_minute` requests per address per minute; 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// The limit per minute (0 = off).
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Counts a request from `addr` at `now`: `Ok(remaining)` or `Err(seconds to wait)`.
    pub fn check(&self, addr: IpAddr, now: DateTime<Utc>) -> Result<u32, u64> {
        if self.per_minute == 0 {
            return Ok(u32::MAX);
        }
        let minute = now.timestamp().div_euclid(60);
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (m, _)| *m == minute);
        }
        let entry = w.entry(addr).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(u64::try_from(60 - now.timestamp().rem_euclid(60)).unwrap_or(60));
        }
        entry.1 += 1;
        Ok(self.per_minute - entry.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_five_failures_and_caps_at_fifteen_minutes() {
        assert_eq!(backoff(4), None);
        assert_eq!(backoff(5), Some(chrono::Duration::seconds(1)));
        assert_eq!(backoff(8), Some(chrono::Duration::seconds(8)));
        assert_eq!(backoff(40), Some(MAX_BACKOFF));
    }

    #[test]
    fn rate_limit_counts_per_address_per_minute() {
        let r = RateLimiter::new(2);
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
        assert_eq!(r.check(a, t), Ok(1));
        assert_eq!(r.check(a, t), Ok(0));
        assert_eq!(r.check(a, t + chrono::Duration::seconds(15)), Err(45));
        assert_eq!(r.check(b, t), Ok(1), "other addresses are counted apart");
        assert_eq!(r.check(a, t + chrono::Duration::seconds(60)), Ok(1), "a new minute starts afresh");
        assert!(RateLimiter::new(0).check(a, t).is_ok(), "0 turns it off");
    }
}
