//! `amp settle`: settle one voucher, given as the values of its credential
//! headers (what a server logged, or what an agent handed over).

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::error::AmpError;
use amp_sdk::transactions;
use amp_sdk::voucher::SignedVoucher;
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_instruction::Instruction;
use solana_signature::Signature;

use super::lane::Lane;
use super::voucher::{VoucherArgs, VoucherValues};
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, utc};
use amp_sdk::transactions::program_error;

/// Settle a voucher: pay the recipient what it adds (anyone).
///
/// Give the voucher as the values of its credential headers (AMP-Seq,
/// AMP-Amount, AMP-Expires, AMP-Sig); the lane is the AMP-Channel value.
#[derive(Debug, Args)]
pub struct SettleCmd {
    /// The lane: a channel, or a delegation for a delegate's voucher.
    pub lane: Pubkey,
    #[command(flatten)]
    pub voucher: VoucherArgs,
}

impl SettleCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<SettleReport, CliError> {
        let (_wallet, chain) = globals.context()?.wallet_and_chain()?;
        settle(&chain, &self.lane, (&self.voucher).into()).await
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
    let paid = check_settleable(&lane, &signed, now)?;
    let settlement = lane.accounts.settlement(lane.keys, signed);
    let destination = settlement.destination;
    let mut instructions = Vec::with_capacity(3);
    if chain.account(&destination).await?.is_none() {
        instructions.push(create_recipient_token(chain, &lane));
    }
    instructions.extend(settlement.instructions());
    // Settling needs no signature but the fee payer's (the chain's own).
    let signature = chain.send(&instructions, &[]).await?;
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

/// Refuses, with a reason, what the program would refuse: the program's own
/// rule ([`LaneTerms::settlement`](amp_sdk::program::state::LaneTerms::settlement))
/// run on the lane as read; returns what settling pays.
pub(crate) fn check_settleable(
    lane: &Lane,
    signed: &SignedVoucher,
    now: i64,
) -> Result<u64, CliError> {
    let voucher = &signed.voucher;
    lane.terms(now)
        .settlement(voucher, now)
        .map_err(|e| settle_refused(lane, signed, program_error(e)))
}

/// The program's refusal of a voucher, said for people.
pub(crate) fn settle_refused(lane: &Lane, signed: &SignedVoucher, error: AmpError) -> CliError {
    let accounts = &lane.accounts;
    let cumulative = signed.voucher.cumulative;
    CliError::state(match error {
        AmpError::StaleVoucher => format!(
            "nothing to settle: the lane has already settled {} and the voucher is for {}",
            accounts.settled(),
            cumulative
        ),
        AmpError::VoucherExceedsDeposit | AmpError::VoucherExceedsCap => format!(
            "the voucher is for {cumulative}, more than the lane can pay ({})",
            accounts.limit()
        ),
        AmpError::VoucherExpired => {
            format!("the voucher expired at {}", utc(signed.voucher.expires_at))
        }
        AmpError::GracePeriodEnded => {
            "the lane's grace period is over: vouchers can no longer be settled".to_owned()
        }
        other => format!("the program would refuse the voucher: {other}"),
    })
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
