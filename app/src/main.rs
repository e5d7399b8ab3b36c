//! `amp`: parse the command line, set up logging, run, report errors.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Warnings, without the embedded bank's internal chatter; and a line per
/// settlement (`amp serve`'s settler says what it settled, at info).
const DEFAULT_LOG: &str = "warn,amp_sdk::server::settle=info,tarpc=error,solana_metrics=error,\
solana_runtime=error,solana_accounts_db=error";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = amp_cli::cli::Cli::parse();
    // Logs go to stderr (RUST_LOG=debug for more); results go to stdout.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = cli.command.name();
    match amp_cli::cli::run(cli)
        .await
        .with_context(|| format!("amp {command}"))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
