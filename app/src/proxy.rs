//! `amp serve`: a paying reverse proxy. The SDK's paywall layer checks and
//! charges every request; a plain forwarding handler behind it passes the
//! request to the upstream API and streams the answer back, so an operator
//! charges for an existing API without touching its code.
//!
//! For `per_token` prices the upstream reports the units it used: an
//! `AMP-Units` response header, the `usage` of a JSON body, or the usage a
//! streamed (Server-Sent Events) body reports as it flows ([`crate::usage`]).

use std::sync::Arc;
use std::time::Duration;

use amp_sdk::chain::Chain;
use amp_sdk::manifest::{Pricing, PricingMode};
use amp_sdk::server::{FileConfig, Payment, Paywall};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use reqwest::Url;

use crate::error::CliError;
use crate::local_error;
use crate::usage::{self, header_units, TokenMeter};

pub use crate::usage::UNITS_HEADER;

/// The request header that tells the upstream which lane paid.
pub const LANE_HEADER: HeaderName = HeaderName::from_static("x-amp-lane");

/// Largest JSON body read to find `usage.total_tokens` (larger ones stream through).
const MAX_USAGE_BODY: u64 = 16 * 1024 * 1024;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Where and how requests are forwarded.
#[derive(Clone)]
pub struct Upstream {
    base: Url,
    http: reqwest::Client,
    /// The service's prices: per-token routes may price input and output
    /// tokens by model ([`Pricing::tokens`]).
    pricing: Option<Pricing>,
}

impl Upstream {
    /// The API requests go to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Forwards to `base` (its path, if any, prefixes every request path).
    pub fn new(base: Url) -> Result<Self, CliError> {
        if !matches!(base.scheme(), "http" | "https") || !base.has_host() {
            return Err(CliError::usage(format!(
                "the upstream {base} is not an http(s) URL"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The proxy passes redirects on; the client decides.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            base,
            http,
            pricing: None,
        })
    }

    /// The same upstream, charging per-token routes by `pricing`'s input and
    /// output token prices where it has them.
    pub fn priced(self, pricing: Pricing) -> Self {
        Self {
            pricing: Some(pricing),
            ..self
        }
    }

    /// How a per-token request to `path` for `model` is charged.
    fn token_meter(&self, path: &str, model: Option<&str>) -> TokenMeter {
        let route = path.split('?').next().unwrap_or(path);
        self.pricing
            .as_ref()
            .and_then(|pricing| amp_sdk::pricing::token_prices(pricing, route))
            .map_or(TokenMeter::Units, |prices| {
                TokenMeter::Priced(prices.for_model(model))
            })
    }

    /// The upstream URL of a request path and query.
    fn url(&self, path_and_query: &str) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }
}

/// The forwarding handler alone, for every path; put the paywall's layer on it.
pub fn router(upstream: Upstream) -> Router {
    Router::new()
        .fallback(forward)
        .with_state(Arc::new(upstream))
}

/// The paying proxy: `paywall` in front of `upstream`.
pub fn paid_router(paywall: &Paywall, upstream: Upstream) -> Router {
    router(upstream.priced(paywall.manifest().pricing.clone())).layer(paywall.layer())
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    match try_forward(&upstream, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "upstream request failed");
            local_error::respond(
                StatusCode::BAD_GATEWAY,
                local_error::UPSTREAM_UNAVAILABLE,
                format!("the upstream API did not answer: {error}"),
            )
        }
    }
}

async fn try_forward(upstream: &Upstream, request: Request) -> Result<Response, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let payment = parts.extensions.get::<Payment>().cloned();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut headers = parts.headers;
    strip(&mut headers);
    // The credential is for this proxy; the upstream learns only which lane paid.
    for name in amp_sdk::headers::Header::CREDENTIAL {
        headers.remove(name.name());
    }
    headers.remove(header::HOST);
    if let Some(payment) = &payment {
        if let Ok(lane) = HeaderValue::from_str(&payment.lane.to_string()) {
            headers.insert(LANE_HEADER, lane);
        }
    }
    let metered_tokens = payment
        .as_ref()
        .is_some_and(|p| p.price.mode == PricingMode::PerToken);
    // A per-token request's JSON body names its model; a streaming OpenAI
    // one is asked for its usage.
    let mut strip_usage = false;
    let mut model = None;
    let body = if metered_tokens && is_json(&headers) {
        let bytes = match axum::body::to_bytes(body, MAX_USAGE_BODY as usize).await {
            Ok(bytes) => bytes,
            Err(_) => Bytes::new(),
        };
        model = usage::model_of(&bytes);
        match usage::ask_for_usage(&path, &bytes) {
            Some(asked) => {
                strip_usage = true;
                headers.remove(header::CONTENT_LENGTH);
                reqwest::Body::from(asked)
            }
            None => reqwest::Body::from(bytes),
        }
    } else {
        reqwest::Body::wrap_stream(body.into_data_stream())
    };
    let response = upstream
        .http
        .request(parts.method, upstream.url(&path))
        .headers(headers)
        .body(body)
        .send()
        .await?;

    let status = response.status();
    let mut headers = response.headers().clone();
    strip(&mut headers);
    if !metered_tokens {
        return Ok(respond(
            status,
            headers,
            Body::from_stream(response.bytes_stream()),
        ));
    }
    let payment = payment.expect("checked above");
    let meter = upstream.token_meter(&path, model.as_deref());
    if let Some(units) = header_units(&headers) {
        payment.report(units);
        headers.remove(UNITS_HEADER);
        return Ok(respond(
            status,
            headers,
            Body::from_stream(response.bytes_stream()),
        ));
    }
    if amp_sdk::sse::is_event_stream(&headers) {
        headers.remove(header::CONTENT_LENGTH);
        let events =
            usage::MeteredEvents::new(response.bytes_stream(), payment, meter, strip_usage);
        return Ok(respond(status, headers, Body::from_stream(events)));
    }
    let is_json = is_json(&headers);
    let small = response
        .content_length()
        .is_none_or(|len| len <= MAX_USAGE_BODY);
    if !(is_json && small) {
        return Ok(respond(
            status,
            headers,
            Body::from_stream(response.bytes_stream()),
        ));
    }
    let bytes = read_limited(response).await?;
    if let Some((input, output)) = usage::usage_of(&bytes) {
        meter.report(&payment, meter.charge(input, output));
    }
    headers.remove(header::CONTENT_LENGTH);
    Ok(respond(status, headers, Body::from(bytes)))
}

pub(crate) fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub(crate) fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers).starts_with("application/json")
}

async fn read_limited(response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = response;
    while let Some(chunk) = stream.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_USAGE_BODY {
            break;
        }
    }
    Ok(Bytes::from(body))
}

/// Starts the paywall a configuration file describes on `chain`, receiving
/// payments as `wallet`, with the file's voucher store (SQLite or PostgreSQL).
pub async fn start_paywall(
    chain: Arc<dyn Chain>,
    wallet: solana_keypair::Keypair,
    file: FileConfig,
) -> Result<Paywall, CliError> {
    // A SQLite file, or a postgres:// URL that several replicas share.
    let store = amp_sdk::store::open(&file.store, file.durability)
        .await
        .map_err(amp_sdk::server::ServerError::from)?;
    Ok(Paywall::builder(chain, wallet)
        .config(file.service)
        .shared_store(store)
        .start()
        .await?)
}
