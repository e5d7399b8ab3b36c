//! Signing and verifying vouchers (SPEC section 3) over the program's own
//! codec, so the bytes signed here are exactly the bytes the program checks.
//!
//! Verification is strict ([`VerifyingKey::verify_strict`]): it refuses
//! small-order keys and non-canonical signatures, so one voucher has exactly
//! one valid signature per key and a signature cannot be tweaked into another
//! that a server would record as a different credential.

use std::sync::Arc;

use anchor_lang::prelude::Pubkey;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use solana_instruction::Instruction;
use solana_keypair::Keypair;

use crate::manifest::ErrorCode;

pub use amp_channel::voucher::{Voucher, VOUCHER_LEN, VOUCHER_MAGIC};

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a voucher was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoucherError {
    /// The bytes are not a 68-byte voucher starting with the magic.
    #[error("not a 68-byte AMP voucher")]
    Malformed,
    /// The lane's signer is not a usable ed25519 public key (for example a
    /// PDA), so nothing can verify against it.
    #[error("the lane's signer is not a valid ed25519 public key")]
    InvalidSignerKey,
    /// The signature does not verify for these voucher bytes and this signer;
    /// a wrong lane, generation, amount or signer looks exactly like this.
    #[error("the signature does not verify against the lane's signer")]
    BadSignature,
}

impl VoucherError {
    /// The HTTP error code a server answers with.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Malformed => ErrorCode::Malformed,
            Self::InvalidSignerKey | Self::BadSignature => ErrorCode::InvalidSig,
        }
    }
}

/// Something that holds a lane's signing key, however it is stored.
///
/// It signs voucher bytes only (a fixed 68-byte array, not arbitrary
/// messages), so handing it to a payment client never exposes a general
/// signing oracle for the key.
pub trait VoucherSigner {
    /// The public key that vouchers verify against (the lane's authorised signer).
    fn voucher_pubkey(&self) -> Pubkey;

    /// Signs the encoded voucher.
    fn sign_voucher_bytes(&self, voucher: &[u8; VOUCHER_LEN]) -> [u8; SIGNATURE_LEN];
}

impl VoucherSigner for SigningKey {
    fn voucher_pubkey(&self) -> Pubkey {
        Pubkey::new_from_array(self.verifying_key().to_bytes())
    }

    fn sign_voucher_bytes(&self, voucher: &[u8; VOUCHER_LEN]) -> [u8; SIGNATURE_LEN] {
        self.sign(voucher).to_bytes()
    }
}

impl VoucherSigner for Keypair {
    fn voucher_pubkey(&self) -> Pubkey {
        solana_signer::Signer::pubkey(self)
    }

    fn sign_voucher_bytes(&self, voucher: &[u8; VOUCHER_LEN]) -> [u8; SIGNATURE_LEN] {
        solana_signer::Signer::sign_message(self, voucher).into()
    }
}

impl<T: VoucherSigner + ?Sized> VoucherSigner for &T {
    fn voucher_pubkey(&self) -> Pubkey {
        (**self).voucher_pubkey()
    }

    fn sign_voucher_bytes(&self, voucher: &[u8; VOUCHER_LEN]) -> [u8; SIGNATURE_LEN] {
        (**self).sign_voucher_bytes(voucher)
    }
}

impl<T: VoucherSigner + ?Sized> VoucherSigner for Arc<T> {
    fn voucher_pubkey(&self) -> Pubkey {
        (**self).voucher_pubkey()
    }

    fn sign_voucher_bytes(&self, voucher: &[u8; VOUCHER_LEN]) -> [u8; SIGNATURE_LEN] {
        (**self).sign_voucher_bytes(voucher)
    }
}

/// Parses encoded voucher bytes (the program's codec) without checking any signature.
pub fn decode(bytes: &[u8]) -> Result<Voucher, VoucherError> {
    Voucher::from_bytes(bytes).map_err(|_| VoucherError::Malformed)
}

/// Checks that `signer` signed `voucher`.
///
/// Costs one public-key decompression and one strict verification; nothing
/// is cached, because the signer comes from the lane's on-chain state.
pub fn verify(
    signer: &Pubkey,
    voucher: &Voucher,
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), VoucherError> {
    verify_message(signer, &voucher.to_bytes(), signature)
}

