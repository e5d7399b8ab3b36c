//! How reports reach stdout: for people, or as JSON (`--output json`), the
//! Solana CLI's convention.

use std::fmt::Display;
use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people.
    #[default]
    Display,
    /// Pretty-printed JSON.
    Json,
    /// JSON on one line.
    JsonCompact,
}

/// Prints `report` in `format`, followed by a newline.
pub fn print<R: Serialize + Display>(report: &R, format: OutputFormat) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Display => writeln!(stdout, "{report}"),
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut stdout, report)?;
            writeln!(stdout)
        }
        OutputFormat::JsonCompact => {
            serde_json::to_writer(&mut stdout, report)?;
            writeln!(stdout)
        }
    }
}
