//! The options every command takes (`-u`, `-k`, `--output`) and the cluster
//! and wallet they resolve to. Resolved only by the commands that need them,
//! so `amp demo` runs without any configuration at all.

use std::path::PathBuf;

use amp_sdk::rpc::{Cluster, RpcChain};
use clap::Args;
use solana_keypair::Keypair;

use crate::config::{self, SolanaConfig};
use crate::error::CliError;
use crate::output::OutputFormat;

/// The global options, as given on the command line.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Cluster: localnet, devnet, testnet, mainnet-beta (l, d, t, m) or an RPC URL.
    #[arg(
        short = 'u',
        long = "url",
        global = true,
        value_name = "URL_OR_MONIKER",
        help_heading = "Global options"
    )]
    pub url: Option<Cluster>,

    /// Wallet keypair file (Solana CLI format) [default: ~/.config/solana/id.json].
    #[arg(
        short = 'k',
        long = "keypair",
        global = true,
        value_name = "KEYPAIR",
        help_heading = "Global options"
    )]
    pub keypair: Option<PathBuf>,

    /// How to print results: display, json or json-compact.
    #[arg(
        long,
        global = true,
        value_enum,
        hide_possible_values = true,
        default_value_t = OutputFormat::Display,
        help_heading = "Global options"
    )]
    pub output: OutputFormat,
}

impl GlobalArgs {
    /// The cluster and wallet a cluster command uses: the options, else the
    /// Solana CLI's configuration, else the defaults.
    pub fn context(&self) -> Result<Context, CliError> {
        let solana = SolanaConfig::load();
        let cluster = match (&self.url, &solana.json_rpc_url) {
            (Some(cluster), _) => cluster.clone(),
            (None, Some(url)) => url
                .parse()
                .map_err(|e| CliError::usage(format!("Solana CLI config json_rpc_url: {e}")))?,
            (None, None) => config::DEFAULT_CLUSTER,
        };
        let keypair_path = self
            .keypair
            .clone()
            .or(solana.keypair_path)
            .map(|p| config::expand_home(&p))
            .unwrap_or_else(config::default_keypair_path);
        Ok(Context {
            cluster,
            keypair_path,
        })
    }

    /// Whether results are for people (progress bars and side notes on stderr).
    pub fn for_people(&self) -> bool {
        self.output == OutputFormat::Display
    }
}

/// The cluster and wallet a cluster command uses.
pub struct Context {
    pub cluster: Cluster,
    pub keypair_path: PathBuf,
}

impl Context {
    /// Reads the wallet's keypair file.
    pub fn wallet(&self) -> Result<Keypair, CliError> {
        Ok(amp_sdk::keypair::read(&self.keypair_path)?)
    }

    /// The RPC chain, paying fees from `wallet`.
    pub fn chain(&self, wallet: &Keypair) -> RpcChain {
        tracing::debug!(cluster = %self.cluster, url = self.cluster.url(), "using RPC");
        RpcChain::new(&self.cluster, wallet.insecure_clone())
    }

    /// The wallet and the RPC chain it pays fees on: what most commands need.
    pub fn wallet_and_chain(&self) -> Result<(Keypair, RpcChain), CliError> {
        let wallet = self.wallet()?;
        let chain = self.chain(&wallet);
        Ok((wallet, chain))
    }
}
