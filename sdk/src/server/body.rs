//! The metered body: counts what a `per_byte` or `per_second` response
//! uses, stops it when its allowance runs out (after asking for credit),
//! and charges the lane through the meter when it ends. A `per_token`
//! event stream states its charge to the client as it grows ([`crate::sse`])
//! and holds an event it cannot pay for until credit comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::credit::{Credit, Refill};
use super::ledger::Ledger;
use super::meter;
use super::metrics::SharedMetrics;
use super::payment::Usage;
use super::response::BoxError;
use crate::manifest::{Price, PricingMode};
use crate::pricing;
use crate::sse;
use crate::store::LaneState;

/// A metered request in flight. It is charged exactly once: when its body
/// ends, or when it is dropped (the handler failed, the client went away).
pub(crate) struct InFlight {
    ledger: Ledger,
    fresh: Option<LaneState>,
    price: Price,
    allowance: u64,
    usage: Usage,
    started: Instant,
    bytes: u64,
    /// Room that credit credentials add while the response runs.
    refill: Refill,
    /// For a `per_token` event stream: what the events passed to the client
    /// were charged. A stream cut or dropped early is charged that; one that
    /// ends, everything reported.
    delivered: Option<u64>,
    /// Where the charge is counted, once it is known.
    tally: Option<Tally>,
}

/// The metrics a metered request's charge is counted in, and its labels.
pub(crate) struct Tally {
    metrics: SharedMetrics,
    route: String,
    mint: anchor_lang::prelude::Pubkey,
}

impl Tally {
    pub(crate) fn new(
        metrics: &SharedMetrics,
        route: &str,
        mint: anchor_lang::prelude::Pubkey,
    ) -> Self {
        Self {
            metrics: Arc::clone(metrics),
            route: route.to_owned(),
            mint,
        }
    }
}

impl InFlight {
    pub(crate) fn new(
        credit: &Arc<Credit>,
        fresh: LaneState,
        price: Price,
        allowance: u64,
        usage: Usage,
    ) -> Self {
        Self {
            ledger: credit.ledger().clone(),
            refill: Refill::new(Arc::clone(credit), fresh.clone()),
            fresh: Some(fresh),
            price,
            allowance,
            usage,
            started: Instant::now(),
            bytes: 0,
            delivered: None,
            tally: None,
        }
    }

    /// Counts the charge in `tally`'s metrics when the request ends.
    pub(crate) fn counted(mut self, tally: Tally) -> Self {
        self.tally = Some(tally);
        self
    }

    /// Adds room that credit credentials made to the allowance; `false`
    /// when there is none (waiting a little for it with `wait`).
    fn poll_refill(&mut self, cx: &mut Context<'_>, wait: bool) -> Poll<bool> {
        let room = ready!(self.refill.poll_claim(cx, wait));
        self.allowance = self.allowance.saturating_add(room);
        Poll::Ready(room > 0)
    }

    /// Units used so far: bytes, milliseconds or reported units.
    fn units(&self) -> u64 {
        match self.price.mode {
            PricingMode::PerByte => self.bytes,
            PricingMode::PerSecond => {
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
            }
            PricingMode::PerToken => self.usage.get(),
            PricingMode::PerCall => 0,
        }
    }

    /// What the request costs so far, `extra_bytes` still to come included
    /// (and amounts a `per_token` handler reported directly).
    pub(crate) fn charge_with(&self, extra_bytes: u64) -> u64 {
        let units = match self.price.mode {
            PricingMode::PerByte => self.bytes.saturating_add(extra_bytes),
            _ => self.units(),
        };
        meter::charge(&self.price, units, self.allowance)
            .saturating_add(self.usage.amount())
            .min(self.allowance)
    }

    /// The lane charged, until the charge is taken.
    fn lane(&self) -> Option<anchor_lang::prelude::Pubkey> {
        self.fresh.as_ref().map(|fresh| fresh.id.lane)
    }

    /// What the handler reported so far (`per_token`), beyond the allowance too.
    fn reported(&self) -> u64 {
        self.usage.cost(&self.price)
    }

