//! Sessions (docs/SPEC.md, "Sessions: paid requests without a signature
//! each"): the pieces both sides share. A service issues a [`Session`] to a
//! client that proved it holds a lane's key, derives the session's
//! [`SessionKey`] from its [`Master`] secret whenever it needs it (nothing
//! is stored), and checks each request's MAC under that key: two HMACs
//! instead of an ed25519 verification.

use anchor_lang::prelude::Pubkey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::headers::{
    base58, base58_value, required, single, unsigned, Header, HeaderError, AMP_AMOUNT, AMP_CHANNEL,
    AMP_EXPIRES, AMP_MAC, AMP_SEQ, AMP_SESSION, AMP_SIG,
};

/// Where a client opens a session, with a full credential.
pub const SESSION_PATH: &str = "/.well-known/amp/session";

/// Bytes of a session token: replica, nonce, expiry.
pub const SESSION_LEN: usize = 8 + 16 + 8;

/// Bytes of a request's MAC (HMAC-SHA256, truncated).
pub const MAC_LEN: usize = 16;

// The headers module bounds the header values without depending on this one.
const _: () = assert!(crate::headers::SESSION_BASE64_MAX == (SESSION_LEN * 4).div_ceil(3));
const _: () = assert!(crate::headers::MAC_BASE64_MAX == (MAC_LEN * 4).div_ceil(3));

type HmacSha256 = Hmac<Sha256>;

/// A session as the service issued it (the `AMP-Session` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The replica that issued it; only that one honours it.
    pub replica: [u8; 8],
    /// Makes each session of a lane distinct.
    pub nonce: [u8; 16],
    /// Unix time from which it is refused.
    pub expires_at: i64,
}

impl Session {
    /// The session's bytes: replica, nonce, expiry (little-endian).
    pub fn to_bytes(&self) -> [u8; SESSION_LEN] {
        let mut bytes = [0u8; SESSION_LEN];
        bytes[..8].copy_from_slice(&self.replica);
        bytes[8..24].copy_from_slice(&self.nonce);
        bytes[24..].copy_from_slice(&self.expires_at.to_le_bytes());
        bytes
    }

    /// A session from its bytes; `None` unless exactly [`SESSION_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; SESSION_LEN] = bytes.try_into().ok()?;
        let mut replica = [0u8; 8];
        let mut nonce = [0u8; 16];
        let mut expiry = [0u8; 8];
        replica.copy_from_slice(&bytes[..8]);
        nonce.copy_from_slice(&bytes[8..24]);
        expiry.copy_from_slice(&bytes[24..]);
        Some(Self {
            replica,
            nonce,
            expires_at: i64::from_le_bytes(expiry),
        })
    }

    /// As the header carries it: base64url without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// From the header; `None` when it is not a session.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() != crate::headers::SESSION_BASE64_MAX {
            return None;
        }
        Self::from_bytes(&URL_SAFE_NO_PAD.decode(text).ok()?)
    }
}

/// The answer to `POST` [`SESSION_PATH`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionAnswer {
    /// The lane the session pays on.
    #[serde(with = "crate::base58")]
    pub lane: Pubkey,
    /// The session, as `AMP-Session` carries it.
    pub session: String,
    /// The session's key, base64url: a secret the client keeps.
    pub key: String,
    /// Unix time from which the session is refused.
    pub expires_at: i64,
    /// The opening credential's seq.
    pub seq: u64,
    /// The cumulative amount it signed.
    #[serde(with = "crate::decimal::u64_string")]
    pub amount: u64,
    /// What the lane owes so far.
    #[serde(with = "crate::decimal::u64_string")]
    pub owed: u64,
}

/// The name of a replica as sessions carry it: the first 8 bytes of its
/// SHA-256.
pub fn replica_id(name: &str) -> [u8; 8] {
    let digest = Sha256::digest(name.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// The service's secret that session keys are derived from.
#[derive(Clone)]
pub struct Master([u8; 32]);

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Master(..)")
    }
}

