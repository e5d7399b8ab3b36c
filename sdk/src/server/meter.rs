//! The metering decisions: whether a credential is accepted and what it is
//! charged, as pure functions over a lane's [`LaneState`]. They run inside
//! [`VoucherStore::update`](crate::store::VoucherStore::update), under the
//! lane's lock, so concurrent requests see each other's effects in order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use anchor_lang::prelude::Pubkey;
use serde::{Deserialize, Serialize};

use super::pricing;
use crate::manifest::{ErrorBody, ErrorCode, Price};
use crate::store::LaneState;
use crate::voucher::SignedVoucher;

/// An accepted credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Cumulative amount charged once the upfront price is counted.
    pub owed: u64,
    /// For a metered price: the most this request may be charged, reserved
    /// until it finishes.
    pub allowance: Option<u64>,
    /// What settling the lane's best voucher would pay now.
    pub unsettled: u64,
}

/// Accepts `signed` for a request at `price` on a lane that may pay `limit`
/// in total, with `credit` extended to metered requests.
///
/// A `per_call` price must be covered by the voucher: amount ≥ owed + price.
/// A metered price is known only afterwards: the voucher must cover what is
/// owed, and the request may then use up to `amount + credit` (never more
/// than the lane can pay) minus what is owed or reserved by requests in flight.
pub(crate) fn accept(
    state: &mut LaneState,
    signed: &SignedVoucher,
    price: &Price,
    limit: u64,
    credit: u64,
) -> Result<Accepted, Box<ErrorBody>> {
    let amount = signed.voucher.cumulative;
    check_common(state, signed, limit)?;
    let allowance = if pricing::is_upfront(price) {
        let required = state.owed.checked_add(price.rate).ok_or_else(|| {
            Box::new(
                ErrorBody::new(ErrorCode::Underfunded, "the lane cannot pay this request")
                    .with_owed(state.owed),
            )
        })?;
        if amount < required {
            return Err(underfunded(required, state.owed));
        }
        state.owed = required;
        None
    } else {
        let committed = state.owed.saturating_add(state.reserved);
        let ceiling = amount.saturating_add(credit).min(limit);
        let allowance = ceiling.saturating_sub(committed);
        // Serve at least one unit, or nothing.
        let one_unit = pricing::charge(price, 1, u64::MAX).max(1);
        if amount < state.owed || allowance < one_unit {
            let required = state
                .owed
                .max(committed.saturating_add(one_unit).saturating_sub(credit));
            return Err(underfunded(required, state.owed));
        }
        state.reserved = state.reserved.saturating_add(allowance);
        Some(allowance)
    };
    record(state, signed);
    Ok(Accepted {
        owed: state.owed,
        allowance,
        unsettled: state.unsettled(),
    })
}

/// Ends a metered request: releases its reservation and charges what it used.
pub(crate) fn finish(state: &mut LaneState, allowance: u64, charge: u64) {
    state.reserved = state.reserved.saturating_sub(allowance);
    state.owed = state.owed.saturating_add(charge.min(allowance));
}

/// Accepts the final voucher of a cooperative close: it must cover all that
/// is owed, including what requests in flight may still use. Marks the lane closed.
pub(crate) fn accept_final(
    state: &mut LaneState,
    signed: &SignedVoucher,
    limit: u64,
) -> Result<(), Box<ErrorBody>> {
    check_common(state, signed, limit)?;
    let required = state.owed.saturating_add(state.reserved);
    if signed.voucher.cumulative < required {
        return Err(underfunded(required, state.owed));
    }
    record(state, signed);
    state.closed = true;
    Ok(())
}

fn check_common(
    state: &LaneState,
    signed: &SignedVoucher,
    limit: u64,
) -> Result<(), Box<ErrorBody>> {
    if state.closed {
        return Err(Box::new(ErrorBody::new(
            ErrorCode::Closed,
            "the lane was closed by this server",
        )));
    }
    if signed.voucher.seq <= state.last_seq {
        return Err(Box::new(
            ErrorBody::new(
                ErrorCode::InvalidSeq,
                format!(
                    "seq {} is not above the last accepted seq {}",
                    signed.voucher.seq, state.last_seq
                ),
            )
            .with_owed(state.owed),
        ));
    }
    if signed.voucher.cumulative > limit {
        return Err(over_limit(signed.voucher.cumulative, limit, state.owed));
    }
    Ok(())
}

/// Records an accepted voucher: its seq, and the voucher itself when it
/// is the best one to settle.
fn record(state: &mut LaneState, signed: &SignedVoucher) {
    state.last_seq = signed.voucher.seq;
    if signed.voucher.cumulative > state.signed() {
        state.best = Some(*signed);
    }
}

