//! `POST /.well-known/amp/session` (docs/SPEC.md, "Sessions"): a client
//! that proves it holds a lane's key (a full credential, recorded as a
//! credit credential is) gets a session and its key. Nothing is stored: the
//! key is derived again from the master secret whenever a request needs it.

use std::sync::Arc;

use http::{HeaderMap, Response};

use super::keys::SessionKeys;
use crate::server::cache::LaneCache;
use crate::server::credit::Credit;
use crate::server::response::{to_json, AmpBody};
use crate::session::SessionAnswer;

/// The session endpoint.
pub(crate) struct Sessions {
    credit: Arc<Credit>,
    cache: Arc<LaneCache>,
    keys: Arc<SessionKeys>,
}

impl Sessions {
    pub(crate) fn new(credit: Arc<Credit>, cache: Arc<LaneCache>, keys: Arc<SessionKeys>) -> Self {
        Self {
            credit,
            cache,
            keys,
        }
    }

    /// `POST /.well-known/amp/session`.
    pub(crate) async fn answer(&self, headers: &HeaderMap) -> Response<AmpBody> {
        let accepted = match self.credit.accept(headers).await {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal,
        };
        let (session, key) = self
            .keys
            .issue(&accepted.lane, accepted.generation, self.cache.now());
        tracing::debug!(lane = %accepted.lane, expires_at = session.expires_at, "session opened");
        accepted.respond(to_json(&SessionAnswer {
            lane: accepted.lane,
            session: session.encode(),
            key: key.encode(),
            expires_at: session.expires_at,
            seq: accepted.signed.voucher.seq,
            amount: accepted.signed.voucher.cumulative,
            owed: accepted.owed,
        }))
    }
}
