//! The tower layer and the request path, which runs one way: the paywall's
//! own endpoints first, then the price of the path, admission (credential,
//! lane, meter, store), the service, and the receipt on its response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use super::admission::{Admission, Admitted};
use super::body::{InFlight, MeteredBody, Tally};
use super::credit::Credit;
use super::metrics::SharedMetrics;
use super::pricing::PriceTable;
use super::response::{boxed, refusal_code, AmpBody, BoxError};
use super::wellknown::WellKnown;
use crate::headers::Receipt;
use crate::manifest::{ErrorBody, ErrorCode};
use crate::pricing;
use crate::sponsor::MAX_REQUEST_LEN;

/// Largest JSON-RPC request body read to find its method (a JSON-RPC route's
/// requests are priced by it); a larger one is refused.
pub const MAX_RPC_BODY: usize = 4 * 1024 * 1024;

/// What every copy of the layer shares.
pub(crate) struct Shared {
    wellknown: WellKnown,
    prices: PriceTable,
    admission: Arc<Admission>,
    credit: Arc<Credit>,
    metrics: SharedMetrics,
}

impl Shared {
    pub(crate) fn new(
        wellknown: WellKnown,
        prices: PriceTable,
        admission: Arc<Admission>,
        credit: Arc<Credit>,
        metrics: SharedMetrics,
    ) -> Self {
        Self {
            wellknown,
            prices,
            admission,
            credit,
            metrics,
        }
    }

    /// Counts a refusal of a paid request on `route`.
    fn refused(&self, route: &str, refusal: Response<AmpBody>) -> Response<AmpBody> {
        if let Some(code) = refusal_code(&refusal) {
            self.metrics.refused(route, code);
        }
        refusal
    }
}

/// The tower layer of a [`Paywall`](super::Paywall).
#[derive(Clone)]
pub struct PaywallLayer {
    shared: Arc<Shared>,
}

impl PaywallLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService {
            shared: Arc::clone(&self.shared),
            inner,
        }
    }
}

/// A service behind the paywall.
#[derive(Clone)]
pub struct PaywallService<S> {
    shared: Arc<Shared>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PaywallService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    // A JSON-RPC route's body is read for its method, then passed on whole.
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AmpBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<AmpBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // The ready service goes into the future; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = request.uri().path();
            if let Some(endpoint) = shared.wellknown.route(request.method(), path) {
                let (parts, body) = request.into_parts();
                let body = match endpoint.reads_body() {
                    true => read_body(body, MAX_REQUEST_LEN).await,
                    false => None,
                };
                return Ok(shared.wellknown.serve(endpoint, &parts.headers, body).await);
            }
            let route = shared.prices.route(path);
            let price = match shared.prices.methods(path) {
                None => shared.prices.price(path),
                Some(methods) => {
                    let (parts, body) = request.into_parts();
                    let Some(body) = read_body(body, MAX_RPC_BODY).await else {
                        return Ok(shared.refused(route, shared.admission.refuse(ErrorBody::new(
                            ErrorCode::Malformed,
                            format!(
                                "a JSON-RPC request body must be readable and at most {MAX_RPC_BODY} bytes"
                            ),
                        ))));
                    };
                    let price = pricing::message_price(methods, &body);
                    request = Request::from_parts(parts, ReqBody::from(body));
                    price
                }
            };
            let Some(price) = price else {
                return Ok(inner.call(request).await?.map(boxed));
            };
            // One span per paid request; the lane and seq once admission knows them.
            let span = tracing::info_span!(
                "paid_request",
                route,
                lane = tracing::field::Empty,
                seq = tracing::field::Empty
            );
            let paid = async {
                let admitted = match shared.admission.admit(request.headers(), price).await {
                    Ok(admitted) => admitted,
                    Err(refusal) => return Ok(shared.refused(route, refusal)),
                };
                let payment = &admitted.payment;
                let span = tracing::Span::current();
                span.record("lane", tracing::field::display(payment.lane));
                span.record("seq", payment.seq);
                shared.metrics.paid(route);
                if payment.allowance.is_none() {
                    shared
                        .metrics
                        .charged(route, &payment.mint, price.mode, 1, price.rate);
                }
                request.extensions_mut().insert(payment.clone());
                let meter = in_flight(&shared, &admitted, route);
                // A per-second price also bounds the handler itself: when the
                // allowance runs out first, the request is cut off and charged it.
                let response = match meter.as_ref().and_then(InFlight::deadline) {
                    None => inner.call(request).await?,
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline.into(), inner.call(request)).await {
                            Ok(response) => response?,
                            Err(_) => {
                                return Ok(timed_out(&shared.admission, &admitted, meter).await)
                            }
                        }
                    }
                };
                Ok(respond(&admitted, response, meter))
            };
            paid.instrument(span).await
        })
    }
}

/// A request body, up to `limit` bytes; `None` when it is larger or cannot
/// be read (the caller refuses it).
async fn read_body<B>(body: B, limit: usize) -> Option<Bytes>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let limited = http_body_util::Limited::new(body, limit);
    Some(limited.collect().await.ok()?.to_bytes())
}

/// The meter of a metered request, counted under `route`; `None` for an
/// upfront price.
fn in_flight(shared: &Shared, admitted: &Admitted, route: &str) -> Option<InFlight> {
    let allowance = admitted.payment.allowance?;
    let tally = Tally::new(&shared.metrics, route, admitted.payment.mint);
    Some(
        InFlight::new(
            &shared.credit,
            admitted.fresh.clone(),
            admitted.payment.price,
            allowance,
            admitted.payment.usage.clone(),
        )
        .counted(tally),
    )
}

/// The handler outlasted a per-second allowance: charge it all and say so.
async fn timed_out(
    admission: &Admission,
    admitted: &Admitted,
    meter: Option<InFlight>,
) -> Response<AmpBody> {
    let charged = admitted.payment.allowance.unwrap_or(0);
    if let Some(meter) = meter {
        meter.finish_now().await;
    }
    let owed = admitted.payment.owed.saturating_add(charged);
    admission.refuse(
        ErrorBody::new(
            ErrorCode::Underfunded,
            "the request outlasted what the voucher and the credit pay for",
        )
        .with_required(owed)
        .with_owed(owed),
    )
}

/// Adds the receipt and, for a metered price, meters the body.
fn respond<B>(
    admitted: &Admitted,
    response: Response<B>,
    meter: Option<InFlight>,
) -> Response<AmpBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, inner) = response.into_parts();
    let (owed, body) = match meter {
        None => (admitted.payment.owed, boxed(inner)),
        Some(meter) => {
            // As far as known: the body's size if it has one, the time so
            // far, or the units reported so far.
            let known = meter.charge_with(inner.size_hint().exact().unwrap_or(0));
            let owed = admitted.payment.owed.saturating_add(known);
            let event_stream = crate::sse::is_event_stream(&parts.headers);
            (
                owed,
                boxed(MeteredBody::new(boxed(inner), meter, event_stream)),
            )
        }
    };
    Receipt {
        owed,
        remaining: admitted.limit.saturating_sub(owed),
    }
    .write(&mut parts.headers);
    Response::from_parts(parts, body)
}
