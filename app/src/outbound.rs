//! `amp proxy`: the outbound paying proxy. Any HTTP client on this machine,
//! in any language, pays through AMP by pointing its base URL at it:
//!
//! ```text
//! OPENAI_BASE_URL=http://127.0.0.1:8403/https://api.example.com/v1
//! ```
//!
//! A request to `http://127.0.0.1:8403/<service URL>` (or, for plain
//! `http://` services, a proxy-form request `GET http://host/path`) is sent
//! to the service through the SDK's [`AmpClient`]: the first one opens a
//! lane within the budget, every one carries a credential, and a metered
//! response streams back as it arrives, paid while it flows. Lanes, budget
//! and restarts behave as for `amp pay`, whose lane file it shares.
//!
//! Only services in the allow-list are paid; anything else is refused
//! before any network call. Refusals are [`LocalError`](crate::local_error::LocalError)
//! bodies; a service's own refusal passes through unchanged.

use std::sync::Arc;

use amp_sdk::client::{AmpClient, AmpResponse, ClientError};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures_util::stream;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};
use reqwest::Url;

use crate::local_error::{self, respond};
use crate::proxy::{self, strip};

/// Largest request body passed on: a request may be sent twice (after a
/// refusal that the client repairs), so its body is held whole.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Which services the proxy pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allow {
    /// Only these origins (`https://api.example.com`).
    Origins(Vec<String>),
    /// Any service the budget can pay.
    Any,
}

impl Allow {
    fn permits(&self, url: &Url) -> bool {
        match self {
            Allow::Any => true,
            Allow::Origins(origins) => {
                let origin = url.origin().ascii_serialization();
                origins.contains(&origin)
            }
        }
    }
}

/// The proxy's state: the paying client and what it may pay.
pub struct Outbound {
    client: AmpClient,
    allow: Allow,
}

impl Outbound {
    pub fn new(client: AmpClient, allow: Allow) -> Self {
        Self { client, allow }
    }

    /// The client paying for every request.
    pub fn client(&self) -> &AmpClient {
        &self.client
    }
}

/// The proxy's router: every request is a request to pay for.
pub fn router(outbound: Arc<Outbound>) -> Router {
    Router::new().fallback(forward).with_state(outbound)
}

/// The service URL a request names: a proxy-form (absolute) `http://` URI,
/// or a path that is itself a URL (`/https://api.example.com/v1/x?q`).
pub fn target(uri: &Uri) -> Result<Url, String> {
    if uri.scheme().is_some() {
        let url = Url::parse(&uri.to_string()).map_err(|e| format!("{uri}: {e}"))?;
        return match url.scheme() {
            "http" => Ok(url),
            _ => Err(format!(
                "{uri}: only http:// services are proxied in proxy form; \
                 for https:// put the URL in the path (http://127.0.0.1:8403/https://...)"
            )),
        };
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let named = path_and_query.strip_prefix('/').unwrap_or(path_and_query);
    if !(named.starts_with("http://") || named.starts_with("https://")) {
        return Err(format!(
            "{path_and_query}: the path must be the service's URL, as in /https://api.example.com/v1"
        ));
    }
    let url = Url::parse(named).map_err(|e| format!("{named}: {e}"))?;
    if !url.has_host() {
        return Err(format!("{named}: no host"));
    }
    Ok(url)
}

async fn forward(State(outbound): State<Arc<Outbound>>, request: Request) -> Response {
    if request.method() == Method::CONNECT {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            local_error::PROXY_TARGET,
            "CONNECT tunnels cannot be paid for (the request is encrypted): \
             put the https:// URL in the path instead (http://127.0.0.1:8403/https://...)",
        );
    }
    let url = match target(request.uri()) {
        Ok(url) => url,
        Err(message) => {
            return respond(StatusCode::BAD_REQUEST, local_error::PROXY_TARGET, message)
        }
    };
    if !outbound.allow.permits(&url) {
        return respond(
            StatusCode::FORBIDDEN,
            local_error::PROXY_NOT_ALLOWED,
            format!(
                "{} is not among the services this proxy pays (--allow)",
                url.origin().ascii_serialization()
            ),
        );
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                local_error::PROXY_BODY_TOO_LARGE,
                format!("request bodies up to {MAX_REQUEST_BODY} bytes are passed on"),
            )
        }
    };
    let mut headers = parts.headers;
    strip(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    // Credentials are the proxy's to write.
    for name in amp_sdk::headers::Header::CREDENTIAL {
        headers.remove(name.name());
    }
    let request = outbound
        .client
        .http()
        .request(parts.method, url.clone())
        .headers(headers)
        .body(body);
    match outbound.client.send(request).await {
        Ok(response) => stream_back(response),
        Err(error) => refused(&url, error),
    }
}

