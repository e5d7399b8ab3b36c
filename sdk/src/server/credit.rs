//! Paying for a metered response while it streams (docs/streaming.md).
//!
//! `POST /.well-known/amp/credit` takes a fresh credential for a lane and
//! records it like any other (new seq, amount at least what is owed, within
//! what the lane can pay), without serving anything. A metered response of
//! that lane whose allowance runs out then claims the room the higher
//! amount made ([`Refill`]): up to `credit` beyond the highest amount signed,
//! minus what is owed and what other requests in flight hold. So a client
//! that pays for what it received keeps its stream going, and the server
//! never serves more than `credit` ahead of what it holds a voucher for.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Response, StatusCode};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::Sleep;

use super::admission::Admission;
use super::cache::LaneCache;
use super::ledger::Ledger;
use super::response::{json, to_json, AmpBody, Refusal};
use crate::headers::Receipt;
use crate::manifest::CreditAnswer;
use crate::store::LaneState;
use crate::voucher::SignedVoucher;
use anchor_lang::prelude::Pubkey;

/// Longest a `per_byte` response waits, with its allowance spent, for the
/// client's next credit before it is cut.
const CREDIT_WAIT: Duration = Duration::from_secs(2);

/// Rung whenever a credit credential is accepted; streams waiting for room
/// try again. One for the process, so replicas in one process sharing a
/// store hear each other's credits; a spurious wake-up costs one store read.
static POSTED: LazyLock<Arc<Notify>> = LazyLock::new(|| Arc::new(Notify::new()));

/// The credit endpoint and the room it gives metered responses.
pub(crate) struct Credit {
    admission: Arc<Admission>,
    cache: Arc<LaneCache>,
    ledger: Ledger,
    /// Most served beyond the highest amount signed.
    amount: u64,
}

impl Credit {
    pub(crate) fn new(
        admission: Arc<Admission>,
        cache: Arc<LaneCache>,
        ledger: Ledger,
        amount: u64,
    ) -> Self {
        Self {
            admission,
            cache,
            ledger,
            amount,
        }
    }

    /// Most served beyond the highest amount signed.
    pub(crate) fn amount(&self) -> u64 {
        self.amount
    }

