//! What session requests changed on a lane and the store has not seen yet
//! (SPEC section 5, "Sessions"). Unsigned requests touch no durable store:
//! they change a [`Mirror`] of the lane in memory, and the next signed
//! voucher on the lane carries their charges into the store in the same
//! write ([`Mirror::fold_into`]). What a crash loses is the mirror: at most
//! the credit beyond the highest signed amount, per lane.
//!
//! A mirror keeps the store's state as of its last write through this
//! process, and counts what changed since as differences (charges,
//! reservations), never as absolutes: another replica, or a request that
//! went straight to the store, may have written the lane meanwhile, and
//! folding differences into the store's current state counts every charge
//! once.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use crate::store::{LaneId, LaneState};

/// Shards of the table: a session request takes one shard's lock for a map
/// lookup, so lanes on different shards never wait for each other.
const SHARDS: usize = 32;

/// A lane as session requests left it.
#[derive(Clone, Debug)]
pub(crate) struct Mirror {
    /// The lane, with every change made through this process applied.
    pub(crate) state: LaneState,
    /// What the store held for `owed` when `state` was last written.
    base_owed: u64,
    /// What the store held for `reserved` when `state` was last written.
    base_reserved: u64,
}

impl Mirror {
    /// A mirror of the lane as the store holds it.
    pub(crate) fn new(state: LaneState) -> Self {
        Self {
            base_owed: state.owed,
            base_reserved: state.reserved,
            state,
        }
    }

    /// Carries this mirror's changes into `stored`, the store's current
    /// state: the charges and reservations made since the last write add to
    /// the store's figures; seq, best voucher, settlement and closing are
    /// monotonic and take the further of the two.
    pub(crate) fn fold_into(&self, stored: &mut LaneState) {
        let charged = self.state.owed.saturating_sub(self.base_owed);
        stored.owed = stored.owed.saturating_add(charged);
        let reserved = i128::from(stored.reserved) + i128::from(self.state.reserved)
            - i128::from(self.base_reserved);
        stored.reserved = u64::try_from(reserved.max(0)).unwrap_or(u64::MAX);
        stored.last_seq = stored.last_seq.max(self.state.last_seq);
        if self.state.signed() > stored.signed() {
            stored.best = self.state.best;
        }
        stored.settled = stored.settled.max(self.state.settled);
        stored.closed |= self.state.closed;
    }

    /// `state` was just written to the store: nothing is pending any more.
    pub(crate) fn written(&mut self, state: LaneState) {
        *self = Self::new(state);
    }

    /// What the lane was charged beyond the highest amount signed: what the
    /// service would lose if the agent never signed again.
    pub(crate) fn at_risk(&self) -> u64 {
        self.state.owed.saturating_sub(self.state.signed())
    }

    /// Charges not yet written to the store.
    pub(crate) fn unwritten(&self) -> u64 {
        self.state.owed.saturating_sub(self.base_owed)
    }
}

/// A mirror behind the lock every change to its lane takes.
pub(crate) type Shared = Arc<tokio::sync::Mutex<Mirror>>;

/// The mirrors of the lanes session requests have used.
pub(crate) struct Unsigned {
    shards: Vec<Mutex<HashMap<LaneId, Shared>>>,
    hasher: RandomState,
}

impl Default for Unsigned {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Unsigned {
    fn shard(&self, id: &LaneId) -> &Mutex<HashMap<LaneId, Shared>> {
        let index = self.hasher.hash_one(id) as usize % SHARDS;
        &self.shards[index]
    }

    /// The lane's mirror, if session requests have used it.
    pub(crate) fn get(&self, id: &LaneId) -> Option<Shared> {
        let shard = self.shard(id).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(id).cloned()
    }

    /// The lane's mirror; `mirror` becomes it unless another was put first.
    pub(crate) fn get_or_insert(&self, id: LaneId, mirror: Mirror) -> Shared {
        let mut shard = self.shard(&id).lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            shard
                .entry(id)
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(mirror))),
        )
    }

    /// Forgets a lane (it closed): nothing more is served on it.
    pub(crate) fn remove(&self, id: &LaneId) {
        let mut shard = self.shard(id).lock().unwrap_or_else(|e| e.into_inner());
        shard.remove(id);
    }

    /// Every mirror, for the status route and the flush at shutdown.
    pub(crate) fn all(&self) -> Vec<Shared> {
        self.shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                shard.values().cloned().collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voucher::{SignedVoucher, Voucher};
    use anchor_lang::prelude::Pubkey;

    fn lane() -> LaneState {
        let key = Pubkey::new_from_array([3; 32]);
        LaneState::new(
            LaneId {
                lane: key,
                generation: 1,
            },
            key,
            None,
            key,
        )
    }

    fn voucher(seq: u64, cumulative: u64) -> Option<SignedVoucher> {
        Some(SignedVoucher {
            voucher: Voucher {
                lane: Pubkey::new_from_array([3; 32]),
                generation: 1,
                seq,
                cumulative,
                expires_at: 0,
            },
            signature: [0; 64],
        })
    }

    #[test]
    fn folding_adds_charges_to_what_others_wrote_meanwhile() {
        let mut stored = lane();
        stored.owed = 100;
        stored.last_seq = 4;
        stored.best = voucher(4, 100);
        stored.reserved = 7;
        let mut mirror = Mirror::new(stored.clone());
        // Session requests: two charges of 10, a metered request in flight.
        mirror.state.owed += 20;
        mirror.state.last_seq = 6;
        mirror.state.reserved += 5;
        // Another replica charged 30 with a signed voucher meanwhile.
        stored.owed = 130;
        stored.last_seq = 5;
        stored.best = voucher(5, 140);
        stored.settled = 100;
        mirror.fold_into(&mut stored);
        assert_eq!(stored.owed, 150, "every charge counted once");
        assert_eq!(stored.reserved, 12);
        assert_eq!(stored.last_seq, 6);
        assert_eq!(stored.signed(), 140);
        assert_eq!(stored.settled, 100);
        assert_eq!(mirror.unwritten(), 20);
        assert_eq!(mirror.at_risk(), 20, "120 charged, 100 signed");
        mirror.written(stored);
        assert_eq!(mirror.unwritten(), 0);
        assert_eq!(mirror.at_risk(), 10);
    }

    #[test]
    fn reservations_released_elsewhere_never_go_negative() {
        let mut stored = lane();
        stored.reserved = 50;
        let mut mirror = Mirror::new(stored.clone());
        mirror.state.reserved = 0;
        stored.reserved = 10;
        mirror.fold_into(&mut stored);
        assert_eq!(stored.reserved, 0);
    }

    #[test]
    fn the_table_keeps_the_first_mirror_of_a_lane() {
        let table = Unsigned::default();
        let id = lane().id;
        assert!(table.get(&id).is_none());
        let mut first = lane();
        first.owed = 1;
        let a = table.get_or_insert(id, Mirror::new(first));
        let b = table.get_or_insert(id, Mirror::new(lane()));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(table.all().len(), 1);
        table.remove(&id);
        assert!(table.get(&id).is_none());
    }
}
