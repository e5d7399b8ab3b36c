//! The agent side of AMP (SPEC section 5, "Client duties"): a reqwest
//! client that pays HTTP services through AMP lanes, within a budget.
//!
//! ```no_run
//! # async fn example(chain: amp_sdk::embedded::EmbeddedBank, wallet: solana_keypair::Keypair,
//! #                  usdc: anchor_lang::prelude::Pubkey) -> Result<(), amp_sdk::client::ClientError> {
//! use amp_sdk::client::{AmpClient, Policy};
//!
//! let agent = AmpClient::builder("agent-lanes.json", Policy::new(usdc, 5_000_000))
//!     .chain(chain)
//!     .wallet(wallet)
//!     .build()
//!     .await?;
//! let answer = agent.get("https://api.example.com/v1/hello").await?.text().await?;
//! agent.close("https://api.example.com").await?;
//! # Ok(()) }
//! ```
//!
//! For every request the client:
//!
//! * finds the lane paying the request's origin, or discovers the service's
//!   manifest (`GET /.well-known/amp.json`, or the one a 402 embeds) and opens
//!   a channel on terms chosen from it and from the [`Policy`];
//! * claims the route's price (`per_call`) and signs a credential for what
//!   the lane owes with it, after checking and committing the amount against
//!   the budget in one atomic step, and after making the seq and
//!   amount durable in the lane file;
//! * retries once on a seq race (`AMP_INVALID_SEQ`), on `AMP_UNDERFUNDED`
//!   naming what is required, and on a lane that vanished (opening a new one);
//! * reads `AMP-Owed` to know what the next credential must cover, and tops
//!   the lane up before it runs dry;
//! * for a metered response it can measure (`per_second`, `per_byte`), pays
//!   as it reads by posting fresh credentials to
//!   [`CREDIT_PATH`] (see `docs/streaming.md`).
//!
//! [`AmpClient::close`] closes cooperatively, and falls back to
//! `request_close` when the service is gone; [`AmpClient::refund_due`] then
//! takes the refund once the grace period is over.

mod book;
mod file;
mod pricing;
mod stream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use amp_channel::constants::{MAX_GRACE_PERIOD, MIN_GRACE_PERIOD};
use amp_channel::instructions::OpenArgs;
use amp_channel::state::{Delegation, DelegationTerms, LaneStatus as ChainLaneStatus};
use anchor_lang::prelude::Pubkey;
use http::StatusCode;
use reqwest::{Request, Url};
use serde::{Deserialize, Serialize};
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::chain::{Chain, ChainError, ChainExt, TxSigner};
use crate::decimal::u64_string;
use crate::headers::{Credential, Receipt};
use crate::manifest::{
    ErrorBody, ErrorCode, Manifest, Price, CLOSE_PATH, CREDIT_PATH, MANIFEST_PATH,
};
use crate::voucher::{Voucher, VoucherSigner};
use crate::{instructions, pda, transactions};

use book::{Book, Ledger, Refusal};

pub use file::{Durability, GrantedLane, LaneFileError, LaneRecord, LaneStatus, Snapshot};
pub use stream::AmpResponse;

/// A voucher signer the client can share across tasks.
pub type SharedSigner = Arc<dyn VoucherSigner + Send + Sync>;

/// What the user allows the agent to do with its money.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The mint the agent pays in; services that do not accept it are refused.
    pub mint: Pubkey,
    /// The most the agent ever signs, across all services and restarts of
    /// one lane file, in the mint's smallest unit.
    pub budget: u64,
    /// Deposit of a new channel; `None`: a quarter of the budget (never more
    /// than the budget left). Raised to the service's `min_deposit`.
    pub deposit: Option<u64>,
    /// Most one channel may hold (its deposit and top-ups; delegated caps count).
    pub max_deposit: u64,
    /// Grace period of a new channel (seconds); raised to the service's minimum.
    pub grace_period: u32,
    /// Longest grace period accepted: a vanished service keeps the deposit this long.
    pub max_grace_period: u32,
    /// Top a lane up once it can pay less than this; `None`: a quarter of its limit.
    pub top_up_below: Option<u64>,
    /// How much a top-up adds; `None`: the deposit a new channel would get.
    pub top_up_amount: Option<u64>,
    /// Seqs and budget reserved ahead, in requests: the lane file is written
    /// once per lease. 0 writes it before every request.
    pub lease: u64,
    /// Retries of a request refused for a seq race (`AMP_INVALID_SEQ`).
    pub seq_retries: u32,
    /// The manifest's `network` the agent accepts (`solana:devnet`); `None`: any.
    pub network: Option<String>,
    /// How hard the lane file is pushed to disk.
    pub durability: Durability,
}

impl Policy {
    /// A policy paying in `mint` up to `budget`, with defaults for the rest.
    pub fn new(mint: Pubkey, budget: u64) -> Self {
        Self {
            mint,
            budget,
            deposit: None,
            max_deposit: u64::MAX,
            grace_period: 3_600,
            max_grace_period: 7 * 24 * 3_600,
            top_up_below: None,
            top_up_amount: None,
            lease: 32,
            seq_retries: 1,
            network: None,
            durability: Durability::Full,
        }
    }
}

/// Why the client could not pay or did not.
#[derive(Debug, thiserror::Error)]
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
    /// A JSON body (a response read with [`AmpResponse::json`]) did not parse.
    #[error("response body: {0}")]
    Decode(#[from] serde_json::Error),
}

/// A delegated lane, handed by a funder to a sub-agent ([`AmpClient::delegate`],
/// [`AmpClient::adopt`]); plain JSON, so it can travel in any message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The service's origin.
    pub service: String,
    /// The channel's funder (the agent that delegated).
    #[serde(with = "file::base58")]
    pub funder: Pubkey,
    /// The channel's recipient: the service's payee.
    #[serde(with = "file::base58")]
    pub recipient: Pubkey,
    /// The token the channel pays in.
    #[serde(with = "file::base58")]
    pub mint: Pubkey,
    /// The mint's token program (SPL Token or Token-2022).
    #[serde(with = "file::base58")]
    pub token_program: Pubkey,
    /// The channel's nonce, which with funder and recipient derives its address.
    #[serde(with = "u64_string")]
    pub nonce: u64,
    /// The Delegation address: the lane the sub-agent's vouchers name.
    #[serde(with = "file::base58")]
    pub delegation: Pubkey,
    /// The sub-agent's key, which signs those vouchers.
    #[serde(with = "file::base58")]
    pub delegate: Pubkey,
    /// The Delegation's generation (its creation slot), which its vouchers carry.
    #[serde(with = "u64_string")]
    pub generation: u64,
    /// The most the sub-agent can ever spend.
    #[serde(with = "u64_string")]
    pub cap: u64,
    /// The channel's grace period, in seconds.
    pub grace_period: u32,
    /// The service's terms, as the funder accepted them.
    pub manifest: Manifest,
}

