use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::constants::{CHANNEL_SEED, VAULT_SEED};
use crate::error::AmpError;
use crate::events::ChannelOpened;
use crate::mint::check_mint_supported;
use crate::state::{Channel, ChannelTerms};
use crate::vault;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenArgs {
    pub recipient: Pubkey,
    /// Random per channel: a funder may hold many channels to one recipient.
    pub nonce: u64,
    pub deposit: u64,
    /// Seconds between a close request and the refund (60 s to 30 days).
    pub grace_period: u32,
    /// Unix time at which the channel counts as close-requested; 0 = never.
    pub expires_at: i64,
    /// Key that signs vouchers; `None` = the funder itself.
    pub authorized_signer: Option<Pubkey>,
}

#[event_cpi]
#[derive(Accounts)]
#[instruction(args: OpenArgs)]
pub struct Open<'info> {
    /// Pays the deposit and both accounts' rent, and gets all of it back.
    #[account(mut)]
    pub funder: Signer<'info>,

    #[account(
        init,
        payer = funder,
        space = 8 + Channel::INIT_SPACE,
        seeds = [CHANNEL_SEED, funder.key().as_ref(), args.recipient.as_ref(), &args.nonce.to_le_bytes()],
        bump,
    )]
    pub channel: Box<Account<'info, Channel>>,

    #[account(
        init,
        payer = funder,
        seeds = [VAULT_SEED, channel.key().as_ref()],
        bump,
        token::mint = mint,
        token::authority = channel,
        token::token_program = token_program,
    )]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(mut, constraint = funder_token.mint == mint.key() @ AmpError::WrongMint)]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<Open>, args: OpenArgs) -> Result<()> {
    check_mint_supported(&ctx.accounts.mint.to_account_info())?;
    let clock = Clock::get()?;
    let funder = ctx.accounts.funder.key();
    let channel = Channel::new(
        ChannelTerms {
            funder,
            recipient: args.recipient,
            mint: ctx.accounts.mint.key(),
            authorized_signer: args.authorized_signer.unwrap_or(funder),
            nonce: args.nonce,
            deposit: args.deposit,
            grace_period: args.grace_period,
            expires_at: args.expires_at,
        },
        clock.slot,
        clock.unix_timestamp,
        ctx.bumps.channel,
        ctx.bumps.vault,
    )?;
    ctx.accounts.channel.set_inner(channel);

    let accounts = &ctx.accounts;
    vault::deposit(
        &accounts.token_program,
        &accounts.mint,
        &accounts.funder_token,
        &accounts.vault,
        &accounts.funder,
        args.deposit,
    )?;

    let channel = &accounts.channel;
    emit_cpi!(ChannelOpened {
        channel: channel.key(),
        funder,
        recipient: channel.recipient,
        mint: channel.mint,
        authorized_signer: channel.authorized_signer,
        nonce: channel.nonce,
        generation: channel.generation,
        deposit: args.deposit,
        grace_period: channel.grace_period,
        expires_at: channel.expires_at,
    });
    Ok(())
}
