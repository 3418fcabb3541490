//! Per-account, per-action request limits over a sliding one-second window, as the
//! real API enforces them (`LimitExceeded.RateLimitExceeded`).

use std::collections::{HashMap, VecDeque};

use crate::model::Millis;

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Accepted request times per (account, action), oldest first.
    windows: HashMap<(String, String), VecDeque<Millis>>,
}

impl RateLimiter {
    /// Admits the request unless `limit` requests were already admitted in the last
    /// second. A limit of 0 admits everything. Rejected requests do not count.
    pub fn admit(&mut self, account: &str, action: &str, limit: u32, now: Millis) -> bool {
        if limit == 0 {
            return true;
        }
        let window = self
            .windows
            .entry((account.to_owned(), action.to_owned()))
            .or_default();
        while window.front().is_some_and(|t| now - t >= 1000) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return false;
        }
        window.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_per_second() {
        let mut limiter = RateLimiter::default();
        let admitted = (0..25)
            .filter(|i| limiter.admit("a", "Modify", 20, 1000 + i))
            .count();
        assert_eq!(admitted, 20);
        assert!(!limiter.admit("a", "Modify", 20, 1999));
        assert!(limiter.admit("a", "Modify", 20, 2000), "the window slides");
    }

    #[test]
    fn accounts_and_actions_are_limited_separately() {
        let mut limiter = RateLimiter::default();
        assert!(limiter.admit("a", "X", 1, 0));
        assert!(!limiter.admit("a", "X", 1, 1));
        assert!(limiter.admit("b", "X", 1, 1));
        assert!(limiter.admit("a", "Y", 1, 1));
        assert!((0..100).all(|i| limiter.admit("a", "Z", 0, i)));
    }
}
