//! `amp request-close`: start the grace period, after which `amp refund`
//! returns the deposit (funder).

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::program::state::LaneStatus;
use amp_sdk::transactions;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lane::{refundable_at, signer, Lane};
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc};

/// Start the grace period, after which `amp refund` returns the deposit (funder).
#[derive(Debug, Args)]
pub struct RequestCloseCmd {
    /// The channel's address.
    pub channel: Pubkey,
}

impl RequestCloseCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<RequestCloseReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        request_close(&chain, &wallet, &self.channel).await
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestCloseReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    /// When `amp refund` will work; until then the recipient may settle.
    pub refundable_at: i64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
}

/// Starts the grace period; the wallet is the funder.
pub async fn request_close(
    chain: &dyn Chain,
    wallet: &Keypair,
    channel: &Pubkey,
) -> Result<RequestCloseReport, CliError> {
    let lane = Lane::channel(chain, channel, "request-close").await?;
    lane.require_funder(&wallet.pubkey(), "request a close")?;
    let now = chain.clock().await?.unix_timestamp;
    match lane.accounts.channel.status(now) {
        LaneStatus::Open => {}
        LaneStatus::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the channel is already closing; `amp refund` works from {}",
                utc(refundable_at)
            )))
        }
        LaneStatus::Refundable => {
            return Err(CliError::state(
                "the channel is already refundable: run `amp refund`",
            ))
        }
    }
    let signature = chain
        .send(&transactions::request_close(&lane.keys), &[signer(wallet)])
        .await?;
    let refundable_at = chain
        .channel(channel)
        .await?
        .map(|c| c.status(c.close_requested_at))
        .and_then(refundable_at)
        .unwrap_or(now + i64::from(lane.accounts.channel.grace_period));
    Ok(RequestCloseReport {
        channel: *channel,
        refundable_at,
        signature,
    })
}

impl fmt::Display for RequestCloseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Close requested for channel {}", self.channel)?;
        writeln!(
            f,
            "  refundable at       {} (run `amp refund` then)",
            utc(self.refundable_at)
        )?;
        write!(f, "  signature           {}", self.signature)
    }
}
