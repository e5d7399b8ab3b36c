//! Why the client could not pay, or did not: one enum for every path, so a
//! caller matches on what to do (top up, widen the policy, give up).

use anchor_lang::prelude::Pubkey;
use http::StatusCode;

use super::file::LaneFileError;
use super::spend::{ApprovalKind, Exceeded, SpendLogError};
use crate::chain::ChainError;
use crate::manifest::ErrorBody;

/// Why the client could not pay or did not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request or its response failed at the HTTP level (connection, timeout, body).
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A chain read or transaction (open, top-up, close, refund) failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The lane file could not be read, written or locked.
    #[error(transparent)]
    LaneFile(#[from] LaneFileError),
    /// Signing would pass the user's budget; nothing was signed.
    #[error("budget exceeded: {needed} more would be signed, {available} of the budget {budget} is left")]
    BudgetExceeded {
        /// The policy's whole budget.
        budget: u64,
        /// What this payment (or delegation cap) would add.
        needed: u64,
        /// What is left of the budget.
        available: u64,
    },
    /// The lane cannot pay what is required and cannot be topped up (a
    /// delegated lane, or the policy's `max_deposit`).
    #[error("lane {lane} cannot pay {required}: its limit is {limit}")]
    LaneExhausted {
        /// The lane (Channel or Delegation address).
        lane: Pubkey,
        /// The cumulative amount the next credential must cover.
        required: u64,
        /// The most the lane can ever pay.
        limit: u64,
    },
    /// The service's manifest could not be fetched or parsed (`GET
    /// /.well-known/amp.json` failed or is not an AMP manifest).
    #[error("{service}: no usable AMP manifest: {reason}")]
    Discovery {
        /// The service's origin.
        service: String,
        /// What went wrong fetching or reading it.
        reason: String,
    },
    /// The service's terms are outside the policy.
    #[error("{service}: terms refused: {reason}")]
    Terms {
        /// The service's origin.
        service: String,
        /// Which term the policy refuses.
        reason: String,
    },
    /// The service refused the credential for good.
    #[error("{service} refused the payment ({status}): {}: {}", .body.error, .body.message)]
    Refused {
        /// The service's origin.
        service: String,
        /// The HTTP status of the refusal.
        status: StatusCode,
        /// The service's AMP error body (code and message).
        body: Box<ErrorBody>,
    },
    /// A transaction only this agent can send (a close request, a refund
    /// after the service vanished, an open no service sponsors) needs SOL
    /// that its fee payer does not hold.
    #[error("{action} needs about {needed} lamports of SOL in {payer}, which holds {balance}: send it some SOL (for example `solana transfer {payer} 0.01`)")]
    NeedsSol {
        /// What was to be sent.
        action: &'static str,
        /// The account that pays the fee (and any rent).
        payer: anchor_lang::prelude::Pubkey,
        /// Lamports needed (an estimate that errs high).
        needed: u64,
        /// Lamports it holds.
        balance: u64,
    },
    /// The client holds no open lane for this service or lane address.
    #[error("no open lane pays {0}")]
    NoLane(String),
    /// Opening, topping up and refunding need a chain and the funder's wallet.
    #[error("this client has no {0}: it can only spend from lanes it was given")]
    Missing(&'static str),
    /// A misuse or inconsistent setup (bad URL, missing signer, a grant for
    /// another key); the message says what.
    #[error("{0}")]
    Config(String),
    /// The wallet's token account cannot pay a deposit (a Token-2022 account
    /// with the CPI Guard on); the message says what to do.
    #[error("{0}")]
    CannotDeposit(String),
    /// A retry was needed but the request's body is a stream that cannot be replayed.
    #[error("the request cannot be sent again (its body is a stream)")]
    NotRetryable,
    /// The service answered a credit payment for a metered response with a
    /// non-AMP failure: it does not serve the credit endpoint.
    #[error("{service} does not accept credit top-ups ({status})")]
    CreditUnsupported {
        /// The service's origin.
        service: String,
        /// The HTTP status it answered with.
        status: StatusCode,
    },
    /// A payment would pass one of the policy's spend limits; nothing was signed.
    #[error("{service}: {exceeded}")]
    SpendLimit {
        /// The service the payment was for.
        service: String,
        /// Which limit, and how far it is used.
        exceeded: Exceeded,
    },
    /// The policy does not let the agent pay this service; nothing was
    /// sent to it beyond discovery.
    #[error("{service}: not allowed: {reason}")]
    NotAllowed {
        /// The service's origin.
        service: String,
        /// Which list refused it.
        reason: String,
    },
    /// The approval hook said no.
    #[error("{service}: not approved: {kind} for {amount}")]
    NotApproved {
        /// What was asked.
        kind: ApprovalKind,
        /// The service's origin.
        service: String,
        /// How much it would have moved.
        amount: u64,
    },
    /// Depositing would put more in open channels at once than the policy's
    /// `max_in_channels`.
    #[error("{service}: depositing {amount} would put {} in channels, above the policy's {max}", .held.saturating_add(*.amount))]
    ChannelsFull {
        /// The service's origin.
        service: String,
        /// The deposit or top-up refused.
        amount: u64,
        /// What the agent's channels hold already.
        held: u64,
        /// The policy's cap.
        max: u64,
    },
    /// The spend log could not be read or written.
    #[error(transparent)]
    SpendLog(#[from] SpendLogError),
    /// A JSON body (a response read with [`AmpResponse::json`](super::AmpResponse::json)) did not parse.
    #[error("response body: {0}")]
    Decode(#[from] serde_json::Error),
}
