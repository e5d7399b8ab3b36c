use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelToppedUp;
use crate::state::Channel;
use crate::vault;

#[event_cpi]
#[derive(Accounts)]
pub struct TopUp<'info> {
    pub funder: Signer<'info>,

    #[account(
        mut,
        has_one = funder @ AmpError::NotFunder,
        has_one = mint @ AmpError::WrongMint,
    )]
    pub channel: Box<Account<'info, Channel>>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(mut, constraint = funder_token.mint == channel.mint @ AmpError::WrongMint)]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<TopUp>, amount: u64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    ctx.accounts.channel.top_up(amount, now)?;

    let accounts = &ctx.accounts;
    vault::deposit(
        &accounts.token_program,
        &accounts.mint,
        &accounts.funder_token,
        &accounts.vault.to_account_info(),
        &accounts.funder,
        amount,
    )?;

    emit_cpi!(ChannelToppedUp {
        channel: accounts.channel.key(),
        amount,
        deposited: accounts.channel.deposited,
    });
    Ok(())
}
