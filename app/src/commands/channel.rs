//! `amp channel show`: a channel or delegation, decoded, with its status and
//! what its vault holds.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use anchor_lang::prelude::Pubkey;
use clap::Subcommand;
use serde::Serialize;
use solana_keypair::Keypair;

use super::lane::{Lane, MintInfo, StatusView};
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, seconds, utc};

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Show a channel or a delegation: decoded state, status, vault balance.
    Show {
        /// A channel or delegation address.
        address: Pubkey,
    },
}

impl ChannelCommand {
    pub async fn run(self, globals: &GlobalArgs) -> Result<LaneView, CliError> {
        match self {
            Self::Show { address } => {
                let context = globals.context()?;
                // Reading needs no wallet: a throwaway key stands in as fee payer.
                let wallet = context.wallet().unwrap_or_else(|_| Keypair::new());
                show(&context.chain(&wallet), &address).await
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneKind {
    Channel,
    Delegation,
}

/// Everything `amp channel show` reports.
#[derive(Clone, Debug, Serialize)]
pub struct LaneView {
    #[serde(serialize_with = "display")]
    pub address: Pubkey,
    pub kind: LaneKind,
    /// The status of the address shown (a delegation ends with its channel).
    pub status: StatusView,
    /// The chain's time the status was computed at.
    pub now: i64,
    pub channel: ChannelView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation: Option<DelegationView>,
    pub mint: MintInfo,
    #[serde(serialize_with = "display")]
    pub vault: Pubkey,
    /// Tokens in the vault (deposits not yet paid out, plus donations).
    #[serde(with = "u64_string")]
    pub vault_balance: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChannelView {
    #[serde(serialize_with = "display")]
    pub address: Pubkey,
    #[serde(serialize_with = "display")]
    pub funder: Pubkey,
    #[serde(serialize_with = "display")]
    pub recipient: Pubkey,
    #[serde(serialize_with = "display")]
    pub authorized_signer: Pubkey,
    pub nonce: u64,
    pub generation: u64,
    #[serde(with = "u64_string")]
    pub deposited: u64,
    #[serde(with = "u64_string")]
    pub settled: u64,
    /// Reserved for delegations.
    #[serde(with = "u64_string")]
    pub delegated: u64,
    pub delegations: u16,
    /// What the funder's own lane can still pay.
    #[serde(with = "u64_string")]
    pub remaining: u64,
    pub grace_period: u32,
    /// 0 = never requested.
    pub close_requested_at: i64,
    /// 0 = never expires.
    pub expires_at: i64,
    pub status: StatusView,
}

#[derive(Clone, Debug, Serialize)]
pub struct DelegationView {
    #[serde(serialize_with = "display")]
    pub delegate: Pubkey,
    #[serde(with = "u64_string")]
    pub cap: u64,
    #[serde(with = "u64_string")]
    pub settled: u64,
    #[serde(with = "u64_string")]
    pub remaining: u64,
    pub generation: u64,
    pub expires_at: i64,
    pub revoke_requested_at: i64,
}

/// Reads the channel or delegation at `address`.
pub async fn show(chain: &dyn Chain, address: &Pubkey) -> Result<LaneView, CliError> {
    let lane = Lane::fetch(chain, address).await?;
    let now = chain.clock().await?.unix_timestamp;
    let vault_balance = chain.token_balance(&lane.keys.vault).await?.unwrap_or(0);
    let accounts = &lane.accounts;
    let c = &accounts.channel;
    let channel = ChannelView {
        address: accounts.channel_address,
        funder: c.funder,
        recipient: c.recipient,
        authorized_signer: c.authorized_signer,
        nonce: c.nonce,
        generation: c.generation,
        deposited: c.deposited,
        settled: c.settled,
        delegated: c.delegated,
        delegations: c.delegations,
        remaining: c.own_lane_remaining(),
        grace_period: c.grace_period,
        close_requested_at: c.close_requested_at,
        expires_at: c.expires_at,
        status: c.status(now).into(),
    };
    let delegation = accounts.delegation.as_ref().map(|d| DelegationView {
        delegate: d.delegate,
        cap: d.cap,
        settled: d.settled,
        remaining: d.unspent(),
        generation: d.generation,
        expires_at: d.expires_at,
        revoke_requested_at: d.revoke_requested_at,
    });
    Ok(LaneView {
        address: *address,
        kind: if delegation.is_some() {
            LaneKind::Delegation
        } else {
            LaneKind::Channel
        },
        status: accounts.status(now).into(),
        now,
        channel,
        delegation,
        mint: lane.mint,
        vault: lane.keys.vault,
        vault_balance,
    })
}

impl fmt::Display for LaneView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |units: u64| self.mint.tokens(units);
        let c = &self.channel;
        let kind = match self.kind {
            LaneKind::Channel => "Channel",
            LaneKind::Delegation => "Delegation",
        };
        writeln!(f, "{kind} {}", self.address)?;
        writeln!(f, "  status              {}", self.status)?;
        if let Some(d) = &self.delegation {
            writeln!(f, "  delegate            {}", d.delegate)?;
            writeln!(f, "  cap                 {}", t(d.cap))?;
            writeln!(f, "  settled             {}", t(d.settled))?;
            writeln!(f, "  remaining           {}", t(d.remaining))?;
            writeln!(f, "  generation          {}", d.generation)?;
            writeln!(f, "  expires             {}", when(d.expires_at))?;
            writeln!(f, "  revoke requested    {}", when(d.revoke_requested_at))?;
            writeln!(f, "Channel {}", c.address)?;
            writeln!(f, "  status              {}", c.status)?;
        }
        writeln!(f, "  funder              {}", c.funder)?;
        writeln!(f, "  recipient           {}", c.recipient)?;
        writeln!(f, "  authorized signer   {}", c.authorized_signer)?;
        writeln!(
            f,
            "  mint                {} ({} decimals, {})",
            self.mint.address,
            self.mint.decimals,
            program_name(&self.mint.token_program)
        )?;
        // Whoever holds it can freeze the vault and block settle, close and refund.
        match &self.mint.freeze_authority {
            Some(authority) => writeln!(
                f,
                "  freeze authority    {authority} (can freeze the vault)"
            )?,
            None => writeln!(f, "  freeze authority    none")?,
        }
        writeln!(f, "  deposited           {}", t(c.deposited))?;
        writeln!(f, "  settled             {}", t(c.settled))?;
        if c.delegations > 0 || c.delegated > 0 {
            writeln!(
                f,
                "  delegated           {} in {} delegation(s)",
                t(c.delegated),
                c.delegations
            )?;
        }
        writeln!(f, "  remaining           {}", t(c.remaining))?;
        writeln!(
            f,
            "  vault               {} holds {}",
            self.vault,
            t(self.vault_balance)
        )?;
        writeln!(f, "  grace period        {}", seconds(c.grace_period))?;
        writeln!(f, "  close requested     {}", when(c.close_requested_at))?;
        writeln!(f, "  expires             {}", when(c.expires_at))?;
        writeln!(f, "  nonce               {}", c.nonce)?;
        write!(f, "  generation          {} (creation slot)", c.generation)
    }
}

fn when(unix: i64) -> String {
    if unix == 0 {
        "never".into()
    } else {
        utc(unix)
    }
}

fn program_name(program: &Pubkey) -> &'static str {
    if *program == anchor_spl::token_2022::ID {
        "Token-2022"
    } else {
        "SPL Token"
    }
}
