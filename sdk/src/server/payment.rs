//! The paying lane as the service sees it, and the units a handler reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

    /// Most units the allowance pays for (`None`: unlimited or not metered).
    /// Units beyond it are served free, so a handler should stop there.
    pub fn max_units(&self) -> Option<u64> {
        self.allowance
            .and_then(|allowance| pricing::units_for(&self.price, allowance))
    }
}

/// Units a handler reports for a `per_token` price, through
/// [`Payment::report`]; shared with the metered body that charges them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage(Arc<AtomicU64>);

impl Usage {
    pub(crate) fn add(&self, units: u64) {
        // Saturating: a handler cannot wrap the count around to a small charge.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_add(units))
            });
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}
