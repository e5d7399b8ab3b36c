//! What can go wrong in a command, for people: each variant says what
//! happened and, where it helps, what to do.

use amp_sdk::chain::ChainError;
use amp_sdk::keypair::KeypairError;
use amp_sdk::manifest::ErrorBody;
use amp_sdk::server::ServerError;
use anchor_lang::prelude::Pubkey;

use crate::amount::AmountError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Keypair(#[from] KeypairError),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("no AMP channel or delegation at {0}")]
    NoLane(Pubkey),
    #[error("{0} is a delegation; {1} works on channels only (use the channel address)")]
    NotAChannel(Pubkey, &'static str),
    #[error("{0} is not a delegation; {1} works on delegations only (see `amp channel show`)")]
    NotADelegation(Pubkey, &'static str),
    #[error("only the {role} ({expected}) can {action}; the wallet is {actual}")]
    WrongWallet {
        role: &'static str,
        expected: Pubkey,
        actual: Pubkey,
        action: &'static str,
    },
    /// The request makes no sense in the lane's current state.
    #[error("{0}")]
    State(String),
    /// A command-line value that parses but cannot be used.
    #[error("{0}")]
    Usage(String),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A paid service refused the request with an AMP error body.
    #[error("the service refused: {} ({})", .0.message, .0.error)]
    Refused(Box<ErrorBody>),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

impl CliError {
    pub(crate) fn state(message: impl Into<String>) -> Self {
        Self::State(message.into())
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}