/// How a close ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The service settled and closed the lane; the rest is refunded already.
    Closed {
        /// Total the service settled on the lane, in the mint's smallest unit.
        settled: u64,
        /// The closing transaction; empty when the channel was already gone.
        signature: String,
    },
    /// The service did not close it: the close was requested on-chain, and
    /// [`AmpClient::refund_due`] takes the refund from `refundable_at` on.
    Closing {
        /// When the grace period ends (unix seconds).
        refundable_at: i64,
    },
}

/// The budget at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetStatus {
    /// The policy's budget, in the mint's smallest unit.
    pub budget: u64,
    /// Signed, or committed to signing, or delegated, so far.
    pub spent: u64,
    /// Held: spent plus leases reserved ahead (and, after a restart, every
    /// lease, since what was signed under it is unknown).
    pub held: u64,
    /// What can still be committed: the budget minus what is held.
    pub available: u64,
}

/// A lane as [`AmpClient::lanes`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneInfo {
    /// The lane as the lane file records it.
    pub record: LaneRecord,
    /// Last seq used.
    pub seq: u64,
    /// Highest amount committed for signing.
    pub signed: u64,
}

/// Builds an [`AmpClient`].
pub struct AmpClientBuilder {
    path: PathBuf,
    policy: Policy,
    chain: Option<Arc<dyn Chain>>,
    wallet: Option<Arc<Keypair>>,
    signer: Option<SharedSigner>,
    http: Option<reqwest::Client>,
}

impl AmpClientBuilder {
    /// The cluster the agent opens, tops up and refunds on.
    pub fn chain(mut self, chain: impl Chain + 'static) -> Self {
        self.chain = Some(Arc::new(chain));
        self
    }

    /// The funder: pays deposits and signs `open`, `top_up`, `delegate`,
    /// `request_close`. It also signs vouchers unless [`signer`](Self::signer) is set.
    pub fn wallet(mut self, wallet: Keypair) -> Self {
        self.wallet = Some(Arc::new(wallet));
        self
    }

    /// A separate voucher key (a hot key, or a sub-agent's delegate key).
    pub fn signer(mut self, signer: SharedSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The HTTP client to use (timeouts, proxies, TLS roots).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Locks and reads the lane file, and resolves lanes whose opening was
    /// interrupted.
    pub async fn build(self) -> Result<AmpClient, ClientError> {
        let signer: SharedSigner = match (&self.signer, &self.wallet) {
            (Some(signer), _) => Arc::clone(signer),
            (None, Some(wallet)) => Arc::clone(wallet) as SharedSigner,
            (None, None) => {
                return Err(ClientError::Config(
                    "a client needs a wallet or a voucher signer".into(),
                ))
            }
        };
        if self.policy.max_grace_period < MIN_GRACE_PERIOD {
            return Err(ClientError::Config(format!(
                "max_grace_period must be at least {MIN_GRACE_PERIOD} s"
            )));
        }
        let path = self.path.clone();
        let durability = self.policy.durability;
        let (lane_file, snapshot) =
            tokio::task::spawn_blocking(move || file::LaneFile::open(&path, durability))
                .await
                .map_err(|e| ClientError::Config(format!("opening the lane file: {e}")))??;
        let book = Book::from_snapshot(self.policy.budget, snapshot);
        let client = AmpClient {
            inner: Arc::new(Inner {
                http: self.http.unwrap_or_default(),
                chain: self.chain,
                wallet: self.wallet,
                signer,
                policy: self.policy,
                ledger: Ledger::new(book, lane_file),
                services: Mutex::new(HashMap::new()),
                top_ups: Mutex::new(HashMap::new()),
            }),
        };
        client.resolve_openings().await?;
        let status = client.budget();
        tracing::info!(
            file = %client.inner.ledger.path().display(),
            lanes = client.lanes().len(),
            spent = status.spent,
            budget = status.budget,
            "AMP client ready"
        );
        Ok(client)
    }
}

/// A budgeted, paying HTTP client. Cheap to clone: clones share lanes and budget.
#[derive(Clone)]
pub struct AmpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    chain: Option<Arc<dyn Chain>>,
    wallet: Option<Arc<Keypair>>,
    signer: SharedSigner,
    policy: Policy,
    ledger: Ledger,
    /// One lane opening per service at a time.
    services: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// One top-up per lane at a time.
    top_ups: Mutex<HashMap<Pubkey, Arc<tokio::sync::Mutex<()>>>>,
}

/// A request's claim on a lane: its price stays owed only once the server took it.
struct Ticket<'a> {
    client: &'a AmpClient,
    lane: Pubkey,
    amount: u64,
    admitted: bool,
}

impl<'a> Ticket<'a> {
    fn new(client: &'a AmpClient, lane: Pubkey, amount: u64) -> Self {
        client.inner.ledger.with(|b| b.claim(&lane, amount));
        Self {
            client,
            lane,
            amount,
            admitted: false,
        }
    }

    /// Moves the claim to another lane (the first one vanished).
    fn move_to(&mut self, lane: Pubkey) {
        let (old, amount) = (self.lane, self.amount);
        self.client.inner.ledger.with(|b| {
            b.release(&old, amount, false);
            b.claim(&lane, amount);
        });
        self.lane = lane;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let (lane, amount, admitted) = (self.lane, self.amount, self.admitted);
        self.client
            .inner
            .ledger
            .with(|b| b.release(&lane, amount, admitted));
    }
}

/// What came back for a credential.
enum Answer {
    /// Not an AMP refusal (success, or the service's own error).
    Passed(reqwest::Response),
    Refused(StatusCode, Box<ErrorBody>),
}

impl AmpClient {
    /// Starts building a client whose lanes live in the file at `path`.
    pub fn builder(path: impl Into<PathBuf>, policy: Policy) -> AmpClientBuilder {
        AmpClientBuilder {
            path: path.into(),
            policy,
            chain: None,
            wallet: None,
            signer: None,
            http: None,
        }
    }

    /// The underlying HTTP client, to build requests for [`send`](Self::send).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The policy this client was built with.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The key that signs this client's vouchers.
    pub fn signer(&self) -> Pubkey {
        self.inner.signer.voucher_pubkey()
    }

