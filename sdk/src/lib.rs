//! The AMP Rust SDK: everything agents, services and tools need to use AMP
//! payment channels, built on the program crate's own types.
//!
//! By default it is the protocol core (vouchers, headers, the manifest and
//! error bodies, PDAs, instruction and transaction builders, mints, the
//! [`chain::Chain`] trait over RPC). Each side is a feature: `client` (the
//! paying agent), `server` (the paywall and its settler), `sqlite` and
//! `postgres` (durable voucher stores), `embedded` (an in-process bank).

// Every public item says what it is for; CI's clippy -D warnings keeps it so.
#![warn(missing_docs)]

pub mod base58;
pub mod chain;
#[cfg(feature = "client")]
pub mod client;
pub mod decimal;
pub mod durability;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod fees;
pub mod headers;
pub mod instructions;
pub mod keypair;
pub mod lane;
pub mod manifest;
pub mod mint;
pub mod pda;
pub mod pricing;
pub mod rpc;
#[cfg(feature = "server")]
pub mod server;
pub mod session;
pub mod sponsor;
pub mod sse;
#[cfg(feature = "server")]
pub mod store;
pub mod transactions;
pub mod voucher;

/// The program crate, re-exported so users need one dependency.
pub use amp_channel as program;
