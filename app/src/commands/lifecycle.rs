//! A channel's life from the command line: `open`, `top-up`,
//! `request-close`, `refund` and the recipient's `close`.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::constants::{MAX_GRACE_PERIOD, MIN_GRACE_PERIOD};
use amp_sdk::program::error::AmpError;
use amp_sdk::program::instructions::OpenArgs;
use amp_sdk::program::state::LaneStatus;
use amp_sdk::transactions::{self, OpenOptions, Settlement};
use anchor_lang::prelude::Pubkey;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::settle::{check_settleable, create_recipient_token, VoucherValues};
use super::show::seconds;
use super::{
    check_depositor, display, display_option, random_nonce, refundable_at, signer, utc, Lane,
    MintInfo,
};
use crate::amount::{format_tokens, Amount};
use crate::error::CliError;

/// The terms of a new channel; the wallet is the funder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    pub recipient: Pubkey,
    pub mint: Pubkey,
    /// The deposit.
    pub amount: Amount,
    /// Seconds between a close request and the refund.
    pub grace_period: u32,
    /// `None` = random.
    pub nonce: Option<u64>,
    /// The key that signs vouchers; `None` = the funder.
    pub signer: Option<Pubkey>,
    /// Unix time at which the channel counts as close-requested; 0 = never.
    pub expires_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpenReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    #[serde(serialize_with = "display")]
    pub vault: Pubkey,
    #[serde(serialize_with = "display")]
    pub funder: Pubkey,
    #[serde(serialize_with = "display")]
    pub recipient: Pubkey,
    #[serde(serialize_with = "display")]
    pub authorized_signer: Pubkey,
    pub mint: MintInfo,
    pub nonce: u64,
    pub generation: u64,
    #[serde(with = "u64_string")]
    pub deposit: u64,
    pub grace_period: u32,
    pub expires_at: i64,
    /// Lamports the funder fronted for the Channel and Vault accounts (all
    /// returned when the channel closes).
    pub rent: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
}

