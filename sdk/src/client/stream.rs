//! Metered responses: the client measures what a `per_second` or
//! `per_byte` response uses while it is read, and pays for it as it goes
//! with fresh credentials on the side (`POST /.well-known/amp/credit`), so
//! that the server's credit never runs out mid-stream (docs/streaming.md).
//!
//! It pays for what it measured, never ahead of it: time from the response
//! headers on (the server started counting earlier) and bytes received
//! (the server sent at least those). What it cannot see is left to the
//! server's count, which the next credential covers. Tokens only the server
//! can count: a `per_token` event stream states its charge in the events
//! received ([`crate::sse`]), and the client pays each statement.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::agent::AmpClient;
use super::errors::ClientError;
use super::pricing;
use super::signing::Answer;
use crate::headers::Receipt;
use crate::manifest::{Price, PricingMode, CREDIT_PATH};
use crate::sse::Statements;

/// A paid response. Read it through [`chunk`](Self::chunk),
/// [`bytes`](Self::bytes), [`text`](Self::text) or [`json`](Self::json), so
/// that a metered body is measured and paid for while it arrives.
pub struct AmpResponse {
    inner: reqwest::Response,
    receipt: Option<Receipt>,
    meter: Option<Meter>,
}

impl std::fmt::Debug for AmpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmpResponse")
            .field("status", &self.inner.status())
            .field("receipt", &self.receipt)
            .field("metered", &self.meter.is_some())
            .finish()
    }
}

