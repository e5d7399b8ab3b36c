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

mod backend;
mod location;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod state;

pub use crate::durability::Durability;
pub use backend::{transact, StoreError, VoucherStore};
pub use location::{is_url, open};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use state::{LaneId, LaneQuery, LaneState, Update};
