use amp_channel::instructions::OpenArgs;
use amp_channel::program::AmpChannel;
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::authority::as_authority;
use crate::constants::AUTHORITY_SEED;
use crate::error::RelayError;
use crate::state::Relay;

/// Opens the relay's downstream channel with its PDA as the funder: the PDA
/// signs the CPI, pays the rent from its lamports and the deposit from its
/// token account; `args.authorized_signer` names the operator's hot key.
/// The token account becomes the relay's: what arrives in it is split.
#[derive(Accounts)]
pub struct OpenDownstream<'info> {
    pub operator: Signer<'info>,

    #[account(mut, has_one = operator)]
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA (seeds with the stored bump); funds the channel.
    #[account(mut, seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump = relay.authority_bump)]
    pub authority: UncheckedAccount<'info>,

    #[account(mut, token::authority = authority)]
    pub authority_token: InterfaceAccount<'info, TokenAccount>,

    /// CHECK: created by amp-channel, which checks its address.
    #[account(mut)]
    pub channel: UncheckedAccount<'info>,

    /// CHECK: created by amp-channel, which checks its address.
    #[account(mut)]
    pub vault: UncheckedAccount<'info>,

    pub mint: InterfaceAccount<'info, Mint>,
    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,

    /// CHECK: amp-channel's event authority, checked by amp-channel.
    pub amp_event_authority: UncheckedAccount<'info>,
    pub amp_program: Program<'info, AmpChannel>,
}

pub(crate) fn handler(ctx: Context<OpenDownstream>, args: OpenArgs) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    require_keys_eq!(
        accounts.relay.downstream,
        Pubkey::default(),
        RelayError::DownstreamExists
    );
    // Everything in the account so far is the operator's (its funding, and
    // anything earned before there was a downstream channel to share with);
    // the deposit is paid out of it.
    let balance = accounts.authority_token.amount;
    let relay = &mut accounts.relay;
    relay.split(balance, false)?;
    relay.spend_operator_share(args.deposit)?;
    relay.downstream = accounts.channel.key();
    relay.token_account = accounts.authority_token.key();

    let open = amp_channel::cpi::accounts::Open {
        funder: accounts.authority.to_account_info(),
        payer: accounts.authority.to_account_info(),
        channel: accounts.channel.to_account_info(),
        vault: accounts.vault.to_account_info(),
        funder_token: accounts.authority_token.to_account_info(),
        mint: accounts.mint.to_account_info(),
        token_program: accounts.token_program.to_account_info(),
        system_program: accounts.system_program.to_account_info(),
        event_authority: accounts.amp_event_authority.to_account_info(),
        program: accounts.amp_program.to_account_info(),
    };
    as_authority(&accounts.relay, |signer| {
        amp_channel::cpi::open(
            CpiContext::new_with_signer(accounts.amp_program.key(), open, signer),
            args,
        )
    })
}
