use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use solana_sdk_ids::sysvar::instructions as instructions_sysvar;

use super::settle::settle_from_voucher;
use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelClosed;
use crate::state::Channel;
use crate::vault::ChannelVault;

/// Cooperative close by the recipient: optionally settle a final voucher,
/// refund everything else to the funder at once, and close both accounts.
#[event_cpi]
#[derive(Accounts)]
pub struct Close<'info> {
    pub recipient: Signer<'info>,

    #[account(
        mut,
        has_one = recipient @ AmpError::NotRecipient,
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
        constraint = recipient_token.owner == channel.recipient @ AmpError::WrongRecipientTokenAccount,
        constraint = recipient_token.mint == channel.mint @ AmpError::WrongMint,
    )]
    pub recipient_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = funder_token.owner == channel.funder @ AmpError::WrongFunderTokenAccount,
        constraint = funder_token.mint == channel.mint @ AmpError::WrongMint,
    )]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: the Instructions sysvar, checked by address; read only with a final voucher.
    #[account(address = instructions_sysvar::ID @ AmpError::InvalidInstructionsSysvar)]
    pub instructions: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<Close>, final_voucher: bool) -> Result<()> {
    ctx.accounts.channel.check_close(Clock::get()?.slot)?;
    if final_voucher {
        let accounts = &mut *ctx.accounts;
        let event = settle_from_voucher(
            &mut accounts.channel,
            None,
            &accounts.vault,
            &accounts.recipient_token,
            &accounts.mint,
            &accounts.token_program,
            &accounts.instructions,
        )?;
        accounts.vault.reload()?;
        emit_cpi!(event);
    }

    let accounts = &ctx.accounts;
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
        cooperative: true,
    });
    Ok(())
}
