//! A per-lane request rate: a token bucket per lane, so one payer cannot
//! crowd out the others (`AMP_RATE_EXCEEDED` beyond it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

/// A per-lane request rate: a token bucket refilled at `per_second`,
/// holding at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second the bucket refills; must be positive.
    pub per_second: f64,
    /// Most requests allowed at once after a quiet spell (the bucket's size;
    /// 0 counts as 1).
    pub burst: u32,
}

/// Buckets beyond which idle ones are dropped.
const MAX_BUCKETS: usize = 65_536;

/// The buckets of every lane seen lately.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Pubkey, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from the lane's bucket; `false` when it is empty.
    pub(crate) fn allow(&self, lane: &Pubkey) -> bool {
        let now = Instant::now();
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            // A full bucket is the same as no bucket.
            let per_second = self.limit.per_second;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets.entry(*lane).or_insert((burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.limit.per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 2,
        });
        let lane = Pubkey::new_unique();
        assert!(limiter.allow(&lane));
        assert!(limiter.allow(&lane));
        assert!(!limiter.allow(&lane));
        assert!(limiter.allow(&Pubkey::new_unique()));
    }
}
