use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use solana_sdk_ids::sysvar::instructions as instructions_sysvar;

use super::settle::record_voucher;
use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::SettledInto;
use crate::state::{Channel, Delegation};
use crate::vault::{ChannelVault, LiveMint};

/// Agent supply chains: the recipient of an upstream channel settles an
/// upstream voucher straight into a downstream channel it funds, so the tokens
/// move from vault to vault without leaving channel custody.
#[event_cpi]
#[derive(Accounts)]
pub struct SettleInto<'info> {
    /// The upstream channel's recipient, which funds the downstream channel.
    pub recipient: Signer<'info>,

    #[account(
        mut,
        has_one = recipient @ AmpError::NotRecipient,
        has_one = mint @ AmpError::WrongMint,
    )]
    pub upstream: Box<Account<'info, Channel>>,

    /// The upstream delegate's lane when the voucher is a delegate's.
    #[account(mut, constraint = upstream_delegation.channel == upstream.key() @ AmpError::WrongChannel)]
    pub upstream_delegation: Option<Box<Account<'info, Delegation>>>,

    #[account(mut, seeds = [VAULT_SEED, upstream.key().as_ref()], bump = upstream.vault_bump)]
    pub upstream_vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = downstream.funder == recipient.key() @ AmpError::NotDownstream,
        constraint = downstream.mint == upstream.mint @ AmpError::WrongMint,
        constraint = downstream.recipient != upstream.funder @ AmpError::SupplyChainCycle,
    )]
    pub downstream: Box<Account<'info, Channel>>,

    #[account(mut, seeds = [VAULT_SEED, downstream.key().as_ref()], bump = downstream.vault_bump)]
    pub downstream_vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: the Instructions sysvar, checked by address; read by the checked loader.
    #[account(address = instructions_sysvar::ID @ AmpError::InvalidInstructionsSysvar)]
    pub instructions: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<SettleInto>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let accounts = &mut *ctx.accounts;
    let settlement = record_voucher(
        &mut accounts.upstream,
        accounts.upstream_delegation.as_deref_mut(),
        &accounts.instructions,
    )?;
    accounts.downstream.top_up(settlement.amount, now)?;
    ChannelVault {
        channel: &accounts.upstream,
        vault: &accounts.upstream_vault,
        token_program: &accounts.token_program,
    }
    .pay(
        &LiveMint::of(&accounts.mint),
        accounts.downstream_vault.to_account_info(),
        settlement.amount,
    )?;

    let event = SettledInto {
        upstream: accounts.upstream.key(),
        lane: settlement.lane,
        downstream: accounts.downstream.key(),
        amount: settlement.amount,
        settled: settlement.settled,
        downstream_deposited: accounts.downstream.deposited,
    };
    emit_cpi!(event);
    Ok(())
}
