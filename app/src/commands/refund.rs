//! `amp refund`: once the grace period is over, the vault goes back to the
//! funder and the channel closes (anyone).

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::state::LaneStatus;
use amp_sdk::transactions;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_signature::Signature;

use super::lane::{lamports, Lane};
use crate::amount::format_tokens;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc};

/// Refund the vault to the funder once the grace period is over (anyone).
#[derive(Debug, Args)]
pub struct RefundCmd {
    /// The channel's address.
    pub channel: Pubkey,
}

impl RefundCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<RefundReport, CliError> {
        let (_wallet, chain) = globals.context()?.wallet_and_chain()?;
        refund(&chain, &self.channel).await
    }
}

/// What `refund` and `close` returned and to whom.
#[derive(Clone, Debug, Serialize)]
pub struct RefundReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    #[serde(serialize_with = "display")]
    pub funder: Pubkey,
    /// Tokens returned to the funder.
    #[serde(with = "u64_string")]
    pub refunded: u64,
    /// Lamports of the closed Channel and Vault, returned to the funder.
    pub rent_returned: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    pub(crate) decimals: u8,
}

/// After the grace period: refunds the vault to the funder and closes the
/// channel. Anyone may do it: the chain's fee payer is the only signer.
pub async fn refund(chain: &dyn Chain, channel: &Pubkey) -> Result<RefundReport, CliError> {
    let lane = Lane::channel(chain, channel, "refund").await?;
    let now = chain.clock().await?.unix_timestamp;
    match lane.accounts.channel.status(now) {
        LaneStatus::Refundable => {}
        LaneStatus::Open => {
            return Err(CliError::state(
                "the channel is open: the funder runs `amp request-close` first \
                 (or the recipient `amp close`)",
            ))
        }
        LaneStatus::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the grace period runs until {}; the recipient may still settle until then",
                utc(refundable_at)
            )))
        }
    }
    check_no_delegations(&lane)?;
    let refunded = chain.token_balance(&lane.keys.vault).await?.unwrap_or(0);
    let rent_returned =
        lamports(chain, &lane.keys.channel).await? + lamports(chain, &lane.keys.vault).await?;
    let signature = chain.send(&transactions::refund(&lane.keys), &[]).await?;
    Ok(RefundReport {
        channel: *channel,
        funder: lane.keys.funder,
        refunded,
        rent_returned,
        signature,
        decimals: lane.mint.decimals,
    })
}

/// Refuses a channel that still has delegations (the program would).
pub(super) fn check_no_delegations(lane: &Lane) -> Result<(), CliError> {
    let count = lane.accounts.channel.delegations;
    if count > 0 {
        return Err(CliError::state(format!(
            "the channel still has {count} delegation(s); they must be closed first"
        )));
    }
    Ok(())
}

impl fmt::Display for RefundReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Closed channel {}", self.channel)?;
        writeln!(
            f,
            "  refunded            {} to {}",
            format_tokens(self.refunded, self.decimals),
            self.funder
        )?;
        writeln!(f, "  rent returned       {} lamports", self.rent_returned)?;
        write!(f, "  signature           {}", self.signature)
    }
}
