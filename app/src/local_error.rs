//! The JSON error body `amp`'s own proxies answer with when the fault is
//! theirs, the agent's policy's or the upstream's: `{"error": CODE,
//! "message": ...}`, the shape of the SPEC's error bodies, with codes that
//! are not the protocol's (those come from the service, passed through).

use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// What a proxy of `amp` answers when it cannot pass a request on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalError {
    /// A code naming the cause (`UPSTREAM_UNAVAILABLE`, `AMP_BUDGET_EXCEEDED`, …).
    pub error: String,
    /// What happened, for people.
    pub message: String,
}

/// The upstream API did not answer (`amp serve`).
pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
/// The request names no service URL (`amp proxy`).
pub const PROXY_TARGET: &str = "AMP_PROXY_TARGET";
/// The service is not in the proxy's allow-list (`amp proxy`).
pub const PROXY_NOT_ALLOWED: &str = "AMP_PROXY_NOT_ALLOWED";
/// The request body is larger than the proxy holds (`amp proxy`).
pub const PROXY_BODY_TOO_LARGE: &str = "AMP_PROXY_BODY_TOO_LARGE";
/// Paying would pass the agent's budget (`amp proxy`).
pub const BUDGET_EXCEEDED: &str = "AMP_BUDGET_EXCEEDED";
/// The agent's policy refuses the service's terms, or it cannot pay
/// (`amp proxy`).
pub const PAYMENT_REFUSED: &str = "AMP_PAYMENT_REFUSED";
/// The service or the chain could not be reached to pay (`amp proxy`).
pub const PROXY_UNAVAILABLE: &str = "AMP_PROXY_UNAVAILABLE";

/// The response carrying a [`LocalError`].
pub fn respond(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    let body = LocalError {
        error: error.to_owned(),
        message: message.into(),
    };
    let json = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, json).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
