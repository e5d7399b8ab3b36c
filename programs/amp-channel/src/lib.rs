//! AMP payment channels: an agent deposits SPL tokens once, pays per request
//! with off-chain ed25519 vouchers, and the service settles the net on-chain.
//!
//! This file only dispatches; each instruction lives in `instructions/`.

use anchor_lang::prelude::*;

pub mod constants;
pub mod error;
pub mod events;
pub mod init;
pub mod instructions;
pub mod mint;
pub mod state;
pub mod vault;
pub mod voucher;

use instructions::*;
use state::DelegationTerms;

declare_id!("DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX");

#[program]
pub mod amp_channel {
    use super::*;

    /// Creates the Channel and its Vault and deposits the first tokens.
    pub fn open(ctx: Context<Open>, args: OpenArgs) -> Result<()> {
        instructions::open::handler(ctx, args)
    }

    /// Adds to the deposit while the channel is open.
    pub fn top_up(ctx: Context<TopUp>, amount: u64) -> Result<()> {
        instructions::top_up::handler(ctx, amount)
    }

    /// Pays the recipient what the voucher in the preceding Ed25519SigVerify
    /// instruction adds to what was already settled.
    pub fn settle(ctx: Context<Settle>) -> Result<()> {
        instructions::settle::handler(ctx)
    }

    /// The recipient's cooperative close, optionally settling a final voucher.
    pub fn close(ctx: Context<Close>, final_voucher: bool) -> Result<()> {
        instructions::close::handler(ctx, final_voucher)
    }

    /// Starts the grace period after which the funder may take its refund.
    pub fn request_close(ctx: Context<RequestClose>) -> Result<()> {
        instructions::request_close::handler(ctx)
    }

    /// Refunds the vault to the funder and closes both accounts once the grace period is over.
    pub fn refund(ctx: Context<Refund>) -> Result<()> {
        instructions::refund::handler(ctx)
    }

    /// Gives a sub-agent key its own lane, with a cap deposited and reserved for it.
    pub fn delegate(ctx: Context<Delegate>, terms: DelegationTerms) -> Result<()> {
        instructions::delegate::handler(ctx, terms)
    }

    /// Starts a delegation's grace period; its unspent cap is freed after it.
    pub fn revoke(ctx: Context<Revoke>) -> Result<()> {
        instructions::revoke::handler(ctx)
    }

    /// Closes a delegation (by the recipient any time, by anyone after grace).
    pub fn close_delegation(ctx: Context<CloseDelegation>) -> Result<()> {
        instructions::close_delegation::handler(ctx)
    }

    /// Settles an upstream voucher straight into a downstream channel that
    /// the upstream recipient funds (agent supply chains).
    pub fn settle_into(ctx: Context<SettleInto>) -> Result<()> {
        instructions::settle_into::handler(ctx)
    }
}
