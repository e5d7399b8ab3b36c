//! An example of composing with AMP through CPI: a relay that is the
//! recipient of upstream channels and the funder of one downstream channel,
//! and forwards a share of each upstream settlement downstream in the same
//! transaction. Both of its AMP roles are played by one PDA, so no private
//! key is involved on-chain; the downstream channel's vouchers are signed by
//! the operator's off-chain hot key (the channel's authorised signer).
//!
//! This file only dispatches; each instruction lives in `instructions/`.

use anchor_lang::prelude::*;

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
    /// instruction to the relay and tops up the downstream channel with its share.
    pub fn forward(ctx: Context<Forward>) -> Result<()> {
        instructions::forward::handler(ctx)
    }
}
