use amp_channel::program::AmpChannel;
use amp_channel::state::Channel;
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::authority::as_authority;
use crate::constants::AUTHORITY_SEED;
use crate::error::RelayError;
use crate::state::Relay;

/// Permissionless: splits whatever reached the relay's token account since
/// the last split, forwarding the share downstream. Anyone may settle an
/// upstream voucher straight to the relay (`settle` is permissionless), so
/// the share must not depend on `forward` having been the one to settle it.
#[derive(Accounts)]
pub struct Distribute<'info> {
    #[account(
        mut,
        constraint = relay.downstream != Pubkey::default() @ RelayError::NoDownstream,
    )]
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA (seeds with the stored bump); the
    /// upstream recipient and the downstream funder.
    #[account(seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump = relay.authority_bump)]
    pub authority: UncheckedAccount<'info>,

    #[account(mut, address = relay.token_account @ RelayError::WrongTokenAccount)]
    pub authority_token: InterfaceAccount<'info, TokenAccount>,

    /// CHECK: the relay's own downstream channel (checked here); amp-channel checks the rest.
    #[account(mut, address = relay.downstream @ RelayError::WrongDownstream)]
    pub downstream: UncheckedAccount<'info>,

    /// CHECK: the downstream vault; amp-channel checks it.
    #[account(mut)]
    pub downstream_vault: UncheckedAccount<'info>,

    pub mint: InterfaceAccount<'info, Mint>,
    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: amp-channel's event authority, checked by amp-channel.
    pub amp_event_authority: UncheckedAccount<'info>,
    pub amp_program: Program<'info, AmpChannel>,
}

pub(crate) fn handler(ctx: Context<Distribute>) -> Result<()> {
    pass_on(ctx.accounts)?;
    Ok(())
}

/// Splits what arrived and tops the downstream channel up with the share;
/// returns the share. Shared by `distribute` and `forward`.
pub(crate) fn pass_on(accounts: &mut Distribute) -> Result<u64> {
    accounts.authority_token.reload()?;
    let forwardable = open_for_top_ups(&accounts.downstream)?;
    let share = accounts
        .relay
        .split(accounts.authority_token.amount, forwardable)?;
    if share == 0 {
        return Ok(0);
    }
    let top_up = amp_channel::cpi::accounts::TopUp {
        funder: accounts.authority.to_account_info(),
        channel: accounts.downstream.to_account_info(),
        vault: accounts.downstream_vault.to_account_info(),
        funder_token: accounts.authority_token.to_account_info(),
        mint: accounts.mint.to_account_info(),
        token_program: accounts.token_program.to_account_info(),
        event_authority: accounts.amp_event_authority.to_account_info(),
        program: accounts.amp_program.to_account_info(),
    };
    as_authority(&accounts.relay, |signer| {
        amp_channel::cpi::top_up(
            CpiContext::new_with_signer(accounts.amp_program.key(), top_up, signer),
            share,
        )
    })?;
    msg!("forwarded {}", share);
    Ok(share)
}

/// Whether the downstream channel still takes top-ups: it exists and no
/// close was requested (nor has it expired). Otherwise the share has nowhere
/// to go and stays with the operator.
fn open_for_top_ups(downstream: &AccountInfo) -> Result<bool> {
    if *downstream.owner != amp_channel::ID || downstream.data_is_empty() {
        return Ok(false);
    }
    let data = downstream.try_borrow_data()?;
    let channel = Channel::try_deserialize(&mut &data[..])?;
    Ok(channel.status(Clock::get()?.unix_timestamp).is_open())
}
