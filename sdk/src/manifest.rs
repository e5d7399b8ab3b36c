//! The JSON documents of AMP's HTTP side (SPEC section 5), each defined once
//! for servers, clients and the CLI: the manifest a service publishes at
//! [`MANIFEST_PATH`], the error body (with its code and HTTP status) of every
//! refused request, and the answers of the close and credit endpoints. Every
//! well-known path is here too.
//!
//! Amounts are decimal strings of the mint's smallest unit
//! ([`crate::decimal::u64_string`]) because a u64 does not survive a
//! JavaScript number; addresses are base58 strings.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use anchor_lang::prelude::Pubkey;
use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a service publishes its manifest.
pub const MANIFEST_PATH: &str = "/.well-known/amp.json";
/// Where a client asks for a cooperative close (with a credential).
pub const CLOSE_PATH: &str = "/.well-known/amp/close";
/// Where a client pays for a metered response while it streams: a fresh
/// credential that extends the server's credit (docs/streaming.md).
pub const CREDIT_PATH: &str = "/.well-known/amp/credit";
/// Where a service reports its settler's state (for operators).
pub const STATUS_PATH: &str = "/.well-known/amp/status";
/// The protocol version this crate speaks.
pub const AMP_VERSION: &str = "1";

/// What a service accepts and charges: everything a client needs to open a
/// lane that the service will take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`AMP_VERSION`].
    pub amp_version: String,
    /// The cluster, e.g. `solana:devnet`.
    pub network: String,
    /// The AMP program the service settles with.
    #[serde(with = "crate::base58")]
    pub program_id: Pubkey,
    /// The channel recipient a lane must pay.
    #[serde(with = "crate::base58")]
    pub recipient: Pubkey,
    /// Accepted mints.
    pub mints: Vec<MintInfo>,
    /// Smallest deposit the service accepts.
    #[serde(with = "crate::decimal::u64_string")]
    pub min_deposit: u64,
    /// Shortest grace period (seconds) the service accepts: it needs that
    /// long to settle after a close request.
    pub min_grace_period: u32,
    /// Most the service serves beyond the highest amount the client signed.
    #[serde(with = "crate::decimal::u64_string")]
    pub credit: u64,
    /// What requests cost, by route.
    pub pricing: Pricing,
    /// Present when the service fronts the rent and fee of channels opened
    /// through it ([`crate::sponsor::OPEN_PATH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<crate::sponsor::Sponsorship>,
    /// Present when the service offers sessions ([`crate::session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionTerms>,
}

/// The manifest's `session`: the service offers sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTerms {
    /// How long a session lasts, in seconds.
    pub ttl: u32,
}

/// An accepted mint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintInfo {
    /// The mint's address; a lane's channel must hold this token.
    #[serde(with = "crate::base58")]
    pub mint: Pubkey,
    /// The mint's decimals, for showing whole tokens; amounts stay in the smallest unit.
    pub decimals: u8,
    /// For display only; a mint may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
}

/// Prices: a default, and per-route overrides keyed by request path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    /// The price of every route without an override.
    pub default: Price,
    /// Sorted, so a manifest serialises the same way every time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, Price>,
    /// Per-token routes whose input and output tokens have prices of their
    /// own, by model (LLM APIs), keyed as `routes` is; such a route's
    /// `rate` is then unused (its mode stays `per_token`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, TokenPrices>,
    /// JSON-RPC routes (an MCP server's endpoint), keyed as `routes` is: a
    /// request to one is priced by the `method` of the message it posts
    /// (`tools/call`), and a method not listed is free, so is a request
    /// without a JSON-RPC message. A batch pays its members' prices added
    /// up ([`crate::pricing::message_price`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub methods: BTreeMap<String, BTreeMap<String, Price>>,
}

/// A rate in the mint's smallest unit per [`PricingMode`] unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// What the rate is charged per.
    pub mode: PricingMode,
    /// Smallest units of the mint per call, second, byte or token.
    #[serde(with = "crate::decimal::u64_string")]
    pub rate: u64,
}

/// What a rate is charged per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PricingMode {
    /// A fixed price per request, charged when the credential is accepted.
    PerCall,
    /// Per second the handler runs, charged by the millisecond.
    PerSecond,
    /// Per byte of the response body.
    PerByte,
    /// Units the handler reports.
    PerToken,
}

impl fmt::Display for PricingMode {
    /// For people: "per call", "per second", "per byte", "per token".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PricingMode::PerCall => "per call",
            PricingMode::PerSecond => "per second",
            PricingMode::PerByte => "per byte",
            PricingMode::PerToken => "per token",
        })
    }
}

