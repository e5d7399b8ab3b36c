//! `amp demo`: the whole story on an embedded bank, no setup and no network
//! (the story itself is in [`crate::demo`]).

use clap::Args;

use crate::context::GlobalArgs;
use crate::demo::{self, DemoOptions, DemoReport};
use crate::error::CliError;
use crate::stdout::StdoutToStderr;

/// Run the whole story locally, no setup and no network.
///
/// An embedded Solana bank, a USDC-like mint, a paid API on 127.0.0.1
/// (per-token completions, per-call answers, per-second streams) and an
/// agent that opens a channel, makes the calls and closes; then a report
/// of what it cost on-chain, next to one transaction per request.
#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Paid calls the agent makes.
    #[arg(long, default_value_t = 1_000)]
    pub calls: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl DemoCmd {
    /// Needs no cluster, wallet or configuration: only the output format,
    /// which decides whether a progress bar is drawn.
    pub async fn run(self, globals: &GlobalArgs) -> Result<DemoReport, CliError> {
        let options = DemoOptions {
            calls: self.calls,
            progress: !self.quiet && globals.for_people(),
            ..Default::default()
        };
        // The embedded programs print log lines; the report owns stdout.
        let _quiet = StdoutToStderr::start();
        demo::run(options).await
    }
}
