use anchor_lang::prelude::*;

use super::{Channel, LaneStatus, LaneTerms};
use crate::error::AmpError;
use crate::voucher::Voucher;

/// A sub-agent's own lane on a channel: its key signs vouchers naming this
/// account, up to `cap`, which the funder deposited into the channel's vault
/// when delegating (so every delegate voucher within the cap is fully backed).
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub channel: Pubkey,
    /// Key whose vouchers pay from this lane.
    pub delegate: Pubkey,
    /// The most this lane may ever pay.
    pub cap: u64,
    /// Cumulative amount paid out on this lane.
    pub settled: u64,
    /// Slot of creation; part of every delegate voucher.
    pub generation: u64,
    /// Unix time at which the delegation counts as revoked; 0 = never.
    pub expires_at: i64,
    /// Unix time of the funder's revocation; 0 = none.
    pub revoke_requested_at: i64,
    pub bump: u8,
    /// Who fronted the account's rent at `delegate`; `close_delegation`
    /// returns it there. Last, so every earlier field keeps its offset.
    pub payer: Pubkey,
}

/// What the funder decides when delegating.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelegationTerms {
    pub delegate: Pubkey,
    /// Tokens deposited and reserved for the delegate.
    pub cap: u64,
    /// Unix time at which the delegation counts as revoked; 0 = never.
    pub expires_at: i64,
}

impl Delegation {
    /// Validates the terms against the channel (whose grace period the
    /// delegation shares) and builds the account state as `delegate` stores
    /// it; `payer` fronts the rent.
    pub fn new(
        address_of_channel: Pubkey,
        channel: &Channel,
        terms: DelegationTerms,
        payer: Pubkey,
        slot: u64,
        now: i64,
        bump: u8,
    ) -> Result<Self> {
        require!(terms.cap > 0, AmpError::ZeroAmount);
        // Otherwise the recipient could sign its own payments from the cap.
        require_keys_neq!(
            terms.delegate,
            channel.recipient,
            AmpError::RecipientCannotSign
        );
        require!(
            terms.expires_at == 0
                || (terms.expires_at > now
                    && terms
                        .expires_at
                        .checked_add(i64::from(channel.grace_period))
                        .is_some()),
            AmpError::InvalidExpiry
        );
        Ok(Self {
            channel: address_of_channel,
            delegate: terms.delegate,
            cap: terms.cap,
            settled: 0,
            generation: slot,
            expires_at: terms.expires_at,
            revoke_requested_at: 0,
            bump,
            payer,
        })
    }

    /// A delegation ends with its own revocation or expiry, or with its channel.
    pub fn status(&self, channel: &Channel, now: i64) -> LaneStatus {
        LaneStatus::at(
            self.revoke_requested_at,
            self.expires_at,
            channel.grace_period,
            now,
        )
        .earliest(channel.status(now))
    }

    /// What the delegate's lane gives back to the channel when it closes.
    pub fn unspent(&self) -> u64 {
        self.cap.saturating_sub(self.settled)
    }

