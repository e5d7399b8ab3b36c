//! The responses the paywall writes itself: JSON answers and refusals in the
//! SPEC's error bodies, in the one body type every response passes through.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use crate::manifest::{ErrorBody, ErrorCode, Manifest};

/// Any error a body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response that passes through the paywall.
pub type AmpBody = UnsyncBoxBody<Bytes, BoxError>;

/// A refusal, ready to send.
pub(crate) type Refusal = Response<AmpBody>;

pub(crate) fn boxed<B>(body: B) -> AmpBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A JSON response the paywall writes itself.
pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response<AmpBody> {
    let mut response = Response::new(boxed(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A refusal with the SPEC's body; a 402 carries the manifest, so the payer
/// can start over without another round trip.
pub(crate) fn refuse(manifest: &Manifest, body: impl Into<Box<ErrorBody>>) -> Refusal {
    let mut body: Box<ErrorBody> = body.into();
    if body.status() == StatusCode::PAYMENT_REQUIRED {
        body.manifest = Some(manifest.clone());
    }
    tracing::debug!(code = %body.error, message = %body.message, "request refused");
    coded(json(body.status(), to_json(&*body)), body.error)
}

/// Tags a refusal with its code, for whoever counts refusals (the metrics)
/// without parsing the body.
fn coded(mut response: Refusal, code: ErrorCode) -> Refusal {
    response.extensions_mut().insert(code);
    response
}

/// The code a refusal was tagged with.
pub(crate) fn refusal_code(response: &Refusal) -> Option<ErrorCode> {
    response.extensions().get::<ErrorCode>().copied()
}

/// The server could not do its part (chain or store down): 503, not a
/// client error.
pub(crate) fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Refusal {
    tracing::warn!(%error, "{what}");
    let body = ErrorBody::new(ErrorCode::Unavailable, format!("{what}; try again"));
    coded(json(body.status(), to_json(&body)), body.error)
}
