//! `amp delegate`: give a sub-agent key its own capped lane on a channel
//! (funder). The cap is deposited from the wallet and reserved for the
//! delegate, whose vouchers name the delegation's address as their lane.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::instructions as ix;
use amp_sdk::program::error::AmpError;
use amp_sdk::program::state::DelegationTerms;
use amp_sdk::{pda, transactions};
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lane::{check_depositor, lamports, signer, Lane};
use crate::amount::{format_tokens, Amount};
use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc};
use amp_sdk::transactions::program_error;

/// Give a sub-agent key its own lane on a channel, with a cap (funder).
///
/// The cap is deposited from the wallet and reserved for the delegate,
/// whose vouchers name the delegation's address as their lane: it pays
/// with `amp pay --channel DELEGATION` and its own keypair.
#[derive(Debug, Args)]
pub struct DelegateCmd {
    /// The channel's address.
    pub channel: Pubkey,
    /// The sub-agent's key, which signs the delegation's vouchers.
    pub delegate: Pubkey,
    /// The cap, in tokens (e.g. 5 or 0.5).
    pub cap: Amount,
    /// Revoke the delegation automatically this long from now (e.g. 7d).
    #[arg(long, value_parser = config::parse_duration, value_name = "DURATION")]
    pub expires_in: Option<u32>,
}

impl DelegateCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<DelegateReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        let expires_at = match self.expires_in {
            Some(seconds) => chain.clock().await?.unix_timestamp + i64::from(seconds),
            None => 0,
        };
        let request = DelegateRequest {
            channel: self.channel,
            delegate: self.delegate,
            cap: self.cap,
            expires_at,
        };
        delegate(&chain, &wallet, request).await
    }
}

/// A new delegation: `delegate` signs vouchers for up to `cap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegateRequest {
    /// The funder's channel the delegation draws on.
    pub channel: Pubkey,
    /// The sub-agent's key: it signs the delegation's vouchers.
    pub delegate: Pubkey,
    /// Deposited into the vault and reserved for the delegate.
    pub cap: Amount,
    /// Unix time at which the delegation counts as revoked; 0 = never.
    pub expires_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DelegateReport {
    /// The delegate's lane: its vouchers name this address.
    #[serde(serialize_with = "display")]
    pub delegation: Pubkey,
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    #[serde(serialize_with = "display")]
    pub delegate: Pubkey,
    #[serde(with = "u64_string")]
    pub cap: u64,
    pub expires_at: i64,
    /// Lamports the funder fronted for the Delegation account (returned
    /// when it closes).
    pub rent: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    decimals: u8,
}

/// Gives `request.delegate` its own lane on the wallet's channel,
/// depositing the cap from the wallet's token account.
pub async fn delegate(
    chain: &dyn Chain,
    wallet: &Keypair,
    request: DelegateRequest,
) -> Result<DelegateReport, CliError> {
    let lane = Lane::channel(chain, &request.channel, "delegate").await?;
    lane.require_funder(&wallet.pubkey(), "delegate")?;
    let cap = request.cap.to_base_units(lane.mint.decimals)?;
    let terms = DelegationTerms {
        delegate: request.delegate,
        cap,
        expires_at: request.expires_at,
    };
    // The program's own rules: the terms, and the channel taking the cap.
    let now = chain.clock().await?.unix_timestamp;
    transactions::check_delegate(&lane.accounts.channel, terms, now).map_err(terms_refused)?;
    lane.accounts
        .channel
        .clone()
        .add_delegation(cap, now)
        .map_err(|e| terms_refused(program_error(e)))?;
    let delegation = pda::delegation(&request.channel, &request.delegate).0;
    if chain.account(&delegation).await?.is_some() {
        return Err(CliError::state(format!(
            "{} already has a delegation on this channel ({delegation}); \
             revoke and close it first",
            request.delegate
        )));
    }
    let funder_token = transactions::funder_token(&lane.keys);
    let balance = chain.token_balance(&funder_token).await?.unwrap_or(0);
    if balance < cap {
        return Err(CliError::state(format!(
            "the wallet's token account {funder_token} holds {}, less than the cap {}",
            lane.mint.tokens(balance),
            lane.mint.tokens(cap)
        )));
    }
    check_depositor(chain, &funder_token).await?;
    let instruction = ix::delegate(&lane.keys, funder_token, terms);
    let signature = chain.send(&[instruction], &[signer(wallet)]).await?;
    Ok(DelegateReport {
        delegation,
        channel: request.channel,
        delegate: request.delegate,
        cap,
        expires_at: request.expires_at,
        rent: lamports(chain, &delegation).await?,
        signature,
        decimals: lane.mint.decimals,
    })
}

/// The program's refusal of a delegation, said for people.
fn terms_refused(error: AmpError) -> CliError {
    match error {
        AmpError::ZeroAmount => CliError::usage("the cap must be more than 0"),
        AmpError::InvalidExpiry => CliError::usage("the delegation's expiry must be in the future"),
        AmpError::ChannelClosing => {
            CliError::state("the channel is closing: it takes no new delegations")
        }
        other => CliError::usage(format!("the delegation's terms are refused: {other}")),
    }
}

impl fmt::Display for DelegateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Delegated to {}", self.delegate)?;
        writeln!(f, "  delegation (lane)   {}", self.delegation)?;
        writeln!(f, "  channel             {}", self.channel)?;
        writeln!(
            f,
            "  cap                 {}",
            format_tokens(self.cap, self.decimals)
        )?;
        if self.expires_at != 0 {
            writeln!(f, "  expires             {}", utc(self.expires_at))?;
        }
        writeln!(
            f,
            "  rent fronted        {} lamports (returned at close)",
            self.rent
        )?;
        writeln!(f, "  signature           {}", self.signature)?;
        write!(
            f,
            "The delegate pays with `amp pay --channel {}` and its own keypair.",
            self.delegation
        )
    }
}
