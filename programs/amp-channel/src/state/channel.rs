use anchor_lang::prelude::*;

use super::{LaneStatus, LaneTerms};
use crate::constants::{CHANNEL_SEED, MAX_GRACE_PERIOD, MIN_GRACE_PERIOD};
use crate::error::AmpError;
use crate::voucher::Voucher;

/// A unidirectional payment channel from `funder` to `recipient` in one mint.
///
/// Whether it is closing is derived from `close_requested_at` and `expires_at`
/// rather than stored, so the two can never disagree.
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Channel {
    pub funder: Pubkey,
    pub recipient: Pubkey,
    pub mint: Pubkey,
    /// Key whose vouchers pay from this channel (the funder, or a hot key).
    pub authorized_signer: Pubkey,
    /// Client-chosen seed; lets one funder hold many channels to one recipient.
    pub nonce: u64,
    /// Slot of creation; part of every voucher, so earlier incarnations' die.
    pub generation: u64,
    /// Total ever deposited.
    pub deposited: u64,
    /// Total ever paid out through the funder's own lane (its best voucher settled).
    pub settled: u64,
    /// Part of `deposited` reserved for delegations: every live delegation's
    /// cap plus what closed delegations spent. The own lane pays at most
    /// `deposited - delegated`.
    pub delegated: u64,
    /// Live Delegation accounts; the channel closes only when none is left.
    pub delegations: u16,
    /// Unix time of the funder's close request; 0 = none.
    pub close_requested_at: i64,
    /// Unix time at which the channel counts as close-requested; 0 = never.
    pub expires_at: i64,
    /// Seconds between a close request (or expiry) and the funder's refund.
    pub grace_period: u32,
    pub bump: u8,
    pub vault_bump: u8,
    /// Who fronted both accounts' rent at `open` (the funder, or a sponsor
    /// such as the service); every closing path returns the rent to it.
    /// Last, so every earlier field keeps its offset.
    pub payer: Pubkey,
}

// Every byte is rent the payer fronts: the size goal is checked at compile time.
const _: () = assert!(8 + Channel::INIT_SPACE <= crate::constants::MAX_CHANNEL_ACCOUNT_LEN);

/// Arguments that fix a channel's terms at `open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelTerms {
    pub funder: Pubkey,
    /// Who pays the rent (and gets it back); the funder unless sponsored.
    pub payer: Pubkey,
    pub recipient: Pubkey,
    pub mint: Pubkey,
    pub authorized_signer: Pubkey,
    pub nonce: u64,
    pub deposit: u64,
    pub grace_period: u32,
    pub expires_at: i64,
}

impl Channel {
    /// Validates the terms and builds the account state as `open` stores it.
    pub fn new(terms: ChannelTerms, slot: u64, now: i64, bump: u8, vault_bump: u8) -> Result<Self> {
        require!(terms.deposit > 0, AmpError::ZeroAmount);
        require_keys_neq!(terms.funder, terms.recipient, AmpError::SelfChannel);
        // Otherwise the recipient could sign its own payments from the deposit.
        require_keys_neq!(
            terms.authorized_signer,
            terms.recipient,
            AmpError::RecipientCannotSign
        );
        require!(
            (MIN_GRACE_PERIOD..=MAX_GRACE_PERIOD).contains(&terms.grace_period),
            AmpError::InvalidGracePeriod
        );
        // The refund deadline `expires_at + grace_period` must be representable.
        require!(
            terms.expires_at == 0
                || (terms.expires_at > now
                    && terms
                        .expires_at
                        .checked_add(i64::from(terms.grace_period))
                        .is_some()),
            AmpError::InvalidExpiry
        );
        Ok(Self {
            funder: terms.funder,
            recipient: terms.recipient,
            mint: terms.mint,
            authorized_signer: terms.authorized_signer,
            nonce: terms.nonce,
            generation: slot,
            deposited: terms.deposit,
            settled: 0,
            delegated: 0,
            delegations: 0,
            close_requested_at: 0,
            expires_at: terms.expires_at,
            grace_period: terms.grace_period,
            bump,
            vault_bump,
            payer: terms.payer,
        })
    }

