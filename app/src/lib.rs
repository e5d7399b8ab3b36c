//! The `amp` command line as a library: every command is a function over the
//! SDK's [`Chain`](amp_sdk::chain::Chain), so the binary runs it against a
//! cluster and the tests run it against the embedded bank.

pub mod amount;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod demo;
pub mod error;
pub mod listen;
pub mod local_error;
pub mod max_prices;
pub mod outbound;
pub mod output;
pub mod proxy;
pub mod spend_policy;
pub mod stdout;
pub mod usage;

pub use error::CliError;
