//! The channel program (and the relay calling it through CPI) running
//! natively in the bank with the real SPL Token and Token-2022 programs.
//!
//! One file per instruction (the test of `settle` is in `settle.rs`), and
//! one per theme that crosses instructions: `accounts` (substituted
//! accounts), `donations` (nothing is stranded), `ed25519` (the signature
//! instruction), `events`, `mints` (Token-2022 extensions), `sponsored`
//! (rent fronted by a sponsor returns to it on every closing path) and
//! `cpi_relay` (the example program calling AMP). Shared helpers are in
//! `support`.
//!
//! One test binary per part of the project, each file a module: every test
//! binary links the whole Solana stack, so fewer binaries build faster and
//! take far less disk.

mod support;

mod close;
mod close_delegation;
mod delegate;
mod open;
mod refund;
mod request_close;
mod revoke;
mod settle;
mod settle_into;
mod top_up;

mod accounts;
mod cpi_relay;
mod donations;
mod ed25519;
mod events;
mod mints;
mod sponsored;