    /// The seeds the Channel PDA signs with (for the vault's token CPIs).
    pub fn signer_seeds<'a>(&'a self, nonce: &'a [u8; 8], bump: &'a [u8; 1]) -> [&'a [u8]; 5] {
        [
            CHANNEL_SEED,
            self.funder.as_ref(),
            self.recipient.as_ref(),
            nonce,
            bump,
        ]
    }

    pub fn status(&self, now: i64) -> LaneStatus {
        LaneStatus::at(
            self.close_requested_at,
            self.expires_at,
            self.grace_period,
            now,
        )
    }

    /// The most the funder's own lane can ever pay: the deposit not reserved
    /// for delegations.
    pub fn own_lane_limit(&self) -> u64 {
        self.deposited.saturating_sub(self.delegated)
    }

    /// What the own lane can still pay.
    pub fn own_lane_remaining(&self) -> u64 {
        self.own_lane_limit().saturating_sub(self.settled)
    }

    pub fn top_up(&mut self, amount: u64, now: i64) -> Result<()> {
        require!(amount > 0, AmpError::ZeroAmount);
        require!(self.status(now).is_open(), AmpError::ChannelClosing);
        self.deposited = self
            .deposited
            .checked_add(amount)
            .ok_or(AmpError::ArithmeticOverflow)?;
        Ok(())
    }

    /// Starts the grace period; returns when the funder may take the refund.
    pub fn request_close(&mut self, now: i64) -> Result<i64> {
        require!(self.status(now).is_open(), AmpError::ChannelClosing);
        self.close_requested_at = now;
        Ok(now.saturating_add(i64::from(self.grace_period)))
    }

    /// The rule the own lane's vouchers settle by.
    pub fn own_lane<'a>(&self, channel: &'a Pubkey, now: i64) -> LaneTerms<'a> {
        LaneTerms {
            address: channel,
            generation: self.generation,
            settled: self.settled,
            limit: self.own_lane_limit(),
            over_limit: AmpError::VoucherExceedsDeposit,
            status: self.status(now),
        }
    }

    /// Checks a verified voucher for this channel's own lane and records its
    /// settlement; returns the amount to pay the recipient.
    pub fn settle(&mut self, channel: &Pubkey, voucher: &Voucher, now: i64) -> Result<u64> {
        let amount = self.own_lane(channel, now).settlement(voucher, now)?;
        self.settled = voucher.cumulative;
        Ok(amount)
    }

    /// As [`Channel::settle`] for the final voucher of a cooperative close,
    /// which pays nothing when it was settled exactly already
    /// ([`LaneTerms::final_settlement`]).
    pub fn settle_final(&mut self, channel: &Pubkey, voucher: &Voucher, now: i64) -> Result<u64> {
        let amount = self.own_lane(channel, now).final_settlement(voucher, now)?;
        self.settled = voucher.cumulative;
        Ok(amount)
    }

    /// Reserves `cap` freshly deposited tokens for a new delegation.
    pub fn add_delegation(&mut self, cap: u64, now: i64) -> Result<()> {
        self.top_up(cap, now)?;
        self.delegated = self
            .delegated
            .checked_add(cap)
            .ok_or(AmpError::ArithmeticOverflow)?;
        self.delegations = self
            .delegations
            .checked_add(1)
            .ok_or(AmpError::ArithmeticOverflow)?;
        Ok(())
    }

    /// Returns a closed delegation's unspent cap to the own lane.
    pub fn release_delegation(&mut self, unspent: u64) -> Result<()> {
        self.delegated = self
            .delegated
            .checked_sub(unspent)
            .ok_or(AmpError::ArithmeticOverflow)?;
        self.delegations = self
            .delegations
            .checked_sub(1)
            .ok_or(AmpError::ArithmeticOverflow)?;
        Ok(())
    }

    /// The recipient may close at any time except in the creation slot: a
    /// channel re-opened at the same address then always gets a new generation.
    /// Every delegation must be closed first, so that no account is stranded.
    pub fn check_close(&self, slot: u64) -> Result<()> {
        require!(slot > self.generation, AmpError::ChannelTooYoung);
        require!(self.delegations == 0, AmpError::DelegationsOutstanding);
        Ok(())
    }

    /// Anyone may refund once the grace period after a close request or expiry is over.
    pub fn check_refund(&self, slot: u64, now: i64) -> Result<()> {
        match self.status(now) {
            LaneStatus::Open => err!(AmpError::CloseNotRequested),
            LaneStatus::Closing { .. } => err!(AmpError::GracePeriodNotOver),
            LaneStatus::Refundable => self.check_close(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::MAX_CHANNEL_ACCOUNT_LEN;

    const NOW: i64 = 1_700_000_000;
    const SLOT: u64 = 100;

    fn terms() -> ChannelTerms {
        ChannelTerms {
            funder: Pubkey::new_from_array([1; 32]),
            payer: Pubkey::new_from_array([4; 32]),
            recipient: Pubkey::new_from_array([2; 32]),
            mint: Pubkey::new_from_array([3; 32]),
            authorized_signer: Pubkey::new_from_array([1; 32]),
            nonce: 7,
            deposit: 1_000,
            grace_period: 3_600,
            expires_at: 0,
        }
    }

    fn channel() -> Channel {
        Channel::new(terms(), SLOT, NOW, 255, 254).unwrap()
    }

    fn lane() -> Pubkey {
        Pubkey::new_from_array([9; 32])
    }

    fn voucher(cumulative: u64) -> Voucher {
        Voucher {
            lane: lane(),
            generation: SLOT,
            seq: 1,
            cumulative,
            expires_at: 0,
        }
    }

    #[test]
    fn account_fits_the_size_goal() {
        assert_eq!(8 + Channel::INIT_SPACE, MAX_CHANNEL_ACCOUNT_LEN);
    }

    #[test]
    fn new_validates_terms() {
        let bad = |f: fn(&mut ChannelTerms), e: AmpError| {
            let mut t = terms();
            f(&mut t);
            assert_eq!(Channel::new(t, SLOT, NOW, 0, 0).unwrap_err(), e.into());
        };
        bad(|t| t.deposit = 0, AmpError::ZeroAmount);
        bad(
            |t| t.grace_period = MIN_GRACE_PERIOD - 1,
            AmpError::InvalidGracePeriod,
        );
        bad(
            |t| t.grace_period = MAX_GRACE_PERIOD + 1,
            AmpError::InvalidGracePeriod,
        );
        bad(|t| t.expires_at = NOW, AmpError::InvalidExpiry);
        bad(|t| t.expires_at = -1, AmpError::InvalidExpiry);
        bad(|t| t.expires_at = i64::MAX, AmpError::InvalidExpiry);
        bad(
            |t| t.authorized_signer = t.recipient,
            AmpError::RecipientCannotSign,
        );
        let mut t = terms();
        t.grace_period = MIN_GRACE_PERIOD;
        t.expires_at = NOW + 1;
        let c = Channel::new(t, SLOT, NOW, 1, 2).unwrap();
        assert_eq!((c.generation, c.deposited, c.settled), (SLOT, 1_000, 0));
        assert_eq!((c.bump, c.vault_bump), (1, 2));
        assert_eq!(c.payer, t.payer);
    }

    #[test]
    fn settles_increments_only() {
        let mut c = channel();
        assert_eq!(c.settle(&lane(), &voucher(300), NOW).unwrap(), 300);
        assert_eq!(c.settle(&lane(), &voucher(1_000), NOW).unwrap(), 700);
        assert_eq!(c.settled, 1_000);
        assert_eq!(
            c.settle(&lane(), &voucher(1_000), NOW).unwrap_err(),
            AmpError::StaleVoucher.into()
        );
    }

    #[test]
    fn a_final_voucher_settled_exactly_already_pays_nothing() {
        let mut c = channel();
        assert_eq!(c.settle(&lane(), &voucher(300), NOW).unwrap(), 300);
        // Someone settled the final voucher first: the close goes on.
        assert_eq!(c.settle_final(&lane(), &voucher(300), NOW).unwrap(), 0);
        assert_eq!(c.settle_final(&lane(), &voucher(500), NOW).unwrap(), 200);
        assert_eq!(c.settled, 500);
        let before = c.clone();
        // Anything else is refused as by `settle`.
        let refused = [
            (voucher(499), AmpError::StaleVoucher),
            (
                Voucher {
                    lane: Pubkey::default(),
                    ..voucher(500)
                },
                AmpError::WrongLane,
            ),
            (
                Voucher {
                    generation: SLOT + 1,
                    ..voucher(500)
                },
                AmpError::WrongGeneration,
            ),
        ];
        for (v, e) in refused {
            assert_eq!(c.settle_final(&lane(), &v, NOW).unwrap_err(), e.into());
            assert_eq!(c, before);
        }
    }

    #[test]
    fn settle_refusals_leave_state_unchanged() {
        let c0 = {
            let mut c = channel();
            c.settle(&lane(), &voucher(100), NOW).unwrap();
            c
        };
        let cases: Vec<(Voucher, i64, AmpError)> = vec![
            (
                Voucher {
                    lane: Pubkey::default(),
                    ..voucher(200)
                },
                NOW,
                AmpError::WrongLane,
            ),
            (
                Voucher {
                    generation: SLOT + 1,
                    ..voucher(200)
                },
                NOW,
                AmpError::WrongGeneration,
            ),
            (
                Voucher {
                    expires_at: NOW,
                    ..voucher(200)
                },
                NOW,
                AmpError::VoucherExpired,
            ),
            (voucher(100), NOW, AmpError::StaleVoucher),
            (voucher(50), NOW, AmpError::StaleVoucher),
            (voucher(1_001), NOW, AmpError::VoucherExceedsDeposit),
            (voucher(u64::MAX), NOW, AmpError::VoucherExceedsDeposit),
        ];
        for (v, now, e) in cases {
            let mut c = c0.clone();
            assert_eq!(c.settle(&lane(), &v, now).unwrap_err(), e.into(), "{v:?}");
            assert_eq!(c, c0);
        }
    }

    #[test]
    fn grace_period_after_close_request() {
        let mut c = channel();
        assert_eq!(c.request_close(NOW).unwrap(), NOW + 3_600);
        assert_eq!(
            c.status(NOW),
            LaneStatus::Closing {
                refundable_at: NOW + 3_600
            }
        );
        assert_eq!(
            c.request_close(NOW + 1).unwrap_err(),
            AmpError::ChannelClosing.into()
        );
        assert_eq!(
            c.top_up(1, NOW + 1).unwrap_err(),
            AmpError::ChannelClosing.into()
        );
        // Settling works until the last second of grace, and not after.
        assert_eq!(c.settle(&lane(), &voucher(10), NOW + 3_599).unwrap(), 10);
        assert_eq!(
            c.settle(&lane(), &voucher(20), NOW + 3_600).unwrap_err(),
            AmpError::GracePeriodEnded.into()
        );
        assert_eq!(
            c.check_refund(SLOT + 1, NOW + 3_599).unwrap_err(),
            AmpError::GracePeriodNotOver.into()
        );
        c.check_refund(SLOT + 1, NOW + 3_600).unwrap();
    }

    #[test]
    fn expiry_counts_as_a_close_request() {
        let mut t = terms();
        t.expires_at = NOW + 100;
        let mut c = Channel::new(t, SLOT, NOW, 0, 0).unwrap();
        assert_eq!(c.status(NOW + 99), LaneStatus::Open);
        assert_eq!(
            c.status(NOW + 100),
            LaneStatus::Closing {
                refundable_at: NOW + 3_700
            }
        );
        assert_eq!(
            c.top_up(1, NOW + 100).unwrap_err(),
            AmpError::ChannelClosing.into()
        );
        assert_eq!(
            c.check_refund(SLOT + 1, NOW + 3_699).unwrap_err(),
            AmpError::GracePeriodNotOver.into()
        );
        c.check_refund(SLOT + 1, NOW + 3_700).unwrap();
        // A request before expiry wins when it is earlier.
        let mut c = Channel::new(t, SLOT, NOW, 0, 0).unwrap();
        c.request_close(NOW + 10).unwrap();
        assert_eq!(c.status(NOW + 3_610), LaneStatus::Refundable);
    }

    #[test]
    fn refund_needs_a_close_request() {
        let c = channel();
        assert_eq!(
            c.check_refund(SLOT + 1, i64::MAX).unwrap_err(),
            AmpError::CloseNotRequested.into()
        );
    }

    #[test]
    fn never_closes_in_its_creation_slot() {
        let mut c = channel();
        assert_eq!(
            c.check_close(SLOT).unwrap_err(),
            AmpError::ChannelTooYoung.into()
        );
        c.check_close(SLOT + 1).unwrap();
        c.request_close(NOW).unwrap();
        assert_eq!(
            c.check_refund(SLOT, NOW + 3_600).unwrap_err(),
            AmpError::ChannelTooYoung.into()
        );
    }

    #[test]
    fn top_up_is_checked() {
        let mut c = channel();
        assert_eq!(c.top_up(0, NOW).unwrap_err(), AmpError::ZeroAmount.into());
        c.top_up(500, NOW).unwrap();
        assert_eq!(c.deposited, 1_500);
        assert_eq!(
            c.top_up(u64::MAX, NOW).unwrap_err(),
            AmpError::ArithmeticOverflow.into()
        );
        assert_eq!(c.deposited, 1_500);
    }
}
