//! The paywall's own endpoints, a small router beside the service: the
//! manifest, the cooperative close, credit for streams, sponsored opening,
//! sessions, the status of the settler and the sponsorship.
//! Every path is defined in [`crate::manifest`], next to the others.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};

use super::close::CooperativeClose;
use super::credit::Credit;
use super::ledger::SessionStatus;
use super::metrics::{SharedMetrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use super::response::{boxed, json, to_json, AmpBody};
use super::session::endpoint::Sessions;
use super::settle::{SettleHook, SettlerStatus};
use super::sponsor::{Kind, Sponsor, SponsorStatus};
use crate::manifest::{CLOSE_PATH, CREDIT_PATH, MANIFEST_PATH, STATUS_PATH};
use crate::session::SESSION_PATH;
use crate::sponsor::{OPEN_PATH, TOP_UP_PATH};

/// The status document: the settler's figures, and the sponsorship's when
/// the service sponsors.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceStatus {
    /// The settler's figures, at the top level.
    #[serde(flatten)]
    pub settler: SettlerStatus,
    /// Sponsored opening: what was fronted, spent and refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<SponsorStatus>,
    /// Sessions: the credit at risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionStatus>,
}

/// One of the paywall's own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Manifest,
    Close,
    Credit,
    Sponsor(Kind),
    Session,
    Status,
    Metrics,
}

impl Endpoint {
    /// Whether the endpoint reads the request body (the others read headers).
    pub(crate) fn reads_body(self) -> bool {
        matches!(self, Endpoint::Sponsor(_))
    }
}

/// The endpoints and what they answer from.
pub(crate) struct WellKnown {
    manifest_json: Bytes,
    close: CooperativeClose,
    credit: Arc<Credit>,
    settler: SettleHook,
    sponsor: Option<Arc<Sponsor>>,
    sessions: Option<Sessions>,
    /// Whether the settler's status is served.
    status: bool,
    /// The metrics' route and token, when they are served here.
    metrics: Option<MetricsRoute>,
}

/// The metrics on the service's port: a path, and the bearer token that
/// alone may read them.
pub(crate) struct MetricsRoute {
    pub(crate) path: String,
    pub(crate) token: String,
    pub(crate) metrics: SharedMetrics,
}

impl WellKnown {
    pub(crate) fn new(
        manifest_json: Bytes,
        close: CooperativeClose,
        credit: Arc<Credit>,
        settler: SettleHook,
        sponsor: Option<Arc<Sponsor>>,
        sessions: Option<Sessions>,
        status: bool,
    ) -> Self {
        Self {
            manifest_json,
            close,
            credit,
            settler,
            sponsor,
            sessions,
            status,
            metrics: None,
        }
    }

    /// Serves the metrics at `route`.
    pub(crate) fn with_metrics(mut self, route: MetricsRoute) -> Self {
        self.metrics = Some(route);
        self
    }

    /// The endpoint `method` and `path` name, if any; anything else is the service's.
    pub(crate) fn route(&self, method: &Method, path: &str) -> Option<Endpoint> {
        match (method, path) {
            (&Method::GET, MANIFEST_PATH) => Some(Endpoint::Manifest),
            (&Method::POST, CLOSE_PATH) => Some(Endpoint::Close),
            (&Method::POST, CREDIT_PATH) => Some(Endpoint::Credit),
            (&Method::POST, OPEN_PATH) if self.sponsor.is_some() => {
                Some(Endpoint::Sponsor(Kind::Open))
            }
            (&Method::POST, TOP_UP_PATH) if self.sponsor.is_some() => {
                Some(Endpoint::Sponsor(Kind::TopUp))
            }
            (&Method::POST, SESSION_PATH) if self.sessions.is_some() => Some(Endpoint::Session),
            (&Method::GET, STATUS_PATH) if self.status => Some(Endpoint::Status),
            (&Method::GET, path) if self.metrics.as_ref().is_some_and(|m| m.path == path) => {
                Some(Endpoint::Metrics)
            }
            _ => None,
        }
    }

    /// The endpoint's answer; `body` is the request's body when the
    /// endpoint [reads it](Endpoint::reads_body) and it was within bounds.
    pub(crate) async fn serve(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Response<AmpBody> {
        match endpoint {
            Endpoint::Manifest => json(StatusCode::OK, self.manifest_json.to_vec()),
            Endpoint::Close => self.close.answer(headers).await,
            Endpoint::Credit => self.credit.answer(headers).await,
            Endpoint::Sponsor(kind) => match &self.sponsor {
                Some(sponsor) => sponsor.answer(kind, body).await,
                None => json(StatusCode::NOT_FOUND, Vec::new()),
            },
            Endpoint::Session => match &self.sessions {
                Some(sessions) => sessions.answer(headers).await,
                None => json(StatusCode::NOT_FOUND, Vec::new()),
            },
            Endpoint::Status => json(StatusCode::OK, to_json(&self.status().await)),
            Endpoint::Metrics => match &self.metrics {
                Some(route) => route.answer(headers),
                None => json(StatusCode::NOT_FOUND, Vec::new()),
            },
        }
    }

    async fn status(&self) -> ServiceStatus {
        let sessions = match self.sessions {
            Some(_) => Some(self.credit.ledger().sessions(self.credit.amount()).await),
            None => None,
        };
        ServiceStatus {
            settler: self.settler.status(),
            sponsor: self.sponsor.as_ref().map(|s| s.status()),
            sessions,
        }
    }
}

impl MetricsRoute {
    /// The metrics text to the token's bearer; 401 to anyone else.
    fn answer(&self, headers: &HeaderMap) -> Response<AmpBody> {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !bearer.is_some_and(|b| same(b.as_bytes(), self.token.as_bytes())) {
            let mut response = json(StatusCode::UNAUTHORIZED, Vec::new());
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
        let text = self.metrics.render();
        let mut response = Response::new(boxed(http_body_util::Full::new(Bytes::from(text))));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(METRICS_CONTENT_TYPE),
        );
        response
    }
}

/// Compares a presented token with the configured one in time that does not
/// depend on where they differ, so the token cannot be guessed byte by byte.
fn same(presented: &[u8], token: &[u8]) -> bool {
    presented.len() == token.len()
        && presented
            .iter()
            .zip(token)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}
