//! Metered responses: the client measures what a `per_second` or
//! `per_byte` response uses while it is read, and pays for it as it goes
//! with fresh credentials on the side (`POST /.well-known/amp/credit`), so
//! that the server's credit never runs out mid-stream (docs/streaming.md).
//!
//! It pays for what it measured, never ahead of it: time from the response
//! headers on (the server started counting earlier) and bytes received
//! (the server sent at least those). What it cannot see is left to the
//! server's count, which the next credential covers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::{pricing, AmpClient, ClientError};
use crate::headers::Receipt;
use crate::manifest::{Price, PricingMode};

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

    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    pub fn url(&self) -> &Url {
        self.inner.url()
    }

    /// `AMP-Owed` and `AMP-Remaining`, when the request was charged (`None`
    /// for a path the service serves free).
    pub fn receipt(&self) -> Option<Receipt> {
        self.receipt
    }

    /// The next piece of the body; `None` at its end. Fails when paying for
    /// a metered body would pass the budget (the server then stops it).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if let Some(error) = self.meter.as_ref().and_then(Meter::take_error) {
            return Err(error);
        }
        let chunk = self.inner.chunk().await?;
        if let Some(meter) = &self.meter {
            match &chunk {
                Some(bytes) => meter.add_bytes(bytes.len() as u64),
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

/// Measures one metered response and pays for it in the background.
pub(crate) struct Meter {
    shared: Arc<Shared>,
}

struct Shared {
    bytes: AtomicU64,
    done: AtomicBool,
    wake: Notify,
    /// A failure the reader must see (the budget ran out).
    error: Mutex<Option<ClientError>>,
}

impl Meter {
    pub(crate) fn start(client: AmpClient, lane: Pubkey, service: String, price: Price) -> Self {
        client.ledger_with(|b| {
            if let Some(l) = b.lane_mut(&lane) {
                l.streams += 1;
            }
        });
        let shared = Arc::new(Shared {
            bytes: AtomicU64::new(0),
            done: AtomicBool::new(false),
            wake: Notify::new(),
            error: Mutex::new(None),
        });
        let started = Instant::now();
        tokio::spawn(pay(
            client,
            lane,
            service,
            price,
            Arc::clone(&shared),
            started,
        ));
        Self { shared }
    }

    fn add_bytes(&self, bytes: u64) {
        self.shared.bytes.fetch_add(bytes, Ordering::AcqRel);
        self.shared.wake.notify_one();
    }

    fn finish(&self) {
        if !self.shared.done.swap(true, Ordering::AcqRel) {
            self.shared.wake.notify_one();
        }
    }

    fn take_error(&self) -> Option<ClientError> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The payer: whenever the measured, unpaid usage reaches half the
/// server's credit (or one price unit, when credit is smaller), adds it to
/// what the lane owes and posts a credential covering it. At the end, adds
/// the rest to what is owed; the next credential pays it.
async fn pay(
    client: AmpClient,
    lane: Pubkey,
    service: String,
    price: Price,
    shared: Arc<Shared>,
    started: Instant,
) {
    let credit = client.credit_of(&lane);
    let unit = price.rate.max(1);
    let trigger = (credit / 2).max(unit);
    let mut accounted = 0u64;
    let mut paying = true;
    let measure = |shared: &Shared| match price.mode {
        PricingMode::PerSecond => u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        _ => shared.bytes.load(Ordering::Acquire),
    };
    loop {
        let done = shared.done.load(Ordering::Acquire);
        let used = pricing::cost(&price, measure(&shared));
        let unpaid = used.saturating_sub(accounted);
        if unpaid > 0 && (done || unpaid >= trigger) {
            client.ledger_with(|b| b.add_owed(&lane, unpaid));
            accounted = used;
            if paying && !done {
                match client.pay_credit(&lane, &service).await {
                    Ok(()) => tracing::trace!(%lane, paid = accounted, "stream credit topped up"),
                    Err(ClientError::Http(error)) => {
                        tracing::warn!(%lane, %error, "paying for a stream failed; will retry");
                    }
                    Err(error) => {
                        tracing::warn!(%lane, %error, "stopped paying for a stream");
                        paying = false;
                        if matches!(error, ClientError::BudgetExceeded { .. }) {
                            *shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                        }
                    }
                }
            }
        }
        if done {
            break;
        }
        match price.mode {
            PricingMode::PerSecond => {
                let due = pricing::units_for(&price, accounted.saturating_add(trigger));
                let wait = due.saturating_sub(measure(&shared)).max(1);
                let _ =
                    tokio::time::timeout(Duration::from_millis(wait), shared.wake.notified()).await;
            }
            _ => shared.wake.notified().await,
        }
    }
    client.ledger_with(|b| {
        if let Some(l) = b.lane_mut(&lane) {
            l.streams = l.streams.saturating_sub(1);
        }
    });
    tracing::debug!(%lane, charged = accounted, "metered response ended");
}
