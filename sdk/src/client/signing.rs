//! Signing: a credential for what a lane owes (committed against the
//! budget and made durable first), and a credential posted on its own to
//! one of the service's AMP endpoints (credit, close).

use anchor_lang::prelude::Pubkey;
use http::StatusCode;

use super::book::Refusal;
use super::errors::ClientError;
use super::AmpClient;
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
    /// retrying seq races and an underfunded amount once.
    pub(super) async fn post_credential(
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

    /// Whether a service's `required` is what a request can cost beyond what
    /// it says is owed: at most the credit or one of its prices. A larger
    /// one (a misconfigured service) is not signed.
    pub(super) fn plausible(&self, lane: &Pubkey, required: u64, owed: u64) -> bool {
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
}

/// Tells an AMP refusal (a JSON error body with an AMP code) from anything
/// else, which is handed back untouched.
pub(super) async fn answer(response: reqwest::Response) -> Result<Answer, ClientError> {
    let status = response.status();
    let amp_status = matches!(status.as_u16(), 400 | 401 | 402 | 409 | 410 | 429);
    if !amp_status {
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
