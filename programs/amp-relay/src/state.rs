use anchor_lang::prelude::*;

use crate::constants::BPS_DENOMINATOR;
use crate::error::RelayError;

#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct Relay {
    pub operator: Pubkey,
    /// The downstream channel (default until `open_downstream`).
    pub downstream: Pubkey,
    /// Share of each upstream settlement forwarded downstream.
    pub share_bps: u16,
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
            share_bps,
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
}
