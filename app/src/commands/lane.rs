//! What the cluster commands share: a lane read from the chain with its
//! mint and addresses, who may act on it, and how its status reads.

use amp_sdk::chain::{Chain, ChainExt, TxSigner};
use amp_sdk::instructions::ChannelKeys;
use amp_sdk::mint::MintAccount;
use amp_sdk::program::state::{Delegation, LaneStatus, LaneTerms};
use amp_sdk::server::LaneAccounts;
use anchor_lang::prelude::Pubkey;
use serde::Serialize;
use solana_keypair::Keypair;

use crate::error::CliError;
use crate::output::{display, display_option, utc};

/// A mint as commands need it: who owns it and how many decimals it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MintInfo {
    #[serde(serialize_with = "display")]
    pub address: Pubkey,
    #[serde(serialize_with = "display")]
    pub token_program: Pubkey,
    pub decimals: u8,
    /// Who can freeze the channel's vault (a trust assumption; SPEC section 2).
    #[serde(serialize_with = "display_option")]
    pub freeze_authority: Option<Pubkey>,
}

impl MintInfo {
    pub async fn fetch(chain: &dyn Chain, mint: &Pubkey) -> Result<Self, CliError> {
        Ok(Self::of(&chain.mint(mint).await?))
    }

    /// Reads a mint for a new channel, refusing one that `open` would refuse.
    pub async fn fetch_supported(chain: &dyn Chain, mint: &Pubkey) -> Result<Self, CliError> {
        let account = chain.mint(mint).await?;
        account.check_supported().map_err(CliError::state)?;
        Ok(Self::of(&account))
    }

    fn of(account: &MintAccount) -> Self {
        Self {
            address: account.address,
            token_program: account.token_program,
            decimals: account.decimals,
            freeze_authority: account.freeze_authority,
        }
    }

    /// Base units written as tokens of this mint.
    pub fn tokens(&self, units: u64) -> String {
        crate::amount::format_tokens(units, self.decimals)
    }
}

/// A lane with everything commands derive from it.
pub(crate) struct Lane {
    pub accounts: LaneAccounts,
    pub mint: MintInfo,
    pub keys: ChannelKeys,
}

impl Lane {
    /// Reads the channel or delegation at `address`.
    pub async fn fetch(chain: &dyn Chain, address: &Pubkey) -> Result<Self, CliError> {
        let accounts = LaneAccounts::fetch(chain, address)
            .await?
            .ok_or(CliError::NoLane(*address))?;
        let mint = MintInfo::fetch(chain, &accounts.channel.mint).await?;
        let keys = accounts.keys(mint.token_program);
        Ok(Self {
            accounts,
            mint,
            keys,
        })
    }

    /// Like [`fetch`](Self::fetch), refusing a delegation address.
    pub async fn channel(
        chain: &dyn Chain,
        address: &Pubkey,
        command: &'static str,
    ) -> Result<Self, CliError> {
        let lane = Self::fetch(chain, address).await?;
        if lane.accounts.delegation.is_some() {
            return Err(CliError::NotAChannel(*address, command));
        }
        Ok(lane)
    }

    /// Reads the delegation at `address` (with its state), refusing a
    /// channel address.
    pub async fn delegation(
        chain: &dyn Chain,
        address: &Pubkey,
        command: &'static str,
    ) -> Result<(Self, Delegation), CliError> {
        let lane = Self::fetch(chain, address).await?;
        match lane.accounts.delegation.clone() {
            Some(state) => Ok((lane, *state)),
            None => Err(CliError::NotADelegation(*address, command)),
        }
    }

    /// The program's own rule for settling this lane's vouchers at `now`.
    pub fn terms(&self, now: i64) -> LaneTerms<'_> {
        let accounts = &self.accounts;
        match &accounts.delegation {
            Some(delegation) => delegation.lane(&accounts.address, &accounts.channel, now),
            None => accounts.channel.own_lane(&accounts.address, now),
        }
    }

    pub fn require_funder(&self, wallet: &Pubkey, action: &'static str) -> Result<(), CliError> {
        require_role("funder", self.accounts.channel.funder, wallet, action)
    }

    pub fn require_recipient(&self, wallet: &Pubkey, action: &'static str) -> Result<(), CliError> {
        require_role("recipient", self.accounts.channel.recipient, wallet, action)
    }
}

fn require_role(
    role: &'static str,
    expected: Pubkey,
    actual: &Pubkey,
    action: &'static str,
) -> Result<(), CliError> {
    if expected == *actual {
        Ok(())
    } else {
        Err(CliError::WrongWallet {
            role,
            expected,
            actual: *actual,
            action,
        })
    }
}

/// The wallet as a transaction signer.
pub(crate) fn signer(wallet: &Keypair) -> &TxSigner {
    wallet
}

/// Where a lane stands, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StatusView {
    /// Vouchers settle; the funder may top up.
    Open,
    /// Close requested or expired: vouchers settle until `refundable_at`.
    Closing { refundable_at: i64 },
    /// Grace period over: anyone may refund.
    Refundable,
}

impl From<LaneStatus> for StatusView {
    fn from(status: LaneStatus) -> Self {
        match status {
            LaneStatus::Open => Self::Open,
            LaneStatus::Closing { refundable_at } => Self::Closing { refundable_at },
            LaneStatus::Refundable => Self::Refundable,
        }
    }
}

impl std::fmt::Display for StatusView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("open"),
            Self::Closing { refundable_at } => {
                write!(f, "closing (refundable at {})", utc(*refundable_at))
            }
            Self::Refundable => f.write_str("refundable (grace period over)"),
        }
    }
}

/// When a closing lane becomes refundable; `None` for any other status.
pub(crate) fn refundable_at(status: LaneStatus) -> Option<i64> {
    match status {
        LaneStatus::Closing { refundable_at } => Some(refundable_at),
        _ => None,
    }
}

/// A random channel nonce (SPEC §2: clients choose random nonces).
pub fn random_nonce() -> u64 {
    let key = solana_signer::Signer::pubkey(&Keypair::new()).to_bytes();
    u64::from_le_bytes(key[..8].try_into().unwrap_or_default())
}

/// Refuses a funder token account that cannot pay a deposit (a Token-2022
/// account with the CPI Guard on), before anything is sent.
pub(crate) async fn check_depositor(
    chain: &dyn Chain,
    token_account: &Pubkey,
) -> Result<(), CliError> {
    match chain.deposit_refusal(token_account).await? {
        Some(reason) => Err(CliError::state(reason)),
        None => Ok(()),
    }
}

/// Lamports held at `address` (0 when nothing is there): rent fronted or returned.
pub(crate) async fn lamports(chain: &dyn Chain, address: &Pubkey) -> Result<u64, CliError> {
    Ok(chain.account(address).await?.map_or(0, |a| a.lamports))
}
