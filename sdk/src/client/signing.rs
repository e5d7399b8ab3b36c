//! Signing: a credential for what a lane owes (committed against the
//! budget and made durable first), MAC'd instead in the lane's session
//! while the unsigned part is small, and a credential posted on its own to
//! one of the service's AMP endpoints (credit, close, session).

use anchor_lang::prelude::Pubkey;
use http::StatusCode;

use super::agent::AmpClient;
use super::book::{Commit, Refusal};
use super::errors::ClientError;
use super::refusal::{self, Fix, Reaction, RefusalPolicy};
use super::session::{Held, Paid};
use super::spend::{now_ms, ApprovalKind, SpendEntry};
use crate::headers::Credential;
use crate::manifest::{self, ErrorBody, ErrorCode, Price};
use crate::session::{Session, SessionAnswer, SessionCredential, SessionKey, SESSION_PATH};
use crate::voucher::Voucher;

/// What a credential pays for, as the spend log records it.
#[derive(Clone, Copy)]
pub(super) struct Purpose<'a> {
    /// The path paid for.
    pub(super) route: &'a str,
    /// Its price, when it has one.
    pub(super) price: Option<&'a Price>,
}

impl Purpose<'_> {
    /// The log entry of `commit`, paying `service` `added` more.
    fn entry(&self, service: &str, commit: &Commit, added: u64) -> SpendEntry {
        let price = self.price.filter(|p| p.rate > 0);
        SpendEntry {
            at: now_ms(),
            service: service.to_owned(),
            route: self.route.to_owned(),
            mode: price.map(|p| p.mode),
            units: price.map(|p| added / p.rate),
            amount: added,
            cumulative: commit.amount,
            lane: commit.lane,
            seq: commit.seq,
        }
    }
}

/// What came back for a credential.
pub(super) enum Answer {
    /// Not an AMP refusal (success, or the service's own error).
    Passed(reqwest::Response),
    Refused(StatusCode, Box<ErrorBody>),
}

impl AmpClient {
    /// A credential for `lane` covering what it owes (and at least `floor`):
    /// tops up first if the lane cannot pay it; refuses beyond the budget.
    pub(super) async fn credential(
        &self,
        lane: &Pubkey,
        floor: u64,
        purpose: Purpose<'_>,
    ) -> Result<Credential, ClientError> {
        let commit = self.commit(lane, floor, purpose).await?;
        Ok(self.sign(&commit))
    }

    fn sign(&self, commit: &Commit) -> Credential {
        let voucher = Voucher {
            lane: commit.lane,
            generation: commit.generation,
            seq: commit.seq,
            cumulative: commit.amount,
            expires_at: 0,
        };
        Credential::sign(self.inner.signer.as_ref(), &voucher)
    }

    /// The credential of a paid request's attempt on `lane`: MAC'd in the
    /// lane's session while the unsigned part stays below half the credit,
    /// else (or with `sign`) signed. Either way the amount is committed
    /// against the budget and made durable first: an acknowledgement
    /// counts as a signature.
    pub(super) async fn paid_credential(
        &self,
        lane: &Pubkey,
        floor: u64,
        sign: bool,
        purpose: Purpose<'_>,
    ) -> Result<Paid, ClientError> {
        let commit = self.commit(lane, floor, purpose).await?;
        let sessions = &self.inner.sessions;
        if let Some(held) = sessions.held(lane).filter(|_| !sign) {
            if held.may_acknowledge(commit.amount, self.credit(lane)) {
                let mac = SessionCredential::new(
                    &held.key,
                    held.session,
                    commit.lane,
                    commit.seq,
                    commit.amount,
                );
                return Ok(Paid::Session(mac));
            }
        }
        let credential = self.sign(&commit);
        sessions.signed(lane, commit.amount);
        Ok(Paid::Signed(credential))
    }

