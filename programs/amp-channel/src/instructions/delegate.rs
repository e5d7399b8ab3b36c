use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::{DELEGATION_SEED, VAULT_SEED};
use crate::error::AmpError;
use crate::events::DelegationCreated;
use crate::init::{create_pda_account, write_account};
use crate::state::{Channel, Delegation, DelegationTerms};
use crate::vault;

/// Gives a sub-agent key its own lane. The cap is deposited now rather than
/// carved out of the existing deposit: a carve-out would shrink the backing of
/// own-lane vouchers the recipient has already accepted (SPEC safety property 2).
#[event_cpi]
#[derive(Accounts)]
#[instruction(terms: DelegationTerms)]
pub struct Delegate<'info> {
    /// Authorises the cap's deposit from its token account.
    pub funder: Signer<'info>,

    /// Fronts the Delegation's rent and gets it back at `close_delegation`:
    /// the funder itself, or a sponsor.
    #[account(mut)]
    pub payer: Signer<'info>,

    #[account(
        mut,
        has_one = funder @ AmpError::NotFunder,
        has_one = mint @ AmpError::WrongMint,
    )]
    pub channel: Box<Account<'info, Channel>>,

    /// CHECK: the Delegation PDA (seeds checked), created by the handler
    /// (see [`crate::init`] for why not by Anchor's `init`).
    #[account(
        mut,
        seeds = [DELEGATION_SEED, channel.key().as_ref(), terms.delegate.as_ref()],
        bump,
    )]
    pub delegation: UncheckedAccount<'info>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(mut, constraint = funder_token.mint == channel.mint @ AmpError::WrongMint)]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<Delegate>, terms: DelegationTerms) -> Result<()> {
    let clock = Clock::get()?;
    let accounts = &mut *ctx.accounts;
    let delegation = Delegation::new(
        accounts.channel.key(),
        &accounts.channel,
        terms,
        accounts.payer.key(),
        clock.slot,
        clock.unix_timestamp,
        ctx.bumps.delegation,
    )?;
    accounts
        .channel
        .add_delegation(terms.cap, clock.unix_timestamp)?;

    let channel_key = accounts.channel.key();
    let delegation_info = accounts.delegation.to_account_info();
    create_pda_account(
        &accounts.payer.to_account_info(),
        &delegation_info,
        8 + Delegation::INIT_SPACE,
        &crate::ID,
        &[
            DELEGATION_SEED,
            channel_key.as_ref(),
            terms.delegate.as_ref(),
            &[delegation.bump],
        ],
        &accounts.system_program.to_account_info(),
    )?;
    write_account(&delegation_info, &delegation)?;

    vault::deposit(
        &accounts.token_program,
        &accounts.mint,
        &accounts.funder_token,
        &accounts.vault.to_account_info(),
        &accounts.funder,
        terms.cap,
    )?;

    let event = DelegationCreated {
        channel: delegation.channel,
        delegation: delegation_info.key(),
        delegate: delegation.delegate,
        payer: delegation.payer,
        cap: delegation.cap,
        generation: delegation.generation,
        expires_at: delegation.expires_at,
    };
    emit_cpi!(event);
    Ok(())
}
