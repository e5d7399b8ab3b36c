//! What every voucher store does: the trait, its errors, and the one way to
//! run a decision under a lane's lock.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::state::{LaneId, LaneQuery, LaneState, Update};

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite database failed (open, query or commit).
    #[cfg(feature = "sqlite")]
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// This build cannot open the store a location names (the feature it
    /// needs, `sqlite` or `postgres`, is off).
    #[error("{0}")]
    Unsupported(String),
    /// An I/O error outside the database (such as starting the store's thread).
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The store holds data this build cannot read (a bad record, a newer
    /// schema), or could not be opened as asked; the message says what.
    #[error("the store holds an unreadable record: {0}")]
    Corrupt(String),
    /// The store was closed; it answers nothing more.
    #[error("the store has shut down")]
    Closed,
    /// PostgreSQL failed (connection, pool, query) or refused the store's options.
    #[error("PostgreSQL: {0}")]
    Postgres(Box<dyn std::error::Error + Send + Sync>),
}

/// Durable per-lane state, serialised per lane.
#[async_trait]
pub trait VoucherStore: Send + Sync {
    /// Runs `update` on the lane's state (on `fresh` when the store has
    /// none) under the lane's lock. When it returns `true`, the new state is
    /// durably stored before this returns; when `false`, nothing changes.
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError>;

    /// The lane's state, if the store has one.
    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError>;

    /// The lanes matching `query`.
    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError>;

    /// Finishes pending writes and releases the storage (the file, its lock).
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Settlement leadership, for a store that several server processes
    /// share: asks to settle `lanes` and returns those this process may
    /// settle now. They are leased to it until it [`release`](Self::release)s
    /// them, or until the lease runs out (it died): then another process may
    /// claim them. A store that one process alone can open grants every lane.
    async fn claim(&self, lanes: &[LaneId]) -> Result<Vec<LaneId>, StoreError> {
        Ok(lanes.to_vec())
    }

    /// Gives up the settlement lease of `lanes` (see [`claim`](Self::claim)).
    async fn release(&self, _lanes: &[LaneId]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Runs `f` as an [`Update`] and returns what it computed: `f` returns its
/// result and whether to persist.
pub async fn transact<T: Send + 'static>(
    store: &(impl VoucherStore + ?Sized),
    fresh: LaneState,
    f: impl FnOnce(&mut LaneState) -> (T, bool) + Send + 'static,
) -> Result<T, StoreError> {
    let slot = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    store
        .update(
            fresh,
            Box::new(move |state| {
                let (value, persist) = f(state);
                *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                persist
            }),
        )
        .await?;
    let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    value.ok_or_else(|| StoreError::Corrupt("the update did not run".into()))
}

#[async_trait]
impl<S: VoucherStore + ?Sized> VoucherStore for Arc<S> {
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError> {
        (**self).update(fresh, update).await
    }

    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError> {
        (**self).lane(id).await
    }

    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
        (**self).find(query).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        (**self).close().await
    }

    async fn claim(&self, lanes: &[LaneId]) -> Result<Vec<LaneId>, StoreError> {
        (**self).claim(lanes).await
    }

    async fn release(&self, lanes: &[LaneId]) -> Result<(), StoreError> {
        (**self).release(lanes).await
    }
}
