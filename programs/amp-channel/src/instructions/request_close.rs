use anchor_lang::prelude::*;

use crate::error::AmpError;
use crate::events::CloseRequested;
use crate::state::Channel;

#[event_cpi]
#[derive(Accounts)]
pub struct RequestClose<'info> {
    pub funder: Signer<'info>,

    #[account(mut, has_one = funder @ AmpError::NotFunder)]
    pub channel: Box<Account<'info, Channel>>,
}

pub(crate) fn handler(ctx: Context<RequestClose>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let refundable_at = ctx.accounts.channel.request_close(now)?;
    emit_cpi!(CloseRequested {
        channel: ctx.accounts.channel.key(),
        requested_at: now,
        refundable_at,
    });
    Ok(())
}
