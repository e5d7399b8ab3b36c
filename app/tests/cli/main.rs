//! The `amp` command line: the binary itself, the cluster commands against
//! the embedded bank, the demo, and the charging proxy.
//!
//! One test binary with a module per area: each test binary links the whole
//! Solana stack, so one instead of four builds faster and takes less disk.

mod binary;
mod commands;
mod demo;
mod proxy;
mod served;
mod status;
mod streamed_tokens;
