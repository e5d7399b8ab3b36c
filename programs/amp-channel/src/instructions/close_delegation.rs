use anchor_lang::prelude::*;

use crate::error::AmpError;
use crate::events::DelegationClosed;
use crate::state::{Channel, Delegation};

/// Closes a delegation: its unspent cap returns to the channel's own lane and
/// its rent to whoever fronted it at `delegate`. The recipient may do so at any time (giving up any
/// unsettled delegate vouchers, so it settles them first in the same
/// transaction); anyone may once the grace period is over.
#[event_cpi]
#[derive(Accounts)]
pub struct CloseDelegation<'info> {
    pub closer: Signer<'info>,

    #[account(mut)]
    pub channel: Box<Account<'info, Channel>>,

    #[account(
        mut,
        has_one = channel @ AmpError::WrongChannel,
        has_one = payer @ AmpError::NotPayer,
        close = payer,
    )]
    pub delegation: Box<Account<'info, Delegation>>,

    /// CHECK: who fronted the delegation's rent (`has_one`); receives it back.
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<CloseDelegation>) -> Result<()> {
    let clock = Clock::get()?;
    let accounts = &mut *ctx.accounts;
    let by_recipient = accounts.closer.key() == accounts.channel.recipient;
    accounts.delegation.check_close(
        &accounts.channel,
        by_recipient,
        clock.slot,
        clock.unix_timestamp,
    )?;
    let unspent = accounts.delegation.unspent();
    accounts.channel.release_delegation(unspent)?;
    let event = DelegationClosed {
        channel: accounts.channel.key(),
        delegation: accounts.delegation.key(),
        settled: accounts.delegation.settled,
        unspent,
    };
    emit_cpi!(event);
    Ok(())
}
