//! Program accounts and their pure state transitions (unit-testable without a bank).

pub mod channel;
pub mod delegation;
pub mod lane;

pub use channel::*;
pub use delegation::*;
pub use lane::*;
