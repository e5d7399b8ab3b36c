//! `amp settle`: settle one voucher, given as the values of its credential
//! headers (what a server logged, or what an agent handed over).

use std::fmt;
use std::str::FromStr;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::headers::Credential;
use amp_sdk::transactions;
use amp_sdk::voucher::{SignedVoucher, SIGNATURE_LEN};
use anchor_lang::prelude::Pubkey;
use serde::Serialize;
use solana_instruction::Instruction;
use solana_signature::Signature;

use super::{display, Lane};
use crate::error::CliError;

/// A voucher as its credential carries it (`AMP-Seq`, `AMP-Amount`,
/// `AMP-Expires`, `AMP-Sig`); the lane and its generation come from the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherValues {
    pub seq: u64,
    /// Cumulative amount, in base units.
    pub amount: u64,
    /// Unix seconds; 0 = never.
    pub expires_at: i64,
    pub signature: [u8; SIGNATURE_LEN],
}

impl VoucherValues {
    /// The values of a credential (for example one an agent signed).
    pub fn from_credential(credential: &Credential) -> Self {
        Self {
            seq: credential.seq,
            amount: credential.cumulative,
            expires_at: credential.expires_at,
            signature: credential.signature,
        }
    }

    /// Checks the voucher against the lane's on-chain signer and generation.
    pub(crate) fn verify(&self, lane: &Lane) -> Result<SignedVoucher, CliError> {
        let credential = Credential {
            lane: lane.accounts.address,
            seq: self.seq,
            cumulative: self.amount,
            expires_at: self.expires_at,
            signature: self.signature,
        };
        credential
            .verify(&lane.accounts.signer(), lane.accounts.generation())
            .map_err(|e| {
                CliError::state(format!(
                    "{e}: the values must be exactly those signed for lane {} \
                     (generation {}, signer {})",
                    lane.accounts.address,
                    lane.accounts.generation(),
                    lane.accounts.signer()
                ))
            })
    }
}

/// A base58 voucher signature, as `AMP-Sig` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherSignature(pub [u8; SIGNATURE_LEN]);

impl FromStr for VoucherSignature {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|e| format!("not base58: {e}"))?;
        let bytes: [u8; SIGNATURE_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("{} bytes; a signature has 64", bytes.len()))?;
        Ok(Self(bytes))
    }
}

/// What `amp settle` did.
#[derive(Clone, Debug, Serialize)]
pub struct SettleReport {
    #[serde(serialize_with = "display")]
    pub lane: Pubkey,
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    /// Paid to the recipient by this settlement, base units.
    #[serde(with = "u64_string")]
    pub paid: u64,
    /// The lane's cumulative settled amount afterwards.
    #[serde(with = "u64_string")]
    pub settled: u64,
    #[serde(serialize_with = "display")]
    pub destination: Pubkey,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    pub(crate) decimals: u8,
}

/// Settles `voucher` on the lane at `lane` (a channel or a delegation),
/// paying the recipient's associated token account. Anyone may settle: the
/// chain's fee payer (the wallet, on a cluster) is the only signer.
pub async fn settle(
    chain: &dyn Chain,
    lane: &Pubkey,
    voucher: VoucherValues,
) -> Result<SettleReport, CliError> {
    let lane = Lane::fetch(chain, lane).await?;
    let signed = voucher.verify(&lane)?;
    let now = chain.clock().await?.unix_timestamp;
    check_settleable(&lane, &signed, now)?;
    let settlement = lane.accounts.settlement(lane.keys, signed);
    let destination = settlement.destination;
    let mut instructions = Vec::with_capacity(3);
    if chain.account(&destination).await?.is_none() {
        instructions.push(create_recipient_token(chain, &lane));
    }
    instructions.extend(settlement.instructions());
    // Settling needs no signature but the fee payer's (the chain's own).
    let signature = chain.send(&instructions, &[]).await?;
    let paid = signed.voucher.cumulative - lane.accounts.settled();
    Ok(SettleReport {
        lane: lane.accounts.address,
        channel: lane.accounts.channel_address,
        paid,
        settled: signed.voucher.cumulative,
        destination,
        signature,
        decimals: lane.mint.decimals,
    })
}

/// Refuses, with a reason, what the program would refuse.
pub(crate) fn check_settleable(
    lane: &Lane,
    signed: &SignedVoucher,
    now: i64,
) -> Result<(), CliError> {
    let accounts = &lane.accounts;
    let cumulative = signed.voucher.cumulative;
    if cumulative <= accounts.settled() {
        return Err(CliError::state(format!(
            "nothing to settle: the lane has already settled {} and the voucher is for {}",
            accounts.settled(),
            cumulative
        )));
    }
    if cumulative > accounts.limit() {
        return Err(CliError::state(format!(
            "the voucher is for {cumulative}, more than the lane can pay ({})",
            accounts.limit()
        )));
    }
    if signed.voucher.is_expired(now) {
        return Err(CliError::state(format!(
            "the voucher expired at {}",
            super::utc(signed.voucher.expires_at)
        )));
    }
    if accounts.status(now).is_refundable() {
        return Err(CliError::state(
            "the lane's grace period is over: vouchers can no longer be settled",
        ));
    }
    Ok(())
}

pub(crate) fn create_recipient_token(chain: &dyn Chain, lane: &Lane) -> Instruction {
    transactions::create_token_account_idempotent(
        &chain.fee_payer(),
        &lane.keys.recipient,
        &lane.keys.mint,
        &lane.keys.token_program,
    )
}

impl fmt::Display for SettleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |units| crate::amount::format_tokens(units, self.decimals);
        writeln!(f, "Settled {} on lane {}", t(self.paid), self.lane)?;
        writeln!(f, "  settled in total    {}", t(self.settled))?;
        writeln!(f, "  paid into           {}", self.destination)?;
        write!(f, "  signature           {}", self.signature)
    }
}
