//! The AMP HTTP headers (SPEC section 5): the request credential and the
//! response's `AMP-Owed` / `AMP-Remaining`.
//!
//! Parsing is written for hostile input on a server's hot path: every value
//! is length-checked before it is decoded, decoding works in fixed stack
//! buffers, nothing panics, and each way a header can be wrong has its own
//! [`HeaderError`] variant naming the header.
//!
//! ```
//! use amp_sdk::headers::Credential;
//! use amp_sdk::voucher::{Voucher, VoucherSigner};
//! use anchor_lang::prelude::Pubkey;
//!
//! let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
//! let voucher = Voucher {
//!     lane: Pubkey::new_from_array([2; 32]),
//!     generation: 7,
//!     seq: 1,
//!     cumulative: 100,
//!     expires_at: 0,
//! };
//! // Client: sign the voucher and attach it to the request.
//! let mut headers = http::HeaderMap::new();
//! Credential::sign(&key, &voucher).write(&mut headers);
//!
//! // Server: parse, then verify against the lane's on-chain signer and generation.
//! let credential = Credential::from_headers(&headers)?;
//! let signed = credential.verify(&key.voucher_pubkey(), 7)?;
//! assert_eq!(signed.voucher, voucher);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use anchor_lang::prelude::Pubkey;
use ed25519_dalek::VerifyingKey;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::decimal::{self, DecimalError};
use crate::manifest::ErrorCode;
use crate::voucher::{self, SignedVoucher, Voucher, VoucherError, VoucherSigner, SIGNATURE_LEN};

/// `AMP-Channel`: the lane address, base58.
pub const AMP_CHANNEL: HeaderName = HeaderName::from_static("amp-channel");
/// `AMP-Seq`: the voucher's seq, decimal.
pub const AMP_SEQ: HeaderName = HeaderName::from_static("amp-seq");
/// `AMP-Amount`: the voucher's cumulative amount, decimal.
pub const AMP_AMOUNT: HeaderName = HeaderName::from_static("amp-amount");
/// `AMP-Expires`: the voucher's expiry in unix seconds, decimal; absent means 0 (never).
pub const AMP_EXPIRES: HeaderName = HeaderName::from_static("amp-expires");
/// `AMP-Sig`: the ed25519 signature of the 68-byte voucher, base58.
pub const AMP_SIG: HeaderName = HeaderName::from_static("amp-sig");
/// `AMP-Owed`: cumulative amount charged on the lane so far, decimal.
pub const AMP_OWED: HeaderName = HeaderName::from_static("amp-owed");
/// `AMP-Remaining`: what the lane can still pay, decimal.
pub const AMP_REMAINING: HeaderName = HeaderName::from_static("amp-remaining");
/// The session a request is paid in (docs/SPEC.md, "Sessions").
pub const AMP_SESSION: HeaderName = HeaderName::from_static("amp-session");
/// The MAC of a session request.
pub const AMP_MAC: HeaderName = HeaderName::from_static("amp-mac");

/// Longest base58 text of 32 bytes.
const PUBKEY_BASE58_MAX: usize = 44;
/// Longest base58 text of 64 bytes.
const SIGNATURE_BASE58_MAX: usize = 88;
/// Unpadded base64 of a session's 32 bytes ([`crate::session::SESSION_LEN`]).
pub(crate) const SESSION_BASE64_MAX: usize = 43;
/// Unpadded base64 of a MAC's 16 bytes ([`crate::session::MAC_LEN`]).
pub(crate) const MAC_BASE64_MAX: usize = 22;

/// One of the AMP headers, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Header {
    /// `AMP-Channel`: the lane address, base58.
    Channel,
    /// `AMP-Seq`: the voucher's seq, decimal.
    Seq,
    /// `AMP-Amount`: the voucher's cumulative amount, decimal.
    Amount,
    /// `AMP-Expires`: the voucher's expiry in unix seconds; optional.
    Expires,
    /// `AMP-Sig`: the voucher's ed25519 signature, base58.
    Sig,
    /// `AMP-Owed`: what the lane owes so far (responses only).
    Owed,
    /// `AMP-Remaining`: what the lane can still pay (responses only).
    Remaining,
    /// `AMP-Session`: the session a request is paid in, base64url.
    Session,
    /// `AMP-Mac`: the MAC of a session request, base64url.
    Mac,
}

impl Header {
    /// The five request-credential headers.
    pub const CREDENTIAL: [Header; 5] = [
        Header::Channel,
        Header::Seq,
        Header::Amount,
        Header::Expires,
        Header::Sig,
    ];