    /// Opens a session on `lane` when its service offers them and none is
    /// open (docs/SPEC.md, "Sessions"): a credential for what the lane
    /// owes, posted to the session endpoint. A failure is logged, not
    /// returned: requests are then signed, as without sessions.
    pub(super) async fn open_session(&self, lane: &Pubkey, service: &str) {
        let offered = self.inner.ledger.with(|b| {
            b.lane(lane).is_some_and(|l| {
                let manifest = &l.record.manifest;
                manifest.session.is_some() && manifest.credit > 1
            })
        });
        if !offered || !self.inner.sessions.start_opening(lane) {
            return;
        }
        let url = format!("{service}{SESSION_PATH}");
        let (held, retry) = match self.post_credential(lane, &url, 0).await {
            Ok(Answer::Passed(response)) if response.status().is_success() => {
                match response.json::<SessionAnswer>().await {
                    Ok(answer) => match opened(lane, &answer) {
                        Some(held) => {
                            self.learn_owed(lane, Some(answer.owed));
                            tracing::debug!(%service, %lane, expires_at = answer.expires_at, "session opened");
                            (Some(held), false)
                        }
                        None => {
                            tracing::warn!(%service, %lane, "the service answered an unreadable session; signing every request");
                            (None, false)
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%service, %error, "cannot read the session answer; signing for now");
                        (None, true)
                    }
                }
            }
            Ok(Answer::Passed(response)) => {
                tracing::warn!(%service, status = %response.status(), "the service would not open a session; signing every request");
                (None, false)
            }
            Ok(Answer::Refused(status, body)) => {
                tracing::warn!(%service, %status, code = %body.error, "session refused; signing for now");
                (None, true)
            }
            Err(error) => {
                tracing::warn!(%service, %error, "cannot open a session; signing for now");
                (None, true)
            }
        };
        self.inner.sessions.opened(lane, held, retry);
    }

    /// The credit `lane`'s service extends beyond what is signed.
    pub(super) fn credit(&self, lane: &Pubkey) -> u64 {
        self.inner
            .ledger
            .with(|b| b.lane(lane).map_or(0, |l| l.record.manifest.credit))
    }