/// The service's answer, its body streamed as it is received (and paid).
fn stream_back(response: AmpResponse) -> Response {
    let status = response.status();
    let mut headers = response.headers().clone();
    strip(&mut headers);
    // The body is re-chunked: its length may still be known, its framing is ours.
    let chunks = stream::unfold(Some(response), |state| async move {
        let mut response = state?;
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), Some(response))),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "a paid response broke off");
                Some((Err(std::io::Error::other(error.to_string())), None))
            }
        }
    });
    proxy::respond(status, headers, Body::from_stream(chunks))
}

/// A request the client could not pay for: the service's refusal as it
/// sent it, or the proxy's own reason.
fn refused(url: &Url, error: ClientError) -> Response {
    tracing::info!(service = %url.origin().ascii_serialization(), %error, "not paid");
    match error {
        ClientError::Refused { status, body, .. } => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let body = Body::from(serde_json::to_vec(&body).unwrap_or_default());
            proxy::respond(status, headers, body)
        }
        ClientError::BudgetExceeded { .. } | ClientError::LaneExhausted { .. } => respond(
            StatusCode::PAYMENT_REQUIRED,
            local_error::BUDGET_EXCEEDED,
            error.to_string(),
        ),
        ClientError::Terms { .. }
        | ClientError::NeedsSol { .. }
        | ClientError::CannotDeposit(_) => respond(
            StatusCode::PAYMENT_REQUIRED,
            local_error::PAYMENT_REFUSED,
            error.to_string(),
        ),
        _ => respond(
            StatusCode::BAD_GATEWAY,
            local_error::PROXY_UNAVAILABLE,
            error.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_of(uri: &str) -> Result<String, String> {
        target(&uri.parse::<Uri>().unwrap()).map(String::from)
    }

    #[test]
    fn the_service_url_is_the_path_or_the_proxy_form_uri() {
        assert_eq!(
            target_of("/https://api.example.com/v1/chat/completions?x=1").unwrap(),
            "https://api.example.com/v1/chat/completions?x=1"
        );
        assert_eq!(
            target_of("/http://127.0.0.1:8402/v1/hello").unwrap(),
            "http://127.0.0.1:8402/v1/hello"
        );
        assert_eq!(
            target_of("http://127.0.0.1:8402/v1/hello").unwrap(),
            "http://127.0.0.1:8402/v1/hello"
        );
        assert!(target_of("/v1/hello").is_err());
        assert!(target_of("/").is_err());
        assert!(target_of("/ftp://example.com/x").is_err());
        assert!(target_of("https://api.example.com/v1").is_err());
    }

    #[test]
    fn only_allowed_origins_are_paid() {
        let allow = Allow::Origins(vec!["https://api.example.com".into()]);
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(allow.permits(&url("https://api.example.com/v1/x")));
        assert!(allow.permits(&url("https://api.example.com:443/v1/x")));
        assert!(!allow.permits(&url("http://api.example.com/v1/x")));
        assert!(!allow.permits(&url("https://api.example.com.evil.io/v1")));
        assert!(!allow.permits(&url("https://evil.io/https://api.example.com")));
        assert!(Allow::Any.permits(&url("https://evil.io/")));
    }
}
