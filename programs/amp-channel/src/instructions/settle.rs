use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use solana_sdk_ids::sysvar::instructions as instructions_sysvar;

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::ChannelSettled;
use crate::state::{Channel, Delegation};
use crate::vault::{ChannelVault, LiveMint};
use crate::voucher::ed25519::verified_voucher;

/// Permissionless: whoever lands it, the tokens can only go to the recipient,
/// and only as far as the lane's signer signed.
#[event_cpi]
#[derive(Accounts)]
pub struct Settle<'info> {
    #[account(mut, has_one = mint @ AmpError::WrongMint)]
    pub channel: Box<Account<'info, Channel>>,

    /// The delegate's lane when the voucher is a delegate's; absent for the
    /// funder's own lane.
    // A `constraint`, not `has_one = channel`: the same check and error, but
    // `has_one` on this optional account would tell IDL clients to resolve
    // `channel` from it, and the own lane has no delegation to resolve from.
    #[account(mut, constraint = delegation.channel == channel.key() @ AmpError::WrongChannel)]
    pub delegation: Option<Box<Account<'info, Delegation>>>,

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
    let settlement = record_voucher(
        &mut accounts.channel,
        accounts.delegation.as_deref_mut(),
        &accounts.instructions,
    )?;
    ChannelVault {
        channel: &accounts.channel,
        vault: &accounts.vault,
        token_program: &accounts.token_program,
    }
    .pay(
        &LiveMint::of(&accounts.mint),
        accounts.recipient_token.to_account_info(),
        settlement.amount,
    )?;
    let event = ChannelSettled {
        channel: accounts.channel.key(),
        lane: settlement.lane,
        amount: settlement.amount,
        settled: settlement.settled,
        destination: accounts.recipient_token.key(),
    };
    emit_cpi!(event);
    Ok(())
}

/// What a voucher settled on its lane.
pub(crate) struct LaneSettlement {
    pub lane: Pubkey,
    pub amount: u64,
    /// The lane's cumulative settled amount afterwards.
    pub settled: u64,
}

/// Verifies the voucher in the preceding Ed25519SigVerify instruction for the
/// lane it pays from (the channel's own, or `delegation`) and records it.
pub(crate) fn record_voucher(
    channel: &mut Account<Channel>,
    delegation: Option<&mut Account<Delegation>>,
    instructions: &AccountInfo,
) -> Result<LaneSettlement> {
    let now = Clock::get()?.unix_timestamp;
    let channel_key = channel.key();
    match delegation {
        None => {
            let voucher = verified_voucher(instructions, &channel.authorized_signer)?;
            let amount = channel.settle(&channel_key, &voucher, now)?;
            Ok(LaneSettlement {
                lane: channel_key,
                amount,
                settled: channel.settled,
            })
        }
        Some(delegation) => {
            let voucher = verified_voucher(instructions, &delegation.delegate)?;
            let lane = delegation.key();
            let amount = delegation.settle(&lane, channel, &voucher, now)?;
            Ok(LaneSettlement {
                lane,
                amount,
                settled: delegation.settled,
            })
        }
    }
}