impl Master {
    /// A master secret given as bytes (configured, or shared by replicas).
    pub fn new(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    /// The master secret derived from the recipient wallet's secret key, so
    /// that a restarted service (or another replica with the same wallet)
    /// derives the same keys without storing any.
    pub fn from_wallet_secret(secret: &[u8; 32]) -> Self {
        Self(hmac(secret, &[b"amp-session-master"]))
    }

    /// The key of `session` on the lane `lane` of generation `generation`:
    /// another lane, generation or session has another key.
    pub fn key(&self, lane: &Pubkey, generation: u64, session: &Session) -> SessionKey {
        SessionKey(hmac(
            &self.0,
            &[
                b"amp-session-v1",
                lane.as_ref(),
                &generation.to_le_bytes(),
                &session.to_bytes(),
            ],
        ))
    }
}

/// The key a session's requests are authenticated with.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A key from its bytes (as the session's answer gives it).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// As the session's answer carries it: base64url without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// From the session's answer; `None` unless 32 bytes.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The MAC of a request: lane, seq and the cumulative amount it
    /// acknowledges.
    pub fn mac(&self, lane: &Pubkey, seq: u64, amount: u64) -> [u8; MAC_LEN] {
        let full = hmac(&self.0, &[&request_message(lane, seq, amount)]);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&full[..MAC_LEN]);
        mac
    }

    /// Whether `mac` is the request's, compared in constant time.
    pub fn verify(&self, lane: &Pubkey, seq: u64, amount: u64, mac: &[u8]) -> bool {
        if mac.len() != MAC_LEN {
            return false;
        }
        let Ok(mut hmac) = HmacSha256::new_from_slice(&self.0) else {
            return false;
        };
        hmac.update(&request_message(lane, seq, amount));
        hmac.verify_truncated_left(mac).is_ok()
    }
}

/// The credential of a session request: the lane, seq and acknowledged
/// amount a voucher would carry, the session, and the MAC in place of a
/// signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCredential {
    /// `AMP-Channel`.
    pub lane: Pubkey,
    /// `AMP-Seq`.
    pub seq: u64,
    /// `AMP-Amount`: the cumulative amount the client acknowledges owing.
    pub amount: u64,
    /// `AMP-Session`.
    pub session: Session,
    /// `AMP-Mac`.
    pub mac: [u8; MAC_LEN],
}

impl SessionCredential {
    /// A request's credential in `session`, MAC'd with its key.
    pub fn new(key: &SessionKey, session: Session, lane: Pubkey, seq: u64, amount: u64) -> Self {
        Self {
            lane,
            seq,
            amount,
            session,
            mac: key.mac(&lane, seq, amount),
        }
    }

    /// Sets its headers (and removes a signature's, which it replaces).
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert(AMP_CHANNEL, base58_value(self.lane.as_array()));
        headers.insert(AMP_SEQ, HeaderValue::from(self.seq));
        headers.insert(AMP_AMOUNT, HeaderValue::from(self.amount));
        headers.remove(AMP_EXPIRES);
        headers.remove(AMP_SIG);
        let text = |bytes: &[u8]| {
            HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(bytes))
                .expect("base64url is visible ASCII")
        };
        headers.insert(AMP_SESSION, text(&self.session.to_bytes()));
        headers.insert(AMP_MAC, text(&self.mac));
    }

    /// Reads a session credential; `Ok(None)` when the request carries no
    /// `AMP-Session` (it is signed, or unpaid). A signature's `AMP-Sig` or
    /// `AMP-Expires` beside it is malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, HeaderError> {
        let Some(session) = single(headers, Header::Session)? else {
            return Ok(None);
        };
        if let Some(signed) = [Header::Sig, Header::Expires]
            .into_iter()
            .find(|h| headers.contains_key(h.name()))
        {
            return Err(HeaderError::NotInSession(signed));
        }
        let session = std::str::from_utf8(session)
            .ok()
            .and_then(Session::decode)
            .ok_or(HeaderError::NotBase64(Header::Session))?;
        let mac = required(headers, Header::Mac)?;
        let mac: [u8; MAC_LEN] = URL_SAFE_NO_PAD
            .decode(mac)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(HeaderError::NotBase64(Header::Mac))?;
        let lane = base58(Header::Channel, required(headers, Header::Channel)?)?;
        Ok(Some(Self {
            lane: Pubkey::new_from_array(lane),
            seq: unsigned(Header::Seq, required(headers, Header::Seq)?)?,
            amount: unsigned(Header::Amount, required(headers, Header::Amount)?)?,
            session,
            mac,
        }))
    }
}

/// Domain separation of a request's MAC.
const REQUEST_DOMAIN: &[u8; 14] = b"amp-request-v1";

/// What a request's MAC covers: the domain, lane, seq and amount.
fn request_message(lane: &Pubkey, seq: u64, amount: u64) -> [u8; 14 + 32 + 8 + 8] {
    let mut message = [0u8; 14 + 32 + 8 + 8];
    message[..14].copy_from_slice(REQUEST_DOMAIN);
    message[14..46].copy_from_slice(lane.as_ref());
    message[46..54].copy_from_slice(&seq.to_le_bytes());
    message[54..].copy_from_slice(&amount.to_le_bytes());
    message
}

