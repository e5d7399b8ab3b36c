use anchor_lang::prelude::*;
use anchor_spl::token_interface::{TokenAccount, TokenInterface};

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelClosed;
use crate::state::Channel;
use crate::vault::{ChannelVault, LiveMint};

/// Permissionless once the grace period is over: the funder gets its money
/// back even when the recipient has vanished.
///
/// As in `close`, the funder's token account and the mint are checked only
/// when the vault has anything to refund, so an empty channel whose mint was
/// closed still returns its rent.
#[event_cpi]
#[derive(Accounts)]
pub struct Refund<'info> {
    #[account(
        mut,
        has_one = payer @ AmpError::NotPayer,
        has_one = mint @ AmpError::WrongMint,
        close = payer,
    )]
    pub channel: Box<Account<'info, Channel>>,

    /// CHECK: who fronted the rent at `open` (`has_one`); receives both
    /// accounts' rent. The tokens go to the funder's token account.
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    /// CHECK: the funder's token account of the channel's mint; checked by the
    /// handler when the vault has anything to refund.
    #[account(mut)]
    pub funder_token: UncheckedAccount<'info>,

    /// CHECK: the channel's mint (`has_one`), owned by `token_program` or
    /// closed; read by the handler ([`LiveMint::read`]).
    pub mint: UncheckedAccount<'info>,

    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<Refund>) -> Result<()> {
    let clock = Clock::get()?;
    let accounts = &ctx.accounts;
    accounts
        .channel
        .check_refund(clock.slot, clock.unix_timestamp)?;
    let mint = LiveMint::read(&accounts.mint, &accounts.token_program.key())?;
    let refunded = ChannelVault {
        channel: &accounts.channel,
        vault: &accounts.vault,
        token_program: &accounts.token_program,
    }
    .refund_and_close(
        mint.as_ref(),
        &accounts.funder_token,
        accounts.payer.to_account_info(),
    )?;
    emit_cpi!(ChannelClosed {
        channel: accounts.channel.key(),
        settled: accounts.channel.settled,
        refunded,
        cooperative: false,
    });
    Ok(())
}
