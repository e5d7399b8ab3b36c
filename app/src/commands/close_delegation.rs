//! `amp close-delegation`: a delegation's unspent cap back to the channel's
//! own lane, its rent to the funder.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::instructions as ix;
use amp_sdk::program::state::LaneStatus;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lane::{lamports, signer, Lane};
use crate::amount::format_tokens;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc};

/// Close a delegation: unspent cap back to the channel, rent to the funder.
///
/// The recipient may at any time (settle the delegate's vouchers first);
/// anyone may once a revocation's grace period is over.
#[derive(Debug, Args)]
pub struct CloseDelegationCmd {
    /// The delegation's address.
    pub delegation: Pubkey,
}

impl CloseDelegationCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<CloseDelegationReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        close_delegation(&chain, &wallet, &self.delegation).await
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CloseDelegationReport {
    #[serde(serialize_with = "display")]
    pub delegation: Pubkey,
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    /// What the delegate's vouchers paid the recipient, in all.
    #[serde(with = "u64_string")]
    pub settled: u64,
    /// The cap the delegate did not spend, back on the channel's own lane.
    #[serde(with = "u64_string")]
    pub unspent: u64,
    /// Lamports of the Delegation account, returned to the funder.
    pub rent_returned: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    decimals: u8,
}

/// Closes a delegation. The recipient may at any time (giving up the
/// delegate's vouchers it has not settled); anyone may once a revocation's
/// grace period is over.
pub async fn close_delegation(
    chain: &dyn Chain,
    wallet: &Keypair,
    delegation: &Pubkey,
) -> Result<CloseDelegationReport, CliError> {
    let (lane, state) = Lane::delegation(chain, delegation, "close-delegation").await?;
    let by_recipient = wallet.pubkey() == lane.accounts.channel.recipient;
    let now = chain.clock().await?.unix_timestamp;
    if !by_recipient {
        match lane.accounts.status(now) {
            LaneStatus::Refundable => {}
            LaneStatus::Open => {
                return Err(CliError::state(
                    "the delegation is live: the funder runs `amp revoke` first \
                     (or the recipient closes it)",
                ))
            }
            LaneStatus::Closing { refundable_at } => {
                return Err(CliError::state(format!(
                    "the grace period runs until {}; the recipient may still settle until then",
                    utc(refundable_at)
                )))
            }
        }
    }
    let rent_returned = lamports(chain, delegation).await?;
    let instruction =
        ix::close_delegation(&lane.keys, &state.delegate, wallet.pubkey(), state.payer);
    let signature = chain.send(&[instruction], &[signer(wallet)]).await?;
    Ok(CloseDelegationReport {
        delegation: *delegation,
        channel: lane.accounts.channel_address,
        settled: state.settled,
        unspent: state.unspent(),
        rent_returned,
        signature,
        decimals: lane.mint.decimals,
    })
}

impl fmt::Display for CloseDelegationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |units| format_tokens(units, self.decimals);
        writeln!(f, "Closed delegation {}", self.delegation)?;
        writeln!(f, "  settled             {}", t(self.settled))?;
        writeln!(
            f,
            "  unspent             {} (back on channel {})",
            t(self.unspent),
            self.channel
        )?;
        writeln!(f, "  rent returned       {} lamports", self.rent_returned)?;
        write!(f, "  signature           {}", self.signature)
    }
}
