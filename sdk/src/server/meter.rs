//! The meter: whether a credential is accepted and what a request is
//! charged, as pure functions over a lane's [`LaneState`], and the
//! [`Ledger`] that applies them in the store. They run inside
//! [`VoucherStore::update`], under the lane's lock, so concurrent requests
//! see each other's effects in order. Every rule on seq, amount and limit
//! lives here, once, for paid requests, credit and the cooperative close.

use std::sync::Arc;

use super::settle::SettleHook;
use crate::manifest::{ErrorBody, ErrorCode, Price};
use crate::pricing::{self, Rounding};
use crate::store::{self, LaneState, StoreError, VoucherStore};
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

fn over_limit(amount: u64, limit: u64, owed: u64) -> Box<ErrorBody> {
    Box::new(
        ErrorBody::new(
            ErrorCode::Underfunded,
            format!("AMP-Amount {amount} is above the {limit} the lane can pay; top up"),
        )
        .with_owed(owed),
    )
}

/// Why the meter did not record a credential.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The meter's decision, for the payer.
    Meter(Box<ErrorBody>),
    /// The store could not record it; the server's fault, not the payer's.
    Store(StoreError),
}

/// The meter applied in the store: each decision runs under the lane's lock,
/// and a charge tells the settler what the lane now holds.
#[derive(Clone)]
pub(crate) struct Ledger {
    store: Arc<dyn VoucherStore>,
    settler: SettleHook,
}

impl Ledger {
    pub(crate) fn new(store: Arc<dyn VoucherStore>, settler: SettleHook) -> Self {
        Self { store, settler }
    }

    /// The store the ledger writes to.
    pub(crate) fn store(&self) -> &dyn VoucherStore {
        self.store.as_ref()
    }

    /// Applies `decide` to the lane's state; records the change only when it is accepted.
    async fn decide<T: Send + 'static>(
        &self,
        fresh: LaneState,
        decide: impl FnOnce(&mut LaneState) -> Result<T, Box<ErrorBody>> + Send + 'static,
    ) -> Result<T, Refused> {
        store::transact(self.store(), fresh, move |state| match decide(state) {
            Ok(accepted) => (Ok(accepted), true),
            Err(refusal) => (Err(refusal), false),
        })
        .await
        .map_err(Refused::Store)?
        .map_err(Refused::Meter)
    }

    /// A paid request's credential ([`accept`]).
    pub(crate) async fn charge(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        price: Price,
        limit: u64,
        credit: u64,
    ) -> Result<Accepted, Refused> {
        let accepted = self
            .decide(fresh, move |state| {
                accept(state, &signed, &price, limit, credit)
            })
            .await?;
        self.settler.charged(accepted.unsettled);
        Ok(accepted)
    }

    /// A credit credential ([`accept_credit`]); returns what is owed.
    pub(crate) async fn credit(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        limit: u64,
    ) -> Result<u64, Refused> {
        let (owed, unsettled) = self
            .decide(fresh, move |state| {
                accept_credit(state, &signed, limit).map(|()| (state.owed, state.unsettled()))
            })
            .await?;
        self.settler.charged(unsettled);
        Ok(owed)
    }

    /// The final voucher of a cooperative close ([`accept_final`]); returns
    /// the lane's state, now closed.
    pub(crate) async fn close(
        &self,
        fresh: LaneState,
        signed: SignedVoucher,
        limit: u64,
    ) -> Result<LaneState, Refused> {
        self.decide(fresh, move |state| {
            accept_final(state, &signed, limit).map(|()| state.clone())
        })
        .await
    }

    /// Ends a metered request ([`finish`]).
    pub(crate) async fn finish(
        &self,
        fresh: LaneState,
        allowance: u64,
        charge: u64,
    ) -> Result<(), StoreError> {
        let unsettled = store::transact(self.store(), fresh, move |state| {
            finish(state, allowance, charge);
            (state.unsettled(), true)
        })
        .await?;
        self.settler.charged(unsettled);
        Ok(())
    }

    /// Reserves a metered request's room ([`claim`]).
    pub(crate) async fn claim(
        &self,
        fresh: LaneState,
        credit: u64,
        limit: u64,
    ) -> Result<u64, StoreError> {
        store::transact(self.store(), fresh, move |state| {
            let room = claim(state, credit, limit);
            (room, room > 0)
        })
        .await
    }
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
}