    /// `GET url`, paid.
    pub async fn get(&self, url: &str) -> Result<AmpResponse, ClientError> {
        self.send(self.inner.http.get(url)).await
    }

    /// Builds and sends a request, paid.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<AmpResponse, ClientError> {
        self.execute(request.build()?).await
    }

    /// Sends `request` with a credential, opening or topping up its
    /// service's lane first when needed.
    pub async fn execute(&self, request: Request) -> Result<AmpResponse, ClientError> {
        let service = origin(request.url())?;
        let path = request.url().path().to_owned();
        let mut lane = self.lane_for(&service, None).await?;
        let price = self.price(&lane, &path)?;
        let upfront = pricing::is_upfront(&price);
        let mut ticket = Ticket::new(self, lane, if upfront { price.rate } else { 0 });
        let mut original = Some(request);
        let mut floor = 0u64;
        let mut seq_retries = self.inner.policy.seq_retries;
        let mut retries = 2u32;
        loop {
            let credential = self.credential(&lane, floor).await?;
            let mut attempt = match original.as_ref().and_then(Request::try_clone) {
                Some(copy) => copy,
                None => original.take().ok_or(ClientError::NotRetryable)?,
            };
            credential.write(attempt.headers_mut());
            tracing::debug!(%service, %path, seq = credential.seq, amount = credential.cumulative, "paid request");
            let response = self.inner.http.execute(attempt).await?;
            let (status, body) = match answer(response).await? {
                Answer::Passed(response) => {
                    return Ok(self.accepted(ticket, &service, price, credential.seq, response));
                }
                Answer::Refused(status, body) => (status, body),
            };
            if let Some(owed) = body.owed {
                self.inner.ledger.with(|b| b.owe_at_least(&lane, owed));
            }
            match body.error {
                ErrorCode::InvalidSeq if seq_retries > 0 => {
                    seq_retries -= 1;
                    tracing::debug!(%service, seq = credential.seq, "seq race; retrying with a new seq");
                }
                ErrorCode::Underfunded if retries > 0 => {
                    retries -= 1;
                    match (body.required, body.owed) {
                        // What is owed plus this request: pay that.
                        (Some(required), Some(owed)) if self.plausible(&lane, required, owed) => {
                            floor = required;
                        }
                        // The lane is below the service's minimum deposit.
                        (Some(required), None) => self.make_limit(&lane, required).await?,
                        // Above what the lane can pay as the server sees it.
                        (None, _) => self.refresh_limit(&lane).await?,
                        _ => {
                            return Err(ClientError::Refused {
                                service,
                                status,
                                body,
                            })
                        }
                    }
                    tracing::debug!(%service, ?body.required, "underfunded; retrying");
                }
                ErrorCode::NoChannel | ErrorCode::Closed
                    if retries > 0 && self.is_own(&lane) && self.inner.wallet.is_some() =>
                {
                    retries -= 1;
                    tracing::info!(%service, %lane, code = %body.error, "lane refused as gone; opening another");
                    self.lane_gone(&lane).await?;
                    lane = self.lane_for(&service, body.manifest.clone()).await?;
                    ticket.move_to(lane);
                    floor = 0;
                }
                _ => {
                    return Err(ClientError::Refused {
                        service,
                        status,
                        body,
                    })
                }
            }
        }
    }

    /// A response the service let through: learn what is owed, start paying
    /// for a metered body, and top up in the background when running low.
    fn accepted(
        &self,
        mut ticket: Ticket<'_>,
        service: &str,
        price: Price,
        seq: u64,
        response: reqwest::Response,
    ) -> AmpResponse {
        let lane = ticket.lane;
        let receipt = Receipt::from_headers(response.headers()).ok();
        let meter = match receipt {
            // Not charged (a free path): the credential was not recorded.
            None => None,
            Some(receipt) => {
                ticket.admitted = true;
                if pricing::is_measurable(&price) {
                    Some(stream::Meter::start(
                        self.clone(),
                        lane,
                        service.to_owned(),
                        price,
                    ))
                } else {
                    self.inner
                        .ledger
                        .with(|b| b.observe(&lane, seq, receipt.owed));
                    None
                }
            }
        };
        drop(ticket);
        self.maybe_top_up(lane);
        AmpResponse::new(response, receipt, meter)
    }

    /// A credential for `lane` covering what it owes (and at least `floor`):
    /// tops up first if the lane cannot pay it; refuses beyond the budget.
    async fn credential(&self, lane: &Pubkey, floor: u64) -> Result<Credential, ClientError> {
        let lease = self.inner.policy.lease;
        let mut topped_up = false;
        loop {
            match self.inner.ledger.with(|b| b.commit(lane, floor, lease)) {
                Ok(commit) => {
                    self.inner.ledger.sync(commit.wait_for).await?;
                    let voucher = Voucher {
                        lane: commit.lane,
                        generation: commit.generation,
                        seq: commit.seq,
                        cumulative: commit.amount,
                        expires_at: 0,
                    };
                    return Ok(Credential::sign(self.inner.signer.as_ref(), &voucher));
                }
                Err(Refusal::OverLimit { amount, limit }) if !topped_up => {
                    topped_up = true;
                    self.top_up(lane, amount - limit).await?;
                }
                Err(Refusal::OverLimit { amount, limit }) => {
                    return Err(ClientError::LaneExhausted {
                        lane: *lane,
                        required: amount,
                        limit,
                    })
                }
                Err(Refusal::Budget { needed, available }) => {
                    tracing::warn!(%lane, needed, available, "budget exceeded; not signing");
                    return Err(ClientError::BudgetExceeded {
                        budget: self.inner.policy.budget,
                        needed,
                        available,
                    });
                }
                Err(Refusal::NoLane) => return Err(ClientError::NoLane(lane.to_string())),
            }
        }
    }

    /// Posts a fresh credential to one of the service's AMP endpoints,
    /// retrying seq races and an underfunded amount once.
    async fn post_credential(
        &self,
        lane: &Pubkey,
        url: &str,
        floor: u64,
    ) -> Result<Answer, ClientError> {
        let mut floor = floor;
        let mut seq_retries = self.inner.policy.seq_retries;
        let mut retries = 1u32;
        loop {
            let credential = self.credential(lane, floor).await?;
            let mut headers = http::HeaderMap::new();
            credential.write(&mut headers);
            let response = self.inner.http.post(url).headers(headers).send().await?;
            match answer(response).await? {
                Answer::Refused(_, body)
                    if body.error == ErrorCode::InvalidSeq && seq_retries > 0 =>
                {
                    seq_retries -= 1;
                }
                Answer::Refused(_, body)
                    if body.error == ErrorCode::Underfunded
                        && retries > 0
                        && matches!((body.required, body.owed),
                            (Some(required), Some(owed)) if self.plausible(lane, required, owed)) =>
                {
                    retries -= 1;
                    if let (Some(required), Some(owed)) = (body.required, body.owed) {
                        self.inner.ledger.with(|b| b.owe_at_least(lane, owed));
                        floor = required;
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Pays what a metered response used so far (`POST /.well-known/amp/credit`),
    /// which extends the server's credit for it.
    pub(crate) async fn pay_credit(&self, lane: &Pubkey, service: &str) -> Result<(), ClientError> {
        let url = format!("{service}{CREDIT_PATH}");
        match self.post_credential(lane, &url, 0).await? {
            Answer::Passed(response) if response.status().is_success() => {
                if let Ok(receipt) = Receipt::from_headers(response.headers()) {
                    self.inner
                        .ledger
                        .with(|b| b.owe_at_least(lane, receipt.owed));
                }
                Ok(())
            }
            Answer::Passed(response) => Err(ClientError::CreditUnsupported {
                service: service.to_owned(),
                status: response.status(),
            }),
            Answer::Refused(status, body) => Err(ClientError::Refused {
                service: service.to_owned(),
                status,
                body,
            }),
        }
    }

    /// Closes the lane paying `service`: cooperatively, with a credential
    /// covering what is owed; or, when the service does not answer or will
    /// not close, by requesting the close on-chain.
    pub async fn close(&self, service: &str) -> Result<CloseOutcome, ClientError> {
        let service = origin(&parse_url(service)?)?;
        let lane = self
            .inner
            .ledger
            .with(|b| b.open_lane(&service))
            .ok_or_else(|| ClientError::NoLane(service.clone()))?;
        let url = format!("{service}{CLOSE_PATH}");
        let failure = match self.post_credential(&lane, &url, 0).await {
            Ok(Answer::Passed(response)) if response.status().is_success() => {
                match response.json::<ClosedBody>().await {
                    Ok(closed) if closed.closed => return self.closed(&lane, closed).await,
                    Ok(_) => "the service did not close the lane".to_owned(),
                    Err(e) => format!("unreadable close answer: {e}"),
                }
            }
            Ok(Answer::Passed(response)) => format!("the service answered {}", response.status()),
            Ok(Answer::Refused(status, body)) => {
                format!("{status} {}: {}", body.error, body.message)
            }
            Err(error @ (ClientError::Http(_) | ClientError::BudgetExceeded { .. })) => {
                error.to_string()
            }
            Err(error) => return Err(error),
        };
        tracing::warn!(%service, %lane, reason = %failure, "no cooperative close; requesting it on-chain");
        if !self.is_own(&lane) {
            return Err(ClientError::Config(format!(
                "{service} did not close the delegated lane {lane} ({failure}); only its funder can end it"
            )));
        }
        self.request_close(&lane).await
    }

    /// Closes every open lane (see [`close`](Self::close)).
    pub async fn close_all(&self) -> Vec<(String, Result<CloseOutcome, ClientError>)> {
        let services: Vec<String> = self.inner.ledger.with(|b| {
            b.lanes
                .iter()
                .filter(|l| l.record.status == LaneStatus::Open)
                .map(|l| l.record.service.clone())
                .collect()
        });
        let mut outcomes = Vec::with_capacity(services.len());
        for service in services {
            let outcome = self.close(&service).await;
            outcomes.push((service, outcome));
        }
        outcomes
    }

    /// The service closed the lane: check that the channel is gone and retire it.
    async fn closed(&self, lane: &Pubkey, closed: ClosedBody) -> Result<CloseOutcome, ClientError> {
        if let (Some(chain), true) = (&self.inner.chain, self.is_own(lane)) {
            if chain.channel(lane).await?.is_some() {
                tracing::warn!(%lane, "the service says closed but the channel is still there");
                return self.request_close(lane).await;
            }
        }
        let spent = self.inner.ledger.with(|b| {
            b.lane(lane)
                .map_or(0, |l| l.signed.saturating_add(l.record.granted_total()))
        });
        self.inner.ledger.with(|b| b.retire(lane, spent));
        self.inner.ledger.save().await?;
        tracing::info!(%lane, settled = closed.settled, signature = %closed.signature, "lane closed cooperatively");
        Ok(CloseOutcome::Closed {
            settled: closed.settled,
            signature: closed.signature,
        })
    }

    /// `request_close` on-chain (unless the channel is already closing or gone).
    async fn request_close(&self, lane: &Pubkey) -> Result<CloseOutcome, ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let record = self.record(lane)?;
        let now = chain.clock().await?.unix_timestamp;
        let Some(channel) = chain.channel(lane).await? else {
            let spent = self.inner.ledger.with(|b| {
                b.lane(lane)
                    .map_or(0, |l| l.signed.saturating_add(l.record.granted_total()))
            });
            self.inner.ledger.with(|b| b.retire(lane, spent));
            self.inner.ledger.save().await?;
            return Ok(CloseOutcome::Closed {
                settled: spent,
                signature: String::new(),
            });
        };
        let refundable_at = match channel.status(now) {
            ChainLaneStatus::Open => {
                let signature = chain
                    .send(
                        &transactions::request_close(&record.keys()),
                        &[wallet.as_ref() as &TxSigner],
                    )
                    .await?;
                tracing::info!(%lane, %signature, "close requested on-chain");
                now.saturating_add(i64::from(channel.grace_period))
            }
            ChainLaneStatus::Closing { refundable_at } => refundable_at,
            ChainLaneStatus::Refundable => now,
        };
        self.inner.ledger.with(|b| {
            if let Some(l) = b.lane_mut(lane) {
                l.record.status = LaneStatus::Closing { refundable_at };
            }
            b.bump()
        });
        self.inner.ledger.save().await?;
        Ok(CloseOutcome::Closing { refundable_at })
    }

    /// Refunds every closing lane whose grace period is over (closing the
    /// delegations it granted first); returns the lanes refunded.
    pub async fn refund_due(&self) -> Result<Vec<Pubkey>, ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let now = chain.clock().await?.unix_timestamp;
        let due: Vec<LaneRecord> = self.inner.ledger.with(|b| {
            b.lanes
                .iter()
                .filter(|l| matches!(l.record.status, LaneStatus::Closing { refundable_at } if refundable_at <= now))
                .map(|l| l.record.clone())
                .collect()
        });
        let mut refunded = Vec::new();
        for record in due {
            let keys = record.keys();
            let spent = match chain.channel(&record.lane).await? {
                // Closed meanwhile (the service closed it, or someone refunded).
                None => record.signed.saturating_add(record.granted_total()),
                Some(channel) => {
                    let mut spent = channel.settled;
                    let mut ixs = Vec::new();
                    for granted in &record.granted {
                        let address = pda::delegation(&keys.channel, &granted.delegate).0;
                        if let Some(d) = chain.anchor_account::<Delegation>(&address).await? {
                            spent = spent.saturating_add(d.settled);
                            ixs.push(instructions::close_delegation(
                                &keys,
                                &granted.delegate,
                                wallet.pubkey(),
                            ));
                        }
                    }
                    // Refunding needs no signature; closing a delegation, its closer's.
                    let signers: Vec<&TxSigner> = if ixs.is_empty() {
                        vec![]
                    } else {
                        vec![wallet.as_ref() as &TxSigner]
                    };
                    ixs.extend(transactions::refund(&keys));
                    let signature = chain.send(&ixs, &signers).await?;
                    tracing::info!(lane = %record.lane, %signature, spent, "refunded after the grace period");
                    spent
                }
            };
            self.inner.ledger.with(|b| b.retire(&record.lane, spent));
            self.inner.ledger.save().await?;
            refunded.push(record.lane);
        }
        Ok(refunded)
    }

    /// Gives `delegate` its own lane on this agent's channel to `service`
    /// (opened if needed), with `cap` deposited for it and counted against
    /// this agent's budget. Hand the [`Grant`] to the sub-agent.
    pub async fn delegate(
        &self,
        service: &str,
        delegate: Pubkey,
        cap: u64,
        expires_at: i64,
    ) -> Result<Grant, ClientError> {
        let chain = self.chain()?.clone();
        let wallet = self.wallet()?.clone();
        let service = origin(&parse_url(service)?)?;
        let lane = self.lane_for(&service, None).await?;
        if !self.is_own(&lane) {
            return Err(ClientError::Config(
                "a delegated lane cannot be delegated again".into(),
            ));
        }
        self.inner.ledger.with(|b| {
            let available = b.available();
            if cap > available {
                return Err(ClientError::BudgetExceeded {
                    budget: b.budget,
                    needed: cap,
                    available,
                });
            }
            if let Some(l) = b.lane_mut(&lane) {
                l.record.granted.push(GrantedLane { delegate, cap });
            }
            Ok(())
        })?;
        // Recorded before sending, so a crash never forgets a cap handed out.
        self.inner.ledger.save().await?;
        let record = self.record(&lane)?;
        let keys = record.keys();
        let terms = DelegationTerms {
            delegate,
            cap,
            expires_at,
        };
        let ix = instructions::delegate(&keys, transactions::funder_token(&keys), terms);
        let address = pda::delegation(&keys.channel, &delegate).0;
        let sent = chain.send(&[ix], &[wallet.as_ref() as &TxSigner]).await;
        let delegation = match sent {
            Ok(_) => chain.anchor_account::<Delegation>(&address).await?,
            Err(error) => {
                self.inner.ledger.with(|b| {
                    if let Some(l) = b.lane_mut(&lane) {
                        l.record.granted.retain(|g| g.delegate != delegate);
                    }
                });
                self.inner.ledger.save().await?;
                return Err(error.into());
            }
        };
        let delegation = delegation.ok_or_else(|| {
            ClientError::Config(format!("delegation {address} not found after creating it"))
        })?;
        self.refresh_limit(&lane).await?;
        self.inner.ledger.save().await?;
        tracing::info!(%service, %delegate, cap, delegation = %address, "delegated a lane");
        Ok(Grant {
            service,
            funder: record.funder,
            recipient: record.recipient,
            mint: record.mint,
            token_program: record.token_program,
            nonce: record.nonce,
            delegation: address,
            delegate,
            generation: delegation.generation,
            cap,
            grace_period: record.grace_period,
            manifest: record.manifest,
        })
    }

    /// Takes a delegated lane to spend from (this client's signer must be
    /// the grant's delegate). Adopting the same grant again is a no-op.
    pub async fn adopt(&self, grant: Grant) -> Result<(), ClientError> {
        if self.signer() != grant.delegate {
            return Err(ClientError::Config(format!(
                "the grant is for {}, this client signs as {}",
                grant.delegate,
                self.signer()
            )));
        }
        let service = origin(&parse_url(&grant.service)?)?;
        self.check_manifest(&service, &grant.manifest)?;
        let adopted = self.inner.ledger.with(|b| {
            if let Some(l) = b.lane(&grant.delegation) {
                return Ok(l.record.generation == grant.generation);
            }
            if let Some(existing) = b.open_lane(&service) {
                return Err(ClientError::Config(format!(
                    "{service} is already paid through lane {existing}"
                )));
            }
            b.lanes.push(book::Lane::new(LaneRecord {
                service: service.clone(),
                lane: grant.delegation,
                funder: grant.funder,
                recipient: grant.recipient,
                mint: grant.mint,
                token_program: grant.token_program,
                nonce: grant.nonce,
                delegate: Some(grant.delegate),
                generation: grant.generation,
                limit: grant.cap,
                deposited: grant.cap,
                grace_period: grant.grace_period,
                status: LaneStatus::Open,
                seq: 0,
                signed: 0,
                owed: 0,
                granted: vec![],
                manifest: grant.manifest.clone(),
            }));
            Ok(false)
        })?;
        if !adopted {
            self.inner.ledger.save().await?;
            tracing::info!(%service, lane = %grant.delegation, cap = grant.cap, "adopted a delegated lane");
        }
        Ok(())
    }

    /// The budget: what is spent, held and left.
    pub fn budget(&self) -> BudgetStatus {
        self.inner.ledger.with(|b| BudgetStatus {
            budget: b.budget,
            spent: b.spent(),
            held: b.consumed(),
            available: b.available(),
        })
    }

    /// Every lane this client holds.
    pub fn lanes(&self) -> Vec<LaneInfo> {
        self.inner.ledger.with(|b| {
            b.lanes
                .iter()
                .map(|l| LaneInfo {
                    record: l.record.clone(),
                    seq: l.seq,
                    signed: l.signed,
                })
                .collect()
        })
    }

    /// The open lane paying `service`, if any.
    pub fn lane(&self, service: &str) -> Option<LaneInfo> {
        let service = origin(&parse_url(service).ok()?).ok()?;
        let lane = self.inner.ledger.with(|b| b.open_lane(&service))?;
        self.lanes().into_iter().find(|l| l.record.lane == lane)
    }

    // ---- lanes: discovery, opening, top-ups ----

    /// The open lane of `service`, opening one (once, however many requests
    /// ask at the same time) when there is none.
    async fn lane_for(
        &self,
        service: &str,
        manifest: Option<Manifest>,
    ) -> Result<Pubkey, ClientError> {
        if let Some(lane) = self.inner.ledger.with(|b| b.open_lane(service)) {
            return Ok(lane);
        }
        let gate = {
            let mut services = self
                .inner
                .services
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            Arc::clone(services.entry(service.to_owned()).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(lane) = self.inner.ledger.with(|b| b.open_lane(service)) {
            return Ok(lane);
        }
        let manifest = match manifest {
            Some(manifest) => manifest,
            None => self.discover(service).await?,
        };
        self.open(service, manifest).await
    }

    /// Reads the service's manifest.
    async fn discover(&self, service: &str) -> Result<Manifest, ClientError> {
        let discovery = |reason: String| ClientError::Discovery {
            service: service.to_owned(),
            reason,
        };
        let response = self
            .inner
            .http
            .get(format!("{service}{MANIFEST_PATH}"))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(discovery(format!(
                "{MANIFEST_PATH} answered {}",
                response.status()
            )));
        }
        let manifest: Manifest = response
            .json()
            .await
            .map_err(|e| discovery(e.to_string()))?;
        tracing::debug!(%service, recipient = %manifest.recipient, "discovered the manifest");
        Ok(manifest)
    }

    /// Refuses a manifest the policy cannot pay through.
    fn check_manifest(&self, service: &str, manifest: &Manifest) -> Result<(), ClientError> {
        let policy = &self.inner.policy;
        let refuse = |reason: String| {
            Err(ClientError::Terms {
                service: service.to_owned(),
                reason,
            })
        };
        if manifest.amp_version != crate::manifest::AMP_VERSION {
            return refuse(format!("AMP version {}", manifest.amp_version));
        }
        if manifest.program_id != amp_channel::ID {
            return refuse(format!("program {} is not this SDK's", manifest.program_id));
        }
        if let Some(network) = &policy.network {
            if &manifest.network != network {
                return refuse(format!("network {} instead of {network}", manifest.network));
            }
        }
        if !manifest.mints.iter().any(|m| m.mint == policy.mint) {
            return refuse(format!("mint {} is not accepted", policy.mint));
        }
        if manifest.min_grace_period > policy.max_grace_period {
            return refuse(format!(
                "a grace period of {} s is above the policy's {} s",
                manifest.min_grace_period, policy.max_grace_period
            ));
        }
        Ok(())
    }

    /// The deposit a new channel (or a top-up) gets under the policy.
    fn deposit_for(&self, service: &str, manifest: &Manifest) -> Result<u64, ClientError> {
        let policy = &self.inner.policy;
        let available = self.inner.ledger.with(|b| b.available());
        if available == 0 {
            return Err(ClientError::BudgetExceeded {
                budget: policy.budget,
                needed: 1,
                available,
            });
        }
        let wanted = policy.deposit.unwrap_or((policy.budget / 4).max(1));
        let deposit = wanted.min(available).max(manifest.min_deposit).max(1);
        if deposit > policy.max_deposit {
            return Err(ClientError::Terms {
                service: service.to_owned(),
                reason: format!(
                    "a deposit of {deposit} is above the policy's {}",
                    policy.max_deposit
                ),
            });
        }
        Ok(deposit)
    }

    /// Opens a channel to the service on terms chosen from its manifest and the policy.
    async fn open(&self, service: &str, manifest: Manifest) -> Result<Pubkey, ClientError> {
        let chain = self.chain()?.clone();
        let wallet = self.wallet()?.clone();
        self.check_manifest(service, &manifest)?;
        let policy = &self.inner.policy;
        let deposit = self.deposit_for(service, &manifest)?;
        let grace_period = policy
            .grace_period
            .max(manifest.min_grace_period)
            .clamp(MIN_GRACE_PERIOD, MAX_GRACE_PERIOD);
        let token_program = chain.mint_token_program(&policy.mint).await?;
        let funder = wallet.pubkey();
        let signer = self.signer();
        let args = OpenArgs {
            recipient: manifest.recipient,
            nonce: random_nonce(),
            deposit,
            grace_period,
            expires_at: 0,
            authorized_signer: (signer != funder).then_some(signer),
        };
        let options = transactions::OpenOptions {
            create_token_accounts: Some(chain.fee_payer()),
            ..Default::default()
        };
        let (keys, ixs) = transactions::open(funder, policy.mint, token_program, args, options);
        // Recorded before sending: a crash between the two leaves a record
        // that the next start resolves against the chain, never a lost channel.
        let record = LaneRecord {
            service: service.to_owned(),
            lane: keys.channel,
            funder,
            recipient: manifest.recipient,
            mint: policy.mint,
            token_program,
            nonce: args.nonce,
            delegate: None,
            generation: 0,
            limit: 0,
            deposited: 0,
            grace_period,
            status: LaneStatus::Opening,
            seq: 0,
            signed: 0,
            owed: 0,
            granted: vec![],
            manifest,
        };
        self.inner
            .ledger
            .with(|b| b.lanes.push(book::Lane::new(record)));
        self.inner.ledger.save().await?;
        match chain.send(&ixs, &[wallet.as_ref() as &TxSigner]).await {
            Ok(signature) => {
                tracing::info!(%service, channel = %keys.channel, deposit, grace_period, %signature, "opened a channel")
            }
            Err(error) if error.is_transient() => {
                // The outcome is unknown: the record stays until a start resolves it.
                tracing::warn!(%service, channel = %keys.channel, %error, "open not confirmed");
                self.resolve_opening(&keys.channel, false).await?;
                return self
                    .inner
                    .ledger
                    .with(|b| b.open_lane(service))
                    .ok_or(ClientError::Chain(error));
            }
            Err(error) => {
                self.inner
                    .ledger
                    .with(|b| b.lanes.retain(|l| l.record.lane != keys.channel));
                self.inner.ledger.save().await?;
                return Err(error.into());
            }
        }
        self.resolve_opening(&keys.channel, true).await?;
        self.inner
            .ledger
            .with(|b| b.open_lane(service))
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "channel {} not found after opening it",
                    keys.channel
                ))
            })
    }

    /// Settles a lane recorded as opening against the chain: open if the
    /// channel is there, forgotten if not.
    ///
    /// Right after an unconfirmed open (`forget_missing` false) a missing
    /// channel may still land, so the record stays until a later start.
    async fn resolve_opening(
        &self,
        lane: &Pubkey,
        forget_missing: bool,
    ) -> Result<(), ClientError> {
        let chain = self.chain()?;
        let record = self.record(lane)?;
        match chain.channel(lane).await? {
            Some(channel)
                if channel.funder == record.funder && channel.recipient == record.recipient =>
            {
                self.inner.ledger.with(|b| {
                    if let Some(l) = b.lane_mut(lane) {
                        l.record.generation = channel.generation;
                        l.record.limit = channel.own_lane_limit();
                        l.record.deposited = channel.deposited;
                        l.record.grace_period = channel.grace_period;
                        l.record.status = LaneStatus::Open;
                    }
                });
            }
            _ if !forget_missing => return Ok(()),
            _ => {
                tracing::info!(%lane, "an interrupted open did not land; forgetting it");
                self.inner
                    .ledger
                    .with(|b| b.lanes.retain(|l| l.record.lane != *lane));
            }
        }
        self.inner.ledger.save().await?;
        Ok(())
    }

    /// Resolves every lane left opening by a previous run.
    async fn resolve_openings(&self) -> Result<(), ClientError> {
        if self.inner.chain.is_none() {
            return Ok(());
        }
        let opening: Vec<Pubkey> = self.inner.ledger.with(|b| {
            b.lanes
                .iter()
                .filter(|l| l.record.status == LaneStatus::Opening)
                .map(|l| l.record.lane)
                .collect()
        });
        for lane in opening {
            self.resolve_opening(&lane, true).await?;
        }
        Ok(())
    }

    /// The server refused our lane as absent or closing: learn what the chain says.
    async fn lane_gone(&self, lane: &Pubkey) -> Result<(), ClientError> {
        let chain = self.chain()?;
        match chain.channel(lane).await? {
            Some(channel) => {
                let now = chain.clock().await?.unix_timestamp;
                let refundable_at = match channel.status(now) {
                    ChainLaneStatus::Closing { refundable_at } => refundable_at,
                    ChainLaneStatus::Refundable => now,
                    ChainLaneStatus::Open => {
                        return Err(ClientError::Config(format!(
                            "the service refused lane {lane} as gone, but it is open on this client's chain"
                        )))
                    }
                };
                self.inner.ledger.with(|b| {
                    if let Some(l) = b.lane_mut(lane) {
                        l.record.status = LaneStatus::Closing { refundable_at };
                    }
                });
            }
            None => {
                let spent = self.inner.ledger.with(|b| {
                    b.lane(lane)
                        .map_or(0, |l| l.signed.saturating_add(l.record.granted_total()))
                });
                self.inner.ledger.with(|b| b.retire(lane, spent));
            }
        }
        self.inner.ledger.save().await?;
        Ok(())
    }

    /// Re-reads an own lane's limit from the chain.
    async fn refresh_limit(&self, lane: &Pubkey) -> Result<(), ClientError> {
        if !self.is_own(lane) {
            return Ok(());
        }
        let chain = self.chain()?;
        if let Some(channel) = chain.channel(lane).await? {
            self.inner.ledger.with(|b| {
                if let Some(l) = b.lane_mut(lane) {
                    l.record.limit = channel.own_lane_limit();
                    l.record.deposited = channel.deposited;
                }
            });
        }
        Ok(())
    }

    /// Adds at least `shortfall` to an own lane's deposit (one top-up per
    /// lane at a time; a top-up that another request just made counts).
    async fn top_up(&self, lane: &Pubkey, shortfall: u64) -> Result<(), ClientError> {
        let record = self.record(lane)?;
        let exhausted = || ClientError::LaneExhausted {
            lane: *lane,
            required: record.limit.saturating_add(shortfall),
            limit: record.limit,
        };
        if record.delegate.is_some() || self.inner.chain.is_none() || self.inner.wallet.is_none() {
            return Err(exhausted());
        }
        let gate = {
            let mut top_ups = self.inner.top_ups.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(top_ups.entry(*lane).or_default())
        };
        let _turn = gate.lock().await;
        let target = record.limit.saturating_add(shortfall);
        let current = self.record(lane)?;
        if current.limit >= target {
            return Ok(());
        }
        let wanted = match self.inner.policy.top_up_amount {
            Some(amount) => amount,
            None => self.deposit_for(&current.service, &current.manifest)?,
        };
        let needed = target - current.limit;
        let room = self
            .inner
            .policy
            .max_deposit
            .saturating_sub(current.deposited);
        let amount = wanted.max(needed).min(room);
        if amount < needed {
            return Err(exhausted());
        }
        self.send_top_up(&current, amount).await
    }

    async fn send_top_up(&self, record: &LaneRecord, amount: u64) -> Result<(), ClientError> {
        let chain = self.chain()?;
        let wallet = self.wallet()?;
        let keys = record.keys();
        let signature = chain
            .send(
                &transactions::top_up(&keys, amount),
                &[wallet.as_ref() as &TxSigner],
            )
            .await?;
        let channel = chain.channel(&keys.channel).await?;
        let (limit, deposited) = channel.map_or(
            (
                record.limit.saturating_add(amount),
                record.deposited.saturating_add(amount),
            ),
            |c| (c.own_lane_limit(), c.deposited),
        );
        self.inner.ledger.with(|b| {
            if let Some(l) = b.lane_mut(&record.lane) {
                l.record.limit = l.record.limit.max(limit);
                l.record.deposited = l.record.deposited.max(deposited);
            }
        });
        self.inner.ledger.save().await?;
        tracing::info!(lane = %record.lane, amount, limit, %signature, "topped up");
        Ok(())
    }

    /// Whether a service's `required` is what a request can cost beyond what
    /// it says is owed: at most the credit or one of its prices. A larger
    /// one (a misconfigured service) is not signed.
    fn plausible(&self, lane: &Pubkey, required: u64, owed: u64) -> bool {
        let slack = self.inner.ledger.with(|b| {
            b.lane(lane).map_or(0, |l| {
                let pricing = &l.record.manifest.pricing;
                pricing
                    .routes
                    .values()
                    .map(|p| p.rate)
                    .fold(pricing.default.rate, u64::max)
                    .max(l.record.manifest.credit)
            })
        });
        required <= owed.saturating_add(slack)
    }

    /// Makes sure the lane can pay `limit` in total (a service's minimum).
    async fn make_limit(&self, lane: &Pubkey, limit: u64) -> Result<(), ClientError> {
        let current = self.record(lane)?.limit;
        if current >= limit {
            return self.refresh_limit(lane).await;
        }
        self.top_up(lane, limit - current).await
    }

    /// Makes sure the lane can pay `room` more than it owes, topping it up
    /// now if needed (a stream about to use it).
    pub(crate) async fn make_room(&self, lane: &Pubkey, room: u64) -> Result<(), ClientError> {
        let (limit, owed) = self.inner.ledger.with(|b| {
            b.lane(lane)
                .map_or((0, 0), |l| (l.record.limit, l.record.owed))
        });
        let free = limit.saturating_sub(owed);
        if free >= room {
            return Ok(());
        }
        self.top_up(lane, room - free).await
    }

    /// Tops an own lane up in the background once it can pay less than the
    /// policy's threshold, if the budget could spend more than it holds.
    fn maybe_top_up(&self, lane: Pubkey) {
        let policy = &self.inner.policy;
        if self.inner.chain.is_none() || self.inner.wallet.is_none() {
            return;
        }
        let plan = self.inner.ledger.with(|b| {
            let available = b.available();
            let l = b.lane(&lane)?;
            if l.record.delegate.is_some() || l.record.status != LaneStatus::Open {
                return None;
            }
            let room = l.record.limit.saturating_sub(l.record.owed);
            let threshold = policy.top_up_below.unwrap_or(l.record.limit / 4);
            // What the budget still lets this lane sign, beyond what it owes.
            let spendable = available
                .saturating_add(l.record.signed)
                .saturating_sub(l.record.owed);
            (room < threshold && spendable > room).then(|| (l.record.clone(), spendable - room))
        });
        let Some((record, useful)) = plan else {
            return;
        };
        let gate = {
            let mut top_ups = self.inner.top_ups.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(top_ups.entry(lane).or_default())
        };
        let client = self.clone();
        tokio::spawn(async move {
            let Ok(_turn) = gate.try_lock() else {
                return; // one is running
            };
            let wanted = match client.inner.policy.top_up_amount {
                Some(amount) => Ok(amount),
                None => client.deposit_for(&record.service, &record.manifest),
            };
            let room = client
                .inner
                .policy
                .max_deposit
                .saturating_sub(record.deposited);
            let amount = match wanted {
                Ok(wanted) => wanted.min(useful).min(room),
                Err(_) => return,
            };
            if amount == 0 {
                return;
            }
            let current = match client.record(&lane) {
                Ok(current) if current.limit == record.limit => current,
                _ => return, // topped up meanwhile
            };
            if let Err(error) = client.send_top_up(&current, amount).await {
                tracing::warn!(%lane, %error, "background top-up failed");
            }
        });
    }

    // ---- small helpers ----

    fn chain(&self) -> Result<&Arc<dyn Chain>, ClientError> {
        self.inner
            .chain
            .as_ref()
            .ok_or(ClientError::Missing("chain"))
    }

    fn wallet(&self) -> Result<&Arc<Keypair>, ClientError> {
        self.inner
            .wallet
            .as_ref()
            .ok_or(ClientError::Missing("wallet"))
    }

    fn record(&self, lane: &Pubkey) -> Result<LaneRecord, ClientError> {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map(|l| l.record.clone()))
            .ok_or_else(|| ClientError::NoLane(lane.to_string()))
    }

    /// Whether `lane` is this agent's own channel (not a delegation it was given).
    fn is_own(&self, lane: &Pubkey) -> bool {
        self.inner
            .ledger
            .with(|b| b.lane(lane).is_some_and(|l| l.record.delegate.is_none()))
    }

    fn price(&self, lane: &Pubkey, path: &str) -> Result<Price, ClientError> {
        let record = self.record(lane)?;
        Ok(pricing::price_for(&record.manifest.pricing, path))
    }

    pub(crate) fn ledger_with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        self.inner.ledger.with(f)
    }

    /// Whether the budget lets `lane` sign `more` beyond what it owes.
    pub(crate) fn can_sign_more(&self, lane: &Pubkey, more: u64) -> Result<(), ClientError> {
        match self.inner.ledger.with(|b| b.can_sign_more(lane, more)) {
            Ok(()) => Ok(()),
            Err(Refusal::Budget { needed, available }) => Err(ClientError::BudgetExceeded {
                budget: self.inner.policy.budget,
                needed,
                available,
            }),
            Err(Refusal::NoLane) => Err(ClientError::NoLane(lane.to_string())),
            // Room on the lane is a top-up away; only the budget is final.
            Err(Refusal::OverLimit { .. }) => Ok(()),
        }
    }

    pub(crate) fn credit_of(&self, lane: &Pubkey) -> u64 {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map_or(0, |l| l.record.manifest.credit))
    }
}

