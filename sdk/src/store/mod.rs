//! The server's memory of every lane: the last accepted seq, what it charged,
//! the best voucher it holds, and what of it is settled (SPEC section 5,
//! "Server duties").
//!
//! A [`VoucherStore`] applies each change to a lane as one atomic
//! read-modify-write under that lane's lock, and persists it before
//! answering. The decision itself (is this seq new, does this amount cover
//! what is owed) is a plain function handed to [`VoucherStore::update`], so
//! the store decides nothing and a database-backed store can run the same
//! function inside its own transaction (`SELECT … FOR UPDATE`), letting the
//! database serialise a lane across several server processes.
//!
//! [`MemoryStore`] (for tests and demos; forgets everything on exit) is
//! always there. With the `sqlite` feature, `SqliteStore` (embedded,
//! durable, the default for a file path); with the `postgres` feature,
//! `PostgresStore`, which several server replicas share. [`open`] picks the
//! store a location names.

mod location;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;

use crate::voucher::SignedVoucher;

pub use crate::durability::Durability;
pub use location::{is_url, open};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

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

/// Which lanes [`VoucherStore::find`] returns.
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
