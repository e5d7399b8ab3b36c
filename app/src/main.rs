//! `amp`: parse the command line, set up logging, run, report errors.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Warnings, without the embedded bank's internal chatter.
const DEFAULT_LOG: &str = "warn,tarpc=error,solana_metrics=error,solana_runtime=error";

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
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: amp_cli::cli::Cli) -> anyhow::Result<()> {
    let command = command_name(&cli.command);
    amp_cli::cli::run(cli)
        .await
        .with_context(|| format!("amp {command}"))
}

fn command_name(command: &amp_cli::cli::Command) -> &'static str {
    use amp_cli::cli::Command;
    match command {
        Command::Channel(_) => "channel show",
        Command::Open(_) => "open",
        Command::TopUp { .. } => "top-up",
        Command::Close { .. } => "close",
        Command::RequestClose { .. } => "request-close",
        Command::Refund { .. } => "refund",
        Command::Settle { .. } => "settle",
        Command::Delegate { .. } => "delegate",
        Command::Revoke { .. } => "revoke",
        Command::CloseDelegation { .. } => "close-delegation",
        Command::Pay(_) => "pay",
        Command::Lanes(_) => "lanes",
        Command::Demo(_) => "demo",
        Command::Serve(_) => "serve",
    }
}