    /// The header's name as [`http`] spells it (lower case).
    pub const fn name(self) -> HeaderName {
        match self {
            Header::Channel => AMP_CHANNEL,
            Header::Seq => AMP_SEQ,
            Header::Amount => AMP_AMOUNT,
            Header::Expires => AMP_EXPIRES,
            Header::Sig => AMP_SIG,
            Header::Owed => AMP_OWED,
            Header::Remaining => AMP_REMAINING,
            Header::Session => AMP_SESSION,
            Header::Mac => AMP_MAC,
        }
    }

    /// The header's name as the SPEC spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Header::Channel => "AMP-Channel",
            Header::Seq => "AMP-Seq",
            Header::Amount => "AMP-Amount",
            Header::Expires => "AMP-Expires",
            Header::Sig => "AMP-Sig",
            Header::Owed => "AMP-Owed",
            Header::Remaining => "AMP-Remaining",
            Header::Session => "AMP-Session",
            Header::Mac => "AMP-Mac",
        }
    }

    /// Longest value a well-formed header can have; longer ones are refused unread.
    pub const fn max_len(self) -> usize {
        match self {
            Header::Channel => PUBKEY_BASE58_MAX,
            Header::Sig => SIGNATURE_BASE58_MAX,
            Header::Session => SESSION_BASE64_MAX,
            Header::Mac => MAC_BASE64_MAX,
            _ => decimal::MAX_LEN,
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why AMP headers were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// None of the credential headers is present: the client has not paid
    /// yet and should be shown the manifest.
    #[error("no AMP credential")]
    NoCredential,
    /// A required header is absent (for a credential: while some of the
    /// others are present, so the client is broken rather than unpaid).
    #[error("{0} is missing")]
    Missing(Header),
    /// The header is sent twice: which value the client signed is unknowable.
    #[error("{0} is present more than once")]
    Duplicate(Header),
    /// The value is longer than [`Header::max_len`]; it was refused unread.
    #[error("{0} is longer than any valid value")]
    TooLong(Header),
    /// The value holds spaces, control characters or non-ASCII bytes.
    #[error("{0} holds bytes other than visible ASCII")]
    NotVisibleAscii(Header),
    /// `AMP-Channel` or `AMP-Sig` holds characters outside the base58 alphabet.
    #[error("{0} is not base58")]
    NotBase58(Header),
    /// `AMP-Session` or `AMP-Mac` is not unpadded base64url of the right length.
    #[error("{0} is not what it must be (unpadded base64url of its length)")]
    NotBase64(Header),
    /// The base58 value decodes, but to the wrong number of bytes.
    #[error("{header} decodes to {actual} bytes instead of {expected}")]
    WrongLength {
        /// The header at fault.
        header: Header,
        /// What it must decode to: 32 bytes for a lane, 64 for a signature.
        expected: usize,
        /// What it decoded to.
        actual: usize,
    },
    /// A number is empty or holds something besides ASCII digits (and a leading `-`).
    #[error("{0} is not a decimal number")]
    NotDecimal(Header),
    /// A number is spelled with leading zeros, or as `-0`.
    #[error("{0} is not written canonically (leading zeros or -0)")]
    NonCanonical(Header),
    /// An unsigned number (any but `AMP-Expires`) carries a `-`.
    #[error("{0} is negative")]
    Negative(Header),
    /// A number does not fit its type: u64, or i64 for `AMP-Expires`.
    #[error("{0} is out of range")]
    Overflow(Header),
    /// A signed credential's header beside `AMP-Session`: a request pays
    /// by a signature or in a session, and which one was meant is unknowable.
    #[error("{0} cannot come with AMP-Session (a request is signed or in a session, not both)")]
    NotInSession(Header),
}

impl HeaderError {
    /// The header at fault, if any.
    pub fn header(&self) -> Option<Header> {
        match *self {
            Self::NoCredential => None,
            Self::Missing(h)
            | Self::Duplicate(h)
            | Self::TooLong(h)
            | Self::NotVisibleAscii(h)
            | Self::NotBase58(h)
            | Self::NotBase64(h)
            | Self::NotDecimal(h)
            | Self::NonCanonical(h)
            | Self::Negative(h)
            | Self::Overflow(h)
            | Self::NotInSession(h)
            | Self::WrongLength { header: h, .. } => Some(h),
        }
    }

    /// The HTTP error code a server answers with: no credential at all is a
    /// payment request (402 with the manifest), anything else is malformed.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoCredential => ErrorCode::NoChannel,
            _ => ErrorCode::Malformed,
        }
    }

    fn decimal(header: Header, error: DecimalError) -> Self {
        match error {
            DecimalError::NotDecimal => Self::NotDecimal(header),
            DecimalError::NonCanonical => Self::NonCanonical(header),
            DecimalError::Negative => Self::Negative(header),
            DecimalError::Overflow => Self::Overflow(header),
        }
    }
}