    /// When a per-second allowance runs out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.price.mode != PricingMode::PerSecond {
            return None;
        }
        let ms = pricing::units_for(&self.price, self.allowance)?;
        self.started
            .checked_add(std::time::Duration::from_millis(ms))
    }

    /// Charges now, and waits until the charge is recorded.
    pub(crate) async fn finish_now(mut self) {
        if let Some(finish) = self.finish() {
            finish.await;
        }
    }

    /// The charge, as a future that persists it; `None` once taken.
    fn finish(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let fresh = self.fresh.take()?;
        let charge = match self.delivered {
            Some(delivered) => delivered.min(self.allowance),
            None => self.charge_with(0),
        };
        if let Some(t) = &self.tally {
            let units = self.units();
            t.metrics
                .charged(&t.route, &t.mint, self.price.mode, units, charge);
        }
        let allowance = self.allowance;
        let ledger = self.ledger.clone();
        Some(async move {
            let lane = fresh.id.lane;
            match ledger.finish(fresh, allowance, charge).await {
                Ok(()) => tracing::debug!(%lane, charge, "metered request charged"),
                Err(error) => {
                    tracing::error!(%lane, charge, %error, "could not record a metered charge")
                }
            }
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(finish) = self.finish() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(finish);
                }
                Err(_) => tracing::error!("a metered request ended outside a runtime; not charged"),
            }
        }
    }
}

/// A response body charged by what it carries or how long it lasts.
pub(crate) struct MeteredBody<B> {
    inner: B,
    meter: InFlight,
    /// Most bytes the allowance pays for (`per_byte`).
    max_bytes: Option<u64>,
    /// When the allowance runs out (`per_second`).
    deadline: Option<Pin<Box<Sleep>>>,
    finishing: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Why the body was cut short, reported once the charge is recorded.
    cut: Option<&'static str>,
    ended: bool,
    /// Data beyond the allowance, held while more credit is claimed.
    held: Option<Bytes>,
    /// The body's last frame, released once the charge is recorded.
    last: Option<Frame<Bytes>>,
    /// A `per_token` event stream's statements of its charge.
    stated: Option<Stated>,
}

/// The charge of a `per_token` event stream, as stated to the client.
struct Stated {
    /// The charge last stated.
    charge: u64,
    /// The charge last stated due.
    due: u64,
    /// How much the charge grows before it is stated again: half the
    /// credit, so the client's payment arrives before the credit is used.
    step: u64,
    /// The last data passed ended an event: a comment may follow it.
    at_boundary: bool,
}

impl Stated {
    /// The statement of `charge`, when it says more than the last one and
    /// may follow what was sent.
    fn state(&mut self, charge: u64) -> Option<Bytes> {
        (self.at_boundary && charge > self.charge).then(|| {
            self.charge = charge;
            Bytes::from(sse::statement(charge))
        })
    }
}

/// What a `per_token` event stream does with the next frame of its handler.
enum TokenStep {
    /// Pass it on, with a statement of the charge after it when one is due.
    Pass(Bytes),
    /// Hold it until credit comes; first send this statement, if any.
    Hold(Option<Bytes>),
    /// The lane cannot pay for it: end with the handler's cut event, if any.
    Cut(Option<Bytes>),
}

impl<B> MeteredBody<B> {
    /// `event_stream`: the response is Server-Sent Events.
    pub(crate) fn new(inner: B, mut meter: InFlight, event_stream: bool) -> Self {
        let max_bytes = match meter.price.mode {
            PricingMode::PerByte => pricing::units_for(&meter.price, meter.allowance),
            _ => None,
        };
        let deadline = meter
            .deadline()
            .map(|at| Box::pin(tokio::time::sleep_until(at.into())));
        let stated = (event_stream && meter.price.mode == PricingMode::PerToken).then(|| {
            meter.delivered = Some(0);
            Stated {
                charge: 0,
                due: 0,
                step: (meter.refill.credit() / 2).max(1),
                at_boundary: true,
            }
        });
        Self {
            inner,
            meter,
            max_bytes,
            deadline,
            finishing: None,
            cut: None,
            ended: false,
            held: None,
            last: None,
            stated,
        }
    }

    fn start_finishing(&mut self) {
        if let Some(finish) = self.meter.finish() {
            self.finishing = Some(Box::pin(finish));
        }
    }

    /// Weighs a `per_token` event stream's next data against its allowance.
    fn token_step(&mut self, data: &Bytes) -> TokenStep {
        let Some(stated) = self.stated.as_mut() else {
            return TokenStep::Pass(data.clone());
        };
        let charge = self.meter.reported();
        if charge > self.meter.allowance {
            if !self.meter.refill.can_wait() {
                // What was delivered is what is charged; then the reason.
                let delivered = self.meter.delivered.unwrap_or(0);
                let event = self.meter.usage.take_cut_event();
                let last = event.filter(|_| stated.at_boundary).map(|event| {
                    let statement = sse::statement(delivered);
                    Bytes::from([statement.as_bytes(), &event[..]].concat())
                });
                return TokenStep::Cut(last);
            }
            // Tell the client what the next event needs, then wait for its credit.
            let due = (stated.at_boundary && charge > stated.due).then(|| {
                stated.due = charge;
                Bytes::from(sse::due(charge))
            });
            return TokenStep::Hold(due);
        }
        self.meter.delivered = Some(charge);
        stated.at_boundary = sse::ends_event(data);
        if stated.at_boundary && charge >= stated.charge.saturating_add(stated.step) {
            stated.charge = charge;
            let mut out = BytesMut::from(&data[..]);
            out.extend_from_slice(sse::statement(charge).as_bytes());
            return TokenStep::Pass(out.freeze());
        }
        TokenStep::Pass(data.clone())
    }