/// What input (prompt) and output (completion) tokens cost on an LLM route,
/// by default and per model (the request body's `model`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPrices {
    /// Per input token.
    #[serde(with = "crate::decimal::u64_string")]
    pub input: u64,
    /// Per output token.
    #[serde(with = "crate::decimal::u64_string")]
    pub output: u64,
    /// Prices of particular models, over the defaults above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelPrices>,
}

/// One model's prices per input and per output token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrices {
    /// Per input token.
    #[serde(with = "crate::decimal::u64_string")]
    pub input: u64,
    /// Per output token.
    #[serde(with = "crate::decimal::u64_string")]
    pub output: u64,
}

impl TokenPrices {
    /// The prices `model` pays: its own, else the defaults.
    pub fn for_model(&self, model: Option<&str>) -> ModelPrices {
        model
            .and_then(|model| self.models.get(model))
            .copied()
            .unwrap_or(ModelPrices {
                input: self.input,
                output: self.output,
            })
    }
}

impl ModelPrices {
    /// What `input` and `output` tokens cost, saturating.
    pub fn cost(&self, input: u64, output: u64) -> u64 {
        input
            .saturating_mul(self.input)
            .saturating_add(output.saturating_mul(self.output))
    }
}

/// The `error` field of an error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A header is missing or unparsable.
    Malformed,
    /// No credential, or the lane does not exist.
    NoChannel,
    /// The amount is below what is owed plus this request's price, or above
    /// what the lane can pay.
    Underfunded,
    /// The lane pays another recipient, an unaccepted mint, or has too short
    /// a grace period.
    WrongChannel,
    /// The signature does not verify against the lane's signer.
    InvalidSig,
    /// The voucher expired.
    Expired,
    /// The seq is not above the last accepted one.
    InvalidSeq,
    /// The lane is closing or closed.
    Closed,
    /// Server policy.
    RateExceeded,
    /// The server cannot do its part right now (its chain or store is
    /// down); the same request may succeed later.
    Unavailable,
    /// Sponsored opening: not a transaction the service co-signs (another
    /// fee payer, an instruction beyond compute budget and the one AMP
    /// instruction, the service's key anywhere else, a missing funder
    /// signature, or one the chain refuses in simulation).
    SponsorTransaction,
    /// Sponsored opening: terms outside what the manifest advertises
    /// (recipient, mint, deposit, grace period, compute-unit price or limit).
    SponsorTerms,
    /// Sponsored opening: the blockhash is not recent; build it again.
    SponsorStale,
    /// Sponsored opening: this transaction was posted before.
    SponsorReplay,
    /// Sponsored opening: this funder's opens per minute are used up.
    SponsorFunderRate,
    /// Sponsored opening: the rent fronted for this funder's open channels
    /// is at its cap; close one first.
    SponsorFunderExposure,
    /// Sponsored opening: the service's opens per minute are used up.
    SponsorRate,
    /// Sponsored opening: the rent the service has fronted and not yet got
    /// back is at its cap.
    SponsorExposure,
    /// A session request needs a signed voucher: its amount is past the
    /// highest signed one plus the credit, or the session expired or was
    /// issued by another replica. Send the request again with a full
    /// credential covering `required`.
    VoucherDue,
}

