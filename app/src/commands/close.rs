//! `amp close`: the recipient's cooperative close, optionally settling a
//! final voucher; the rest of the vault goes back to the funder at once.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::error::AmpError;
use amp_sdk::transactions::{self, Settlement};
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::lane::{lamports, signer, Lane};
use super::refund::{check_no_delegations, RefundReport};
use super::settle::{create_recipient_token, settle_refused};
use super::voucher::{FinalVoucherArgs, VoucherValues};
use crate::amount::format_tokens;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::display_option;
use amp_sdk::transactions::program_error;

/// Close a channel cooperatively, optionally settling a final voucher (recipient).
///
/// The rest of the vault goes back to the funder at once, with the rent.
#[derive(Debug, Args)]
pub struct CloseCmd {
    /// The channel's address.
    pub channel: Pubkey,
    #[command(flatten)]
    pub voucher: FinalVoucherArgs,
}

impl CloseCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<CloseReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        close(&chain, &wallet, &self.channel, self.voucher.values()).await
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CloseReport {
    /// Paid to the recipient by the final voucher (0 without one).
    #[serde(with = "u64_string")]
    pub paid: u64,
    #[serde(serialize_with = "display_option")]
    pub destination: Option<Pubkey>,
    #[serde(flatten)]
    pub refund: RefundReport,
}

/// The recipient's cooperative close: settles `final_voucher` if given,
/// refunds the rest to the funder and closes the channel at once.
pub async fn close(
    chain: &dyn Chain,
    wallet: &Keypair,
    channel: &Pubkey,
    final_voucher: Option<VoucherValues>,
) -> Result<CloseReport, CliError> {
    let lane = Lane::channel(chain, channel, "close").await?;
    lane.require_recipient(&wallet.pubkey(), "close a channel cooperatively")?;
    check_no_delegations(&lane)?;
    let now = chain.clock().await?.unix_timestamp;
    let vault_balance = chain.token_balance(&lane.keys.vault).await?.unwrap_or(0);
    let rent_returned =
        lamports(chain, &lane.keys.channel).await? + lamports(chain, &lane.keys.vault).await?;
    let mut instructions = Vec::with_capacity(3);
    let destination = transactions::recipient_token(&lane.keys);
    let signed = final_voucher
        .map(|values| values.verify(&lane))
        .transpose()?;
    // A voucher is public: anyone may have settled it already, leaving
    // nothing to pay (the program's rule for a final voucher).
    let mut final_settlement = None;
    if let Some(signed) = signed {
        let paid = lane
            .terms(now)
            .final_settlement(&signed.voucher, now)
            .map_err(|e| settle_refused(&lane, &signed, program_error(e)))?;
        final_settlement = (paid > 0).then_some((signed, paid));
    }
    let with_voucher = final_settlement.is_some();
    let paid = match final_settlement {
        Some((signed, paid)) => {
            if chain.account(&destination).await?.is_none() {
                instructions.push(create_recipient_token(chain, &lane));
            }
            let settlement = Settlement::new(
                lane.keys,
                lane.accounts.signer(),
                signed.voucher,
                signed.signature,
            );
            instructions.extend(transactions::close_with_voucher(&settlement));
            paid
        }
        None => {
            instructions.extend(transactions::close(&lane.keys));
            0
        }
    };
    let signature = match chain.send(&instructions, &[signer(wallet)]).await {
        // Settled by someone else since the lane was read: close without it.
        Err(error) if with_voucher && error.is_amp_error(AmpError::StaleVoucher) => {
            return Box::pin(close(chain, wallet, channel, None)).await;
        }
        sent => sent?,
    };
    Ok(CloseReport {
        paid,
        destination: (paid > 0).then_some(destination),
        refund: RefundReport {
            channel: *channel,
            funder: lane.keys.funder,
            refunded: vault_balance - paid,
            rent_returned,
            signature,
            decimals: lane.mint.decimals,
        },
    })
}

impl fmt::Display for CloseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(destination) = &self.destination {
            writeln!(
                f,
                "Settled {} into {destination}",
                format_tokens(self.paid, self.refund.decimals)
            )?;
        }
        self.refund.fmt(f)
    }
}
