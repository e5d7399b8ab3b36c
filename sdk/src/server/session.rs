//! `POST /.well-known/amp/session` (docs/SPEC.md, "Sessions"): a client
//! that proves it holds a lane's key (a full credential, recorded as a
//! credit credential is) gets a session and its key. Nothing is stored: the
//! key is derived again from the master secret whenever a request needs it.

use std::sync::Arc;

use http::{HeaderMap, Response};
use solana_keypair::Keypair;

use super::cache::LaneCache;
use super::config::SessionConfig;
use super::credit::Credit;
use super::response::{to_json, AmpBody};
use crate::session::{replica_id, Master, Session, SessionAnswer};

/// The session endpoint, and what sessions are checked against.
pub(crate) struct Sessions {
    credit: Arc<Credit>,
    cache: Arc<LaneCache>,
    master: Master,
    replica: [u8; 8],
    ttl: u32,
}

impl Sessions {
    /// Sessions of the recipient `wallet` (the master secret is derived from it).
    pub(crate) fn new(
        credit: Arc<Credit>,
        cache: Arc<LaneCache>,
        wallet: &Keypair,
        config: &SessionConfig,
    ) -> Self {
        Self {
            credit,
            cache,
            master: Master::from_wallet_secret(wallet.secret_bytes()),
            replica: replica_id(&config.replica),
            ttl: config.ttl,
        }
    }

    /// `POST /.well-known/amp/session`.
    pub(crate) async fn answer(&self, headers: &HeaderMap) -> Response<AmpBody> {
        let accepted = match self.credit.accept(headers).await {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal,
        };
        let session = Session {
            replica: self.replica,
            nonce: random_nonce(),
            expires_at: self.cache.now().saturating_add(i64::from(self.ttl)),
        };
        let key = self
            .master
            .key(&accepted.lane, accepted.generation, &session);
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

/// 16 bytes from the operating system's generator (through a fresh keypair's
/// secret, as the SDK draws its other nonces).
fn random_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&Keypair::new().secret_bytes()[..16]);
    nonce
}
