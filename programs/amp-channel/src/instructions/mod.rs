//! One file per instruction: its accounts, their checks, and its handler.

pub mod close;
pub mod close_delegation;
pub mod delegate;
pub mod open;
pub mod refund;
pub mod request_close;
pub mod revoke;
pub mod settle;
pub mod settle_into;
pub mod top_up;

pub use close::*;
pub use close_delegation::*;
pub use delegate::*;
pub use open::*;
pub use refund::*;
pub use request_close::*;
pub use revoke::*;
pub use settle::*;
pub use settle_into::*;
pub use top_up::*;
