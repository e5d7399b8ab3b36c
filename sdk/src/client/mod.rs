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
//!   [`CREDIT_PATH`](crate::manifest::CREDIT_PATH) (see `docs/streaming.md`).
//!
//! [`AmpClient::close`] closes cooperatively, and falls back to
//! `request_close` when the service is gone; [`AmpClient::refund_due`] then
//! takes the refund once the grace period is over.
//!
//! The parts, in the order they depend on each other (each uses only those
//! above it; this file holds the [`AmpClient`] core they all extend):
//!
//! | module | what |
//! |---|---|
//! | `errors`, `policy` | [`ClientError`]; the [`Policy`] and its checks of manifests and deposits |
//! | `file`, `book` | the lane file; the books (budget, lanes) and their verbs |
//! | `pricing`, `refusal` | a route's price; how to react to a service's refusal |
//! | `builder` | [`AmpClientBuilder`] |
//! | `lanes` | finding, opening and funding the lane paying a service |
//! | `signing` | credentials, signed within the budget or posted on their own |
//! | `stream` | metered responses, paid while they are read |
//! | `paying` | a paid request, from claim to receipt |
//! | `close`, `delegation` | ending lanes; delegated lanes |

mod book;
mod builder;
mod close;
mod delegation;
mod errors;
mod file;
mod lanes;
mod paying;
mod policy;
mod pricing;
mod refusal;
mod signing;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use reqwest::Url;
use solana_keypair::Keypair;

use crate::chain::Chain;
use crate::voucher::VoucherSigner;

use book::{Book, Ledger, Refusal};

pub use builder::AmpClientBuilder;
pub use close::CloseOutcome;
pub use delegation::Grant;
pub use errors::ClientError;
pub use file::{Durability, GrantedLane, LaneFileError, LaneRecord, LaneStatus};
pub use policy::Policy;
pub use stream::AmpResponse;

/// A voucher signer the client can share across tasks.
pub type SharedSigner = Arc<dyn VoucherSigner + Send + Sync>;

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

impl AmpClient {
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

    /// Runs `f` on the books (for the stream meter, which lives beside them).
    fn ledger_with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        self.inner.ledger.with(f)
    }

    /// Whether the budget lets `lane` sign `more` beyond what it owes.
    fn can_sign_more(&self, lane: &Pubkey, more: u64) -> Result<(), ClientError> {
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

    /// The credit the service extends to a metered response on `lane`.
    fn credit_of(&self, lane: &Pubkey) -> u64 {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map_or(0, |l| l.record.manifest.credit))
    }
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

/// The wall clock in unix seconds, for the program's checks of terms.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
