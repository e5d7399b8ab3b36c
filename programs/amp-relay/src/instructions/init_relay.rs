use anchor_lang::prelude::*;

use crate::constants::{AUTHORITY_SEED, RELAY_SEED};
use crate::state::Relay;

#[derive(Accounts)]
pub struct InitRelay<'info> {
    #[account(mut)]
    pub operator: Signer<'info>,

    #[account(
        init,
        payer = operator,
        space = 8 + Relay::INIT_SPACE,
        seeds = [RELAY_SEED, operator.key().as_ref()],
        bump,
    )]
    pub relay: Account<'info, Relay>,

    /// CHECK: the relay's authority PDA, derived here to store its bump.
    #[account(seeds = [AUTHORITY_SEED, relay.key().as_ref()], bump)]
    pub authority: UncheckedAccount<'info>,

    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<InitRelay>, share_bps: u16) -> Result<()> {
    let relay = Relay::new(
        ctx.accounts.operator.key(),
        share_bps,
        ctx.bumps.relay,
        ctx.bumps.authority,
    )?;
    ctx.accounts.relay.set_inner(relay);
    Ok(())
}