impl ErrorCode {
    /// Every code, in the SPEC's order.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::Malformed,
        ErrorCode::NoChannel,
        ErrorCode::Underfunded,
        ErrorCode::WrongChannel,
        ErrorCode::InvalidSig,
        ErrorCode::Expired,
        ErrorCode::InvalidSeq,
        ErrorCode::Closed,
        ErrorCode::RateExceeded,
        ErrorCode::Unavailable,
        ErrorCode::SponsorTransaction,
        ErrorCode::SponsorTerms,
        ErrorCode::SponsorStale,
        ErrorCode::SponsorReplay,
        ErrorCode::SponsorFunderRate,
        ErrorCode::SponsorFunderExposure,
        ErrorCode::SponsorRate,
        ErrorCode::SponsorExposure,
        ErrorCode::VoucherDue,
    ];

    /// The code as it appears in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "AMP_MALFORMED",
            ErrorCode::NoChannel => "AMP_NO_CHANNEL",
            ErrorCode::Underfunded => "AMP_UNDERFUNDED",
            ErrorCode::WrongChannel => "AMP_WRONG_CHANNEL",
            ErrorCode::InvalidSig => "AMP_INVALID_SIG",
            ErrorCode::Expired => "AMP_EXPIRED",
            ErrorCode::InvalidSeq => "AMP_INVALID_SEQ",
            ErrorCode::Closed => "AMP_CLOSED",
            ErrorCode::RateExceeded => "AMP_RATE_EXCEEDED",
            ErrorCode::Unavailable => "AMP_UNAVAILABLE",
            ErrorCode::SponsorTransaction => "AMP_SPONSOR_TRANSACTION",
            ErrorCode::SponsorTerms => "AMP_SPONSOR_TERMS",
            ErrorCode::SponsorStale => "AMP_SPONSOR_STALE",
            ErrorCode::SponsorReplay => "AMP_SPONSOR_REPLAY",
            ErrorCode::SponsorFunderRate => "AMP_SPONSOR_FUNDER_RATE",
            ErrorCode::SponsorFunderExposure => "AMP_SPONSOR_FUNDER_EXPOSURE",
            ErrorCode::SponsorRate => "AMP_SPONSOR_RATE",
            ErrorCode::SponsorExposure => "AMP_SPONSOR_EXPOSURE",
            ErrorCode::VoucherDue => "AMP_VOUCHER_DUE",
        }
    }

    /// The HTTP status that answers this code (the one place it is decided).
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::Malformed => StatusCode::BAD_REQUEST,
            ErrorCode::NoChannel
            | ErrorCode::Underfunded
            | ErrorCode::WrongChannel
            | ErrorCode::VoucherDue => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::InvalidSig | ErrorCode::Expired => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidSeq => StatusCode::CONFLICT,
            ErrorCode::Closed => StatusCode::GONE,
            ErrorCode::RateExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SponsorTransaction | ErrorCode::SponsorTerms | ErrorCode::SponsorStale => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::SponsorReplay => StatusCode::CONFLICT,
            ErrorCode::SponsorFunderRate
            | ErrorCode::SponsorFunderExposure
            | ErrorCode::SponsorRate
            | ErrorCode::SponsorExposure => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the AMP error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown AMP error code")]
pub struct UnknownErrorCode;

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or(UnknownErrorCode)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<ErrorCode>::new("an AMP error code"))
    }
}

/// The JSON body of every AMP error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for clients to act on; it decides the HTTP status.
    pub error: ErrorCode,
    /// For people; clients act on `error`.
    pub message: String,
    /// The amount the voucher must reach.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::decimal::u64_string::option"
    )]
    pub required: Option<u64>,
    /// What the lane owes so far.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::decimal::u64_string::option"
    )]
    pub owed: Option<u64>,
    /// Sent with 402 so that the client can open a lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

impl ErrorBody {
    /// A body with a code and a message, and no context fields.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            required: None,
            owed: None,
            manifest: None,
        }
    }

    /// Adds `required`: the amount the voucher must reach.
    pub fn with_required(mut self, required: u64) -> Self {
        self.required = Some(required);
        self
    }

    /// Adds `owed`: what the lane owes so far.
    pub fn with_owed(mut self, owed: u64) -> Self {
        self.owed = Some(owed);
        self
    }

    /// Embeds the manifest, as a 402 does so that the client can open a lane.
    pub fn with_manifest(mut self, manifest: Manifest) -> Self {
        self.manifest = Some(manifest);
        self
    }

    /// The response status, from [`ErrorCode::status`].
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }
}

/// The AMP refusal in a response, if it is one: a JSON error body whose
/// code answers with the response's status. Anything else (the service's own
/// errors, which may be JSON too) is not AMP's to interpret.
pub fn refusal(status: StatusCode, body: &[u8]) -> Option<ErrorBody> {
    let body: ErrorBody = serde_json::from_slice(body).ok()?;
    (body.status() == status).then_some(body)
}

/// What `POST /.well-known/amp/close` answers when the lane was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseAnswer {
    /// The lane that was closed.
    #[serde(with = "crate::base58")]
    pub lane: Pubkey,
    /// Always true in a success answer.
    pub closed: bool,
    /// What the lane paid the service in all.
    #[serde(with = "crate::decimal::u64_string")]
    pub settled: u64,
    /// The closing transaction; empty when the lane was gone already.
    #[serde(default)]
    pub signature: String,
}

/// What `POST /.well-known/amp/credit` answers when it took a credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditAnswer {
    /// The lane the credential pays on.
    #[serde(with = "crate::base58")]
    pub lane: Pubkey,
    /// The credential's seq.
    pub seq: u64,
    /// The cumulative amount it signs.
    #[serde(with = "crate::decimal::u64_string")]
    pub amount: u64,
    /// What the lane owes so far.
    #[serde(with = "crate::decimal::u64_string")]
    pub owed: u64,
}

