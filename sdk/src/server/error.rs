//! Why a paywall could not start or stop.

use crate::chain::ChainError;
use crate::store::StoreError;

/// Why a paywall could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid or unreadable (bad TOML, no mint, a
    /// route not starting with `/`); the message says what.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading the mints or the clock, or creating the recipient's token
    /// account, failed on-chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The voucher store could not be opened or closed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The recipient's keypair file could not be read.
    #[error(transparent)]
    Keypair(#[from] crate::keypair::KeypairError),
}