    /// The ledger metered responses charge through.
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// `POST /.well-known/amp/credit`.
    pub(crate) async fn answer(&self, headers: &HeaderMap) -> Response<AmpBody> {
        match self.try_answer(headers).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn try_answer(&self, headers: &HeaderMap) -> Result<Response<AmpBody>, Refusal> {
        let accepted = self.accept(headers).await?;
        let answer = CreditAnswer {
            lane: accepted.lane,
            seq: accepted.signed.voucher.seq,
            amount: accepted.signed.voucher.cumulative,
            owed: accepted.owed,
        };
        Ok(accepted.respond(to_json(&answer)))
    }

    /// Checks and records a credential that pays without buying: a new
    /// seq, an amount between what is owed and what the lane can pay.
    pub(crate) async fn accept(&self, headers: &HeaderMap) -> Result<Accepted, Refusal> {
        let (accounts, signed) = self.admission.verify(headers, false).await?;
        let limit = accounts.limit();
        let owed = self
            .ledger
            .credit(accounts.fresh_state(), signed, limit)
            .await
            .map_err(|e| self.admission.refused(e))?;
        POSTED.notify_waiters();
        tracing::debug!(lane = %accounts.address, amount = signed.voucher.cumulative, owed, "credit credential accepted");
        Ok(Accepted {
            lane: accounts.address,
            generation: accounts.generation(),
            signed,
            owed,
            limit,
        })
    }

    /// Reserves the lane's room for one request ([`meter::claim`](super::meter::claim)),
    /// if the lane is still the one `fresh` describes and open.
    async fn claim(self: Arc<Self>, fresh: LaneState) -> u64 {
        let lane = fresh.id.lane;
        let limit = match self.cache.lane(&lane, false).await {
            Ok(Some(accounts))
                if accounts.id() == fresh.id && accounts.status(self.cache.now()).is_open() =>
            {
                accounts.limit()
            }
            _ => return 0,
        };
        match self.ledger.claim(fresh, self.amount, limit).await {
            Ok(room) => {
                if room > 0 {
                    tracing::trace!(%lane, room, "metered response extended");
                }
                room
            }
            Err(error) => {
                tracing::warn!(%lane, %error, "cannot extend a metered response");
                0
            }
        }
    }
}

/// A credential [`Credit::accept`] recorded.
pub(crate) struct Accepted {
    pub(crate) lane: Pubkey,
    pub(crate) generation: u64,
    pub(crate) signed: SignedVoucher,
    /// What the lane owes after it.
    pub(crate) owed: u64,
    limit: u64,
}

impl Accepted {
    /// `200` with `body` (JSON) and the lane's receipt.
    pub(crate) fn respond(&self, body: Vec<u8>) -> Response<AmpBody> {
        let mut response = json(StatusCode::OK, body);
        Receipt {
            owed: self.owed,
            remaining: self.limit.saturating_sub(self.owed),
        }
        .write(response.headers_mut());
        response
    }
}

/// Claims, for a metered response in flight, the room that credit
/// credentials posted since made on its lane.
pub(crate) struct Refill {
    credit: Arc<Credit>,
    fresh: LaneState,
    claim: Option<Pin<Box<dyn Future<Output = u64> + Send>>>,
    /// Enabled before each claim, so a credit posted meanwhile is not missed.
    posted: Option<Pin<Box<OwnedNotified>>>,
    wait: Option<Pin<Box<Sleep>>>,
    /// The last wait ended without credit: the response is cut, not held again.
    exhausted: bool,
}

impl Refill {
    pub(crate) fn new(credit: Arc<Credit>, fresh: LaneState) -> Self {
        Self {
            credit,
            fresh,
            claim: None,
            posted: None,
            wait: None,
            exhausted: false,
        }
    }

    /// Most served beyond the highest amount signed.
    pub(crate) fn credit(&self) -> u64 {
        self.credit.amount()
    }

    /// Whether a response may still pause for credit.
    pub(crate) fn can_wait(&self) -> bool {
        !self.exhausted
    }

    /// Adds the lane's room to this request's allowance; `Ready(0)` when
    /// there is none. With `wait`, waits up to [`CREDIT_WAIT`] for a credit
    /// credential first (a paused byte stream); without, answers at once
    /// (time keeps running for a per-second one).
    pub(crate) fn poll_claim(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<u64> {
        loop {
            if let Some(claim) = self.claim.as_mut() {
                let got = ready!(claim.as_mut().poll(cx));
                self.claim = None;
                if got > 0 || !wait {
                    self.reset();
                    self.exhausted = got == 0 && wait;
                    return Poll::Ready(got);
                }
                if self.wait.is_none() {
                    self.wait = Some(Box::pin(tokio::time::sleep(CREDIT_WAIT)));
                }
            }
            if let (Some(posted), Some(wait)) = (self.posted.as_mut(), self.wait.as_mut()) {
                if posted.as_mut().poll(cx).is_pending() {
                    if wait.as_mut().poll(cx).is_ready() {
                        self.reset();
                        self.exhausted = true;
                        return Poll::Ready(0);
                    }
                    return Poll::Pending;
                }
            }
            self.start();
        }
    }

    fn start(&mut self) {
        let mut posted = Box::pin(Arc::clone(&POSTED).notified_owned());
        posted.as_mut().enable();
        self.posted = Some(posted);
        self.claim = Some(Box::pin(Arc::clone(&self.credit).claim(self.fresh.clone())));
    }

    fn reset(&mut self) {
        self.claim = None;
        self.posted = None;
        self.wait = None;
    }
}
