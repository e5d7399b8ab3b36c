//! The channel program (and the relay calling it through CPI) running
//! natively in the bank with the real SPL Token and Token-2022 programs.
//!
//! One test binary per part of the project, each file a module: every test
//! binary links the whole Solana stack, so fewer binaries build faster and
//! take far less disk.

mod adversarial;
mod close;
mod cpi_relay;
mod delegation;
mod donations;
mod ed25519;
mod lifecycle;
mod mints;
mod open;
mod supply_chain;