/// HMAC-SHA256 of `parts`, one after another, under `key`.
fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut hmac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        hmac.update(part);
    }
    hmac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ErrorCode;

    fn session() -> Session {
        Session {
            replica: replica_id("a"),
            nonce: [7; 16],
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn sessions_travel_as_base64url() {
        let session = session();
        let text = session.encode();
        assert_eq!(text.len(), 43);
        assert_eq!(Session::decode(&text), Some(session));
        for bad in [
            "",
            "x",
            &text[1..],
            &format!("{text}A"),
            &text.replace('A', "+"),
        ] {
            assert_eq!(Session::decode(bad), None, "{bad}");
        }
        let negative = Session {
            expires_at: -1,
            ..session
        };
        assert_eq!(Session::decode(&negative.encode()), Some(negative));
    }

    #[test]
    fn a_key_belongs_to_one_lane_generation_and_session() {
        let master = Master::from_wallet_secret(&[1; 32]);
        let lane = Pubkey::new_from_array([3; 32]);
        let key = master.key(&lane, 5, &session());
        assert_eq!(
            key,
            master.key(&lane, 5, &session()),
            "derived again, the same"
        );
        assert_ne!(
            key,
            master.key(&Pubkey::new_from_array([4; 32]), 5, &session())
        );
        assert_ne!(key, master.key(&lane, 6, &session()));
        let other = Session {
            nonce: [8; 16],
            ..session()
        };
        assert_ne!(key, master.key(&lane, 5, &other));
        assert_ne!(
            key,
            Master::from_wallet_secret(&[2; 32]).key(&lane, 5, &session())
        );
        assert_eq!(SessionKey::decode(&key.encode()), Some(key.clone()));
        assert_eq!(SessionKey::decode("short"), None);
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
    }

    #[test]
    fn session_credentials_round_trip_and_refuse_what_is_not_one() {
        let lane = Pubkey::new_from_array([3; 32]);
        let key = Master::new([9; 32]).key(&lane, 1, &session());
        let credential = SessionCredential::new(&key, session(), lane, 12, 3_400);
        let mut headers = HeaderMap::new();
        headers.insert(AMP_SIG, HeaderValue::from_static("left-over"));
        credential.write(&mut headers);
        assert!(!headers.contains_key(AMP_SIG));
        let read = SessionCredential::from_headers(&headers).unwrap().unwrap();
        assert_eq!(read, credential);
        assert!(key.verify(&read.lane, read.seq, read.amount, &read.mac));
        assert_eq!(SessionCredential::from_headers(&HeaderMap::new()), Ok(None));
        for (header, value, error) in [
            (AMP_SESSION, "x", HeaderError::NotBase64(Header::Session)),
            (AMP_MAC, "AAAA", HeaderError::NotBase64(Header::Mac)),
            (AMP_MAC, &"A".repeat(40), HeaderError::TooLong(Header::Mac)),
            (AMP_SEQ, "012", HeaderError::NonCanonical(Header::Seq)),
        ] {
            let mut bad = headers.clone();
            bad.insert(header, HeaderValue::from_str(value).unwrap());
            assert_eq!(SessionCredential::from_headers(&bad), Err(error));
        }
        let mut no_mac = headers.clone();
        no_mac.remove(AMP_MAC);
        assert_eq!(
            SessionCredential::from_headers(&no_mac),
            Err(HeaderError::Missing(Header::Mac))
        );
        for (header, value, signed) in [
            (AMP_SIG, "2", Header::Sig),
            (AMP_EXPIRES, "0", Header::Expires),
        ] {
            let mut both = headers.clone();
            both.insert(header, HeaderValue::from_static(value));
            assert_eq!(
                SessionCredential::from_headers(&both),
                Err(HeaderError::NotInSession(signed))
            );
            assert_eq!(
                SessionCredential::from_headers(&both).unwrap_err().code(),
                ErrorCode::Malformed
            );
        }
    }

    #[test]
    fn a_mac_covers_lane_seq_and_amount() {
        let lane = Pubkey::new_from_array([3; 32]);
        let key = Master::new([9; 32]).key(&lane, 1, &session());
        let mac = key.mac(&lane, 10, 500);
        assert!(key.verify(&lane, 10, 500, &mac));
        assert!(!key.verify(&lane, 11, 500, &mac));
        assert!(!key.verify(&lane, 10, 501, &mac));
        assert!(!key.verify(&Pubkey::new_from_array([4; 32]), 10, 500, &mac));
        assert!(!key.verify(&lane, 10, 500, &mac[..15]));
        let mut flipped = mac;
        flipped[0] ^= 1;
        assert!(!key.verify(&lane, 10, 500, &flipped));
        let other = Master::new([9; 32]).key(&lane, 2, &session());
        assert!(!other.verify(&lane, 10, 500, &mac));
    }
}
