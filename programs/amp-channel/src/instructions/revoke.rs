use anchor_lang::prelude::*;

use crate::error::AmpError;
use crate::events::DelegationRevoked;
use crate::state::{Channel, Delegation};

/// Starts the grace period after which a delegation's unspent cap returns to
/// the channel; delegate vouchers stay settleable until it ends.
#[event_cpi]
#[derive(Accounts)]
pub struct Revoke<'info> {
    pub funder: Signer<'info>,

    #[account(has_one = funder @ AmpError::NotFunder)]
    pub channel: Box<Account<'info, Channel>>,

    #[account(mut, has_one = channel @ AmpError::WrongChannel)]
    pub delegation: Box<Account<'info, Delegation>>,
}

pub(crate) fn handler(ctx: Context<Revoke>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let accounts = &mut *ctx.accounts;
    let refundable_at = accounts.delegation.revoke(&accounts.channel, now)?;
    let event = DelegationRevoked {
        channel: accounts.channel.key(),
        delegation: accounts.delegation.key(),
        requested_at: now,
        refundable_at,
    };
    emit_cpi!(event);
    Ok(())
}
