//! One file per instruction: its accounts, their checks, and its handler.

pub mod distribute;
pub mod forward;
pub mod init_relay;
pub mod open_downstream;
pub mod sweep;
pub mod withdraw;

pub use distribute::*;
pub use forward::*;
pub use init_relay::*;
pub use open_downstream::*;
pub use sweep::*;
pub use withdraw::*;