/// The request credential: a voucher minus its generation (which the server
/// reads from chain), plus its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The lane paying: a Channel address, or a Delegation address for a delegate.
    pub lane: Pubkey,
    /// Strictly increasing per lane, so a credential cannot be replayed.
    pub seq: u64,
    /// Total authorised on the lane since it opened, in the mint's smallest unit.
    pub cumulative: u64,
    /// Unix seconds; 0 = never (and the header is then left out).
    pub expires_at: i64,
    /// The lane signer's ed25519 signature of the 68-byte voucher.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Credential {
    /// Signs `voucher` (lane, generation and values) with `signer`.
    ///
    /// Takes a [`Voucher`] rather than loose numbers so that seq and
    /// cumulative, both `u64`, cannot be swapped by position.
    pub fn sign<S: VoucherSigner + ?Sized>(signer: &S, voucher: &Voucher) -> Self {
        SignedVoucher::sign(signer, *voucher).into()
    }

    /// Rebuilds the signed voucher; `generation` comes from the lane's
    /// on-chain account, so a wrong one shows as a bad signature.
    pub fn to_voucher(&self, generation: u64) -> Voucher {
        Voucher {
            lane: self.lane,
            generation,
            seq: self.seq,
            cumulative: self.cumulative,
            expires_at: self.expires_at,
        }
    }

    /// Checks the credential against the lane's on-chain signer and
    /// generation and returns the voucher, ready to persist and settle.
    pub fn verify(&self, signer: &Pubkey, generation: u64) -> Result<SignedVoucher, VoucherError> {
        self.verify_with_key(&voucher::signer_key(signer)?, generation)
    }

    /// [`verify`](Self::verify) with the signer's key already decompressed
    /// (a server keeps it with the cached lane).
    pub fn verify_with_key(
        &self,
        key: &VerifyingKey,
        generation: u64,
    ) -> Result<SignedVoucher, VoucherError> {
        let voucher = self.to_voucher(generation);
        voucher::verify_with_key(key, &voucher, &self.signature)?;
        Ok(SignedVoucher {
            voucher,
            signature: self.signature,
        })
    }

    /// Sets the credential headers, replacing any present.
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert(AMP_CHANNEL, base58_value(self.lane.as_array()));
        headers.insert(AMP_SEQ, HeaderValue::from(self.seq));
        headers.insert(AMP_AMOUNT, HeaderValue::from(self.cumulative));
        if self.expires_at == 0 {
            headers.remove(AMP_EXPIRES);
        } else {
            headers.insert(AMP_EXPIRES, HeaderValue::from(self.expires_at));
        }
        headers.insert(AMP_SIG, base58_value(&self.signature));
    }

    /// Reads the credential headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, HeaderError> {
        Self::parse(headers).map_err(|e| match e {
            HeaderError::Missing(_)
                if Header::CREDENTIAL
                    .iter()
                    .all(|h| !headers.contains_key(h.name())) =>
            {
                HeaderError::NoCredential
            }
            e => e,
        })
    }

    fn parse(headers: &HeaderMap) -> Result<Self, HeaderError> {
        let lane = base58(Header::Channel, required(headers, Header::Channel)?)?;
        let seq = unsigned(Header::Seq, required(headers, Header::Seq)?)?;
        let cumulative = unsigned(Header::Amount, required(headers, Header::Amount)?)?;
        let expires_at = match single(headers, Header::Expires)? {
            None => 0,
            Some(text) => {
                decimal::parse_i64(text).map_err(|e| HeaderError::decimal(Header::Expires, e))?
            }
        };
        let signature = base58(Header::Sig, required(headers, Header::Sig)?)?;
        Ok(Self {
            lane: Pubkey::new_from_array(lane),
            seq,
            cumulative,
            expires_at,
            signature,
        })
    }
}

impl From<SignedVoucher> for Credential {
    fn from(signed: SignedVoucher) -> Self {
        let v = signed.voucher;
        Self {
            lane: v.lane,
            seq: v.seq,
            cumulative: v.cumulative,
            expires_at: v.expires_at,
            signature: signed.signature,
        }
    }
}

