//! The AMP Rust SDK: everything agents, services and tools need to use AMP
//! payment channels, built on the program crate's own types.

#[cfg(feature = "embedded")]
pub mod embedded;
pub mod instructions;
pub mod pda;

/// The program crate, re-exported so users need one dependency.
pub use amp_channel as program;