/// Opens a channel from the wallet: creates the funder's and recipient's
/// token accounts if missing (the fee payer fronts their rent), the Channel
/// and its Vault, and deposits `amount`.
pub async fn open(
    chain: &dyn Chain,
    wallet: &Keypair,
    request: OpenRequest,
) -> Result<OpenReport, CliError> {
    let funder = wallet.pubkey();
    if request.recipient == funder {
        return Err(CliError::usage(
            "the recipient is the wallet itself: a funder cannot pay itself",
        ));
    }
    if !(MIN_GRACE_PERIOD..=MAX_GRACE_PERIOD).contains(&request.grace_period) {
        return Err(CliError::usage(format!(
            "the grace period must be between {} and {}",
            seconds(MIN_GRACE_PERIOD),
            seconds(MAX_GRACE_PERIOD)
        )));
    }
    let mint = MintInfo::fetch_supported(chain, &request.mint).await?;
    let deposit = request.amount.to_base_units(mint.decimals)?;
    if deposit == 0 {
        return Err(CliError::usage("the deposit must be more than 0"));
    }
    let funder_token = amp_sdk::pda::associated_token(&funder, &mint.address, &mint.token_program);
    let balance = chain.token_balance(&funder_token).await?.unwrap_or(0);
    if balance < deposit {
        return Err(CliError::state(format!(
            "the wallet's token account {funder_token} holds {}, less than the deposit {}",
            mint.tokens(balance),
            mint.tokens(deposit)
        )));
    }
    let nonce = request.nonce.unwrap_or_else(random_nonce);
    let args = OpenArgs {
        recipient: request.recipient,
        nonce,
        deposit,
        grace_period: request.grace_period,
        expires_at: request.expires_at,
        authorized_signer: request.signer,
    };
    let now = chain.clock().await?.unix_timestamp;
    transactions::check_open(funder, mint.address, &args, now)
        .map_err(|e| CliError::usage(format!("the channel's terms are refused: {e}")))?;
    check_depositor(chain, &funder_token).await?;
    let options = OpenOptions {
        funder_token: None,
        create_token_accounts: Some(chain.fee_payer()),
    };
    let (keys, instructions) =
        transactions::open(funder, mint.address, mint.token_program, args, options);
    if chain.account(&keys.channel).await?.is_some() {
        return Err(CliError::state(format!(
            "channel {} (nonce {nonce}) already exists; choose another nonce",
            keys.channel
        )));
    }
    let signature = chain.send(&instructions, &[signer(wallet)]).await?;
    let channel = chain
        .channel(&keys.channel)
        .await?
        .ok_or_else(|| CliError::state("the channel is not there after opening it"))?;
    let rent = lamports(chain, &keys.channel).await? + lamports(chain, &keys.vault).await?;
    Ok(OpenReport {
        channel: keys.channel,
        vault: keys.vault,
        funder,
        recipient: request.recipient,
        authorized_signer: channel.authorized_signer,
        mint,
        nonce,
        generation: channel.generation,
        deposit,
        grace_period: request.grace_period,
        expires_at: request.expires_at,
        rent,
        signature,
    })
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
    if amount == 0 {
        return Err(CliError::usage("the amount must be more than 0"));
    }
    let now = chain.clock().await?.unix_timestamp;
    if !lane.accounts.channel.status(now).is_open() {
        return Err(CliError::state(
            "the channel is closing: it takes no more deposits",
        ));
    }
    check_depositor(chain, &transactions::funder_token(&lane.keys)).await?;
    let instructions = transactions::top_up(&lane.keys, amount);
    let signature = chain.send(&instructions, &[signer(wallet)]).await?;
    Ok(TopUpReport {
        channel: *channel,
        amount,
        deposited: lane.accounts.channel.deposited + amount,
        signature,
        decimals: lane.mint.decimals,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestCloseReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    /// When `amp refund` will work; until then the recipient may settle.
    pub refundable_at: i64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
}

/// Starts the grace period; the wallet is the funder.
pub async fn request_close(
    chain: &dyn Chain,
    wallet: &Keypair,
    channel: &Pubkey,
) -> Result<RequestCloseReport, CliError> {
    let lane = Lane::channel(chain, channel, "request-close").await?;
    lane.require_funder(&wallet.pubkey(), "request a close")?;
    let now = chain.clock().await?.unix_timestamp;
    match lane.accounts.channel.status(now) {
        LaneStatus::Open => {}
        LaneStatus::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the channel is already closing; `amp refund` works from {}",
                utc(refundable_at)
            )))
        }
        LaneStatus::Refundable => {
            return Err(CliError::state(
                "the channel is already refundable: run `amp refund`",
            ))
        }
    }
    let signature = chain
        .send(&transactions::request_close(&lane.keys), &[signer(wallet)])
        .await?;
    let refundable_at = chain
        .channel(channel)
        .await?
        .map(|c| c.status(c.close_requested_at))
        .and_then(refundable_at)
        .unwrap_or(now + i64::from(lane.accounts.channel.grace_period));
    Ok(RequestCloseReport {
        channel: *channel,
        refundable_at,
        signature,
    })
}

/// What `refund` and `close` returned and to whom.
#[derive(Clone, Debug, Serialize)]
pub struct RefundReport {
    #[serde(serialize_with = "display")]
    pub channel: Pubkey,
    #[serde(serialize_with = "display")]
    pub funder: Pubkey,
    /// Tokens returned to the funder.
    #[serde(with = "u64_string")]
    pub refunded: u64,
    /// Lamports of the closed Channel and Vault, returned to the funder.
    pub rent_returned: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
    #[serde(skip)]
    decimals: u8,
}

