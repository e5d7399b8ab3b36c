use anchor_lang::prelude::*;

use super::distribute::*;

/// Permissionless: the upstream voucher is the authorisation, and the money
/// can only go to the relay and on to its own downstream channel. Settles the
/// voucher to the relay, then splits as `distribute` does.
#[derive(Accounts)]
pub struct Forward<'info> {
    /// CHECK: an amp-channel Channel paying the relay; amp-channel checks it.
    #[account(mut)]
    pub upstream: UncheckedAccount<'info>,

    /// CHECK: the upstream vault; amp-channel checks it.
    #[account(mut)]
    pub upstream_vault: UncheckedAccount<'info>,

    /// CHECK: the Instructions sysvar; amp-channel checks its address.
    pub instructions: UncheckedAccount<'info>,

    pub distribute: Distribute<'info>,
}

pub(crate) fn handler(ctx: Context<Forward>) -> Result<()> {
    let accounts = &mut *ctx.accounts;
    let d = &accounts.distribute;
    amp_channel::cpi::settle(CpiContext::new(
        d.amp_program.key(),
        amp_channel::cpi::accounts::Settle {
            channel: accounts.upstream.to_account_info(),
            delegation: None,
            vault: accounts.upstream_vault.to_account_info(),
            recipient_token: d.authority_token.to_account_info(),
            mint: d.mint.to_account_info(),
            token_program: d.token_program.to_account_info(),
            instructions: accounts.instructions.to_account_info(),
            event_authority: d.amp_event_authority.to_account_info(),
            program: d.amp_program.to_account_info(),
        },
    ))?;
    pass_on(&mut accounts.distribute)?;
    Ok(())
}
