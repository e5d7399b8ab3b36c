//! The agent itself: the client handle, its shared state, and the small
//! helpers every job of the client uses (origins, URLs, the clock).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use reqwest::Url;
use solana_keypair::Keypair;

use crate::chain::Chain;
use crate::voucher::VoucherSigner;

use super::book::{Book, Ledger, Refusal};
use super::errors::ClientError;
use super::file::LaneRecord;
use super::policy::Policy;
use super::session::Sessions;
use super::spend::{Approver, Spending};

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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) chain: Option<Arc<dyn Chain>>,
    pub(super) wallet: Option<Arc<Keypair>>,
    pub(super) signer: SharedSigner,
    pub(super) policy: Policy,
    pub(super) ledger: Ledger,
    /// One lane opening per service at a time.
    pub(super) services: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// One top-up per lane at a time.
    pub(super) top_ups: Mutex<HashMap<Pubkey, Arc<tokio::sync::Mutex<()>>>>,
    /// Sessions the services issued, per lane.
    pub(super) sessions: Sessions,
    /// The spend limits' windows and the spend log.
    pub(super) spending: Spending,
    /// Held across an open or top-up while the policy caps what channels
    /// hold, so two deposits cannot pass the cap together.
    pub(super) depositing: tokio::sync::Mutex<()>,
    /// Asked before opens, top-ups and payments of at least its threshold.
    pub(super) approval: Option<(u64, Approver)>,
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

    pub(super) fn chain(&self) -> Result<&Arc<dyn Chain>, ClientError> {
        self.inner
            .chain
            .as_ref()
            .ok_or(ClientError::Missing("chain"))
    }

    pub(super) fn wallet(&self) -> Result<&Arc<Keypair>, ClientError> {
        self.inner
            .wallet
            .as_ref()
            .ok_or(ClientError::Missing("wallet"))
    }

    pub(super) fn record(&self, lane: &Pubkey) -> Result<LaneRecord, ClientError> {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map(|l| l.record.clone()))
            .ok_or_else(|| ClientError::NoLane(lane.to_string()))
    }

    /// Whether `lane` is this agent's own channel (not a delegation it was given).
    pub(super) fn is_own(&self, lane: &Pubkey) -> bool {
        self.inner
            .ledger
            .with(|b| b.lane(lane).is_some_and(|l| l.record.delegate.is_none()))
    }

    /// Runs `f` on the books (for the stream meter, which lives beside them).
    pub(super) fn ledger_with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        self.inner.ledger.with(f)
    }

    /// Whether the budget lets `lane` sign `more` beyond what it owes.
    pub(super) fn can_sign_more(&self, lane: &Pubkey, more: u64) -> Result<(), ClientError> {
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
    pub(super) fn credit_of(&self, lane: &Pubkey) -> u64 {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map_or(0, |l| l.record.manifest.credit))
    }
}

/// The service a URL belongs to: its origin, `scheme://host[:port]`.
pub(super) fn origin(url: &Url) -> Result<String, ClientError> {
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(ClientError::Config(format!("{url} has no origin")));
    }
    Ok(origin.ascii_serialization())
}

pub(super) fn parse_url(text: &str) -> Result<Url, ClientError> {
    Url::parse(text).map_err(|e| ClientError::Config(format!("{text:?} is not a URL: {e}")))
}

/// The wall clock in unix seconds, for the program's checks of terms.
pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
