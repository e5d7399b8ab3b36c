//! Sub-agent budgets from the command line: the funder's `delegate` and
//! `revoke`, and `close-delegation`, which returns a delegation's unspent
//! cap to the channel's own lane and its rent to the funder.

use std::fmt;

use amp_sdk::chain::{Chain, ChainExt};
use amp_sdk::decimal::u64_string;
use amp_sdk::instructions as ix;
use amp_sdk::program::state::{Delegation, DelegationTerms, LaneStatus};
use amp_sdk::{pda, transactions};
use anchor_lang::prelude::Pubkey;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lifecycle::lamports;
use super::{check_depositor, display, refundable_at, signer, utc, Lane};
use crate::amount::{format_tokens, Amount};
use crate::error::CliError;

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
    if cap == 0 {
        return Err(CliError::usage("the cap must be more than 0"));
    }
    let now = chain.clock().await?.unix_timestamp;
    if !lane.accounts.channel.status(now).is_open() {
        return Err(CliError::state(
            "the channel is closing: it takes no new delegations",
        ));
    }
    if request.expires_at != 0 && request.expires_at <= now {
        return Err(CliError::usage(
            "the delegation's expiry must be in the future",
        ));
    }
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
    let terms = DelegationTerms {
        delegate: request.delegate,
        cap,
        expires_at: request.expires_at,
    };
    transactions::check_delegate(&lane.accounts.channel, terms, now)
        .map_err(|e| CliError::usage(format!("the delegation's terms are refused: {e}")))?;
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
    let instruction = ix::close_delegation(&lane.keys, &state.delegate, wallet.pubkey());
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
