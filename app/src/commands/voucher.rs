//! A voucher on the command line, as the values of its credential headers
//! (`--seq`, `--amount`, `--expires`, `--sig`: what a server logged, or what
//! an agent handed over). The values are read by the SDK's own credential
//! parser, so the command line accepts exactly what a server accepts, and
//! checked against the lane through the SDK's [`Credential`].

use amp_sdk::headers::{Credential, Header};
use amp_sdk::voucher::{SignedVoucher, SIGNATURE_LEN};
use anchor_lang::prelude::Pubkey;
use clap::Args;
use http::{HeaderMap, HeaderValue};

use super::lane::Lane;
use crate::error::CliError;

/// A voucher as its credential headers carry it.
#[derive(Debug, Args)]
pub struct VoucherArgs {
    /// AMP-Seq.
    #[arg(long, value_parser = |s: &str| header(Header::Seq, s).map(|c| c.seq))]
    pub seq: u64,
    /// AMP-Amount: the cumulative amount, in base units.
    #[arg(long, value_parser = |s: &str| header(Header::Amount, s).map(|c| c.cumulative))]
    pub amount: u64,
    /// AMP-Expires, unix seconds (absent or 0: never).
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = |s: &str| header(Header::Expires, s).map(|c| c.expires_at)
    )]
    pub expires: i64,
    /// AMP-Sig: the ed25519 signature, base58.
    #[arg(long, value_parser = |s: &str| header(Header::Sig, s).map(|c| c.signature))]
    pub sig: [u8; SIGNATURE_LEN],
}

impl From<&VoucherArgs> for VoucherValues {
    fn from(args: &VoucherArgs) -> Self {
        Self {
            seq: args.seq,
            amount: args.amount,
            expires_at: args.expires,
            signature: args.sig,
        }
    }
}

/// An optional final voucher for `close`.
#[derive(Debug, Args)]
pub struct FinalVoucherArgs {
    /// AMP-Seq of a final voucher to settle first.
    #[arg(
        long,
        requires_all = ["amount", "sig"],
        value_parser = |s: &str| header(Header::Seq, s).map(|c| c.seq)
    )]
    pub seq: Option<u64>,
    /// AMP-Amount of the final voucher, in base units.
    #[arg(
        long,
        requires_all = ["seq", "sig"],
        value_parser = |s: &str| header(Header::Amount, s).map(|c| c.cumulative)
    )]
    pub amount: Option<u64>,
    /// AMP-Expires of the final voucher (absent or 0: never).
    #[arg(
        long,
        requires = "seq",
        allow_negative_numbers = true,
        value_parser = |s: &str| header(Header::Expires, s).map(|c| c.expires_at)
    )]
    pub expires: Option<i64>,
    /// AMP-Sig of the final voucher, base58.
    #[arg(
        long,
        requires_all = ["seq", "amount"],
        value_parser = |s: &str| header(Header::Sig, s).map(|c| c.signature)
    )]
    pub sig: Option<[u8; SIGNATURE_LEN]>,
}

impl FinalVoucherArgs {
    /// The voucher, when all its values were given (clap requires all or none).
    pub fn values(&self) -> Option<VoucherValues> {
        Some(VoucherValues {
            seq: self.seq?,
            amount: self.amount?,
            expires_at: self.expires.unwrap_or(0),
            signature: self.sig?,
        })
    }
}

/// Reads one credential header's value with the SDK's parser: `text` stands
/// in for `header` in an otherwise valid credential, so its error names the
/// header exactly as a server's would.
fn header(header: Header, text: &str) -> Result<Credential, String> {
    let mut headers = HeaderMap::new();
    Credential {
        lane: Pubkey::default(),
        seq: 1,
        cumulative: 1,
        expires_at: 1,
        signature: [1; SIGNATURE_LEN],
    }
    .write(&mut headers);
    let value = HeaderValue::from_str(text)
        .map_err(|_| format!("{header} holds bytes other than visible ASCII"))?;
    headers.insert(header.name(), value);
    Credential::from_headers(&headers).map_err(|e| e.to_string())
}

/// A voucher as its credential carries it (`AMP-Seq`, `AMP-Amount`,
/// `AMP-Expires`, `AMP-Sig`); the lane and its generation come from the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherValues {
    pub seq: u64,
    /// Cumulative amount, in base units.
    pub amount: u64,
    /// Unix seconds; 0 = never.
    pub expires_at: i64,
    pub signature: [u8; SIGNATURE_LEN],
}

impl VoucherValues {
    /// The values of a credential (for example one an agent signed).
    pub fn from_credential(credential: &Credential) -> Self {
        Self {
            seq: credential.seq,
            amount: credential.cumulative,
            expires_at: credential.expires_at,
            signature: credential.signature,
        }
    }

    /// The credential these values make on `lane`.
    pub fn credential(&self, lane: Pubkey) -> Credential {
        Credential {
            lane,
            seq: self.seq,
            cumulative: self.amount,
            expires_at: self.expires_at,
            signature: self.signature,
        }
    }

    /// Checks the voucher against the lane's on-chain signer and generation,
    /// as the program's Ed25519SigVerify check will.
    pub(crate) fn verify(&self, lane: &Lane) -> Result<SignedVoucher, CliError> {
        let accounts = &lane.accounts;
        accounts
            .verify(&self.credential(accounts.address))
            .map_err(|e| {
                CliError::state(format!(
                    "{e}: the values must be exactly those signed for lane {} \
                     (generation {}, signer {})",
                    accounts.address,
                    accounts.generation(),
                    accounts.signer()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_a_server_parses_their_headers() {
        assert_eq!(header(Header::Seq, "42").unwrap().seq, 42);
        assert_eq!(header(Header::Expires, "-5").unwrap().expires_at, -5);
        let sig = bs58::encode([7u8; 64]).into_string();
        assert_eq!(header(Header::Sig, &sig).unwrap().signature, [7; 64]);
        assert_eq!(
            header(Header::Sig, "0OIl").unwrap_err(),
            "AMP-Sig is not base58"
        );
        assert_eq!(
            header(Header::Amount, "-1").unwrap_err(),
            "AMP-Amount is negative"
        );
    }
}