/// What `POST /.well-known/amp/close` answers, as the client reads it.
/// Public so that its parser can be fuzzed (the `amp-fuzz` crate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedBody {
    /// Whether the service closed the lane on-chain.
    pub closed: bool,
    /// Total the service settled on the lane, in the mint's smallest unit.
    #[serde(with = "u64_string")]
    pub settled: u64,
    /// The closing transaction's signature; empty when there was none.
    #[serde(default)]
    pub signature: String,
}

/// Tells an AMP refusal (a JSON error body with an AMP code) from anything
/// else, which is handed back untouched.
async fn answer(response: reqwest::Response) -> Result<Answer, ClientError> {
    let status = response.status();
    let amp_status = matches!(status.as_u16(), 400 | 401 | 402 | 409 | 410 | 429);
    if !amp_status {
        return Ok(Answer::Passed(response));
    }
    let headers = response.headers().clone();
    let version = response.version();
    let bytes = response.bytes().await?;
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(&bytes) {
        if body.error.status() == status {
            return Ok(Answer::Refused(status, Box::new(body)));
        }
    }
    // The service's own error: rebuild it for the caller.
    let mut rebuilt = http::Response::new(bytes);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    *rebuilt.version_mut() = version;
    Ok(Answer::Passed(reqwest::Response::from(rebuilt)))
}

/// The service a URL belongs to: its origin, `scheme://host[:port]`.
fn origin(url: &Url) -> Result<String, ClientError> {
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(ClientError::Config(format!("{url} has no origin")));
    }
    Ok(origin.ascii_serialization())
}

fn parse_url(text: &str) -> Result<Url, ClientError> {
    Url::parse(text).map_err(|e| ClientError::Config(format!("{text:?} is not a URL: {e}")))
}

/// A random channel nonce (SPEC §2: clients choose random nonces), from the
/// OS generator behind a fresh keypair.
fn random_nonce() -> u64 {
    let key = Keypair::new().pubkey().to_bytes();
    u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
}
