use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use solana_sdk_ids::sysvar::instructions as instructions_sysvar;

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelSettled;
use crate::state::Channel;
use crate::vault::ChannelVault;
use crate::voucher::ed25519::verified_voucher;

/// Permissionless: whoever lands it, the tokens can only go to the recipient,
/// and only as far as the lane's signer signed.
#[event_cpi]
#[derive(Accounts)]
pub struct Settle<'info> {
    #[account(mut, has_one = mint @ AmpError::WrongMint)]
    pub channel: Box<Account<'info, Channel>>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = recipient_token.owner == channel.recipient @ AmpError::WrongRecipientTokenAccount,
        constraint = recipient_token.mint == channel.mint @ AmpError::WrongMint,
    )]
    pub recipient_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: the Instructions sysvar, checked by address; read by the checked loader.
    #[account(address = instructions_sysvar::ID @ AmpError::InvalidInstructionsSysvar)]
    pub instructions: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<Settle>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let event = settle_from_voucher(
        &mut accounts.channel,
        &accounts.vault,
        &accounts.recipient_token,
        &accounts.mint,
        &accounts.token_program,
        &accounts.instructions,
    )?;
    emit_cpi!(event);
    Ok(())
}

/// Verifies the voucher in the preceding Ed25519SigVerify instruction against
/// the channel and pays the recipient what it adds. Shared by `settle` and `close`.
pub(crate) fn settle_from_voucher<'info>(
    channel: &mut Account<'info, Channel>,
    vault: &InterfaceAccount<'info, TokenAccount>,
    recipient_token: &InterfaceAccount<'info, TokenAccount>,
    mint: &InterfaceAccount<'info, Mint>,
    token_program: &Interface<'info, TokenInterface>,
    instructions: &AccountInfo<'info>,
) -> Result<ChannelSettled> {
    let voucher = verified_voucher(instructions, &channel.authorized_signer)?;
    let now = Clock::get()?.unix_timestamp;
    let key = channel.key();
    let amount = channel.settle(&key, &voucher, now)?;
    ChannelVault {
        channel,
        vault,
        mint,
        token_program,
    }
    .pay(recipient_token.to_account_info(), amount)?;
    Ok(ChannelSettled {
        channel: key,
        lane: voucher.lane,
        amount,
        settled: channel.settled,
        destination: recipient_token.key(),
    })
}
