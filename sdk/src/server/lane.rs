//! A lane as the chain describes it: a Channel (the funder's own lane) or a
//! Delegation with its Channel. The server checks credentials against it and
//! the settler builds settlements from it.

use amp_channel::state::{Channel, Delegation, LaneStatus};
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AccountDeserialize, Discriminator};

use crate::chain::{Chain, ChainError, ChainExt};
use crate::instructions::ChannelKeys;
use crate::store::{LaneId, LaneState};

/// The on-chain accounts behind a lane address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneAccounts {
    /// The address vouchers name.
    pub address: Pubkey,
    /// The Channel's address (equal to `address` for an own lane).
    pub channel_address: Pubkey,
    /// The Channel account (for a delegated lane, the one it draws on).
    pub channel: Channel,
    /// Present when the lane is a delegate's.
    pub delegation: Option<Delegation>,
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
            return Ok(Some(Self {
                address: *address,
                channel_address: *address,
                channel,
                delegation: None,
            }));
        }
        if data.starts_with(Delegation::DISCRIMINATOR) {
            let delegation = decode::<Delegation>(address, data)?;
            let Some(channel) = chain.anchor_account::<Channel>(&delegation.channel).await? else {
                return Ok(None);
            };
            return Ok(Some(Self {
                address: *address,
                channel_address: delegation.channel,
                channel,
                delegation: Some(delegation),
            }));
        }
        Ok(None)
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
    }

    /// The state a store starts from for this lane.
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
