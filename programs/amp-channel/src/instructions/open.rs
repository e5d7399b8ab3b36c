use anchor_lang::prelude::*;
use anchor_spl::token_interface::{self, InitializeAccount3, Mint, TokenAccount, TokenInterface};

use crate::constants::{CHANNEL_SEED, VAULT_SEED};
use crate::error::AmpError;
use crate::events::ChannelOpened;
use crate::init::{create_pda_account, token_account_len, write_account};
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

/// The Channel and its Vault are created by the handler rather than by
/// Anchor's `init` (see [`crate::init`]), after the mint has been checked.
#[event_cpi]
#[derive(Accounts)]
#[instruction(args: OpenArgs)]
pub struct Open<'info> {
    /// Authorises the deposit from its token account and is refunded it.
    pub funder: Signer<'info>,

    /// Fronts both accounts' rent and gets it back at close: the funder
    /// itself (one signer), or a sponsor such as the service.
    #[account(mut)]
    pub payer: Signer<'info>,

    /// CHECK: the Channel PDA (seeds checked), created by the handler.
    #[account(
        mut,
        seeds = [CHANNEL_SEED, funder.key().as_ref(), args.recipient.as_ref(), &args.nonce.to_le_bytes()],
        bump,
    )]
    pub channel: UncheckedAccount<'info>,

    /// CHECK: the Vault PDA (seeds checked), created by the handler.
    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump)]
    pub vault: UncheckedAccount<'info>,

    #[account(mut, constraint = funder_token.mint == mint.key() @ AmpError::WrongMint)]
    pub funder_token: Box<InterfaceAccount<'info, TokenAccount>>,

    #[account(constraint = *mint.to_account_info().owner == token_program.key() @ AmpError::WrongTokenProgram)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,

    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<Open>, args: OpenArgs) -> Result<()> {
    let accounts = &ctx.accounts;
    check_mint_supported(&accounts.mint.to_account_info())?;
    let clock = Clock::get()?;
    let funder = accounts.funder.key();
    let channel = Channel::new(
        ChannelTerms {
            funder,
            payer: accounts.payer.key(),
            recipient: args.recipient,
            mint: accounts.mint.key(),
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

    let payer_info = accounts.payer.to_account_info();
    let system_program = accounts.system_program.to_account_info();
    let channel_info = accounts.channel.to_account_info();
    let nonce = args.nonce.to_le_bytes();
    create_pda_account(
        &payer_info,
        &channel_info,
        8 + Channel::INIT_SPACE,
        &crate::ID,
        &[
            CHANNEL_SEED,
            funder.as_ref(),
            args.recipient.as_ref(),
            &nonce,
            &[channel.bump],
        ],
        &system_program,
    )?;
    write_account(&channel_info, &channel)?;

    let vault_info = accounts.vault.to_account_info();
    let mint_info = accounts.mint.to_account_info();
    create_pda_account(
        &payer_info,
        &vault_info,
        token_account_len(&mint_info)?,
        &accounts.token_program.key(),
        &[VAULT_SEED, channel_info.key.as_ref(), &[channel.vault_bump]],
        &system_program,
    )?;
    token_interface::initialize_account3(CpiContext::new(
        accounts.token_program.key(),
        InitializeAccount3 {
            account: vault_info.clone(),
            mint: mint_info,
            authority: channel_info.clone(),
        },
    ))?;

    vault::deposit(
        &accounts.token_program,
        &accounts.mint,
        &accounts.funder_token,
        &vault_info,
        &accounts.funder,
        args.deposit,
    )?;

    emit_cpi!(ChannelOpened {
        channel: channel_info.key(),
        funder,
        payer: channel.payer,
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
