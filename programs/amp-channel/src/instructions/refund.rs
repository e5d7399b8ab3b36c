use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelClosed;
use crate::state::Channel;
use crate::vault::ChannelVault;

/// Permissionless once the grace period is over: the funder gets its money
/// back even when the recipient has vanished.
#[event_cpi]
#[derive(Accounts)]
pub struct Refund<'info> {
    #[account(
        mut,
        has_one = funder @ AmpError::NotFunder,
        has_one = mint @ AmpError::WrongMint,
        close = funder,
    )]
    pub channel: Box<Account<'info, Channel>>,

    /// CHECK: the channel's funder (`has_one`); receives both accounts' rent.
    #[account(mut)]
    pub funder: UncheckedAccount<'info>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = funder_token.owner == channel.funder @ AmpError::WrongFunderTokenAccount,
        constraint = funder_token.mint == channel.mint @ AmpError::WrongMint,
    )]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<Refund>) -> Result<()> {
    let clock = Clock::get()?;
    let accounts = &ctx.accounts;
    accounts
        .channel
        .check_refund(clock.slot, clock.unix_timestamp)?;

    let refunded = accounts.vault.amount;
    ChannelVault {
        channel: &accounts.channel,
        vault: &accounts.vault,
        mint: &accounts.mint,
        token_program: &accounts.token_program,
    }
    .refund_and_close(
        refunded,
        accounts.funder_token.to_account_info(),
        accounts.funder.to_account_info(),
    )?;
    emit_cpi!(ChannelClosed {
        channel: accounts.channel.key(),
        settled: accounts.channel.settled,
        refunded,
        cooperative: false,
    });
    Ok(())
}