/// What a successful paid response reports about the lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `AMP-Owed`: cumulative amount charged on the lane, this request
    /// included as far as known; the next voucher must cover it.
    pub owed: u64,
    /// `AMP-Remaining`: what the lane can still pay.
    pub remaining: u64,
}

impl Receipt {
    /// Sets `AMP-Owed` and `AMP-Remaining`, replacing any present.
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert(AMP_OWED, HeaderValue::from(self.owed));
        headers.insert(AMP_REMAINING, HeaderValue::from(self.remaining));
    }

    /// Reads `AMP-Owed` and `AMP-Remaining`; both are required.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, HeaderError> {
        Ok(Self {
            owed: unsigned(Header::Owed, required(headers, Header::Owed)?)?,
            remaining: unsigned(Header::Remaining, required(headers, Header::Remaining)?)?,
        })
    }
}

/// The value of a header that may appear at most once, checked for length
/// and character set before anyone decodes it.
pub(crate) fn single(headers: &HeaderMap, header: Header) -> Result<Option<&[u8]>, HeaderError> {
    let mut values = headers.get_all(header.name()).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderError::Duplicate(header));
    }
    let bytes = value.as_bytes();
    if bytes.len() > header.max_len() {
        return Err(HeaderError::TooLong(header));
    }
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(HeaderError::NotVisibleAscii(header));
    }
    Ok(Some(bytes))
}

pub(crate) fn required(headers: &HeaderMap, header: Header) -> Result<&[u8], HeaderError> {
    single(headers, header)?.ok_or(HeaderError::Missing(header))
}

pub(crate) fn unsigned(header: Header, text: &[u8]) -> Result<u64, HeaderError> {
    decimal::parse_u64(text).map_err(|e| HeaderError::decimal(header, e))
}

/// Decodes base58 of exactly `N` bytes. `text` is at most
/// [`SIGNATURE_BASE58_MAX`] long (checked by [`single`]) and each character
/// decodes to at most one byte, so the stack buffer always suffices.
pub(crate) fn base58<const N: usize>(header: Header, text: &[u8]) -> Result<[u8; N], HeaderError> {
    let mut buffer = [0u8; SIGNATURE_BASE58_MAX];
    let actual = bs58::decode(text)
        .onto(&mut buffer[..])
        .map_err(|e| match e {
            bs58::decode::Error::BufferTooSmall => HeaderError::TooLong(header),
            _ => HeaderError::NotBase58(header),
        })?;
    <[u8; N]>::try_from(&buffer[..actual]).map_err(|_| HeaderError::WrongLength {
        header,
        expected: N,
        actual,
    })
}

