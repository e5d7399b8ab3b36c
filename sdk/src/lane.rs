//! A lane as the chain describes it: a Channel (the funder's own lane) or a
//! Delegation with its Channel. The server checks credentials against it and
//! its settler builds settlements from it, so it sits below both.

use amp_channel::state::{Channel, Delegation, LaneStatus};
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Discriminator};
use ed25519_dalek::VerifyingKey;

use crate::chain::{Chain, ChainError, ChainExt};
use crate::headers::Credential;
use crate::instructions::ChannelKeys;
#[cfg(feature = "server")]
use crate::store::{LaneId, LaneState};
use crate::transactions::Settlement;
use crate::voucher::{self, SignedVoucher, VoucherError};

/// The on-chain accounts behind a lane address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneAccounts {
    /// The address vouchers name.
    pub address: Pubkey,
    /// The Channel's address (equal to `address` for an own lane).
    pub channel_address: Pubkey,
    /// The Channel account (for a delegated lane, the one it draws on).
    pub channel: Channel,
    /// Present when the lane is a delegate's. Boxed: most lanes are a
    /// funder's own, and a paywall caches one of these per lane it serves.
    pub delegation: Option<Box<Delegation>>,
    /// The signer's key, decompressed once per read of the lane rather than
    /// for every credential; `None` when the signer is not a valid key.
    signer_key: Option<VerifyingKey>,
}

impl LaneAccounts {
    /// Reads the lane at `address`: `None` when nothing there is an AMP lane
    /// (no account, another program's account, or a delegation whose channel is gone).
    pub async fn fetch(
        chain: &(impl Chain + ?Sized),
        address: &Pubkey,
    ) -> Result<Option<Self>, ChainError> {
        let Some(account) = chain.account(address).await? else {
            return Ok(None);
        };
        if account.owner != amp_channel::ID {
            return Ok(None);
        }
        let data = account.data.as_slice();
        if data.starts_with(Channel::DISCRIMINATOR) {
            let channel = decode::<Channel>(address, data)?;
            return Ok(Some(Self::new(*address, *address, channel, None)));
        }
        if data.starts_with(Delegation::DISCRIMINATOR) {
            let delegation = decode::<Delegation>(address, data)?;
            let Some(channel) = chain.anchor_account::<Channel>(&delegation.channel).await? else {
                return Ok(None);
            };
            let channel_address = delegation.channel;
            return Ok(Some(Self::new(
                *address,
                channel_address,
                channel,
                Some(delegation),
            )));
        }
        Ok(None)
    }

    /// The lane's accounts as read from the chain.
    pub fn new(
        address: Pubkey,
        channel_address: Pubkey,
        channel: Channel,
        delegation: Option<Delegation>,
    ) -> Self {
        let signer = delegation
            .as_ref()
            .map_or(channel.authorized_signer, |d| d.delegate);
        Self {
            address,
            channel_address,
            channel,
            delegation: delegation.map(Box::new),
            signer_key: voucher::signer_key(&signer).ok(),
        }
    }

    /// Checks that the lane's signer signed `credential` for this generation
    /// of the lane, exactly as the program's Ed25519SigVerify check will.
    pub fn verify(&self, credential: &Credential) -> Result<SignedVoucher, VoucherError> {
        let key = self.signer_key.ok_or(VoucherError::InvalidSignerKey)?;
        credential.verify_with_key(&key, self.generation())
    }

    /// The settlement of `signed` on this lane (a delegate's lane settles
    /// through its Delegation account), paying the recipient's associated
    /// token account; `keys` are [`keys`](Self::keys).
    pub fn settlement(&self, keys: ChannelKeys, signed: SignedVoucher) -> Settlement {
        match self.delegate() {
            Some(delegate) => {
                Settlement::delegated(keys, delegate, signed.voucher, signed.signature)
            }
            None => Settlement::new(keys, self.signer(), signed.voucher, signed.signature),
        }
    }

    /// The key that signs this lane's vouchers.
    pub fn signer(&self) -> Pubkey {
        self.delegation
            .as_ref()
            .map_or(self.channel.authorized_signer, |d| d.delegate)
    }

    /// The delegate's key, for a delegated lane; `None` for an own lane.
    pub fn delegate(&self) -> Option<Pubkey> {
        self.delegation.as_ref().map(|d| d.delegate)
    }

    /// The generation (creation slot) of the lane's account, which vouchers carry.
    pub fn generation(&self) -> u64 {
        self.delegation
            .as_ref()
            .map_or(self.channel.generation, |d| d.generation)
    }

