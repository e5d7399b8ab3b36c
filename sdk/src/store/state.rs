//! What the server knows about each lane, and how a change to it is said.

use anchor_lang::prelude::Pubkey;

use crate::voucher::SignedVoucher;

/// One incarnation of a lane: its address and the generation of the account
/// there (a lane re-opened at the same address is another lane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneId {
    /// The lane's address: a Channel, or a Delegation.
    pub lane: Pubkey,
    /// The account's generation (its creation slot).
    pub generation: u64,
}

/// What the server knows about one lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneState {
    /// Which lane, and which incarnation of it.
    pub id: LaneId,
    /// The Channel the lane belongs to (the lane itself for a funder's own lane).
    pub channel: Pubkey,
    /// The delegate, when the lane is a Delegation.
    pub delegate: Option<Pubkey>,
    /// The key the lane's vouchers are signed with.
    pub signer: Pubkey,
    /// Highest seq accepted; the next credential must be above it.
    pub last_seq: u64,
    /// Cumulative amount charged on the lane.
    pub owed: u64,
    /// The accepted voucher with the highest cumulative amount: what settles.
    pub best: Option<SignedVoucher>,
    /// Cumulative amount known to be settled on-chain.
    pub settled: u64,
    /// Closed cooperatively (or given up): no more requests are served.
    pub closed: bool,
    /// Allowance of metered requests still in flight. Not persisted: the
    /// requests die with the process.
    pub reserved: u64,
}

impl LaneState {
    /// A lane the store has never seen.
    pub fn new(id: LaneId, channel: Pubkey, delegate: Option<Pubkey>, signer: Pubkey) -> Self {
        Self {
            id,
            channel,
            delegate,
            signer,
            last_seq: 0,
            owed: 0,
            best: None,
            settled: 0,
            closed: false,
            reserved: 0,
        }
    }

    /// Cumulative amount of the best voucher (0 without one).
    pub fn signed(&self) -> u64 {
        self.best.map_or(0, |b| b.voucher.cumulative)
    }

    /// What settling the best voucher would pay now.
    pub fn unsettled(&self) -> u64 {
        self.signed().saturating_sub(self.settled)
    }
}

/// A change to one lane: edits the state and returns whether to persist it
/// (`false` discards every edit).
pub type Update = Box<dyn FnOnce(&mut LaneState) -> bool + Send>;

/// Which lanes [`VoucherStore::find`](crate::store::VoucherStore::find) returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaneQuery {
    /// Open lanes whose best voucher is not fully settled.
    Unsettled,
    /// Every lane of one channel (its own lane and its delegations).
    Channel(Pubkey),
}

impl LaneQuery {
    /// Whether `state` is one of the lanes the query asks for.
    pub fn matches(&self, state: &LaneState) -> bool {
        match self {
            LaneQuery::Unsettled => state.unsettled() > 0 && !state.closed,
            LaneQuery::Channel(channel) => state.channel == *channel,
        }
    }
}