pub(crate) fn base58_value(bytes: &[u8]) -> HeaderValue {
    // 64 bytes never take more than 88 base58 characters; the margin is free.
    let mut text = [0u8; 2 * SIGNATURE_BASE58_MAX];
    let len = bs58::encode(bytes)
        .onto(&mut text[..])
        .expect("the buffer holds the base58 of 64 bytes");
    HeaderValue::from_bytes(&text[..len]).expect("base58 is visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn voucher(expires_at: i64) -> Voucher {
        Voucher {
            lane: Pubkey::new_from_array([3; 32]),
            generation: 1234,
            seq: 9,
            cumulative: 5_000,
            expires_at,
        }
    }

    fn headers(expires_at: i64) -> HeaderMap {
        let mut map = HeaderMap::new();
        Credential::sign(&key(), &voucher(expires_at)).write(&mut map);
        map
    }

    fn with(header: Header, value: &[u8]) -> Result<Credential, HeaderError> {
        let mut map = headers(100);
        map.insert(header.name(), HeaderValue::from_bytes(value).unwrap());
        Credential::from_headers(&map)
    }

    #[test]
    fn round_trips_and_verifies() {
        for expires_at in [0, 100, -1, i64::MIN, i64::MAX] {
            let map = headers(expires_at);
            assert_eq!(map.contains_key(AMP_EXPIRES), expires_at != 0);
            let credential = Credential::from_headers(&map).unwrap();
            assert_eq!(credential, Credential::sign(&key(), &voucher(expires_at)));
            let signed = credential.verify(&key().voucher_pubkey(), 1234).unwrap();
            assert_eq!(signed.voucher, voucher(expires_at));
        }
    }

    #[test]
    fn names_are_the_spec_names() {
        for h in Header::CREDENTIAL
            .into_iter()
            .chain([Header::Owed, Header::Remaining])
        {
            assert_eq!(h.name().as_str(), h.as_str().to_ascii_lowercase());
            assert_eq!(HeaderName::try_from(h.as_str()).unwrap(), h.name());
        }
    }

    #[test]
    fn a_wrong_generation_is_a_bad_signature() {
        let credential = Credential::from_headers(&headers(0)).unwrap();
        assert_eq!(
            credential.verify(&key().voucher_pubkey(), 1235),
            Err(VoucherError::BadSignature)
        );
    }

    #[test]
    fn no_credential_versus_missing() {
        assert_eq!(
            Credential::from_headers(&HeaderMap::new()),
            Err(HeaderError::NoCredential)
        );
        assert_eq!(HeaderError::NoCredential.code(), ErrorCode::NoChannel);
        for h in [Header::Channel, Header::Seq, Header::Amount, Header::Sig] {
            let mut map = headers(100);
            map.remove(h.name());
            let err = Credential::from_headers(&map).unwrap_err();
            assert_eq!(err, HeaderError::Missing(h));
            assert_eq!(err.code(), ErrorCode::Malformed);
            assert_eq!(err.header(), Some(h));
        }
        // Expiry alone is still a (broken) credential.
        let mut only_expiry = HeaderMap::new();
        only_expiry.insert(AMP_EXPIRES, HeaderValue::from(5));
        assert_eq!(
            Credential::from_headers(&only_expiry),
            Err(HeaderError::Missing(Header::Channel))
        );
    }

    #[test]
    fn duplicates_are_refused() {
        for h in Header::CREDENTIAL {
            let mut map = headers(100);
            let value = map.get(h.name()).unwrap().clone();
            map.append(h.name(), value);
            assert_eq!(
                Credential::from_headers(&map),
                Err(HeaderError::Duplicate(h))
            );
        }
    }

    #[test]
    fn each_failure_has_its_variant() {
        use HeaderError::*;
        let long_lane = "1".repeat(45);
        let cases: &[(Header, &[u8], HeaderError)] = &[
            (
                Header::Channel,
                long_lane.as_bytes(),
                TooLong(Header::Channel),
            ),
            (Header::Sig, &[b'1'; 89], TooLong(Header::Sig)),
            (Header::Seq, &[b'1'; 21], TooLong(Header::Seq)),
            (Header::Seq, b"1 2", NotVisibleAscii(Header::Seq)),
            (Header::Amount, b"\xc3\xa9", NotVisibleAscii(Header::Amount)),
            (Header::Channel, b"0OIl", NotBase58(Header::Channel)),
            (
                Header::Channel,
                b"11111111111111111111111111111111111",
                WrongLength {
                    header: Header::Channel,
                    expected: 32,
                    actual: 35,
                },
            ),
            (
                Header::Sig,
                b"",
                WrongLength {
                    header: Header::Sig,
                    expected: 64,
                    actual: 0,
                },
            ),
            (Header::Seq, b"12a", NotDecimal(Header::Seq)),
            (Header::Amount, b"+1", NotDecimal(Header::Amount)),
            (Header::Amount, b"0100", NonCanonical(Header::Amount)),
            (Header::Expires, b"-0", NonCanonical(Header::Expires)),
            (Header::Seq, b"-1", Negative(Header::Seq)),
            (
                Header::Amount,
                b"18446744073709551616",
                Overflow(Header::Amount),
            ),
            (
                Header::Expires,
                b"9223372036854775808",
                Overflow(Header::Expires),
            ),
        ];
        for (header, value, expected) in cases {
            assert_eq!(with(*header, value), Err(*expected), "{header}: {value:?}");
        }
        // A 32-byte lane in a signature header decodes, but to the wrong length.
        let lane = bs58::encode([9u8; 32]).into_string();
        assert_eq!(
            with(Header::Sig, lane.as_bytes()),
            Err(WrongLength {
                header: Header::Sig,
                expected: 64,
                actual: 32
            })
        );
    }

    #[test]
    fn receipt_round_trips() {
        let mut map = HeaderMap::new();
        let receipt = Receipt {
            owed: 42,
            remaining: u64::MAX,
        };
        receipt.write(&mut map);
        assert_eq!(map.get(AMP_OWED).unwrap(), "42");
        assert_eq!(Receipt::from_headers(&map), Ok(receipt));
        map.remove(AMP_REMAINING);
        assert_eq!(
            Receipt::from_headers(&map),
            Err(HeaderError::Missing(Header::Remaining))
        );
    }
}