pub(crate) fn underfunded(required: u64, owed: u64) -> Box<ErrorBody> {
    Box::new(
        ErrorBody::new(
            ErrorCode::Underfunded,
            format!("AMP-Amount must be at least {required}"),
        )
        .with_required(required)
        .with_owed(owed),
    )
}

pub(crate) fn over_limit(amount: u64, limit: u64, owed: u64) -> Box<ErrorBody> {
    Box::new(
        ErrorBody::new(
            ErrorCode::Underfunded,
            format!("AMP-Amount {amount} is above the {limit} the lane can pay; top up"),
        )
        .with_owed(owed),
    )
}

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
    use crate::manifest::PricingMode;
    use crate::store::LaneId;
    use crate::voucher::Voucher;

    fn state() -> LaneState {
        let key = Pubkey::new_from_array([1; 32]);
        LaneState::new(
            LaneId {
                lane: key,
                generation: 5,
            },
            key,
            None,
            key,
        )
    }

    fn signed(seq: u64, cumulative: u64) -> SignedVoucher {
        SignedVoucher {
            voucher: Voucher {
                lane: Pubkey::new_from_array([1; 32]),
                generation: 5,
                seq,
                cumulative,
                expires_at: 0,
            },
            signature: [0; 64],
        }
    }

    const CALL: Price = Price {
        mode: PricingMode::PerCall,
        rate: 10,
    };
    const TOKEN: Price = Price {
        mode: PricingMode::PerToken,
        rate: 2,
    };

    #[test]
    fn per_call_needs_owed_plus_price_and_a_new_seq() {
        let mut s = state();
        let a = accept(&mut s, &signed(1, 10), &CALL, 1_000, 0).unwrap();
        assert_eq!((a.owed, a.allowance, a.unsettled), (10, None, 10));
        let e = accept(&mut s, &signed(1, 20), &CALL, 1_000, 0).unwrap_err();
        assert_eq!(e.error, ErrorCode::InvalidSeq);
        let e = accept(&mut s, &signed(2, 19), &CALL, 1_000, 0).unwrap_err();
        assert_eq!(
            (e.error, e.required, e.owed),
            (ErrorCode::Underfunded, Some(20), Some(10))
        );
        let e = accept(&mut s, &signed(2, 1_001), &CALL, 1_000, 0).unwrap_err();
        assert_eq!(e.error, ErrorCode::Underfunded);
        // Pre-paying is allowed; the best voucher is the highest amount.
        accept(&mut s, &signed(5, 100), &CALL, 1_000, 0).unwrap();
        accept(&mut s, &signed(6, 30), &CALL, 1_000, 0).unwrap();
        assert_eq!((s.owed, s.last_seq, s.signed()), (30, 6, 100));
    }

    #[test]
    fn metered_requests_share_the_credit() {
        let mut s = state();
        // Covers nothing yet: the credit pays for the first request.
        let a = accept(&mut s, &signed(1, 0), &TOKEN, 1_000, 100).unwrap();
        assert_eq!(a.allowance, Some(100));
        // A second request in flight gets only what is left.
        let b = accept(&mut s, &signed(2, 50), &TOKEN, 1_000, 100).unwrap();
        assert_eq!(b.allowance, Some(50));
        let e = accept(&mut s, &signed(3, 50), &TOKEN, 1_000, 100).unwrap_err();
        assert_eq!(e.required, Some(52));
        finish(&mut s, 100, 30);
        finish(&mut s, 50, 500);
        assert_eq!((s.owed, s.reserved), (80, 0));
        // The next voucher must cover what was charged.
        let e = accept(&mut s, &signed(4, 79), &TOKEN, 1_000, 100).unwrap_err();
        assert_eq!(e.required, Some(80));
        let c = accept(&mut s, &signed(5, 80), &TOKEN, 150, 100).unwrap();
        assert_eq!(c.allowance, Some(70), "never beyond what the lane can pay");
    }

    #[test]
    fn the_final_voucher_covers_everything_and_closes() {
        let mut s = state();
        accept(&mut s, &signed(1, 10), &CALL, 1_000, 0).unwrap();
        accept(&mut s, &signed(2, 10), &TOKEN, 1_000, 40).unwrap();
        let e = accept_final(&mut s, &signed(3, 49), 1_000).unwrap_err();
        assert_eq!(e.required, Some(50));
        accept_final(&mut s, &signed(3, 50), 1_000).unwrap();
        assert!(s.closed);
        let e = accept(&mut s, &signed(4, 60), &CALL, 1_000, 0).unwrap_err();
        assert_eq!(e.error, ErrorCode::Closed);
    }

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
