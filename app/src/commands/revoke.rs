//! `amp revoke`: start a delegation's grace period (funder); the recipient
//! may settle the delegate's vouchers until it ends.

use std::fmt;

use amp_sdk::chain::{Chain, ChainExt};
use amp_sdk::instructions as ix;
use amp_sdk::program::state::{Delegation, LaneStatus};
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

/// Revoke a delegation: its grace period starts (funder).
///
/// The recipient may settle the delegate's vouchers until it ends; then
/// `amp close-delegation` returns the unspent cap to the channel.
#[derive(Debug, Args)]
pub struct RevokeCmd {
    /// The delegation's address.
    pub delegation: Pubkey,
}

impl RevokeCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<RevokeReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        revoke(&chain, &wallet, &self.delegation).await
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RevokeReport {
    #[serde(serialize_with = "display")]
    pub delegation: Pubkey,
    /// When `amp close-delegation` works for anyone; until then the
    /// recipient may still settle the delegate's vouchers.
    pub closable_at: i64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
}

/// Starts the delegation's grace period; the wallet is the channel's funder.
pub async fn revoke(
    chain: &dyn Chain,
    wallet: &Keypair,
    delegation: &Pubkey,
) -> Result<RevokeReport, CliError> {
    let (lane, state) = Lane::delegation(chain, delegation, "revoke").await?;
    lane.require_funder(&wallet.pubkey(), "revoke a delegation")?;
    let now = chain.clock().await?.unix_timestamp;
    match lane.accounts.status(now) {
        LaneStatus::Open => {}
        LaneStatus::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the delegation is already revoked (or its channel closing); \
                 `amp close-delegation` works from {}",
                utc(refundable_at)
            )))
        }
        LaneStatus::Refundable => {
            return Err(CliError::state(
                "the delegation's grace period is over: run `amp close-delegation`",
            ))
        }
    }
    let instruction = ix::revoke(&lane.keys, &state.delegate);
    let signature = chain.send(&[instruction], &[signer(wallet)]).await?;
    let closable_at = chain
        .anchor_account::<Delegation>(delegation)
        .await?
        .map(|after| after.status(&lane.accounts.channel, after.revoke_requested_at))
        .and_then(refundable_at)
        .unwrap_or(now + i64::from(lane.accounts.channel.grace_period));
    Ok(RevokeReport {
        delegation: *delegation,
        closable_at,
        signature,
    })
}

impl fmt::Display for RevokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Revoked delegation {}", self.delegation)?;
        writeln!(
            f,
            "  closable at         {} (run `amp close-delegation` then)",
            utc(self.closable_at)
        )?;
        write!(f, "  signature           {}", self.signature)
    }
}