/// Parses stored voucher bytes and checks that `signer` signed exactly them.
pub fn verify_bytes(
    signer: &Pubkey,
    bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<Voucher, VoucherError> {
    let voucher = decode(bytes)?;
    verify(signer, &voucher, signature)?;
    Ok(voucher)
}

fn verify_message(
    signer: &Pubkey,
    message: &[u8; VOUCHER_LEN],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), VoucherError> {
    verify_message_with_key(&signer_key(signer)?, message, signature)
}

/// `signer` decompressed into the key [`verify_with_key`] takes; an
/// address that is not a point on the curve can sign nothing.
pub fn signer_key(signer: &Pubkey) -> Result<VerifyingKey, VoucherError> {
    VerifyingKey::from_bytes(signer.as_array()).map_err(|_| VoucherError::InvalidSignerKey)
}

/// [`verify`] with the signer's key already decompressed: a server checking
/// many vouchers from one signer keeps the key and saves a square root each.
pub fn verify_with_key(
    key: &VerifyingKey,
    voucher: &Voucher,
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), VoucherError> {
    verify_message_with_key(key, &voucher.to_bytes(), signature)
}

/// Strict, as the Ed25519SigVerify program checks: no small-order key or
/// `R`, canonical encodings.
fn verify_message_with_key(
    key: &VerifyingKey,
    message: &[u8; VOUCHER_LEN],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), VoucherError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| VoucherError::BadSignature)
}

/// A voucher with its signature: what a server persists and later settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedVoucher {
    /// The voucher as signed: lane, generation, seq, cumulative amount, expiry.
    pub voucher: Voucher,
    /// The lane signer's ed25519 signature of the voucher's 68 bytes.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedVoucher {
    /// Signs `voucher` with `signer`.
    pub fn sign<S: VoucherSigner + ?Sized>(signer: &S, voucher: Voucher) -> Self {
        Self {
            voucher,
            signature: signer.sign_voucher_bytes(&voucher.to_bytes()),
        }
    }

    /// Checks the signature against the lane's signer.
    pub fn verify(&self, signer: &Pubkey) -> Result<(), VoucherError> {
        verify(signer, &self.voucher, &self.signature)
    }

    /// The Ed25519SigVerify instruction that must immediately precede the
    /// `settle` (or `close`) instruction using this voucher.
    pub fn ed25519_instruction(&self, signer: &Pubkey) -> Instruction {
        crate::instructions::ed25519_verify(signer, &self.signature, &self.voucher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amp_channel::voucher::ed25519;

    fn voucher() -> Voucher {
        Voucher {
            lane: Pubkey::new_from_array([5; 32]),
            generation: 77,
            seq: 3,
            cumulative: 1_000,
            expires_at: 0,
        }
    }

    #[test]
    fn signing_key_and_keypair_sign_the_same_bytes() {
        let secret = [42u8; 32];
        let dalek = SigningKey::from_bytes(&secret);
        let solana = Keypair::new_from_array(secret);
        assert_eq!(dalek.voucher_pubkey(), solana.voucher_pubkey());
        let a = SignedVoucher::sign(&dalek, voucher());
        let b = SignedVoucher::sign(&solana, voucher());
        assert_eq!(a, b);
        let boxed: Arc<dyn VoucherSigner> = Arc::new(dalek);
        assert_eq!(SignedVoucher::sign(&boxed, voucher()), a);
        a.verify(&solana.voucher_pubkey()).unwrap();
    }

    #[test]
    fn refuses_another_signer_voucher_or_key() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = SignedVoucher::sign(&key, voucher());
        let other = SigningKey::from_bytes(&[2; 32]).voucher_pubkey();
        assert_eq!(signed.verify(&other), Err(VoucherError::BadSignature));
        let mut changed = signed;
        changed.voucher.generation += 1;
        assert_eq!(
            changed.verify(&key.voucher_pubkey()),
            Err(VoucherError::BadSignature)
        );
        // A PDA is off the curve: no key, hence no signature, can match it.
        let pda = crate::pda::vault(&Pubkey::new_from_array([9; 32])).0;
        assert_eq!(signed.verify(&pda), Err(VoucherError::InvalidSignerKey));
    }

    #[test]
    fn refuses_a_non_canonical_signature() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = SignedVoucher::sign(&key, voucher());
        // s + L verifies under the lax rules, never under the strict ones.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = signed;
        let mut carry = 0u16;
        for (s, l) in malleated.signature[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            malleated.verify(&key.voucher_pubkey()),
            Err(VoucherError::BadSignature)
        );
    }

    #[test]
    fn verifies_stored_bytes() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = SignedVoucher::sign(&key, voucher());
        let bytes = signed.voucher.to_bytes();
        assert_eq!(
            verify_bytes(&key.voucher_pubkey(), &bytes, &signed.signature),
            Ok(voucher())
        );
        assert_eq!(
            verify_bytes(&key.voucher_pubkey(), &bytes[..67], &signed.signature),
            Err(VoucherError::Malformed)
        );
    }

    #[test]
    fn instruction_is_the_canonical_one() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signer = key.voucher_pubkey();
        let signed = SignedVoucher::sign(&key, voucher());
        let ix = signed.ed25519_instruction(&signer);
        assert_eq!(ix.program_id, solana_sdk_ids::ed25519_program::ID);
        assert!(ix.accounts.is_empty());
        assert_eq!(
            ed25519::voucher_from_instruction(&ix.program_id, &ix.data, &signer).unwrap(),
            voucher()
        );
    }
}