    /// The rule the delegate's vouchers settle by (the delegation is at
    /// `address`; it ends with `channel`).
    pub fn lane<'a>(&self, address: &'a Pubkey, channel: &Channel, now: i64) -> LaneTerms<'a> {
        LaneTerms {
            address,
            generation: self.generation,
            settled: self.settled,
            limit: self.cap,
            over_limit: AmpError::VoucherExceedsCap,
            status: self.status(channel, now),
        }
    }

    /// Checks a verified delegate voucher and records its settlement; returns
    /// the amount to pay the recipient.
    pub fn settle(
        &mut self,
        address: &Pubkey,
        channel: &Channel,
        voucher: &Voucher,
        now: i64,
    ) -> Result<u64> {
        let amount = self.lane(address, channel, now).settlement(voucher, now)?;
        self.settled = voucher.cumulative;
        Ok(amount)
    }

    /// Starts the grace period after which the unspent cap returns to the channel.
    pub fn revoke(&mut self, channel: &Channel, now: i64) -> Result<i64> {
        // A closing channel ends its delegations with it: say that, not "revoked".
        require!(channel.status(now).is_open(), AmpError::ChannelClosing);
        match self.status(channel, now) {
            LaneStatus::Open => {
                self.revoke_requested_at = now;
                Ok(now.saturating_add(i64::from(channel.grace_period)))
            }
            _ => err!(AmpError::DelegationRevoked),
        }
    }

    /// The recipient may close a delegation at any time (giving up its
    /// unsettled delegate vouchers); anyone may once the grace period is over.
    /// Never in the creation slot, so a re-created delegation gets a new generation.
    pub fn check_close(
        &self,
        channel: &Channel,
        by_recipient: bool,
        slot: u64,
        now: i64,
    ) -> Result<()> {
        require!(slot > self.generation, AmpError::ChannelTooYoung);
        require!(
            by_recipient || self.status(channel, now).is_refundable(),
            AmpError::DelegationNotClosable
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ChannelTerms;

    const NOW: i64 = 1_700_000_000;
    const SLOT: u64 = 100;
    const GRACE: u32 = 600;

    fn channel() -> Channel {
        let mut c = Channel::new(
            ChannelTerms {
                funder: Pubkey::new_from_array([1; 32]),
                payer: Pubkey::new_from_array([1; 32]),
                recipient: Pubkey::new_from_array([2; 32]),
                mint: Pubkey::new_from_array([3; 32]),
                authorized_signer: Pubkey::new_from_array([1; 32]),
                nonce: 1,
                deposit: 1_000,
                grace_period: GRACE,
                expires_at: 0,
            },
            SLOT,
            NOW,
            0,
            0,
        )
        .unwrap();
        c.add_delegation(400, NOW).unwrap();
        c
    }

    fn address() -> Pubkey {
        Pubkey::new_from_array([8; 32])
    }

    fn delegation() -> Delegation {
        let terms = DelegationTerms {
            delegate: Pubkey::new_from_array([5; 32]),
            cap: 400,
            expires_at: 0,
        };
        Delegation::new(
            Pubkey::new_from_array([9; 32]),
            &channel(),
            terms,
            Pubkey::new_from_array([6; 32]),
            SLOT + 1,
            NOW,
            0,
        )
        .unwrap()
    }

    fn voucher(cumulative: u64) -> Voucher {
        Voucher {
            lane: address(),
            generation: SLOT + 1,
            seq: 1,
            cumulative,
            expires_at: 0,
        }
    }

    #[test]
    fn delegating_deposits_and_reserves_the_cap() {
        let c = channel();
        assert_eq!((c.deposited, c.delegated, c.delegations), (1_400, 400, 1));
        // The own lane keeps exactly its original backing.
        assert_eq!(c.own_lane_limit(), 1_000);
    }

    #[test]
    fn terms_are_validated() {
        let c = channel();
        let terms = |cap, expires_at| DelegationTerms {
            delegate: Pubkey::default(),
            cap,
            expires_at,
        };
        let new = |t| Delegation::new(Pubkey::default(), &c, t, Pubkey::default(), SLOT, NOW, 0);
        assert_eq!(new(terms(0, 0)).unwrap_err(), AmpError::ZeroAmount.into());
        assert_eq!(
            new(terms(1, NOW)).unwrap_err(),
            AmpError::InvalidExpiry.into()
        );
        assert_eq!(
            new(terms(1, i64::MAX)).unwrap_err(),
            AmpError::InvalidExpiry.into()
        );
        assert_eq!(new(terms(1, NOW + 1)).unwrap().expires_at, NOW + 1);
        let recipient_as_delegate = DelegationTerms {
            delegate: c.recipient,
            ..terms(1, 0)
        };
        assert_eq!(
            new(recipient_as_delegate).unwrap_err(),
            AmpError::RecipientCannotSign.into()
        );
    }

    #[test]
    fn revoking_on_a_closing_channel_says_the_channel_is_closing() {
        let mut c = channel();
        let mut d = delegation();
        c.request_close(NOW).unwrap();
        let before = d.clone();
        for now in [NOW, NOW + i64::from(GRACE)] {
            assert_eq!(
                d.revoke(&c, now).unwrap_err(),
                AmpError::ChannelClosing.into()
            );
        }
        assert_eq!(d, before);
    }

    #[test]
    fn settles_up_to_the_cap() {
        let c = channel();
        let mut d = delegation();
        assert_eq!(d.settle(&address(), &c, &voucher(150), NOW).unwrap(), 150);
        assert_eq!(d.settle(&address(), &c, &voucher(400), NOW).unwrap(), 250);
        let before = d.clone();
        assert_eq!(
            d.settle(&address(), &c, &voucher(401), NOW).unwrap_err(),
            AmpError::VoucherExceedsCap.into()
        );
        assert_eq!(d, before);
    }

    #[test]
    fn revocation_keeps_vouchers_settleable_through_grace() {
        let c = channel();
        let mut d = delegation();
        assert_eq!(d.revoke(&c, NOW).unwrap(), NOW + i64::from(GRACE));
        assert_eq!(
            d.revoke(&c, NOW + 1).unwrap_err(),
            AmpError::DelegationRevoked.into()
        );
        let mut expiring = Delegation {
            expires_at: NOW + 10,
            ..delegation()
        };
        assert_eq!(
            expiring.revoke(&c, NOW + 10).unwrap_err(),
            AmpError::DelegationRevoked.into()
        );
        assert_eq!(
            d.settle(&address(), &c, &voucher(10), NOW + i64::from(GRACE) - 1)
                .unwrap(),
            10
        );
        assert_eq!(
            d.settle(&address(), &c, &voucher(20), NOW + i64::from(GRACE))
                .unwrap_err(),
            AmpError::GracePeriodEnded.into()
        );
        assert_eq!(
            d.check_close(&c, false, SLOT + 5, NOW + i64::from(GRACE) - 1)
                .unwrap_err(),
            AmpError::DelegationNotClosable.into()
        );
        d.check_close(&c, false, SLOT + 5, NOW + i64::from(GRACE))
            .unwrap();
        assert_eq!(d.unspent(), 390);
    }

    #[test]
    fn ends_with_its_channel() {
        let mut c = channel();
        let d = delegation();
        c.request_close(NOW).unwrap();
        assert_eq!(
            d.status(&c, NOW),
            LaneStatus::Closing {
                refundable_at: NOW + i64::from(GRACE)
            }
        );
        assert!(d.status(&c, NOW + i64::from(GRACE)).is_refundable());
    }

    #[test]
    fn recipient_closes_any_time_but_not_in_the_creation_slot() {
        let c = channel();
        let d = delegation();
        d.check_close(&c, true, SLOT + 2, NOW).unwrap();
        assert_eq!(
            d.check_close(&c, true, SLOT + 1, NOW).unwrap_err(),
            AmpError::ChannelTooYoung.into()
        );
        assert_eq!(
            d.check_close(&c, false, SLOT + 2, NOW).unwrap_err(),
            AmpError::DelegationNotClosable.into()
        );
    }

    #[test]
    fn releasing_returns_the_unspent_cap_to_the_own_lane() {
        let mut c = channel();
        let mut d = delegation();
        d.settle(&address(), &c, &voucher(100), NOW).unwrap();
        c.release_delegation(d.unspent()).unwrap();
        assert_eq!((c.delegated, c.delegations), (100, 0));
        assert_eq!(c.own_lane_limit(), 1_300);
        c.check_close(SLOT + 1).unwrap();
    }
}
