//! The relay's authority PDA signs for the relay: the upstream recipient,
//! the downstream funder, and the owner of the relay's token accounts.

use anchor_lang::prelude::*;
use anchor_spl::token_interface::{self, Mint, TokenInterface, TransferChecked};

use crate::constants::AUTHORITY_SEED;
use crate::state::Relay;

/// Runs a CPI signed by the relay's authority PDA (with its stored bump).
pub fn as_authority<R>(
    relay: &Account<Relay>,
    cpi: impl FnOnce(&[&[&[u8]]]) -> Result<R>,
) -> Result<R> {
    let key = relay.key();
    let bump = [relay.authority_bump];
    let seeds: &[&[u8]] = &[AUTHORITY_SEED, key.as_ref(), &bump];
    cpi(&[seeds])
}

/// Moves `amount` of `mint` out of a token account the authority owns.
pub fn transfer<'info>(
    relay: &Account<'info, Relay>,
    authority: &AccountInfo<'info>,
    from: AccountInfo<'info>,
    to: AccountInfo<'info>,
    mint: &InterfaceAccount<'info, Mint>,
    token_program: &Interface<'info, TokenInterface>,
    amount: u64,
) -> Result<()> {
    let accounts = TransferChecked {
        from,
        mint: mint.to_account_info(),
        to,
        authority: authority.clone(),
    };
    as_authority(relay, |signer| {
        token_interface::transfer_checked(
            CpiContext::new_with_signer(token_program.key(), accounts, signer),
            amount,
            mint.decimals,
        )
    })
}
