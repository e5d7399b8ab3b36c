use anchor_lang::prelude::*;
use anchor_spl::token_interface::{TokenAccount, TokenInterface};
use solana_sdk_ids::sysvar::instructions as instructions_sysvar;

use crate::constants::VAULT_SEED;
use crate::error::AmpError;
use crate::events::{ChannelClosed, ChannelSettled};
use crate::state::Channel;
use crate::vault::{token_account_of, ChannelVault, LiveMint};
use crate::voucher::ed25519::verified_voucher;

/// Cooperative close by the recipient: optionally settle a final voucher,
/// refund everything else to the funder at once, and close both accounts.
///
/// The token accounts and the mint are checked by the handler, and only when
/// tokens move: an empty channel must close even after its mint was closed
/// (when no token account of it can exist any more).
#[event_cpi]
#[derive(Accounts)]
pub struct Close<'info> {
    pub recipient: Signer<'info>,

    #[account(
        mut,
        has_one = recipient @ AmpError::NotRecipient,
        has_one = payer @ AmpError::NotPayer,
        has_one = mint @ AmpError::WrongMint,
        close = payer,
    )]
    pub channel: Box<Account<'info, Channel>>,

    /// CHECK: who fronted the rent at `open` (`has_one`); receives both
    /// accounts' rent. The tokens go to the funder's token account.
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,

    #[account(mut, seeds = [VAULT_SEED, channel.key().as_ref()], bump = channel.vault_bump)]
    pub vault: Box<InterfaceAccount<'info, TokenAccount>>,

    /// CHECK: the recipient's token account of the channel's mint; checked by
    /// the handler when a final voucher pays into it.
    #[account(mut)]
    pub recipient_token: UncheckedAccount<'info>,

    /// CHECK: the funder's token account of the channel's mint; checked by the
    /// handler when the vault has anything to refund.
    #[account(mut)]
    pub funder_token: UncheckedAccount<'info>,

    /// CHECK: the channel's mint (`has_one`), owned by `token_program` or
    /// closed; read by the handler ([`LiveMint::read`]).
    pub mint: UncheckedAccount<'info>,

    pub token_program: Interface<'info, TokenInterface>,

    /// CHECK: the Instructions sysvar, checked by address; read only with a final voucher.
    #[account(address = instructions_sysvar::ID @ AmpError::InvalidInstructionsSysvar)]
    pub instructions: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<Close>, final_voucher: bool) -> Result<()> {
    let clock = Clock::get()?;
    ctx.accounts.channel.check_close(clock.slot)?;
    let mint = LiveMint::read(&ctx.accounts.mint, &ctx.accounts.token_program.key())?;
    if final_voucher {
        let accounts = &mut *ctx.accounts;
        let voucher =
            verified_voucher(&accounts.instructions, &accounts.channel.authorized_signer)?;
        let channel_key = accounts.channel.key();
        // A final voucher that anyone settled first pays nothing here rather
        // than failing: `settle` is permissionless and the voucher is public.
        let amount = accounts
            .channel
            .settle_final(&channel_key, &voucher, clock.unix_timestamp)?;
        if amount > 0 {
            let to = token_account_of(
                &accounts.recipient_token,
                &accounts.channel.recipient,
                &accounts.channel.mint,
                AmpError::WrongRecipientTokenAccount,
            )?;
            ChannelVault {
                channel: &accounts.channel,
                vault: &accounts.vault,
                token_program: &accounts.token_program,
            }
            .pay(
                mint.as_ref().ok_or(AmpError::WrongTokenProgram)?,
                to,
                amount,
            )?;
            accounts.vault.reload()?;
            let event = ChannelSettled {
                channel: channel_key,
                lane: channel_key,
                amount,
                settled: accounts.channel.settled,
                destination: accounts.recipient_token.key(),
            };
            emit_cpi!(event);
        }
    }

    let accounts = &ctx.accounts;
    let refunded = ChannelVault {
        channel: &accounts.channel,
        vault: &accounts.vault,
        token_program: &accounts.token_program,
    }
    .refund_and_close(
        mint.as_ref(),
        &accounts.funder_token,
        accounts.payer.to_account_info(),
    )?;
    emit_cpi!(ChannelClosed {
        channel: accounts.channel.key(),
        settled: accounts.channel.settled,
        refunded,
        cooperative: true,
    });
    Ok(())
}
