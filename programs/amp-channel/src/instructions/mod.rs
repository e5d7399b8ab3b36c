//! One file per instruction: its accounts, their checks, and its handler.

pub mod close;
pub mod open;
pub mod refund;
pub mod request_close;
pub mod settle;
pub mod top_up;

pub use close::*;
pub use open::*;
pub use refund::*;
pub use request_close::*;
pub use settle::*;
pub use top_up::*;
