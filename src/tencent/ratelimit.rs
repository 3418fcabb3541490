//! The client-side rate limit: requests per second per (SecretId, action), shared by all
//! calls through one [`Transport`](super::transport::Transport), so that however many
//! reconciles run at once the operator itself never exceeds the API's limits
//! (`ModifyHostsCertificate` 20/s, SSL APIs 10/s).
//!
//! It spaces requests evenly (one every `1/rate` second) rather than allowing bursts:
//! Tencent Cloud counts requests over a sliding second, and a token bucket of size N
//! refilled at N/s lets 2N through in one such second. The spacing is 5 % wider than
//! `1/rate`, so that latency jitter between client and server (a new connection for one
//! request, none for the next) does not push N+1 requests into one server-side second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How much wider than `1/rate` the spacing is, in parts per thousand.
const MARGIN_PER_MILLE: u32 = 50;

/// The time between two requests of one key at `per_second` (> 0).
pub fn spacing(per_second: u32) -> Duration {
    Duration::from_secs(1) * (1000 + MARGIN_PER_MILLE) / 1000 / per_second
}

/// Beyond this many keys, keys whose slots lie in the past are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// Spaces requests per key; cheap to share (`Arc`) between tasks.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// The earliest time the next request of each (SecretId, action) may start.
    next_slot: Mutex<HashMap<(String, String), Instant>>,
    waited_nanos: AtomicU64,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until a request of `action` signed by `secret_id` may be sent at
    /// `per_second` requests per second (0: no limit) and returns how long it waited.
    ///
    /// Each call reserves the next free slot before it sleeps, so concurrent callers
    /// are served in the order they arrived. A caller dropped while waiting forfeits its
    /// slot (the rate only gets lower).
    pub async fn acquire(&self, secret_id: &str, action: &str, per_second: u32) -> Duration {
        if per_second == 0 {
            return Duration::ZERO;
        }
        let interval = spacing(per_second);
        let now = Instant::now();
        let slot = {
            let mut slots = self
                .next_slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if slots.len() > PRUNE_ABOVE {
                slots.retain(|_, next| *next > now);
            }
            let next = slots
                .entry((secret_id.to_owned(), action.to_owned()))
                .or_insert(now);
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        let wait = slot - now;
        if !wait.is_zero() {
            self.waited_nanos.fetch_add(
                u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            tokio::time::sleep_until(slot).await;
        }
        wait
    }

    /// Total time callers were made to wait, since the limiter was created.
    pub fn total_wait(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn forty_five_requests_at_twenty_per_second_take_over_two_seconds() {
        let limiter = Arc::new(RateLimiter::new());
        let start = Instant::now();
        let tasks: Vec<_> = (0..45)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire("AKID1", "ModifyHostsCertificate", 20).await;
                    Instant::now()
                })
            })
            .collect();
        let mut finished = Vec::new();
        for task in tasks {
            finished.push(task.await.unwrap());
        }
        let elapsed = finished.iter().max().unwrap().duration_since(start);
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
        // No sliding second holds more than 20 starts.
        finished.sort();
        for (i, t) in finished.iter().enumerate().skip(20) {
            assert!(
                t.duration_since(finished[i - 20]) >= Duration::from_secs(1),
                "requests {} and {i} within one second",
                i - 20
            );
        }
        // 0 + 1 + … + 44 spacings of waiting in all.
        assert_eq!(spacing(20), Duration::from_micros(52_500));
        assert_eq!(limiter.total_wait(), spacing(20) * (44 * 45 / 2));
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_do_not_block_each_other() {
        let limiter = RateLimiter::new();
        for _ in 0..20 {
            limiter.acquire("AKID1", "UploadCertificate", 10).await;
        }
        let start = Instant::now();
        assert_eq!(
            limiter.acquire("AKID2", "UploadCertificate", 10).await,
            Duration::ZERO
        );
        assert_eq!(
            limiter.acquire("AKID1", "DeleteCertificate", 10).await,
            Duration::ZERO
        );
        assert_eq!(Instant::now(), start, "no virtual time passed");
        // The busy key still waits its turn.
        assert_eq!(
            limiter.acquire("AKID1", "UploadCertificate", 10).await,
            spacing(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_unlimited_and_idle_keys_start_fresh() {
        let limiter = RateLimiter::new();
        let start = Instant::now();
        for _ in 0..1000 {
            limiter.acquire("", "AssumeRoleWithWebIdentity", 0).await;
        }
        assert_eq!(Instant::now(), start);
        limiter.acquire("AKID1", "X", 5).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(limiter.acquire("AKID1", "X", 5).await, Duration::ZERO);
        assert_eq!(limiter.total_wait(), Duration::ZERO);
    }
}