    /// Commits `max(owed, floor)` on `lane` with a fresh seq, durably:
    /// tops up first if the lane cannot pay it; refuses beyond the budget,
    /// a spend limit or the approval hook. What it adds is logged first.
    async fn commit(
        &self,
        lane: &Pubkey,
        floor: u64,
        purpose: Purpose<'_>,
    ) -> Result<Commit, ClientError> {
        let lease = self.inner.policy.lease;
        let service = self
            .inner
            .ledger
            .with(|b| b.lane(lane).map(|l| l.record.service.clone()))
            .ok_or_else(|| ClientError::NoLane(lane.to_string()))?;
        let spending = &self.inner.spending;
        if self.inner.approval.is_some() {
            let amount = self.inner.ledger.with(|b| b.would_commit(lane, floor));
            let adds = spending.adds(lane, amount);
            self.approve(ApprovalKind::Payment, &service, adds, Some(*lane))
                .await?;
        }
        let mut topped_up = false;
        loop {
            let outcome = self.inner.ledger.with(|b| {
                let amount = b.would_commit(lane, floor);
                spending.spend(&service, lane, amount, || {
                    let commit = b.commit(lane, floor, lease);
                    debug_assert!(commit.as_ref().map_or(true, |c| c.amount == amount));
                    commit
                })
            });
            let outcome = outcome.map_err(|exceeded| {
                tracing::warn!(%service, %lane, %exceeded, "spend limit reached; not signing");
                ClientError::SpendLimit {
                    service: service.clone(),
                    exceeded,
                }
            })?;
            match outcome {
                Ok((commit, added)) => {
                    if added > 0 {
                        let entry = purpose.entry(&service, &commit, added);
                        spending.record(&entry, commit.leased)?;
                    }
                    self.inner.ledger.sync(commit.wait_for).await?;
                    return Ok(commit);
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
    /// reacting to a refusal as a paid request does, minus the repairs of
    /// its lane (see [`RefusalPolicy::for_posted`]).
    pub(super) async fn post_credential(
        &self,
        lane: &Pubkey,
        url: &str,
        floor: u64,
    ) -> Result<Answer, ClientError> {
        let mut floor = floor;
        let mut refusals = RefusalPolicy::for_posted(self.inner.policy.seq_retries);
        let route =
            reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.path().to_owned());
        loop {
            let purpose = Purpose {
                route: &route,
                price: None,
            };
            let credential = self.credential(lane, floor, purpose).await?;
            let mut headers = http::HeaderMap::new();
            credential.write(&mut headers);
            let response = self.inner.http.post(url).headers(headers).send().await?;
            let answer = answer(response).await?;
            let Answer::Refused(_, body) = &answer else {
                return Ok(answer);
            };
            let decision = refusals.decide(body, self.slack(lane), false);
            self.learn_owed(lane, decision.owed);
            match decision.reaction {
                Reaction::Retry(fix) => floor = self.fix(lane, fix, floor).await?,
                Reaction::Reopen | Reaction::GiveUp => return Ok(answer),
            }
        }
    }

    /// What one request can add to what `lane` owes, under its service's terms.
    pub(super) fn slack(&self, lane: &Pubkey) -> u64 {
        self.inner.ledger.with(|b| {
            b.lane(lane)
                .map_or(0, |l| refusal::slack(&l.record.manifest))
        })
    }

    /// Records what a refusal said the lane owes (it only ever raises ours).
    pub(super) fn learn_owed(&self, lane: &Pubkey, owed: Option<u64>) {
        if let Some(owed) = owed {
            self.inner.ledger.with(|b| b.owe_at_least(lane, owed));
        }
    }

    /// Makes the fix a refusal calls for; returns the floor of the next credential.
    pub(super) async fn fix(
        &self,
        lane: &Pubkey,
        fix: Fix,
        floor: u64,
    ) -> Result<u64, ClientError> {
        match fix {
            Fix::FreshSeq => {}
            Fix::Cover(required) => return Ok(required),
            Fix::RaiseLimit(limit) => self.make_limit(lane, limit).await?,
            Fix::RefreshLimit => self.refresh_limit(lane).await?,
        }
        Ok(floor)
    }
}

/// The session a service's answer holds, for `lane`.
fn opened(lane: &Pubkey, answer: &SessionAnswer) -> Option<Held> {
    if answer.lane != *lane {
        return None;
    }
    Some(Held {
        session: Session::decode(&answer.session)?,
        key: SessionKey::decode(&answer.key)?,
        signed: answer.amount,
    })
}

/// Tells an AMP refusal from anything else, which is handed back untouched.
/// [`manifest::refusal`] alone decides what is one.
pub(super) async fn answer(response: reqwest::Response) -> Result<Answer, ClientError> {
    let status = response.status();
    if !may_be_refusal(status) {
        return Ok(Answer::Passed(response));
    }
    let headers = response.headers().clone();
    let version = response.version();
    let bytes = response.bytes().await?;
    if let Some(body) = manifest::refusal(status, &bytes) {
        return Ok(Answer::Refused(status, Box::new(body)));
    }
    // The service's own error: rebuild it for the caller.
    let mut rebuilt = http::Response::new(bytes);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    *rebuilt.version_mut() = version;
    Ok(Answer::Passed(reqwest::Response::from(rebuilt)))
}

/// Whether a response with `status` could be an AMP refusal: some code of
/// the error table answers with it. Only such a body is read before the
/// caller gets the response (a success streams on untouched).
fn may_be_refusal(status: StatusCode) -> bool {
    ErrorCode::ALL.iter().any(|code| code.status() == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> reqwest::Response {
        let mut response = http::Response::new(body.to_owned());
        *response.status_mut() = StatusCode::from_u16(status).expect("a status");
        reqwest::Response::from(response)
    }

    async fn refused(status: u16, body: &str) -> Option<ErrorCode> {
        match answer(response(status, body)).await.expect("an answer") {
            Answer::Refused(_, body) => Some(body.error),
            Answer::Passed(_) => None,
        }
    }

    #[tokio::test]
    async fn only_an_amp_error_body_with_its_own_status_is_a_refusal() {
        let body = |code: ErrorCode| format!(r#"{{"error":"{code}","message":"m"}}"#);
        for code in ErrorCode::ALL {
            let status = code.status().as_u16();
            assert_eq!(refused(status, &body(code)).await, Some(code), "{code}");
        }
        // A code under another status, the service's own JSON errors, successes.
        assert_eq!(refused(400, &body(ErrorCode::Closed)).await, None);
        assert_eq!(refused(402, r#"{"error":"no money"}"#).await, None);
        assert_eq!(refused(200, &body(ErrorCode::Malformed)).await, None);
        assert_eq!(refused(500, &body(ErrorCode::Unavailable)).await, None);
    }

    #[tokio::test]
    async fn a_passed_error_keeps_its_body() {
        let Answer::Passed(passed) = answer(response(402, "pay elsewhere")).await.unwrap() else {
            panic!("not an AMP refusal");
        };
        assert_eq!(passed.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(passed.text().await.unwrap(), "pay elsewhere");
    }
}
