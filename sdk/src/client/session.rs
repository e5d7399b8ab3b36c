//! The agent's sessions (docs/SPEC.md, "Sessions"): per lane, the session
//! the service issued and its key, and the highest amount signed since, by
//! which the client decides whether a request is MAC'd or signed. Kept in
//! memory only: after a restart the client opens a new session, which costs
//! one signature.

use std::collections::HashMap;
use std::sync::Mutex;

use anchor_lang::prelude::Pubkey;
use http::HeaderMap;

use crate::headers::Credential;
use crate::manifest::{ErrorBody, ErrorCode};
use crate::session::{Session, SessionCredential, SessionKey};

/// A lane's session as the client holds it.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub session: Session,
    pub key: SessionKey,
    /// Highest amount signed on the lane since the session opened.
    pub signed: u64,
}

impl Held {
    /// Whether a request acknowledging `amount` may go MAC'd: while the
    /// unsigned part stays below half the `credit`, so the service never has
    /// to ask for a signature (SPEC: the client signs every half credit).
    pub(crate) fn may_acknowledge(&self, amount: u64, credit: u64) -> bool {
        amount.saturating_sub(self.signed) < credit / 2
    }
}

#[derive(Clone, Debug)]
enum Slot {
    /// The lane paid one request in this process: a session pays off from
    /// the second (a one-shot `amp pay` would only add a round trip).
    Seen,
    /// Someone is opening it; meanwhile requests are signed.
    Opening,
    Open(Held),
    /// The service would not open one (logged once); requests are signed.
    Refused,
}

/// Every lane's session.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<Pubkey, Slot>>);

impl Sessions {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Pubkey, Slot>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Claims the opening of `lane`'s session before a paid request:
    /// `true` when the caller should open one (the lane was paid before in
    /// this process, and no session is open, being opened, or refused).
    pub(crate) fn start_opening(&self, lane: &Pubkey) -> bool {
        self.with(|slots| match slots.get(lane) {
            None => {
                slots.insert(*lane, Slot::Seen);
                false
            }
            Some(Slot::Seen) => {
                slots.insert(*lane, Slot::Opening);
                true
            }
            Some(_) => false,
        })
    }

    /// The opening ended: with a session, or without (`None`: the service
    /// refused; `retry`: it may work later, at the next request).
    pub(crate) fn opened(&self, lane: &Pubkey, held: Option<Held>, retry: bool) {
        self.with(|slots| match (held, retry) {
            (Some(held), _) => {
                slots.insert(*lane, Slot::Open(held));
            }
            (None, true) => {
                slots.insert(*lane, Slot::Seen);
            }
            (None, false) => {
                slots.insert(*lane, Slot::Refused);
            }
        });
    }

    /// The lane's open session.
    pub(crate) fn held(&self, lane: &Pubkey) -> Option<Held> {
        self.with(|slots| match slots.get(lane) {
            Some(Slot::Open(held)) => Some(held.clone()),
            _ => None,
        })
    }

    /// A credential for `amount` was signed on `lane`.
    pub(crate) fn signed(&self, lane: &Pubkey, amount: u64) {
        self.with(|slots| {
            if let Some(Slot::Open(held)) = slots.get_mut(lane) {
                held.signed = held.signed.max(amount);
            }
        });
    }

    /// A session request was refused with `body`: whether to send it again
    /// signed, and what the signature must cover at least. A refusal that
    /// is not about the amount (a MAC the service no longer takes, a
    /// session it no longer honours) also ends the session, to be opened
    /// afresh by the next request.
    pub(crate) fn refused(
        &self,
        lane: &Pubkey,
        sent: &SessionCredential,
        body: &ErrorBody,
        credit: u64,
    ) -> Option<u64> {
        let stale = match body.error {
            ErrorCode::InvalidSig => true,
            ErrorCode::VoucherDue => {
                // Within the credit as far as this client knows: the
                // service no longer honours the session (expired, another
                // replica, a restart with another name).
                let signed = self.held(lane).map_or(0, |h| h.signed);
                sent.amount <= signed.saturating_add(credit)
            }
            _ => return None,
        };
        if stale {
            self.with(|slots| slots.insert(*lane, Slot::Seen));
        }
        Some(body.required.unwrap_or(0).max(sent.amount))
    }
}

/// The credential one attempt of a paid request carries.
#[derive(Clone, Debug)]
pub(crate) enum Paid {
    Signed(Credential),
    Session(SessionCredential),
}

impl Paid {
    pub(crate) fn write(&self, headers: &mut HeaderMap) {
        match self {
            Paid::Signed(credential) => credential.write(headers),
            Paid::Session(credential) => credential.write(headers),
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        match self {
            Paid::Signed(credential) => credential.seq,
            Paid::Session(credential) => credential.seq,
        }
    }

    pub(crate) fn amount(&self) -> u64 {
        match self {
            Paid::Signed(credential) => credential.cumulative,
            Paid::Session(credential) => credential.amount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(signed: u64) -> Held {
        Held {
            session: Session {
                replica: [0; 8],
                nonce: [1; 16],
                expires_at: 10,
            },
            key: SessionKey::from_bytes([2; 32]),
            signed,
        }
    }

    fn body(error: ErrorCode, required: u64) -> ErrorBody {
        ErrorBody::new(error, "m").with_required(required)
    }

    #[test]
    fn a_signature_every_half_credit() {
        assert!(held(100).may_acknowledge(149, 100));
        assert!(!held(100).may_acknowledge(150, 100));
        assert!(!held(0).may_acknowledge(0, 0), "no credit, no session");
    }

    #[test]
    fn one_opening_at_a_time_and_a_refusal_remembered() {
        let sessions = Sessions::default();
        let lane = Pubkey::new_unique();
        assert!(
            !sessions.start_opening(&lane),
            "not for a lane's first request"
        );
        assert!(sessions.start_opening(&lane));
        assert!(!sessions.start_opening(&lane));
        sessions.opened(&lane, None, true);
        assert!(sessions.start_opening(&lane), "a failure may be retried");
        sessions.opened(&lane, None, false);
        assert!(!sessions.start_opening(&lane), "a refusal is final");
        assert!(sessions.held(&lane).is_none());
    }

    #[test]
    fn refusals_sign_the_request_and_end_a_stale_session() {
        let sessions = Sessions::default();
        let lane = Pubkey::new_unique();
        sessions.opened(&lane, Some(held(100)), false);
        sessions.signed(&lane, 120);
        let sent = |amount| SessionCredential::new(&held(0).key, held(0).session, lane, 5, amount);
        // Past the credit (another request signed less than thought): sign, keep the session.
        let due = body(ErrorCode::VoucherDue, 260);
        assert_eq!(sessions.refused(&lane, &sent(250), &due, 100), Some(260));
        assert_eq!(sessions.held(&lane).unwrap().signed, 120);
        // Not a matter of the seq or the amount: the usual repairs.
        let seq = body(ErrorCode::InvalidSeq, 0);
        assert_eq!(sessions.refused(&lane, &sent(130), &seq, 100), None);
        // Within the credit: the service no longer honours it.
        let due = body(ErrorCode::VoucherDue, 130);
        assert_eq!(sessions.refused(&lane, &sent(130), &due, 100), Some(130));
        assert!(sessions.held(&lane).is_none());
        assert!(
            sessions.start_opening(&lane),
            "opened again at the next request"
        );
    }
}
