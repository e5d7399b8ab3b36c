//! A service's session keys: the master secret sessions' keys derive from,
//! this replica's name, and how long a session lasts. Nothing per session is
//! stored; a request's key is derived again to check its MAC.

use solana_keypair::Keypair;

use crate::manifest::{ErrorBody, ErrorCode};
use crate::session::{replica_id, Master, Session, SessionCredential, SessionKey};

use crate::server::config::SessionConfig;
use crate::server::meter::voucher_due;

/// Issues sessions and checks their requests' authenticators.
pub(crate) struct SessionKeys {
    master: Master,
    replica: [u8; 8],
    ttl: u32,
}

impl SessionKeys {
    /// The sessions of the recipient `wallet` (the master secret derives from it).
    pub(crate) fn new(wallet: &Keypair, config: &SessionConfig) -> Self {
        Self {
            master: Master::from_wallet_secret(wallet.secret_bytes()),
            replica: replica_id(&config.replica),
            ttl: config.ttl,
        }
    }

    /// A new session of a lane's `generation`, issued at `now`, and its key.
    pub(crate) fn issue(
        &self,
        lane: &anchor_lang::prelude::Pubkey,
        generation: u64,
        now: i64,
    ) -> (Session, SessionKey) {
        let session = Session {
            replica: self.replica,
            nonce: random_nonce(),
            expires_at: now.saturating_add(i64::from(self.ttl)),
        };
        let key = self.master.key(lane, generation, &session);
        (session, key)
    }

    /// Checks a session request against the lane's current `generation` at
    /// `now`: its MAC under the session's key ([`ErrorCode::InvalidSig`],
    /// also for a session of an older generation, whose key differs), then
    /// whether this replica still honours the session
    /// ([`ErrorCode::VoucherDue`]: sign instead).
    pub(crate) fn check(
        &self,
        credential: &SessionCredential,
        generation: u64,
        now: i64,
    ) -> Result<(), Box<ErrorBody>> {
        let key = self
            .master
            .key(&credential.lane, generation, &credential.session);
        if !key.verify(
            &credential.lane,
            credential.seq,
            credential.amount,
            &credential.mac,
        ) {
            return Err(Box::new(ErrorBody::new(
                ErrorCode::InvalidSig,
                "AMP-Mac does not verify under this session of the lane",
            )));
        }
        if credential.session.replica != self.replica {
            return Err(voucher_due(
                credential.amount,
                None,
                "the session was issued by another replica",
            ));
        }
        if now >= credential.session.expires_at {
            return Err(voucher_due(credential.amount, None, "the session expired"));
        }
        Ok(())
    }
}

/// 16 bytes from the operating system's generator (through a fresh keypair's
/// secret, as the SDK draws its other nonces).
fn random_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&Keypair::new().secret_bytes()[..16]);
    nonce
}
