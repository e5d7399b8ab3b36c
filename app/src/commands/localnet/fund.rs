//! `amp localnet fund`: test tokens and SOL for a wallet, from the node's
//! test mint (whose authority the ledger directory holds).

use std::fmt;

use amp_sdk::chain::Chain;
use amp_sdk::decimal::u64_string;
use amp_sdk::rpc::{Cluster, RpcChain};
use anchor_lang::prelude::Pubkey;
use clap::Args;
use serde::Serialize;
use solana_signature::Signature;
use solana_signer::Signer;

use super::LedgerArg;
use crate::amount::{format_tokens, Amount};
use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::display;

#[derive(Debug, Args)]
pub struct FundCmd {
    /// The wallet: an address, or a keypair file (created when missing, so
    /// a new wallet is one command).
    pub wallet: String,
    /// Test tokens to mint to it (e.g. 100 or 2.5).
    pub amount: Amount,
    /// SOL to airdrop to it as well, for fees.
    #[arg(long, value_name = "SOL", default_value = "1")]
    pub sol: Amount,
    #[command(flatten)]
    pub ledger: LedgerArg,
}

#[derive(Clone, Debug, Serialize)]
pub struct FundReport {
    #[serde(serialize_with = "display")]
    pub wallet: Pubkey,
    #[serde(serialize_with = "display")]
    pub mint: Pubkey,
    #[serde(serialize_with = "display")]
    pub token_account: Pubkey,
    #[serde(with = "u64_string")]
    pub minted: u64,
    /// The token account's balance afterwards.
    #[serde(with = "u64_string")]
    pub balance: u64,
    #[serde(with = "u64_string")]
    pub lamports: u64,
    #[serde(serialize_with = "display")]
    pub signature: Signature,
}

impl FundCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<FundReport, CliError> {
        let (info, authority) = amp_localnet::node::read_ledger_dir(&self.ledger.ledger)
            .map_err(|e| CliError::usage(e.to_string()))?;
        let wallet = wallet_address(&self.wallet)?;
        let mint: Pubkey = info
            .test_mint
            .parse()
            .map_err(|_| CliError::usage("node.json: test mint is not an address"))?;
        let cluster = match &globals.url {
            Some(cluster) => cluster.clone(),
            None => Cluster::Custom(info.rpc_url.clone()),
        };
        let minted = self
            .amount
            .to_base_units(amp_localnet::test_mint::DECIMALS)?;
        let lamports = self.sol.to_base_units(9)?;
        let chain = RpcChain::new(&cluster, authority.insecure_clone());
        let instructions =
            amp_localnet::test_mint::fund_instructions(&mint, &authority.pubkey(), &wallet, minted)
                .map_err(|e| CliError::usage(e.to_string()))?;
        let signature = chain.send(&instructions, &[]).await?;
        if lamports > 0 {
            let airdrop = chain
                .client()
                .request_airdrop(&wallet, lamports)
                .await
                .map_err(|e| CliError::state(format!("airdrop: {e}")))?;
            wait_confirmed(&chain, &airdrop).await?;
        }
        let token_account = amp_sdk::pda::associated_token(&wallet, &mint, &anchor_spl::token::ID);
        let balance = chain
            .token_balance(&token_account)
            .await?
            .unwrap_or_default();
        Ok(FundReport {
            wallet,
            mint,
            token_account,
            minted,
            balance,
            lamports,
            signature,
        })
    }
}

/// An address, or the public key of a keypair file, which is created (a
/// new wallet) when it does not exist.
fn wallet_address(text: &str) -> Result<Pubkey, CliError> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let path = crate::config::expand_home(std::path::Path::new(text));
    if !path.exists() {
        let keypair = solana_keypair::Keypair::new();
        amp_sdk::keypair::write(&keypair, &path)?;
        eprintln!(
            "new wallet {} written to {}",
            keypair.pubkey(),
            path.display()
        );
        return Ok(keypair.pubkey());
    }
    Ok(amp_sdk::keypair::read(&path)?.pubkey())
}

async fn wait_confirmed(chain: &RpcChain, signature: &Signature) -> Result<(), CliError> {
    for _ in 0..100 {
        if chain
            .client()
            .confirm_transaction(signature)
            .await
            .map_err(|e| CliError::state(format!("airdrop: {e}")))?
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(CliError::state(format!(
        "airdrop {signature} was not confirmed within 20 s"
    )))
}

impl fmt::Display for FundReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "minted {} test tokens to {}",
            format_tokens(self.minted, 6),
            self.wallet
        )?;
        writeln!(
            f,
            "token account {} holds {}",
            self.token_account,
            format_tokens(self.balance, 6)
        )?;
        writeln!(f, "airdropped {} SOL", format_tokens(self.lamports, 9))?;
        write!(f, "signature {}", self.signature)
    }
}