    /// A `per_token` event stream breaks: it is charged what was delivered,
    /// and the client is told so.
    fn cut_statement(&mut self) -> Option<Bytes> {
        let delivered = self.meter.delivered.unwrap_or(0);
        self.stated.as_mut()?.state(delivered)
    }

    /// A `per_token` event stream ended: it is charged all it reported, and
    /// the client is told so in a last statement.
    fn final_statement(&mut self) -> Option<Bytes> {
        let stated = self.stated.as_mut()?;
        let charge = self.meter.reported().min(self.meter.allowance);
        self.meter.delivered = Some(charge);
        stated.state(charge)
    }
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(finishing) = this.finishing.as_mut() {
                // The response is complete only once its charge is recorded.
                ready!(finishing.as_mut().poll(cx));
                this.finishing = None;
                this.ended = true;
            }
            if this.ended {
                if let Some(frame) = this.last.take() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                return Poll::Ready(this.cut.take().map(|reason| Err(reason.into())));
            }
            if this.cut.is_some() {
                this.start_finishing();
                this.ended = this.finishing.is_none();
                continue;
            }
            if let Some(deadline) = this.deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    if ready!(this.meter.poll_refill(cx, false)) {
                        if let Some(at) = this.meter.deadline() {
                            deadline.as_mut().reset(at.into());
                        }
                        continue;
                    }
                    this.cut = Some("the lane's allowance ran out");
                    continue;
                }
            }
            let polled = match this.held.take() {
                Some(data) => {
                    let refilled = match this.meter.poll_refill(cx, true) {
                        Poll::Ready(refilled) => refilled,
                        Poll::Pending => {
                            this.held = Some(data);
                            return Poll::Pending;
                        }
                    };
                    if refilled && this.max_bytes.is_some() {
                        this.max_bytes =
                            pricing::units_for(&this.meter.price, this.meter.allowance);
                    }
                    Some(Ok(Frame::data(data)))
                }
                None => ready!(Pin::new(&mut this.inner).poll_frame(cx)),
            };
            match polled {
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let data = match this.token_step(data) {
                        TokenStep::Pass(data) => data,
                        TokenStep::Hold(due) => {
                            this.held = Some(data.clone());
                            match due {
                                Some(due) => return Poll::Ready(Some(Ok(Frame::data(due)))),
                                None => continue,
                            }
                        }
                        TokenStep::Cut(event) => {
                            tracing::info!(lane = ?this.meter.lane(), "a token stream's allowance ran out: cut");
                            match event {
                                // The stream's own last event says why: it ends cleanly.
                                Some(event) => this.last = Some(Frame::data(event)),
                                None => this.cut = Some("the lane's allowance ran out"),
                            }
                            this.start_finishing();
                            this.ended = this.finishing.is_none();
                            continue;
                        }
                    };
                    let len = data.len() as u64;
                    if let Some(max) = this.max_bytes {
                        let room = max.saturating_sub(this.meter.bytes);
                        if len > room && this.meter.refill.can_wait() {
                            // Hold it until the client pays for more.
                            this.held = Some(data.clone());
                            continue;
                        }
                        if len > room {
                            // Send what is paid for, then stop.
                            let paid = data.slice(..room as usize);
                            this.meter.bytes = max;
                            this.cut = Some("the lane's allowance ran out");
                            return Poll::Ready(Some(Ok(Frame::data(paid))));
                        }
                    }
                    this.meter.bytes = this.meter.bytes.saturating_add(len);
                    if this.held.is_none() && this.inner.is_end_stream() {
                        // The last frame: the charge is recorded before the
                        // client can hold a complete response and send the next.
                        let frame = match this.final_statement() {
                            Some(statement) => Frame::data([data, statement].concat().into()),
                            None => Frame::data(data),
                        };
                        this.start_finishing();
                        if this.finishing.is_some() {
                            this.last = Some(frame);
                            continue;
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => {
                    let error: BoxError = error.into();
                    tracing::debug!(%error, "a metered response failed");
                    this.cut = Some("the response failed");
                    // An event stream says what it charged before it breaks.
                    this.last = this.cut_statement().map(Frame::data);
                    continue;
                }
                None => {
                    this.last = this.final_statement().map(Frame::data);
                    this.start_finishing();
                    this.ended = this.finishing.is_none();
                    continue;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.last.is_none() && self.cut.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
