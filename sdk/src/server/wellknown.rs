//! The paywall's own endpoints, a small router beside the service: the
//! manifest, the cooperative close, credit for streams, the settler's status.
//! Every path is defined in [`crate::manifest`], next to the others.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};

use super::close::CooperativeClose;
use super::credit::Credit;
use super::response::{json, to_json, AmpBody};
use super::settle::SettleHook;
use crate::manifest::{CLOSE_PATH, CREDIT_PATH, MANIFEST_PATH, STATUS_PATH};

/// One of the paywall's own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Manifest,
    Close,
    Credit,
    Status,
}

/// The endpoints and what they answer from.
pub(crate) struct WellKnown {
    manifest_json: Bytes,
    close: CooperativeClose,
    credit: Arc<Credit>,
    settler: SettleHook,
    /// Whether the settler's status is served.
    status: bool,
}

impl WellKnown {
    pub(crate) fn new(
        manifest_json: Bytes,
        close: CooperativeClose,
        credit: Arc<Credit>,
        settler: SettleHook,
        status: bool,
    ) -> Self {
        Self {
            manifest_json,
            close,
            credit,
            settler,
            status,
        }
    }

    /// The endpoint `method` and `path` name, if any; anything else is the service's.
    pub(crate) fn route(&self, method: &Method, path: &str) -> Option<Endpoint> {
        match (method, path) {
            (&Method::GET, MANIFEST_PATH) => Some(Endpoint::Manifest),
            (&Method::POST, CLOSE_PATH) => Some(Endpoint::Close),
            (&Method::POST, CREDIT_PATH) => Some(Endpoint::Credit),
            (&Method::GET, STATUS_PATH) if self.status => Some(Endpoint::Status),
            _ => None,
        }
    }

    /// The endpoint's answer.
    pub(crate) async fn serve(&self, endpoint: Endpoint, headers: &HeaderMap) -> Response<AmpBody> {
        match endpoint {
            Endpoint::Manifest => json(StatusCode::OK, self.manifest_json.to_vec()),
            Endpoint::Close => self.close.answer(headers).await,
            Endpoint::Credit => self.credit.answer(headers).await,
            Endpoint::Status => json(StatusCode::OK, to_json(&self.settler.status())),
        }
    }
}
