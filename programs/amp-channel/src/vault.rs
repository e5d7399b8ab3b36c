//! Token movements out of a channel's vault, signed by the Channel PDA.

use anchor_lang::prelude::*;
use anchor_lang::CheckOwner;
use anchor_spl::token_interface::{
    self, CloseAccount, Mint, TokenAccount, TokenInterface, TransferChecked,
};

use crate::error::AmpError;
use crate::mint::check_not_cpi_guarded;
use crate::state::Channel;

/// The accounts every vault movement needs. The mint is passed to the
/// movements that need it: closing an empty vault does not, and at `close` and
/// `refund` the mint may have been closed already.
pub struct ChannelVault<'a, 'info> {
    pub channel: &'a Account<'info, Channel>,
    pub vault: &'a InterfaceAccount<'info, TokenAccount>,
    pub token_program: &'a Interface<'info, TokenInterface>,
}

impl<'info> ChannelVault<'_, 'info> {
    /// Pays `amount` of `mint` from the vault to `to` (skipped when zero).
    pub fn pay(&self, mint: &LiveMint<'info>, to: AccountInfo<'info>, amount: u64) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let accounts = TransferChecked {
            from: self.vault.to_account_info(),
            mint: mint.account.clone(),
            to,
            authority: self.channel.to_account_info(),
        };
        self.as_channel(|signer| {
            token_interface::transfer_checked(
                CpiContext::new_with_signer(self.token_program.key(), accounts, signer),
                amount,
                mint.decimals,
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
    check_not_cpi_guarded(&from.to_account_info())?;
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

/// A live mint, as a transfer out of the vault needs it.
pub struct LiveMint<'info> {
    pub account: AccountInfo<'info>,
    pub decimals: u8,
}

impl<'info> LiveMint<'info> {
    pub fn of(mint: &InterfaceAccount<'info, Mint>) -> Self {
        Self {
            account: mint.to_account_info(),
            decimals: mint.decimals,
        }
    }

    /// The channel's mint as `close` and `refund` take it: live, or `None`
    /// when it has been closed. A closed mint had no supply, so the vault is
    /// empty and only the accounts' rent is left to return; the channel must
    /// still close (SPEC safety property 4).
    pub fn read(mint: &AccountInfo<'info>, token_program: &Pubkey) -> Result<Option<Self>> {
        if mint.owner == token_program {
            let data = mint.try_borrow_data()?;
            let state = Mint::try_deserialize(&mut &data[..])?;
            return Ok(Some(Self {
                account: mint.clone(),
                decimals: state.decimals,
            }));
        }
        let closed = *mint.owner == anchor_lang::system_program::ID && mint.data_is_empty();
        require!(closed, AmpError::WrongTokenProgram);
        Ok(None)
    }
}

/// A token account passed unchecked (see `close` and `refund`), checked
/// where tokens are paid into it: it must belong to `owner` and hold `mint`.
pub fn token_account_of<'info>(
    account: &AccountInfo<'info>,
    owner: &Pubkey,
    mint: &Pubkey,
    not_owned: AmpError,
) -> Result<AccountInfo<'info>> {
    TokenAccount::check_owner(account.owner).map_err(|_| error!(not_owned))?;
    let state = {
        let data = account.try_borrow_data()?;
        TokenAccount::try_deserialize(&mut &data[..]).map_err(|_| error!(not_owned))?
    };
    require_keys_eq!(state.owner, *owner, not_owned);
    require_keys_eq!(state.mint, *mint, AmpError::WrongMint);
    Ok(account.clone())
}

impl<'info> ChannelVault<'_, 'info> {
    /// Pays everything left in the vault (donations included) to the funder's
    /// token account, then closes the vault with its rent to `rent_to`;
    /// returns what was refunded. An empty vault needs neither a live mint nor
    /// a funder token account, so a channel whose mint is gone still closes.
    pub fn refund_and_close(
        &self,
        mint: Option<&LiveMint<'info>>,
        funder_token: &AccountInfo<'info>,
        rent_to: AccountInfo<'info>,
    ) -> Result<u64> {
        let remaining = self.vault.amount;
        if remaining > 0 {
            let mint = mint.ok_or(AmpError::WrongTokenProgram)?;
            let to = token_account_of(
                funder_token,
                &self.channel.funder,
                &self.channel.mint,
                AmpError::WrongFunderTokenAccount,
            )?;
            self.pay(mint, to, remaining)?;
        }
        self.close(rent_to)?;
        Ok(remaining)
    }
}
