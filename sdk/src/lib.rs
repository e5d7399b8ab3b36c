//! The AMP Rust SDK: everything agents, services and tools need to use AMP
//! payment channels, built on the program crate's own types.

// Every public item says what it is for; CI's clippy -D warnings keeps it so.
#![warn(missing_docs)]

pub mod base58;
pub mod chain;
pub mod client;
pub mod decimal;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod headers;
pub mod instructions;
pub mod keypair;
pub mod lane;
pub mod manifest;
pub mod mint;
pub mod pda;
pub mod pricing;
pub mod rpc;
pub mod server;
pub mod store;
pub mod transactions;
pub mod voucher;

/// The program crate, re-exported so users need one dependency.
pub use amp_channel as program;
