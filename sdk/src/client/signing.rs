//! Signing: a credential for what a lane owes (committed against the
//! budget and made durable first), and a credential posted on its own to
//! one of the service's AMP endpoints (credit, close).

use anchor_lang::prelude::Pubkey;
use http::StatusCode;

use super::agent::AmpClient;
use super::book::Refusal;
use super::errors::ClientError;
use super::refusal::{self, Fix, Reaction, RefusalPolicy};
use crate::headers::Credential;
use crate::manifest::{self, ErrorBody, ErrorCode};
use crate::voucher::Voucher;

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
    ) -> Result<Credential, ClientError> {
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
        loop {
            let credential = self.credential(lane, floor).await?;
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
