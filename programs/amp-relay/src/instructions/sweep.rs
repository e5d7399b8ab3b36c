use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::authority;
use crate::constants::AUTHORITY_SEED;
use crate::error::RelayError;
use crate::state::Relay;

/// Permissionless: moves the tokens of any other token account the relay's
/// authority owns into the relay's own. Anyone can create such an account and
/// settle an upstream voucher into it (the program only checks the owner);
/// without this, those tokens would be stuck. The next split counts them.
#[derive(Accounts)]
pub struct Sweep<'info> {
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA (seeds with the stored bump); owns both accounts.
    #[account(seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump = relay.authority_bump)]
    pub authority: UncheckedAccount<'info>,

    #[account(mut, address = relay.token_account @ RelayError::WrongTokenAccount)]
    pub authority_token: InterfaceAccount<'info, TokenAccount>,

    #[account(
        mut,
        token::authority = authority,
        token::mint = mint,
        token::token_program = token_program,
    )]
    pub stray: InterfaceAccount<'info, TokenAccount>,

    pub mint: InterfaceAccount<'info, Mint>,
    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<Sweep>) -> Result<()> {
    let accounts = &ctx.accounts;
    let amount = accounts.stray.amount;
    if amount == 0 {
        return Ok(());
    }
    authority::transfer(
        &accounts.relay,
        &accounts.authority,
        accounts.stray.to_account_info(),
        accounts.authority_token.to_account_info(),
        &accounts.mint,
        &accounts.token_program,
        amount,
    )
}
