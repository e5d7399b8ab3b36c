//! The cluster commands. Each takes the chain as `&dyn Chain`, so the same
//! code runs against a JSON-RPC node and against the embedded bank (the
//! tests call these functions directly), and returns a report that prints
//! for people ([`Display`](std::fmt::Display)) and as JSON ([`Serialize`]).

mod delegation;
pub mod lanes;
mod lifecycle;
mod pay;
mod settle;
mod show;

use amp_sdk::chain::{Chain, ChainExt, TxSigner};
use amp_sdk::instructions::ChannelKeys;
use amp_sdk::mint::MintAccount;
use amp_sdk::program::state::{Delegation, LaneStatus};
use amp_sdk::server::LaneAccounts;
use anchor_lang::prelude::Pubkey;
use serde::{Serialize, Serializer};
use solana_keypair::Keypair;

use crate::error::CliError;

pub use delegation::{
    close_delegation, delegate, revoke, CloseDelegationReport, DelegateReport, DelegateRequest,
    RevokeReport,
};
pub use lifecycle::{
    close, open, refund, request_close, top_up, CloseReport, OpenReport, OpenRequest, RefundReport,
    RequestCloseReport, TopUpReport,
};
pub use pay::{pay, pay_agent, AgentPayRequest, PayReport, PayRequest};
pub use settle::{settle, SettleReport, VoucherSignature, VoucherValues};
pub use show::{show, DelegationView, LaneKind, LaneView};

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
            Some(state) => Ok((lane, state)),
            None => Err(CliError::NotADelegation(*address, command)),
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

/// Serde helper: any value by its `Display` (addresses, signatures).
pub(crate) fn display<T: std::fmt::Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Serde helper: an optional value by its `Display`.
pub(crate) fn display_option<T: std::fmt::Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
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
    if let Some(account) = chain.account(token_account).await? {
        amp_sdk::mint::check_depositor(token_account, &account).map_err(CliError::state)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }
}
