//! Program accounts and their pure state transitions (unit-testable without a bank).

pub mod channel;

pub use channel::*;
