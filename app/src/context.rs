//! The options every command takes (`-u`, `-k`, `--output`, the fee and
//! commitment options) and the cluster, wallet, fee payer and RPC settings
//! they resolve to. Resolved only by the commands that need them, so
//! `amp demo` runs without any configuration at all.

use std::path::PathBuf;

use amp_sdk::fees::FeePolicy;
use amp_sdk::rpc::{Cluster, RpcChain, RpcConfig};
use clap::{Args, ValueEnum};
use solana_commitment_config::{CommitmentConfig, CommitmentLevel};
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

    /// Solana CLI configuration file [default: ~/.config/solana/cli/config.yml];
    /// before the command (`amp serve` has a --config of its own).
    #[arg(
        short = 'C',
        long = "config",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config_file: Option<PathBuf>,

    /// Commitment of reads, and that transactions are awaited to
    /// [default: the Solana CLI config's, else confirmed].
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "COMMITMENT",
        help_heading = "Global options"
    )]
    pub commitment: Option<Commitment>,

    /// Keypair file that pays transaction fees (and the rent of token
    /// accounts amp creates) instead of the wallet, which still signs for itself.
    #[arg(
        long,
        global = true,
        value_name = "KEYPAIR",
        help_heading = "Global options"
    )]
    pub fee_payer: Option<PathBuf>,

    /// A fixed compute-unit price in micro-lamports, instead of one read
    /// from recent prioritization fees.
    #[arg(
        long = "with-compute-unit-price",
        global = true,
        value_name = "MICRO_LAMPORTS",
        help_heading = "Global options"
    )]
    pub compute_unit_price: Option<u64>,

    /// The highest compute-unit price ever paid, in micro-lamports
    /// [default: 100000].
    #[arg(
        long,
        global = true,
        value_name = "MICRO_LAMPORTS",
        help_heading = "Global options"
    )]
    pub max_compute_unit_price: Option<u64>,

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
    /// Solana CLI's configuration, else the defaults; and how it sends.
    pub fn context(&self) -> Result<Context, CliError> {
        let solana = SolanaConfig::load_from(self.config_file.as_deref())?;
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
            .or(solana.keypair_path.clone())
            .map(|p| config::expand_home(&p))
            .unwrap_or_else(config::default_keypair_path);
        let commitment = match self.commitment {
            Some(commitment) => commitment.into(),
            None => solana.commitment()?.unwrap_or(CommitmentLevel::Confirmed),
        };
        Ok(Context {
            cluster,
            keypair_path,
            rpc: self.rpc_config(commitment, FeePolicy::default())?,
            fee_payer: self.fee_payer()?,
        })
    }

    /// `base` with the fee options over it; a fixed price over the cap is
    /// refused rather than lowered.
    pub fn fees(&self, base: FeePolicy) -> Result<FeePolicy, CliError> {
        let fees = FeePolicy {
            compute_unit_price: self.compute_unit_price.or(base.compute_unit_price),
            max_compute_unit_price: self
                .max_compute_unit_price
                .unwrap_or(base.max_compute_unit_price),
            ..base
        };
        fees.validate()
            .map_err(|e| CliError::usage(e.to_string()))?;
        Ok(fees)
    }

    /// How the RPC chain reads and sends: `commitment`, and `fees` with
    /// the fee options over them.
    pub fn rpc_config(
        &self,
        commitment: CommitmentLevel,
        fees: FeePolicy,
    ) -> Result<RpcConfig, CliError> {
        Ok(RpcConfig {
            commitment: CommitmentConfig { commitment },
            fees: self.fees(fees)?,
            ..RpcConfig::default()
        })
    }

    /// The `--fee-payer` keypair, read now so a bad file fails before anything is sent.
    pub fn fee_payer(&self) -> Result<Option<Keypair>, CliError> {
        self.fee_payer
            .as_deref()
            .map(|path| Ok(amp_sdk::keypair::read(config::expand_home(path))?))
            .transpose()
    }

    /// Whether results are for people (progress bars and side notes on stderr).
    pub fn for_people(&self) -> bool {
        self.output == OutputFormat::Display
    }
}

/// `--commitment`'s values, as the Solana CLI spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

impl From<Commitment> for CommitmentLevel {
    fn from(commitment: Commitment) -> Self {
        match commitment {
            Commitment::Processed => Self::Processed,
            Commitment::Confirmed => Self::Confirmed,
            Commitment::Finalized => Self::Finalized,
        }
    }
}

/// The cluster and wallet a cluster command uses, and how it sends.
pub struct Context {
    pub cluster: Cluster,
    pub keypair_path: PathBuf,
    /// Commitment, fees and timeouts of the RPC chain.
    pub rpc: RpcConfig,
    /// Pays fees instead of the wallet (`--fee-payer`).
    pub fee_payer: Option<Keypair>,
}

impl Context {
    /// Reads the wallet's keypair file.
    pub fn wallet(&self) -> Result<Keypair, CliError> {
        Ok(amp_sdk::keypair::read(&self.keypair_path)?)
    }

    /// The RPC chain, paying fees from the `--fee-payer`, else from `wallet`
    /// (which signs what it must itself either way).
    pub fn chain(&self, wallet: &Keypair) -> RpcChain {
        tracing::debug!(cluster = %self.cluster, url = self.cluster.url(), "using RPC");
        let payer = self.fee_payer.as_ref().unwrap_or(wallet);
        RpcChain::with_config(&self.cluster, payer.insecure_clone(), self.rpc.clone())
    }

    /// The wallet and the RPC chain it pays fees on: what most commands need.
    pub fn wallet_and_chain(&self) -> Result<(Keypair, RpcChain), CliError> {
        let wallet = self.wallet()?;
        let chain = self.chain(&wallet);
        Ok((wallet, chain))
    }
}