/// After the grace period: refunds the vault to the funder and closes the
/// channel. Anyone may do it: the chain's fee payer is the only signer.
pub async fn refund(chain: &dyn Chain, channel: &Pubkey) -> Result<RefundReport, CliError> {
    let lane = Lane::channel(chain, channel, "refund").await?;
    let now = chain.clock().await?.unix_timestamp;
    match lane.accounts.channel.status(now) {
        LaneStatus::Refundable => {}
        LaneStatus::Open => {
            return Err(CliError::state(
                "the channel is open: the funder runs `amp request-close` first \
                 (or the recipient `amp close`)",
            ))
        }
        LaneStatus::Closing { refundable_at } => {
            return Err(CliError::state(format!(
                "the grace period runs until {}; the recipient may still settle until then",
                utc(refundable_at)
            )))
        }
    }
    check_no_delegations(&lane)?;
    let refunded = chain.token_balance(&lane.keys.vault).await?.unwrap_or(0);
    let rent_returned =
        lamports(chain, &lane.keys.channel).await? + lamports(chain, &lane.keys.vault).await?;
    let signature = chain.send(&transactions::refund(&lane.keys), &[]).await?;
    Ok(RefundReport {
        channel: *channel,
        funder: lane.keys.funder,
        refunded,
        rent_returned,
        signature,
        decimals: lane.mint.decimals,
    })
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
    // A voucher is public: anyone may have settled it already, leaving nothing to pay.
    let signed = signed.filter(|s| s.voucher.cumulative != lane.accounts.settled());
    let with_voucher = signed.is_some();
    let paid = match signed {
        Some(signed) => {
            check_settleable(&lane, &signed, now)?;
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
            signed.voucher.cumulative - lane.accounts.settled()
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

fn check_no_delegations(lane: &Lane) -> Result<(), CliError> {
    let count = lane.accounts.channel.delegations;
    if count > 0 {
        return Err(CliError::state(format!(
            "the channel still has {count} delegation(s); they must be closed first"
        )));
    }
    Ok(())
}

pub(super) async fn lamports(chain: &dyn Chain, address: &Pubkey) -> Result<u64, CliError> {
    Ok(chain.account(address).await?.map_or(0, |a| a.lamports))
}

impl fmt::Display for OpenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Opened channel {}", self.channel)?;
        writeln!(
            f,
            "  deposit             {}",
            self.mint.tokens(self.deposit)
        )?;
        writeln!(f, "  recipient           {}", self.recipient)?;
        writeln!(f, "  mint                {}", self.mint.address)?;
        writeln!(f, "  vouchers signed by  {}", self.authorized_signer)?;
        writeln!(f, "  grace period        {}", seconds(self.grace_period))?;
        if self.expires_at != 0 {
            writeln!(f, "  expires             {}", utc(self.expires_at))?;
        }
        writeln!(f, "  nonce               {}", self.nonce)?;
        writeln!(f, "  generation          {}", self.generation)?;
        writeln!(
            f,
            "  rent fronted        {} lamports (returned at close)",
            self.rent
        )?;
        write!(f, "  signature           {}", self.signature)
    }
}

impl fmt::Display for TopUpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |units| format_tokens(units, self.decimals);
        writeln!(f, "Added {} to channel {}", t(self.amount), self.channel)?;
        writeln!(f, "  deposited           {}", t(self.deposited))?;
        write!(f, "  signature           {}", self.signature)
    }
}

impl fmt::Display for RequestCloseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Close requested for channel {}", self.channel)?;
        writeln!(
            f,
            "  refundable at       {} (run `amp refund` then)",
            utc(self.refundable_at)
        )?;
        write!(f, "  signature           {}", self.signature)
    }
}

impl fmt::Display for RefundReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Closed channel {}", self.channel)?;
        writeln!(
            f,
            "  refunded            {} to {}",
            format_tokens(self.refunded, self.decimals),
            self.funder
        )?;
        writeln!(f, "  rent returned       {} lamports", self.rent_returned)?;
        write!(f, "  signature           {}", self.signature)
    }
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
