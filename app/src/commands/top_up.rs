//! `amp top-up`: add to an open channel's deposit (funder).

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::error::AmpError;
use amp_sdk::transactions;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lane::{check_depositor, signer, Lane};
use crate::amount::{format_tokens, Amount};
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::display;
use amp_sdk::transactions::program_error;

/// Add to an open channel's deposit (funder).
#[derive(Debug, Args)]
pub struct TopUpCmd {
    /// The channel's address.
    pub channel: Pubkey,
    /// Tokens to add (e.g. 5 or 0.5).
    pub amount: Amount,
}

impl TopUpCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<TopUpReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        top_up(&chain, &wallet, &self.channel, self.amount).await
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TopUpReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    #[serde(with = "u64_string")]
    pub amount: u64,
    /// The deposit afterwards.
    #[serde(with = "u64_string")]
    pub deposited: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    decimals: u8,
}

/// Adds `amount` to an open channel's deposit; the wallet is the funder.
pub async fn top_up(
    chain: &dyn Chain,
    wallet: &Keypair,
    channel: &Pubkey,
    amount: Amount,
) -> Result<TopUpReport, CliError> {
    let lane = Lane::channel(chain, channel, "top-up").await?;
    lane.require_funder(&wallet.pubkey(), "top up")?;
    let amount = amount.to_base_units(lane.mint.decimals)?;
    // The program's own rule, run on a copy of the channel as read.
    let now = chain.clock().await?.unix_timestamp;
    let mut after = lane.accounts.channel.clone();
    after
        .top_up(amount, now)
        .map_err(|e| match program_error(e) {
            AmpError::ZeroAmount => CliError::usage("the amount must be more than 0"),
            AmpError::ChannelClosing => {
                CliError::state("the channel is closing: it takes no more deposits")
            }
            other => CliError::state(format!("the program would refuse the top-up: {other}")),
        })?;
    check_depositor(chain, &transactions::funder_token(&lane.keys)).await?;
    let instructions = transactions::top_up(&lane.keys, amount);
    let signature = chain.send(&instructions, &[signer(wallet)]).await?;
    Ok(TopUpReport {
        channel: *channel,
        amount,
        deposited: after.deposited,
        signature,
        decimals: lane.mint.decimals,
    })
}

impl fmt::Display for TopUpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |units| format_tokens(units, self.decimals);
        writeln!(f, "Added {} to channel {}", t(self.amount), self.channel)?;
        writeln!(f, "  deposited           {}", t(self.deposited))?;
        write!(f, "  signature           {}", self.signature)
    }
}
