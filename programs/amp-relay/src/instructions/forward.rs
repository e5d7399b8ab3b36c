use amp_channel::program::AmpChannel;
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::AUTHORITY_SEED;
use crate::error::RelayError;
use crate::state::Relay;

/// Permissionless: the upstream voucher is the authorisation, and the money
/// can only go to the relay and on to its own downstream channel.
#[derive(Accounts)]
pub struct Forward<'info> {
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA (seeds with the stored bump); the
    /// upstream recipient and the downstream funder.
    #[account(seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump = relay.authority_bump)]
    pub authority: UncheckedAccount<'info>,

    #[account(mut, token::authority = authority)]
    pub authority_token: InterfaceAccount<'info, TokenAccount>,

    /// CHECK: an amp-channel Channel paying the relay; amp-channel checks it.
    #[account(mut)]
    pub upstream: UncheckedAccount<'info>,

    /// CHECK: the upstream vault; amp-channel checks it.
    #[account(mut)]
    pub upstream_vault: UncheckedAccount<'info>,

    /// CHECK: the relay's own downstream channel (checked here); amp-channel checks the rest.
    #[account(mut, address = relay.downstream @ RelayError::WrongDownstream)]
    pub downstream: UncheckedAccount<'info>,

    /// CHECK: the downstream vault; amp-channel checks it.
    #[account(mut)]
    pub downstream_vault: UncheckedAccount<'info>,

    pub mint: InterfaceAccount<'info, Mint>,
    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: the Instructions sysvar; amp-channel checks its address.
    pub instructions: UncheckedAccount<'info>,

    /// CHECK: amp-channel's event authority, checked by amp-channel.
    pub amp_event_authority: UncheckedAccount<'info>,
    pub amp_program: Program<'info, AmpChannel>,
}

pub(crate) fn handler(ctx: Context<Forward>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let before = accounts.authority_token.amount;
    amp_channel::cpi::settle(CpiContext::new(
        accounts.amp_program.key(),
        amp_channel::cpi::accounts::Settle {
            channel: accounts.upstream.to_account_info(),
            delegation: None,
            vault: accounts.upstream_vault.to_account_info(),
            recipient_token: accounts.authority_token.to_account_info(),
            mint: accounts.mint.to_account_info(),
            token_program: accounts.token_program.to_account_info(),
            instructions: accounts.instructions.to_account_info(),
            event_authority: accounts.amp_event_authority.to_account_info(),
            program: accounts.amp_program.to_account_info(),
        },
    ))?;
    accounts.authority_token.reload()?;
    let earned = accounts
        .authority_token
        .amount
        .checked_sub(before)
        .ok_or(RelayError::ArithmeticOverflow)?;
    let share = accounts.relay.share_of(earned)?;
    if share == 0 {
        return Ok(());
    }

    let relay = accounts.relay.key();
    let bump = [accounts.relay.authority_bump];
    let seeds: &[&[u8]] = &[AUTHORITY_SEED, relay.as_ref(), &bump];
    amp_channel::cpi::top_up(
        CpiContext::new_with_signer(
            accounts.amp_program.key(),
            amp_channel::cpi::accounts::TopUp {
                funder: accounts.authority.to_account_info(),
                channel: accounts.downstream.to_account_info(),
                vault: accounts.downstream_vault.to_account_info(),
                funder_token: accounts.authority_token.to_account_info(),
                mint: accounts.mint.to_account_info(),
                token_program: accounts.token_program.to_account_info(),
                event_authority: accounts.amp_event_authority.to_account_info(),
                program: accounts.amp_program.to_account_info(),
            },
            &[seeds],
        ),
        share,
    )?;
    msg!("forwarded {} of {}", share, earned);
    Ok(())
}
