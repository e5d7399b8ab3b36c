//! The paying lane as the service sees it, and the units a handler reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use anchor_lang::prelude::Pubkey;

use crate::manifest::Price;
use crate::pricing;

/// The paying lane, as the service sees it (an axum `Extension<Payment>`).
#[derive(Clone, Debug)]
pub struct Payment {
    /// The lane the credential names: a Channel, or a Delegation.
    pub lane: Pubkey,
    /// The Channel the lane belongs to.
    pub channel: Pubkey,
    /// The delegate, when a delegate pays.
    pub delegate: Option<Pubkey>,
    /// Who funds the channel.
    pub funder: Pubkey,
    /// The token the channel pays in.
    pub mint: Pubkey,
    /// The credential's seq (above every seq the lane used before).
    pub seq: u64,
    /// The cumulative amount the credential signs.
    pub amount: u64,
    /// The price of the requested path.
    pub price: Price,
    /// Cumulative amount charged on the lane, this request's upfront price included.
    pub owed: u64,
    /// For a metered price: the most this request may be charged.
    pub allowance: Option<u64>,
    pub(crate) usage: Usage,
}

impl Payment {
    /// Reports units used, for a `per_token` price; may be called several
    /// times (they add up), also while the response body streams.
    pub fn report(&self, units: u64) {
        self.usage.add(units);
    }

    /// Units reported so far.
    pub fn reported(&self) -> u64 {
        self.usage.get()
    }

    /// Reports an amount to charge directly, for a `per_token` route whose
    /// tokens the handler prices itself (input and output tokens at their
    /// own rates, per model: [`Pricing::tokens`](crate::manifest::Pricing::tokens));
    /// it adds to what reported units cost. May be called several times.
    pub fn report_amount(&self, amount: u64) {
        self.usage.add_amount(amount);
    }

    /// What the request costs so far (reported units at the price, plus
    /// reported amounts), before the allowance caps it: a handler stops
    /// serving once it passes [`allowance`](Self::allowance).
    pub fn charged(&self) -> u64 {
        self.usage.cost(&self.price)
    }

    /// The last bytes a `per_token` event stream sends when the paywall cuts
    /// it because the lane cannot pay for more: an event in the stream's own
    /// format saying why (an OpenAI `error` chunk, an Anthropic `error`
    /// event), so that the client's library shows the reason. Without one,
    /// the body just ends in an error.
    pub fn set_cut_event(&self, event: Bytes) {
        *self
            .usage
            .0
            .cut_event
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(event);
    }

    /// Most units the allowance pays for (`None`: unlimited or not metered).
    /// Units beyond it are served free, so a handler should stop there.
    pub fn max_units(&self) -> Option<u64> {
        self.allowance
            .and_then(|allowance| pricing::units_for(&self.price, allowance))
    }
}

/// Units (and amounts) a handler reports for a `per_token` price, through
/// [`Payment::report`] and [`Payment::report_amount`]; shared with the
/// metered body that charges them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage(Arc<Counts>);

#[derive(Debug, Default)]
pub(crate) struct Counts {
    units: AtomicU64,
    amount: AtomicU64,
    cut_event: Mutex<Option<Bytes>>,
}

/// Saturating: a handler cannot wrap a count around to a small charge.
fn add_to(counter: &AtomicU64, value: u64) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
        Some(u.saturating_add(value))
    });
}

impl Usage {
    pub(crate) fn add(&self, units: u64) {
        add_to(&self.0.units, units);
    }

    pub(crate) fn add_amount(&self, amount: u64) {
        add_to(&self.0.amount, amount);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.units.load(Ordering::Acquire)
    }

    pub(crate) fn amount(&self) -> u64 {
        self.0.amount.load(Ordering::Acquire)
    }

    /// What was reported comes to at `price`: the units at the payee's
    /// rounding, plus the amounts, uncapped.
    pub(crate) fn cost(&self, price: &Price) -> u64 {
        pricing::cost(price, self.get(), pricing::Rounding::Up).saturating_add(self.amount())
    }

    pub(crate) fn take_cut_event(&self) -> Option<Bytes> {
        self.0
            .cut_event
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
