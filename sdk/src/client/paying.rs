//! A paid request: claim the route's price, sign a credential for what the
//! lane owes with it, send, react to a refusal, and learn from the receipt
//! what is owed (or start paying for a metered body as it is read).

use anchor_lang::prelude::Pubkey;
use reqwest::Request;

use super::agent::{origin, AmpClient};
use super::errors::ClientError;
use super::pricing;
use super::refusal::{Reaction, RefusalPolicy};
use super::session::Paid;
use super::signing::{answer, Answer, Purpose};
use super::stream::{self, AmpResponse};
use crate::headers::Receipt;
use crate::manifest::{Price, PricingMode};
use crate::sse;

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

impl AmpClient {
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
        let body = request.body().and_then(reqwest::Body::as_bytes);
        let Some(price) = self.price(&lane, &path, body.unwrap_or_default())? else {
            // A JSON-RPC method the service does not charge for.
            tracing::debug!(%service, %path, "free request");
            let response = self.inner.http.execute(request).await?;
            return Ok(AmpResponse::new(response, None, None));
        };
        let upfront = pricing::is_upfront(&price);
        let mut ticket = Ticket::new(self, lane, if upfront { price.rate } else { 0 });
        self.open_session(&lane, &service).await;
        let mut original = Some(request);
        let mut floor = 0u64;
        let mut sign = false;
        let mut refusals = RefusalPolicy::for_request(self.inner.policy.seq_retries);
        loop {
            let purpose = Purpose {
                route: &path,
                price: Some(&price),
            };
            let credential = self.paid_credential(&lane, floor, sign, purpose).await?;
            let mut attempt = match original.as_ref().and_then(Request::try_clone) {
                Some(copy) => copy,
                None => original.take().ok_or(ClientError::NotRetryable)?,
            };
            credential.write(attempt.headers_mut());
            tracing::debug!(%service, %path, seq = credential.seq(), amount = credential.amount(), session = matches!(credential, Paid::Session(_)), "paid request");
            let response = self.inner.http.execute(attempt).await?;
            let (status, body) = match answer(response).await? {
                Answer::Passed(response) => {
                    return Ok(self.accepted(ticket, &service, price, credential.seq(), response));
                }
                Answer::Refused(status, body) => (status, body),
            };
            // A 402 carries the service's terms as they are now: nothing
            // more is signed on terms the policy refuses (a price raised
            // above a ceiling, say).
            if let Some(manifest) = &body.manifest {
                self.inner.policy.check_manifest(&service, manifest)?;
            }
            if let Paid::Session(sent) = &credential {
                let credit = self.credit(&lane);
                if let Some(required) = self.inner.sessions.refused(&lane, sent, &body, credit) {
                    // Once, signed, as the service asks.
                    tracing::debug!(%service, seq = sent.seq, code = %body.error, required, "session request refused; signing");
                    sign = true;
                    floor = floor.max(required);
                    continue;
                }
            }
            let can_reopen = self.is_own(&lane) && self.inner.wallet.is_some();
            let decision = refusals.decide(&body, self.slack(&lane), can_reopen);
            self.learn_owed(&lane, decision.owed);
            match decision.reaction {
                Reaction::Retry(fix) => {
                    tracing::debug!(%service, seq = credential.seq(), code = %body.error, ?fix, "refused; retrying");
                    floor = self.fix(&lane, fix, floor).await?;
                }
                Reaction::Reopen => {
                    tracing::info!(%service, %lane, code = %body.error, "lane refused as gone; opening another");
                    self.lane_gone(&lane).await?;
                    lane = self.lane_for(&service, body.manifest.clone()).await?;
                    ticket.move_to(lane);
                    floor = 0;
                }
                Reaction::GiveUp => {
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
                let statements =
                    price.mode == PricingMode::PerToken && sse::is_event_stream(response.headers());
                if pricing::is_measurable(&price) || statements {
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

    /// The price of a request; `None` when it is free.
    fn price(&self, lane: &Pubkey, path: &str, body: &[u8]) -> Result<Option<Price>, ClientError> {
        let record = self.record(lane)?;
        Ok(pricing::request_price(&record.manifest.pricing, path, body))
    }
}
