//! The meter: whether a credential is accepted and what a request is
//! charged, as pure functions over a lane's [`LaneState`]. The
//! [`Ledger`](super::ledger::Ledger) runs them under the lane's lock, so
//! concurrent requests see each other's effects in order. Every rule on
//! seq, amount and limit lives here, once, for paid requests, session
//! requests, credit and the cooperative close.

use crate::manifest::{ErrorBody, ErrorCode, Price};
use crate::pricing::{self, Rounding};
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
        let allowance = ceiling(amount, credit, limit).saturating_sub(committed);
        // Serve at least one unit, or nothing.
        let one_unit = charge(price, 1, u64::MAX).max(1);
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

/// Accepts a session request (SPEC section 5, "Sessions"): `amount` is
/// what the client acknowledges owing, authenticated by a MAC, not signed.
///
/// The checks of a signed credential apply to it (new seq, amount covering
/// what is owed plus an upfront price, within the lane), and one more: the
/// service never holds acknowledgements beyond the highest signed amount
/// plus `credit`, so that is the most it can lose. Past it the client must
/// sign ([`ErrorCode::VoucherDue`]). The charge is the price, not the
/// acknowledged amount: only charges, never acknowledgements, add up when
/// the unsigned part of a lane is folded into the store
/// ([`Unsigned`](super::unsigned)). A metered request's allowance is counted
/// from the highest signed amount, as for a signed credential.
pub(crate) fn accept_unsigned(
    state: &mut LaneState,
    seq: u64,
    amount: u64,
    price: &Price,
    limit: u64,
    credit: u64,
) -> Result<Accepted, Box<ErrorBody>> {
    check_seq_and_limit(state, seq, amount, limit)?;
    let upfront = if pricing::is_upfront(price) {
        price.rate
    } else {
        0
    };
    let required = state
        .owed
        .checked_add(upfront)
        .filter(|required| *required <= limit)
        .ok_or_else(|| over_limit(amount, limit, state.owed))?;
    if amount < required {
        return Err(underfunded(required, state.owed));
    }
    if amount > ceiling(state.signed(), credit, u64::MAX) {
        return Err(voucher_due(
            amount,
            Some(state.owed),
            "the amount is past the highest signed one plus the credit",
        ));
    }
    let allowance = if pricing::is_upfront(price) {
        None
    } else {
        let committed = state.owed.saturating_add(state.reserved);
        let allowance = ceiling(state.signed(), credit, limit).saturating_sub(committed);
        let one_unit = charge(price, 1, u64::MAX).max(1);
        if allowance < one_unit {
            let required = committed.saturating_add(one_unit).saturating_sub(credit);
            return Err(voucher_due(
                required.max(amount),
                Some(state.owed),
                "requests in flight hold the credit",
            ));
        }
        state.reserved = state.reserved.saturating_add(allowance);
        Some(allowance)
    };
    state.owed = required;
    state.last_seq = seq;
    Ok(Accepted {
        owed: state.owed,
        allowance,
        unsettled: state.unsettled(),
    })
}

/// What `units` of a metered request cost at `price`, rounded up (the
/// payee's rounding) and capped at its `allowance`.
pub(crate) fn charge(price: &Price, units: u64, allowance: u64) -> u64 {
    pricing::cost(price, units, Rounding::Up).min(allowance)
}

/// Ends a metered request: releases its reservation and charges what it used.
pub(crate) fn finish(state: &mut LaneState, allowance: u64, charge: u64) {
    state.reserved = state.reserved.saturating_sub(allowance);
    state.owed = state.owed.saturating_add(charge.min(allowance));
}

/// Accepts a credit credential (docs/streaming.md): a new seq, an amount
/// covering what is owed and within what the lane can pay; serves nothing.
pub(crate) fn accept_credit(
    state: &mut LaneState,
    signed: &SignedVoucher,
    limit: u64,
) -> Result<(), Box<ErrorBody>> {
    check_common(state, signed, limit)?;
    if signed.voucher.cumulative < state.owed {
        return Err(underfunded(state.owed, state.owed));
    }
    record(state, signed);
    Ok(())
}