/// Deserialises a borrowed string through [`FromStr`] without allocating.
struct FromStrVisitor<T> {
    expecting: &'static str,
    target: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    const fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            target: std::marker::PhantomData,
        }
    }
}

impl<T: FromStr> serde::de::Visitor<'_> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse()
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC section 5's example, verbatim.
    const SPEC_EXAMPLE: &str = r#"{
  "amp_version": "1",
  "network": "solana:devnet",
  "program_id": "<base58>",
  "recipient": "<base58>",
  "mints": [{ "mint": "<base58>", "decimals": 6, "symbol": "USDC" }],
  "min_deposit": "1000000",
  "min_grace_period": 3600,
  "credit": "1000",
  "pricing": {
    "default": { "mode": "per_call", "rate": "100" },
    "routes": { "/v1/chat": { "mode": "per_token", "rate": "2" } }
  }
}"#;

    /// The example with its `<base58>` placeholders filled in: a placeholder
    /// is not an address and is rightly refused.
    fn spec_example() -> String {
        SPEC_EXAMPLE.replace("<base58>", &amp_channel::ID.to_string())
    }

    #[test]
    fn spec_example_round_trips() {
        let text = spec_example();
        let manifest: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest.program_id, amp_channel::ID);
        assert_eq!(manifest.min_deposit, 1_000_000);
        assert_eq!(manifest.min_grace_period, 3600);
        assert_eq!(manifest.credit, 1000);
        assert_eq!(
            manifest.pricing.default,
            Price {
                mode: PricingMode::PerCall,
                rate: 100
            }
        );
        assert_eq!(
            manifest.pricing.routes["/v1/chat"],
            Price {
                mode: PricingMode::PerToken,
                rate: 2
            }
        );
        assert_eq!(manifest.mints[0].symbol.as_deref(), Some("USDC"));
        let reserialised = serde_json::to_value(&manifest).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reserialised, original);
    }

    #[test]
    fn placeholders_and_numbers_for_amounts_are_refused() {
        let err = serde_json::from_str::<Manifest>(SPEC_EXAMPLE).unwrap_err();
        assert!(err.to_string().contains("base58"), "{err}");
        let numeric = spec_example().replace(r#""1000000""#, "1000000");
        assert!(serde_json::from_str::<Manifest>(&numeric).is_err());
        let mode = spec_example().replace("per_call", "PerCall");
        assert!(serde_json::from_str::<Manifest>(&mode).is_err());
    }

    #[test]
    fn codes_statuses_and_strings() {
        let expected = [
            ("AMP_MALFORMED", 400),
            ("AMP_NO_CHANNEL", 402),
            ("AMP_UNDERFUNDED", 402),
            ("AMP_WRONG_CHANNEL", 402),
            ("AMP_INVALID_SIG", 401),
            ("AMP_EXPIRED", 401),
            ("AMP_INVALID_SEQ", 409),
            ("AMP_CLOSED", 410),
            ("AMP_RATE_EXCEEDED", 429),
        ];
        for (code, (text, status)) in ErrorCode::ALL.into_iter().zip(expected) {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.status().as_u16(), status);
            assert_eq!(text.parse::<ErrorCode>(), Ok(code));
            assert_eq!(serde_json::to_value(code).unwrap(), text);
        }
        assert_eq!("AMP_NOPE".parse::<ErrorCode>(), Err(UnknownErrorCode));
        assert!(serde_json::from_str::<ErrorCode>(r#""amp_malformed""#).is_err());
    }

    #[test]
    fn error_body_skips_absent_context() {
        let body = ErrorBody::new(ErrorCode::InvalidSeq, "seq 3 is not above 5");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"AMP_INVALID_SEQ","message":"seq 3 is not above 5"}"#
        );
        assert_eq!(body.status(), StatusCode::CONFLICT);

        let manifest: Manifest = serde_json::from_str(&spec_example()).unwrap();
        let body = ErrorBody::new(ErrorCode::Underfunded, "amount too low")
            .with_required(1_200)
            .with_owed(1_100)
            .with_manifest(manifest);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["required"], "1200");
        assert_eq!(json["owed"], "1100");
        assert_eq!(json["manifest"]["credit"], "1000");
        assert_eq!(serde_json::from_value::<ErrorBody>(json).unwrap(), body);
    }
}
