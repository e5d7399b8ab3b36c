//! The AMP voucher: the only message a lane's signer ever signs (SPEC section 3).
//!
//! This is the single definition of the 68 voucher bytes; the SDK, servers and
//! clients reuse it rather than restating the layout.

pub mod ed25519;

use anchor_lang::prelude::*;

use crate::error::AmpError;

/// `AMP1`: no legacy Solana message starts with 0x41 signers and versioned ones
/// start with 0x80, so a voucher signature never authorises a transaction.
pub const VOUCHER_MAGIC: [u8; 4] = *b"AMP1";

/// Length of an encoded voucher.
pub const VOUCHER_LEN: usize = 68;

/// A signed promise: "the lane may pay up to `cumulative` in total".
#[derive(Clone, Copy, Debug, PartialEq, Eq, AnchorSerialize, AnchorDeserialize)]
pub struct Voucher {
    /// The Channel address, or a Delegation address for a delegate's voucher.
    pub lane: Pubkey,
    /// Generation (creation slot) of the lane's account.
    pub generation: u64,
    /// Strictly increasing per lane; checked off-chain only.
    pub seq: u64,
    /// Cumulative amount authorised on this lane since it was opened.
    pub cumulative: u64,
    /// Unix seconds after which the voucher is dead; 0 = never.
    pub expires_at: i64,
}

impl Voucher {
    /// The exact bytes the signer signs.
    pub fn to_bytes(&self) -> [u8; VOUCHER_LEN] {
        let mut out = [0u8; VOUCHER_LEN];
        out[0..4].copy_from_slice(&VOUCHER_MAGIC);
        out[4..36].copy_from_slice(self.lane.as_ref());
        out[36..44].copy_from_slice(&self.generation.to_le_bytes());
        out[44..52].copy_from_slice(&self.seq.to_le_bytes());
        out[52..60].copy_from_slice(&self.cumulative.to_le_bytes());
        out[60..68].copy_from_slice(&self.expires_at.to_le_bytes());
        out
    }

    /// Parses exactly 68 bytes starting with the magic; anything else is
    /// [`AmpError::MalformedVoucher`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; VOUCHER_LEN] = bytes
            .try_into()
            .map_err(|_| error!(AmpError::MalformedVoucher))?;
        require!(bytes[0..4] == VOUCHER_MAGIC, AmpError::MalformedVoucher);
        Ok(Self {
            lane: Pubkey::new_from_array(field(bytes, 4)),
            generation: u64::from_le_bytes(field(bytes, 36)),
            seq: u64::from_le_bytes(field(bytes, 44)),
            cumulative: u64::from_le_bytes(field(bytes, 52)),
            expires_at: i64::from_le_bytes(field(bytes, 60)),
        })
    }

    /// A voucher is dead from `expires_at` on (never when it is 0).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at != 0 && now >= self.expires_at
    }
}

/// Copies `N` bytes at `at`; callers pass offsets inside the fixed layout.
fn field<const N: usize>(bytes: &[u8; VOUCHER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Voucher {
        Voucher {
            lane: Pubkey::new_from_array([7; 32]),
            generation: 0x0102_0304_0506_0708,
            seq: 42,
            cumulative: u64::MAX,
            expires_at: -5,
        }
    }

    #[test]
    fn layout_is_the_specified_one() {
        let bytes = sample().to_bytes();
        assert_eq!(&bytes[0..4], &[0x41, 0x4D, 0x50, 0x31]);
        assert_eq!(&bytes[4..36], &[7; 32]);
        assert_eq!(&bytes[36..44], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[44..52], &42u64.to_le_bytes());
        assert_eq!(&bytes[52..60], &[0xFF; 8]);
        assert_eq!(&bytes[60..68], &(-5i64).to_le_bytes());
    }

    #[test]
    fn round_trips() {
        let v = sample();
        assert_eq!(Voucher::from_bytes(&v.to_bytes()).unwrap(), v);
    }

    #[test]
    fn refuses_wrong_length_and_magic() {
        let bytes = sample().to_bytes();
        for len in [0, 4, 67, 69, 100] {
            let mut v = bytes.to_vec();
            v.resize(len, 0);
            assert_eq!(
                Voucher::from_bytes(&v).unwrap_err(),
                AmpError::MalformedVoucher.into()
            );
        }
        for i in 0..4 {
            let mut v = bytes;
            v[i] ^= 0x20;
            assert_eq!(
                Voucher::from_bytes(&v).unwrap_err(),
                AmpError::MalformedVoucher.into()
            );
        }
    }

    #[test]
    fn cannot_be_mistaken_for_a_transaction_message() {
        let first = sample().to_bytes()[0];
        // A legacy message starts with its signer count, a versioned one with 0x80.
        assert!(first >= 0x41 && first & 0x80 == 0);
    }

    #[test]
    fn expiry() {
        let mut v = sample();
        v.expires_at = 0;
        assert!(!v.is_expired(i64::MAX));
        v.expires_at = 100;
        assert!(!v.is_expired(99));
        assert!(v.is_expired(100));
        assert!(v.is_expired(101));
    }
}
