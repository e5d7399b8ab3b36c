//! The lifecycle every lane shares, the channel's own and each delegation's:
//! open, then closing from a close request or expiry (whichever is earlier)
//! for one grace period, then refundable.

use anchor_lang::prelude::*;

use crate::error::AmpError;
use crate::voucher::Voucher;

/// Where a lane stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneStatus {
    /// Vouchers settle; deposits and delegations may be added.
    Open,
    /// Close requested or expired: vouchers still settle until `refundable_at`.
    Closing { refundable_at: i64 },
    /// The grace period is over: vouchers are dead, the rest goes back to the funder.
    Refundable,
}

impl LaneStatus {
    /// The status of a lane whose close was requested at `requested_at`
    /// (0 = never) and which expires at `expires_at` (0 = never).
    pub fn at(requested_at: i64, expires_at: i64, grace_period: u32, now: i64) -> Self {
        let requested = (requested_at != 0).then_some(requested_at);
        let expired = (expires_at != 0 && now >= expires_at).then_some(expires_at);
        let started = match (requested, expired) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return Self::Open,
        };
        // `open` and `delegate` bound expiries so that this cannot overflow,
        // and a request time is a clock reading; saturate regardless.
        let refundable_at = started.saturating_add(i64::from(grace_period));
        if now >= refundable_at {
            Self::Refundable
        } else {
            Self::Closing { refundable_at }
        }
    }

    /// The status of a lane that ends when either of two lanes ends (a
    /// delegation ends with its channel): the further-advanced of the two.
    pub fn earliest(self, other: Self) -> Self {
        match (self, other) {
            (Self::Refundable, _) | (_, Self::Refundable) => Self::Refundable,
            (Self::Closing { refundable_at: a }, Self::Closing { refundable_at: b }) => {
                Self::Closing {
                    refundable_at: a.min(b),
                }
            }
            (closing @ Self::Closing { .. }, Self::Open) | (Self::Open, closing) => closing,
        }
    }

    pub fn is_open(self) -> bool {
        self == Self::Open
    }

    pub fn is_refundable(self) -> bool {
        self == Self::Refundable
    }
}

/// What a lane's account says about the vouchers it honours.
pub struct LaneTerms<'a> {
    /// The address vouchers must name.
    pub address: &'a Pubkey,
    pub generation: u64,
    /// Cumulative amount already paid out on this lane.
    pub settled: u64,
    /// The most the lane may ever pay in total.
    pub limit: u64,
    /// The error for a voucher above `limit`.
    pub over_limit: AmpError,
    pub status: LaneStatus,
}

impl LaneTerms<'_> {
    /// Checks a verified voucher against the lane and returns what settling
    /// it pays: the increase of its cumulative amount over `settled`.
    pub fn settlement(&self, voucher: &Voucher, now: i64) -> Result<u64> {
        require!(!self.status.is_refundable(), AmpError::GracePeriodEnded);
        require_keys_eq!(voucher.lane, *self.address, AmpError::WrongLane);
        require!(
            voucher.generation == self.generation,
            AmpError::WrongGeneration
        );
        require!(!voucher.is_expired(now), AmpError::VoucherExpired);
        require!(voucher.cumulative > self.settled, AmpError::StaleVoucher);
        if voucher.cumulative > self.limit {
            return Err(self.over_limit.into());
        }
        Ok(voucher
            .cumulative
            .checked_sub(self.settled)
            .ok_or(AmpError::ArithmeticOverflow)?)
    }

    /// As [`LaneTerms::settlement`], except that a voucher of this lane
    /// already settled exactly pays nothing instead of failing: a final
    /// voucher may have been settled by anyone before the close lands.
    pub fn final_settlement(&self, voucher: &Voucher, now: i64) -> Result<u64> {
        let settled_exactly = voucher.lane == *self.address
            && voucher.generation == self.generation
            && voucher.cumulative == self.settled;
        if settled_exactly {
            return Ok(0);
        }
        self.settlement(voucher, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_until_requested_or_expired() {
        assert_eq!(LaneStatus::at(0, 0, 60, i64::MAX), LaneStatus::Open);
        assert_eq!(LaneStatus::at(0, 100, 60, 99), LaneStatus::Open);
        assert_eq!(
            LaneStatus::at(0, 100, 60, 100),
            LaneStatus::Closing { refundable_at: 160 }
        );
        assert_eq!(
            LaneStatus::at(50, 0, 60, 50),
            LaneStatus::Closing { refundable_at: 110 }
        );
        assert_eq!(LaneStatus::at(50, 0, 60, 110), LaneStatus::Refundable);
    }

    #[test]
    fn the_earlier_of_request_and_expiry_counts() {
        assert_eq!(
            LaneStatus::at(50, 80, 60, 90),
            LaneStatus::Closing { refundable_at: 110 }
        );
        assert_eq!(
            LaneStatus::at(90, 80, 60, 90),
            LaneStatus::Closing { refundable_at: 140 }
        );
        // An expiry in the future does not shorten a request's grace.
        assert_eq!(
            LaneStatus::at(50, 200, 60, 100),
            LaneStatus::Closing { refundable_at: 110 }
        );
    }

    #[test]
    fn earliest_takes_the_further_advanced() {
        use LaneStatus::*;
        let c = |t| Closing { refundable_at: t };
        assert_eq!(Open.earliest(Open), Open);
        assert_eq!(Open.earliest(c(5)), c(5));
        assert_eq!(c(7).earliest(Open), c(7));
        assert_eq!(c(7).earliest(c(5)), c(5));
        assert_eq!(c(7).earliest(Refundable), Refundable);
        assert_eq!(Refundable.earliest(Open), Refundable);
    }
}