impl AmpResponse {
    pub(crate) fn new(
        inner: reqwest::Response,
        receipt: Option<Receipt>,
        meter: Option<Meter>,
    ) -> Self {
        Self {
            inner,
            receipt,
            meter,
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The response headers (the AMP receipt headers among them).
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The final URL, after any redirects.
    pub fn url(&self) -> &Url {
        self.inner.url()
    }

    /// `AMP-Owed` and `AMP-Remaining`, when the request was charged (`None`
    /// for a path the service serves free).
    pub fn receipt(&self) -> Option<Receipt> {
        self.receipt
    }

    /// The next piece of the body; `None` at its end. When the service cuts
    /// a metered body because the client could not pay for more (budget
    /// spent, delegated lane exhausted), the error says so.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        let chunk = match self.inner.chunk().await {
            Ok(chunk) => chunk,
            // Cut short: say why, when the client knows (the budget ran out).
            Err(error) => {
                let why = match &self.meter {
                    Some(meter) => meter.why_cut().await,
                    None => None,
                };
                return Err(why.unwrap_or(ClientError::Http(error)));
            }
        };
        if let Some(meter) = &self.meter {
            match &chunk {
                Some(bytes) => meter.add(bytes),
                None => meter.finish(),
            }
        }
        Ok(chunk)
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, ClientError> {
        let mut body = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// The whole body as text (invalid UTF-8 replaced).
    pub async fn text(self) -> Result<String, ClientError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The whole body as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let bytes = self.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The plain reqwest response. A metered body is no longer measured from
    /// here on: what it still uses is left to the server's count.
    pub fn into_inner(self) -> reqwest::Response {
        self.inner
    }
}

impl AmpClient {
    /// Pays what a metered response used so far (`POST /.well-known/amp/credit`),
    /// which extends the server's credit for it.
    /// `floor`: the least amount to sign (0: what is owed).
    async fn pay_credit(
        &self,
        lane: &Pubkey,
        service: &str,
        floor: u64,
    ) -> Result<(), ClientError> {
        let url = format!("{service}{CREDIT_PATH}");
        match self.post_credential(lane, &url, floor).await? {
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
}

/// Measures one metered response and pays for it in the background.
pub(crate) struct Meter {
    state: Arc<State>,
}

struct State {
    client: AmpClient,
    lane: Pubkey,
    service: String,
    price: Price,
    /// When the response headers arrived: the server started counting earlier.
    started: Instant,
    bytes: AtomicU64,
    /// The charge a `per_token` event stream stated in what was received.
    statements: Mutex<Statements>,
    /// The highest `amp-due` charge paid for.
    due_paid: AtomicU64,
    /// Milliseconds from `started` to the last data received.
    last_data: AtomicU64,
    done: AtomicBool,
    wake: Notify,
    /// Usage already added to what the lane owes.
    accounted: Mutex<u64>,
    /// Why the client stopped paying, told to the reader if the body is cut.
    error: Mutex<Option<ClientError>>,
    /// Held through each payment, so that a reader whose body was cut can
    /// wait for the payment in flight before saying why.
    turn: tokio::sync::Mutex<()>,
}

impl State {
    /// Units used so far: milliseconds or bytes.
    fn units(&self) -> u64 {
        match self.price.mode {
            // Once the body ended, time counts up to its last data: the server
            // sent that before it stopped its clock, so it is never overpaid.
            PricingMode::PerSecond if self.done.load(Ordering::Acquire) => {
                self.last_data.load(Ordering::Acquire)
            }
            PricingMode::PerSecond => self.elapsed_ms(),
            _ => self.bytes.load(Ordering::Acquire),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// What the usage measured so far costs (for tokens, what the stream
    /// stated).
    fn used(&self) -> u64 {
        match self.price.mode {
            PricingMode::PerToken => self
                .statements
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .charged(),
            _ => pricing::cost(&self.price, self.units()),
        }
    }

    /// What a `per_token` stream said it waits for (a charge), and how much
    /// more than what it charged that is.
    fn due(&self) -> (u64, u64) {
        let statements = self.statements.lock().unwrap_or_else(|e| e.into_inner());
        let due = statements.due();
        (due, due.saturating_sub(statements.charged()))
    }

    /// Whether a `per_token` stream waits for credit not paid yet.
    fn due_unpaid(&self) -> bool {
        self.due().0 > self.due_paid.load(Ordering::Acquire)
    }

    /// What is used and not yet added to what the lane owes.
    fn unaccounted(&self) -> u64 {
        let accounted = *self.accounted.lock().unwrap_or_else(|e| e.into_inner());
        self.used().saturating_sub(accounted)
    }

    /// Adds the usage measured so far to what the lane owes.
    fn account(&self) {
        let mut accounted = self.accounted.lock().unwrap_or_else(|e| e.into_inner());
        let used = self.used();
        if used > *accounted {
            let more = used - *accounted;
            self.client.ledger_with(|b| b.add_owed(&self.lane, more));
            *accounted = used;
        }
    }

    fn fail(&self, error: ClientError) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    fn take_error(&self) -> Option<ClientError> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// One unit of usage: a byte, or a millisecond (`per_second` charges by
    /// the millisecond); for tokens, any statement (the server chooses when
    /// to state).
    fn unit(&self) -> u64 {
        match self.price.mode {
            PricingMode::PerSecond => self.price.rate.div_ceil(1_000),
            PricingMode::PerToken => 1,
            _ => self.price.rate,
        }
        .max(1)
    }

    /// Adds the measured usage to what the lane owes, posts a credential
    /// covering it, and makes the lane able to pay `room` more.
    async fn pay_round(&self, room: u64) -> Result<(), ClientError> {
        self.account();
        let before = self
            .client
            .ledger_with(|b| b.lane(&self.lane).map(|l| l.record.owed));
        // A token stream waiting for more than it charged: sign that much
        // beyond what is owed, without owing it yet.
        let (due, beyond) = self.due();
        let floor = match beyond {
            0 => 0,
            beyond => before.unwrap_or(0).saturating_add(beyond),
        };
        let paid = self
            .client
            .pay_credit(&self.lane, &self.service, floor)
            .await;
        self.absorb_raise(before);
        paid?;
        self.due_paid.fetch_max(due, Ordering::AcqRel);
        tracing::trace!(lane = %self.lane, "stream credit topped up");
        self.client.make_room(&self.lane, room).await
    }

    /// The server counts usage this meter has not measured yet (its clock
    /// started first, its bytes are sent before they arrive) and may say so,
    /// raising what the lane owes (a refusal naming what is owed, or a
    /// receipt). That usage is then accounted for, or it would be added again
    /// once measured. Only with this stream alone on the lane is the raise
    /// surely its own; otherwise the server's next refusal settles any gap.
    fn absorb_raise(&self, before: Option<u64>) {
        let raised = self.client.ledger_with(|b| {
            let lane = b.lane(&self.lane)?;
            let alone = lane.inflight == 0 && lane.streams == 1;
            Some(lane.record.owed.saturating_sub(before?)).filter(|_| alone)
        });
        if let Some(raised) = raised.filter(|&r| r > 0) {
            let mut accounted = self.accounted.lock().unwrap_or_else(|e| e.into_inner());
            *accounted = accounted.saturating_add(raised);
        }
    }
}

impl Meter {
    pub(crate) fn start(client: AmpClient, lane: Pubkey, service: String, price: Price) -> Self {
        client.ledger_with(|b| b.stream_started(&lane));
        let state = Arc::new(State {
            client,
            lane,
            service,
            price,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            statements: Mutex::new(Statements::default()),
            due_paid: AtomicU64::new(0),
            last_data: AtomicU64::new(0),
            done: AtomicBool::new(false),
            wake: Notify::new(),
            accounted: Mutex::new(0),
            error: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(pay(Arc::clone(&state)));
        Self { state }
    }

    fn add(&self, chunk: &[u8]) {
        self.state
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::AcqRel);
        if self.state.price.mode == PricingMode::PerToken {
            self.state
                .statements
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .read(chunk);
        }
        self.state
            .last_data
            .fetch_max(self.state.elapsed_ms(), Ordering::AcqRel);
        self.state.wake.notify_one();
    }

    /// The response ended (or was dropped): what it used is owed from now on.
    fn finish(&self) {
        if self.state.done.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = &self.state;
        state.account();
        state.client.ledger_with(|b| b.stream_ended(&state.lane));
        state.wake.notify_one();
        tracing::debug!(lane = %state.lane, units = state.units(), "metered response ended");
    }

    /// Why the service cut the body, when it is because the client cannot
    /// pay for more. The payer may not have found out yet (a payment in
    /// flight, or usage just under its trigger), so this waits for its
    /// current payment, then pays what was received and makes room for one
    /// unit more itself, and asks whether the budget could sign that unit:
    /// a refusal there is the reason. `None` when nothing is refused.
    async fn why_cut(&self) -> Option<ClientError> {
        let state = &self.state;
        let _turn = state.turn.lock().await;
        if let Some(error) = state.take_error() {
            return Some(error);
        }
        let unit = state.unit();
        match state.pay_round(unit).await {
            Ok(()) | Err(ClientError::Http(_)) => {}
            Err(error) => return Some(error),
        }
        state.client.can_sign_more(&state.lane, unit).err()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The payer: whenever the measured, unpaid usage reaches half the
/// server's credit (or one unit of usage, when the credit is smaller), adds it
/// to what the lane owes and posts a credential covering it.
async fn pay(state: Arc<State>) {
    let credit = state.client.credit_of(&state.lane);
    let trigger = match state.price.mode {
        PricingMode::PerToken => state.unit(),
        _ => (credit / 2).max(state.unit()),
    };
    let mut paying = true;
    while !state.done.load(Ordering::Acquire) {
        let turn = state.turn.lock().await;
        if paying && (state.unaccounted() >= trigger || state.due_unpaid()) {
            // The stream needs room on the lane too: top up before it runs dry.
            let paid = state.pay_round(trigger).await;
            drop(turn);
            match paid {
                Ok(()) => {}
                Err(ClientError::Http(error)) => {
                    tracing::warn!(lane = %state.lane, %error, "paying for a stream failed; will retry");
                }
                Err(error) => {
                    tracing::warn!(lane = %state.lane, %error, "stopped paying for a stream");
                    paying = false;
                    state.fail(error);
                }
            }
            continue;
        }
        drop(turn);
        match state.price.mode {
            PricingMode::PerSecond => {
                let accounted = *state.accounted.lock().unwrap_or_else(|e| e.into_inner());
                let due = pricing::units_for(&state.price, accounted.saturating_add(trigger));
                let wait = due.saturating_sub(state.units()).max(1);
                let _ =
                    tokio::time::timeout(Duration::from_millis(wait), state.wake.notified()).await;
            }
            _ => state.wake.notified().await,
        }
    }
}
