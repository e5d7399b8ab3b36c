//! A store in memory: one mutex over a map. For tests, demos and benches;
//! it forgets everything when the process ends.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::backend::{StoreError, VoucherStore};
use super::state::{LaneId, LaneQuery, LaneState, Update};

/// A [`VoucherStore`] that keeps lanes in memory only.
#[derive(Default)]
pub struct MemoryStore {
    lanes: Mutex<HashMap<LaneId, LaneState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<LaneId, LaneState>> {
        // A panic elsewhere cannot leave a half-applied update: updates run on a copy.
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl VoucherStore for MemoryStore {
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError> {
        let mut lanes = self.lanes();
        let mut state = lanes.get(&fresh.id).cloned().unwrap_or(fresh);
        if update(&mut state) {
            lanes.insert(state.id, state);
        }
        Ok(())
    }

    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError> {
        Ok(self.lanes().get(&id).cloned())
    }

    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
        let mut found: Vec<LaneState> = self
            .lanes()
            .values()
            .filter(|s| query.matches(s))
            .cloned()
            .collect();
        found.sort_by_key(|s| s.id);
        Ok(found)
    }
}
