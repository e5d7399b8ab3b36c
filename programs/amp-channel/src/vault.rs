//! Token movements out of a channel's vault, signed by the Channel PDA.

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{
    self, CloseAccount, Mint, TokenAccount, TokenInterface, TransferChecked,
};

use crate::state::Channel;

/// The accounts every vault movement needs.
pub struct ChannelVault<'a, 'info> {
    pub channel: &'a Account<'info, Channel>,
    pub vault: &'a InterfaceAccount<'info, TokenAccount>,
    pub mint: &'a InterfaceAccount<'info, Mint>,
    pub token_program: &'a Interface<'info, TokenInterface>,
}

impl<'info> ChannelVault<'_, 'info> {
    /// Pays `amount` from the vault to `to` (skipped when zero).
    pub fn pay(&self, to: AccountInfo<'info>, amount: u64) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let accounts = TransferChecked {
            from: self.vault.to_account_info(),
            mint: self.mint.to_account_info(),
            to,
            authority: self.channel.to_account_info(),
        };
        self.as_channel(|signer| {
            token_interface::transfer_checked(
                CpiContext::new_with_signer(self.token_program.key(), accounts, signer),
                amount,
                self.mint.decimals,
            )
        })
    }

    /// Closes the (emptied) vault, returning its rent to `rent_to`.
    pub fn close(&self, rent_to: AccountInfo<'info>) -> Result<()> {
        let accounts = CloseAccount {
            account: self.vault.to_account_info(),
            destination: rent_to,
            authority: self.channel.to_account_info(),
        };
        self.as_channel(|signer| {
            token_interface::close_account(CpiContext::new_with_signer(
                self.token_program.key(),
                accounts,
                signer,
            ))
        })
    }

    /// Runs a CPI signed by the Channel PDA (with its stored bump).
    fn as_channel<R>(&self, cpi: impl FnOnce(&[&[&[u8]]]) -> Result<R>) -> Result<R> {
        let nonce = self.channel.nonce.to_le_bytes();
        let bump = [self.channel.bump];
        let seeds = self.channel.signer_seeds(&nonce, &bump);
        cpi(&[&seeds])
    }
}

/// Moves `amount` from the funder's token account into the vault, signed by the funder.
pub fn deposit<'info>(
    token_program: &Interface<'info, TokenInterface>,
    mint: &InterfaceAccount<'info, Mint>,
    from: &InterfaceAccount<'info, TokenAccount>,
    vault: &AccountInfo<'info>,
    funder: &Signer<'info>,
    amount: u64,
) -> Result<()> {
    token_interface::transfer_checked(
        CpiContext::new(
            token_program.key(),
            TransferChecked {
                from: from.to_account_info(),
                mint: mint.to_account_info(),
                to: vault.clone(),
                authority: funder.to_account_info(),
            },
        ),
        amount,
        mint.decimals,
    )
}

impl<'info> ChannelVault<'_, 'info> {
    /// Pays everything left in the vault (`remaining`, donations included) to
    /// the funder's token account, then closes the vault with its rent to the funder.
    pub fn refund_and_close(
        &self,
        remaining: u64,
        funder_token: AccountInfo<'info>,
        funder: AccountInfo<'info>,
    ) -> Result<()> {
        self.pay(funder_token, remaining)?;
        self.close(funder)
    }
}
