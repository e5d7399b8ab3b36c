use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::authority;
use crate::constants::AUTHORITY_SEED;
use crate::error::RelayError;
use crate::state::Relay;

/// The operator takes (part of) its share out of the relay's token account.
#[derive(Accounts)]
pub struct Withdraw<'info> {
    pub operator: Signer<'info>,

    #[account(mut, has_one = operator)]
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA (seeds with the stored bump); owns the token account.
    #[account(seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump = relay.authority_bump)]
    pub authority: UncheckedAccount<'info>,

    #[account(mut, address = relay.token_account @ RelayError::WrongTokenAccount)]
    pub authority_token: InterfaceAccount<'info, TokenAccount>,

    /// Any account of the mint the operator names.
    #[account(mut, token::mint = mint, token::token_program = token_program)]
    pub destination: InterfaceAccount<'info, TokenAccount>,

    pub mint: InterfaceAccount<'info, Mint>,
    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<Withdraw>, amount: u64) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    accounts.relay.spend_operator_share(amount)?;
    authority::transfer(
        &accounts.relay,
        &accounts.authority,
        accounts.authority_token.to_account_info(),
        accounts.destination.to_account_info(),
        &accounts.mint,
        &accounts.token_program,
        amount,
    )
}
