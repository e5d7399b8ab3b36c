//! An example of composing with AMP through CPI: a relay that is the
//! recipient of upstream channels and the funder of one downstream channel,
//! and forwards a share of what it earns downstream. The share is computed
//! from what actually reached the relay's token account, since anyone may
//! settle an upstream voucher to the relay directly; the operator withdraws
//! the rest. Both of its AMP roles are played by one PDA, so no private
//! key is involved on-chain; the downstream channel's vouchers are signed by
//! the operator's off-chain hot key (the channel's authorised signer).
//!
//! This file only dispatches; each instruction lives in `instructions/`.

use anchor_lang::prelude::*;

pub mod authority;
pub mod constants;
pub mod error;
pub mod instructions;
pub mod state;

use amp_channel::instructions::OpenArgs;
use instructions::*;

declare_id!("3tqbPscWbUGhp293ax4RjuNCoDU58cqCrZ9A9VEQVRrm");

#[program]
pub mod amp_relay {
    use super::*;

    /// Creates a relay that forwards `share_bps` of what it earns.
    pub fn init_relay(ctx: Context<InitRelay>, share_bps: u16) -> Result<()> {
        instructions::init_relay::handler(ctx, share_bps)
    }

    /// Opens the downstream channel, funded by the relay's PDA.
    pub fn open_downstream(ctx: Context<OpenDownstream>, args: OpenArgs) -> Result<()> {
        instructions::open_downstream::handler(ctx, args)
    }

    /// Settles the upstream voucher in the preceding Ed25519SigVerify
    /// instruction to the relay, then splits as `distribute` does.
    pub fn forward(ctx: Context<Forward>) -> Result<()> {
        instructions::forward::handler(ctx)
    }

    /// Splits what reached the relay since the last split (however it
    /// arrived) and tops up the downstream channel with the share.
    pub fn distribute(ctx: Context<Distribute>) -> Result<()> {
        instructions::distribute::handler(ctx)
    }

    /// Moves a stray token account of the relay's authority into the relay's own.
    pub fn sweep(ctx: Context<Sweep>) -> Result<()> {
        instructions::sweep::handler(ctx)
    }

    /// Pays the operator (part of) its share.
    pub fn withdraw(ctx: Context<Withdraw>, amount: u64) -> Result<()> {
        instructions::withdraw::handler(ctx, amount)
    }
}
