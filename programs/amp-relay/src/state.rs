use anchor_lang::prelude::*;

use crate::constants::BPS_DENOMINATOR;
use crate::error::RelayError;

/// A relay's terms and its books. The relay's token account holds the
/// operator's share (`operator_share`) plus whatever arrived since the last
/// split; every split forwards `share_bps` of the arrivals downstream and
/// credits the rest to the operator, so the books never depend on how the
/// tokens arrived (through `forward`, a direct `settle`, a refund, a gift).
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Relay {
    pub operator: Pubkey,
    /// The downstream channel (default until `open_downstream`).
    pub downstream: Pubkey,
    /// The authority's token account that receives and funds (set by `open_downstream`).
    pub token_account: Pubkey,
    /// Share of each arrival forwarded downstream.
    pub share_bps: u16,
    /// Tokens in `token_account` that belong to the operator.
    pub operator_share: u64,
    pub bump: u8,
    pub authority_bump: u8,
}

impl Relay {
    pub fn new(operator: Pubkey, share_bps: u16, bump: u8, authority_bump: u8) -> Result<Self> {
        require!(
            u64::from(share_bps) <= BPS_DENOMINATOR,
            RelayError::InvalidShare
        );
        Ok(Self {
            operator,
            downstream: Pubkey::default(),
            token_account: Pubkey::default(),
            share_bps,
            operator_share: 0,
            bump,
            authority_bump,
        })
    }

    /// What to forward out of `earned`, rounded down.
    pub fn share_of(&self, earned: u64) -> Result<u64> {
        let share = u128::from(earned)
            .checked_mul(u128::from(self.share_bps))
            .ok_or(RelayError::ArithmeticOverflow)?
            / u128::from(BPS_DENOMINATOR);
        u64::try_from(share).map_err(|_| error!(RelayError::ArithmeticOverflow))
    }

    /// Splits what arrived in the token account (now holding `balance`) since
    /// the last split: returns the share to forward, and credits the rest to
    /// the operator. When the downstream channel cannot take a top-up (not
    /// opened yet, closing or closed), the whole arrival is the operator's.
    pub fn split(&mut self, balance: u64, forwardable: bool) -> Result<u64> {
        let arrived = balance
            .checked_sub(self.operator_share)
            .ok_or(RelayError::ArithmeticOverflow)?;
        let share = if forwardable {
            self.share_of(arrived)?
        } else {
            0
        };
        let kept = arrived
            .checked_sub(share)
            .ok_or(RelayError::ArithmeticOverflow)?;
        self.operator_share = self
            .operator_share
            .checked_add(kept)
            .ok_or(RelayError::ArithmeticOverflow)?;
        Ok(share)
    }

    /// Takes `amount` out of the operator's share (a withdrawal, or the
    /// downstream channel's deposit, which is the operator's money).
    pub fn spend_operator_share(&mut self, amount: u64) -> Result<()> {
        self.operator_share = self
            .operator_share
            .checked_sub(amount)
            .ok_or(RelayError::InsufficientOperatorShare)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(share_bps: u16) -> Relay {
        Relay::new(Pubkey::default(), share_bps, 0, 0).unwrap()
    }

    #[test]
    fn shares_round_down_and_never_overflow() {
        assert_eq!(relay(2_500).share_of(1_000).unwrap(), 250);
        assert_eq!(relay(3_333).share_of(10).unwrap(), 3);
        assert_eq!(relay(10_000).share_of(u64::MAX).unwrap(), u64::MAX);
        assert_eq!(relay(0).share_of(u64::MAX).unwrap(), 0);
    }

    #[test]
    fn share_is_bounded() {
        assert_eq!(
            Relay::new(Pubkey::default(), 10_001, 0, 0).unwrap_err(),
            RelayError::InvalidShare.into()
        );
    }

    #[test]
    fn splits_only_what_arrived_since_the_last_split() {
        let mut r = relay(2_500);
        // 1,000 arrived: 250 goes on, 750 is the operator's.
        assert_eq!(r.split(1_000, true).unwrap(), 250);
        assert_eq!(r.operator_share, 750);
        // After the top-up the account holds 750; nothing new arrived.
        assert_eq!(r.split(750, true).unwrap(), 0);
        assert_eq!(r.operator_share, 750);
        // 400 more arrived (a direct settle, say).
        assert_eq!(r.split(1_150, true).unwrap(), 100);
        assert_eq!(r.operator_share, 1_050);
    }

    #[test]
    fn what_cannot_be_forwarded_is_the_operators() {
        let mut r = relay(2_500);
        assert_eq!(r.split(1_000, false).unwrap(), 0);
        assert_eq!(r.operator_share, 1_000);
    }

    #[test]
    fn the_operator_spends_at_most_its_share() {
        let mut r = relay(2_500);
        r.split(1_000, true).unwrap();
        r.spend_operator_share(700).unwrap();
        assert_eq!(
            r.spend_operator_share(51).unwrap_err(),
            RelayError::InsufficientOperatorShare.into()
        );
        r.spend_operator_share(50).unwrap();
        assert_eq!(r.operator_share, 0);
        // A balance below the operator's share means the books are broken.
        r.operator_share = 10;
        assert_eq!(
            r.split(9, true).unwrap_err(),
            RelayError::ArithmeticOverflow.into()
        );
    }
}
