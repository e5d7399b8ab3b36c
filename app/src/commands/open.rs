//! `amp open`: a channel from the wallet to a recipient, with a deposit.

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::program::constants::{MAX_GRACE_PERIOD, MIN_GRACE_PERIOD};
use amp_sdk::program::error::AmpError;
use amp_sdk::program::instructions::OpenArgs;
use amp_sdk::transactions::{self, OpenOptions};
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use super::lane::{check_depositor, lamports, random_nonce, signer, MintInfo};
use crate::amount::Amount;
use crate::config;
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::{display, seconds, utc};

/// Open a channel from the wallet to a recipient, with a deposit.
#[derive(Debug, Args)]
pub struct OpenCmd {
    /// Who the channel pays (the service's wallet).
    #[arg(long)]
    pub recipient: Pubkey,
    /// The token mint (SPL Token or Token-2022).
    #[arg(long)]
    pub mint: Pubkey,
    /// Deposit, in tokens (e.g. 10 or 0.25).
    #[arg(long)]
    pub amount: Amount,
    /// Grace period after a close request: 3600, 90s, 15m, 1h, 7d (60 s to 30 days).
    #[arg(long, value_parser = config::parse_duration, default_value = "1h")]
    pub grace: u32,
    /// Channel nonce [default: random].
    #[arg(long)]
    pub nonce: Option<u64>,
    /// The key that signs vouchers, if not the wallet (a hot key).
    #[arg(long)]
    pub signer: Option<Pubkey>,
    /// Close the channel automatically this long from now (e.g. 30d).
    #[arg(long, value_parser = config::parse_duration, value_name = "DURATION")]
    pub expires_in: Option<u32>,
}

impl OpenCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<OpenReport, CliError> {
        let (wallet, chain) = globals.context()?.wallet_and_chain()?;
        let expires_at = match self.expires_in {
            Some(seconds) => chain.clock().await?.unix_timestamp + i64::from(seconds),
            None => 0,
        };
        let request = OpenRequest {
            recipient: self.recipient,
            mint: self.mint,
            amount: self.amount,
            grace_period: self.grace,
            nonce: self.nonce,
            signer: self.signer,
            expires_at,
        };
        open(&chain, &wallet, request).await
    }
}

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
    let mint = MintInfo::fetch_supported(chain, &request.mint).await?;
    let deposit = request.amount.to_base_units(mint.decimals)?;
    let nonce = request.nonce.unwrap_or_else(random_nonce);
    let args = OpenArgs {
        recipient: request.recipient,
        nonce,
        deposit,
        grace_period: request.grace_period,
        expires_at: request.expires_at,
        authorized_signer: request.signer,
    };
    // The program's own rule for the terms, said for people.
    let now = chain.clock().await?.unix_timestamp;
    transactions::check_open(funder, mint.address, &args, now).map_err(terms_refused)?;
    let funder_token = amp_sdk::pda::associated_token(&funder, &mint.address, &mint.token_program);
    let balance = chain.token_balance(&funder_token).await?.unwrap_or(0);
    if balance < deposit {
        return Err(CliError::state(format!(
            "the wallet's token account {funder_token} holds {}, less than the deposit {}",
            mint.tokens(balance),
            mint.tokens(deposit)
        )));
    }
    check_depositor(chain, &funder_token).await?;
    let options = OpenOptions {
        funder_token: None,
        create_token_accounts: Some(chain.fee_payer()),
        payer: None,
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

/// The program's refusal of a channel's terms, said for people.
fn terms_refused(error: AmpError) -> CliError {
    CliError::usage(match error {
        AmpError::SelfChannel => {
            "the recipient is the wallet itself: a funder cannot pay itself".to_owned()
        }
        AmpError::InvalidGracePeriod => format!(
            "the grace period must be between {} and {}",
            seconds(MIN_GRACE_PERIOD),
            seconds(MAX_GRACE_PERIOD)
        ),
        AmpError::ZeroAmount => "the deposit must be more than 0".to_owned(),
        other => format!("the channel's terms are refused: {other}"),
    })
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