    /// The lane's identity in the voucher store: its address and generation.
    #[cfg(feature = "server")]
    pub fn id(&self) -> LaneId {
        LaneId {
            lane: self.address,
            generation: self.generation(),
        }
    }

    /// The most the lane may ever pay in total: the delegation's cap, or the
    /// deposit not reserved for delegations.
    pub fn limit(&self) -> u64 {
        self.delegation
            .as_ref()
            .map_or(self.channel.own_lane_limit(), |d| d.cap)
    }

    /// Cumulative amount already paid out on the lane.
    pub fn settled(&self) -> u64 {
        self.delegation
            .as_ref()
            .map_or(self.channel.settled, |d| d.settled)
    }

    /// Whether the lane is open, closing or refundable at `now` (unix seconds).
    pub fn status(&self, now: i64) -> LaneStatus {
        match &self.delegation {
            Some(d) => d.status(&self.channel, now),
            None => self.channel.status(now),
        }
    }

    /// The addresses settling and closing need; `token_program` owns the mint.
    pub fn keys(&self, token_program: Pubkey) -> ChannelKeys {
        ChannelKeys::new(
            self.channel.funder,
            self.channel.recipient,
            self.channel.nonce,
            self.channel.mint,
            token_program,
        )
        .with_payer(self.channel.payer)
    }

    /// The state a store starts from for this lane.
    #[cfg(feature = "server")]
    pub fn fresh_state(&self) -> LaneState {
        LaneState::new(
            self.id(),
            self.channel_address,
            self.delegate(),
            self.signer(),
        )
    }
}

fn decode<T: AccountDeserialize>(address: &Pubkey, mut data: &[u8]) -> Result<T, ChainError> {
    T::try_deserialize(&mut data).map_err(|e| ChainError::InvalidAccount {
        address: *address,
        expected: "AMP lane",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voucher::VoucherSigner;
    use ed25519_dalek::SigningKey;

    fn channel(signer: Pubkey) -> Channel {
        Channel {
            funder: Pubkey::new_from_array([1; 32]),
            recipient: Pubkey::new_from_array([2; 32]),
            mint: Pubkey::new_from_array([3; 32]),
            authorized_signer: signer,
            nonce: 0,
            generation: 77,
            deposited: 1_000,
            settled: 0,
            delegated: 0,
            delegations: 0,
            close_requested_at: 0,
            expires_at: 0,
            grace_period: 3_600,
            bump: 255,
            vault_bump: 254,
            payer: Pubkey::new_from_array([1; 32]),
        }
    }

    fn credential(key: &SigningKey, lane: Pubkey, generation: u64) -> Credential {
        let voucher = voucher::Voucher {
            lane,
            generation,
            seq: 1,
            cumulative: 10,
            expires_at: 0,
        };
        let signed = SignedVoucher::sign(key, voucher);
        Credential {
            lane,
            seq: 1,
            cumulative: 10,
            expires_at: 0,
            signature: signed.signature,
        }
    }

    #[test]
    fn verifies_with_the_kept_key_as_with_the_signer_address() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let lane = Pubkey::new_from_array([9; 32]);
        let accounts = LaneAccounts::new(lane, lane, channel(key.voucher_pubkey()), None);

        let good = credential(&key, lane, 77);
        let signed = accounts.verify(&good).unwrap();
        assert_eq!(signed, good.verify(&key.voucher_pubkey(), 77).unwrap());

        // Signed for another generation of the lane, or by another key.
        let stale = credential(&key, lane, 76);
        assert_eq!(accounts.verify(&stale), Err(VoucherError::BadSignature));
        let stranger = credential(&SigningKey::from_bytes(&[8; 32]), lane, 77);
        assert_eq!(accounts.verify(&stranger), Err(VoucherError::BadSignature));
        let mut flipped = good;
        flipped.signature[10] ^= 1;
        assert_eq!(accounts.verify(&flipped), Err(VoucherError::BadSignature));
    }

    #[test]
    fn a_signer_off_the_curve_verifies_nothing() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let lane = Pubkey::new_from_array([9; 32]);
        let pda = crate::pda::vault(&lane).0;
        let accounts = LaneAccounts::new(lane, lane, channel(pda), None);
        assert_eq!(
            accounts.verify(&credential(&key, lane, 77)),
            Err(VoucherError::InvalidSignerKey)
        );
    }
}
