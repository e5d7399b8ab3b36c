//! `amp localnet`: a Solana node for development on this machine, and
//! `amp localnet fund`, which gives a wallet its test tokens and SOL.

mod fund;
mod start;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::context::GlobalArgs;
use crate::error::CliError;
use crate::output::Report;

pub use fund::{FundCmd, FundReport};
pub use start::{LocalnetReport, StartArgs};

/// Where the node keeps its accounts and keys unless told otherwise (as
/// `solana-test-validator` keeps `test-ledger`).
pub const DEFAULT_LEDGER: &str = "amp-ledger";

/// Run a local Solana node with the AMP programs (JSON-RPC on 8899, PubSub on 8900).
///
/// It runs the AMP programs natively beside the released SPL Token,
/// Token-2022 and Associated Token Account programs, with a cluster's
/// 400 ms slots, fees and rent, and a USDC-like test mint whose authority it
/// keeps. Point any Solana client at it (`-u localnet`). Ctrl-C stops it;
/// its ledger directory keeps accounts and keys across restarts.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalnetCmd {
    #[command(subcommand)]
    pub command: Option<LocalnetCommand>,
    #[command(flatten)]
    pub start: StartArgs,
}

#[derive(Debug, Subcommand)]
pub enum LocalnetCommand {
    /// Give a wallet test tokens (and SOL for fees) on a running `amp localnet`.
    Fund(FundCmd),
}

/// The ledger directory option, shared by the node and `fund`.
#[derive(Clone, Debug, Args)]
pub struct LedgerArg {
    /// Directory that keeps the node's accounts and keys across restarts.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_LEDGER)]
    pub ledger: PathBuf,
}

impl LocalnetCmd {
    pub async fn run(self, globals: &GlobalArgs) -> Result<Box<dyn Report>, CliError> {
        Ok(match self.command {
            Some(LocalnetCommand::Fund(command)) => Box::new(command.run(globals).await?),
            None => Box::new(self.start.run().await?),
        })
    }
}
