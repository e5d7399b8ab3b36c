//! Events, emitted through Anchor's self-CPI (`emit_cpi!`) so that indexers
//! read them from inner instructions, which are never truncated like logs.

use anchor_lang::prelude::*;

#[event]
pub struct ChannelOpened {
    pub channel: Pubkey,
    pub funder: Pubkey,
    /// Who fronted the rent (the funder unless sponsored).
    pub payer: Pubkey,
    pub recipient: Pubkey,
    pub mint: Pubkey,
    pub authorized_signer: Pubkey,
    pub nonce: u64,
    pub generation: u64,
    pub deposit: u64,
    pub grace_period: u32,
    pub expires_at: i64,
}

#[event]
pub struct ChannelToppedUp {
    pub channel: Pubkey,
    pub amount: u64,
    pub deposited: u64,
}

#[event]
pub struct ChannelSettled {
    pub channel: Pubkey,
    /// The address the voucher names (the channel itself for the funder's lane).
    pub lane: Pubkey,
    pub amount: u64,
    /// Cumulative amount settled on the lane after this settlement.
    pub settled: u64,
    pub destination: Pubkey,
}

#[event]
pub struct CloseRequested {
    pub channel: Pubkey,
    pub requested_at: i64,
    /// Vouchers stay settleable until this unix time; refunds open from it.
    pub refundable_at: i64,
}

#[event]
pub struct ChannelClosed {
    pub channel: Pubkey,
    /// Total paid to the recipient over the channel's life.
    pub settled: u64,
    /// Tokens returned to the funder (unspent deposit plus any donations).
    pub refunded: u64,
    /// True for the recipient's cooperative `close`, false for `refund`.
    pub cooperative: bool,
}

#[event]
pub struct DelegationCreated {
    pub channel: Pubkey,
    pub delegation: Pubkey,
    pub delegate: Pubkey,
    /// Who fronted the rent (the funder unless sponsored).
    pub payer: Pubkey,
    pub cap: u64,
    pub generation: u64,
    pub expires_at: i64,
}

#[event]
pub struct DelegationRevoked {
    pub channel: Pubkey,
    pub delegation: Pubkey,
    pub requested_at: i64,
    /// Delegate vouchers stay settleable until this unix time.
    pub refundable_at: i64,
}

#[event]
pub struct DelegationClosed {
    pub channel: Pubkey,
    pub delegation: Pubkey,
    /// Total the delegate's lane paid.
    pub settled: u64,
    /// Cap returned to the channel's own lane.
    pub unspent: u64,
}

/// A supply-chain hop: an upstream voucher paid straight into a downstream
/// channel funded by the upstream recipient.
#[event]
pub struct SettledInto {
    pub upstream: Pubkey,
    /// The upstream lane the voucher named (the channel or one of its delegations).
    pub lane: Pubkey,
    pub downstream: Pubkey,
    pub amount: u64,
    /// Cumulative amount settled on the upstream lane after this hop.
    pub settled: u64,
    /// The downstream channel's total deposit after this hop.
    pub downstream_deposited: u64,
}