/// Reserves, for a metered request in flight, the room left on the lane:
/// up to `credit` beyond the highest amount signed (never beyond `limit`),
/// minus what is owed and what requests in flight hold. 0 once closed.
pub(crate) fn claim(state: &mut LaneState, credit: u64, limit: u64) -> u64 {
    if state.closed {
        return 0;
    }
    let committed = state.owed.saturating_add(state.reserved);
    let room = ceiling(state.signed(), credit, limit).saturating_sub(committed);
    state.reserved = state.reserved.saturating_add(room);
    room
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

/// The most metered requests may be served on `amount` signed.
fn ceiling(amount: u64, credit: u64, limit: u64) -> u64 {
    amount.saturating_add(credit).min(limit)
}

/// What every credential must meet: an open lane, a new seq, an amount the
/// lane can pay.
fn check_common(
    state: &LaneState,
    signed: &SignedVoucher,
    limit: u64,
) -> Result<(), Box<ErrorBody>> {
    check_seq_and_limit(state, signed.voucher.seq, signed.voucher.cumulative, limit)
}

/// [`check_common`] for a credential's `seq` and cumulative `amount`,
/// signed or acknowledged.
fn check_seq_and_limit(
    state: &LaneState,
    seq: u64,
    amount: u64,
    limit: u64,
) -> Result<(), Box<ErrorBody>> {
    if state.closed {
        return Err(Box::new(ErrorBody::new(
            ErrorCode::Closed,
            "the lane was closed by this server",
        )));
    }
    if seq <= state.last_seq {
        return Err(Box::new(
            ErrorBody::new(
                ErrorCode::InvalidSeq,
                format!(
                    "seq {seq} is not above the last accepted seq {}",
                    state.last_seq
                ),
            )
            .with_owed(state.owed),
        ));
    }
    if amount > limit {
        return Err(over_limit(amount, limit, state.owed));
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

fn underfunded(required: u64, owed: u64) -> Box<ErrorBody> {
    Box::new(
        ErrorBody::new(
            ErrorCode::Underfunded,
            format!("AMP-Amount must be at least {required}"),
        )
        .with_required(required)
        .with_owed(owed),
    )
}

/// A session request the service will not take unsigned: `required` is
/// what the voucher of the retried request must cover.
pub(crate) fn voucher_due(required: u64, owed: Option<u64>, why: &str) -> Box<ErrorBody> {
    let body = ErrorBody::new(
        ErrorCode::VoucherDue,
        format!("{why}: sign a voucher for at least {required}"),
    )
    .with_required(required);
    Box::new(match owed {
        Some(owed) => body.with_owed(owed),
        None => body,
    })
}

fn over_limit(amount: u64, limit: u64, owed: u64) -> Box<ErrorBody> {
    Box::new(
        ErrorBody::new(
            ErrorCode::Underfunded,
            format!("AMP-Amount {amount} is above the {limit} the lane can pay; top up"),
        )
        .with_owed(owed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::PricingMode;
    use crate::store::LaneId;
    use crate::voucher::Voucher;
    use anchor_lang::prelude::Pubkey;

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
    fn credit_takes_a_new_seq_covering_what_is_owed() {
        let mut s = state();
        accept(&mut s, &signed(1, 10), &CALL, 1_000, 0).unwrap();
        let e = accept_credit(&mut s, &signed(1, 20), 1_000).unwrap_err();
        assert_eq!(e.error, ErrorCode::InvalidSeq);
        let e = accept_credit(&mut s, &signed(2, 9), 1_000).unwrap_err();
        assert_eq!((e.error, e.required), (ErrorCode::Underfunded, Some(10)));
        let e = accept_credit(&mut s, &signed(2, 1_001), 1_000).unwrap_err();
        assert_eq!(e.error, ErrorCode::Underfunded);
        accept_credit(&mut s, &signed(2, 40), 1_000).unwrap();
        assert_eq!((s.owed, s.last_seq, s.signed()), (10, 2, 40));
    }

    #[test]
    fn claims_reserve_the_room_up_to_the_credit_and_the_limit() {
        let mut s = state();
        accept_credit(&mut s, &signed(1, 40), 1_000).unwrap();
        assert_eq!(claim(&mut s, 100, 1_000), 140);
        assert_eq!(claim(&mut s, 100, 1_000), 0, "all of it is reserved");
        finish(&mut s, 140, 20);
        assert_eq!(
            claim(&mut s, 100, 50),
            30,
            "never beyond what the lane can pay"
        );
        s.closed = true;
        assert_eq!(claim(&mut s, 100, 1_000), 0);
    }

    #[test]
    fn session_requests_stay_within_the_credit_beyond_what_is_signed() {
        let mut s = state();
        accept_credit(&mut s, &signed(1, 30), 1_000).unwrap();
        // Acknowledged 10, 20, 30 ... up to signed 30 + credit 25 = 55.
        let a = accept_unsigned(&mut s, 2, 10, &CALL, 1_000, 25).unwrap();
        assert_eq!((a.owed, a.allowance), (10, None));
        let e = accept_unsigned(&mut s, 2, 20, &CALL, 1_000, 25).unwrap_err();
        assert_eq!(e.error, ErrorCode::InvalidSeq, "a replayed seq");
        let e = accept_unsigned(&mut s, 3, 19, &CALL, 1_000, 25).unwrap_err();
        assert_eq!((e.error, e.required), (ErrorCode::Underfunded, Some(20)));
        // Acknowledging more than the price is allowed; only the price is charged.
        accept_unsigned(&mut s, 4, 50, &CALL, 1_000, 25).unwrap();
        assert_eq!(s.owed, 20);
        let e = accept_unsigned(&mut s, 5, 56, &CALL, 1_000, 25).unwrap_err();
        assert_eq!(
            (e.error, e.required, e.owed),
            (ErrorCode::VoucherDue, Some(56), Some(20))
        );
        let e = accept_unsigned(&mut s, 5, 1_001, &CALL, 1_000, 25).unwrap_err();
        assert_eq!(e.error, ErrorCode::Underfunded, "beyond the lane");
        // A signed voucher moves the bound.
        accept(&mut s, &signed(6, 100), &CALL, 1_000, 25).unwrap();
        accept_unsigned(&mut s, 7, 125, &CALL, 1_000, 25).unwrap();
        assert_eq!((s.owed, s.last_seq, s.signed()), (40, 7, 100));
        s.closed = true;
        let e = accept_unsigned(&mut s, 8, 125, &CALL, 1_000, 25).unwrap_err();
        assert_eq!(e.error, ErrorCode::Closed);
    }

    #[test]
    fn metered_session_requests_get_their_allowance_from_what_is_signed() {
        let mut s = state();
        accept_credit(&mut s, &signed(1, 40), 1_000).unwrap();
        // The acknowledged amount does not widen the allowance: signed 40 + credit 100.
        let a = accept_unsigned(&mut s, 2, 120, &TOKEN, 1_000, 100).unwrap();
        assert_eq!(a.allowance, Some(140));
        let e = accept_unsigned(&mut s, 3, 120, &TOKEN, 1_000, 100).unwrap_err();
        assert_eq!((e.error, e.required), (ErrorCode::VoucherDue, Some(120)));
        finish(&mut s, 140, 30);
        let e = accept_unsigned(&mut s, 4, 29, &TOKEN, 1_000, 100).unwrap_err();
        assert_eq!((e.error, e.required), (ErrorCode::Underfunded, Some(30)));
        let b = accept_unsigned(&mut s, 5, 30, &TOKEN, 1_000, 100).unwrap();
        assert_eq!(b.allowance, Some(110));
    }
}
